import type { Hash, TransactionReceipt } from 'viem'
import { poseManagerAbi } from '../../chain/manager.ts'
import { bytesToHex } from '../../protocol/index.ts'
import type { PoseClientBase } from '../createPoseClient.ts'

export type ChallengeExecutorParameters = {
  instance: bigint
  /** What the executor must answer, typically a transaction box it ignored. */
  payload?: Uint8Array
}

/**
 * Challenges the executor of an instance on-chain (paying the challenge fee). If it does not
 * answer within Δ, anyone can call `executorTimeout` and the next watchdog takes over.
 *
 * @example
 * ```ts
 * const hash = await challengeExecutor(client, { instance })
 * ```
 */
export async function challengeExecutor(
  client: PoseClientBase,
  p: ChallengeExecutorParameters,
): Promise<Hash> {
  return (await submitChallenge(client, p)).hash
}

/** Challenges the executor and returns the mined transaction's receipt too. */
export async function submitChallenge(
  client: PoseClientBase,
  p: ChallengeExecutorParameters,
): Promise<{ hash: Hash; receipt: TransactionReceipt }> {
  const fee = (await client.publicClient.readContract({
    address: client.manager,
    abi: poseManagerAbi,
    functionName: 'challengeFee',
  })) as bigint
  return client.sender.write({
    address: client.manager,
    abi: poseManagerAbi,
    functionName: 'challengeExecutor',
    args: [p.instance, bytesToHex(p.payload ?? new Uint8Array())],
    value: fee,
  })
}
