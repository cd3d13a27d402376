/**
 * Payouts the manager credits an account and pays when the account claims them (decision 0003):
 * challenge fees to the operator whose executor answered, rewards to whoever proved an offence,
 * refunds (a challenge fee when an instance froze, a creation fee when its executor left before
 * activation).
 */
import type { Address, Chain, Hash, PublicClient, Transport } from 'viem'
import { poseManagerAbi } from './abi.generated.ts'
import type { TxSender } from './sender.ts'

/** What the manager holds for `account` to claim, in wei. */
export async function readPayout(
  client: PublicClient<Transport, Chain>,
  manager: Address,
  account: Address,
): Promise<bigint> {
  return (await client.readContract({
    address: manager,
    abi: poseManagerAbi,
    functionName: 'payouts',
    args: [account],
  })) as bigint
}

export type ClaimResult = {
  /** Wei paid to the account (0: nothing was credited, and no transaction was sent). */
  amount: bigint
  hash?: Hash
}

/** Claims everything the manager credited the sender's account; nothing to claim sends nothing. */
export async function claimPayout(
  client: PublicClient<Transport, Chain>,
  sender: TxSender,
  manager: Address,
): Promise<ClaimResult> {
  const amount = await readPayout(client, manager, sender.address)
  if (amount === 0n) return { amount }
  const { hash } = await sender.write({
    address: manager,
    abi: poseManagerAbi,
    functionName: 'claim',
  })
  return { amount, hash }
}
