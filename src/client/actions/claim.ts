import type { Address } from 'viem'
import { type ClaimResult, claimPayout, readPayout } from '../../chain/payouts.ts'
import type { PoseClientBase } from '../createPoseClient.ts'

export type ClaimReturnType = ClaimResult

/**
 * What the manager holds for an account to claim (the client's own by default): a challenge
 * fee refunded when an instance froze, a creation fee refunded when its executor left before
 * activation, or half of a slash the account proved.
 *
 * @example
 * ```ts
 * const wei = await getPayout(client)
 * ```
 */
export function getPayout(client: PoseClientBase, p: { address?: Address } = {}): Promise<bigint> {
  return readPayout(client.publicClient, client.manager, p.address ?? client.account.address)
}

/**
 * Claims what the manager credited the client's account; with nothing credited no transaction
 * is sent and the amount is 0.
 *
 * @example
 * ```ts
 * const { amount, hash } = await claim(client)
 * ```
 */
export function claim(client: PoseClientBase): Promise<ClaimReturnType> {
  return claimPayout(client.publicClient, client.sender, client.manager)
}
