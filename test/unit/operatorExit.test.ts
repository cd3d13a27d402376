/**
 * `pose operator exit` keeps an instance whose departure would leave nobody able to serve it
 * while it holds coins (src/operator/exit.ts, `keepReason`): the manager's `leave` would freeze
 * it with its users' coins (docs/threat-model.md). test/e2e/exit.test.ts runs the pool of one.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { type Address, zeroAddress } from 'viem'
import type { InstanceInfo } from '../../src/chain/manager.ts'
import { keepReason } from '../../src/operator/exit.ts'
import { Phase } from '../../src/protocol/index.ts'

const ME: Address = '0x00000000000000000000000000000000000000A1'
const B: Address = '0x00000000000000000000000000000000000000B2'
const C: Address = '0x00000000000000000000000000000000000000C3'

/** An instance in `phase` whose slots hold `operators`, the executor at `executorSlot`. */
function instance(operators: Address[], executorSlot = 0, phase: Phase = Phase.Active) {
  return { phase, operators, executorSlot } as unknown as InstanceInfo
}

/** Reads with `coins` held and the members in `holding` showing the state. */
function reads(coins: bigint, holding: Address[] = []) {
  const asked: Address[] = []
  return {
    asked,
    coins: async () => coins,
    holdsState: async (op: Address) => {
      asked.push(op)
      return holding.includes(op)
    },
  }
}

test('the last live member of an instance holding coins keeps it; an empty or ended instance is left', async () => {
  const alone = instance([ME, zeroAddress, zeroAddress])
  assert.match(
    (await keepReason(alone, ME, reads(5n)))!,
    /last live member of an instance holding 5 wei/,
  )
  assert.match((await keepReason(instance([ME]), ME, reads(5n)))!, /pool of one/)
  assert.equal(await keepReason(alone, ME, reads(0n)), undefined, 'no coins to lock')
  for (const phase of [Phase.Frozen, Phase.Terminated, Phase.Creating])
    assert.equal(await keepReason(instance([ME], 0, phase), ME, reads(5n)), undefined)
  for (const phase of [Phase.ExecutorChallenged, Phase.WatchdogsChallenged])
    assert.ok(await keepReason(instance([ME], 0, phase), ME, reads(5n)))
})

test('an executor keeps an instance until every other member shows the state; a watchdog leaves', async () => {
  const pool = instance([ME, B, C])
  const none = reads(5n, [B])
  assert.match(
    (await keepReason(pool, ME, none))!,
    new RegExp(`member ${C} does not show the state`),
  )
  assert.equal(await keepReason(pool, ME, reads(5n, [B, C])), undefined)
  // A member whose endpoint fails counts as not holding it.
  const failing = {
    coins: async () => 5n,
    holdsState: async () => {
      throw new Error('connect ECONNREFUSED')
    },
  }
  assert.ok(await keepReason(pool, ME, failing))
  // A watchdog's departure leaves the executor serving: nobody is asked.
  const asWatchdog = reads(5n)
  assert.equal(await keepReason(instance([B, ME, zeroAddress]), ME, asWatchdog), undefined)
  assert.deepEqual(asWatchdog.asked, [])
})
