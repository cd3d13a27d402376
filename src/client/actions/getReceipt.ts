import type { Hex } from 'viem'
import { hexToBytes } from '../../protocol/index.ts'
import type { PoseClientBase } from '../createPoseClient.ts'
import { PoseError } from '../errors.ts'
import { requestWithFailover } from '../failover.ts'
import { forgetSent, openReceipt, type PoseReceipt } from './sendTransaction.ts'

export type GetReceiptParameters = { txHash: Hex }

/**
 * The receipt of a transaction this client sent whose answer was lost (a timeout, or a
 * `TransactionUnconfirmedError`): the same encrypted request goes to the instance's current
 * executor (with the failover of `sendTransaction`), which answers a resubmitted transaction
 * idempotently with its receipt, so it never executes twice.
 *
 * @example
 * ```ts
 * const receipt = await getReceipt(client, { txHash })
 * ```
 */
export async function getReceipt(
  client: PoseClientBase,
  p: GetReceiptParameters,
): Promise<PoseReceipt> {
  const key = p.txHash.toLowerCase()
  const sent = client.state.sent.get(key)
  if (!sent) {
    throw new PoseError(`No pending transaction ${p.txHash} in this client`, {
      details:
        'Receipts are encrypted to the key of the client that sent the transaction; only that client can fetch them.',
    })
  }
  const txHash = hexToBytes(p.txHash, 'txHash', 32)
  // A later send of this client may have sent it again and got its receipt (`takeNonce`).
  const r =
    sent.receipt ??
    (await requestWithFailover(client, sent.instance, 'tx', sent.box, (sealed) =>
      openReceipt(client, {
        instance: sent.instance,
        txHash,
        sealed,
        responseKey: sent.responseKey,
      }),
    ))
  forgetSent(client, key)
  return r
}
