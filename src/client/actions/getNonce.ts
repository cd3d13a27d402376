import type { Address, Hex } from 'viem'
import {
  BOX_CONTEXT,
  type BoxSealParams,
  boxSeal,
  bytesToHex,
  decodeAnswer,
  encodeSignedView,
  hashViewCall,
  hexToBytes,
  instanceAad,
  openAnswer,
  POSE_DOMAIN_NAME,
  POSE_DOMAIN_VERSION,
  poseTypes,
  SYSTEM_ADDRESS_HEX,
  SYSTEM_NONCE_SELECTOR,
  wordToUint,
} from '../../protocol/index.ts'
import type { PoseClientBase } from '../createPoseClient.ts'
import { PoseError, PoseRequestError } from '../errors.ts'
import { requestWithFailover } from '../failover.ts'
import { getInstance, ZERO_KEY } from './getInstance.ts'

/**
 * Signs POSE typed data (EIP-712) with the client's account, as any wallet would. `digest` is
 * the EIP-712 digest of the same message, computed by the caller (it identifies the request
 * everywhere): an account that signs raw digests (viem's local accounts) signs it directly,
 * which gives the same signature without hashing the typed data a second time; other accounts
 * get the typed data.
 */
export async function signTyped(
  client: PoseClientBase,
  primaryType: 'Tx' | 'View' | 'Session',
  message: Record<string, unknown>,
  digest: Uint8Array,
): Promise<Hex> {
  if (client.account.sign) return client.account.sign({ hash: bytesToHex(digest) })
  return client.account.signTypedData({
    domain: {
      name: POSE_DOMAIN_NAME,
      version: POSE_DOMAIN_VERSION,
      chainId: Number(client.domain.chainId),
      verifyingContract: client.manager,
    },
    types: poseTypes,
    primaryType,
    message,
  } as never)
}

/**
 * Encrypts a request to an instance's contract key: under the client's box session for that
 * key (`sessionKeys`, the default) or with a fresh ephemeral key.
 */
export function sealRequest(client: PoseClientBase, p: BoxSealParams) {
  return client.boxSessions ? client.boxSessions.seal(p) : boxSeal(p)
}

export type ViewAnswer = { status: 'success' | 'revert' | 'error'; returnData: Hex; seq: bigint }

/** Sends a signed view call and opens its answer. */
export async function signedView(
  client: PoseClientBase,
  p: { instance: bigint; to: Address; data: Hex },
): Promise<ViewAnswer> {
  const info = await getInstance(client, { instance: p.instance })
  if (ZERO_KEY.test(info.contractEncryptionKey)) {
    throw new PoseError(`Instance ${p.instance} is not active yet (phase ${info.phaseName})`)
  }
  const latest = await client.publicClient.getBlock({ blockTag: 'latest' })
  const expiry = latest.timestamp + 600n
  const view = {
    instance: p.instance,
    from: hexToBytes(client.account.address, 'from', 20),
    to: hexToBytes(p.to, 'to', 20),
    data: hexToBytes(p.data, 'data'),
    expiry,
  }
  const signature = await signTyped(
    client,
    'View',
    { instance: p.instance, from: client.account.address, to: p.to, data: p.data, expiry },
    hashViewCall(client.domain, view),
  )
  const { box, responseKey } = sealRequest(client, {
    recipientPublicKey: hexToBytes(info.contractEncryptionKey, 'contractEncryptionKey', 32),
    plaintext: encodeSignedView({ ...view, signature: hexToBytes(signature, 'signature', 65) }),
    context: BOX_CONTEXT.view,
    aad: instanceAad(p.instance),
  })
  const answer = await requestWithFailover(client, p.instance, 'view', box, async (sealed) => {
    const a = decodeAnswer(openAnswer(responseKey, sealed))
    // WRONG_ROLE (the executor changed) makes the request fail over; other rejections return.
    if (a.kind === 'rejected' && a.error.code === 'WRONG_ROLE') {
      throw new PoseRequestError(a.error.message, { code: a.error.code, origin: 'enclave' })
    }
    return a
  })
  if (answer.kind === 'rejected') {
    throw new PoseRequestError(answer.error.message, { code: answer.error.code, origin: 'enclave' })
  }
  if (answer.kind !== 'view') throw new PoseError(`expected a view answer, got ${answer.kind}`)
  return { status: answer.status, returnData: bytesToHex(answer.returnData), seq: answer.seq }
}

/**
 * The next transaction nonce of the client's account in an instance (a signed view call).
 *
 * @example
 * ```ts
 * const nonce = await getNonce(client, { instance })
 * ```
 */
export async function getNonce(client: PoseClientBase, p: { instance: bigint }): Promise<bigint> {
  const r = await signedView(client, {
    instance: p.instance,
    to: SYSTEM_ADDRESS_HEX,
    data: bytesToHex(SYSTEM_NONCE_SELECTOR),
  })
  return wordToUint(hexToBytes(r.returnData, 'nonce', 32))
}
