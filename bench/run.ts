/**
 * The benchmark harness (`npm run bench`; `npm run bench -- --quick`; `--only a,b`).
 * Sections: throughput, anatomy, gas, recovery, scaling, memory, state, profile, floor
 * (bench/README.md says what each figure means). Prints one table per section on stdout,
 * progress on stderr, and writes `bench/results/<timestamp>-<mode>.json` (everything measured)
 * and `bench/results/latest.json` (the summary; sections not run keep their previous values,
 * with the file they came from).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import {
  cleanupAll,
  machineInfo,
  progress,
  round,
  sleep,
  stallGuard,
  startForeignCpuMonitor,
} from './lib/common.ts'
import { PLACEMENTS, type Placement } from './lib/placement.ts'
import { checkTargets, printTargets } from './lib/targets.ts'
import { MAX_CLIENTS, missingLoadGeneratorFlags } from './lib/workload.ts'
import { type AnatomyResult, benchAnatomy, printAnatomy } from './sections/anatomy.ts'
import { benchFaults, type FaultsResult } from './sections/faults.ts'
import { benchFloor, type FloorResult, printFloor } from './sections/floor.ts'
import { benchMemory, type MemoryResult } from './sections/memory.ts'
import { benchProfile, type ProfileResult } from './sections/profile.ts'
import { benchScaling, type ScalingResult } from './sections/scaling.ts'
import { benchState, type StateResult } from './sections/state.ts'
import {
  benchThroughput,
  cpuCeilings,
  executorMsAtSaturation,
  type ThroughputResult,
} from './sections/throughput.ts'

const SECTIONS = [
  'throughput',
  'anatomy',
  'gas',
  'recovery',
  'scaling',
  'memory',
  'state',
  'profile',
  'floor',
] as const
type Section = (typeof SECTIONS)[number]

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    skip: { type: 'string' },
    'wait-idle': { type: 'string' },
    'stall-minutes': { type: 'string', default: '10' },
    clients: { type: 'string' },
    placement: { type: 'string', default: 'executor-core' },
    help: { type: 'boolean', default: false },
  },
})

if (values.help) {
  console.log(
    `npm run bench [-- --quick] [--only ${SECTIONS.join(',')}] [--skip ...] [--wait-idle MINUTES] [--stall-minutes MINUTES] [--clients N[,N...]] [--placement ${PLACEMENTS.join('|')}]`,
  )
  process.exit(0)
}

const parseList = (v: string | undefined, flag: string): Section[] => {
  if (!v) return []
  const out = v.split(',').map((s) => s.trim())
  for (const s of out) {
    if (!(SECTIONS as readonly string[]).includes(s)) {
      console.error(
        `bench: --${flag}: unknown section ${JSON.stringify(s)} (${SECTIONS.join(', ')})`,
      )
      process.exit(2)
    }
  }
  return out as Section[]
}
const only = parseList(values.only, 'only')
const skip = parseList(values.skip, 'skip')
const quick = values.quick
/** Sections a quick run leaves out unless `--only` names them (they would pass its 3 minutes). */
const NOT_QUICK: readonly Section[] = ['anatomy']
const selected = SECTIONS.filter(
  (s) =>
    (only.length === 0 ? !(quick && NOT_QUICK.includes(s)) : only.includes(s)) && !skip.includes(s),
)
const stallMinutes = Number(values['stall-minutes'])
if (!(stallMinutes > 0)) {
  console.error(
    `bench: --stall-minutes: expected a positive number, got ${values['stall-minutes']}`,
  )
  process.exit(2)
}
/**
 * Numbers of clients tried for saturation: with 8, the executor's updates carried about 3
 * transfers each and the per-update work capped the rate; at 128 the rate with watchdogs was
 * still rising (s = 2: 1,233 tx/s at 64, 1,505 at 128), and 256 gave 11 % more than 128 in one
 * sitting (bench/README.md, 2026-12-04, late evening).
 */
const satClients = (values.clients ?? (quick ? '16' : '8,16,32,64,128,256,512'))
  .split(',')
  .map((v) => Number(v.trim()))
if (satClients.some((c) => !Number.isInteger(c) || c < 1 || c > MAX_CLIENTS)) {
  console.error(
    `bench: --clients: expected integers from 1 to ${MAX_CLIENTS}, separated by commas; got ${values.clients}`,
  )
  process.exit(2)
}
if (!(PLACEMENTS as readonly string[]).includes(values.placement!)) {
  console.error(
    `bench: --placement: expected one of ${PLACEMENTS.join(', ')}; got ${values.placement}`,
  )
  process.exit(2)
}
const placement = values.placement as Placement
const mode = quick ? 'quick' : 'full'

const RESULTS = join(import.meta.dirname, 'results')
mkdirSync(RESULTS, { recursive: true })
const stamp = new Date().toISOString().replace(/[:.]/g, '-')
const detailedPath = join(RESULTS, `${stamp}-${mode}.json`)

type Detailed = {
  mode: string
  startedAt: string
  sections: Section[]
  durationsS: Partial<Record<Section | 'total', number>>
  /** Cores other workloads on the machine used during each section (see README). */
  foreignCores: Partial<Record<Section | 'total', number>>
  machine: ReturnType<typeof machineInfo>
  /** This process's Node flags: the SDK clients run here (`LOAD_GENERATOR_FLAGS`). */
  nodeFlags: string[]
  throughput?: ThroughputResult
  anatomy?: AnatomyResult
  faults?: FaultsResult
  scaling?: ScalingResult
  memory?: MemoryResult
  state?: StateResult
  profile?: ProfileResult
  floor?: FloorResult
  errors: Partial<Record<Section, string>>
}

const detailed: Detailed = {
  mode,
  startedAt: new Date().toISOString(),
  sections: selected,
  durationsS: {},
  foreignCores: {},
  machine: machineInfo(),
  nodeFlags: process.execArgv,
  errors: {},
}

const t0 = Date.now()
const foreignTotal = startForeignCpuMonitor()
progress(`bench (${mode}): ${selected.join(', ')}`)
const missingFlags = missingLoadGeneratorFlags()
if (missingFlags.length > 0) {
  progress(
    `bench: started without ${missingFlags.join(' ')}: the SDK clients' process will use more CPU than in \`npm run bench\` (see LOAD_GENERATOR_FLAGS in bench/lib/workload.ts)`,
  )
}

/**
 * With --wait-idle M: before each section, waits (up to M minutes) until other workloads use
 * less than 0.15 cores over 5 s, so a shared machine's load does not depress the figures.
 */
async function waitIdle(name: string): Promise<void> {
  const minutes = Number(values['wait-idle'] ?? 0)
  if (!(minutes > 0)) return
  const deadline = Date.now() + minutes * 60_000
  for (;;) {
    const stop = startForeignCpuMonitor(500)
    await sleep(5000)
    const foreign = stop()
    if (foreign < 0.15) return
    if (Date.now() > deadline) {
      progress(`${name}: machine still busy (${foreign} foreign cores); starting anyway`)
      return
    }
    progress(`${name}: waiting for an idle machine (other workloads use ${foreign} cores)`)
  }
}

async function section(name: Section | 'faults', fn: () => Promise<void>): Promise<void> {
  await waitIdle(name)
  const s = Date.now()
  const foreignSection = startForeignCpuMonitor()
  // A section that prints no progress for --stall-minutes fails: its processes are stopped by
  // cleanupAll below and the run goes on with the next section.
  const guard = stallGuard(stallMinutes * 60_000)
  try {
    await Promise.race([fn(), guard.stalled])
  } catch (e) {
    const msg = e instanceof Error ? (e.stack ?? e.message) : String(e)
    progress(`${name}: FAILED: ${msg}`)
    for (const n of name === 'faults' ? (['gas', 'recovery'] as const) : [name])
      if (selected.includes(n)) detailed.errors[n] = msg.split('\n')[0]!
    await cleanupAll()
  } finally {
    guard.stop()
  }
  const secs = round((Date.now() - s) / 1000, 1)
  const foreign = foreignSection()
  for (const n of name === 'faults' ? (['gas', 'recovery'] as const) : [name]) {
    if (!selected.includes(n)) continue
    detailed.durationsS[n] = secs
    detailed.foreignCores[n] = foreign
  }
  progress(
    `${name}: done in ${secs} s` +
      (foreign > 0.2
        ? `; WARNING: other workloads used ${foreign} cores meanwhile, figures are depressed`
        : ''),
  )
}

if (selected.includes('throughput')) {
  await section('throughput', async () => {
    detailed.throughput = await benchThroughput(
      quick
        ? {
            bareTxs: 2_000,
            clients: satClients,
            lowTxs: 40,
            satTxs: 120,
            anvilSatTxs: 120,
            minTxsPerClient: 1,
            repeats: 1,
            watchdogCounts: [0, 1, 2, 4],
            placement,
          }
        : {
            bareTxs: 10_000,
            clients: satClients,
            lowTxs: 200,
            satTxs: 2_560,
            anvilSatTxs: 1_280,
            minTxsPerClient: 30,
            repeats: 3,
            watchdogCounts: [0, 1, 2, 4],
            placement,
          },
    )
  })
}
if (selected.includes('anatomy')) {
  await section('anatomy', async () => {
    detailed.anatomy = await benchAnatomy({ txs: 200 })
    printAnatomy(detailed.anatomy)
  })
}
if (selected.includes('gas') || selected.includes('recovery')) {
  await section('faults', async () => {
    detailed.faults = await benchFaults({
      quick,
      gas: selected.includes('gas'),
      recovery: selected.includes('recovery'),
    })
    const failed = detailed.faults.scenarios.filter((x) => x.error)
    if (failed.length > 0) {
      const msg = failed
        .map(
          (x) =>
            `pool ${x.pool}, Δ=${x.delta} s${x.timeTravel ? ' (time travel)' : ''}: ${x.error}`,
        )
        .join('; ')
      for (const n of ['gas', 'recovery'] as const)
        if (selected.includes(n)) detailed.errors[n] = `scenario failed: ${msg}`
    }
  })
}
if (selected.includes('scaling')) {
  await section('scaling', async () => {
    detailed.scaling = await benchScaling(
      quick
        ? {
            operators: 8,
            clients: 32,
            txsPerClient: 4,
            instanceCounts: [1, 2, 4],
            warmupPerClient: 4,
            repeats: 1,
          }
        : {
            operators: 8,
            clients: 32,
            txsPerClient: 40,
            instanceCounts: [1, 2, 4],
            warmupPerClient: 40,
            repeats: 3,
          },
    )
  })
}
if (selected.includes('memory')) {
  await section('memory', async () => {
    detailed.memory = await benchMemory(
      quick
        ? { operators: 4, instanceCounts: [1, 10], settleMs: 1500, idleMs: 3000 }
        : { operators: 4, instanceCounts: [1, 10, 100], settleMs: 3000, idleMs: 5000 },
    )
  })
}
if (selected.includes('state')) {
  await section('state', async () => {
    detailed.state = await benchState(
      quick
        ? { slotCounts: [1_000, 10_000], updates: 100 }
        : { slotCounts: [1_000, 10_000, 100_000], updates: 300 },
    )
  })
}
if (selected.includes('profile')) {
  await section('profile', async () => {
    detailed.profile = await benchProfile(quick ? { txs: 300, batch: 8 } : { txs: 1_000, batch: 8 })
  })
}
if (selected.includes('floor')) {
  await section('floor', async () => {
    detailed.floor = await benchFloor(
      quick
        ? { iterations: 2_000, bareTxs: 3_000, channelRequests: 1_000 }
        : { iterations: 10_000, bareTxs: 10_000, channelRequests: 20_000 },
    )
    printFloor(detailed.floor)
  })
}
await cleanupAll()
detailed.durationsS.total = round((Date.now() - t0) / 1000, 1)
detailed.foreignCores.total = foreignTotal()

// ------------------------------------------------------------------ latest.json

type Latest = Record<string, unknown> & { sources?: Record<string, string> }
const latestPath = join(RESULTS, 'latest.json')
let previous: Latest = {}
if (existsSync(latestPath)) {
  try {
    previous = JSON.parse(readFileSync(latestPath, 'utf8')) as Latest
  } catch {}
}
const latest: Latest = { ...previous, machine: detailed.machine }
const sources: Record<string, string> = { ...(previous.sources ?? {}) }
const file = detailedPath.slice(RESULTS.length + 1)
// A section that failed part-way still reports what it measured; its error is in last_run.
const ok = (s: Section) => selected.includes(s)

const tp = detailed.throughput
if (ok('throughput') && tp) {
  const bySat = Object.fromEntries(tp.pose.map((p) => [`s${p.s}`, p.saturation.tps]))
  latest.throughput_tps = {
    bare_evm: tp.bareEvm.tps,
    // The same world on @ethereumjs/evm as shipped (what bare_evm measured before 2026-12-05).
    ...(tp.bareEvmStock ? { bare_evm_stock: tp.bareEvmStock.tps } : {}),
    anvil: tp.anvil.saturation.tps,
    ...bySat,
    // s = 2 with every process on every core, when the runs above gave the executor a core.
    ...Object.fromEntries(
      tp.pose.flatMap((p) => (p.shared ? [[`s${p.s}_shared`, p.shared.median.tps]] : [])),
    ),
    // The bare EVM measured right after s = 2's saturation runs (the host drifts within a run).
    ...Object.fromEntries(
      tp.pose.flatMap((p) => (p.bareBeside ? [[`bare_evm_beside_s${p.s}`, p.bareBeside.tps]] : [])),
    ),
    // s = 2 over HTTP POSTs instead of the WebSocket API (alternating runs, medians).
    ...(tp.apiTransport
      ? { s2_api_ws: tp.apiTransport.tps.ws, s2_api_http: tp.apiTransport.tps.http }
      : {}),
  }
  // Where s = 2 ran (the targets' figure); every instance's placement is in the detailed file.
  latest.throughput_placement = (tp.pose.find((p) => p.s === 2) ?? tp.pose[0])?.placement ?? null
  // How many clients reached each saturation rate (the best of those `--clients` tried).
  latest.saturation_clients = {
    anvil: tp.anvil.saturation.clients,
    ...Object.fromEntries(tp.pose.map((p) => [`s${p.s}`, p.saturation.clients])),
  }
  // Systems whose best came with the largest number of clients tried: saturation not shown.
  const atLargest = [
    ...(tp.anvil.atLargestTried ? ['anvil'] : []),
    ...tp.pose.filter((p) => p.atLargestTried).map((p) => `s${p.s}`),
  ]
  if (atLargest.length > 0) latest.saturation_at_largest_tried = atLargest
  else delete latest.saturation_at_largest_tried
  // And those whose best came with the smallest number tried: fewer clients might give more.
  const atSmallest = [
    ...(tp.anvil.atSmallestTried ? ['anvil'] : []),
    ...tp.pose.filter((p) => p.atSmallestTried).map((p) => `s${p.s}`),
  ]
  if (atSmallest.length > 0) latest.saturation_at_smallest_tried = atSmallest
  else delete latest.saturation_at_smallest_tried
  const s2 = tp.pose.find((p) => p.s === 2)
  // The rate at which every core would be busy at s = 2's CPU time per transfer (targets).
  const exec = s2 && executorMsAtSaturation(s2)
  const c = s2 && cpuCeilings(s2.cpuMsPerTx, exec)
  latest.cpu_ceiling_tps = c
    ? {
        s2: c.all,
        s2_server: c.server,
        cores: c.cores,
        ...(c.others ? { s2_others: c.others } : {}),
      }
    : null
  // The executor's enclave apart from the other processes, at s = 2's saturation.
  if (s2 && exec !== undefined) {
    const ms = s2.cpuMsPerTx
    latest.cpu_ms_per_tx_s2 = {
      clients: ms.bench,
      operators: ms.operators,
      executor: exec,
      watchdogs: round(ms.enclaves - exec, 3),
      anvil: ms.anvil,
    }
  } else delete latest.cpu_ms_per_tx_s2
  latest.latency_ms = {
    s2_p50: s2?.low.latencyMs.p50 ?? null,
    s2_p99: s2?.low.latencyMs.p99 ?? null,
    s2_saturation_p50: s2?.saturation.latencyMs.p50 ?? null,
    s2_saturation_p99: s2?.saturation.latencyMs.p99 ?? null,
    anvil_p50: tp.anvil.low.latencyMs.p50,
    anvil_p99: tp.anvil.low.latencyMs.p99,
  }
  sources.throughput = file
}
if (ok('anatomy') && detailed.anatomy) {
  // Median milliseconds from the SDK call to each step of a low-load s = 2 transfer.
  latest.latency_anatomy_ms = {
    p50: detailed.anatomy.p50Ms,
    ...Object.fromEntries(detailed.anatomy.steps.map((x) => [x.step, x.atMs])),
  }
  sources.anatomy = file
}
const f = detailed.faults
if (ok('gas') && f) {
  latest.gas = f.gasSummary
  latest.gas_by_pool = f.gasByPool
  sources.gas = file
}
if (ok('recovery') && f) {
  latest.recovery_s = f.recoverySummary
  sources.recovery = file
}
if (ok('scaling') && detailed.scaling) {
  latest.scaling_tps = detailed.scaling.summary
  sources.scaling = file
}
if (ok('memory') && detailed.memory) {
  latest.memory = detailed.memory.summary
  sources.memory = file
}
if (ok('state') && detailed.state) {
  latest.state = detailed.state.summary
  sources.state = file
}
if (ok('profile') && detailed.profile) {
  latest.enclave_inprocess_tps = {
    s2_sequential: detailed.profile.sequentialTps,
    s2_batched: detailed.profile.batchedTps,
  }
  sources.profile = file
}
if (ok('floor') && detailed.floor) {
  latest.floor = {
    us_per_tx: detailed.floor.floorUsPerTx,
    ceiling_tps: detailed.floor.ceilingTps,
    server_ceiling_tps: detailed.floor.serverCeilingTps,
    arch_us_per_tx: detailed.floor.archFloorUsPerTx,
    arch_ceiling_tps: detailed.floor.archCeilingTps,
    target_tps: detailed.floor.targetTps,
    bare_evm_tps: detailed.floor.bareEvmTps,
  }
  sources.floor = file
}
latest.sources = sources
const targets = checkTargets(latest)
latest.targets = targets
printTargets(targets)
latest.last_run = {
  file,
  mode,
  sections: selected,
  duration_s: detailed.durationsS.total,
  foreign_cores: detailed.foreignCores,
  errors: detailed.errors,
}

writeFileSync(detailedPath, `${JSON.stringify(detailed, replacer, 2)}\n`)
writeFileSync(latestPath, `${JSON.stringify(latest, replacer, 2)}\n`)
const failed = Object.keys(detailed.errors)
console.log(
  `\nbench ${mode}: ${selected.join(', ')} in ${detailed.durationsS.total} s; results: ${detailedPath}, ${latestPath}` +
    (failed.length ? `\nFAILED sections: ${failed.join(', ')}` : ''),
)
process.exit(failed.length ? 1 : 0)

function replacer(_k: string, v: unknown): unknown {
  return typeof v === 'bigint' ? Number(v) : v
}
