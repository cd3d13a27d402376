/** The devnet's processes by kind, with their CPU time and resident memory. */
import type { Devnet } from '../../src/devnet/devnet.ts'
import { cpuSeconds, round, rssKiB } from './common.ts'

export type ProcessKind = 'operators' | 'enclaves' | 'anvil' | 'bench'

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
