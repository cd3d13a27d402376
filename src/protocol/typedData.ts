/**
 * EIP-712 hashing of what users sign (SPEC §6.1, §6.7), so any wallet can sign a POSE
 * transaction. Hand-written for speed on the executor's hot path; a known-answer test checks it
 * against viem's `hashTypedData` and the Solidity `PoseTypedData` library.
 */
import { addressToWord, assertBytes, concatBytes, equalBytes, uintToWord, utf8 } from './bytes.ts'
import { keccak256, keccakWritten } from './hash.ts'

export type PoseDomain = { chainId: bigint; manager: Uint8Array }

/** An off-chain transaction of a POSE instance, as the user signs it. */
export type Tx = {
  instance: bigint
  from: Uint8Array
  nonce: bigint
  to: Uint8Array
  value: bigint
  data: Uint8Array
  gasLimit: bigint
}

/** A signed, read-only call answered from the current state with `msg.sender = from`. */
export type ViewCall = {
  instance: bigint
  from: Uint8Array
  to: Uint8Array
  data: Uint8Array
  expiry: bigint
}

/**
 * A user's authorisation of a box session (docs/decisions/0014): transactions for `instance`
 * from `account` carried in boxes sealed with the ephemeral x25519 key `boxKey` are the user's
 * until the chain's clock passes `validUntil` (unix seconds). One signature per session instead
 * of one per transaction.
 */
export type SessionAuth = {
  instance: bigint
  account: Uint8Array
  boxKey: Uint8Array
  validUntil: bigint
}

export const EIP712_DOMAIN_TYPE =
  'EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)'
export const TX_TYPE =
  'Tx(uint256 instance,address from,uint64 nonce,address to,uint256 value,bytes data,uint64 gasLimit)'
export const VIEW_TYPE = 'View(uint256 instance,address from,address to,bytes data,uint64 expiry)'
export const SESSION_TYPE =
  'Session(uint256 instance,address account,bytes32 boxKey,uint64 validUntil)'

/** viem-compatible `types` for wallets (`signTypedData`). */
export const poseTypes = {
  Tx: [
    { name: 'instance', type: 'uint256' },
    { name: 'from', type: 'address' },
    { name: 'nonce', type: 'uint64' },
    { name: 'to', type: 'address' },
    { name: 'value', type: 'uint256' },
    { name: 'data', type: 'bytes' },
    { name: 'gasLimit', type: 'uint64' },
  ],
  View: [
    { name: 'instance', type: 'uint256' },
    { name: 'from', type: 'address' },
    { name: 'to', type: 'address' },
    { name: 'data', type: 'bytes' },
    { name: 'expiry', type: 'uint64' },
  ],
  Session: [
    { name: 'instance', type: 'uint256' },
    { name: 'account', type: 'address' },
    { name: 'boxKey', type: 'bytes32' },
    { name: 'validUntil', type: 'uint64' },
  ],
} as const

export const POSE_DOMAIN_NAME = 'POSE'
export const POSE_DOMAIN_VERSION = '1'

const DOMAIN_TYPEHASH = keccak256(utf8(EIP712_DOMAIN_TYPE))
const TX_TYPEHASH = keccak256(utf8(TX_TYPE))
const VIEW_TYPEHASH = keccak256(utf8(VIEW_TYPE))
const SESSION_TYPEHASH = keccak256(utf8(SESSION_TYPE))
const NAME_HASH = keccak256(utf8(POSE_DOMAIN_NAME))
const VERSION_HASH = keccak256(utf8(POSE_DOMAIN_VERSION))

const separators = new Map<string, Uint8Array>()
/** The domain asked for last (a process signs or checks for one manager, transaction after transaction). */
let last: { chainId: bigint; manager: Uint8Array; separator: Uint8Array } | undefined

export function domainSeparator(domain: PoseDomain): Uint8Array {
  if (last && last.chainId === domain.chainId && equalBytes(last.manager, domain.manager))
    return last.separator
  const key = `${domain.chainId}:${Buffer.from(domain.manager).toString('hex')}`
  let sep = separators.get(key)
  if (!sep) {
    sep = keccak256(
      concatBytes(
        DOMAIN_TYPEHASH,
        NAME_HASH,
        VERSION_HASH,
        uintToWord(domain.chainId),
        addressToWord(domain.manager),
      ),
    )
    if (separators.size > 64) separators.clear()
    separators.set(key, sep)
  }
  // A copy of the manager: the caller's array may change after this call.
  last = { chainId: domain.chainId, manager: domain.manager.slice(), separator: sep }
  return sep
}

const EIP712_PREFIX = new Uint8Array([0x19, 0x01])

function typedDigest(domain: PoseDomain, structHash: Uint8Array): Uint8Array {
  const separator = domainSeparator(domain)
  return keccakWritten(66, (w) => w.raw(EIP712_PREFIX).raw(separator).raw(structHash))
}

export function txStructHash(tx: Tx): Uint8Array {
  const dataHash = keccak256(assertBytes(tx.data, 'data'))
  return keccakWritten(8 * 32, (w) =>
    w
      .raw(TX_TYPEHASH)
      .uint(tx.instance, 'instance')
      .address(tx.from, 'from')
      .uint(tx.nonce, 'nonce', 64)
      .address(tx.to, 'to')
      .uint(tx.value, 'value')
      .word(dataHash)
      .uint(tx.gasLimit, 'gasLimit', 64),
  )
}

/** The EIP-712 digest of a Tx: what the user signs and what identifies the tx everywhere. */
export function hashTx(domain: PoseDomain, tx: Tx): Uint8Array {
  return typedDigest(domain, txStructHash(tx))
}

export function hashViewCall(domain: PoseDomain, view: ViewCall): Uint8Array {
  return typedDigest(
    domain,
    keccak256(
      concatBytes(
        VIEW_TYPEHASH,
        uintToWord(view.instance, 'instance'),
        addressToWord(view.from),
        addressToWord(view.to),
        keccak256(assertBytes(view.data, 'data')),
        uintToWord(view.expiry, 'expiry', 64),
      ),
    ),
  )
}

/** The EIP-712 digest of a session authorisation (what the user signs once per box session). */
export function hashSession(domain: PoseDomain, s: SessionAuth): Uint8Array {
  return typedDigest(
    domain,
    keccak256(
      concatBytes(
        SESSION_TYPEHASH,
        uintToWord(s.instance, 'instance'),
        addressToWord(s.account),
        assertBytes(s.boxKey, 'boxKey', 32),
        uintToWord(s.validUntil, 'validUntil', 64),
      ),
    ),
  )
}
