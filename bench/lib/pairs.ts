/**
 * `bench:ab`'s comparison pair by pair. A pair is one devnet of each side, run one after the
 * other; the host's speed drifts by more than most changes gain over a sitting, so comparing
 * sides within each pair and counting the pairs where B was ahead says more than the two
 * overall medians do (bench/README.md, "A/B of builds").
 */
import { median, round } from './common.ts'

export type PairRow = { pair: number; a_tps: number; b_tps: number; b_over_a: number }

export type PairSummary = {
  rows: PairRow[]
  /** Pairs whose B median was above its A median. */
  bAhead: number
  /** Median over the pairs of B's median divided by A's. */
  medianRatio: number
}

/**
 * Compares each pair's medians: `a[i]` and `b[i]` are the counted rates (tx/s) of pair i's two
 * devnets. Throws if the sides do not have the same number of pairs or a pair has no run.
 */
export function comparePairs(a: number[][], b: number[][]): PairSummary {
  if (a.length !== b.length || a.length === 0)
    throw new Error(`comparePairs: ${a.length} pairs of A against ${b.length} of B`)
  const rows = a.map((aRuns, i) => {
    const bRuns = b[i]!
    if (aRuns.length === 0 || bRuns.length === 0)
      throw new Error(`comparePairs: pair ${i + 1} has a side without runs`)
    const aMed = median(aRuns)
    const bMed = median(bRuns)
    return { pair: i + 1, a_tps: round(aMed, 1), b_tps: round(bMed, 1), b_over_a: bMed / aMed }
  })
  return {
    rows: rows.map((r) => ({ ...r, b_over_a: round(r.b_over_a, 3) })),
    bAhead: rows.filter((r) => r.b_over_a > 1).length,
    medianRatio: round(median(rows.map((r) => r.b_over_a)), 3),
  }
}
