import type { Hash } from 'viem'
import { poseManagerAbi } from '../../chain/manager.ts'
import type { PoseClientBase } from '../createPoseClient.ts'

export type DepositParameters = { instance: bigint; value: bigint }

/**
 * Deposits coins into an instance on-chain; the manager holds them and the contract's world
 * credits them to the sender once its enclaves see the deposit.
 *
 * @example
 * ```ts
 * await deposit(client, { instance, value: parseEther('1') })
 * ```
 */
export async function deposit(client: PoseClientBase, p: DepositParameters): Promise<Hash> {
  const { hash } = await client.sender.write({
    address: client.manager,
    abi: poseManagerAbi,
    functionName: 'deposit',
    args: [p.instance],
    value: p.value,
  })
  return hash
}
