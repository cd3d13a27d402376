/**
 * The benchmark's saturation search (bench/lib/saturation.ts): how many transfers each client
 * sends, and when larger numbers of clients are no longer tried.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import {
  bestAtLargest,
  bestAtSmallest,
  PAST_SATURATION,
  pastSaturation,
  txsPerClient,
} from '../../bench/lib/saturation.ts'

describe('saturation search', () => {
  test('a run shares its transfers among the clients, with a floor per client', () => {
    const cfg = { satTxs: 2560, minTxsPerClient: 10 }
    assert.equal(txsPerClient(cfg, 8), 320)
    assert.equal(txsPerClient(cfg, 128), 20)
    assert.equal(txsPerClient(cfg, 256), 10)
    assert.equal(txsPerClient(cfg, 512), 10, 'the floor: 2560 / 512 would be 5')
    assert.equal(txsPerClient({ satTxs: 120, minTxsPerClient: 1 }, 16), 8, 'rounded up')
  })

  test('past saturation only after two medians in a row below the share of the best', () => {
    assert.equal(pastSaturation([]), false)
    assert.equal(pastSaturation([400]), false)
    // anvil on 2026-12-04: 8 clients best, then steadily slower
    assert.equal(pastSaturation([627, 580]), false)
    assert.equal(pastSaturation([627, 580, 484]), false, 'one median below 80 % is not enough')
    assert.equal(pastSaturation([627, 580, 484, 379]), true)
    // POSE rises with the clients: never past saturation
    assert.equal(pastSaturation([600, 980, 1210, 1350, 1557]), false)
    // a dip that recovers ends no search
    assert.equal(pastSaturation([1000, 700, 1100, 700]), false)
    const best = 1000
    const justBelow = PAST_SATURATION * best - 1
    assert.equal(pastSaturation([best, justBelow, justBelow]), true)
    assert.equal(pastSaturation([best, justBelow, PAST_SATURATION * best]), false)
  })

  test('a best at the largest number of clients tried does not show saturation', () => {
    assert.equal(bestAtLargest([]), false)
    assert.equal(bestAtLargest([4416]), false, 'one number tried: nothing to compare')
    // s = 2 on 2026-12-05: still rising at 256 clients
    assert.equal(bestAtLargest([1557, 2980, 4100, 4416]), true)
    assert.equal(bestAtLargest([1557, 4416, 4416]), true, 'a tie with the last still rises')
    assert.equal(bestAtLargest([4416, 5474, 5058]), false, 'fell after its best')
    assert.equal(bestAtLargest([627, 580, 484, 379]), false)
  })

  test('a best at the smallest number of clients tried does not show the rise to it', () => {
    assert.equal(bestAtSmallest([]), false)
    assert.equal(bestAtSmallest([623.9]), false, 'one number tried: nothing to compare')
    // anvil's search on 2026-12-04: best at 8 clients, the smallest tried
    assert.equal(bestAtSmallest([627, 580, 484, 379]), true)
    assert.equal(bestAtSmallest([600, 600, 500]), true, 'a tie with the first')
    assert.equal(bestAtSmallest([1557, 2980, 4100, 4416]), false)
    assert.equal(bestAtSmallest([4416, 5474, 5058]), false, 'rose after the first')
  })
})
