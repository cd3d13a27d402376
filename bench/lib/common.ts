/**
 * Shared pieces of the benchmark harness: progress lines, statistics, tables, process memory,
 * machine facts, and cleanup of every process the harness starts (even on error or Ctrl-C).
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { arch, cpus, loadavg, release, tmpdir, totalmem, type } from 'node:os'
import { join } from 'node:path'
import type { Devnet, DevnetOptions } from '../../src/devnet/devnet.ts'
import { startDevnet } from '../../src/devnet/devnet.ts'

const started = Date.now()
let lastProgress = { at: started, line: '(none yet)' }

/** One progress line on stderr, prefixed with the time since the harness started. */
export function progress(line: string): void {
  const s = ((Date.now() - started) / 1000).toFixed(1).padStart(6)
  process.stderr.write(`[${s} s] ${line}\n`)
  lastProgress = { at: Date.now(), line }
}

/**
 * Rejects once no progress line has been printed for `stallMs`, naming the last one, so a
 * section that stops making progress fails instead of holding the run (and the machine) open.
 * Call the returned `stop` when the guarded work ends.
 */
export function stallGuard(stallMs: number): { stalled: Promise<never>; stop: () => void } {
  let timer: NodeJS.Timeout | undefined
  const stalled = new Promise<never>((_, reject) => {
    const check = () => {
      const idle = Date.now() - lastProgress.at
      if (idle >= stallMs) {
        reject(
          new Error(
            `no progress for ${Math.round(idle / 1000)} s (last: ${JSON.stringify(lastProgress.line)})`,
          ),
        )
        return
      }
      timer = setTimeout(check, Math.min(stallMs - idle + 10, 30_000))
    }
    timer = setTimeout(check, Math.min(stallMs, 30_000))
  })
  stalled.catch(() => undefined)
  return { stalled, stop: () => clearTimeout(timer) }
}

/** Settles like `p`, or rejects naming `what` after `ms`. */
export async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms)
  })
  try {
    return await Promise.race([p, timeout])
  } finally {
    clearTimeout(timer)
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

/** Polls `check` until it holds; throws naming `what` after `timeoutMs`. */
export async function waitFor(
  what: string,
  check: () => Promise<boolean> | boolean,
  timeoutMs = 60_000,
  intervalMs = 50,
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(intervalMs)
  }
}

// ------------------------------------------------------------------ statistics

/** Nearest-rank percentile of an ascending array (p in 0..100). */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN
  const rank = Math.ceil((p / 100) * sorted.length)
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!
}

export type LatencySummary = { n: number; p50: number; p99: number; mean: number; max: number }

export function summarize(samples: number[]): LatencySummary {
  const s = [...samples].sort((a, b) => a - b)
  const mean = s.reduce((a, b) => a + b, 0) / Math.max(1, s.length)
  return {
    n: s.length,
    p50: round(percentile(s, 50), 2),
    p99: round(percentile(s, 99), 2),
    mean: round(mean, 2),
    max: round(s.at(-1) ?? Number.NaN, 2),
  }
}

export function median(values: number[]): number {
  return percentile(
    [...values].sort((a, b) => a - b),
    50,
  )
}

export function round(v: number, digits = 1): number {
  const f = 10 ** digits
  return Math.round(v * f) / f
}

// ------------------------------------------------------------------ tables

export type Cell = string | number | bigint | boolean | null | undefined
export type Row = Record<string, Cell>

const show = (c: Cell): string => {
  if (c === null || c === undefined) return '–'
  if (typeof c === 'number') {
    if (!Number.isFinite(c)) return '–'
    return Number.isInteger(c) ? c.toLocaleString('en-US') : String(c)
  }
  return String(c)
}

/** Prints rows as an aligned text table on stdout (numbers right-aligned). */
export function printTable(title: string, rows: Row[], notes: string[] = []): void {
  const cols = [...new Set(rows.flatMap((r) => Object.keys(r)))]
  const cells = rows.map((r) => cols.map((c) => show(r[c])))
  const numeric = cols.map((c) =>
    rows.every((r) => r[c] === undefined || r[c] === null || typeof r[c] !== 'string'),
  )
  const widths = cols.map((c, i) => Math.max(c.length, ...cells.map((r) => r[i]!.length)))
  const line = (vals: string[]) =>
    vals.map((v, i) => (numeric[i] ? v.padStart(widths[i]!) : v.padEnd(widths[i]!))).join('  ')
  const out = [`\n## ${title}\n`, line(cols), widths.map((w) => '-'.repeat(w)).join('  ')]
  for (const r of cells) out.push(line(r))
  for (const n of notes) out.push(`  ${n}`)
  console.log(out.join('\n'))
}

// ------------------------------------------------------------------ processes

/** Resident set size of a process in KiB, from /proc (undefined if it is gone). */
export function rssKiB(pid: number | undefined): number | undefined {
  if (!pid) return undefined
  try {
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m ? Number(m[1]) : undefined
  } catch {
    return undefined
  }
}

/** CPU time (user + system) of a process in seconds, from /proc. */
export function cpuSeconds(pid: number | undefined): number | undefined {
  if (!pid) return undefined
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
    return (Number(fields[11]) + Number(fields[12])) / 100
  } catch {
    return undefined
  }
}

type ProcStat = { pid: number; ppid: number; cpuTicks: number; start: number }

function readProcStats(): ProcStat[] {
  const out: ProcStat[] = []
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    try {
      const text = readFileSync(`/proc/${name}/stat`, 'utf8')
      // Fields after "(comm)": state ppid ... utime(14) stime(15) ... starttime(22), 1-based.
      const f = text.slice(text.lastIndexOf(')') + 2).split(' ')
      out.push({
        pid: Number(name),
        ppid: Number(f[1]),
        cpuTicks: Number(f[11]) + Number(f[12]),
        start: Number(f[19]),
      })
    } catch {}
  }
  return out
}

/**
 * Measures the CPU other workloads take while a section runs: samples every process in /proc
 * once a second and sums the CPU time of those outside this process's tree. A process is ours
 * if it descended from this process when first seen (so an enclave orphaned by a killed
 * operator stays ours). Returns a stop function giving the average foreign cores.
 */
export function startForeignCpuMonitor(intervalMs = 1000): () => number {
  const hz = 100
  const uptime = () => Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]) * hz
  const startTicks = uptime()
  const t0 = Date.now()
  const ours = new Set<string>()
  const last = new Map<string, number>()
  let foreignTicks = 0
  const sample = () => {
    const stats = readProcStats()
    const parent = new Map(stats.map((x) => [x.pid, x.ppid]))
    for (const x of stats) {
      const key = `${x.pid}:${x.start}`
      if (!last.has(key)) {
        let p: number | undefined = x.pid
        for (let depth = 0; p !== undefined && p > 1 && depth < 64; depth++) {
          if (p === process.pid) {
            ours.add(key)
            break
          }
          p = parent.get(p)
        }
        // A foreign process born during the section counts from its start.
        if (!ours.has(key) && x.start >= startTicks) foreignTicks += x.cpuTicks
      } else if (!ours.has(key)) {
        foreignTicks += Math.max(0, x.cpuTicks - last.get(key)!)
      }
      last.set(key, x.cpuTicks)
    }
  }
  sample()
  const timer = setInterval(sample, intervalMs)
  timer.unref()
  return () => {
    clearInterval(timer)
    sample()
    const wall = (Date.now() - t0) / 1000
    return wall > 0 ? round(foreignTicks / hz / wall, 2) : 0
  }
}

export type MachineInfo = {
  cpu: string
  cores: number
  node: string
  os: string
  memoryGiB: number
  loadAverageAtStart: number[]
}

export function machineInfo(): MachineInfo {
  const c = cpus()
  return {
    cpu: c[0]?.model.trim() ?? 'unknown',
    cores: c.length,
    node: process.version,
    os: `${type()} ${release()} ${arch()}`,
    memoryGiB: round(totalmem() / 2 ** 30, 1),
    loadAverageAtStart: loadavg().map((x) => round(x, 2)),
  }
}

const cleanups = new Set<() => Promise<void>>()

/** Registers a cleanup run on exit paths (including SIGINT/SIGTERM); returns its remover. */
export function onCleanup(fn: () => Promise<void>): () => void {
  cleanups.add(fn)
  return () => cleanups.delete(fn)
}

export async function cleanupAll(): Promise<void> {
  const all = [...cleanups]
  cleanups.clear()
  await Promise.all(all.map((f) => f().catch(() => undefined)))
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    progress(`${signal}: stopping every process the benchmark started`)
    void cleanupAll().finally(() => process.exit(130))
  })
}

/**
 * Starts a devnet, runs `fn` with it, and stops it whatever happens. Its data directory is the
 * harness's own (`bench-devnet-*` in the temp directory, removed afterwards unless
 * POSE_KEEP_DEVNET is set), so cleanups of other devnets' directories cannot remove it mid-run.
 */
export async function withDevnet<T>(
  opts: DevnetOptions,
  fn: (devnet: Devnet) => Promise<T>,
): Promise<T> {
  const t0 = Date.now()
  const dir = mkdtempSync(join(tmpdir(), 'bench-devnet-'))
  const removeDir = () => {
    if (!process.env.POSE_KEEP_DEVNET) rmSync(dir, { recursive: true, force: true })
  }
  let devnet: Devnet
  try {
    devnet = await startDevnet({ ...opts, dir })
  } catch (e) {
    removeDir()
    throw e
  }
  progress(
    `devnet up: ${devnet.operators.length} operators, ${devnet.userKeys.length} users (${((Date.now() - t0) / 1000).toFixed(1)} s; ${devnet.dir})`,
  )
  const stop = async () => {
    await devnet.stop()
    removeDir()
  }
  const remove = onCleanup(stop)
  try {
    return await fn(devnet)
  } finally {
    remove()
    await stop()
  }
}
