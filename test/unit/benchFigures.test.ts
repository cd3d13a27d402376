/**
 * How the benchmark turns samples into figures: gas per operation (bench/sections/faults.ts:
 * the highest sample is the figure, the median and the lowest are kept beside it) and the
 * memory section's per-instance slope (bench/lib/fit.ts).
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { leastSquares } from '../../bench/lib/fit.ts'
import { gasFigures, SETUP, worstOfOperation } from '../../bench/sections/faults.ts'

describe('gas figures', () => {
  test('an even count of samples reports its higher one, not the lower middle', () => {
    // Pool of 3: a paused watchdog and a crashed one are both challenged; the nearest-rank
    // median of the two was the cheaper.
    const f = gasFigures([
      { name: 'challengeWatchdogs', gas: 81_821 },
      { name: 'challengeWatchdogs', gas: 93_000 },
      { name: 'deposit', gas: 56_843 },
    ])
    assert.equal(f.max.challengeWatchdogs, 93_000)
    assert.equal(f.median.challengeWatchdogs, 81_821)
    assert.equal(f.min.challengeWatchdogs, 81_821)
    assert.equal(f.samples.challengeWatchdogs, 2)
    assert.equal(f.max.deposit, 56_843)
    assert.equal(f.samples.deposit, 1)
  })

  test("setup is the sum of its three transactions' figures, per statistic", () => {
    const f = gasFigures([
      { name: 'createContract', gas: 116_842 },
      { name: 'drawPool', gas: 189_287 },
      { name: 'activate', gas: 67_875 },
      { name: 'activate', gas: 70_000 },
    ])
    assert.equal(f.max[SETUP], 116_842 + 189_287 + 70_000)
    assert.equal(f.min[SETUP], 116_842 + 189_287 + 67_875)
    assert.equal(gasFigures([{ name: 'drawPool', gas: 1 }]).max[SETUP], undefined)
  })

  test("an operation's worst case spans its variants and the pools, and no other function", () => {
    const byPool = {
      pool3: { respondExecutor: 96_856, 'respondExecutor (promoted, with receipt)': 105_821 },
      pool11: { respondExecutor: 96_900, respondWatchdog: 200_000 },
    }
    assert.deepEqual(worstOfOperation(byPool, 'respondExecutor'), {
      gas: 105_821,
      variant: 'respondExecutor (promoted, with receipt)',
      pool: 'pool3',
    })
    assert.equal(worstOfOperation(byPool, 'executorTimeout'), undefined)
  })
})

describe('least-squares slope', () => {
  test('a line through its points', () => {
    const f = leastSquares([0, 1, 10, 100], [5, 7, 25, 205])
    assert.ok(Math.abs(f.slope - 2) < 1e-12)
    assert.ok(Math.abs(f.intercept - 5) < 1e-12)
    assert.ok(f.slopeStdErr < 1e-9)
  })

  test("the memory section's last readings: every point weighs, not just the last two", () => {
    // latest.json of 2026-12-07 08:01, summed enclave RSS (MiB) at 0, 1, 10 and 100 instances:
    // 10 → 100 gave 0.677 MiB (693 KiB) per instance; over all four points 0.491 MiB.
    const f = leastSquares([0, 1, 10, 100], [313.4, 309.1, 293.8, 354.7])
    assert.equal(Math.round(f.slope * 1024), 503)
    assert.ok(Number.isFinite(f.slopeStdErr) && f.slopeStdErr > 0)
    assert.ok(Number.isNaN(leastSquares([0, 1], [1, 2]).slopeStdErr), 'two points: no scatter')
  })

  test('refuses what has no slope', () => {
    assert.throws(() => leastSquares([1], [1]), /two points/)
    assert.throws(() => leastSquares([3, 3], [1, 2]), /every x is the same/)
    assert.throws(() => leastSquares([1, 2], [1]), /2 x, 1 y/)
  })
})
