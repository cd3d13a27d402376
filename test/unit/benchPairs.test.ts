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

  test('CPU per transfer is compared pair by pair, in all and by kind', () => {
    // Two pairs of two runs: B spends less in the enclaves and as much elsewhere in each pair,
    // while the host's hour moves both sides of the second pair up.
    const run = (operators: number, enclaves: number, bench: number, anvil = 0.001) => ({
      operators,
      enclaves,
      bench,
      anvil,
    })
    const s = comparePairs(
      [
        [4000, 4100],
        [3000, 3100],
      ],
      [
        [4050, 4150],
        [2950, 3050],
      ],
      {
        a: [
          [run(0.04, 0.2, 0.08), run(0.04, 0.2, 0.08)],
          [run(0.05, 0.3, 0.1), run(0.05, 0.3, 0.1)],
        ],
        b: [
          [run(0.04, 0.18, 0.08), run(0.04, 0.18, 0.08)],
          [run(0.05, 0.27, 0.1, 0.5), run(0.05, 0.27, 0.1, 0.5)],
        ],
        kinds: ['operators', 'enclaves', 'bench'],
      },
    )
    assert.deepEqual(
      s.rows.map((r) => [r.a_cpu_ms, r.b_cpu_ms, r.cpu_b_over_a]),
      [
        [0.32, 0.3, 0.938],
        [0.45, 0.42, 0.933],
      ],
      "anvil's CPU is not among the kinds compared",
    )
    assert.equal(s.bAhead, 1, 'the rate alone is split')
    assert.deepEqual(s.cpu, {
      bLower: 2,
      medianRatio: 0.933,
      byKind: { operators: 1, enclaves: 0.9, bench: 1 },
    })
    // Without CPU figures there is no CPU comparison.
    assert.equal(comparePairs([[1]], [[2]]).cpu, undefined)
    assert.equal(comparePairs([[1]], [[2]]).rows[0]!.a_cpu_ms, undefined)
  })

  test('a kind A spent nothing of is left out of the ratios by kind', () => {
    const s = comparePairs([[1]], [[1]], {
      a: [[{ operators: 0, enclaves: 0.2 }]],
      b: [[{ operators: 0.01, enclaves: 0.1 }]],
      kinds: ['operators', 'enclaves'],
    })
    assert.deepEqual(s.cpu?.byKind, { enclaves: 0.5 })
  })

  test('CPU figures that do not match the runs are refused', () => {
    const one = { operators: 1 }
    assert.throws(
      () => comparePairs([[1, 2]], [[1]], { a: [[one]], b: [[one]], kinds: ['operators'] }),
      /pair 1 of A: CPU for 1 of 2 runs/,
    )
    assert.throws(
      () => comparePairs([[1], [1]], [[1], [1]], { a: [[one], [one]], b: [[one]], kinds: [] }),
      /pair 2 of B: CPU for 0 of 1 runs/,
    )
  })

  test('sides with different numbers of pairs, or a pair without runs, are refused', () => {
    assert.throws(() => comparePairs([[1]], [[1], [2]]), /1 pairs of A against 2 of B/)
    assert.throws(() => comparePairs([], []), /0 pairs/)
    assert.throws(() => comparePairs([[1], []], [[1], [2]]), /pair 2 has a side without runs/)
  })
})
