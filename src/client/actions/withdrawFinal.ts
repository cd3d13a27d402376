import type { Address, Hash, Hex } from 'viem'
import {
  poseManagerAbi,
  readFinalBalancesPages,
  readInstanceEventData,
} from '../../chain/manager.ts'
import {
  bytesToHex,
  decodeTerminated,
  EventKind,
  equalBytes,
  type FinalBalance,
  finalBalanceProof,
  finalBalancesRoot,
  hexToBytes,
} from '../../protocol/index.ts'
import type { PoseClientBase } from '../createPoseClient.ts'
import { PoseError } from '../errors.ts'

export type FinalBalancesReturnType = {
  root: Hex
  balances: Array<{ account: Address; cumulative: bigint }>
}

/**
 * The final balances of a terminated instance, rebuilt from the manager's `Terminated` event
 * and its `FinalBalancesPage` events (final balances of more than 1,024 accounts come in pages)
 * and checked against the root the manager pays against. The event is searched from
 * `fromBlock` (default: the manager's deployment block).
 *
 * @example
 * ```ts
 * const { balances } = await getFinalBalances(client, { instance })
 * ```
 */
export async function getFinalBalances(
  client: PoseClientBase,
  p: { instance: bigint; fromBlock?: bigint },
): Promise<FinalBalancesReturnType> {
  const root = (await client.publicClient.readContract({
    address: client.manager,
    abi: poseManagerAbi,
    functionName: 'finalRoot',
    args: [p.instance],
  })) as Hex
  const data = await readInstanceEventData(
    client.publicClient,
    client.manager,
    p.instance,
    EventKind.Terminated,
    p,
  )
  if (!data) {
    throw new PoseError(`Instance ${p.instance} has not terminated`, {
      details: 'Final balances exist only after the executor published them on-chain.',
    })
  }
  // The last page in is in the `Terminated` event, the others in `FinalBalancesPage` events.
  const last = decodeTerminated(hexToBytes(data))
  const balances = [...last.balances]
  const pages = await readFinalBalancesPages(client.publicClient, client.manager, p.instance, p)
  for (const [page, pageData] of pages) {
    const t = decodeTerminated(hexToBytes(pageData), `FinalBalancesPage ${page}`)
    if (!equalBytes(t.root, last.root))
      throw new PoseError(
        `Instance ${p.instance}: page ${page} of its final balances has another root`,
      )
    balances.push(...t.balances)
  }
  // The events and the stored root must agree, and the leaves must build that root.
  if (
    !equalBytes(last.root, hexToBytes(root)) ||
    !equalBytes(finalBalancesRoot(balances), last.root)
  )
    throw new PoseError(`Instance ${p.instance}: final balances do not match their root`)
  return {
    root,
    balances: balances.map((b) => ({
      account: bytesToHex(b.account) as Address,
      cumulative: b.cumulative,
    })),
  }
}

export type WithdrawFinalReturnType = { cumulative: bigint; amount: bigint; hash: Hash }

/**
 * After termination: withdraws the caller's final balance (its final cumulative withdrawal
 * minus what it already withdrew) with a Merkle proof.
 *
 * @example
 * ```ts
 * const { amount } = await withdrawFinal(client, { instance })
 * ```
 */
export async function withdrawFinal(
  client: PoseClientBase,
  p: { instance: bigint; fromBlock?: bigint },
): Promise<WithdrawFinalReturnType> {
  const { balances } = await getFinalBalances(client, p)
  const me = client.account.address.toLowerCase()
  const mine = balances.find((b) => b.account.toLowerCase() === me)
  if (!mine)
    throw new PoseError(`No final balance for ${client.account.address} in instance ${p.instance}`)
  const already = (await client.publicClient.readContract({
    address: client.manager,
    abi: poseManagerAbi,
    functionName: 'withdrawnBy',
    args: [p.instance, client.account.address],
  })) as bigint
  if (mine.cumulative <= already) {
    throw new PoseError(`Nothing left to withdraw from instance ${p.instance}`, {
      details: `final cumulative ${mine.cumulative}, already withdrawn ${already}`,
    })
  }
  const leaves: FinalBalance[] = balances.map((b) => ({
    account: hexToBytes(b.account),
    cumulative: b.cumulative,
  }))
  const proof = finalBalanceProof(leaves, {
    account: hexToBytes(mine.account),
    cumulative: mine.cumulative,
  }).map(bytesToHex)
  const { hash } = await client.sender.write({
    address: client.manager,
    abi: poseManagerAbi,
    functionName: 'withdrawFinal',
    args: [p.instance, client.account.address, mine.cumulative, proof],
  })
  return { cumulative: mine.cumulative, amount: mine.cumulative - already, hash }
}
