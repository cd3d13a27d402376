/**
 * Attrition (SPEC §1): with no spare operators to refill from, members are killed one after
 * another; the instance keeps serving while one member is left, and freezes when the last dies.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { privateKeyToAccount } from 'viem/accounts'
import { privateTokenAbi, privateTokenBytecode } from '../../examples/contracts.generated.ts'
import { poseManagerAbi, readInstance } from '../../src/chain/manager.ts'
import { createPoseClient, type PoseClient, PoseRequestError } from '../../src/client/index.ts'
import { type Devnet, startDevnet } from '../../src/devnet/devnet.ts'
import { killMember, passDelta, waitFor } from './helpers.ts'

let devnet: Devnet
let alice: PoseClient
let auto: PoseClient
let instance: bigint

describe('members die one after another', { timeout: 300_000 }, () => {
  before(async () => {
    devnet = await startDevnet({ operators: 3, users: 2 })
    alice = await createPoseClient({
      rpcUrl: devnet.rpcUrl,
      manager: devnet.manager,
      account: privateKeyToAccount(devnet.userKeys[0]!),
      pollingIntervalMs: 100,
    })
    ;({ instance } = await alice.deployContract({
      abi: privateTokenAbi,
      bytecode: privateTokenBytecode,
      args: [1_000n],
      watchdogCount: 2,
    }))
    // A second user whose client challenges silent executors by itself.
    auto = await createPoseClient({
      rpcUrl: devnet.rpcUrl,
      manager: devnet.manager,
      account: privateKeyToAccount(devnet.userKeys[1]!),
      pollingIntervalMs: 100,
      autoChallenge: true,
    })
    await alice.writeContract({
      instance,
      abi: privateTokenAbi,
      functionName: 'transfer',
      args: [auto.account.address, 100n],
    })
    await auto.writeContract({
      instance,
      abi: privateTokenAbi,
      functionName: 'transfer',
      args: [alice.account.address, 1n],
    })
  })
  after(async () => {
    await devnet?.stop()
  })

  test('serves while one member is left, then freezes', async () => {
    const friend = '0x000000000000000000000000000000000000bEEF'
    let sent = 0n
    const send = async () => {
      const r = await alice.writeContract({
        instance,
        abi: privateTokenAbi,
        functionName: 'transfer',
        args: [friend, 1n],
      })
      assert.equal(r.status, 'success')
      sent++
    }
    await send()
    for (let round = 0; round < 3; round++) {
      const info = await readInstance(alice.publicClient, devnet.manager, instance)
      await killMember(devnet, info.operators[info.executorSlot]!)
      // Round 0: a client with autoChallenge notices the silent executor, challenges it on-chain
      // and fails over to the next one by itself. Later rounds: the user challenges by hand.
      const pending =
        round === 0
          ? auto.writeContract({
              instance,
              abi: privateTokenAbi,
              functionName: 'transfer',
              args: [friend, 1n],
            })
          : undefined
      if (pending) {
        await waitFor(
          'the automatic challenge',
          async () =>
            (await readInstance(alice.publicClient, devnet.manager, instance)).phaseName ===
            'ExecutorChallenged',
        )
      } else {
        await alice.challengeExecutor({ instance })
      }
      await passDelta(devnet)
      if (pending) {
        assert.equal((await pending).status, 'success', 'the auto-challenging client got a receipt')
        const mine = await auto.readContract({
          instance,
          abi: privateTokenAbi,
          functionName: 'myBalance',
        })
        assert.equal(mine, 98n)
      }
      if (round < 2) {
        await waitFor('a new executor', async () => {
          const i = await readInstance(alice.publicClient, devnet.manager, instance)
          return i.executorSlot !== info.executorSlot && i.phaseName === 'Active'
        })
        await send()
        await send()
        const live = (
          await readInstance(alice.publicClient, devnet.manager, instance)
        ).operators.filter((o) => !/^0x0{40}$/.test(o))
        assert.equal(live.length, 2 - round)
      } else {
        // Nobody is left to submit the timeout: the user does.
        await alice.sender.write({
          address: devnet.manager,
          abi: poseManagerAbi,
          functionName: 'executorTimeout',
          args: [instance],
        })
        const i = await readInstance(alice.publicClient, devnet.manager, instance)
        assert.equal(i.phaseName, 'Frozen')
        // Regression (simulator seed 13): a request to a frozen instance is a typed error,
        // not an invalid URL.
        await assert.rejects(
          alice.readContract({ instance, abi: privateTokenAbi, functionName: 'myBalance' }),
          (e: unknown) => e instanceof PoseRequestError && e.code === 'WRONG_PHASE',
        )
      }
    }
    assert.equal(sent, 5n)
  })
})
