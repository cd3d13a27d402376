/**
 * Encryption glue (SPEC §6.1): x25519 ECDH with an ephemeral key, HKDF-SHA256 and AES-256-GCM
 * from node:crypto. A box is `ephemeralPublicKey(32) || nonce(12) || ciphertext || tag(16)`.
 * The response key is derived from the same shared secret and carries the box's nonce, so only
 * the sender of a box can read the answer to it, and an answer opens only for the box it answers
 * (`sealAnswer`, `openAnswer`; decision 0019). Every box is bound to a `context` label and
 * optional associated data, so a box made for one purpose cannot be replayed as another.
 * `boxSeal` uses a fresh ephemeral key per box; a `BoxSessions` sealer reuses one per recipient
 * for a bounded number of boxes and time (docs/decisions/0012), and `boxOpen` remembers the
 * shared secrets of recent ephemeral keys.
 */
import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  hkdfSync,
  type KeyObject,
  timingSafeEqual,
} from 'node:crypto'
import {
  assertBytes,
  bytesToUnprefixedHex,
  compareBytes,
  concatBytes,
  randomBytes,
  utf8,
} from './bytes.ts'
import { setBounded } from './cache.ts'
import { ProtocolError } from './errors.ts'

const SPKI_PREFIX = Buffer.from('302a300506032b656e032100', 'hex')
const PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex')
const NONCE_BYTES = 12
const TAG_BYTES = 16
const KEY_BYTES = 32

export const BOX_OVERHEAD = KEY_BYTES + NONCE_BYTES + TAG_BYTES
export const SEALED_OVERHEAD = NONCE_BYTES + TAG_BYTES

export type X25519KeyPair = { secretKey: Uint8Array; publicKey: Uint8Array }

/*
 * Keys cross into node:crypto as JWK: OpenSSL's DER decoder costs 56–77 µs per key on these
 * machines, JWK 1–7 µs (a box seal went from 585 to under 100 µs).
 */
const b64u = (b: Uint8Array): string =>
  Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64url')
const fromB64u = (s: string | undefined): Uint8Array =>
  new Uint8Array(Buffer.from(s ?? '', 'base64url'))

/*
 * Key pairs come from random secrets imported as JWK, never from `generateKeyPairSync`: Node
 * (20.x) holds a key's lock while `export()` allocates its JWK strings, and a garbage
 * collection at that moment that frees the finished key-generation job of the same key takes
 * the same lock in the job's destructor: the thread waits on itself for ever. Seen as a client
 * process hung in `boxSeal` (gdb: `ExportJWKEdKey` → GC → `~KeyGenJob` → `uv_mutex_lock`);
 * test/unit/crypto.test.ts reproduces it with `--stress-compaction`. OpenSSL derives the public
 * key from `d` and ignores the JWK's `x` for a private key, so `x` is a placeholder here.
 */
const X_PLACEHOLDER = b64u(new Uint8Array(32))

/** A fresh x25519 key pair: the secret's bytes, its key object, and the public key's bytes. */
function freshKeyPair(): X25519KeyPair & { privateKey: KeyObject } {
  const secretKey = randomBytes(32)
  const privateKey = createPrivateKey({
    key: { kty: 'OKP', crv: 'X25519', d: b64u(secretKey), x: X_PLACEHOLDER },
    format: 'jwk',
  })
  return {
    secretKey,
    privateKey,
    publicKey: fromB64u(createPublicKey(privateKey).export({ format: 'jwk' }).x),
  }
}

export function generateX25519KeyPair(): X25519KeyPair {
  const { secretKey, publicKey } = freshKeyPair()
  return { secretKey, publicKey }
}

export function x25519PublicKey(secretKey: Uint8Array): Uint8Array {
  const key = createPrivateKey({
    key: Buffer.concat([PKCS8_PREFIX, assertBytes(secretKey, 'secretKey', 32)]),
    format: 'der',
    type: 'pkcs8',
  })
  const pk = createPublicKey(key).export({ format: 'der', type: 'spki' })
  return new Uint8Array(pk.subarray(SPKI_PREFIX.length))
}

/**
 * Long-lived secret keys (an enclave's, a contract's) are imported once: the import cost
 * about a fifth of an enclave's time per transaction. Keyed by the array itself, which key
 * holders never modify; ephemeral keys are fresh arrays and are collected with them.
 */
const privateKeyObjects = new WeakMap<Uint8Array, KeyObject>()

function privateKeyObject(secretKey: Uint8Array): KeyObject {
  let key = privateKeyObjects.get(secretKey)
  if (!key) {
    key = createPrivateKey({
      key: Buffer.concat([PKCS8_PREFIX, secretKey]),
      format: 'der',
      type: 'pkcs8',
    })
    privateKeyObjects.set(secretKey, key)
  }
  return key
}

function sharedSecret(secretKey: Uint8Array | KeyObject, publicKey: Uint8Array): Uint8Array {
  try {
    if (publicKey.length !== KEY_BYTES) throw new RangeError('expected 32 bytes')
    return new Uint8Array(
      diffieHellman({
        privateKey: secretKey instanceof Uint8Array ? privateKeyObject(secretKey) : secretKey,
        publicKey: createPublicKey({
          key: { kty: 'OKP', crv: 'X25519', x: b64u(publicKey) },
          format: 'jwk',
        }),
      }),
    )
  } catch (cause) {
    throw new ProtocolError('DECRYPTION_FAILED', 'box: invalid x25519 public key', { cause })
  }
}

/*
 * HKDF-SHA256 (RFC 5869) from HMACs: `hkdfSync` costs about twice as much per call on these
 * machines, and a box derives two keys from one extracted PRK.
 */
const hkdfExtract = (ikm: Uint8Array, salt: Uint8Array): Buffer =>
  createHmac('sha256', salt).update(ikm).digest()

/** The first block of HKDF-Expand: keys of up to 32 bytes. `info` is the label's UTF-8 bytes. */
function hkdfExpand(prk: Buffer, info: string, length: number): Uint8Array {
  const t = createHmac('sha256', prk).update(info).update(ONE).digest()
  return new Uint8Array(t.buffer, t.byteOffset, length)
}
const ONE = Uint8Array.of(1)

export function hkdf(
  ikm: Uint8Array,
  salt: Uint8Array,
  info: string,
  length = KEY_BYTES,
): Uint8Array {
  if (length > 32) return new Uint8Array(hkdfSync('sha256', ikm, salt, utf8(info), length))
  return hkdfExpand(hkdfExtract(ikm, salt), info, length)
}

/** One party of a pair key: its x25519 public key and the address it signs as. */
export type PairParty = { encryptionKey: Uint8Array; signer: Uint8Array }

/**
 * The key two enclaves share for authenticating messages between them (decision 0020): HKDF
 * over their x25519 shared secret, salted with both parties (public key, then address) in byte
 * order, so either side derives the same key and no third party can. `me.secretKey` is the
 * secret key of `me.encryptionKey`. A public key that gives no shared secret (a point of low
 * order) is DECRYPTION_FAILED.
 */
export function pairKey(me: PairParty & { secretKey: Uint8Array }, peer: PairParty): Uint8Array {
  assertBytes(peer.encryptionKey, 'peer.encryptionKey', KEY_BYTES)
  assertBytes(peer.signer, 'peer.signer', 20)
  const a = concatBytes(me.encryptionKey, me.signer)
  const b = concatBytes(peer.encryptionKey, peer.signer)
  const salt = compareBytes(a, b) <= 0 ? concatBytes(a, b) : concatBytes(b, a)
  return hkdf(sharedSecret(me.secretKey, peer.encryptionKey), salt, 'POSE-PAIR-v1')
}

export const PAIR_TAG_BYTES = 32

/** HMAC-SHA256 of `data` under a pair key: a 32-byte tag. */
export function pairTag(key: Uint8Array, data: Uint8Array): Uint8Array {
  const t = createHmac('sha256', assertBytes(key, 'pair key', KEY_BYTES))
    .update(data)
    .digest()
  return new Uint8Array(t.buffer, t.byteOffset, t.byteLength)
}

/** Whether `tag` is `pairTag(key, data)`, compared in constant time. */
export function pairTagValid(key: Uint8Array, data: Uint8Array, tag: Uint8Array): boolean {
  return tag.length === PAIR_TAG_BYTES && timingSafeEqual(pairTag(key, data), tag)
}

/** AES-256-GCM with a random nonce: `nonce || ciphertext || tag`. */
export function aeadSeal(
  key: Uint8Array,
  plaintext: Uint8Array,
  aad: Uint8Array = new Uint8Array(),
): Uint8Array {
  return gcmSeal(key, plaintext, aad, randomBytes(NONCE_BYTES))
}

const EMPTY = new Uint8Array()

/**
 * `aeadSeal` with a nonce the caller drew at random (a box derives its response key from it),
 * after `prefix` in the same array when given.
 */
function gcmSeal(
  key: Uint8Array,
  plaintext: Uint8Array,
  aad: Uint8Array | undefined,
  nonce: Uint8Array,
  prefix?: Uint8Array,
): Uint8Array {
  assertBytes(key, 'key', KEY_BYTES)
  const cipher = createCipheriv('aes-256-gcm', key, nonce)
  cipher.setAAD(aad ?? EMPTY)
  const ct = cipher.update(plaintext)
  const rest = cipher.final() // empty for GCM, a counter mode
  return concatBytes(prefix ?? EMPTY, nonce, ct, rest, cipher.getAuthTag())
}

export function aeadOpen(
  key: Uint8Array,
  sealed: Uint8Array,
  aad: Uint8Array = new Uint8Array(),
): Uint8Array {
  assertBytes(key, 'key', KEY_BYTES)
  if (!(sealed instanceof Uint8Array) || sealed.length < SEALED_OVERHEAD) {
    throw new ProtocolError(
      'DECRYPTION_FAILED',
      `sealed: expected at least ${SEALED_OVERHEAD} bytes`,
    )
  }
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, NONCE_BYTES))
    decipher.setAAD(aad)
    decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES))
    const pt = decipher.update(sealed.subarray(NONCE_BYTES, sealed.length - TAG_BYTES))
    const rest = decipher.final() // checks the tag; empty for GCM
    // A plain Uint8Array over the output, not a copy of it.
    const out = rest.length === 0 ? pt : Buffer.concat([pt, rest])
    return new Uint8Array(out.buffer, out.byteOffset, out.length)
  } catch (cause) {
    throw new ProtocolError(
      'DECRYPTION_FAILED',
      'sealed: authentication failed (wrong key or tampered)',
      {
        cause,
      },
    )
  }
}

/** HKDF-Extract of a box's shared secret, salted with both public keys. */
const boxPrk = (shared: Uint8Array, ephemeral: Uint8Array, recipient: Uint8Array): Buffer =>
  hkdfExtract(shared, concatBytes(ephemeral, recipient))

/** A context's keys under one PRK: the request key and the answer key. */
type ContextKeys = { requestKey: Uint8Array; answerKey: Uint8Array }

/**
 * Keys by PRK and context. Neither depends on the box's nonce, so every box of a session
 * (sealed by `BoxSessions`, opened with a remembered PRK) shares them: derived once per session
 * and context instead of once per box.
 */
const contextKeys = new WeakMap<Buffer, Map<string, ContextKeys>>()

function contextKeysOf(prk: Buffer, context: string): ContextKeys {
  let byContext = contextKeys.get(prk)
  if (!byContext) {
    byContext = new Map()
    contextKeys.set(prk, byContext)
  }
  let keys = byContext.get(context)
  if (!keys) {
    keys = {
      requestKey: hkdfExpand(prk, `POSE-BOX-v1/request/${context}`, KEY_BYTES),
      answerKey: hkdfExpand(prk, `POSE-BOX-v1/answer/${context}`, KEY_BYTES),
    }
    // The contexts are the protocol's few constants (BOX_CONTEXT); the bound is a safeguard.
    if (byContext.size < 16) byContext.set(context, keys)
  }
  return keys
}

/**
 * A box's keys: the request key from its context; the response key is the context's answer key
 * followed by the box's nonce (`RESPONSE_KEY_BYTES`). Answers are sealed under the answer key
 * with the nonce in their associated data (`sealAnswer`), so an answer opens only for the request
 * it answers: an operator cannot hand one request's answer to another (decision 0019).
 */
function boxKeys(prk: Buffer, context: string, nonce: Uint8Array) {
  const { requestKey, answerKey } = contextKeysOf(prk, context)
  return { requestKey, responseKey: concatBytes(answerKey, nonce) }
}

/** A response key: the answer key (32 bytes) and its request's box nonce (12). */
export const RESPONSE_KEY_BYTES = KEY_BYTES + NONCE_BYTES
const ANSWER_LABEL = utf8('POSE-ANSWER-v2')

/** The associated data of an answer: its label and its request's nonce. */
function answerAad(responseKey: Uint8Array): Uint8Array {
  assertBytes(responseKey, 'responseKey', RESPONSE_KEY_BYTES)
  const aad = new Uint8Array(ANSWER_LABEL.length + NONCE_BYTES)
  aad.set(ANSWER_LABEL)
  aad.set(responseKey.subarray(KEY_BYTES), ANSWER_LABEL.length)
  return aad
}

/** Seals an answer to the request whose response key is `responseKey` (AES-256-GCM). */
export function sealAnswer(responseKey: Uint8Array, answer: Uint8Array): Uint8Array {
  const aad = answerAad(responseKey)
  return gcmSeal(responseKey.subarray(0, KEY_BYTES), answer, aad, randomBytes(NONCE_BYTES))
}

/** Opens an answer sealed by `sealAnswer` for the request whose response key is `responseKey`. */
export function openAnswer(responseKey: Uint8Array, sealed: Uint8Array): Uint8Array {
  const aad = answerAad(responseKey)
  return aeadOpen(responseKey.subarray(0, KEY_BYTES), sealed, aad)
}

export type BoxSealParams = {
  recipientPublicKey: Uint8Array
  plaintext: Uint8Array
  context: string
  aad?: Uint8Array
}
export type SealedBox = { box: Uint8Array; responseKey: Uint8Array }

function sealWith(eph: { publicKey: Uint8Array; prk: Buffer }, p: BoxSealParams): SealedBox {
  const nonce = randomBytes(NONCE_BYTES)
  const { requestKey, responseKey } = boxKeys(eph.prk, p.context, nonce)
  return {
    box: gcmSeal(requestKey, p.plaintext, p.aad, nonce, eph.publicKey),
    responseKey,
  }
}

/** A fresh ephemeral key for `recipient`: its public half and the box PRK it shares. */
function freshEphemeral(recipient: Uint8Array): { publicKey: Uint8Array; prk: Buffer } {
  // The ephemeral key is used as imported: no export and re-import of its secret half.
  const eph = freshKeyPair()
  const prk = boxPrk(sharedSecret(eph.privateKey, recipient), eph.publicKey, recipient)
  return { publicKey: eph.publicKey, prk }
}

/** The sender's ephemeral public key of a box (its first 32 bytes), copied. */
export function boxSenderKey(box: Uint8Array): Uint8Array {
  if (!(box instanceof Uint8Array) || box.length < BOX_OVERHEAD)
    throw new ProtocolError('MALFORMED', `box: expected at least ${BOX_OVERHEAD} bytes`)
  return box.slice(0, KEY_BYTES)
}

/**
 * Encrypts to an x25519 public key with a fresh ephemeral key. Keep `responseKey` to read the
 * answer.
 */
export function boxSeal(p: BoxSealParams): SealedBox {
  assertBytes(p.recipientPublicKey, 'recipientPublicKey', 32)
  return sealWith(freshEphemeral(p.recipientPublicKey), p)
}

/** A 32-byte public key as a map key (hex). */
const keyId = (key: Uint8Array): string => bytesToUnprefixedHex(key.subarray(0, KEY_BYTES))

/** Limits of a sender's session with one recipient. */
export const BOX_SESSION_LIMITS = {
  /** Boxes sealed under one ephemeral key (AES-GCM random nonces stay far from collisions). */
  maxBoxes: 65_536,
  /** How long one ephemeral key is used. */
  maxAgeMs: 10 * 60_000,
  /** Recipients with a session at once; the oldest session is dropped beyond. */
  maxRecipients: 64,
}

/**
 * A sender's box sealer that reuses one ephemeral key per recipient: the key exchange (two
 * x25519 multiplications for the sender, one for the recipient, which remembers it) happens
 * once per session instead of once per box. A session ends after `maxBoxes` boxes or
 * `maxAgeMs`; its boxes are otherwise exactly `boxSeal`'s, each with its own nonce and response
 * key. Boxes of one session are linkable to each other by their ephemeral key.
 */
export class BoxSessions {
  private readonly sessions = new Map<string, BoxSession>()
  private readonly limits: typeof BOX_SESSION_LIMITS

  constructor(limits: Partial<typeof BOX_SESSION_LIMITS> = {}) {
    // Merged once: `session` runs for every box.
    this.limits = { ...BOX_SESSION_LIMITS, ...limits }
  }

  /** The current session with `recipientPublicKey`, begun now if there is none or it ended. */
  session(recipientPublicKey: Uint8Array): BoxSession {
    assertBytes(recipientPublicKey, 'recipientPublicKey', 32)
    const { maxBoxes, maxAgeMs, maxRecipients } = this.limits
    const id = keyId(recipientPublicKey)
    const now = Date.now()
    let s = this.sessions.get(id)
    if (!s || s.boxes >= maxBoxes || now >= s.expiresAt) {
      // Named fields, no spread: spread copies took many hidden classes in a process with
      // hundreds of senders (bench/README.md, 2026-12-06).
      const { publicKey, prk } = freshEphemeral(recipientPublicKey)
      s = { publicKey, prk, boxes: 0, expiresAt: now + maxAgeMs }
      this.sessions.delete(id)
      setBounded(this.sessions, id, s, maxRecipients)
    }
    return s
  }

  seal(p: BoxSealParams): SealedBox {
    return this.sealIn(this.session(p.recipientPublicKey), p)
  }

  /**
   * Seals under `session` (from `session()` for the same recipient), even if a newer session
   * has begun since: a box sealed with a key the sender just authorised stays under that key.
   */
  sealIn(session: BoxSession, p: BoxSealParams): SealedBox {
    session.boxes++
    return sealWith(session, p)
  }
}

/** One sender's session with one recipient: its ephemeral public key and when it ends. */
export type BoxSession = {
  readonly publicKey: Uint8Array
  readonly prk: Buffer
  boxes: number
  readonly expiresAt: number
}

/**
 * Extracted shared secrets of the ephemeral keys a recipient saw last, per recipient secret key:
 * the boxes of a sender's session cost one x25519 multiplication in all. Bounded; the oldest
 * entry goes first. A function of the two keys only, so remembering it changes no outcome.
 */
const RECENT_EPHEMERALS = 1024
const recentPrks = new WeakMap<Uint8Array, Map<string, Buffer>>()

function recipientPrk(
  secretKey: Uint8Array,
  recipientPublicKey: Uint8Array,
  ephemeral: Uint8Array,
): Buffer {
  let cache = recentPrks.get(secretKey)
  if (!cache) {
    cache = new Map()
    recentPrks.set(secretKey, cache)
  }
  const id = keyId(ephemeral)
  let prk = cache.get(id)
  if (!prk) {
    prk = boxPrk(sharedSecret(secretKey, ephemeral), ephemeral, recipientPublicKey)
    setBounded(cache, id, prk, RECENT_EPHEMERALS)
  }
  return prk
}

export function boxOpen(p: {
  recipientSecretKey: Uint8Array
  recipientPublicKey: Uint8Array
  box: Uint8Array
  context: string
  aad?: Uint8Array
}): { plaintext: Uint8Array; responseKey: Uint8Array } {
  if (!(p.box instanceof Uint8Array) || p.box.length < BOX_OVERHEAD) {
    throw new ProtocolError('DECRYPTION_FAILED', `box: expected at least ${BOX_OVERHEAD} bytes`)
  }
  const ephemeral = p.box.subarray(0, KEY_BYTES)
  const prk = recipientPrk(p.recipientSecretKey, p.recipientPublicKey, ephemeral)
  const sealed = p.box.subarray(KEY_BYTES)
  const { requestKey, responseKey } = boxKeys(prk, p.context, sealed.subarray(0, NONCE_BYTES))
  return { plaintext: aeadOpen(requestKey, sealed, p.aad), responseKey }
}
