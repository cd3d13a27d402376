/**
 * A withholding executor (SPEC §4, §6.8): its host stays up, so the kernel still accepts
 * connections to the operator's port, but the operator and enclave answer nothing (SIGSTOP).
 * An auto-challenging client learns of it when its operator leaves two health checks
 * unanswered while the request is pending (`hostProbeMs`), long before the request's own
 * timeout (`requestTimeoutMs`, 35 s by default), and challenges at once with its transaction as
 * the payload; the chain's clock passes Δ; another member's operator times the executor out;
 * the promoted watchdog takes over and the client gets its receipt from it.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { privateTokenAbi, privateTokenBytecode } from '../../examples/contracts.generated.ts'
import { readInstance } from '../../src/chain/manager.ts'
import type { PoseClient } from '../../src/client/index.ts'
import { type Devnet, startDevnet } from '../../src/devnet/devnet.ts'
import { killMember, passDelta, userClients, waitFor } from './helpers.ts'

let devnet: Devnet
let alice: PoseClient
let instance: bigint

/** How often, and how long, the client checks the host of a pending request. */
const HOST_PROBE_MS = 1_000
const friend = '0x000000000000000000000000000000000000bEEF'

describe('withholding executor', { timeout: 240_000 }, () => {
  before(async () => {
    devnet = await startDevnet({ operators: 3, users: 1 })
    ;[alice] = (await userClients(devnet, {
      autoChallenge: true,
      hostProbeMs: HOST_PROBE_MS,
    })) as [PoseClient]
    ;({ instance } = await alice.deployContract({
      abi: privateTokenAbi,
      bytecode: privateTokenBytecode,
      args: [1_000n],
      watchdogCount: 2,
    }))
  })
  after(async () => {
    await devnet?.stop()
  })

  test('is challenged after one unanswered request, timed out and replaced; the transaction gets its receipt', async () => {
    const send = (n: bigint) =>
      alice.writeContract({
        instance,
        abi: privateTokenAbi,
        functionName: 'transfer',
        args: [friend, n],
      })
    await send(1n)
    const start = await readInstance(alice.publicClient, devnet.manager, instance)
    const held = start.operators[start.executorSlot]!
    const i = devnet.operators.findIndex((o) => o.address === held)
    const pids = [devnet.operators[i]!.process?.pid, devnet.enclavePid(i)]
    assert.ok(pids.every((p) => p !== undefined))
    for (const pid of pids) process.kill(pid!, 'SIGSTOP')
    try {
      const sentAt = Date.now()
      let settled = false
      const pending = send(2n).finally(() => {
        settled = true
      })
      pending.catch(() => undefined)
      await waitFor(
        'the client to challenge the executor',
        async () =>
          (await readInstance(alice.publicClient, devnet.manager, instance)).phaseName ===
          'ExecutorChallenged',
        30_000,
      )
      const challenged = await readInstance(alice.publicClient, devnet.manager, instance)
      assert.equal(challenged.challenger.toLowerCase(), alice.account.address.toLowerCase())
      // Two checks left unanswered, within the 30 s waited for here: well before the request's
      // own 35 s timeout.
      assert.ok(
        Date.now() - sentAt >= 2 * HOST_PROBE_MS,
        'the client waited for two health checks to go unanswered',
      )
      assert.equal(settled, false, 'no receipt while the executor withholds')

      await passDelta(devnet)
      const receipt = await pending
      assert.equal(receipt.status, 'success')
      const now = await readInstance(alice.publicClient, devnet.manager, instance)
      assert.notEqual(now.executorSlot, start.executorSlot, 'a watchdog took over')
      assert.ok(/^0x0{40}$/.test(now.operators[start.executorSlot]!), 'the executor was removed')
      assert.equal(
        receipt.executor.toLowerCase(),
        now.signers[now.executorSlot]!.toLowerCase(),
        'the receipt comes from the new executor',
      )
      // The state the withholding executor had replicated carried over.
      const balance = await alice.readContract({
        instance,
        abi: privateTokenAbi,
        functionName: 'myBalance',
      })
      assert.equal(balance, 1_000n - 1n - 2n)
    } finally {
      // A stopped process only dies of SIGKILL.
      await killMember(devnet, held)
    }
  })
})
