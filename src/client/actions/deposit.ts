import type { Hash } from 'viem'
import { poseManagerAbi, readInstance } from '../../chain/manager.ts'
import { ChainTxError } from '../../chain/sender.ts'
import { Phase } from '../../protocol/index.ts'
import type { PoseClientBase } from '../createPoseClient.ts'

export type DepositParameters = { instance: bigint; value: bigint }

/**
 * Deposits coins into an instance on-chain; the manager holds them and the contract's world
 * credits them to the sender once its enclaves see the deposit. The manager takes no deposit
 * while the executor is challenged: a deposit refused for that is sent again once the challenge
 * is over, until the failover's deadline (`failover.timeoutMs`).
 *
 * @example
 * ```ts
 * await deposit(client, { instance, value: parseEther('1') })
 * ```
 */
export async function deposit(client: PoseClientBase, p: DepositParameters): Promise<Hash> {
  const deadline = Date.now() + client.failover.timeoutMs
  for (;;) {
    try {
      const { hash } = await client.sender.write({
        address: client.manager,
        abi: poseManagerAbi,
        functionName: 'deposit',
        args: [p.instance],
        value: p.value,
      })
      return hash
    } catch (e) {
      // Refused (nothing paid) for the instance's phase: sent again only if the phase is an
      // executor challenge, which ends (answered, or the executor replaced) within Δ.
      if (
        !(e instanceof ChainTxError && e.reverted && /PoseManager_UnexpectedPhase/.test(e.reason))
      )
        throw e
      if (!(await waitOutChallenge(client, p.instance, deadline))) throw e
    }
  }
}

/** Waits until `instance` is no longer executor-challenged; false if it was not, or at `deadline`. */
async function waitOutChallenge(
  client: PoseClientBase,
  instance: bigint,
  deadline: number,
): Promise<boolean> {
  let challenged = false
  for (;;) {
    const { phase } = await readInstance(client.publicClient, client.manager, instance)
    if (phase !== Phase.ExecutorChallenged) return challenged
    challenged = true
    if (Date.now() > deadline) return false
    await new Promise((r) => setTimeout(r, client.pollingIntervalMs))
  }
}
