import {
  bytesToHex,
  hexToBytes,
  keccak256,
  SYSTEM_ADDRESS_HEX,
  utf8,
  wordToUint,
} from '../../protocol/index.ts'
import type { PoseClientBase } from '../createPoseClient.ts'
import { PoseError } from '../errors.ts'
import { signedView } from './getNonce.ts'

const BALANCE_SELECTOR = bytesToHex(keccak256(utf8('balance()')).subarray(0, 4))

/**
 * The caller's coin balance inside an instance's world (a signed view call: only the account
 * itself can read it).
 *
 * @example
 * ```ts
 * const wei = await getBalance(client, { instance })
 * ```
 */
export async function getBalance(client: PoseClientBase, p: { instance: bigint }): Promise<bigint> {
  const r = await signedView(client, {
    instance: p.instance,
    to: SYSTEM_ADDRESS_HEX,
    data: BALANCE_SELECTOR,
  })
  if (r.status !== 'success') throw new PoseError(`balance() failed (${r.status})`)
  return wordToUint(hexToBytes(r.returnData, 'balance', 32))
}
