/**
 * Messages of the optimistic path (SPEC §6) and their codecs. Each message has a typed form
 * (bytes and bigints) and a wire form, `encodeX`/`decodeX` convert and validate. Binary: update
 * bodies, update payloads and acks (docs/decisions/0008; payloads travel deflated and members
 * seal the updates they hold as binary records, 0013), and transactions, view calls, receipts
 * and answers (0011). JSON: deployments, peer envelopes, genesis and sync bodies.
 */
import { deflateRawSync, inflateRawSync } from 'node:zlib'
import { z } from 'zod'
import { ByteReader, ByteWriter } from './binary.ts'
import { PAIR_TAG_BYTES, pairTag, pairTagValid } from './box.ts'
import {
  addressToWord,
  bytesToUnprefixedHex,
  compareBytes,
  concatBytes,
  equalBytes,
  uintToWord,
  utf8,
} from './bytes.ts'
import { setBounded } from './cache.ts'
import {
  addressSchema,
  bytes32Schema,
  DECIMAL_UINT,
  dec,
  decodeJson,
  encodeJson,
  hex,
  hexSchema,
  signatureSchema,
  uint,
  uintSchema,
  unhex,
} from './codec.ts'
import { ERROR_CODES, type ErrorObject, ProtocolError } from './errors.ts'
import { hashTagged, hashTaggedWith, keccak256, keccakWritten } from './hash.ts'
import { LIMITS } from './limits.ts'
import { recoverAddress, signDigest } from './secp256k1.ts'
import type { Tx, ViewCall } from './typedData.ts'

/** Box contexts: a box made for one purpose never opens as another. */
export const BOX_CONTEXT = {
  tx: 'tx',
  view: 'view',
  deploy: 'deploy',
  genesis: 'genesis',
} as const

/** Associated data of client boxes: the instance id, so a box cannot move between instances. */
export const instanceAad = (instance: bigint): Uint8Array => uintToWord(instance, 'instance')

// ---------------------------------------------------------------- signed transactions

/**
 * A transaction as sent: signed itself (`signature` over its EIP-712 digest), or, with
 * `session`, in a box whose ephemeral key the sender authorised (`signature` over the `Session`
 * message naming that key and `session.validUntil`; docs/decisions/0014).
 */
export type SignedTx = Tx & { signature: Uint8Array; session?: { validUntil: bigint } }

/*
 * Transactions, view calls, receipts and answers are binary (docs/decisions/0011): every
 * transaction crosses them once each way, and as JSON with hex fields their encoding, parsing
 * and validation cost the client and the executor more than the EVM's own bookkeeping.
 * Big-endian, a version byte first, no trailing bytes; `bytes` is a u32 length and the bytes.
 *
 * tx      = version u8 = 1 | instance[32] | from[20] | nonce u64 | to[20] | value[32]
 *           | gasLimit u64 | signature[65] | data bytes
 *           or, session-authorised (0014), version u8 = 2 | the same up to gasLimit
 *           | validUntil u64 | signature[65] (over the Session message) | data bytes
 * view    = version u8 = 1 | instance[32] | from[20] | to[20] | expiry u64 | signature[65]
 *           | data bytes
 * receipt = version u8 = 4 | instance[32] | seq u64 | result | executor[20] | proof count u8
 *           | proof[32] × count | signature[65] (result as in an update payload, below;
 *           version 1, before decision 0015, has no proof count and no proof; versions 2 and 3
 *           are laid out as 4 and differ in what the signature covers: `Receipt.version`)
 * answer  = version u8 = 1 | kind u8, then by kind: 1 = receipt; 2 = view: status u8 | seq u64
 *           | returnData bytes; 3 = rejected: the error object as UTF-8 JSON
 */
const TX_VERSION = 1
const TX_SESSION_VERSION = 2
const VIEW_VERSION = 1
const RECEIPT_VERSION = 4
const ANSWER_VERSION = 1

function readVersion(r: ByteReader, expected: number): void {
  const version = r.u8('version')
  if (version !== expected) throw r.error('version', `unknown version ${version}`)
}

function checkBoxed(bytes: Uint8Array, what: string): void {
  if (bytes instanceof Uint8Array && bytes.length > LIMITS.maxTxBoxBytes)
    throw new ProtocolError(
      'OVERSIZED',
      `${what}: ${bytes.length} bytes exceeds ${LIMITS.maxTxBoxBytes}`,
    )
}

export function encodeSignedTx(tx: SignedTx): Uint8Array {
  const w = new ByteWriter('tx', 218 + tx.data.length)
    .u8(tx.session ? TX_SESSION_VERSION : TX_VERSION)
    .u256(tx.instance, 'instance')
    .fixed(tx.from, 20, 'from')
    .u64(tx.nonce, 'nonce')
    .fixed(tx.to, 20, 'to')
    .u256(tx.value, 'value')
    .u64(tx.gasLimit, 'gasLimit')
  if (tx.session) w.u64(tx.session.validUntil, 'session.validUntil')
  return w.fixed(tx.signature, 65, 'signature').bytes(tx.data).finish()
}

/**
 * A transaction from its encoding (the plaintext of a client's box). Its byte fields are views
 * into `bytes`, which the transaction then owns: an executor holds each transaction for a round
 * trip, longer than a young-generation collection, so fewer objects per transaction matter.
 */
export function decodeSignedTx(bytes: Uint8Array): SignedTx {
  checkBoxed(bytes, 'tx')
  const r = new ByteReader(bytes, 'tx')
  const version = r.u8('version')
  if (version !== TX_VERSION && version !== TX_SESSION_VERSION)
    throw r.error('version', `unknown version ${version}`)
  const instance = r.u256('instance')
  const from = r.fixedView(20, 'from')
  const nonce = r.u64('nonce')
  const to = r.fixedView(20, 'to')
  const value = r.u256('value')
  const gasLimit = r.u64('gasLimit')
  const session =
    version === TX_SESSION_VERSION ? { validUntil: r.u64('session.validUntil') } : undefined
  const signature = r.fixedView(65, 'signature')
  const n = r.u32('data.length')
  if (n > LIMITS.maxTxDataBytes)
    throw new ProtocolError('OVERSIZED', `tx.data: ${n} bytes exceeds ${LIMITS.maxTxDataBytes}`)
  const data = r.fixedView(n, 'data')
  r.end()
  return session
    ? { instance, from, nonce, to, value, gasLimit, signature, session, data }
    : { instance, from, nonce, to, value, gasLimit, signature, data }
}

export type SignedView = ViewCall & { signature: Uint8Array }

export function encodeSignedView(v: SignedView): Uint8Array {
  return new ByteWriter('view', 150 + v.data.length)
    .u8(VIEW_VERSION)
    .u256(v.instance, 'instance')
    .fixed(v.from, 20, 'from')
    .fixed(v.to, 20, 'to')
    .u64(v.expiry, 'expiry')
    .fixed(v.signature, 65, 'signature')
    .bytes(v.data)
    .finish()
}

export function decodeSignedView(bytes: Uint8Array): SignedView {
  checkBoxed(bytes, 'view')
  const r = new ByteReader(bytes, 'view')
  readVersion(r, VIEW_VERSION)
  const v = {
    instance: r.u256('instance'),
    from: r.fixed(20, 'from'),
    to: r.fixed(20, 'to'),
    expiry: r.u64('expiry'),
    signature: r.fixed(65, 'signature'),
    data: r.bytes('data'),
  }
  r.end()
  return v
}

// ---------------------------------------------------------------- deployment

export type DeployRequest = { instance: bigint; initCode: Uint8Array }

const deploySchema = z.strictObject({ instance: uintSchema, initCode: hexSchema })

export function encodeDeployRequest(d: DeployRequest): Uint8Array {
  return encodeJson({ instance: dec(d.instance), initCode: hex(d.initCode) })
}

export function decodeDeployRequest(bytes: Uint8Array): DeployRequest {
  const w = decodeJson(bytes, deploySchema, 'deploy', LIMITS.maxDeployBoxBytes)
  return {
    instance: uint(w.instance, 'deploy.instance'),
    initCode: unhex(w.initCode, 'deploy.initCode'),
  }
}

/** What `createContract` commits to: the creation bytecode with its constructor arguments. */
export function initCommitment(initCode: Uint8Array): Uint8Array {
  return hashTagged('POSE-INIT-v1', [keccak256(initCode)])
}

// ---------------------------------------------------------------- receipts and answers

export type ReceiptLog = { address: Uint8Array; topics: Uint8Array[]; data: Uint8Array }

export type Receipt = {
  instance: bigint
  txHash: Uint8Array
  from: Uint8Array
  nonce: bigint
  seq: bigint
  status: 'success' | 'revert' | 'error'
  gasUsed: bigint
  returnData: Uint8Array
  logs: ReceiptLog[]
  executor: Uint8Array
  /**
   * The receipt's path in the tree of receipts its executor released together (siblings from
   * the leaf up; `receiptTree`): the signature is over the tree's root. Empty or absent: the
   * signature is over the receipt's own digest.
   */
  proof?: Uint8Array[]
  /**
   * Set on a receipt decoded from an earlier version, whose signature covers other hashes: 3
   * (and 1, with no proof) a tagged digest (`receiptDigestTagged`, before decision 0017) and
   * one-block nodes; 2 (decision 0015, before 0016) also tagged nodes (`receiptNodeTagged`).
   * Absent: the current version, a one-pass digest (`receiptDigest`) and one-block nodes.
   */
  version?: 2 | 3
  signature: Uint8Array
}

const STATUS = ['success', 'revert', 'error'] as const

const logSchema = z.strictObject({
  address: addressSchema,
  topics: z.array(bytes32Schema).max(4),
  data: hexSchema,
})

function logToWire(l: ReceiptLog) {
  return { address: hex(l.address), topics: l.topics.map(hex), data: hex(l.data) }
}

function logFromWire(
  l: { address: string; topics: string[]; data: string },
  field: string,
): ReceiptLog {
  return {
    address: unhex(l.address, `${field}.address`, 20),
    topics: l.topics.map((t, j) => unhex(t, `${field}.topics.${j}`, 32)),
    data: unhex(l.data, `${field}.data`),
  }
}

function logsHash(logs: ReceiptLog[]): Uint8Array {
  let size = 0
  for (const l of logs) for (const t of l.topics) size += t.length
  return keccakWritten(size + 96 * logs.length, (w) => {
    for (const l of logs) {
      w.address(l.address, 'log.address').uint(BigInt(l.topics.length))
      for (const t of l.topics) w.raw(t)
      w.word(keccak256(l.data))
    }
  })
}

/**
 * The digest an executor enclave signs for a receipt, or the leaf of the tree of receipts it
 * signs the root of (docs/decisions/0017): keccak256 of the byte 0x02, the domain and the
 * receipt's fields in their binary encoding (instance, seq, executor, then the result as a
 * receipt carries it), in one pass with no inner hashes. Every variable-length field has its
 * length before it, so no two receipts share a preimage; 0x02 and the length keep it apart
 * from a tree node (0x01 and 64 bytes).
 */
export function receiptDigest(
  r: Omit<Receipt, 'signature' | 'proof'>,
  domain: { chainId: bigint; manager: Uint8Array },
): Uint8Array {
  const size = RECEIPT_DIGEST_HEAD + executedBytes(r)
  const w = size <= RECEIPT_DIGEST_KEPT ? digestWriter.reset() : new ByteWriter('receipt', size)
  w.u8(RECEIPT_DIGEST_PREFIX)
    .u256(domain.chainId, 'chainId')
    .fixed(domain.manager, 20, 'manager')
    .u256(r.instance, 'instance')
    .u64(r.seq, 'seq')
    .fixed(r.executor, 20, 'executor')
  return keccak256(writeExecuted(w, r).written())
}
const RECEIPT_DIGEST_PREFIX = 2
/** The bytes of a digest's preimage before the result: prefix, domain, instance, seq, executor. */
const RECEIPT_DIGEST_HEAD = 1 + 32 + 20 + 32 + 8 + 20
/**
 * Preimages up to this size are written into one writer kept between calls (a typed array
 * above 64 bytes gets a backing store of its own, which costs more than the hash); larger ones
 * (long return data or logs) into a writer of their own.
 */
const RECEIPT_DIGEST_KEPT = 1024
const digestWriter = new ByteWriter('receipt', RECEIPT_DIGEST_KEPT)

/**
 * The digest of receipts of versions 1 to 3 (before decision 0017): the tagged hash of twelve
 * words, the return data and the logs hashed on their own first.
 */
export function receiptDigestTagged(
  r: Omit<Receipt, 'signature' | 'proof'>,
  domain: { chainId: bigint; manager: Uint8Array },
): Uint8Array {
  // Hashed before the digest's words are written: a hash inside `write` gets a buffer of its own.
  const returnDataHash = keccak256(r.returnData)
  const logs = logsHash(r.logs)
  return hashTaggedWith('POSE-RECEIPT-v1', 12, (w) =>
    w
      .uint(domain.chainId, 'chainId')
      .address(domain.manager, 'manager')
      .uint(r.instance, 'instance')
      .word(r.txHash, 'txHash')
      .address(r.from, 'from')
      .uint(r.nonce, 'nonce', 64)
      .uint(r.seq, 'seq', 64)
      .uint(BigInt(STATUS.indexOf(r.status)), 'status')
      .uint(r.gasUsed, 'gasUsed')
      .word(returnDataHash)
      .word(logs)
      .address(r.executor, 'executor'),
  )
}

/** Most siblings in a receipt's proof: trees of up to 2^20 receipts. */
export const MAX_RECEIPT_PROOF = 20

/**
 * An interior node of a receipt tree (docs/decisions/0016): keccak256 of the byte 0x01 and its
 * children in byte order, 65 bytes in one keccak block. A receipt digest hashes a preimage of
 * several hundred bytes, so no node is also a receipt digest's preimage, and no digest a node's.
 */
export function receiptNode(a: Uint8Array, b: Uint8Array): Uint8Array {
  const [lower, higher] = compareBytes(a, b) <= 0 ? [a, b] : [b, a]
  if (lower.length !== 32 || higher.length !== 32)
    throw new ProtocolError('MALFORMED', 'receipt tree: nodes are 32 bytes')
  nodeInput.set(lower, 1)
  nodeInput.set(higher, 33)
  return keccak256(nodeInput)
}
/** `receiptNode`'s input, kept between calls: the prefix byte, then the two children. */
const nodeInput = Uint8Array.of(1, ...new Uint8Array(64))

/** An interior node of a version 2 receipt's tree (decision 0015): a tagged hash of the pair. */
export function receiptNodeTagged(a: Uint8Array, b: Uint8Array): Uint8Array {
  return hashTagged('POSE-RECEIPT-NODE-v1', compareBytes(a, b) <= 0 ? [a, b] : [b, a])
}

/**
 * A binary tree over receipt digests (docs/decisions/0015; its nodes `receiptNode`, 0016):
 * pairs from the left at each level, an odd last node moves up as it is. Returns the root and
 * each leaf's siblings from the leaf up; one leaf is its own root with no siblings.
 */
export function receiptTree(leaves: Uint8Array[]): { root: Uint8Array; proofs: Uint8Array[][] } {
  if (leaves.length === 0) throw new ProtocolError('MALFORMED', 'receipt tree: no leaves')
  const proofs: Uint8Array[][] = leaves.map(() => [])
  const at = leaves.map((_, i) => i)
  let level = leaves
  while (level.length > 1) {
    const next: Uint8Array[] = []
    for (let j = 0; j < level.length; j += 2)
      next.push(j + 1 < level.length ? receiptNode(level[j]!, level[j + 1]!) : level[j]!)
    for (let i = 0; i < leaves.length; i++) {
      const sibling = at[i]! ^ 1
      if (sibling < level.length) proofs[i]!.push(level[sibling]!)
      at[i] = at[i]! >> 1
    }
    level = next
  }
  return { root: level[0]!, proofs }
}

/** The root a receipt's signature is over: its digest folded with its proof. */
export function receiptRoot(
  r: Omit<Receipt, 'signature'>,
  domain: { chainId: bigint; manager: Uint8Array },
): Uint8Array {
  let node = r.version ? receiptDigestTagged(r, domain) : receiptDigest(r, domain)
  const fold = r.version === 2 ? receiptNodeTagged : receiptNode
  for (const sibling of r.proof ?? []) node = fold(node, sibling)
  return node
}

export function signReceipt(
  r: Omit<Receipt, 'signature' | 'proof'>,
  domain: { chainId: bigint; manager: Uint8Array },
  secretKey: Uint8Array,
): Receipt {
  return signed(r, signDigest(receiptDigest(r, domain), secretKey))
}

/**
 * A receipt's fields but its signature and proof, named one by one: on Node 20 a spread followed
 * by new properties (`{ ...r, instance, seq }`) costs microseconds per object, the V8 runtime
 * adding each property in turn, where this costs nanoseconds.
 */
export function unsignedReceipt(
  r: ExecutedTx,
  instance: bigint,
  seq: bigint,
  executor: Uint8Array,
): Omit<Receipt, 'signature' | 'proof'> {
  return {
    instance,
    txHash: r.txHash,
    from: r.from,
    nonce: r.nonce,
    seq,
    status: r.status,
    gasUsed: r.gasUsed,
    returnData: r.returnData,
    logs: r.logs,
    executor,
  }
}

/** A copy of `r` with its signature (and proof). */
function signed(
  r: Omit<Receipt, 'signature' | 'proof'>,
  signature: Uint8Array,
  proof?: Uint8Array[],
): Receipt {
  return withSignature(unsignedReceipt(r, r.instance, r.seq, r.executor), signature, proof)
}

/** Completes a receipt object made for it (by `unsignedReceipt`), without copying. */
function withSignature(
  fresh: Omit<Receipt, 'signature' | 'proof'>,
  signature: Uint8Array,
  proof?: Uint8Array[],
): Receipt {
  const out = fresh as Receipt
  out.signature = signature
  if (proof) out.proof = proof
  return out
}

/**
 * Signs receipts released together under one signature over their tree's root (decision
 * 0015); each receipt carries its proof. One receipt gets a plain signature.
 */
export function signReceipts(
  rs: Array<Omit<Receipt, 'signature' | 'proof'>>,
  domain: { chainId: bigint; manager: Uint8Array },
  secretKey: Uint8Array,
): Receipt[] {
  if (rs.length === 1) return [signReceipt(rs[0]!, domain, secretKey)]
  const { root, proofs } = receiptTree(rs.map((r) => receiptDigest(r, domain)))
  const signature = signDigest(root, secretKey)
  return rs.map((r, i) => signed(r, signature, proofs[i]!))
}

/**
 * Signers recovered lately from (receipt root, signature) pairs. Receipts released together
 * share one signature over one root (decision 0015), so a process that checks many of them (a
 * wallet or service acting for many accounts, an indexer, the benchmark's load generator)
 * recovers the signer once per release instead of once per receipt. An entry is found by its
 * root and holds the signature it was recovered from: it answers only that exact pair, and
 * the same root with another signature is recovered afresh. (Keyed by the root alone, the map
 * hashes a 64-character string per receipt instead of a 196-character one.)
 */
const RECENT_RECEIPT_SIGNERS = 256
const recentReceiptSigners = new Map<string, { signature: Uint8Array; signer: Uint8Array }>()

function receiptSigner(root: Uint8Array, signature: Uint8Array): Uint8Array {
  const key = bytesToUnprefixedHex(root)
  const known = recentReceiptSigners.get(key)
  if (known && equalBytes(known.signature, signature)) return known.signer
  const signer = recoverAddress(root, signature)
  setBounded(
    recentReceiptSigners,
    key,
    { signature: signature.slice(), signer },
    RECENT_RECEIPT_SIGNERS,
  )
  return signer
}

/** Checks the receipt's signature and that it was made by `executor`. Returns the signer. */
export function verifyReceiptSignature(
  r: Receipt,
  domain: { chainId: bigint; manager: Uint8Array },
): Uint8Array {
  const signer = receiptSigner(receiptRoot(r, domain), r.signature)
  if (!equalBytes(signer, r.executor)) {
    throw new ProtocolError('BAD_SIGNATURE', 'receipt: signature is not by the named executor')
  }
  return signer
}

export function encodeReceipt(r: Receipt): Uint8Array {
  return writeReceipt(new ByteWriter('receipt', receiptBytes(r)), r).finish()
}

/** The encoded size of a receipt (`writeReceipt`), so its writer never grows. */
function receiptBytes(r: Receipt): number {
  return 1 + 32 + 8 + executedBytes(r) + 20 + 1 + 32 * (r.proof?.length ?? 0) + 65
}

/** The encoded size of an outcome (`writeExecuted`): its bytes in a receipt or an update. */
export function executedBytes(r: Pick<ExecutedTx, 'returnData' | 'logs'>): number {
  let n = 32 + 20 + 8 + 1 + 8 + 4 + r.returnData.length + 4
  for (const l of r.logs) n += 20 + 1 + 32 * l.topics.length + 4 + l.data.length
  return n
}

function writeReceipt(w: ByteWriter, r: Receipt): ByteWriter {
  const proof = r.proof ?? []
  if (proof.length > MAX_RECEIPT_PROOF)
    throw new ProtocolError('OUT_OF_RANGE', `receipt.proof: more than ${MAX_RECEIPT_PROOF} nodes`)
  w.u8(r.version ?? RECEIPT_VERSION)
    .u256(r.instance, 'instance')
    .u64(r.seq, 'seq')
  writeExecuted(w, r).fixed(r.executor, 20, 'executor').u8(proof.length)
  for (let i = 0; i < proof.length; i++) {
    const node = proof[i]!
    // The field's name is built only for the error: this loop runs for every receipt.
    if (node.length !== 32) throw w.error(`proof.${i}`, `expected 32 bytes, got ${node.length}`)
    w.raw(node)
  }
  return w.fixed(r.signature, 65, 'signature')
}

function readReceipt(r: ByteReader): Receipt {
  const version = r.u8('version')
  if (version < 1 || version > RECEIPT_VERSION)
    throw r.error('version', `unknown version ${version}`)
  const instance = r.u256('instance')
  const seq = r.u64('seq')
  const executed = readExecuted(r, 'result')
  const executor = r.fixed(20, 'executor')
  const proof: Uint8Array[] = []
  // Version 1 (before decision 0015) has no proof.
  const n = version === 1 ? 0 : r.u8('proof.length')
  if (n > MAX_RECEIPT_PROOF)
    throw r.error('proof.length', `${n} nodes exceeds ${MAX_RECEIPT_PROOF}`)
  for (let i = 0; i < n; i++) proof.push(r.fixed(32, `proof.${i}`))
  const signature = r.fixed(65, 'signature')
  const out = withSignature(
    unsignedReceipt(executed, instance, seq, executor),
    signature,
    n > 0 ? proof : undefined,
  )
  // Version 1 reads as 3 (a tagged digest, no proof), and so does a version 2 receipt without a
  // proof: its signature covers no node.
  if (version < RECEIPT_VERSION) out.version = version === 2 && n > 0 ? 2 : 3
  return out
}

export function decodeReceipt(bytes: Uint8Array): Receipt {
  checkSize(bytes, 'receipt')
  const r = new ByteReader(bytes, 'receipt')
  const receipt = readReceipt(r)
  r.end()
  return receipt
}

/**
 * What the enclave seals to the user's response key: a receipt, a view result or a typed
 * rejection. Operators see only ciphertext.
 */
export type Answer =
  | { kind: 'receipt'; receipt: Receipt }
  | { kind: 'view'; status: 'success' | 'revert' | 'error'; returnData: Uint8Array; seq: bigint }
  | { kind: 'rejected'; error: ErrorObject }

const errorObjectSchema = z.strictObject({
  name: z.string().max(100),
  code: z.enum(ERROR_CODES),
  message: z.string().max(1000),
  details: z.string().max(4000).optional(),
})

const ANSWER_KIND = { receipt: 1, view: 2, rejected: 3 } as const

export function encodeAnswer(a: Answer): Uint8Array {
  const w = new ByteWriter('answer', a.kind === 'receipt' ? 2 + receiptBytes(a.receipt) : 320)
    .u8(ANSWER_VERSION)
    .u8(ANSWER_KIND[a.kind])
  if (a.kind === 'receipt') return writeReceipt(w, a.receipt).finish()
  if (a.kind === 'view')
    return w
      .u8(statusCode(w, a.status, 'status'))
      .u64(a.seq, 'seq')
      .bytes(a.returnData)
      .finish()
  return w.raw(encodeJson(a.error)).finish()
}

/**
 * Decodes an answer. Its byte fields are views into `bytes` (`ByteReader`'s `owned`): the
 * caller gives an answer it just opened, or one it keeps as it is.
 */
export function decodeAnswer(bytes: Uint8Array): Answer {
  checkSize(bytes, 'answer')
  const r = new ByteReader(bytes, 'answer', true)
  readVersion(r, ANSWER_VERSION)
  const kind = r.u8('kind')
  if (kind === ANSWER_KIND.receipt) {
    const receipt = readReceipt(r)
    r.end()
    return { kind: 'receipt', receipt }
  }
  if (kind === ANSWER_KIND.view) {
    const status = readStatus(r, 'status')
    const seq = r.u64('seq')
    const returnData = r.bytes('returnData')
    r.end()
    return { kind: 'view', status, returnData, seq }
  }
  if (kind !== ANSWER_KIND.rejected) throw r.error('kind', `unknown kind ${kind}`)
  const w = decodeJson(r.rest(), errorObjectSchema, 'answer.error', 8 * 1024)
  const error: ErrorObject = { name: w.name, code: w.code, message: w.message }
  if (w.details !== undefined) error.details = w.details
  return { kind: 'rejected', error }
}

// ---------------------------------------------------------------- peer messages

export const PEER_KINDS = ['genesis', 'update', 'ack', 'sync'] as const
export type PeerKind = (typeof PEER_KINDS)[number]

/**
 * A message from one enclave to another, relayed by operators. `signature` is either the
 * sender enclave's secp256k1 signature (65 bytes) or, for an update or an ack to one member, a
 * tag under the key the two enclaves share (32 bytes, {@link tagEnvelope}; decision 0020).
 */
export type PeerEnvelope = {
  kind: PeerKind
  instance: bigint
  from: Uint8Array
  to: Uint8Array
  body: Uint8Array
  signature: Uint8Array
}

/** The kinds that may travel under a pair tag instead of a signature (decision 0020). */
export const TAGGED_PEER_KINDS: readonly PeerKind[] = ['update', 'ack']

/** The envelope's JSON shape (the reference for `envelopeFromWire`'s hand-written checks). */
export const envelopeSchema = z.strictObject({
  kind: z.enum(PEER_KINDS),
  instance: uintSchema,
  from: addressSchema,
  to: addressSchema,
  body: hexSchema,
  signature: z.union([signatureSchema, bytes32Schema]),
})

/** What an envelope's signature or tag covers; `bodyHash` is `keccak256(e.body)` when known. */
export function envelopeDigest(
  e: Omit<PeerEnvelope, 'signature'>,
  bodyHash: Uint8Array = keccak256(e.body),
): Uint8Array {
  return hashTagged('POSE-PEER-v1', [
    keccak256(utf8(e.kind)),
    uintToWord(e.instance),
    addressToWord(e.from),
    addressToWord(e.to),
    bodyHash,
  ])
}

/** `e` with its signature or tag, and no other field `e` may carry. */
function withAuth(e: Omit<PeerEnvelope, 'signature'>, signature: Uint8Array): PeerEnvelope {
  return { kind: e.kind, instance: e.instance, from: e.from, to: e.to, body: e.body, signature }
}

export function signEnvelope(
  e: Omit<PeerEnvelope, 'signature'>,
  secretKey: Uint8Array,
): PeerEnvelope {
  return withAuth(e, signDigest(envelopeDigest(e), secretKey))
}

/** Throws BAD_SIGNATURE unless `from` signed the envelope. */
export function verifyEnvelope(e: PeerEnvelope): void {
  const signer = recoverAddress(envelopeDigest(e), e.signature)
  if (!equalBytes(signer, e.from)) {
    throw new ProtocolError('BAD_SIGNATURE', `peer ${e.kind}: signature is not by the named sender`)
  }
}

/**
 * The envelope under a tag (decision 0020): `key` is the pair key of `from` and `to`
 * (`pairKey`), and the tag is its HMAC over the same digest a signature covers. Only an update
 * or an ack to one member travels this way.
 */
export function tagEnvelope(
  e: Omit<PeerEnvelope, 'signature'>,
  key: Uint8Array,
  bodyHash?: Uint8Array,
): PeerEnvelope {
  if (!TAGGED_PEER_KINDS.includes(e.kind) || equalBytes(e.to, BROADCAST))
    throw new ProtocolError(
      'MALFORMED',
      `peer ${e.kind}: only an update or an ack to one member is tagged`,
    )
  return withAuth(e, pairTag(key, envelopeDigest(e, bodyHash)))
}

/** Whether the envelope carries a pair tag rather than a signature. */
export const isTaggedEnvelope = (e: PeerEnvelope): boolean => e.signature.length === PAIR_TAG_BYTES

/** Throws BAD_SIGNATURE unless the envelope's tag is right under `key`, the pair key of `from` and `to`. */
export function verifyEnvelopeTag(e: PeerEnvelope, key: Uint8Array): void {
  if (!pairTagValid(key, envelopeDigest(e), e.signature)) {
    throw new ProtocolError('BAD_SIGNATURE', `peer ${e.kind}: tag is not the named sender's`)
  }
}

/** `to` of an envelope meant for every member (a watchdog challenge's update). */
export const BROADCAST = new Uint8Array(20)

/**
 * A watchdog challenge's payload (SPEC §6.9): the update the executor waits an ack for, with
 * the executor's signature over it as an `update` envelope to every member (`to` =
 * {@link BROADCAST}). A challenged watchdog that can apply it does so before it answers on-chain,
 * so its answer proves it holds the update even when no peer link reaches it.
 */
export type ChallengeUpdate = { signature: Uint8Array; body: Uint8Array }

export function encodeChallengeUpdate(c: ChallengeUpdate): Uint8Array {
  if (c.signature.length !== 65)
    throw new ProtocolError('MALFORMED', 'challenge update: signature must be 65 bytes')
  return concatBytes(c.signature, c.body)
}

export function decodeChallengeUpdate(bytes: Uint8Array): ChallengeUpdate {
  if (bytes.length <= 65)
    throw new ProtocolError('MALFORMED', 'challenge update: shorter than a signature and a body')
  return { signature: bytes.slice(0, 65), body: bytes.slice(65) }
}

export type PeerEnvelopeWire = z.infer<typeof envelopeSchema>

export function envelopeToWire(e: PeerEnvelope): PeerEnvelopeWire {
  return {
    kind: e.kind,
    instance: dec(e.instance),
    from: hex(e.from),
    to: hex(e.to),
    body: hex(e.body),
    signature: hex(e.signature),
  }
}

const ENVELOPE_FIELDS = ['kind', 'instance', 'from', 'to', 'body', 'signature'] as const

/**
 * Checks a peer envelope by hand rather than through zod (every peer message an enclave
 * receives passes here). The rules of `envelopeSchema`, which a differential test holds it to:
 * a plain object with exactly these fields, a known kind, a decimal instance, hex bytes of the
 * right sizes.
 */
export function envelopeFromWire(value: unknown): PeerEnvelope {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new ProtocolError('MALFORMED', 'peer: expected an object')
  const w = value as Record<string, unknown>
  const keys = Object.keys(w)
  for (const k of keys)
    if (!(ENVELOPE_FIELDS as readonly string[]).includes(k))
      throw new ProtocolError('MALFORMED', `peer.${k.slice(0, 40)}: unknown field`)
  for (const k of ENVELOPE_FIELDS)
    if (typeof w[k] !== 'string')
      throw new ProtocolError('MALFORMED', `peer.${k}: expected a string`)
  const kind = w.kind as PeerKind
  if (!PEER_KINDS.includes(kind))
    throw new ProtocolError('MALFORMED', `peer.kind: expected one of ${PEER_KINDS.join(', ')}`)
  const instance = w.instance as string
  if (!DECIMAL_UINT.test(instance))
    throw new ProtocolError('MALFORMED', 'peer.instance: expected a decimal integer')
  return {
    kind,
    instance: uint(instance, 'peer.instance'),
    from: unhex(w.from as string, 'peer.from', 20),
    to: unhex(w.to as string, 'peer.to', 20),
    body: unhex(w.body as string, 'peer.body'),
    signature: envelopeAuth(w.signature as string),
  }
}

/** A signature (65 bytes) or a pair tag (32 bytes). */
function envelopeAuth(h: string): Uint8Array {
  if (h.length !== 2 + 2 * PAIR_TAG_BYTES) return unhex(h, 'peer.signature', 65)
  return unhex(h, 'peer.signature', PAIR_TAG_BYTES)
}

export function encodeEnvelope(e: PeerEnvelope): Uint8Array {
  return encodeJson(envelopeToWire(e))
}

export function decodeEnvelope(bytes: Uint8Array): PeerEnvelope {
  return envelopeFromWire(decodeJson(bytes, z.unknown(), 'peer', LIMITS.maxPeerMessageBytes))
}

// ---------------------------------------------------------------- peer bodies

/** Header of a state update; `updateHash` chains updates (SPEC §6.3). */
export type UpdateHeader = {
  instance: bigint
  seq: bigint
  prevHash: Uint8Array
  payloadHash: Uint8Array
}

export function updateHash(h: UpdateHeader): Uint8Array {
  return hashTagged('POSE-UPDATE-v1', [
    uintToWord(h.instance),
    uintToWord(h.seq, 'seq', 64),
    h.prevHash,
    h.payloadHash,
  ])
}

/** The digest an executor enclave signs to answer an on-chain challenge (PoseManager.respondDigest). */
export function respondDigest(p: {
  chainId: bigint
  manager: Uint8Array
  instance: bigint
  response: Uint8Array
  eventIndex: bigint
  eventHash: Uint8Array
}): Uint8Array {
  return hashTagged('POSE-RESPOND-v1', [
    uintToWord(p.chainId),
    addressToWord(p.manager),
    uintToWord(p.instance),
    keccak256(p.response),
    uintToWord(p.eventIndex, 'eventIndex', 64),
    p.eventHash,
  ])
}

/** The digest a member enclave signs to authorise a withdrawal (PoseManager.withdrawDigest). */
export function withdrawDigest(p: {
  chainId: bigint
  manager: Uint8Array
  instance: bigint
  recipient: Uint8Array
  cumulative: bigint
  eventIndex: bigint
  eventHash: Uint8Array
}): Uint8Array {
  return hashTagged('POSE-WITHDRAW-v1', [
    uintToWord(p.chainId),
    addressToWord(p.manager),
    uintToWord(p.instance),
    addressToWord(p.recipient),
    uintToWord(p.cumulative),
    uintToWord(p.eventIndex, 'eventIndex', 64),
    p.eventHash,
  ])
}

/**
 * The digest the executor enclave signs for page `page` of `pages` of final balances
 * (PoseDigests.terminate): `pageHash` is the hash of `encodeFinalPage(root, page)`.
 */
export function terminateDigest(p: {
  chainId: bigint
  manager: Uint8Array
  instance: bigint
  root: Uint8Array
  page: number
  pages: number
  pageHash: Uint8Array
  eventIndex: bigint
  eventHash: Uint8Array
}): Uint8Array {
  return hashTagged('POSE-TERMINATE-v2', [
    uintToWord(p.chainId),
    addressToWord(p.manager),
    uintToWord(p.instance),
    p.root,
    uintToWord((BigInt(p.pages) << 16n) | BigInt(p.page)),
    p.pageHash,
    uintToWord(p.eventIndex, 'eventIndex', 64),
    p.eventHash,
  ])
}

/** The digest a watchdog enclave signs to answer a watchdog challenge (PoseManager.watchdogResponseDigest). */
export function watchdogResponseDigest(p: {
  chainId: bigint
  manager: Uint8Array
  instance: bigint
  slot: number
  eventIndex: bigint
  eventHash: Uint8Array
}): Uint8Array {
  return hashTagged('POSE-WATCHDOG-v1', [
    uintToWord(p.chainId),
    addressToWord(p.manager),
    uintToWord(p.instance),
    uintToWord(BigInt(p.slot), 'slot', 8),
    uintToWord(p.eventIndex, 'eventIndex', 64),
    p.eventHash,
  ])
}

/** The hash that update 1 chains to: it binds the genesis state. */
export function genesisUpdateHash(instance: bigint, genesisDigest: Uint8Array): Uint8Array {
  return hashTagged('POSE-GENESIS-v1', [uintToWord(instance), genesisDigest])
}

/** update: the write set of one batch, encrypted under the instance state key. */
export type UpdateBody = {
  seq: bigint
  prevHash: Uint8Array
  eventIndex: bigint
  digest: Uint8Array
  payload: Uint8Array
}

/** What an update's payload decrypts to. */
/** The outcome of one transaction of a batch: enough for any member to re-issue its receipt. */
export type ExecutedTx = Omit<Receipt, 'instance' | 'seq' | 'executor' | 'signature' | 'proof'>

export type UpdatePayload = {
  writeSet: Uint8Array
  results: ExecutedTx[]
  /**
   * The executor's chain clock floor after the update (decision 0032): the clock its
   * transactions ran at when every watchdog's report bounded it, else the floor before. A
   * member that applies the update never goes back before it once promoted.
   */
  blockNumber: bigint
  timestamp: bigint
}

/** genesis: contract keys and the full genesis state for a new member, boxed to its enclave key. */
export type GenesisSecrets = {
  contractSecretKey: Uint8Array
  stateKey: Uint8Array
  snapshot: Uint8Array
  seq: bigint
  lastHash: Uint8Array
  digest: Uint8Array
  eventIndex: bigint
  /**
   * The seq at which the sender became executor (0 for the first executor). A watchdog that
   * followed an earlier executor keeps what it knows about updates up to here, the prefix every
   * member shares, and drops the rest.
   */
  baseSeq: bigint
  /**
   * Deposits up to this event index are credited in a state every member holds (the sender's
   * `ChainView.settled`): the receiver's view may forget them. Absent on the wire: 0.
   */
  settled: bigint
  /**
   * Outcomes of the latest transactions the sender holds, so the receiver can re-issue their
   * receipts (a resubmitted transaction gets its receipt, not REPLAYED).
   */
  recent: Array<{ seq: bigint; result: ExecutedTx }>
  /**
   * The sender's chain clock floor (decision 0032, as in an update's payload): the receiver's,
   * if promoted, never goes back before it. Absent on the wire: 0 (none yet).
   */
  clockNumber: bigint
  clockTimestamp: bigint
}

/** Most transaction outcomes a genesis carries. */
export const MAX_RECENT_RESULTS = 1024
export type GenesisBody = { box: Uint8Array }

export type AckBody = {
  seq: bigint
  updateHash: Uint8Array
  digest: Uint8Array
  /** The executor whose log the acknowledging member follows (zero before any state). */
  stateFrom: Uint8Array
  /**
   * The latest probe nonce the addressee sent this member in a `sync` (zero for none): an ack
   * that carries the nonce of a restarted (or promoted) executor's probe was made after it, so a
   * replayed older ack cannot confirm that executor's state.
   */
  nonce: Uint8Array
  /**
   * The acknowledging member's chain view when it acked: its latest event index and the
   * running hash after it. The executor credits a deposit only once every watchdog's view
   * agrees with its own at or beyond the deposit (decision 0025): a view its own host forged
   * does not agree with views other operators feed.
   */
  viewIndex: bigint
  viewHash: Uint8Array
  /**
   * The acknowledging member's chain clock when it acked (the newest block its operator fed
   * it). The executor runs transactions at no later block and time than every watchdog's
   * latest report (decision 0032): a clock its own host pushed ahead is not the clock other
   * operators feed.
   */
  headNumber: bigint
  headTimestamp: bigint
}
/**
 * `nonce`: a probe an executor sends to learn what each member holds now (see `AckBody`);
 * `viewAt`: the event whose running hash the answer should report, when the member's view has
 * it (an executor waiting to credit a deposit names its own latest event, decision 0025).
 */
export type SyncBody = { fromSeq: bigint; nonce?: Uint8Array; viewAt?: bigint | undefined }

const executedTxSchema = z.strictObject({
  txHash: bytes32Schema,
  from: addressSchema,
  nonce: uintSchema,
  status: z.enum(STATUS),
  gasUsed: uintSchema,
  returnData: hexSchema,
  logs: z.array(logSchema).max(1024),
})
const genesisSecretsSchema = z.strictObject({
  contractSecretKey: bytes32Schema,
  stateKey: bytes32Schema,
  snapshot: hexSchema,
  seq: uintSchema,
  lastHash: bytes32Schema,
  digest: bytes32Schema,
  eventIndex: uintSchema,
  baseSeq: uintSchema,
  settled: uintSchema.optional(),
  recent: z.lazy(() => recentResultsSchema),
  clockNumber: uintSchema.optional(),
  clockTimestamp: uintSchema.optional(),
})
const genesisBodySchema = z.strictObject({ box: hexSchema })
const syncBodySchema = z.strictObject({
  fromSeq: uintSchema,
  nonce: bytes32Schema.optional(),
  viewAt: uintSchema.optional(),
})

const MAX = LIMITS.maxPeerMessageBytes

/**
 * Update bodies and payloads are binary (big-endian, version byte first, no trailing bytes): they
 * are the bulk of replication traffic, and hex inside JSON inside hex doubled their size twice.
 *
 * body    = version u8 = 1 | seq u64 | prevHash[32] | eventIndex u64 | digest[32] | payload*
 *           (* the payload deflated, `packUpdatePayload`, then sealed under the state key)
 * payload = version u8 = 1 | blockNumber u64 | timestamp u64 | writeSet bytes | results u32 | result*
 * result  = txHash[32] | from[20] | nonce u64 | status u8 | gasUsed u64 | returnData bytes
 *           | logs u32 | (address[20] | topics u8 | topic[32]* | data bytes)*
 * where `bytes` is a u32 length and the bytes.
 */
const UPDATE_BODY_VERSION = 1
const UPDATE_PAYLOAD_VERSION = 1
/** Most logs one transaction's outcome carries (the world turns more into an error). */
export const MAX_LOGS_PER_TX = 1024
const MAX_TOPICS = 4

function checkSize(bytes: Uint8Array, what: string): void {
  if (bytes instanceof Uint8Array && bytes.length > MAX)
    throw new ProtocolError('OVERSIZED', `${what}: ${bytes.length} bytes exceeds ${MAX}`)
}

export function encodeUpdateBody(b: UpdateBody): Uint8Array {
  return new ByteWriter('update', 81 + b.payload.length)
    .u8(UPDATE_BODY_VERSION)
    .u64(b.seq, 'seq')
    .fixed(b.prevHash, 32, 'prevHash')
    .u64(b.eventIndex, 'eventIndex')
    .fixed(b.digest, 32, 'digest')
    .raw(b.payload)
    .finish()
}

export function decodeUpdateBody(bytes: Uint8Array): UpdateBody {
  checkSize(bytes, 'update')
  const r = new ByteReader(bytes, 'update')
  readVersion(r, UPDATE_BODY_VERSION)
  return {
    seq: r.u64('seq'),
    prevHash: r.fixed(32, 'prevHash'),
    eventIndex: r.u64('eventIndex'),
    digest: r.fixed(32, 'digest'),
    payload: r.rest(),
  }
}

/**
 * A member's sealed record of one update it holds (src/enclave/instance.ts seals it, appended
 * after its last snapshot): binary, and the payload deflated as it travels (decision 0013).
 * Other sealed records are JSON, whose first byte is `{`.
 *
 * record = tag u8 = 0xb1 | body bytes (`encodeUpdateBody`, payload = packed payload)
 *          | from? u8 (0 or 1) | from[20] if present
 */
export const SEALED_UPDATE_TAG = 0xb1

export type SealedUpdate = { body: UpdateBody; from?: Uint8Array | undefined }

export function encodeSealedUpdate(u: SealedUpdate): Uint8Array {
  const w = new ByteWriter('sealed.update', 110 + u.body.payload.length)
    .u8(SEALED_UPDATE_TAG)
    .bytes(encodeUpdateBody(u.body))
    .u8(u.from ? 1 : 0)
  if (u.from) w.fixed(u.from, 20, 'from')
  return w.finish()
}

export function decodeSealedUpdate(bytes: Uint8Array): SealedUpdate {
  checkSize(bytes, 'sealed.update')
  const r = new ByteReader(bytes, 'sealed.update')
  const tag = r.u8('tag')
  if (tag !== SEALED_UPDATE_TAG) throw r.error('tag', `expected ${SEALED_UPDATE_TAG}, got ${tag}`)
  const body = decodeUpdateBody(r.bytes('body'))
  const hasFrom = r.u8('from?')
  if (hasFrom > 1) throw r.error('from?', `expected 0 or 1, got ${hasFrom}`)
  const from = hasFrom === 1 ? r.fixed(20, 'from') : undefined
  r.end()
  return { body, from }
}

function statusCode(w: ByteWriter, status: ExecutedTx['status'], field: string): number {
  const code = STATUS.indexOf(status)
  if (code < 0) throw w.error(field, `unknown status ${status}`)
  return code
}

export function encodeUpdatePayload(p: UpdatePayload): Uint8Array {
  const w = new ByteWriter('update.payload', 64 + p.writeSet.length + p.results.length * 256)
    .u8(UPDATE_PAYLOAD_VERSION)
    .u64(p.blockNumber, 'blockNumber')
    .u64(p.timestamp, 'timestamp')
    .bytes(p.writeSet)
    .u32(p.results.length)
  for (const r of p.results) writeExecuted(w, r)
  return w.finish()
}

/**
 * An update payload's bytes besides its write set's and its results' (`encodeUpdatePayload`):
 * version, block number, timestamp, the write set's length and the results' count.
 */
export const UPDATE_PAYLOAD_FRAME_BYTES = 1 + 8 + 8 + 4 + 4

/** One transaction's outcome (`result` in the layouts above). */
function writeExecuted(w: ByteWriter, r: ExecutedTx): ByteWriter {
  w.fixed(r.txHash, 32, 'txHash')
    .fixed(r.from, 20, 'from')
    .u64(r.nonce, 'nonce')
    .u8(statusCode(w, r.status, 'result.status'))
    .u64(r.gasUsed, 'gasUsed')
    .bytes(r.returnData)
    .u32(r.logs.length)
  for (const l of r.logs) {
    if (l.topics.length > MAX_TOPICS)
      throw w.error('result.logs.topics', `a log has more than ${MAX_TOPICS} topics`)
    w.fixed(l.address, 20, 'log.address').u8(l.topics.length)
    for (const t of l.topics) w.fixed(t, 32, 'log.topic')
    w.bytes(l.data)
  }
  return w
}

function readStatus(r: ByteReader, at: string): ExecutedTx['status'] {
  const code = r.u8(at)
  const status = STATUS[code]
  if (status === undefined) throw r.error(at, `unknown status ${code}`)
  return status
}

function readExecuted(r: ByteReader, at: string): ExecutedTx {
  const txHash = r.fixed(32, `${at}.txHash`)
  const from = r.fixed(20, `${at}.from`)
  const nonce = r.u64(`${at}.nonce`)
  const status = readStatus(r, `${at}.status`)
  const gasUsed = r.u64(`${at}.gasUsed`)
  const returnData = r.bytes(`${at}.returnData`)
  const logs: ReceiptLog[] = []
  const m = r.count(`${at}.logs`, MAX_LOGS_PER_TX)
  for (let j = 0; j < m; j++) {
    const address = r.fixed(20, `${at}.logs.${j}.address`)
    const k = r.u8(`${at}.logs.${j}.topics`)
    if (k > MAX_TOPICS) throw r.error(`${at}.logs.${j}.topics`, `${k} exceeds ${MAX_TOPICS}`)
    const topics: Uint8Array[] = []
    for (let t = 0; t < k; t++) topics.push(r.fixed(32, `${at}.logs.${j}.topics.${t}`))
    logs.push({ address, topics, data: r.bytes(`${at}.logs.${j}.data`) })
  }
  return { txHash, from, nonce, status, gasUsed, returnData, logs }
}

const FAST_DEFLATE = { level: 1 }
const FAST_DEFLATE_ABOVE = 4096

/**
 * An update's payload travels deflated (raw DEFLATE, RFC 1951) inside its encryption
 * (docs/decisions/0013): about half of a payload is zero bytes (amounts, return values and
 * padded addresses in 32-byte words), and each byte of it is calldata and log data when the
 * executor challenges its watchdogs on-chain. The update's hash stays over the plain payload.
 */
export function packUpdatePayload(plain: Uint8Array): Uint8Array {
  // A large payload at level 1: one of 64 transfers (25 KB) deflates in 71 µs instead of 232 µs
  // at the default level, to 8,115 bytes instead of 7,871 (bench/README.md, 2026-12-05,
  // midday). A small one, which a watchdog challenge may carry on-chain, at the default level.
  const packed = deflateRawSync(plain, plain.length > FAST_DEFLATE_ABOVE ? FAST_DEFLATE : {})
  return new Uint8Array(packed.buffer, packed.byteOffset, packed.byteLength)
}

/** The plain payload of `packed`; MALFORMED if it does not inflate within the size limit. */
export function unpackUpdatePayload(packed: Uint8Array): Uint8Array {
  let plain: Buffer
  try {
    plain = inflateRawSync(packed, { maxOutputLength: LIMITS.maxPeerMessageBytes })
  } catch (e) {
    throw new ProtocolError(
      'MALFORMED',
      `update.payload: does not inflate (${(e as Error).message.slice(0, 80)})`,
    )
  }
  return new Uint8Array(plain.buffer, plain.byteOffset, plain.byteLength)
}

/**
 * A decoded update payload; `resultBytes[i]` is `results[i]` as encoded (`encodeExecuted`), a
 * view into one copy of the payload's results (not of its write set). The byte fields of
 * `results` and `writeSet` are views into the payload.
 */
export type DecodedUpdatePayload = UpdatePayload & { resultBytes: Uint8Array[] }

export function decodeUpdatePayload(bytes: Uint8Array): DecodedUpdatePayload {
  // `results` and `writeSet` are views into `bytes`, for a watchdog reading them as it applies
  // the update; what is kept (`resultBytes`) is a copy.
  const results: ExecutedTx[] = []
  const p = readUpdatePayload(bytes, (r, i) => results.push(readExecuted(r, `results.${i}`)))
  return {
    writeSet: p.writeSet,
    results,
    resultBytes: p.resultBytes,
    blockNumber: p.blockNumber,
    timestamp: p.timestamp,
  }
}

/**
 * An update payload's header and write set, with each outcome read by `each` in turn; then each
 * outcome's bytes, views into one copy of them all (not of the write set).
 */
function readUpdatePayload(
  bytes: Uint8Array,
  each: (r: ByteReader, i: number) => unknown,
): Omit<ScannedUpdatePayload, 'txHashes'> {
  checkSize(bytes, 'update.payload')
  const r = new ByteReader(bytes, 'update.payload', true)
  readVersion(r, UPDATE_PAYLOAD_VERSION)
  const blockNumber = r.u64('blockNumber')
  const timestamp = r.u64('timestamp')
  const writeSet = r.bytes('writeSet')
  const n = r.count('results', LIMITS.maxBatchTxs)
  const ends: number[] = []
  const start = r.offset
  for (let i = 0; i < n; i++) {
    each(r, i)
    ends.push(r.offset - start)
  }
  r.end()
  const region = bytes.slice(start)
  const resultBytes = ends.map((end, i) => region.subarray(i === 0 ? 0 : ends[i - 1], end))
  return { writeSet, blockNumber, timestamp, resultBytes }
}

/** What a watchdog takes from an update's payload (`scanUpdatePayload`). */
export type ScannedUpdatePayload = {
  writeSet: Uint8Array
  blockNumber: bigint
  timestamp: bigint
  /** Each outcome as its bytes (`encodeExecuted`'s layout), views into one copy of them all. */
  resultBytes: Uint8Array[]
  /** Each outcome's transaction hash: the first 32 of its bytes. */
  txHashes: Uint8Array[]
}

/**
 * An update's payload as a watchdog uses it: the write set it applies, and each outcome as the
 * bytes it keeps to re-issue receipts, with the transaction hash it keeps them under.
 * `decodeUpdatePayload` turns every outcome into some twenty objects (0.6 µs each for a
 * transfer's), which a watchdog would only read the hash of. Every field is checked as there:
 * the same payloads are refused, and with `decodeUpdatePayload`'s error, which names the field.
 */
export function scanUpdatePayload(bytes: Uint8Array): ScannedUpdatePayload {
  try {
    return scanPayload(bytes)
  } catch (e) {
    // The scan's labels are fixed strings; the decoder builds each field's name as it reads.
    decodeUpdatePayload(bytes)
    throw e
  }
}

function scanPayload(bytes: Uint8Array): ScannedUpdatePayload {
  const p = readUpdatePayload(bytes, skipExecuted)
  return {
    writeSet: p.writeSet,
    blockNumber: p.blockNumber,
    timestamp: p.timestamp,
    resultBytes: p.resultBytes,
    txHashes: p.resultBytes.map((b) => b.subarray(0, 32)),
  }
}

/** Passes over one outcome, checking what `readExecuted` checks. */
function skipExecuted(r: ByteReader): void {
  r.skip(32 + 20 + 8, 'result') // txHash, from, nonce
  readStatus(r, 'result.status')
  r.skip(8, 'result.gasUsed')
  r.skipBytes('result.returnData')
  const m = r.count('result.logs', MAX_LOGS_PER_TX)
  for (let j = 0; j < m; j++) {
    r.skip(20, 'log.address')
    const k = r.u8('log.topics')
    if (k > MAX_TOPICS) throw r.error('log.topics', `${k} exceeds ${MAX_TOPICS}`)
    r.skip(32 * k, 'log.topics')
    r.skipBytes('log.data')
  }
}

/**
 * One outcome as bytes (`writeExecuted`'s layout, as in an update's payload and a receipt). An
 * enclave keeps the outcomes it may re-issue receipts for this way: decoded, each is some twenty
 * small objects that live for seconds, which the garbage collector copies and promotes; as bytes
 * it is one.
 */
export function encodeExecuted(r: ExecutedTx): Uint8Array {
  return writeExecuted(new ByteWriter('result', executedBytes(r)), r).finish()
}

export function decodeExecuted(bytes: Uint8Array): ExecutedTx {
  const r = new ByteReader(bytes, 'result')
  const result = readExecuted(r, 'result')
  r.end()
  return result
}

const executedToWire = (r: ExecutedTx) => ({
  txHash: hex(r.txHash),
  from: hex(r.from),
  nonce: dec(r.nonce),
  status: r.status,
  gasUsed: dec(r.gasUsed),
  returnData: hex(r.returnData),
  logs: r.logs.map(logToWire),
})

const executedFromWire = (r: z.infer<typeof executedTxSchema>, at: string): ExecutedTx => ({
  txHash: unhex(r.txHash, `${at}.txHash`, 32),
  from: unhex(r.from, `${at}.from`, 20),
  nonce: uint(r.nonce, `${at}.nonce`, 64),
  status: r.status,
  gasUsed: uint(r.gasUsed, `${at}.gasUsed`),
  returnData: unhex(r.returnData, `${at}.returnData`),
  logs: r.logs.map((l, j) => logFromWire(l, `${at}.logs.${j}`)),
})

export const recentResultsSchema = z
  .array(z.strictObject({ seq: uintSchema, result: executedTxSchema }))
  .max(MAX_RECENT_RESULTS)

/** Transaction outcomes as JSON values (in a genesis and in a sealed snapshot). */
export const recentResultsToWire = (recent: Array<{ seq: bigint; result: ExecutedTx }>) =>
  recent.map((x) => ({ seq: dec(x.seq), result: executedToWire(x.result) }))

export const recentResultsFromWire = (
  w: z.infer<typeof recentResultsSchema>,
  at: string,
): Array<{ seq: bigint; result: ExecutedTx }> =>
  w.map((x, i) => ({
    seq: uint(x.seq, `${at}.${i}.seq`, 64),
    result: executedFromWire(x.result, `${at}.${i}.result`),
  }))

export const encodeGenesisSecrets = (g: GenesisSecrets): Uint8Array =>
  encodeJson({
    contractSecretKey: hex(g.contractSecretKey),
    stateKey: hex(g.stateKey),
    snapshot: hex(g.snapshot),
    seq: dec(g.seq),
    lastHash: hex(g.lastHash),
    digest: hex(g.digest),
    eventIndex: dec(g.eventIndex),
    baseSeq: dec(g.baseSeq),
    settled: dec(g.settled),
    recent: recentResultsToWire(g.recent),
    clockNumber: dec(g.clockNumber),
    clockTimestamp: dec(g.clockTimestamp),
  })

export function decodeGenesisSecrets(bytes: Uint8Array): GenesisSecrets {
  const w = decodeJson(bytes, genesisSecretsSchema, 'genesis', MAX)
  return {
    contractSecretKey: unhex(w.contractSecretKey, 'genesis.contractSecretKey', 32),
    stateKey: unhex(w.stateKey, 'genesis.stateKey', 32),
    snapshot: unhex(w.snapshot, 'genesis.snapshot'),
    seq: uint(w.seq, 'genesis.seq', 64),
    lastHash: unhex(w.lastHash, 'genesis.lastHash', 32),
    digest: unhex(w.digest, 'genesis.digest', 32),
    eventIndex: uint(w.eventIndex, 'genesis.eventIndex', 64),
    baseSeq: uint(w.baseSeq, 'genesis.baseSeq', 64),
    settled: uint(w.settled ?? '0', 'genesis.settled', 64),
    recent: recentResultsFromWire(w.recent, 'genesis.recent'),
    clockNumber: uint(w.clockNumber ?? '0', 'genesis.clockNumber', 64),
    clockTimestamp: uint(w.clockTimestamp ?? '0', 'genesis.clockTimestamp', 64),
  }
}

export const encodeGenesisBody = (b: GenesisBody): Uint8Array => encodeJson({ box: hex(b.box) })
export function decodeGenesisBody(bytes: Uint8Array): GenesisBody {
  const w = decodeJson(bytes, genesisBodySchema, 'genesis', MAX)
  return { box: unhex(w.box, 'genesis.box') }
}

/**
 * ack = version u8 = 3 | seq u64 | updateHash[32] | digest[32] | stateFrom[20] | nonce[32]
 *       | viewIndex u64 | viewHash[32] | headNumber u64 | headTimestamp u64 (181 bytes).
 */
const ACK_VERSION = 3

export const encodeAckBody = (b: AckBody): Uint8Array =>
  new ByteWriter('ack', 181)
    .u8(ACK_VERSION)
    .u64(b.seq, 'seq')
    .fixed(b.updateHash, 32, 'updateHash')
    .fixed(b.digest, 32, 'digest')
    .fixed(b.stateFrom, 20, 'stateFrom')
    .fixed(b.nonce, 32, 'nonce')
    .u64(b.viewIndex, 'viewIndex')
    .fixed(b.viewHash, 32, 'viewHash')
    .u64(b.headNumber, 'headNumber')
    .u64(b.headTimestamp, 'headTimestamp')
    .finish()

export function decodeAckBody(bytes: Uint8Array): AckBody {
  const r = new ByteReader(bytes, 'ack')
  readVersion(r, ACK_VERSION)
  const body = {
    seq: r.u64('seq'),
    updateHash: r.fixed(32, 'updateHash'),
    digest: r.fixed(32, 'digest'),
    stateFrom: r.fixed(20, 'stateFrom'),
    nonce: r.fixed(32, 'nonce'),
    viewIndex: r.u64('viewIndex'),
    viewHash: r.fixed(32, 'viewHash'),
    headNumber: r.u64('headNumber'),
    headTimestamp: r.u64('headTimestamp'),
  }
  r.end()
  return body
}

export function encodeSyncBody(b: SyncBody): Uint8Array {
  const w: Record<string, string> = { fromSeq: dec(b.fromSeq) }
  if (b.nonce) w.nonce = hex(b.nonce)
  if (b.viewAt !== undefined) w.viewAt = dec(b.viewAt)
  return encodeJson(w)
}
export function decodeSyncBody(bytes: Uint8Array): SyncBody {
  const w = decodeJson(bytes, syncBodySchema, 'sync', 4096)
  const body: SyncBody = { fromSeq: uint(w.fromSeq, 'sync.fromSeq', 64) }
  if (w.nonce) body.nonce = unhex(w.nonce, 'sync.nonce', 32)
  if (w.viewAt !== undefined) body.viewAt = uint(w.viewAt, 'sync.viewAt', 64)
  return body
}
