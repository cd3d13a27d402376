/**
 * `bench:ab`'s comparison pair by pair. A pair is one devnet of each side, run one after the
 * other; the host's speed drifts by more than most changes gain over a sitting, so comparing
 * sides within each pair and counting the pairs where B was ahead says more than the two
 * overall medians do (bench/README.md, "A/B of builds").
 *
 * The same holds for CPU per transfer, the figure a change to the code moves directly (the rate
 * also depends on how the work spreads over the cores; bench/throughput-analysis.md): each
 * pair's median CPU per transfer of either side, in all and by kind of process, and B against A
 * within the pair.
 */
import { median, round } from './common.ts'

export type PairRow = {
  pair: number
  a_tps: number
  b_tps: number
  b_over_a: number
  /** CPU milliseconds per transfer over the kinds compared (median of the pair's runs). */
  a_cpu_ms?: number
  b_cpu_ms?: number
  cpu_b_over_a?: number
}

export type CpuPairSummary = {
  /** Pairs whose B spent less CPU per transfer than its A. */
  bLower: number
  /** Median over the pairs of B's CPU per transfer divided by A's, in all. */
  medianRatio: number
  /** The same ratio by kind of process. */
  byKind: Record<string, number>
}

export type PairSummary = {
  rows: PairRow[]
  /** Pairs whose B median was above its A median. */
  bAhead: number
  /** Median over the pairs of B's median divided by A's. */
  medianRatio: number
  /** With CPU per transfer given: how it compares pair by pair. */
  cpu?: CpuPairSummary
}

/** CPU milliseconds per transfer of one run, by kind of process. */
export type CpuByKind = Record<string, number>

function sumOf(c: CpuByKind, kinds: readonly string[]): number {
  let n = 0
  for (const k of kinds) n += c[k] ?? 0
  return n
}

/**
 * Compares each pair's medians: `a[i]` and `b[i]` are the counted rates (tx/s) of pair i's two
 * devnets. With `cpu` (each run's CPU per transfer by kind, pair by pair like the rates), also
 * compares CPU per transfer over `cpu.kinds` and by each kind. Throws if the sides do not have
 * the same number of pairs, a pair has no run, or the CPU figures do not match the runs.
 */
export function comparePairs(
  a: number[][],
  b: number[][],
  cpu?: { a: CpuByKind[][]; b: CpuByKind[][]; kinds: readonly string[] },
): PairSummary {
  if (a.length !== b.length || a.length === 0)
    throw new Error(`comparePairs: ${a.length} pairs of A against ${b.length} of B`)
  if (cpu) {
    for (const [label, tps, cpuRuns] of [
      ['A', a, cpu.a],
      ['B', b, cpu.b],
    ] as const) {
      tps.forEach((runs, i) => {
        if (cpuRuns[i]?.length !== runs.length)
          throw new Error(
            `comparePairs: pair ${i + 1} of ${label}: CPU for ${cpuRuns[i]?.length ?? 0} of ${runs.length} runs`,
          )
      })
    }
  }
  const kinds = cpu?.kinds ?? []
  const pairMedian = (runs: CpuByKind[], f: (c: CpuByKind) => number) => median(runs.map(f))
  const rows = a.map((aRuns, i) => {
    const bRuns = b[i]!
    if (aRuns.length === 0 || bRuns.length === 0)
      throw new Error(`comparePairs: pair ${i + 1} has a side without runs`)
    const aMed = median(aRuns)
    const bMed = median(bRuns)
    const row: PairRow = {
      pair: i + 1,
      a_tps: round(aMed, 1),
      b_tps: round(bMed, 1),
      b_over_a: bMed / aMed,
    }
    if (cpu) {
      const aCpu = pairMedian(cpu.a[i]!, (c) => sumOf(c, kinds))
      const bCpu = pairMedian(cpu.b[i]!, (c) => sumOf(c, kinds))
      row.a_cpu_ms = aCpu
      row.b_cpu_ms = bCpu
      row.cpu_b_over_a = bCpu / aCpu
    }
    return row
  })
  const out: PairSummary = {
    rows: rows.map((r) => ({
      ...r,
      b_over_a: round(r.b_over_a, 3),
      ...(r.a_cpu_ms !== undefined
        ? {
            a_cpu_ms: round(r.a_cpu_ms, 3),
            b_cpu_ms: round(r.b_cpu_ms!, 3),
            cpu_b_over_a: round(r.cpu_b_over_a!, 3),
          }
        : {}),
    })),
    bAhead: rows.filter((r) => r.b_over_a > 1).length,
    medianRatio: round(median(rows.map((r) => r.b_over_a)), 3),
  }
  if (cpu) {
    const byKind: Record<string, number> = {}
    for (const k of kinds) {
      // Pairs where A spent nothing of this kind (none measured) say nothing about it.
      const ratios = a.flatMap((_, i) => {
        const aK = pairMedian(cpu.a[i]!, (c) => c[k] ?? 0)
        return aK > 0 ? [pairMedian(cpu.b[i]!, (c) => c[k] ?? 0) / aK] : []
      })
      if (ratios.length > 0) byKind[k] = round(median(ratios), 3)
    }
    out.cpu = {
      bLower: rows.filter((r) => r.cpu_b_over_a! < 1).length,
      medianRatio: round(median(rows.map((r) => r.cpu_b_over_a!)), 3),
      byKind,
    }
  }
  return out
}
