/**
 * An executor whose host withholds the final balances (decision 0030): its operator drops every
 * page its enclave makes (`POSE_WITHHOLD_PAGES`) and would send anything else. Once the contract
 * has ended, the enclave answers an executor challenge only by publishing, so the host has
 * nothing to send: the chain's clock passes Δ, another member's operator times the executor out,
 * and the promoted watchdog publishes the pages; the user is paid.
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { after, before, describe, test } from 'node:test'
import { parseEther } from 'viem'
import { closableTokenAbi, closableTokenBytecode } from '../../examples/contracts.generated.ts'
import { readInstance } from '../../src/chain/manager.ts'
import type { PoseClient } from '../../src/client/index.ts'
import { type Devnet, startDevnet } from '../../src/devnet/devnet.ts'
import { passDelta, userClients, waitFor } from './helpers.ts'

let devnet: Devnet
let issuer: PoseClient
let instance: bigint
/** Operators started with `POSE_WITHHOLD_PAGES=1`. */
const withholding = new Set<number>()

/** The event indexes at which operator `i`'s enclave published final balances (its log). */
function publishedAt(i: number): bigint[] {
  const out: bigint[] = []
  for (const line of readFileSync(devnet.operators[i]!.logPath, 'utf8').split('\n')) {
    if (!line.includes('publishing its final balances')) continue
    const { eventIndex } = JSON.parse(line) as { eventIndex?: number }
    if (eventIndex !== undefined) out.push(BigInt(eventIndex))
  }
  return out
}

describe('an executor whose host withholds the final balances', { timeout: 240_000 }, () => {
  before(async () => {
    devnet = await startDevnet({
      operators: 3,
      users: 1,
      operatorEnv: (i): Record<string, string> =>
        withholding.has(i) ? { POSE_WITHHOLD_PAGES: '1' } : {},
    })
    ;[issuer] = (await userClients(devnet)) as [PoseClient]
    ;({ instance } = await issuer.deployContract({
      abi: closableTokenAbi,
      bytecode: closableTokenBytecode,
      args: [1_000n],
      watchdogCount: 1,
    }))
  })
  after(async () => {
    await devnet?.stop()
  })

  test('is challenged, gives no answer but pages it cannot hold back, and is replaced by a member that publishes them', async () => {
    await issuer.deposit({ instance, value: parseEther('1') })
    await waitFor('the deposit credit', async () => (await issuer.getBalance({ instance })) > 0n)
    // The executor's host turns: from its next start it drops every page.
    const pool = await readInstance(issuer.publicClient, devnet.manager, instance)
    const executor = pool.operators[pool.executorSlot]!
    const i = devnet.operators.findIndex((o) => o.address === executor)
    withholding.add(i)
    await devnet.killOperator(i, 'SIGTERM')
    await devnet.startOperator(i)

    const closed = await issuer.writeContract({
      instance,
      abi: closableTokenAbi,
      functionName: 'close',
    })
    assert.equal(closed.status, 'success')
    await issuer.challengeExecutor({ instance })
    const challenged = await readInstance(issuer.publicClient, devnet.manager, instance)
    assert.equal(challenged.phaseName, 'ExecutorChallenged')
    // The enclave has seen the challenge once it publishes at its event: it answered nothing
    // else, so its host could send nothing and the challenge stays open.
    await waitFor('the executor to publish at the challenge', async () =>
      publishedAt(i).some((at) => at >= challenged.eventIndex),
    )
    const still = await readInstance(issuer.publicClient, devnet.manager, instance)
    assert.equal(still.phaseName, 'ExecutorChallenged', 'no answer from a host withholding pages')

    // Δ passes: the other member's operator times the executor out; the promoted member's first
    // page answers the challenge it inherits, and the instance terminates.
    await passDelta(devnet)
    await waitFor(
      'the termination on-chain',
      async () =>
        (await readInstance(issuer.publicClient, devnet.manager, instance)).phaseName ===
        'Terminated',
    )
    const { balances } = await issuer.getFinalBalances({ instance })
    assert.deepEqual(
      balances.map((b) => [b.account.toLowerCase(), b.cumulative]),
      [[issuer.account.address.toLowerCase(), parseEther('1')]],
    )
    const paid = await issuer.withdraw({ instance })
    assert.equal(paid.amount, parseEther('1'))
  })
})
