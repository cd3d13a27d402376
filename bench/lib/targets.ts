/**
 * The benchmark issue's targets, checked against the summary in latest.json (so a partial run
 * checks its own sections against the latest figures of the others).
 */
import { PAPER_GAS, worstOfOperation } from '../sections/faults.ts'
import { printTable, type Row, round } from './common.ts'

export type TargetCheck = { target: string; measured: string; met: boolean | null }

type Numbers = Record<string, number | boolean | null | undefined>

export function checkTargets(latest: Record<string, unknown>): TargetCheck[] {
  const tp = (latest.throughput_tps ?? {}) as Numbers
  const lat = (latest.latency_ms ?? {}) as Numbers
  const gas = (latest.gas ?? {}) as Numbers
  const rec = (latest.recovery_s ?? {}) as Numbers
  const mem = (latest.memory ?? {}) as Numbers
  const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : undefined)
  const out: TargetCheck[] = []

  const s2 = num(tp.s2)
  // Where s = 2 ran (bench/lib/placement.ts), and its rate with shared cores beside it.
  const placement =
    typeof latest.throughput_placement === 'string' ? latest.throughput_placement : ''
  const shared = num(tp.s2_shared)
  const placed =
    placement && placement !== 'shared'
      ? ` (${placement}${shared !== undefined ? `; shared cores ${shared}` : ''})`
      : ''
  const bare = num(tp.bare_evm)
  // The bare EVM measured right after s = 2's runs: shown beside the verdict, which uses the
  // fastest bare EVM run (the host only ever slows a run down).
  const besideS2 = num(tp.bare_evm_beside_s2)
  const beside =
    s2 && besideS2
      ? ` (${round((100 * s2) / besideS2, 1)} % of the bare EVM measured right after it, ${besideS2} tx/s)`
      : ''
  const anvil = num(tp.anvil)
  const floor = (latest.floor ?? {}) as Numbers
  /** The sum of the primitives: a bound on any implementation. */
  const ceiling = num(floor.ceiling_tps)
  /**
   * With the architecture's channels, each charged one unbatched round trip: an estimate, not a
   * bound, since the ecall channel batches what one turn of the event loop queues.
   */
  const archCeiling = num(floor.arch_ceiling_tps)
  const floorBare = num(floor.bare_evm_tps) ?? (num(floor.target_tps) ?? 0) * 2
  const sources = (latest.sources ?? {}) as Record<string, unknown>
  /**
   * Whether a throughput target lies above the floor section's ceiling (out of reach). Only
   * figures from one run are compared, and the floor's ceiling is taken relative to the bare
   * EVM rate measured beside it: the machine's speed drifts between runs and between sections
   * of one run. `target` is given as a fraction of the throughput section's bare EVM rate. The
   * verdict comes from the primitives' ceiling alone; the estimate with the channels is shown
   * beside it.
   */
  const cpu = (latest.cpu_ceiling_tps ?? {}) as Numbers
  /**
   * Where the target stands against this run's CPU ceiling: the rate at which every core of the
   * machine would be busy at the CPU time per transfer s = 2 spent (clients included, and
   * without them). A bound for this implementation on this machine, not for any implementation.
   */
  const cpuMs = (latest.cpu_ms_per_tx_s2 ?? {}) as Numbers
  const cpuTotalMs = Object.values(cpuMs).reduce<number>((a, v) => a + (num(v) ?? 0), 0)
  /**
   * s = 2's CPU per transfer over every process, counted in bare-EVM transfers `E` of the run
   * measured right after s = 2's (one measurement for both sides: the host's speed mostly
   * cancels out). The target's rate, `targetTps` (set on the fastest bare EVM run, as the
   * verdict is), is a share `targetTps / besideS2` of that run; on `cores` cores it allows at
   * most `cores · besideS2 / targetTps` of them per transfer, and only with every core always
   * busy. (Until 2026-12-07 the allowance divided by the fastest run while `C` was counted in
   * the run beside s = 2, two different units.)
   */
  const inBareEvm = (targetTps: number, cores: number) => {
    if (cpuTotalMs <= 0 || !besideS2 || cores <= 0 || !(targetTps > 0)) return ''
    const units = (cpuTotalMs * besideS2) / 1000
    const allowed = (cores * besideS2) / targetTps
    return `; CPU per transfer ${round(units, 2)} bare-EVM transfers of the run beside s = 2 (the target, ${round(targetTps, 0)} tx/s, allows ${round(allowed, 2)} of them with every core busy: ${units > allowed ? 'above' : 'within'})`
  }
  const cpuReach = (targetShareOfBare: number) => {
    const targetTps = targetShareOfBare * (bare ?? 0)
    const all = num(cpu.s2)
    const server = num(cpu.s2_server)
    if (all === undefined || !bare) return ''
    const cores = num(cpu.cores) ?? 0
    const verdict = all < targetTps ? '< target' : '≥ target'
    // With the executor's enclave on a core of its own: everything else on the other cores.
    const others = num(cpu.s2_others)
    const onOthers =
      others !== undefined
        ? `, everything but the executor's enclave on ${cores - 1} core${cores - 1 === 1 ? '' : 's'} ${others} (${others < targetTps ? '< target' : '≥ target'})`
        : ''
    return `; CPU ceiling (${cores} cores, s = 2's CPU per transfer) ${all} tx/s ${verdict}${server !== undefined ? `, without the clients ${server}` : ''}${onOthers}${inBareEvm(targetTps, cores)}`
  }
  const reach = (targetShareOfBare: number) => {
    const onCpu = cpuReach(targetShareOfBare)
    if (ceiling === undefined || !bare || !floorBare) return onCpu
    if (sources.floor !== sources.throughput)
      return `${onCpu}; floor ceiling from another run, not compared`
    const share = ceiling / floorBare
    const arch =
      archCeiling !== undefined
        ? ` (with the channels ≈ ${round((100 * archCeiling) / floorBare, 1)} %, an estimate)`
        : ''
    return `${onCpu}; floor ceiling ${ceiling} tx/s = ${round(100 * share, 1)} % of its bare EVM run${arch} ${share < targetShareOfBare ? '< target: out of reach' : '≥ target'}`
  }
  out.push({
    target: 's=2 throughput ≥ 50 % of bare EVM',
    measured:
      s2 && bare
        ? `${s2}${placed} vs ${bare} tx/s = ${round((100 * s2) / bare, 1)} %${beside}${reach(0.5)}`
        : 'not measured',
    met: s2 && bare ? s2 >= bare / 2 : null,
  })
  out.push({
    target: 's=2 throughput ≥ 3 × anvil',
    measured:
      s2 && anvil
        ? `${s2}${placed} vs ${anvil} tx/s = ${round(s2 / anvil, 2)} ×${bare ? ` (target = ${round((300 * anvil) / bare, 1)} % of bare EVM)${reach((3 * anvil) / bare)}` : ''}`
        : 'not measured',
    met: s2 && anvil ? s2 >= 3 * anvil : null,
  })
  const p50 = num(lat.s2_p50)
  out.push({
    target: 's=2 p50 latency < 10 ms at low load',
    measured: p50 !== undefined ? `${p50} ms` : 'not measured',
    met: p50 !== undefined ? p50 < 10 : null,
  })
  // The worst case of each operation: its highest sample over every pool size measured and
  // every variant of the function (a challenge with a payload, the promoted executor's answer).
  const byPool = (latest.gas_by_pool ?? { pool3: gas }) as Record<string, Numbers>
  const gasFigures = Object.fromEntries(
    Object.entries(byPool).map(([pool, figures]) => [
      pool,
      Object.fromEntries(
        Object.entries(figures ?? {}).flatMap(([k, v]) => (num(v) !== undefined ? [[k, v]] : [])),
      ) as Record<string, number>,
    ]),
  )
  for (const [fn, ref] of Object.entries(PAPER_GAS)) {
    const worst = worstOfOperation(gasFigures, fn)
    const where = worst
      ? [
          worst.variant !== fn ? worst.variant : '',
          `pool of ${worst.pool.replace(/^pool/, '')}`,
        ].filter(Boolean)
      : []
    out.push({
      target: `gas ${fn} ≤ ${ref.toLocaleString('en-US')} (paper)`,
      measured: worst
        ? `${worst.gas.toLocaleString('en-US')} (highest sample: ${where.join(', ')})`
        : 'not measured',
      met: worst ? worst.gas <= ref : null,
    })
  }
  const deltas = Object.keys(rec)
    .map((k) => /^executor_crash_delta(\d+)$/.exec(k))
    .filter((m): m is RegExpExecArray => m !== null)
  if (deltas.length === 0) {
    out.push({ target: 'executor crash recovery ≤ Δ + 5 s', measured: 'not measured', met: null })
  }
  for (const m of deltas) {
    const d = Number(m[1])
    const v = num(rec[m[0]])
    out.push({
      target: `executor crash recovery ≤ Δ + 5 s (Δ = ${d} s, autoChallenge)`,
      measured: v !== undefined ? `${v} s` : 'not measured',
      met: v !== undefined ? v <= d + 5 : null,
    })
  }
  const perInstance = num(mem.per_instance_kib)
  // RSS moves with the heap's collection, so a small step in instances (the quick run adds 10)
  // can show no growth or less memory: that says nothing about the target.
  const inconclusive = perInstance !== undefined && perInstance <= 0
  /** The issue's "1 MB": 10^6 bytes. The instance's state (a few slots) is not added to it. */
  const limitBytes = 1_000_000
  const bytes = perInstance !== undefined ? perInstance * 1024 : undefined
  const counts = Object.keys(mem)
    .map((k) => /^enclaves_total_mib_(\d+)$/.exec(k)?.[1])
    .filter((x): x is string => x !== undefined)
  const over = counts.length > 0 ? ` over ${counts.join(', ')} instances` : ''
  out.push({
    target: 'memory per idle instance ≤ 1 MB plus state (all members; against 1,000,000 bytes)',
    measured:
      perInstance === undefined || bytes === undefined
        ? 'not measured'
        : inconclusive
          ? `${perInstance} KiB: RSS noise exceeded the growth, inconclusive (a full run adds 100 instances)`
          : `${perInstance} KiB = ${bytes.toLocaleString('en-US')} bytes (least-squares slope of the enclaves' RSS${over})`,
    met: bytes !== undefined && !inconclusive ? bytes <= limitBytes : null,
  })
  return out
}

export function printTargets(checks: TargetCheck[]): void {
  const rows: Row[] = checks.map((c) => ({
    target: c.target,
    measured: c.measured,
    met: c.met === null ? '–' : c.met ? 'yes' : 'NO',
  }))
  printTable('Targets (from latest.json)', rows, [
    "s = 2's throughput: every simulated user's SDK client runs in the harness's one process, sharing one WebSocket per operator and one cache of recovered receipt signers (as a service acting for many accounts does); its CPU counts against the system's two cores (bench/README.md, throughput).",
    "gas: each operation's highest sample over the pools and the function's variants; memory: the least-squares slope against 1,000,000 bytes.",
  ])
}
