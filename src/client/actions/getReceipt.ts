import type { Hex } from 'viem'
import { bytesToHex, hexToBytes } from '../../protocol/index.ts'
import type { PoseClientBase } from '../createPoseClient.ts'
import { PoseError } from '../errors.ts'
import { postWhenReady } from '../transport.ts'
import { openReceipt, type PoseReceipt } from './sendTransaction.ts'

export type GetReceiptParameters = { txHash: Hex }

/**
 * The receipt of a transaction this client sent whose answer was lost (e.g. a timeout): the
 * executor answers a resubmitted transaction idempotently with its receipt, so resubmitting
 * the same encrypted request never executes it twice.
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
  const sent = client.state.sent.get(p.txHash.toLowerCase())
  if (!sent) {
    throw new PoseError(`No pending transaction ${p.txHash} in this client`, {
      details:
        'Receipts are encrypted to the key of the client that sent the transaction; only that client can fetch them.',
    })
  }
  const { sealed } = await postWhenReady<{ sealed: Hex }>(
    `${sent.endpoint}/v1/instances/${sent.instance}/tx`,
    { box: bytesToHex(sent.box) },
    { timeoutMs: client.failover.requestTimeoutMs },
  )
  const r = await openReceipt(client, {
    instance: sent.instance,
    txHash: hexToBytes(p.txHash, 'txHash', 32),
    // Checked here: an operator's answer without a `sealed` string is refused, typed.
    sealed: hexToBytes(sealed, 'sealed'),
    responseKey: sent.responseKey,
  })
  client.state.sent.delete(p.txHash.toLowerCase())
  return r
}
