/**
 * Section `anatomy`: where the low-load latency of one transfer goes (s = 2, one client sending
 * sequentially). Every devnet process and the benchmark process record when a message crosses
 * their boundary (bench/lib/trace.cjs: names and timestamps only); each transfer's events,
 * from the SDK call to the verified receipt, are lined up and the median time of each step
 * since the call is reported, with the median per-transfer gap to the step before.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { median, printTable, progress, type Row, round, sleep, withDevnet } from '../lib/common.ts'
import { devnetPids } from '../lib/procs.ts'
import { deployToken, devnetClients, transfer } from '../lib/workload.ts'

export type AnatomyConfig = { txs: number }

/**
 * Transfers sent before the measured ones. After 20, the median transfer took 8.5–9.3 ms where
 * it took 6.3–7.1 after 600 (bench/README.md, 2026-12-06, evening): the processes' code was
 * not yet optimised. The throughput section's low-load latency, which this section explains,
 * is measured on a devnet that has run more than a thousand transfers.
 */
const WARM_UP_TXS = 500

export type AnatomyStep = {
  /** Where the step happens and what crossed the boundary. */
  step: string
  /** Median milliseconds from the SDK call to this step. */
  atMs: number
  /** Median over transfers of the milliseconds from the step before in this order. */
  sinceLastMs: number
}

export type AnatomyResult = {
  txs: number
  /** Transfers whose events lined up into the common sequence of steps (the rest are left out). */
  used: number
  p50Ms: number
  steps: AnatomyStep[]
}

type TraceEvent = [time: number, what: string]

const TRACE_HOOK = fileURLToPath(new URL('../lib/trace.cjs', import.meta.url))

/** Which process an event comes from, by its role in the instance. */
function roleOf(pid: number, roles: Map<number, string>): string {
  return roles.get(pid) ?? `process ${pid}`
}

export async function benchAnatomy(cfg: AnatomyConfig): Promise<AnatomyResult> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-trace-'))
  const previous = process.env.BENCH_TRACE_DIR
  process.env.BENCH_TRACE_DIR = dir
  const hook = createRequire(import.meta.url)(TRACE_HOOK) as {
    take(): TraceEvent[]
    stop(): void
    start(): void
  }
  hook.start()
  const nodeOptions =
    `${process.env.NODE_OPTIONS ?? ''} --require ${JSON.stringify(TRACE_HOOK)}`.trim()
  try {
    return await withDevnet(
      { operators: 3, users: 2, operatorEnv: () => ({ NODE_OPTIONS: nodeOptions }) },
      async (devnet) => {
        const clients = await devnetClients(devnet)
        progress('anatomy: deploying PrivateToken with s=2')
        const instance = await deployToken(clients[0]!, clients, 2)
        const client = clients[0]!
        const to = clients[1]!.account.address
        for (let k = 0; k < WARM_UP_TXS; k++) await transfer(client, instance, to)
        const pids = () => {
          const p = devnetPids(devnet)
          return [...p.operators, ...p.enclaves]
        }
        const signalAll = () => {
          for (const pid of pids()) process.kill(pid, 'SIGUSR2')
        }
        // Drop what the set-up recorded.
        signalAll()
        hook.take()
        await sleep(500)
        for (const f of readdirSync(dir)) rmSync(join(dir, f))
        progress(`anatomy: ${cfg.txs} transfers, one at a time`)
        const calls: Array<{ start: number; end: number }> = []
        // The probe's clock (the machine's monotonic clock, shared by every process).
        const clock = () => Number(process.hrtime.bigint()) / 1e6
        for (let k = 0; k < cfg.txs; k++) {
          const start = clock()
          const r = await transfer(client, instance, to)
          calls.push({ start, end: clock() })
          if (r.status !== 'success') throw new Error(`anatomy: transfer ${k}: ${r.status}`)
        }
        const sdk = hook.take()
        const signalledAt = Date.now()
        signalAll()
        // Each process writes its file on the signal; wait (up to 5 s) until every one has
        // written it since (a late answer to the first signal may have left an older file).
        const written = (pid: number) => {
          try {
            return statSync(join(dir, `trace-${pid}.json`)).mtimeMs >= signalledAt - 1
          } catch {
            return false
          }
        }
        for (let i = 0; i < 100 && !pids().every(written); i++) await sleep(50)
        const events: Array<{ t: number; pid: number; what: string }> = sdk.map(([t, what]) => ({
          t,
          pid: process.pid,
          what,
        }))
        for (const f of readdirSync(dir)) {
          const pid = Number(f.replace(/^trace-|\.json$/g, ''))
          for (const [t, what] of JSON.parse(readFileSync(join(dir, f), 'utf8')) as TraceEvent[])
            events.push({ t, pid, what })
        }
        events.sort((a, b) => a.t - b.t)
        const pairs = devnet.operators.map((o, k) => ({
          operator: o.process?.pid,
          enclave: devnet.enclavePid(k),
        }))
        const roles = rolesOf(events, pairs, process.pid)
        return lineUp(calls, events, roles)
      },
    )
  } finally {
    // The harness's own hooks stay loaded for the later sections; they record nothing more.
    hook.stop()
    if (previous === undefined) delete process.env.BENCH_TRACE_DIR
    else process.env.BENCH_TRACE_DIR = previous
    rmSync(dir, { recursive: true, force: true })
  }
}

/**
 * Names each process by its role: the enclave the `tx` ecalls entered is the executor's; the
 * others are watchdogs, numbered in the order they first received an update. An operator
 * takes its enclave's role.
 */
function rolesOf(
  events: Array<{ pid: number; what: string }>,
  pairs: Array<{ operator: number | undefined; enclave: number | undefined }>,
  self: number,
): Map<number, string> {
  const roles = new Map<number, string>([[self, 'client']])
  for (const e of events) if (e.what === 'enclave in tx') roles.set(e.pid, 'executor')
  let watchdogs = 0
  for (const e of events) {
    if (e.what === 'enclave in peer update' && !roles.has(e.pid))
      roles.set(e.pid, `watchdog ${++watchdogs}`)
  }
  for (const { operator, enclave } of pairs) {
    const role = enclave === undefined ? undefined : roles.get(enclave)
    if (operator === undefined || role === undefined) continue
    roles.set(enclave!, `${role} enclave`)
    roles.set(operator, `${role} operator`)
  }
  return roles
}

/**
 * Splits the events by transfer (those between an SDK call and its end), names each by its
 * process's role and its occurrence within the transfer, and keeps the steps every transfer
 * shares in one order. Background work (ticks, chain batches) is left out.
 */
function lineUp(
  calls: Array<{ start: number; end: number }>,
  events: Array<{ t: number; pid: number; what: string }>,
  roles: Map<number, string>,
): AnatomyResult {
  const background = /enclave in (tick|chain)/
  const perTx: Array<Map<string, number>> = []
  let i = 0
  for (const c of calls) {
    while (i < events.length && events[i]!.t < c.start) i++
    const steps = new Map<string, number>()
    const seen = new Map<string, number>()
    const enclaveIn = new Map<number, { t: number; what: string }>()
    for (let j = i; j < events.length && events[j]!.t <= c.end; j++) {
      const e = events[j]!
      let what = e.what
      if (what.startsWith('enclave in ')) {
        // The items of one message share its time: a tick that came with an ecall of the
        // transfer does not make what follows background work.
        const last = enclaveIn.get(e.pid)
        const joined = last?.t === e.t && !background.test(last.what) && background.test(what)
        if (!joined) enclaveIn.set(e.pid, { t: e.t, what })
      }
      // An enclave's answer belongs to the ecall before it; ticks and chain batches are not
      // the transfer's.
      if (what.startsWith('enclave out') && background.test(enclaveIn.get(e.pid)?.what ?? ''))
        continue
      if (background.test(what)) continue
      what = `${roleOf(e.pid, roles)}: ${what}`
      const n = (seen.get(what) ?? 0) + 1
      seen.set(what, n)
      steps.set(n > 1 ? `${what} (${n})` : what, e.t - c.start)
    }
    steps.set('client: receipt verified', c.end - c.start)
    perTx.push(steps)
  }
  // The steps most transfers have, ordered by their median time.
  const counts = new Map<string, number[]>()
  for (const s of perTx)
    for (const [k, v] of s) (counts.get(k) ?? counts.set(k, []).get(k)!).push(v)
  const common = [...counts].filter(([, v]) => v.length >= perTx.length * 0.9)
  const ordered = common
    .map(([step, v]) => ({ step, atMs: median(v) }))
    .sort((a, b) => a.atMs - b.atMs)
  const steps: AnatomyStep[] = ordered.map((s, k) => {
    const prev = ordered[k - 1]?.step
    const gaps = perTx
      .filter((x) => x.has(s.step) && (prev === undefined || x.has(prev)))
      .map((x) => x.get(s.step)! - (prev === undefined ? 0 : x.get(prev)!))
    return { step: s.step, atMs: round(s.atMs, 2), sinceLastMs: round(median(gaps), 2) }
  })
  const used = perTx.filter((s) => common.every(([k]) => s.has(k))).length
  return {
    txs: calls.length,
    used,
    p50Ms: round(median(calls.map((c) => c.end - c.start)), 2),
    steps,
  }
}

export function printAnatomy(r: AnatomyResult): void {
  const rows: Row[] = r.steps.map((s) => ({
    step: s.step,
    at_ms: s.atMs,
    since_last_ms: s.sinceLastMs,
  }))
  printTable('Anatomy of a low-load transfer (s = 2, medians per step)', rows, [
    `${r.txs} transfers one at a time, p50 ${r.p50Ms} ms; steps present in at least 90 % of them (${r.used} have all).`,
    'Times are wall clock on the monotonic clock all processes share, so they include waiting for a core; since_last_ms is the median per-transfer gap (transfers whose steps come in another order give negative gaps).',
  ])
}
