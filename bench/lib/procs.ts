/** The devnet's processes by kind, with their CPU time and resident memory. */

import { readFileSync } from 'node:fs'
import type { Devnet } from '../../src/devnet/devnet.ts'
import { cpuSeconds, round, rssKiB } from './common.ts'

export type ProcessKind = 'operators' | 'enclaves' | 'anvil' | 'bench'

/** The index in `devnet.operators` of the operator with address `operator`; throws if none. */
export function operatorIndex(devnet: Devnet, operator: string): number {
  const i = devnet.operators.findIndex((o) => o.address.toLowerCase() === operator.toLowerCase())
  if (i < 0) throw new Error(`${operator} is not a devnet operator`)
  return i
}

export function devnetPids(devnet: Devnet): Record<Exclude<ProcessKind, 'bench'>, number[]> {
  const alive = (x: number | undefined): x is number => x !== undefined
  return {
    operators: devnet.operators.map((o) => o.process?.pid).filter(alive),
    enclaves: devnet.operators.map((_, i) => devnet.enclavePid(i)).filter(alive),
    anvil: [devnet.anvil.process.pid].filter(alive),
  }
}

/** CPU seconds used so far by each kind of process (the bench process included). */
export function cpuByKind(devnet: Devnet): Record<ProcessKind, number> {
  const pids = devnetPids(devnet)
  const sum = (xs: number[]) => xs.reduce((a, p) => a + (cpuSeconds(p) ?? 0), 0)
  const self = process.cpuUsage()
  return {
    operators: sum(pids.operators),
    enclaves: sum(pids.enclaves),
    anvil: sum(pids.anvil),
    bench: (self.user + self.system) / 1e6,
  }
}

export function cpuDelta(
  a: Record<ProcessKind, number>,
  b: Record<ProcessKind, number>,
): Record<ProcessKind, number> {
  return {
    operators: b.operators - a.operators,
    enclaves: b.enclaves - a.enclaves,
    anvil: b.anvil - a.anvil,
    bench: b.bench - a.bench,
  }
}

/**
 * CPU milliseconds per transaction by kind of process since `before` (a `cpuByKind` of the same
 * devnet), over `txs` transactions, rounded to `digits` decimals.
 */
export function cpuPerTx(
  devnet: Devnet,
  before: Record<ProcessKind, number>,
  txs: number,
  digits = 2,
): Record<ProcessKind, number> {
  const d = cpuDelta(before, cpuByKind(devnet))
  const per = (seconds: number) => round((seconds * 1000) / txs, digits)
  return {
    operators: per(d.operators),
    enclaves: per(d.enclaves),
    anvil: per(d.anvil),
    bench: per(d.bench),
  }
}

/** Resident memory (MiB) of every enclave and operator process. */
export function rssMiB(devnet: Devnet): { enclaves: number[]; operators: number[] } {
  const pids = devnetPids(devnet)
  const mib = (p: number) => (rssKiB(p) ?? 0) / 1024
  return { enclaves: pids.enclaves.map(mib), operators: pids.operators.map(mib) }
}

/** Time a thread spent on a core and runnable waiting for one (Linux `schedstat`), in ns. */
export type Sched = { runNs: number; waitNs: number }

/** Parses `/proc/<pid>/task/<tid>/schedstat`: run ns, run-queue wait ns, time slices. */
export function parseSchedstat(text: string): Sched | undefined {
  const m = /^(\d+) (\d+) \d+\s*$/.exec(text)
  return m ? { runNs: Number(m[1]), waitNs: Number(m[2]) } : undefined
}

/** The scheduler's figures for a process's main thread; undefined where `/proc` lacks them. */
export function mainThreadSched(pid: number | undefined): Sched | undefined {
  if (!pid) return undefined
  try {
    return parseSchedstat(readFileSync(`/proc/${pid}/task/${pid}/schedstat`, 'utf8'))
  } catch {
    return undefined
  }
}

/**
 * Of the enclave processes' main threads, the one that ran most between two readings (under
 * load: the executor's), as shares of `wallMs`: on a core, and runnable without one.
 */
export function busiestThread(
  before: Map<number, Sched>,
  after: Map<number, Sched>,
  wallMs: number,
): { runPct: number; waitPct: number } | undefined {
  let best: { run: number; wait: number } | undefined
  for (const [pid, b] of after) {
    const a = before.get(pid)
    if (!a) continue
    const run = b.runNs - a.runNs
    if (!best || run > best.run) best = { run, wait: b.waitNs - a.waitNs }
  }
  if (!best || wallMs <= 0) return undefined
  const pct = (ns: number) => round(ns / 1e4 / wallMs, 1)
  return { runPct: pct(best.run), waitPct: pct(best.wait) }
}

/** `mainThreadSched` of every enclave process of `devnet`, by pid. */
export function enclaveSched(devnet: Devnet): Map<number, Sched> {
  const out = new Map<number, Sched>()
  for (const pid of devnetPids(devnet).enclaves) {
    const s = mainThreadSched(pid)
    if (s) out.set(pid, s)
  }
  return out
}
