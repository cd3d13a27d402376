/**
 * `bench:ab`'s executor-thread figures (bench/lib/procs.ts): `schedstat` parsing, the choice of
 * the busiest enclave main thread, and a reading of this process's own main thread.
 */
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { describe, test } from 'node:test'
import {
  busiestThread,
  mainThreadSched,
  parseSchedstat,
  type Sched,
} from '../../bench/lib/procs.ts'

describe('scheduler figures', () => {
  test('parseSchedstat reads run and run-queue wait; anything else is undefined', () => {
    assert.deepEqual(parseSchedstat('6050000000 2680000000 2714\n'), {
      runNs: 6_050_000_000,
      waitNs: 2_680_000_000,
    })
    assert.equal(parseSchedstat(''), undefined)
    assert.equal(parseSchedstat('1 2\n'), undefined)
    assert.equal(parseSchedstat('a b c\n'), undefined)
  })

  test('busiestThread picks the thread that ran most and gives shares of the wall time', () => {
    const at = (runMs: number, waitMs: number): Sched => ({
      runNs: runMs * 1e6,
      waitNs: waitMs * 1e6,
    })
    const before = new Map([
      [10, at(100, 50)],
      [11, at(5_000, 10)],
      [12, at(0, 0)],
    ])
    const after = new Map([
      [10, at(700, 250)], // ran 600 ms, waited 200
      [11, at(5_100, 20)], // ran 100 ms: more in total, less in the window
      [12, at(50, 0)],
      [13, at(9_000, 0)], // no earlier reading: left out
    ])
    assert.deepEqual(busiestThread(before, after, 1_000), { runPct: 60, waitPct: 20 })
    assert.equal(busiestThread(new Map(), after, 1_000), undefined)
    assert.equal(busiestThread(before, after, 0), undefined)
  })

  test('mainThreadSched reads a live thread where /proc has schedstat', () => {
    assert.equal(mainThreadSched(undefined), undefined)
    if (!existsSync(`/proc/${process.pid}/task/${process.pid}/schedstat`)) return
    const a = mainThreadSched(process.pid)!
    const t = Date.now()
    while (Date.now() - t < 30) {} // 30 ms on a core
    const b = mainThreadSched(process.pid)!
    assert.ok(b.runNs - a.runNs >= 1e6, `ran ${b.runNs - a.runNs} ns`)
    assert.ok(b.waitNs >= a.waitNs)
  })
})
