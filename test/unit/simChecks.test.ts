import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  isInjectedFault,
  poolProblems,
  type SentTransfer,
  splitCounters,
  unexplainedLogErrors,
  unexplainedPenalties,
  viewBounds,
} from '../sim/checks.ts'
import { Lock } from '../sim/restart.ts'

describe('simulator checks: the fault count', () => {
  it('every fault class of docs/simulator.md counts as injected', () => {
    for (const k of [
      'crash-executor',
      'crash-watchdog',
      'restart-member',
      'stale-restart',
      'time-jump',
      'deadline-passed',
      'crash-before-seal',
      'crash-after-seal',
      'crash-handover',
      'crash-challenge-response',
      'crash-final-page',
      'client-link-cut-request',
      'client-link-cut-response',
      'client-link-delay',
      'chain-hold',
      'chain-reorder',
      'chain-replay',
      'partition',
      'chain-reorg',
      'link-drop',
      'link-duplicate',
      'link-replay',
      'link-delay',
      'link-tamper',
      'terminate-withhold-pages',
      'terminate-crash-watchdog',
      'terminate-restart-executor',
      'terminate-crash-executor',
      'terminate-reorg',
    ])
      assert.ok(isInjectedFault(k), k)
  })

  it('restarts, skipped faults, faults that did not fire and steps of the end do not', () => {
    for (const k of [
      'restart',
      'skipped-pool-recovering',
      'chain-reorg-skipped',
      'terminate',
      'terminate-reorg-skipped',
      'terminate-reorg-deposit-moved',
      'terminate-withhold-rechallenge',
      'terminate-crash-executor-not-fired',
      'terminate-restart-executor-not-fired',
      'armed-final-page-crash',
      'something-new',
    ])
      assert.ok(!isInjectedFault(k), k)
  })

  it('splits a scenario counters', () => {
    assert.deepEqual(splitCounters({ 'link-drop': 3, restart: 2, terminate: 1 }), {
      faults: { 'link-drop': 3 },
      other: { restart: 2, terminate: 1 },
    })
  })
})

describe('simulator checks: the bounds of a balance view', () => {
  const t = (o: Partial<SentTransfer> & Pick<SentTransfer, 'from' | 'to'>): SentTransfer => ({
    amount: 5n,
    sentAt: 0,
    outcome: 'success',
    receiptedAt: 1,
    ...o,
  })
  const view = { sentAt: 10, answeredAt: 20 }

  it("the user's own receipted transfers are exact", () => {
    assert.deepEqual(viewBounds(0, 100n, [t({ from: 0, to: 1 }), t({ from: 0, to: 2 })], view), {
      low: 90n,
      high: 90n,
    })
  })

  it('an own transfer whose request failed may or may not have run; one that did nothing did not', () => {
    const failed = t({ from: 0, to: 1, outcome: 'unknown', receiptedAt: undefined })
    const reverted = t({ from: 0, to: 1, outcome: 'not-executed' })
    assert.deepEqual(viewBounds(0, 100n, [failed, reverted], view), { low: 95n, high: 100n })
  })

  it('an incoming transfer receipted before the view was sent is in it', () => {
    assert.deepEqual(viewBounds(1, 0n, [t({ from: 0, to: 1, receiptedAt: 9 })], view), {
      low: 5n,
      high: 5n,
    })
  })

  it('one pending, or receipted after the view was sent, may be in it if sent before the answer', () => {
    const pending = t({ from: 0, to: 1, sentAt: 15, outcome: 'unknown', receiptedAt: undefined })
    const late = t({ from: 2, to: 1, sentAt: 5, receiptedAt: 12 })
    assert.deepEqual(viewBounds(1, 0n, [pending, late], view), { low: 0n, high: 10n })
  })

  it('one sent after the answer, or that did nothing, is not', () => {
    const after = t({ from: 0, to: 1, sentAt: 21, receiptedAt: 25 })
    const reverted = t({ from: 2, to: 1, outcome: 'not-executed' })
    assert.deepEqual(viewBounds(1, 0n, [after, reverted], view), { low: 0n, high: 0n })
  })
})

describe('simulator checks: the pool at the end', () => {
  const a = `0x${'a'.repeat(40)}`
  const b = `0x${'b'.repeat(40)}`
  const zero = `0x${'0'.repeat(40)}`

  it('a full pool of distinct operators with one executor, at its slot, passes', () => {
    const roles = [
      { slot: 0, role: 'watchdog' },
      { slot: 1, role: 'executor' },
    ]
    assert.deepEqual(poolProblems({ operators: [a, b], executorSlot: 1, roles }), [])
  })

  it('an empty slot, a repeated operator, two executors or none are named', () => {
    assert.match(
      poolProblems({
        operators: [a, zero],
        executorSlot: 0,
        roles: [{ slot: 0, role: 'executor' }],
      })[0]!,
      /slots 1 empty/,
    )
    assert.match(
      poolProblems({
        operators: [a, a],
        executorSlot: 0,
        roles: [
          { slot: 0, role: 'executor' },
          { slot: 1, role: 'watchdog' },
        ],
      }).join(),
      /two slots/,
    )
    const two = [
      { slot: 0, role: 'executor' },
      { slot: 1, role: 'executor' },
    ]
    assert.match(
      poolProblems({ operators: [a, b], executorSlot: 0, roles: two }).join(),
      /slots \[0, 1\] act as executor/,
    )
    const none = [
      { slot: 0, role: 'watchdog' },
      { slot: 1, role: 'none' },
    ]
    assert.match(
      poolProblems({ operators: [a, b], executorSlot: 0, roles: none }).join(),
      /slots \[\] act as executor.*slot 1 acts as none/,
    )
  })

  it('the executor at another slot than the chain names is named', () => {
    const roles = [
      { slot: 0, role: 'executor' },
      { slot: 1, role: 'watchdog' },
    ]
    assert.match(
      poolProblems({ operators: [a, b], executorSlot: 1, roles }).join(),
      /the chain names slot 1/,
    )
  })
})

describe('simulator checks: operator log errors', () => {
  const line = (o: Record<string, unknown>) => JSON.stringify({ level: 50, time: 1, ...o })

  it('names the errors no fault explains, once each with a count', () => {
    const text = [
      'WARNING: SIMULATED TEE (dev attestation)',
      line({ code: 'CHAIN_REORG', msg: 'The chain reorganised' }),
      line({ msg: 'Enclave output not handled', output: 'send' }),
      line({ msg: 'Enclave output not handled', output: 'send' }),
      line({ msg: 'Request failed inside the operator' }),
      line({
        msg: 'Instance not restored from its sealed state: this node no longer serves it (its pool will replace it)',
      }),
      line({ code: 'CHAIN_FEED_REFUSED', halted: true, msg: 'The enclave refused an event' }),
    ].join('\n')
    assert.deepEqual(unexplainedLogErrors(text, { lyingFeed: false }), [
      'fed its enclave a block a reorganisation replaced',
      'an enclave output was not handled (2 times)',
      'a request failed inside it',
      'instance not restored from its sealed state (set aside)',
      'its enclave refused its chain feed for good (CHAIN_FEED_REFUSED, halted)',
    ])
  })

  it("a lying feed explains its enclave's refusal; a refusal not for good, warnings and the faults' traces are no finding", () => {
    const text = [
      line({ code: 'CHAIN_FEED_REFUSED', halted: true }),
      line({ code: 'CHAIN_FEED_REFUSED', halted: false }),
      JSON.stringify({ level: 40, msg: 'Request failed inside the operator' }),
      line({ msg: 'Enclave process exited; stopping the operator node' }),
      '{"level":50,"msg":"Enclave output not hand', // a line cut by a SIGKILL
    ].join('\n')
    assert.deepEqual(unexplainedLogErrors(text, { lyingFeed: true }), [])
  })
})

describe('simulator checks: slashes and removals', () => {
  it('only those of operators no fault targeted are findings', () => {
    const events = [
      { operator: 1, what: 'slashed 5' },
      { operator: 2, what: 'removed from slot 0 (timed out)' },
      { operator: -1, what: 'slashed 5' },
    ]
    assert.deepEqual(unexplainedPenalties(events, new Set([1])), [
      'operator 2, which no fault targeted: removed from slot 0 (timed out)',
      'operator -1, which no fault targeted: slashed 5',
    ])
  })
})

describe('simulator: the fault lock', () => {
  it('is taken once free', async () => {
    const lock = new Lock(1_000, 5)
    await lock.take()
    setTimeout(() => lock.release(), 20)
    await lock.take()
    assert.ok(lock.held)
  })

  it('gives up after its bound instead of waiting for good', async () => {
    const lock = new Lock(50, 5)
    await lock.take()
    await assert.rejects(lock.take(), /held for more than 50 ms/)
  })
})
