import type { Address, Hex } from 'viem'
import { readFormerMember } from '../../chain/manager.ts'
import {
  BOX_CONTEXT,
  bytesToHex,
  decodeAnswer,
  encodeSignedTx,
  equalBytes,
  hashSession,
  hashTx,
  hexToBytes,
  INSTANCE_ADDRESS_HEX,
  instanceAad,
  intrinsicGas,
  LIMITS,
  openAnswer,
  ProtocolError,
  type Receipt,
  type SignedTx,
  type Tx,
  verifyReceiptSignature,
} from '../../protocol/index.ts'
import type { PoseClientBase } from '../createPoseClient.ts'
import {
  PoseError,
  PoseRequestError,
  ReceiptVerificationError,
  TransactionUnconfirmedError,
} from '../errors.ts'
import { mayHaveBeenExecuted, requestWithFailover } from '../failover.ts'
import {
  cachedActiveInstance,
  type GetInstanceReturnType,
  getInstance,
  ZERO_KEY,
} from './getInstance.ts'
import { getNonce, sealRequest, signTyped } from './getNonce.ts'

export type SendTransactionParameters = {
  instance: bigint
  /** Target inside the instance's world; defaults to the instance contract. */
  to?: Address
  data?: Hex
  value?: bigint
  /** Default: 1,000,000 above the transaction's intrinsic gas (21,000 and its calldata). */
  gasLimit?: bigint
}

export type PoseReceipt = {
  instance: bigint
  txHash: Hex
  from: Address
  nonce: bigint
  seq: bigint
  status: 'success' | 'revert' | 'error'
  gasUsed: bigint
  returnData: Hex
  logs: { address: Hex; topics: Hex[]; data: Hex }[]
  executor: Address
  /** Siblings of the receipt in the tree its executor signed the root of (decision 0015). */
  proof: Hex[]
  signature: Hex
}

export type SendTransactionReturnType = PoseReceipt

export function receiptToJson(r: Receipt): PoseReceipt {
  return {
    instance: r.instance,
    txHash: bytesToHex(r.txHash),
    from: bytesToHex(r.from),
    nonce: r.nonce,
    seq: r.seq,
    status: r.status,
    gasUsed: r.gasUsed,
    returnData: bytesToHex(r.returnData),
    logs: r.logs.map((l) => ({
      address: bytesToHex(l.address),
      topics: l.topics.map(bytesToHex),
      data: bytesToHex(l.data),
    })),
    executor: bytesToHex(r.executor),
    proof: (r.proof ?? []).map(bytesToHex),
    signature: bytesToHex(r.signature),
  }
}

/** Opens an answer sealed to `responseKey`; returns the verified receipt or throws the rejection. */
export async function openReceipt(
  client: PoseClientBase,
  p: { instance: bigint; txHash: Uint8Array; sealed: Uint8Array | Hex; responseKey: Uint8Array },
): Promise<PoseReceipt> {
  const sealed = typeof p.sealed === 'string' ? hexToBytes(p.sealed, 'sealed') : p.sealed
  const answer = decodeAnswer(openAnswer(p.responseKey, sealed))
  if (answer.kind === 'rejected') {
    throw new PoseRequestError(answer.error.message, {
      code: answer.error.code,
      origin: 'enclave',
      ...(answer.error.details ? { details: answer.error.details } : {}),
    })
  }
  if (answer.kind !== 'receipt')
    throw new PoseError(`expected a receipt, got a ${answer.kind} answer`)
  const r = answer.receipt
  if (!equalBytes(r.txHash, p.txHash) || r.instance !== p.instance) {
    throw new ReceiptVerificationError('Receipt is for another transaction')
  }
  verifyReceiptSignature(r, client.domain)
  const signer = bytesToHex(r.executor).toLowerCase()
  let info =
    cachedActiveInstance(client, p.instance) ??
    (await getInstance(client, { instance: p.instance }))
  if (!info.memberSigners.has(signer)) {
    info = await getInstance(client, { instance: p.instance, refresh: true })
    // An executor releases a receipt once every watchdog holds its update; it may be replaced
    // before the receipt reaches its sender, and the receipt stays valid.
    if (
      !info.memberSigners.has(signer) &&
      !(await readFormerMember(client.publicClient, client.manager, p.instance, signer as Hex))
    ) {
      throw new ReceiptVerificationError(
        `Receipt signed by ${bytesToHex(r.executor)}, which is not a registered member enclave of instance ${p.instance}`,
      )
    }
  }
  return receiptToJson(r)
}

/**
 * Signs a transaction (EIP-712), encrypts it to the instance's contract key, sends it to the
 * executor and returns its receipt once every watchdog holds the new state. The receipt is
 * verified against the enclave keys registered on-chain.
 *
 * @example
 * ```ts
 * const receipt = await sendTransaction(client, { instance, data: encodeFunctionData({ abi, functionName: 'transfer', args: [to, 1n] }) })
 * ```
 */
export async function sendTransaction(
  client: PoseClientBase,
  p: SendTransactionParameters,
): Promise<SendTransactionReturnType> {
  const info =
    cachedActiveInstance(client, p.instance) ??
    (await getInstance(client, { instance: p.instance }))
  const recipientPublicKey = contractKeyOf(info)
  if (!recipientPublicKey) {
    throw new PoseError(`Instance ${p.instance} is not active yet (phase ${info.phaseName})`)
  }
  // Everything that can refuse the transaction itself runs before it takes a nonce: a nonce
  // taken by a transaction that is never sent would hold back every later one.
  const tx: Tx = {
    instance: p.instance,
    from: hexToBytes(client.account.address, 'from', 20),
    nonce: 0n,
    to: hexToBytes(p.to ?? INSTANCE_ADDRESS_HEX, 'to', 20),
    value: p.value ?? 0n,
    data: hexToBytes(p.data ?? '0x', 'data'),
    gasLimit: 0n,
  }
  const intrinsic = intrinsicGas(tx.data)
  tx.gasLimit = p.gasLimit ?? DEFAULT_EXECUTION_GAS + intrinsic
  checkTxFields(tx, intrinsic)
  const lease = await takeNonce(client, p.instance, p.instance.toString())
  tx.nonce = lease.nonce
  try {
    return await sendLeased(client, tx, lease, recipientPublicKey)
  } finally {
    endLease(client, lease, false)
  }
}

/** Seals and sends `tx`, whose nonce `lease` holds, and again signed itself if its session fails. */
async function sendLeased(
  client: PoseClientBase,
  tx: Tx,
  lease: NonceLease,
  recipientPublicKey: Uint8Array,
): Promise<SendTransactionReturnType> {
  const txHash = hashTx(client.domain, tx)
  // A transaction that fails to seal is not sent (the chain's head for the session's
  // authorisation, or the signature, failed): its nonce is given back.
  const sealed = await sealTx(client, tx, txHash, recipientPublicKey, client.sessionAuth).catch(
    (e: unknown) => {
      endLease(client, lease, true)
      throw e
    },
  )
  try {
    return await sendSealed(client, tx, txHash, sealed, lease, false)
  } catch (e) {
    // The session's authorisation expired on the chain's clock (or an enclave refused it): the
    // transaction goes again, signed itself. Same transaction, same hash: idempotent.
    if (!(e instanceof PoseRequestError) || !sealed.session) throw e
    if (e.code !== 'EXPIRED' && e.code !== 'BAD_SIGNATURE') throw e
    client.state.sessionAuths.delete(sealed.session)
    // An attempt of the session's box that went unanswered may have run (or the host, which
    // holds that box, may still have it run): the second leg cannot make it refused.
    const unsure = e instanceof TransactionUnconfirmedError
    let again: SealedTx
    try {
      again = await sealTx(client, tx, txHash, recipientPublicKey, false)
    } catch (sealError) {
      // Not sent again: the nonce is free only if the session's box was refused for sure.
      if (unsure) throw e
      endLease(client, lease, true)
      throw sealError
    }
    return sendSealed(client, tx, txHash, again, lease, unsure)
  }
}

const MAX_U64 = (1n << 64n) - 1n
const MAX_U256 = (1n << 256n) - 1n
/** Gas a transaction gets by default beyond its intrinsic gas. */
const DEFAULT_EXECUTION_GAS = 1_000_000n

/**
 * Refuses what the enclave would refuse of a transaction's fields, before it takes a nonce;
 * `intrinsic` is the transaction's intrinsic gas.
 */
function checkTxFields(tx: Tx, intrinsic: bigint): void {
  if (typeof tx.value !== 'bigint' || tx.value < 0n || tx.value > MAX_U256)
    throw new ProtocolError('OUT_OF_RANGE', `value: ${tx.value} is not a 256-bit unsigned integer`)
  if (typeof tx.gasLimit !== 'bigint' || tx.gasLimit < 0n || tx.gasLimit > MAX_U64)
    throw new ProtocolError(
      'OUT_OF_RANGE',
      `gasLimit: ${tx.gasLimit} is not a 64-bit unsigned integer`,
    )
  if (tx.data.length > LIMITS.maxTxDataBytes)
    throw new ProtocolError(
      'OVERSIZED',
      `data: ${tx.data.length} bytes, more than a transaction's ${LIMITS.maxTxDataBytes}`,
    )
  if (tx.gasLimit < intrinsic)
    throw new ProtocolError(
      'OUT_OF_RANGE',
      `gasLimit: ${tx.gasLimit} is below the transaction's intrinsic gas ${intrinsic}`,
    )
}

/** A nonce taken by a transaction being sent; ended once its send is over. */
type NonceLease = { key: string; nonce: bigint; ended: boolean }

/**
 * The next nonce of the client's account in `instance`: one given back by a transaction that was
 * refused (the lowest first, so that the gap it left is filled), else the one after the last
 * taken, else the enclave's (a signed view call; concurrent first sends take it in turn). A nonce
 * held by a transaction still being sent is skipped: asked of the enclave again (after BAD_NONCE
 * or REPLAYED), the account's nonce can be one that such a transaction holds and its host has not
 * delivered yet, and of two transactions with one nonce only one can run.
 */
async function takeNonce(
  client: PoseClientBase,
  instance: bigint,
  key: string,
): Promise<NonceLease> {
  for (let resent = 0; ; resent++) {
    const lease = await leaseNonce(client, instance, key)
    const hashKey = client.state.unconfirmed.get(key)?.get(lease.nonce)
    if (hashKey === undefined || resent >= MAX_RESENT_PER_SEND) return lease
    // A transaction of this account that ended unconfirmed holds this nonce, and a host may
    // still hold its box: it goes again first, or that host could pick which of the two runs.
    // Once it ran, or while it may still run after a lower nonce being sent, this one takes the
    // next nonce; otherwise (refused, or unanswered again) this one takes its nonce.
    if ((await resendUnconfirmed(client, key, hashKey)) === 'free') return lease
    endLease(client, lease, false)
  }
}

/** How many unconfirmed transactions one send sends again before it takes a nonce. */
const MAX_RESENT_PER_SEND = 8
/** How long the resend of an unconfirmed transaction may take (beyond the enclave's 10 s wait). */
const RESEND_TIMEOUT_MS = 15_000

/**
 * Sends the kept transaction `hashKey` again, without challenging the executor on-chain and for
 * at most `RESEND_TIMEOUT_MS`. `ran`: it ran (its receipt is kept for `getReceipt`), or the
 * enclave answered that its nonce is used (`REPLAYED`). `held`: the enclave answered `BAD_NONCE`
 * while a lower nonce of the account is still being sent, after which it may run. `free`:
 * anything else; it stays kept, and a later send of that nonce sends it again.
 */
async function resendUnconfirmed(
  client: PoseClientBase,
  key: string,
  hashKey: string,
): Promise<'ran' | 'held' | 'free'> {
  const kept = client.state.sent.get(hashKey)
  if (!kept) return 'free'
  const byNonce = client.state.unconfirmed.get(key)
  byNonce?.delete(kept.nonce)
  if (byNonce?.size === 0) client.state.unconfirmed.delete(key)
  const txHash = hexToBytes(hashKey as Hex, 'txHash', 32)
  const failover = {
    ...client.failover,
    autoChallenge: false,
    timeoutMs: Math.min(client.failover.timeoutMs, RESEND_TIMEOUT_MS),
  }
  let outcome: 'ran' | 'held' | 'free' = 'free'
  try {
    kept.receipt = await requestWithFailover(
      { ...client, failover },
      kept.instance,
      'tx',
      kept.box,
      (sealed) =>
        openReceipt(client, {
          instance: kept.instance,
          txHash,
          sealed,
          responseKey: kept.responseKey,
        }),
    )
    return 'ran'
  } catch (e) {
    // Only the enclave's word counts (a host's refusal is no answer).
    const sealed = e instanceof PoseRequestError && e.origin === 'enclave'
    if (sealed && e.code === 'REPLAYED') outcome = 'ran'
    else if (sealed && e.code === 'BAD_NONCE' && lowerInFlight(client, key, kept.nonce))
      outcome = 'held'
  }
  if (outcome !== 'ran' && client.state.sent.get(hashKey) === kept)
    keepUnconfirmed(client, key, kept.nonce, hashKey)
  return outcome
}

/** Whether a transaction being sent holds a nonce below `nonce` of the account in `key`. */
function lowerInFlight(client: PoseClientBase, key: string, nonce: bigint): boolean {
  for (const n of client.state.noncesInFlight.get(key) ?? []) if (n < nonce) return true
  return false
}

/** The next nonce to take (see `takeNonce`), held at once. */
async function leaseNonce(
  client: PoseClientBase,
  instance: bigint,
  key: string,
): Promise<NonceLease> {
  const free = client.state.freeNonces.get(key)
  let nonce: bigint | undefined
  if (free && free.length > 0) {
    let low = 0
    for (let i = 1; i < free.length; i++) if (free[i]! < free[low]!) low = i
    nonce = free[low]!
    free.splice(low, 1)
    if (free.length === 0) client.state.freeNonces.delete(key)
  } else {
    nonce = client.state.nonces.get(key)
    if (nonce === undefined) {
      const fetched = await getNonce(client, { instance })
      // Another send of this account may have fetched it meanwhile and taken it.
      nonce = client.state.nonces.get(key) ?? fetched
    }
    const held = client.state.noncesInFlight.get(key)
    while (held?.has(nonce)) nonce++
    client.state.nonces.set(key, nonce + 1n)
  }
  const held = client.state.noncesInFlight.get(key)
  if (held) held.add(nonce)
  else client.state.noncesInFlight.set(key, new Set([nonce]))
  return { key, nonce, ended: false }
}

/**
 * Ends a transaction's hold on its nonce (once). `giveBack`: the enclave never took the
 * transaction (refused, or never sent), so the nonce is free again: the next send uses it, and the
 * account's later transactions are not held back by its gap.
 */
function endLease(client: PoseClientBase, lease: NonceLease, giveBack: boolean): void {
  if (lease.ended) return
  lease.ended = true
  const { key, nonce } = lease
  const held = client.state.noncesInFlight.get(key)
  held?.delete(nonce)
  if (held?.size === 0) client.state.noncesInFlight.delete(key)
  if (!giveBack) return
  const next = client.state.nonces.get(key)
  if (next === undefined || nonce >= next) return // forgotten since (BAD_NONCE, REPLAYED)
  if (next === nonce + 1n) {
    client.state.nonces.set(key, nonce)
    return
  }
  const free = client.state.freeNonces.get(key)
  if (!free) client.state.freeNonces.set(key, [nonce])
  else if (!free.includes(nonce)) free.push(nonce)
}

/** Each `getInstance` result's contract key, decoded once (a refresh makes a new result). */
const contractKeys = new WeakMap<GetInstanceReturnType, Uint8Array | null>()

/** The instance's contract key, or null while it has none (an instance not yet active). */
function contractKeyOf(info: GetInstanceReturnType): Uint8Array | null {
  let key = contractKeys.get(info)
  if (key === undefined) {
    key = ZERO_KEY.test(info.contractEncryptionKey)
      ? null
      : hexToBytes(info.contractEncryptionKey, 'contractEncryptionKey', 32)
    contractKeys.set(info, key)
  }
  return key
}

/** How long a session authorisation is valid on the chain's clock (decision 0014). */
export const SESSION_AUTH_SECONDS = 3600n

/**
 * The account's authorisation of a box session's key for `instance`: signed once per session
 * (concurrent sends share the signing), valid for `SESSION_AUTH_SECONDS` from the latest block.
 */
function sessionAuthFor(
  client: PoseClientBase,
  instance: bigint,
  boxKey: Uint8Array,
): { key: string; auth: Promise<{ validUntil: bigint; signature: Uint8Array }> } {
  const key = `${instance}:${bytesToHex(boxKey)}`
  let auth = client.state.sessionAuths.get(key)
  if (!auth) {
    auth = (async () => {
      const latest = await client.publicClient.getBlock({ blockTag: 'latest' })
      const validUntil = latest.timestamp + SESSION_AUTH_SECONDS
      const account = hexToBytes(client.account.address, 'account', 20)
      const session = { instance, account, boxKey, validUntil }
      const signature = await signTyped(
        client,
        'Session',
        { instance, account: client.account.address, boxKey: bytesToHex(boxKey), validUntil },
        hashSession(client.domain, session),
      )
      return { validUntil, signature: hexToBytes(signature, 'signature', 65) }
    })()
    auth.catch(() => client.state.sessionAuths.delete(key))
    // Sessions last minutes; the map only needs the current ones.
    if (client.state.sessionAuths.size >= 256) client.state.sessionAuths.clear()
    client.state.sessionAuths.set(key, auth)
  }
  return { key, auth }
}

type SealedTx = { box: Uint8Array; responseKey: Uint8Array; session?: string }

/**
 * The transaction with its signature, field by field: on Node 20 a spread followed by new
 * properties (`{ ...tx, signature }`) costs microseconds per object.
 */
function signedTx(tx: Tx, signature: Uint8Array, session?: { validUntil: bigint }): SignedTx {
  const out: SignedTx = {
    instance: tx.instance,
    from: tx.from,
    nonce: tx.nonce,
    to: tx.to,
    value: tx.value,
    gasLimit: tx.gasLimit,
    signature,
    data: tx.data,
  }
  if (session) out.session = session
  return out
}

/**
 * Signs and encrypts a transaction: in the client's box session with that session's
 * authorisation (`bySession`), or signed itself.
 */
async function sealTx(
  client: PoseClientBase,
  tx: Tx,
  txHash: Uint8Array,
  recipientPublicKey: Uint8Array,
  bySession: boolean,
): Promise<SealedTx> {
  // Named fields, no spread of shared parameters (see `signedTx`).
  const params = (plaintext: Uint8Array) => ({
    recipientPublicKey,
    context: BOX_CONTEXT.tx,
    aad: instanceAad(tx.instance),
    plaintext,
  })
  if (bySession && client.boxSessions) {
    const session = client.boxSessions.session(recipientPublicKey)
    const { key, auth } = sessionAuthFor(client, tx.instance, session.publicKey)
    const { validUntil, signature } = await auth
    const plaintext = encodeSignedTx(signedTx(tx, signature, { validUntil }))
    const { box, responseKey } = client.boxSessions.sealIn(session, params(plaintext))
    return { box, responseKey, session: key }
  }
  const signature = hexToBytes(
    await signTyped(
      client,
      'Tx',
      {
        instance: tx.instance,
        from: client.account.address,
        nonce: tx.nonce,
        to: bytesToHex(tx.to),
        value: tx.value,
        data: bytesToHex(tx.data),
        gasLimit: tx.gasLimit,
      },
      txHash,
    ),
    'signature',
    65,
  )
  return sealRequest(client, params(encodeSignedTx(signedTx(tx, signature))))
}

/**
 * Codes of a rejection after which the enclave holds nothing of the transaction, when the
 * enclave sealed it and no earlier attempt went unanswered (`mayHaveBeenExecuted`): its nonce
 * is free again. Not TIMEOUT, UNAVAILABLE or WRONG_ROLE (the failover's: it may have been executed
 * where the answer was lost), nor BAD_NONCE and REPLAYED (`NONCE_REFUSED`). Any other code the
 * enclave seals (INTERNAL, say) does not say the transaction never ran: it ends unconfirmed.
 */
const REFUSED = new Set<string>([
  'MALFORMED',
  'OUT_OF_RANGE',
  'OVERSIZED',
  'BAD_SIGNATURE',
  'DECRYPTION_FAILED',
  'EXPIRED',
  'UNKNOWN_INSTANCE',
  'WRONG_PHASE',
  'NOT_READY',
])

/**
 * Codes of a rejection by the transaction's nonce, which never say it did not run: REPLAYED is
 * also the answer to a resend of this very transaction once the enclave's cache of receipts
 * moved past it; BAD_NONCE answers a nonce ahead of the account's, which the enclave holds for
 * a while and then refuses (or refuses at once), and whose box its host keeps: sent again once
 * the nonces before it ran, it runs. Such a transaction ends unconfirmed, kept for
 * `getReceipt`, and the account's next nonce is asked of the enclave again.
 */
const NONCE_REFUSED = new Set<string>(['BAD_NONCE', 'REPLAYED'])

/** Transactions a client keeps for `getReceipt` whose answer never came; the oldest go first. */
export const MAX_SENT_KEPT = 4096

/**
 * Sends a sealed transaction (with failover) and returns its verified receipt. `unsureBefore`:
 * an earlier box of the same transaction may have run, so no refusal of this one is final.
 */
async function sendSealed(
  client: PoseClientBase,
  tx: Tx,
  txHash: Uint8Array,
  { box, responseKey, session }: SealedTx,
  lease: NonceLease,
  unsureBefore: boolean,
): Promise<SendTransactionReturnType> {
  const sentKey = bytesToHex(txHash)
  const sent = client.state.sent
  if (sent.size >= MAX_SENT_KEPT) forgetSent(client, sent.keys().next().value!)
  sent.set(sentKey, { instance: tx.instance, nonce: tx.nonce, box, responseKey })
  try {
    const receipt = await requestWithFailover(client, tx.instance, 'tx', box, (sealed) =>
      openReceipt(client, { instance: tx.instance, txHash, sealed, responseKey }),
    )
    forgetSent(client, sentKey)
    return receipt
  } catch (e) {
    const unconfirmed = sendFailure(client, tx, txHash, lease, session, unsureBefore, e)
    if (!unconfirmed) throw e
    keepUnconfirmed(client, lease.key, tx.nonce, sentKey)
    throw unconfirmed
  }
}

/**
 * What a failed send of `tx` means: a `TransactionUnconfirmedError` when it may have run (then
 * returned), else nothing (the caller throws `e` itself). Frees or keeps its nonce accordingly.
 */
function sendFailure(
  client: PoseClientBase,
  tx: Tx,
  txHash: Uint8Array,
  lease: NonceLease,
  session: string | undefined,
  unsureBefore: boolean,
  e: unknown,
): TransactionUnconfirmedError | undefined {
  // Executed perhaps: an attempt went unanswered (its answer lost), the refusal is the host's
  // word alone, or it names only the nonce (`NONCE_REFUSED`), or an earlier box may have run.
  const unsure =
    unsureBefore ||
    mayHaveBeenExecuted(e) ||
    (e instanceof PoseRequestError &&
      (e.origin === 'host' ||
        NONCE_REFUSED.has(e.code) ||
        (e.origin === 'enclave' && !REFUSED.has(e.code))))
  const hash = bytesToHex(txHash)
  if (!(e instanceof PoseRequestError))
    return unsure ? new TransactionUnconfirmedError(hash, tx.nonce, asRequest(e)) : undefined
  if (NONCE_REFUSED.has(e.code)) {
    // The account's next nonce is asked of the enclave again.
    client.state.nonces.delete(lease.key)
    client.state.freeNonces.delete(lease.key)
  } else if (REFUSED.has(e.code) && !unsure) {
    // EXPIRED and BAD_SIGNATURE of a session's transaction: `sendTransaction` sends it again,
    // signed itself, with the same nonce.
    if (!(session && (e.code === 'EXPIRED' || e.code === 'BAD_SIGNATURE')))
      endLease(client, lease, true)
    forgetSent(client, hash)
  }
  // Its nonce stays taken and `getReceipt` can still ask for its receipt.
  return unsure ? new TransactionUnconfirmedError(hash, tx.nonce, e) : undefined
}

/** Drops a kept transaction (its receipt came, or it was refused, or older ones go first). */
export function forgetSent(client: PoseClientBase, hashKey: string): void {
  const kept = client.state.sent.get(hashKey)
  client.state.sent.delete(hashKey)
  if (!kept) return
  const key = kept.instance.toString()
  const byNonce = client.state.unconfirmed.get(key)
  if (byNonce?.get(kept.nonce) !== hashKey) return
  byNonce.delete(kept.nonce)
  if (byNonce.size === 0) client.state.unconfirmed.delete(key)
}

/** Notes that the kept transaction `hashKey`, with `nonce`, ended unconfirmed. */
function keepUnconfirmed(
  client: PoseClientBase,
  key: string,
  nonce: bigint,
  hashKey: string,
): void {
  const byNonce = client.state.unconfirmed.get(key)
  if (byNonce) byNonce.set(nonce, hashKey)
  else client.state.unconfirmed.set(key, new Map([[nonce, hashKey]]))
}

/** Something other than a refusal that ended an unsure transaction's request, as a refusal. */
function asRequest(e: unknown): PoseRequestError {
  const code = e instanceof PoseError || e instanceof ProtocolError ? e.code : 'CLIENT'
  const message =
    e instanceof PoseError || e instanceof ProtocolError
      ? e.shortMessage
      : e instanceof Error
        ? e.message.split('\n')[0]!
        : String(e)
  return new PoseRequestError(message, { code, cause: e })
}
