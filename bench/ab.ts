/**
 * A/B of two builds or two settings at saturation (`npm run bench:ab -- --b-dir ../other`):
 * devnets of side A and side B take turns, each running a PrivateToken instance with `s`
 * watchdogs under `clients` concurrent clients for several runs; the first runs of every devnet
 * warm it up and are left out. Saturation rates on a shared machine drift by ±15 % over
 * minutes, more than most changes gain, so only settings measured alternately in one sitting
 * are compared (bench/README.md, "A/B of builds").
 *
 * A side is a checkout (`--a-dir`, `--b-dir`; default: this one), built with `npm run build`
 * beforehand, plus environment for its devnet's processes (`--a-env`, `--b-env`: `K=V`
 * separated by spaces, a value running up to the next ` NAME=`, see `lib/envSpec.ts`; the
 * enclave processes inherit the operators' environment). Each devnet
 * runs in a child process started in its side's directory (`node --import tsx bench/ab.ts
 * --child`), so an older checkout needs this file copied in.
 *
 * `--a-place` / `--b-place` (default `executor-core`, as `npm run bench`; or `shared`) say
 * where the side's processes run (`lib/placement.ts`; an older checkout needs that file too).
 *
 * Prints one row per side (median rate with its range, median p50 latency, CPU per transfer by
 * kind of process), then the sides pair by pair (rate and CPU per transfer, B / A within each
 * pair; `lib/pairs.ts`), and writes `bench/results/<timestamp>-ab.json` with every run.
 */
import { spawn } from 'node:child_process'
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { parseEnvSpec } from './lib/envSpec.ts'
import type { ProcessKind } from './lib/procs.ts'
import { LOAD_GENERATOR_FLAGS } from './lib/workload.ts'

type RunResult = {
  tps: number
  p50: number
  /** By kind of process; `bench` = the process of the SDK clients. */
  cpuMsPerTx: Record<ProcessKind, number>
  /**
   * The busiest enclave main thread (the executor's) during the run, in % of its wall time: on a
   * core, and runnable waiting for one. Absent without Linux `schedstat` (or from an older child).
   */
  executor?: { runPct: number; waitPct: number }
}

const { values } = parseArgs({
  options: {
    child: { type: 'boolean', default: false },
    'a-dir': { type: 'string' },
    'b-dir': { type: 'string' },
    'a-env': { type: 'string', default: '' },
    'b-env': { type: 'string', default: '' },
    'a-place': { type: 'string', default: 'executor-core' },
    'b-place': { type: 'string', default: 'executor-core' },
    place: { type: 'string', default: 'shared' },
    pairs: { type: 'string', default: '3' },
    runs: { type: 'string', default: '6' },
    warm: { type: 'string', default: '2' },
    clients: { type: 'string', default: '64' },
    'a-clients': { type: 'string' },
    'b-clients': { type: 'string' },
    txs: { type: 'string', default: '1600' },
    s: { type: 'string', default: '2' },
    operators: { type: 'string', default: '3' },
    help: { type: 'boolean', default: false },
  },
})

function int(name: keyof typeof values, min: number, max: number, fallback?: string): number {
  const v = Number(values[name] ?? fallback)
  if (!Number.isInteger(v) || v < min || v > max) {
    console.error(
      `bench:ab: --${name}: expected an integer from ${min} to ${max}, got ${values[name]}`,
    )
    process.exit(2)
  }
  return v
}

if (values.help) {
  console.log(
    'npm run bench:ab -- [--a-dir DIR] [--b-dir DIR] [--a-env "K=V ..."] [--b-env "K=V ..."] [--a-place executor-core|shared] [--b-place ...] [--pairs 3] [--runs 6] [--warm 2] [--clients 64] [--a-clients N] [--b-clients N] [--txs 1600] [--s 2] [--operators 3]',
  )
  process.exit(0)
}

/**
 * `MAX_CLIENTS` of bench/lib/workload.ts, not imported: a copy of this file runs in older
 * checkouts (the child side).
 */
const MAX_CLIENTS = 512

/** `PLACEMENTS` of bench/lib/placement.ts, not imported (see `MAX_CLIENTS`). */
const PLACES = ['shared', 'executor-core']
function place(name: 'a-place' | 'b-place' | 'place'): string {
  const v = values[name]!
  if (!PLACES.includes(v)) {
    console.error(`bench:ab: --${name}: expected one of ${PLACES.join(', ')}, got ${v}`)
    process.exit(2)
  }
  return v
}

const cfg = {
  runs: int('runs', 1, 50),
  warm: int('warm', 0, 49),
  clients: int('clients', 1, MAX_CLIENTS),
  txs: int('txs', 1, 100_000),
  s: int('s', 0, 10),
  operators: int('operators', 1, 16),
}
if (cfg.warm >= cfg.runs) {
  console.error(`bench:ab: --warm (${cfg.warm}) must be below --runs (${cfg.runs})`)
  process.exit(2)
}
if (cfg.operators < cfg.s + 1) {
  console.error(`bench:ab: --operators (${cfg.operators}) must be at least s + 1 (${cfg.s + 1})`)
  process.exit(2)
}

try {
  if (values.child) await child()
  else await parent()
} catch (e) {
  console.error(`bench:ab: ${(e as Error).message}`)
  process.exit(1)
}

/** One devnet of one side: prints a JSON line per measured run on stdout. */
async function child(): Promise<void> {
  const { progress, withDevnet } = await import('./lib/common.ts')
  const { busiestThread, cpuByKind, cpuPerTx, enclaveSched } = await import('./lib/procs.ts')
  const { deployToken, devnetClients, runLoad } = await import('./lib/workload.ts')
  await withDevnet({ operators: cfg.operators, users: cfg.clients }, async (devnet) => {
    const clients = await devnetClients(devnet)
    const instance = await deployToken(clients[0]!, clients, cfg.s)
    await runLoad(clients, [instance], 3) // nonces, instance info, JIT in every process
    if (place('place') === 'executor-core') {
      const { executorEnclavePid, placeExecutor } = await import('./lib/placement.ts')
      placeExecutor(devnet, await executorEnclavePid(devnet, clients[0]!, instance))
    }
    const perClient = Math.max(1, Math.round(cfg.txs / clients.length))
    for (let i = 0; i < cfg.runs; i++) {
      const before = cpuByKind(devnet)
      const sched0 = enclaveSched(devnet)
      const t0 = performance.now()
      const r = await runLoad(clients, [instance], perClient)
      const executor = busiestThread(sched0, enclaveSched(devnet), performance.now() - t0)
      const cpuMsPerTx = cpuPerTx(devnet, before, r.txs, 3)
      progress(`run ${i + 1}/${cfg.runs}: ${r.tps} tx/s, p50 ${r.latencyMs.p50} ms`)
      if (i < cfg.warm) continue
      const out: RunResult = {
        tps: r.tps,
        p50: r.latencyMs.p50,
        cpuMsPerTx,
        ...(executor ? { executor } : {}),
      }
      console.log(JSON.stringify(out))
    }
  })
  process.exit(0)
}

function runChild(
  dir: string,
  env: Record<string, string>,
  label: string,
  clients: number,
  placement: string,
): Promise<RunResult[]> {
  // The clients' process, as in `npm run bench`; the devnet's processes keep Node's defaults.
  const args = [...LOAD_GENERATOR_FLAGS, '--import', 'tsx', 'bench/ab.ts', '--child']
  args.push('--clients', String(clients))
  if (placement !== 'shared') args.push('--place', placement)
  for (const k of ['runs', 'warm', 'txs', 's', 'operators'] as const)
    args.push(`--${k}`, String(cfg[k]))
  return new Promise((resolveRuns, reject) => {
    const p = spawn(process.execPath, args, {
      cwd: dir,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    p.stdout.on('data', (d) => {
      out += d
    })
    p.stderr.on('data', (d: Buffer) => {
      for (const line of d.toString().split('\n').filter(Boolean))
        process.stderr.write(`[${label}] ${line}\n`)
    })
    p.on('error', reject)
    p.on('exit', (code) => {
      const runs = out
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as RunResult)
      if (code !== 0 || runs.length === 0)
        reject(new Error(`side ${label}: devnet run exited with code ${code} in ${dir}`))
      else resolveRuns(runs)
    })
  })
}

async function parent(): Promise<void> {
  const { median, printTable, progress, round } = await import('./lib/common.ts')
  const { comparePairs } = await import('./lib/pairs.ts')
  const pairs = int('pairs', 1, 20)
  const here = resolve(import.meta.dirname, '..')
  const sides = [
    {
      label: 'A',
      dir: resolve(values['a-dir'] ?? here),
      env: parseEnvSpec(values['a-env']!, '--a-env'),
      clients: int('a-clients', 1, MAX_CLIENTS, values.clients),
      placement: place('a-place'),
    },
    {
      label: 'B',
      dir: resolve(values['b-dir'] ?? here),
      env: parseEnvSpec(values['b-env']!, '--b-env'),
      clients: int('b-clients', 1, MAX_CLIENTS, values.clients),
      placement: place('b-place'),
    },
  ]
  for (const side of sides) {
    if (!existsSync(join(side.dir, 'bench', 'ab.ts')))
      throw new Error(
        `side ${side.label}: no bench/ab.ts in ${side.dir} (copy it into that checkout)`,
      )
    if (!existsSync(join(side.dir, 'dist', 'enclave.mjs')))
      throw new Error(`side ${side.label}: ${side.dir} is not built (npm run build there first)`)
  }
  const runs: Record<string, RunResult[]> = { A: [], B: [] }
  /** Each side's counted rates, devnet by devnet (one devnet per side and pair). */
  const byPair: Record<string, number[][]> = { A: [], B: [] }
  /** The same runs' CPU per transfer by kind of process. */
  const cpuByPair: Record<string, Record<ProcessKind, number>[][]> = { A: [], B: [] }
  for (let i = 0; i < pairs; i++) {
    for (const side of sides) {
      progress(`ab: pair ${i + 1}/${pairs}, side ${side.label}`)
      const r = await runChild(side.dir, side.env, side.label, side.clients, side.placement)
      runs[side.label]!.push(...r)
      byPair[side.label]!.push(r.map((x) => x.tps))
      cpuByPair[side.label]!.push(r.map((x) => x.cpuMsPerTx))
    }
  }
  const schedPct = (r: RunResult[], k: 'runPct' | 'waitPct') => {
    const xs = r.flatMap((x) => (x.executor ? [x.executor[k]] : []))
    return xs.length > 0 ? round(median(xs), 1) : '–'
  }
  const rows = sides.map((side) => {
    const r = runs[side.label]!
    const tps = r.map((x) => x.tps)
    const cpu = (k: ProcessKind) => round(median(r.map((x) => x.cpuMsPerTx[k])), 3)
    const total = round(
      median(r.map((x) => x.cpuMsPerTx.operators + x.cpuMsPerTx.enclaves + x.cpuMsPerTx.bench)),
      3,
    )
    return {
      side: side.label,
      dir: side.dir,
      env: Object.entries(side.env)
        .map(([k, v]) => `${k}=${v}`)
        .join(' '),
      place: side.placement,
      clients: side.clients,
      runs: r.length,
      median_tps: round(median(tps), 1),
      range_tps: `${Math.min(...tps)}–${Math.max(...tps)}`,
      p50_ms: round(median(r.map((x) => x.p50)), 2),
      cpu_ms_operators: cpu('operators'),
      cpu_ms_enclaves: cpu('enclaves'),
      cpu_ms_clients: cpu('bench'),
      cpu_ms_total: total,
      exec_run_pct: schedPct(r, 'runPct'),
      exec_wait_pct: schedPct(r, 'waitPct'),
    }
  })
  printTable(
    `A/B at saturation: s = ${cfg.s}, ${cfg.operators} operators, ${cfg.txs} transfers per run`,
    rows,
    [
      `${pairs} devnets per side, alternating; runs ${cfg.warm + 1}–${cfg.runs} of each counted.`,
      'cpu_ms_* = CPU milliseconds per transfer by kind of process (clients: the process of the SDK clients).',
      "exec_*_pct = the executor enclave's main thread (the busiest enclave thread), % of each run's wall time: on a core (run) and runnable without one (wait); the rest it had nothing to do.",
    ],
  )
  // The kinds `cpu_ms_total` sums: anvil's share is the same work on both sides.
  const kinds = ['operators', 'enclaves', 'bench'] as const
  const perPair = comparePairs(byPair.A!, byPair.B!, {
    a: cpuByPair.A!,
    b: cpuByPair.B!,
    kinds,
  })
  const byKind = perPair.cpu?.byKind ?? {}
  printTable('A/B pair by pair: median tx/s and CPU ms per transfer of each devnet', perPair.rows, [
    `B ahead in ${perPair.bAhead} of ${pairs} pairs; median of B / A over the pairs ${perPair.medianRatio}.`,
    `B's CPU per transfer (operators, enclaves, clients) lower in ${perPair.cpu?.bLower ?? 0} of ${pairs} pairs; median of B / A over the pairs ${perPair.cpu?.medianRatio ?? '–'} (operators ${byKind.operators ?? '–'}, enclaves ${byKind.enclaves ?? '–'}, clients ${byKind.bench ?? '–'}).`,
  ])
  const dir = join(import.meta.dirname, 'results')
  mkdirSync(dir, { recursive: true })
  const file = join(dir, `${new Date().toISOString().replace(/[:.]/g, '-')}-ab.json`)
  writeFileSync(
    file,
    `${JSON.stringify({ config: { ...cfg, pairs }, sides, rows, pairs: perPair, runs }, null, 2)}\n`,
  )
  progress(`ab: results in ${file}`)
}
