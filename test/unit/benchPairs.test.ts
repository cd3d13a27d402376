/**
 * `bench:ab`'s pair-by-pair comparison (bench/lib/pairs.ts): each devnet's median, B against A
 * within each pair, and how many pairs B was ahead in.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { comparePairs } from '../../bench/lib/pairs.ts'

describe('A/B pairs', () => {
  test('each pair is judged by its own medians, not by the overall ones', () => {
    // The host slowed down over the sitting: B's overall median is below A's, yet B is ahead
    // within every pair (a sitting of 2026-12-05 looked like this).
    const a = [
      [3000, 3100, 2900],
      [2500, 2600, 2400],
      [2000, 2050, 1950],
    ]
    const b = [
      [3200, 3300, 3100],
      [2650, 2700, 2600],
      [2100, 2200, 2000],
    ]
    const s = comparePairs(a, b)
    assert.equal(s.bAhead, 3)
    assert.deepEqual(
      s.rows.map((r) => [r.pair, r.a_tps, r.b_tps]),
      [
        [1, 3000, 3200],
        [2, 2500, 2650],
        [3, 2000, 2100],
      ],
    )
    assert.deepEqual(
      s.rows.map((r) => r.b_over_a),
      [1.067, 1.06, 1.05],
    )
    assert.equal(s.medianRatio, 1.06)
  })

  test('a tie is not ahead, and the ratio is the median over pairs', () => {
    const s = comparePairs([[100], [100], [100], [100]], [[100], [90], [120], [130]])
    assert.equal(s.bAhead, 2)
    assert.equal(s.medianRatio, 1, 'the lower middle of 0.9, 1, 1.2, 1.3, as every median here')
  })

  test('sides with different numbers of pairs, or a pair without runs, are refused', () => {
    assert.throws(() => comparePairs([[1]], [[1], [2]]), /1 pairs of A against 2 of B/)
    assert.throws(() => comparePairs([], []), /0 pairs/)
    assert.throws(() => comparePairs([[1], []], [[1], [2]]), /pair 2 has a side without runs/)
  })
})
