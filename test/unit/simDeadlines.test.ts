import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { nextDeadline } from '../sim/deadlines.ts'

describe('simulator chain controller: which deadline passes next', () => {
  it('seed 159: the watchdog deadline passes before the executor deadline it extended', () => {
    // A user challenged the executor (deadline 1,060); its watchdog was down, so the executor
    // challenged it at 1,030 (watchdog deadline 1,090) and its own deadline moved to 1,120.
    // Passing 1,120 at once also passed 1,090 and timed out the honest executor before the
    // silent watchdog could be removed and replaced.
    const info = {
      phaseName: 'ExecutorChallenged',
      challengeDeadline: 1_120n,
      watchdogMask: 0b10,
      watchdogDeadline: 1_090n,
    }
    assert.equal(nextDeadline(info), 1_090n)
    // Once the watchdog challenge is finalised, the executor's own deadline is next.
    assert.equal(nextDeadline({ ...info, watchdogMask: 0 }), 1_120n)
  })

  it('one open challenge: its deadline', () => {
    assert.equal(
      nextDeadline({
        phaseName: 'ExecutorChallenged',
        challengeDeadline: 500n,
        watchdogMask: 0,
        watchdogDeadline: 0n,
      }),
      500n,
    )
    assert.equal(
      nextDeadline({
        phaseName: 'WatchdogsChallenged',
        challengeDeadline: 0n,
        watchdogMask: 0b100,
        watchdogDeadline: 700n,
      }),
      700n,
    )
  })

  it('no open challenge: none (a stale executor deadline in another phase is ignored)', () => {
    assert.equal(
      nextDeadline({
        phaseName: 'Active',
        challengeDeadline: 900n,
        watchdogMask: 0,
        watchdogDeadline: 0n,
      }),
      0n,
    )
  })
})
