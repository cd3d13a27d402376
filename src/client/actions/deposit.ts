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
      // Refused (nothing paid) in the phase the revert names: sent again only if that phase is
      // an executor challenge, which ends (answered, or the executor replaced) within Δ. Judged
      // by the revert, not by a later read: the challenge may be over by then.
      const phase =
        e instanceof ChainTxError && e.reverted
          ? /PoseManager_UnexpectedPhase\(\d+, (\d+),/.exec(e.reason)?.[1]
          : undefined
      if (phase !== String(Phase.ExecutorChallenged)) throw e
      if (!(await waitOutChallenge(client, p.instance, deadline))) throw e
    }
  }
}

/** Waits until `instance` is no longer executor-challenged; false at `deadline`. */
async function waitOutChallenge(
  client: PoseClientBase,
  instance: bigint,
  deadline: number,
): Promise<boolean> {
  for (;;) {
    const { phase } = await readInstance(client.publicClient, client.manager, instance)
    if (phase !== Phase.ExecutorChallenged) return true
    if (Date.now() > deadline) return false
    await new Promise((r) => setTimeout(r, client.pollingIntervalMs))
  }
}
