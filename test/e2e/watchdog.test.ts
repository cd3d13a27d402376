/**
 * A silent watchdog (SPEC §4, §6.9): its operator and enclave are SIGKILLed; the executor's
 * operator challenges it on-chain when its ack is late, the chain's clock passes Δ, it is
 * removed and slashed, refill draws a replacement, the executor hands it the full state, and
 * the new member holds identical state and acknowledges later updates. The user's client
 * challenges automatically, yet not the live executor that holds its receipt meanwhile.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { getAbiItem } from 'viem'
import { privateTokenAbi, privateTokenBytecode } from '../../examples/contracts.generated.ts'
import { poseManagerAbi, readInstance, readOperator } from '../../src/chain/manager.ts'
import type { PoseClient } from '../../src/client/index.ts'
import { DEFAULT_MANAGER_PARAMS } from '../../src/devnet/deploy.ts'
import { type Devnet, startDevnet } from '../../src/devnet/devnet.ts'
import { EventKind } from '../../src/protocol/index.ts'
import { killMember, memberDigests, passDelta, userClients, waitFor } from './helpers.ts'

let devnet: Devnet
let alice: PoseClient
let instance: bigint

const digestsOfLiveMembers = () => memberDigests(devnet, alice, instance)

/**
 * Unanswered this long, the client's request fails with TIMEOUT: longer than the executor
 * takes to challenge a late watchdog (its ack timeout, 5 s, and a block, with a margin for a
 * loaded machine), so the request goes unanswered while that challenge is open.
 */
const REQUEST_TIMEOUT_MS = 12_000

/** The kinds of the instance's on-chain events so far. */
async function eventKinds(): Promise<EventKind[]> {
  const logs = await alice.publicClient.getLogs({
    address: devnet.manager,
    event: getAbiItem({ abi: poseManagerAbi, name: 'InstanceEvent' }),
    args: { id: instance },
    fromBlock: 0n,
  })
  return logs.map((l) => Number(l.args.kind) as EventKind)
}

describe('silent watchdog', { timeout: 300_000 }, () => {
  before(async () => {
    devnet = await startDevnet({ operators: 4, users: 1 })
    ;[alice] = (await userClients(devnet, {
      autoChallenge: true,
      requestTimeoutMs: REQUEST_TIMEOUT_MS,
    })) as [PoseClient]
    ;({ instance } = await alice.deployContract({
      abi: privateTokenAbi,
      bytecode: privateTokenBytecode,
      args: [1_000_000n],
      watchdogCount: 2,
    }))
  })
  after(async () => {
    await devnet?.stop()
  })

  test('is challenged, removed, slashed and replaced; the new member holds the same state', async () => {
    const friend = '0x000000000000000000000000000000000000bEEF'
    const send = (n: bigint) =>
      alice.writeContract({
        instance,
        abi: privateTokenAbi,
        functionName: 'transfer',
        args: [friend, n],
      })
    for (let i = 1n; i <= 5n; i++) await send(i)
    const start = await readInstance(alice.publicClient, devnet.manager, instance)
    const slot = start.executorSlot === 1 ? 2 : 1
    const victim = start.operators[slot]!
    await killMember(devnet, victim)

    // The next transaction stalls: one watchdog will never ack it.
    const sentAt = Date.now()
    const stalled = send(6n)
    await waitFor('the executor to challenge the watchdog', async () => {
      const i = await readInstance(alice.publicClient, devnet.manager, instance)
      return i.watchdogMask === 1 << slot
    })
    // The client's request goes unanswered while the watchdog challenge is open (a real-time
    // timeout in the client, which anvil's clock does not drive): the client sends it again
    // instead of challenging the live executor that holds its receipt.
    await waitFor(
      "the client's request to time out",
      async () => Date.now() > sentAt + REQUEST_TIMEOUT_MS + 1_500,
      REQUEST_TIMEOUT_MS + 5_000,
    )
    await passDelta(devnet)
    const r = await stalled
    assert.equal(
      r.status,
      'success',
      'the stalled tx got its receipt once the silent watchdog was removed',
    )
    const kinds = await eventKinds()
    assert.ok(kinds.includes(EventKind.WatchdogsChallenged))
    assert.ok(
      !kinds.includes(EventKind.ExecutorChallenged),
      'the client did not challenge the executor during its watchdog round',
    )
    const slashed = await readOperator(alice.publicClient, devnet.manager, victim)
    assert.equal(
      slashed.stake,
      DEFAULT_MANAGER_PARAMS.minStake - DEFAULT_MANAGER_PARAMS.slashAmount,
      'slashed',
    )

    await waitFor('refill', async () => {
      const i = await readInstance(alice.publicClient, devnet.manager, instance)
      return !/^0x0{40}$/.test(i.operators[slot]!)
    })
    const refilled = await readInstance(alice.publicClient, devnet.manager, instance)
    assert.notEqual(refilled.operators[slot], victim)
    assert.equal(new Set(refilled.operators).size, 3)

    for (let i = 7n; i <= 12n; i++) await send(i)
    await waitFor('the new member to catch up', async () => {
      const ds = await digestsOfLiveMembers()
      return ds.length === 3 && new Set(ds.map((d) => `${d.seq}:${d.digest}`)).size === 1
    })
    const ds = await digestsOfLiveMembers()
    assert.equal(ds.find((d) => d.slot === slot)?.role, 'watchdog')
    const mine = await alice.readContract({
      instance,
      abi: privateTokenAbi,
      functionName: 'myBalance',
    })
    assert.equal(mine, 1_000_000n - 78n)
  })
})
