/**
 * One contract instance inside an enclave: its keys, its EVM world and its role (SPEC §5, §6).
 * The executor executes batches, replicates each write set to every watchdog and releases
 * receipts only once every watchdog acknowledged; a watchdog checks and applies updates in
 * order, seals them and acknowledges.
 */

import { z } from 'zod'
import {
  type AckBody,
  type Answer,
  activationDigest,
  aeadOpen,
  aeadSeal,
  BOX_CONTEXT,
  BROADCAST,
  boxOpen,
  boxSeal,
  boxSenderKey,
  compareBytes,
  concatBytes,
  dec,
  decodeAckBody,
  decodeAnswer,
  decodeChallengeUpdate,
  decodeDeployRequest,
  decodeExecuted,
  decodeGenesisBody,
  decodeGenesisSecrets,
  decodeJson,
  decodeSealedUpdate,
  decodeSignedTx,
  decodeSignedView,
  decodeSyncBody,
  decodeUpdateBody,
  decodeWriteSet,
  type EnclaveOutput,
  type ExecutedTx,
  encodeAckBody,
  encodeAnswer,
  encodeChallengeUpdate,
  encodeExecuted,
  encodeFinalPage,
  encodeGenesisBody,
  encodeGenesisSecrets,
  encodeJson,
  encodeSealedUpdate,
  encodeSyncBody,
  encodeUpdateBody,
  encodeUpdatePayload,
  encodeWriteSet,
  envelopeToWire,
  equalBytes,
  executedBytes,
  type FinalBalance,
  finalBalancesPages,
  finalBalancesRoot,
  type GenesisSecrets,
  generateX25519KeyPair,
  genesisUpdateHash,
  hashSession,
  hashTx,
  hashViewCall,
  hex,
  hexToBytes,
  hkdf,
  INSTANCE_ADDRESS,
  initCommitment,
  instanceAad,
  intrinsicGas,
  keccak256,
  LIMITS,
  MAX_RECENT_RESULTS,
  type PairParty,
  type PeerEnvelope,
  type PeerEnvelopeWire,
  type PeerKind,
  Phase,
  ProtocolError,
  packUpdatePayload,
  poseSystemRuntime,
  type Receipt,
  randomBytes,
  recentResultsFromWire,
  recentResultsSchema,
  recentResultsToWire,
  recoverAddress,
  respondDigest,
  SEALED_UPDATE_TAG,
  type SignedTx,
  SYSTEM_ADDRESS,
  SYSTEM_AUTHORISATION_SELECTOR,
  SYSTEM_LAST_CREDITED_SLOT,
  SYSTEM_NONCE_SELECTOR,
  SYSTEM_TERMINATED_SLOT,
  SYSTEM_WITHDRAW_SELECTOR,
  scanUpdatePayload,
  sealAnswer,
  setBounded,
  signDigest,
  signEnvelope,
  signReceipt,
  signReceipts,
  systemWithdrawnSlot,
  tagEnvelope,
  terminateDigest,
  toProtocolError,
  UPDATE_PAYLOAD_FRAME_BYTES,
  type UpdateBody,
  type UpdatePayload,
  uint,
  uintToWord,
  unhex,
  unpackUpdatePayload,
  unsignedReceipt,
  updateHash,
  utf8,
  verifyEnvelope,
  verifyEnvelopeTag,
  WRITE_SET_FRAME_BYTES,
  watchdogResponseDigest,
  withdrawDigest,
  x25519PublicKey as x25519Public,
} from '../protocol/index.ts'
import { ChainView, RECENT_HASHES } from './chainView.ts'
import type { Identity, Sealer } from './identity.ts'
import { type ExecResult, World } from './world/world.ts'

export type Role = 'executor' | 'watchdog' | 'none'

export type EnclaveContext = {
  identity: Identity
  sealer: Sealer
  chainId: bigint
  manager: Uint8Array
  maxGasPerTx: bigint
  ackTimeoutMs: number
  out: (o: EnclaveOutput) => void
  block: () => { number: bigint; timestamp: bigint }
  now: () => number
  /** This enclave's pair key with a peer enclave (decision 0020), remembered per peer. */
  pairKey: (peer: PairParty) => Uint8Array
}

/** Who waits for an answer: a client request, or an on-chain challenge (answered on-chain). */
type Waiter = { requestId: string; responseKey: Uint8Array; challenge?: true }

type Pending = {
  tx: SignedTx
  txHash: Uint8Array
  /** `hex(txHash)`: the transaction's key in `byHash`, made once. */
  key: string
  waiters: Waiter[]
  receivedAt: number
}

type Executed = { p: Pending; result: ExecResult }

type LogEntry = {
  seq: bigint
  body: UpdateBody
  hash: Uint8Array
  executed: Executed[]
  /** The index of the last deposit credited in the state after this update. */
  credited: bigint
  sentAt: number
  createdAt: number
  /** The body as it travels (tagged or signed), its hex and its hash, made once. */
  wire?: { body: Uint8Array; bodyHex: string; bodyHash: Uint8Array }
  /**
   * The update as one envelope to every member (`to` = BROADCAST), signed on first use: the
   * payload of a watchdog challenge, and what a watchdog without a pair key gets (decision 0020).
   */
  envelope?: PeerEnvelope
}

const RESEND_MS = 1000
/**
 * The event a challenge answer names: the challenge's own (`index`, with the running hash after
 * it), which the manager keeps while the challenge is open; the latest event seen when that
 * hash is unknown (a view sealed before it was recorded).
 */
function answerAnchor(
  view: ChainView,
  index: bigint,
  hash: Uint8Array,
): { index: bigint; hash: Uint8Array } {
  if (index > 0n && index <= view.index && !equalBytes(hash, ZERO32)) return { index, hash }
  return { index: view.index, hash: view.hash }
}

/** An unknown hash, and the nonce of an ack that answers no probe. */
const ZERO32 = new Uint8Array(32)

/** Whether an ack says its member holds no state of the instance (see `ackNothing`). */
function holdsNothing(a: AckBody): boolean {
  return (
    a.seq === 0n &&
    equalBytes(a.digest, ZERO32) &&
    equalBytes(a.updateHash, ZERO32) &&
    a.stateFrom.every((b) => b === 0)
  )
}

/**
 * The bytes of an update's plain payload its write set and results may take: every update fits
 * in a watchdog challenge (decision 0028). Read from LIMITS at each call, which tests lower.
 */
function updateRoom(): number {
  return LIMITS.maxUpdatePayloadBytes - UPDATE_PAYLOAD_FRAME_BYTES - WRITE_SET_FRAME_BYTES
}

/** The index of the last deposit event whose credit `world`'s state holds (SPEC §5). */
function lastCredited(world: World): bigint {
  return world.getStorageWord(SYSTEM_ADDRESS, SYSTEM_LAST_CREDITED_SLOT)
}

/**
 * A withdrawal in the world (`withdraw()` on the system address, nothing else). It leaves every
 * account's cumulative withdrawal as it was (final balances are cumulative), so it may run after
 * the contract terminated (`servedAfterTermination`).
 */
function isSystemWithdraw(tx: { to: Uint8Array; data: Uint8Array }): boolean {
  return equalBytes(tx.to, SYSTEM_ADDRESS) && equalBytes(tx.data, SYSTEM_WITHDRAW_SELECTOR)
}

/** Updates whose resulting state digest a member remembers (`Instance.heldDigests`). */
const HELD_DIGESTS = 64
/** How long a deposit waits for a watchdog's chain view before that watchdog is challenged. */
const VIEW_LAG_MS = 60_000
type ChainClock = { readonly number: bigint; readonly timestamp: bigint }
const NO_CLOCK: ChainClock = { number: 0n, timestamp: 0n }

/** The later of `c` and (`number`, `timestamp`), field by field (`c` itself when it is not earlier). */
function laterClock(c: ChainClock, number: bigint, timestamp: bigint): ChainClock {
  if (c.number >= number && c.timestamp >= timestamp) return c
  return {
    number: c.number >= number ? c.number : number,
    timestamp: c.timestamp >= timestamp ? c.timestamp : timestamp,
  }
}

/**
 * How often, at most, an idle watchdog acks its executor again to report a newer chain clock
 * (decision 0032); under load every update's ack reports it.
 */
const CLOCK_REPORT_MS = 1000
/** Reports of its view kept per watchdog (see `Instance.viewReports`). */
const MAX_VIEW_REPORTS = 16
const MAX_U64_INDEX = (1n << 64n) - 1n

/** How often an executor re-publishes final balances the chain has not shown yet. */
const TERMINATE_RETRY_MS = 5000
/** How long an on-chain answer may take to show in the view before it is sent again. */
const ANSWER_RETRY_MS = 15_000
/** How long a watchdog challenge may take to show in the view before it is sent again. */
const CHALLENGE_RETRY_MS = 30_000
const FUTURE_NONCE_WINDOW = 64n
const FUTURE_TTL_MS = 10_000
/**
 * Copies of one pending transaction's request that wait for its answer (a client resends after
 * its operator's TIMEOUT while the update waits for a watchdog); more answer the oldest at once.
 */
const MAX_WAITERS_PER_TX = 8
/** Session authorisations remembered per instance (decision 0014); the oldest goes first. */
const MAX_SESSIONS = 4096
const RECEIPT_CACHE = 4096
/**
 * Bytes of receipts (or outcomes) one cache keeps: an outcome can be megabytes (large return
 * data), and 4,096 of them would be gigabytes.
 */
const RECEIPT_CACHE_BYTES = 64 * 1024 * 1024
/**
 * Bytes of outcomes a whole state carries (and a sealed snapshot keeps) for re-issued
 * receipts: a whole state travels hex-encoded three times over (≈ 8 × its bytes) in one peer
 * frame of at most `maxPeerMessageBytes`.
 */
const RECENT_RESULTS_BYTES = 2 * 1024 * 1024

/**
 * Receipts and outcomes kept for resent requests: at most RECEIPT_CACHE entries and
 * RECEIPT_CACHE_BYTES of them, the oldest going first (`put`).
 */
export class OutcomeCache<V> extends Map<string, V> {
  private bytes = 0

  constructor(
    private readonly sizeOf: (v: V) => number,
    private readonly maxBytes = RECEIPT_CACHE_BYTES,
  ) {
    super()
  }

  /** Bytes of the entries held. */
  get heldBytes(): number {
    return this.bytes
  }

  override set(key: string, value: V): this {
    const old = super.get(key)
    if (old !== undefined) this.bytes -= this.sizeOf(old)
    super.set(key, value)
    this.bytes += this.sizeOf(value)
    return this
  }

  override delete(key: string): boolean {
    const old = super.get(key)
    if (old === undefined) return false
    this.bytes -= this.sizeOf(old)
    return super.delete(key)
  }

  override clear(): void {
    super.clear()
    this.bytes = 0
  }

  /** Sets `key`, then drops the oldest entries past either bound (never the one just set). */
  put(key: string, value: V): void {
    setBounded(this, key, value, RECEIPT_CACHE)
    if (this.bytes <= this.maxBytes) return
    for (const k of this.keys()) {
      if (this.bytes <= this.maxBytes || k === key) break
      this.delete(k)
    }
  }
}
const RESTORED_LOG = 64
/** Phases in which the executor serves transactions (a challenge does not stop it). */
const SERVING = new Set<number>([Phase.Active, Phase.ExecutorChallenged, Phase.WatchdogsChallenged])

const sealedRecordSchema = z.discriminatedUnion('kind', [
  z.strictObject({
    kind: z.literal('snapshot'),
    role: z.enum(['executor', 'watchdog', 'none']),
    view: z.unknown(),
    contractSecretKey: z.string().nullable(),
    stateKey: z.string().nullable(),
    seq: z.string(),
    lastHash: z.string(),
    state: z.string(),
    stateFrom: z.string().nullable().optional(),
    baseSeq: z.string().optional(),
    recent: recentResultsSchema.optional(),
    clock: z.tuple([z.string(), z.string()]).optional(),
    held: z
      .array(z.tuple([z.string(), z.string()]))
      .max(HELD_DIGESTS)
      .optional(),
  }),
  z.strictObject({
    kind: z.literal('update'),
    seq: z.string(),
    prevHash: z.string(),
    eventIndex: z.string(),
    digest: z.string(),
    payload: z.string(),
    from: z.string().optional(),
  }),
  z.strictObject({ kind: z.literal('view'), view: z.unknown() }),
])

const hexKey = (b: Uint8Array) => hex(b)

/** The outcome in a cached receipt answer (`encodeAnswer` of a receipt). */
function receiptOutcome(answer: Uint8Array): ExecutedTx {
  const a = decodeAnswer(answer)
  if (a.kind !== 'receipt') throw new ProtocolError('INTERNAL', 'receipt cache: not a receipt')
  const { instance: _i, seq: _s, executor: _e, signature: _g, proof: _p, ...result } = a.receipt
  return result
}

/** An update restored from sealed records: its body (no payload), payload plain and packed. */
type RestoredUpdate = { body: UpdateBody; plain: Uint8Array; packed: Uint8Array }

type SealedRecord =
  | Exclude<z.infer<typeof sealedRecordSchema>, { kind: 'update' }>
  | {
      kind: 'update'
      body: UpdateBody
      plain: Uint8Array
      /** The payload deflated, as it travels (a record sealed before 0013 is packed here). */
      packed: Uint8Array
      from: Uint8Array | undefined
    }

/**
 * A sealed record: an update in binary (`encodeSealedUpdate`), or JSON (snapshots, views, and
 * updates sealed before updates were binary, whose payload is plain hex).
 */
function readSealedRecord(bytes: Uint8Array): SealedRecord {
  if (bytes[0] === SEALED_UPDATE_TAG) {
    const { body, from } = decodeSealedUpdate(bytes)
    const plain = unpackUpdatePayload(body.payload)
    return {
      kind: 'update',
      body: { ...body, payload: new Uint8Array() },
      plain,
      packed: body.payload,
      from,
    }
  }
  const rec = decodeJson(bytes, sealedRecordSchema, 'sealed record', LIMITS.maxPeerMessageBytes)
  if (rec.kind !== 'update') return rec
  const plain = unhex(rec.payload, 'sealed.payload')
  return {
    kind: 'update',
    body: {
      seq: uint(rec.seq, 'sealed.seq', 64),
      prevHash: unhex(rec.prevHash, 'sealed.prevHash', 32),
      eventIndex: uint(rec.eventIndex, 'sealed.eventIndex', 64),
      digest: unhex(rec.digest, 'sealed.digest', 32),
      payload: new Uint8Array(),
    },
    plain,
    packed: packUpdatePayload(plain),
    from: rec.from ? unhex(rec.from, 'sealed.from', 20) : undefined,
  }
}

export class Instance {
  role: Role = 'none'
  contractSecretKey: Uint8Array | undefined
  contractPublicKey: Uint8Array | undefined
  stateKey: Uint8Array | undefined
  world: World | undefined
  seq = 0n
  lastHash: Uint8Array = new Uint8Array(32)
  /**
   * The executor whose log this state follows (this enclave itself once it executes). A
   * genesis from a different executor may replace the state even at a lower seq (its log is
   * authoritative, SPEC §6.8); one from the same executor only moves forward, so a replayed
   * old genesis cannot roll a watchdog back.
   */
  private stateFrom: Uint8Array | undefined
  /** The seq at which this enclave became executor (0 for the first executor). */
  private baseSeq = 0n
  /**
   * A restarted executor executes nothing until every watchdog acknowledged once: its sealed
   * state may be older than the pool's (a host can serve a stale copy), and executing on it
   * would fork the log.
   */
  private awaitingPool = false
  /**
   * A restarted executor's probe of its pool: the wait ends only on acks that carry `nonce`
   * (each watchdog's answer to this probe), never on acks made before the restart, which the
   * host may replay to end the wait on a stale copy while the watchdogs hold more.
   */
  private restartProbe:
    | {
        nonce: Uint8Array
        askedAt: number
        confirmed: Set<string>
        /** When the wait began, and when its silent watchdogs were last challenged on-chain. */
        since: number
        challengedAt: number
      }
    | undefined
  /** The latest probe an executor sent this watchdog: its nonce is echoed in acks to it. */
  private probe: { from: Uint8Array; nonce: Uint8Array } | undefined
  /**
   * What each watchdog's acks said of its chain view (its latest reports, some possibly ahead of
   * this executor's view), and the furthest event at which one agreed with this view: deposits
   * are credited only up to where every watchdog's view agrees (decision 0025).
   */
  private readonly viewReports = new Map<string, { index: bigint; hash: Uint8Array }[]>()
  private readonly viewAgreed = new Map<string, bigint>()
  /**
   * The newest chain clock each watchdog's acks reported, and the floor: the latest clock run at
   * that every watchdog bounded, or that an update or a whole state from the executor carried.
   * Transactions run no later than every current watchdog's report, and never before the floor
   * (`runClock`, decision 0032).
   */
  private readonly clockReports = new Map<string, ChainClock>()
  private clockFloor = NO_CLOCK
  /** Since when transactions have waited for a first clock (`runClock`; undefined: none wait). */
  private clockWaitSince: number | undefined
  /**
   * The latest clock this enclave ran anything at, kept here only: a clock no watchdog bounded
   * stays out of the floor, and what runs after it waits for time to catch up rather than
   * going back (`runClock`).
   */
  private ranAt = NO_CLOCK
  /** When this watchdog last acked, and the block number its ack reported. */
  private ackedAt = 0
  private ackedHead = 0n
  /** When this executor last asked its watchdogs for their views (deposits waiting). */
  private creditProbeAt = 0
  /** Whether the final balances had too many accounts to publish, as of `seq` (with no credit pending). */
  private unpublishable: { seq: bigint; value: boolean } | undefined
  /** Since when a deposit has waited for the watchdogs' views (undefined: none waits). */
  private creditWaitSince: number | undefined
  /**
   * Members removed and drawn again, with the probe nonce their acks must echo before they
   * count: an ack from before the removal, replayed by the host, would otherwise say the
   * member holds state it dropped.
   */
  private readonly redrawn = new Map<string, Uint8Array>()
  /** The state digest after each of this member's latest updates (see `takeChallengeUpdate`). */
  private readonly heldDigests = new Map<bigint, Uint8Array>()
  /**
   * A watchdog's last credited deposit after each of the latest updates it took from the
   * executor it follows (see `settleDeposits`).
   */
  private readonly creditedAt = new Map<bigint, bigint>()
  /**
   * The executor's seq when it last asked, with a probe, what this watchdog holds (restarted,
   * it counts its log as released without acks): credits up to it are not recorded.
   */
  private settleFloor = 0n
  /** The log (its executor) each watchdog's latest ack named, by watchdog. */
  private readonly ackedFrom = new Map<string, Uint8Array>()
  /** Each watchdog's join order (the view's) when `syncMembers` last saw it. */
  private readonly joinedAt = new Map<string, number>()
  /** The watchdog asked to hand back this executor's own, later state, and when. */
  private pulling: { from: Uint8Array; at: number } | undefined
  /** When this watchdog last handed its state to the executor (throttles replayed requests). */
  private returnedStateAt = 0
  /**
   * Restored from a sealed copy as a watchdog: the host may have served an older copy, so this
   * enclave may lack updates the pool released since. Nothing a watchdog receives proves it
   * current (the network may replay old updates), so the mark stays until the enclave leaves
   * the pool or, promoted, has checked its state against another member.
   */
  private restoredCopy = false
  /**
   * Promoted while `restoredCopy`: the handover waits until a watchdog that followed the same
   * predecessor says it holds no more of that log, or hands this enclave the rest of it.
   */
  private provisional: { predecessor: Uint8Array; askedAt: number; nonce: Uint8Array } | undefined
  /** Updates appended to the sealed log since the last snapshot. */
  private appendedSinceSnapshot = 0
  /** How many of the sealed blobs it was restored from opened (the rest were left out). */
  restoredRecords = 0

  // executor
  private queue: Pending[] = []
  /** Transactions accepted and waiting to execute (nonce gaps excluded). */
  get queuedTxs(): number {
    return this.queue.length
  }
  private byHash = new Map<string, Pending>()
  private nextNonce = new Map<string, bigint>()
  private future = new Map<string, Map<bigint, Pending>>()
  private log = new Map<bigint, LogEntry>()
  private acked = new Map<string, bigint>()
  private released = 0n
  /**
   * Receipts released lately, by transaction hash (hex), as the answer a resent request gets
   * (`encodeAnswer` of the receipt: kept as bytes, see `encodeExecuted`).
   */
  private receipts = new OutcomeCache<{ seq: bigint; answer: Uint8Array }>((v) => v.answer.length)
  /** Checked session authorisations: box key and sender (hex) → its expiry and signature. */
  private sessions = new Map<string, { validUntil: bigint; signature: Uint8Array }>()
  /**
   * Requests for transactions executed before a restart or by the previous executor (their
   * first requests died with it), in updates not every current watchdog is known to hold:
   * answered once each does, since a receipt earlier could be rolled back by a replacement.
   */
  private late: Array<{ result: ExecutedTx; seq: bigint; waiter: Waiter }> = []
  /** When each member behind the log last got the whole state (see onSync). */
  private fullStateSentAt = new Map<string, number>()
  private genesis:
    | { body: Uint8Array; sentAt: number; startedAt: number; activated: boolean }
    | undefined
  private busy = false
  /** System changes (credited deposits) waiting for the next replicated batch. */
  private systemDirty = false

  // watchdog
  private ahead = new Map<bigint, { body: UpdateBody; from: Uint8Array }>()
  private lastSyncAt = 0
  /**
   * Outcomes of recently replicated txs (`encodeExecuted`): a promoted executor re-issues their
   * receipts.
   */
  private replicated = new OutcomeCache<{ bytes: Uint8Array; seq: bigint }>((v) => v.bytes.length)
  /** The challenge index this enclave last answered. */
  private answeredChallenge = -1n
  private answeredWatchdogChallenge = -1n
  /** The last final-balances publication (event index it named, when). */
  private terminationSent: { eventIndex: bigint; at: number } | undefined
  /** The final balances' pages and root as of `seq` (the tree over every account is built once). */
  private finalPagesAt: { seq: bigint; root: Uint8Array; pages: FinalBalance[][] } | undefined
  /**
   * When this executor's answer to its challenge last went out (undefined while it waits for a
   * receipt's release): see `answerChallenge`.
   */
  private answerSentAt: number | undefined
  /** When the watchdog last answered its watchdog challenge (see `answerWatchdogChallenge`). */
  private answeredWatchdogAt = 0
  /** The seq for which this executor last challenged its watchdogs on-chain, and when. */
  private challengedAtSeq = -1n
  private challengedAt = 0
  /**
   * Since when a watchdog has not acknowledged this executor's whole state while no update is
   * pending (a handover or a newcomer's state unacknowledged): see `replicateForSilentMembers`.
   */
  private silentSince: number | undefined
  /** The payload of this executor's open watchdog challenge (the update at challengedAtSeq). */
  private challengeSent: Uint8Array | undefined
  /** The watchdog challenge this watchdog last logged it cannot answer (index). */
  private unanswerableChallenge = -1n
  /** The open watchdog challenge's payload as last checked (see `challengeUpdate`). */
  private checkedChallenge?: {
    payload: Uint8Array
    executor: Uint8Array
    body: UpdateBody | undefined
  }

  constructor(
    readonly view: ChainView,
    private readonly ctx: EnclaveContext,
  ) {}

  get id(): bigint {
    return this.view.instance
  }

  private get label(): string {
    return `instance/${this.id}`
  }

  /** Re-derives this enclave's role after the pool changed. */
  updateRole(): void {
    const slot = this.view.slotOf(this.ctx.identity.signer)
    const before = this.role
    this.role = slot < 0 ? 'none' : slot === this.view.executorSlot ? 'executor' : 'watchdog'
    if (before === this.role) return
    this.sealView()
    if (before === 'watchdog' && this.role === 'executor' && this.world) this.takeOver()
    if (before === 'executor') {
      this.provisional = undefined
      this.abandonPending()
    }
    if (this.role === 'none' && this.world && this.view.phase !== Phase.Terminated)
      this.forgetState()
  }

  /**
   * Removed from the pool: this copy of the state stops following the executor, so it is
   * dropped, sealed copy included. If a refill draws this enclave again, it starts from the
   * executor's full state like any newcomer: its old copy may lack updates the pool released
   * while it was out, and promoted it would roll their receipts back (simulator seed 15).
   */
  private forgetState(): void {
    this.world = undefined
    this.heldDigests.clear()
    this.forgetCredits()
    this.stateKey = undefined
    this.contractSecretKey = undefined
    this.contractPublicKey = undefined
    this.seq = 0n
    this.lastHash = new Uint8Array(32)
    this.stateFrom = undefined
    this.baseSeq = 0n
    this.released = 0n
    this.replicated.clear()
    this.receipts.clear()
    this.ahead.clear()
    this.pulling = undefined
    this.awaitingPool = false
    this.restartProbe = undefined
    this.restoredCopy = false
    this.provisional = undefined
    this.seal('snapshot', this.snapshotRecord())
    this.log_('info', 'Removed from the pool; state dropped', {})
  }

  /**
   * No longer executor: every waiting request is answered WRONG_ROLE at once, so clients
   * resubmit to the new executor instead of waiting for a timeout. Updates not acknowledged by
   * every member produced no receipt; the new executor decides their fate.
   */
  private abandonPending(
    err = new ProtocolError(
      'WRONG_ROLE',
      `instance ${this.id}: this enclave is no longer the executor; resubmit`,
    ),
  ): void {
    const waiters: Waiter[] = []
    for (const p of this.queue) waiters.push(...p.waiters)
    for (const m of this.future.values()) for (const p of m.values()) waiters.push(...p.waiters)
    for (const e of this.log.values()) for (const x of e.executed) waiters.push(...x.p.waiters)
    for (const l of this.late) waiters.push(l.waiter)
    for (const w of waiters) this.reject(w, err)
    this.late = []
    this.queue = []
    this.future.clear()
    this.byHash.clear()
    this.nextNonce.clear()
    this.log.clear()
    this.acked.clear()
  }

  /**
   * A promoted watchdog becomes executor (SPEC §6.8): its log is authoritative. It hands its
   * state to every other member (who discard anything later) and counts each in the ack set
   * once it acknowledged.
   */
  private takeOver(): void {
    const predecessor = this.stateFrom
    if (this.restoredCopy && predecessor && this.view.watchdogSlots().length > 0) {
      // Its copy may be older than what the pool released (simulator review: a stale copy
      // promoted rolled back released receipts): it first asks the watchdogs what they hold.
      this.provisional = { predecessor, askedAt: 0, nonce: randomBytes(32) }
      this.awaitingPool = true
      this.log_('warn', 'Promoted from a restored copy; checking it against the pool first', {
        seq: Number(this.seq),
      })
      this.askPool(this.ctx.now())
      return
    }
    this.handOver()
  }

  /** Asks every watchdog for whatever it holds of the predecessor's log beyond this enclave. */
  private askPool(now: number): void {
    if (!this.provisional || now - this.provisional.askedAt < RESEND_MS) return
    this.provisional.askedAt = now
    for (const slot of this.view.watchdogSlots())
      this.sendProbe(this.view.signers[slot]!, this.provisional.nonce)
  }

  /**
   * A probe: a `sync` with a nonce the member echoes in its acks, answered at once with what
   * it holds (and its chain view, at `viewAt` when named).
   */
  private sendProbe(to: Uint8Array, nonce: Uint8Array, viewAt?: bigint): void {
    this.send('sync', to, encodeSyncBody({ fromSeq: this.seq + 1n, nonce, viewAt }))
  }

  /**
   * A restarted executor asks each watchdog that has not answered its probe yet what it holds
   * now; the answer is an ack carrying the probe's nonce (see `restartProbe`).
   */
  private probePool(now: number): void {
    const p = this.restartProbe
    if (!p || !this.awaitingPool || now - p.askedAt < RESEND_MS) return
    p.askedAt = now
    for (const slot of this.view.watchdogSlots()) {
      const signer = this.view.signers[slot]!
      if (!p.confirmed.has(hexKey(signer))) this.sendProbe(signer, p.nonce)
    }
  }

  /** The promoted member's state is confirmed: it hands it to the pool and serves. */
  private endProvisional(how: string): void {
    this.provisional = undefined
    this.restoredCopy = false
    this.awaitingPool = false
    this.log_('info', 'The restored copy is checked against the pool', {
      how,
      seq: Number(this.seq),
    })
    this.handOver()
  }

  private handOver(): void {
    // Reports from an earlier term as executor are stale: the handover's acks bring new ones,
    // and a wait for them starts with this term's first transaction.
    this.clockReports.clear()
    this.clockWaitSince = undefined
    this.acked.clear()
    for (const slot of this.view.watchdogSlots())
      this.acked.set(hexKey(this.view.signers[slot]!), -1n)
    this.log.clear()
    this.released = this.seq
    this.stateFrom = this.ctx.identity.signer
    this.baseSeq = this.seq
    this.seal('snapshot', this.snapshotRecord())
    const now = this.ctx.now()
    this.genesis = { body: new Uint8Array(), sentAt: now, startedAt: now, activated: true }
    this.sendGenesis(now)
    this.log_('info', 'Promoted to executor; state handed to the watchdogs', {
      seq: Number(this.seq),
    })
  }

  /**
   * Members added by refill get the full state. They count for every release from the moment
   * the executor sees them: whatever the pool has released, each current member holds, so a
   * member promoted later never rolls released state back (one that never received the state
   * cannot serve, and the instance moves on or freezes).
   */
  syncMembers(): void {
    if (this.role !== 'executor' || !this.world || this.provisional) return
    const pulling = this.pulling
    if (pulling && this.view.slotOf(pulling.from) < 0) {
      // The watchdog it was fetching a newer state from left the pool. What it held beyond this
      // copy was never released (every current watchdog held each released update), so the
      // wait ends once the watchdogs left confirmed it.
      this.pulling = undefined
      this.log_('warn', 'The watchdog holding a newer state left the pool; not waiting for it', {
        seq: Number(this.seq),
      })
    }
    let added = false
    for (const slot of this.view.watchdogSlots()) {
      const k = hexKey(this.view.signers[slot]!)
      const joined = this.view.joinOrder[slot]!
      const known = this.joinedAt.get(k)
      // New, or removed and drawn again since the last batch (removal and refill seen at
      // once): it dropped its state when removed, so what it acked before counts for nothing.
      if (!this.acked.has(k) || (known !== undefined && known !== joined)) {
        this.acked.set(k, -1n)
        if (known !== undefined) this.redrawn.set(k, randomBytes(32))
        added = true
      }
      this.joinedAt.set(k, joined)
    }
    for (const k of [...this.acked.keys()]) {
      if (!this.view.watchdogSlots().some((s) => hexKey(this.view.signers[s]!) === k)) {
        this.acked.delete(k)
        this.joinedAt.delete(k)
        this.redrawn.delete(k)
        this.clockReports.delete(k)
        this.ackedFrom.delete(k)
      }
    }
    if (added) {
      const now = this.ctx.now()
      this.genesis ??= { body: new Uint8Array(), sentAt: now, startedAt: now, activated: true }
      this.sendGenesis(now)
    }
    // A restarted executor whose silent watchdogs were removed has nobody left to wait for.
    this.endPoolWaitIfConfirmed()
    this.release()
  }

  /**
   * Whether this executor's state may yet be replaced by its pool's: a restarted executor's copy
   * or a promoted member's restored one not yet confirmed, or a newer state being pulled.
   */
  private unconfirmedState(): boolean {
    return this.awaitingPool || !!this.provisional || !!this.pulling
  }

  /** Serves again once every current watchdog confirmed the restored state (or none is left). */
  private endPoolWaitIfConfirmed(): void {
    if (!this.awaitingPool || this.pulling || this.provisional || !this.poolConfirmed()) return
    this.awaitingPool = false
    this.restartProbe = undefined
    const now = this.ctx.now()
    for (const m of this.future.values()) for (const p of m.values()) p.receivedAt = now
    this.log_('info', 'Every watchdog confirmed the restored state; serving again', {
      seq: Number(this.seq),
    })
  }

  /**
   * A watchdog answers an on-chain watchdog challenge that names its slot, once per challenge.
   * When the payload is an update signed by the executor, the watchdog first applies it (the
   * peer link may be what failed) and answers only once it holds it: the executor counts the
   * on-chain answer as the ack. A watchdog missing earlier updates cannot answer and is
   * removed when the challenge is finalised. A member drawn but not yet given the state answers
   * only a payload that is no update (a restarted executor's probe, a lagging-view challenge).
   */
  answerWatchdogChallenge(): void {
    if (this.role !== 'watchdog') return
    const slot = this.view.slotOf(this.ctx.identity.signer)
    if (slot < 0 || (this.view.watchdogMask & (1 << slot)) === 0) return
    if ((this.view.watchdogResponded & (1 << slot)) !== 0) return
    // Once per challenge; again after ANSWER_RETRY_MS while the view shows it unanswered.
    const now = this.ctx.now()
    if (
      this.answeredWatchdogChallenge >= this.view.watchdogChallengeIndex &&
      now - this.answeredWatchdogAt < ANSWER_RETRY_MS
    )
      return
    if (!this.takeChallengeUpdate()) return
    this.answeredWatchdogChallenge = this.view.index
    this.answeredWatchdogAt = now
    // The answer names the challenge's own event, which the manager keeps while the round is
    // open however many events land before the answer does (decision 0024).
    const { index: eventIndex, hash: eventHash } = answerAnchor(
      this.view,
      this.view.watchdogChallengeIndex,
      this.view.watchdogChallengeHash,
    )
    const signature = signDigest(
      watchdogResponseDigest({
        chainId: this.ctx.chainId,
        manager: this.ctx.manager,
        instance: this.id,
        slot,
        eventIndex,
        eventHash,
      }),
      this.ctx.identity.signingKey,
    )
    this.ctx.out({
      type: 'respondWatchdog',
      instance: this.id,
      slot,
      eventIndex,
      signature,
    })
    this.log_('info', 'Answering a watchdog challenge', { slot })
  }

  /**
   * Applies the update a watchdog challenge carries. True when the watchdog may answer: it now
   * holds the update, or the payload is not an update signed by the current executor (then the
   * answer is a plain liveness proof, which the executor does not count as an ack). A watchdog
   * that still follows the previous executor's log (the new one's handover has not reached it)
   * holds none of the new executor's updates, whatever its seq: its answer would count as the
   * ack of an update it lacks, and a receipt released on it could be rolled back by its own
   * promotion.
   */
  private takeChallengeUpdate(): boolean {
    const exec = this.view.executor
    if (!exec) return true
    const body = this.challengeUpdate(exec)
    if (!body) return true
    if (!this.world) {
      // Drawn but not yet given the state: it answers a probe (a liveness proof, above), never
      // an update, which its answer would acknowledge.
      this.cannotAnswer(body.seq, 'it holds no state yet')
      return false
    }
    if (body.seq > this.seq) {
      try {
        // Applies only on top of this watchdog's log (its prevHash): then it follows `exec`.
        this.acceptUpdate(body, exec)
      } catch (e) {
        this.log_('warn', 'The challenge update does not apply', {
          err: (e as Error).message.slice(0, 200),
        })
      }
    }
    if (this.seq < body.seq) {
      this.cannotAnswer(body.seq, 'updates before it are missing')
      return false
    }
    if (!this.stateFrom || !equalBytes(this.stateFrom, exec)) {
      this.cannotAnswer(body.seq, "it follows the previous executor's log")
      return false
    }
    // The executor counts the answer as an ack of this very update: a member that holds another
    // update at that seq (one its host replayed from before the executor's restart) does not
    // answer, or the executor would release what the pool does not hold.
    const held = body.seq === this.seq ? this.world!.digest() : this.heldDigests.get(body.seq)
    if (held && !equalBytes(held, body.digest)) {
      this.cannotAnswer(body.seq, 'it holds another update at that seq')
      return false
    }
    return true
  }

  /** Logs, once per watchdog challenge, why this watchdog cannot answer it yet. */
  private cannotAnswer(challenged: bigint, why: string): void {
    if (this.unanswerableChallenge === this.view.watchdogChallengeIndex) return
    this.unanswerableChallenge = this.view.watchdogChallengeIndex
    this.log_('warn', `Cannot answer the watchdog challenge: ${why}`, {
      seq: Number(this.seq),
      challenged: Number(challenged),
    })
  }

  /**
   * The update the open watchdog challenge carries, if it is one signed by `exec`. Checked once
   * per challenge (payload and executor): a watchdog that cannot answer yet retries on every
   * tick, and the signature does not change between them.
   */
  private challengeUpdate(exec: Uint8Array): UpdateBody | undefined {
    const payload = this.view.watchdogChallengePayload
    const c = this.checkedChallenge
    if (c && c.payload === payload && equalBytes(c.executor, exec)) return c.body
    let body: UpdateBody | undefined
    try {
      const u = decodeChallengeUpdate(payload)
      verifyEnvelope({
        kind: 'update',
        instance: this.id,
        from: exec,
        to: BROADCAST,
        body: u.body,
        signature: u.signature,
      })
      body = decodeUpdateBody(u.body)
    } catch {
      body = undefined
    }
    this.checkedChallenge = { payload, executor: exec, body }
    return body
  }

  /**
   * The executor counts an on-chain answer to its own watchdog challenge as that watchdog's
   * ack of the challenged update: the watchdog's enclave answers only once it holds it.
   * Not while a restarted executor waits for its pool: the answer says the watchdog holds the
   * challenged update, not that it holds nothing beyond this enclave's copy. Only a peer ack
   * (which names the watchdog's seq) shows that; counted as confirmation, the answers let an
   * executor restored from a stale copy serve from it (simulator seed 157).
   */
  countWatchdogResponses(): void {
    if (this.role !== 'executor' || !this.challengeSent || this.view.watchdogResponded === 0) return
    if (this.awaitingPool) return
    if (!equalBytes(this.view.watchdogChallengePayload, this.challengeSent)) return
    for (const slot of this.view.watchdogSlots()) {
      if ((this.view.watchdogResponded & (1 << slot)) === 0) continue
      const k = hexKey(this.view.signers[slot]!)
      if ((this.acked.get(k) ?? -1n) < this.challengedAtSeq) this.acked.set(k, this.challengedAtSeq)
    }
    this.release()
  }

  /**
   * The executor challenges, on-chain, every watchdog whose ack for the oldest pending update
   * is later than `ackTimeoutMs` (SPEC §6.9); the payload carries that update.
   */
  private challengeLateWatchdogs(now: number): boolean {
    // Not with a restored copy's updates before the pool confirmed it: a copy its host kept of
    // a log the pool has since moved past (another update released at the same seq) carries
    // updates no watchdog can answer for, and removing the whole pool for that would leave the
    // copy confirmed by nobody and served. `challengeUnconfirmedWatchdogs` probes instead.
    if (this.view.watchdogMask !== 0 || this.unconfirmedState()) return false
    // Once per update, unless the challenge never showed on the chain (its call reverted, say,
    // a member having left meanwhile, or its block was reorganised away): then again after
    // CHALLENGE_RETRY_MS, or a silent watchdog would hold the executor up until it is slashed.
    if (this.challengedAtSeq >= this.released + 1n && now - this.challengedAt < CHALLENGE_RETRY_MS)
      return false
    const oldest = this.log.get(this.released + 1n)
    if (!oldest || now - oldest.createdAt < this.ctx.ackTimeoutMs) return false
    let mask = 0n
    for (const slot of this.view.watchdogSlots()) {
      const k = hexKey(this.view.signers[slot]!)
      if ((this.acked.get(k) ?? -1n) < oldest.seq) mask |= 1n << BigInt(slot)
    }
    if (mask === 0n) return false
    this.challengedAtSeq = oldest.seq
    this.challengedAt = now
    const signed = this.updateEnvelope(oldest)
    this.challengeSent = encodeChallengeUpdate({ signature: signed.signature, body: signed.body })
    this.ctx.out({
      type: 'challengeWatchdogs',
      instance: this.id,
      memberMask: mask,
      payload: this.challengeSent,
    })
    this.log_('warn', 'Watchdogs late to acknowledge; challenging them on-chain', {
      mask: mask.toString(),
      seq: Number(oldest.seq),
    })
    return true
  }

  /**
   * A watchdog that has not acknowledged this executor's whole state (a promoted member's
   * handover, a newcomer's state) for `ackTimeoutMs` while no update is pending gets one to
   * acknowledge: an empty update, whose late ack `challengeLateWatchdogs` then challenges
   * on-chain. Without it such a watchdog is challenged only once some later transaction's
   * update is late, and until then nothing that waits for the whole state to be held everywhere
   * (a re-issued receipt, a withdrawal's authorisation, the final balances) is served.
   */
  private replicateForSilentMembers(now: number): void {
    const silent =
      !this.unconfirmedState() &&
      SERVING.has(this.view.phase) &&
      this.log.size === 0 &&
      !this.systemDirty &&
      this.heldByAll() < this.seq
    if (!silent) {
      this.silentSince = undefined
      return
    }
    this.silentSince ??= now
    if (now - this.silentSince < this.ctx.ackTimeoutMs) return
    this.silentSince = undefined
    this.systemDirty = true
    this.log_('warn', 'A watchdog has not acknowledged the whole state; replicating an update', {
      seq: Number(this.seq),
    })
  }

  /**
   * A restarted executor challenges, on-chain, every watchdog that has not answered its probe
   * within `ackTimeoutMs`, with a payload that is no update: a live watchdog answers (which
   * confirms nothing; only its answer to the probe does), a dead one is removed and the executor
   * serves without it. Never with a restored update (see `challengeLateWatchdogs`): a watchdog
   * that holds another update at its seq could not answer.
   */
  private challengeUnconfirmedWatchdogs(now: number): boolean {
    const p = this.restartProbe
    if (!p || !this.awaitingPool || this.view.watchdogMask !== 0) return false
    const timeout = this.ctx.ackTimeoutMs
    if (now - p.since < timeout || now - p.challengedAt < timeout) return false
    let mask = 0n
    for (const slot of this.view.watchdogSlots())
      if (!p.confirmed.has(hexKey(this.view.signers[slot]!))) mask |= 1n << BigInt(slot)
    if (mask === 0n) return false
    p.challengedAt = now
    this.ctx.out({
      type: 'challengeWatchdogs',
      instance: this.id,
      memberMask: mask,
      payload: concatBytes(utf8('POSE-PROBE-v1'), uintToWord(this.seq)),
    })
    this.log_(
      'warn',
      "Watchdogs silent to a restarted executor's probe; challenging them on-chain",
      {
        mask: mask.toString(),
        seq: Number(this.seq),
      },
    )
    return true
  }

  /** Answers an open on-chain challenge against this executor, once per challenge. */
  async answerChallenge(): Promise<void> {
    if (this.role !== 'executor' || this.view.phase !== Phase.ExecutorChallenged) return
    // A member promoted before it received the state cannot serve: it must not claim to be
    // alive, so the challenge times out and the next member takes over.
    if (!this.world || !this.contractSecretKey) return
    // Once per challenge; again after ANSWER_RETRY_MS while the view still shows it open (the
    // answer's block reorganised away, or its call refused on a state that changed since).
    const now = this.ctx.now()
    const sentAt = this.answerSentAt
    if (
      this.answeredChallenge >= this.view.challengeIndex &&
      (sentAt === undefined || now - sentAt < ANSWER_RETRY_MS)
    )
      return
    // Once the contract terminated, publishing its final balances is the only answer: a page
    // closes the challenge (decision 0030), so a host that withholds them is timed out. While
    // they cannot be published (too many accounts) withdrawals run, and are answered as ever;
    // and once a user's claim after the challenge voided a page signed since (the first page
    // must name the latest event), the executor answers as ever: claims landing before each page
    // must not get an honest executor slashed (decision 0030, addendum).
    if (
      this.terminatedInWorld() &&
      !this.finalBalancesUnpublishable() &&
      !this.pageVoidedSinceChallenge()
    )
      return
    this.answeredChallenge = this.view.index
    this.answerSentAt = undefined
    this.log_('info', 'Answering an executor challenge', { eventIndex: Number(this.view.index) })
    // A payload that is a transaction or view box is served like any request; its sealed
    // answer (the user's encrypted receipt, view result or rejection) becomes the on-chain
    // response (a receipt once released). Anything else gets a signed liveness answer.
    const open = (context: string) => {
      try {
        return this.openClientBox(this.view.challengePayload, context)
      } catch {
        return undefined
      }
    }
    const asTx = open(BOX_CONTEXT.tx)
    // A restarted executor confirming its state serves no view yet: the liveness answer tells
    // the caller to ask again (a sealed UNAVAILABLE would read as the view's final answer).
    // So does an executor with no chain clock yet (`runClock`).
    const noView = this.awaitingPool || !this.runClock(this.ctx.now())
    const opened = asTx ?? (noView ? undefined : open(BOX_CONTEXT.view))
    if (!opened) {
      this.respondOnChain(concatBytes(utf8('POSE-ALIVE-v1'), uintToWord(this.seq), this.lastHash))
      return
    }
    const waiter: Waiter = {
      requestId: `challenge:${this.view.challengeIndex}`,
      responseKey: opened.responseKey,
      challenge: true,
    }
    if (!asTx) {
      await this.serveView(opened.plaintext, waiter)
      return
    }
    try {
      this.acceptTx(decodeSignedTx(opened.plaintext), opened.boxKey, waiter)
    } catch (e) {
      if (!(e instanceof ProtocolError)) throw e
      this.reject(waiter, e)
    }
  }

  private respondOnChain(response: Uint8Array): void {
    this.answerSentAt = this.ctx.now()
    // Named like a watchdog's answer: the challenge's own event (decision 0024).
    const { index: eventIndex, hash: eventHash } = answerAnchor(
      this.view,
      this.view.challengeIndex,
      this.view.challengeHash,
    )
    const signature = signDigest(
      respondDigest({
        chainId: this.ctx.chainId,
        manager: this.ctx.manager,
        instance: this.id,
        response,
        eventIndex,
        eventHash,
      }),
      this.ctx.identity.signingKey,
    )
    this.ctx.out({
      type: 'respondExecutor',
      instance: this.id,
      response,
      eventIndex,
      signature,
    })
  }

  sealView(): void {
    if (this.role === 'none' && !this.world) return
    this.seal('append', { kind: 'view', view: this.view.toJSON() })
  }

  /** Seals a record: JSON, or bytes already encoded (an update, `encodeSealedUpdate`). */
  private seal(mode: 'snapshot' | 'append', record: unknown): void {
    const bytes = record instanceof Uint8Array ? record : encodeJson(record)
    this.ctx.out({
      type: 'seal',
      instance: this.id,
      mode,
      blob: this.ctx.sealer.seal(this.label, bytes),
    })
  }

  /**
   * Every `snapshotEveryUpdates` appended updates the member seals a fresh snapshot (state,
   * position, recent outcomes), which replaces its log: restart time stays bounded. An
   * executor that restarts from it re-offers nothing; its watchdogs are brought level by the
   * full state it sends after a restart. An executor compacts only when nothing is in
   * flight: a restored snapshot counts as released, and only released state is authorised.
   */
  private compactSealedLog(appended = 1): void {
    this.appendedSinceSnapshot += appended
    if (this.appendedSinceSnapshot < LIMITS.snapshotEveryUpdates) return
    if (this.role === 'executor' && this.released < this.seq) return
    this.seal('snapshot', this.snapshotRecord())
  }

  private snapshotRecord(): unknown {
    this.appendedSinceSnapshot = 0
    return {
      kind: 'snapshot',
      role: this.role,
      view: this.view.toJSON(),
      contractSecretKey: this.contractSecretKey ? hex(this.contractSecretKey) : null,
      stateKey: this.stateKey ? hex(this.stateKey) : null,
      seq: dec(this.seq),
      lastHash: hex(this.lastHash),
      state: hex(this.world ? encodeWriteSet(this.world.snapshot()) : new Uint8Array()),
      stateFrom: this.stateFrom ? hex(this.stateFrom) : null,
      baseSeq: dec(this.baseSeq),
      recent: recentResultsToWire(this.recentResults(0n)),
      clock: [dec(this.clockFloor.number), dec(this.clockFloor.timestamp)],
      // What a watchdog challenge's answer is checked against (decision 0023): a member restored
      // from this snapshot stays silent to an update at a seq where it holds another one.
      held: [...this.heldDigests].map(([seq, digest]) => [dec(seq), hex(digest)]),
    }
  }

  private async makeWorld(stateKey: Uint8Array): Promise<World> {
    return World.create({
      chainId: this.ctx.chainId,
      maxGasPerTx: this.ctx.maxGasPerTx,
      digestKey: hkdf(stateKey, instanceAad(this.id), 'POSE-DIGEST-v1'),
    })
  }

  // ------------------------------------------------------------ restore

  /** Rebuilds the instance from its sealed blobs (one snapshot, then appended records). */
  static async restore(
    ctx: EnclaveContext,
    instance: bigint,
    blobs: Uint8Array[],
  ): Promise<Instance> {
    let inst: Instance | undefined
    let used = 0
    const recent: RestoredUpdate[] = []
    for (const [i, blob] of blobs.entries()) {
      let rec: SealedRecord
      try {
        rec = readSealedRecord(ctx.sealer.unseal(`instance/${instance}`, blob))
      } catch (e) {
        // A record that does not open after records that did: the tail a power loss can leave
        // (zeros or old blocks where the file system had recorded a longer file), which the
        // host's store cannot tell from a record. The copy ends before it, as an older copy
        // would; every restore already allows for that (a watchdog's copy is checked before it
        // is handed over, an executor waits for its pool). With nothing restored yet, the
        // instance cannot be restored at all.
        if (!inst) throw e
        inst.log_('warn', 'A sealed record does not open; restored from the records before it', {
          record: i,
          records: blobs.length,
          err: toProtocolError(e).shortMessage,
        })
        break
      }
      used = i + 1
      if (rec.kind === 'snapshot') {
        const view = ChainView.fromJSON(rec.view)
        if (view.instance !== instance)
          throw new ProtocolError('MALFORMED', 'sealed snapshot of another instance')
        inst = new Instance(view, ctx)
        inst.role = rec.role
        if (rec.contractSecretKey) {
          inst.contractSecretKey = unhex(rec.contractSecretKey, 'sealed.contractSecretKey', 32)
        }
        if (rec.stateKey) {
          inst.stateKey = unhex(rec.stateKey, 'sealed.stateKey', 32)
          inst.world = await inst.makeWorld(inst.stateKey)
          inst.world.applyWriteSet(decodeWriteSet(unhex(rec.state, 'sealed.state')))
          inst.world.takeWriteSet()
        }
        inst.seq = uint(rec.seq, 'sealed.seq', 64)
        inst.lastHash = unhex(rec.lastHash, 'sealed.lastHash', 32)
        inst.released = inst.seq
        inst.stateFrom = rec.stateFrom ? unhex(rec.stateFrom, 'sealed.stateFrom', 20) : undefined
        inst.baseSeq = rec.baseSeq ? uint(rec.baseSeq, 'sealed.baseSeq', 64) : 0n
        if (rec.recent) inst.rememberResults(recentResultsFromWire(rec.recent, 'sealed.recent'))
        for (const [seq, digest] of rec.held ?? [])
          inst.heldDigests.set(
            uint(seq, 'sealed.held.seq', 64),
            unhex(digest, 'sealed.held.digest', 32),
          )
        if (rec.clock)
          inst.clockFloor = laterClock(
            NO_CLOCK,
            uint(rec.clock[0], 'sealed.clock.number', 64),
            uint(rec.clock[1], 'sealed.clock.timestamp', 64),
          )
      } else if (!inst) {
        if (rec.kind === 'view') {
          const view = ChainView.fromJSON(rec.view)
          inst = new Instance(view, ctx)
          inst.updateRoleQuiet()
          continue
        }
        throw new ProtocolError(
          'MALFORMED',
          `instance ${instance}: sealed update before any snapshot`,
        )
      } else if (rec.kind === 'view') {
        const view = ChainView.fromJSON(rec.view)
        const fresh = new Instance(view, ctx)
        Object.assign(inst.view, fresh.view)
        inst.updateRoleQuiet()
      } else {
        const { body, plain, packed, from } = rec
        inst.applyPlainUpdate(body, plain)
        if (from) inst.stateFrom = from
        inst.released = inst.seq
        recent.push({ body, plain, packed })
        if (recent.length > RESTORED_LOG) recent.shift()
      }
    }
    if (!inst) throw new ProtocolError('MALFORMED', `instance ${instance}: nothing sealed`)
    inst.restoredRecords = used
    if (inst.contractSecretKey) inst.contractPublicKey = x25519Public(inst.contractSecretKey)
    if (inst.role === 'executor' && inst.stateKey) {
      if (inst.stateFrom && equalBytes(inst.stateFrom, ctx.identity.signer)) inst.resumeLog(recent)
      else inst.resumeTakeOver()
    }
    if (inst.role === 'watchdog' && inst.world) inst.restoredCopy = true
    return inst
  }

  /**
   * Restored as executor from a copy it never handed over: the promotion's view record is
   * sealed before the handover's snapshot (`updateRole`), so a crash between the two, or a host
   * that serves an older watchdog copy with that record, restores a copy of its predecessor's
   * log. It is checked against the pool and handed over like any restored copy promoted
   * (decision 0007); resuming it as its own log let it send that copy to watchdogs following
   * the predecessor, who took it, and roll released receipts back.
   */
  private resumeTakeOver(): void {
    this.restoredCopy = true
    this.takeOver()
  }

  /**
   * After a restart the executor does not know which of its last updates every watchdog holds:
   * it re-offers them (watchdogs re-acknowledge what they have) and releases nothing for them,
   * since their requests died with the old process.
   */
  private resumeLog(recent: RestoredUpdate[]): void {
    for (const slot of this.view.watchdogSlots())
      this.acked.set(hexKey(this.view.signers[slot]!), -1n)
    this.awaitingPool = this.view.watchdogSlots().length > 0
    const now = this.ctx.now()
    if (this.awaitingPool) {
      const nonce = randomBytes(32)
      this.restartProbe = { nonce, askedAt: 0, confirmed: new Set(), since: now, challengedAt: 0 }
    }
    this.genesis = { body: new Uint8Array(), sentAt: 0, startedAt: now, activated: true }
    const first = recent[0]?.body.seq ?? this.seq + 1n
    this.released = first - 1n
    for (const { body, plain, packed } of recent) {
      const hash = updateHash({
        instance: this.id,
        seq: body.seq,
        prevHash: body.prevHash,
        payloadHash: keccak256(plain),
      })
      const sealedBody = {
        ...body,
        payload: this.sealPacked(packed, body.seq, body.prevHash),
      }
      this.log.set(body.seq, {
        seq: body.seq,
        body: sealedBody,
        hash,
        executed: [],
        // Not known per re-offered update: release() prunes once all of them are held.
        credited: 0n,
        sentAt: 0,
        createdAt: this.ctx.now(),
      })
    }
  }

  private updateRoleQuiet(): void {
    const slot = this.view.slotOf(this.ctx.identity.signer)
    this.role = slot < 0 ? 'none' : slot === this.view.executorSlot ? 'executor' : 'watchdog'
  }

  // ------------------------------------------------------------ genesis (executor)

  async deploy(
    box: Uint8Array,
  ): Promise<{ contractEncryptionKey: Uint8Array; genesisDigest: Uint8Array }> {
    if (this.role !== 'executor') {
      throw new ProtocolError('WRONG_ROLE', `instance ${this.id}: this enclave is not its executor`)
    }
    if (this.view.phase !== Phase.Creating) {
      throw new ProtocolError(
        'WRONG_PHASE',
        `instance ${this.id}: deploy needs phase Creating, is ${this.view.phase}`,
      )
    }
    const { plaintext } = boxOpen({
      recipientSecretKey: this.ctx.identity.encryptionSecretKey,
      recipientPublicKey: this.ctx.identity.encryptionKey,
      box,
      context: BOX_CONTEXT.deploy,
      aad: instanceAad(this.id),
    })
    const req = decodeDeployRequest(plaintext)
    if (req.instance !== this.id)
      throw new ProtocolError('MALFORMED', 'deploy: instance id does not match')
    if (!equalBytes(initCommitment(req.initCode), this.view.initCommitment)) {
      throw new ProtocolError(
        'COMMITMENT_MISMATCH',
        `instance ${this.id}: code and arguments do not match initCommitment`,
      )
    }
    if (this.world && this.contractPublicKey) {
      // A repeated deploy (the creator retried) answers with the existing genesis.
      return { contractEncryptionKey: this.contractPublicKey, genesisDigest: this.world.digest() }
    }
    const stateKey = randomBytes(32)
    const world = await this.makeWorld(stateKey)
    const block = this.ctx.block()
    world.installCode(SYSTEM_ADDRESS, hexToBytes(poseSystemRuntime))
    const r = await world.deploy({
      from: this.view.creator,
      initCode: req.initCode,
      value: 0n,
      gasLimit: this.ctx.maxGasPerTx,
      block: { number: block.number, timestamp: block.timestamp, prevRandao: randomBytes(32) },
      address: INSTANCE_ADDRESS,
    })
    if (r.status !== 'success') {
      throw new ProtocolError(
        'MALFORMED',
        `deploy: constructor ended with ${r.status}${r.error ? ` (${r.error})` : ''}`,
      )
    }
    world.takeWriteSet()
    const keys = generateX25519KeyPair()
    this.contractSecretKey = keys.secretKey
    this.contractPublicKey = keys.publicKey
    this.stateKey = stateKey
    this.world = world
    this.seq = 0n
    this.lastHash = genesisUpdateHash(this.id, world.digest())
    this.stateFrom = this.ctx.identity.signer
    this.baseSeq = 0n
    for (const slot of this.view.watchdogSlots())
      this.acked.set(hexKey(this.view.signers[slot]!), -1n)
    this.seal('snapshot', this.snapshotRecord())
    const now = this.ctx.now()
    this.genesis = { body: new Uint8Array(), sentAt: 0, startedAt: now, activated: false }
    this.sendGenesis(now)
    this.maybeActivate()
    return { contractEncryptionKey: keys.publicKey, genesisDigest: world.digest() }
  }

  /**
   * Whether the watchdog's latest ack named another executor's log than this one's. While this
   * executor's own state is unconfirmed (restarted, or pulling a newer state), only such
   * watchdogs get it whole: a watchdog following this executor takes a whole state of a higher
   * seq from it, and a copy its host restored from a log that diverged from the one the pool
   * released (its own updates withheld, then replaced after an earlier restart) would roll
   * released receipts back. The probe brings the pool's state first; the state goes once the
   * pool confirmed it.
   */
  private followsAnotherExecutor(signer: Uint8Array): boolean {
    const from = this.ackedFrom.get(hexKey(signer))
    return !!from && from.some((b) => b !== 0) && !equalBytes(from, this.ctx.identity.signer)
  }

  /**
   * A member needs the full state if it never acknowledged any, or if the updates it lacks are
   * no longer in the log (e.g. it joined while the executor moved on).
   */
  private needsFullState(signer: Uint8Array): boolean {
    const a = this.acked.get(hexKey(signer)) ?? -1n
    return a < 0n || (a < this.seq && !this.log.has(a + 1n))
  }

  private sendGenesis(now: number): void {
    const world = this.world!
    const snapshot = encodeWriteSet(world.snapshot())
    for (const slot of this.view.watchdogSlots()) {
      const signer = this.view.signers[slot]!
      if (!this.needsFullState(signer)) continue
      if (this.unconfirmedState() && !this.followsAnotherExecutor(signer)) continue
      // A member drawn again: only an ack that echoes this probe counts (see `redrawn`).
      const nonce = this.redrawn.get(hexKey(signer))
      if (nonce) this.sendProbe(signer, nonce)
      this.sendState(slot, snapshot)
    }
    this.genesis!.sentAt = now
  }

  /** Sends the member at `slot` the whole state (keys, snapshot, position in the log), boxed to it. */
  private sendState(
    slot: number,
    snapshot = encodeWriteSet(this.world!.snapshot()),
    fromSeq = 0n,
  ): void {
    const { box } = boxSeal({
      recipientPublicKey: this.view.encryptionKeys[slot]!,
      plaintext: encodeGenesisSecrets({
        contractSecretKey: this.contractSecretKey!,
        stateKey: this.stateKey!,
        snapshot,
        seq: this.seq,
        lastHash: this.lastHash,
        digest: this.world!.digest(),
        eventIndex: this.view.index,
        baseSeq: this.baseSeq,
        settled: this.view.settled,
        recent: this.recentResults(fromSeq),
        clockNumber: this.clockFloor.number,
        clockTimestamp: this.clockFloor.timestamp,
      }),
      context: BOX_CONTEXT.genesis,
      aad: instanceAad(this.id),
    })
    this.send('genesis', this.view.signers[slot]!, encodeGenesisBody({ box }))
  }

  /** Outcomes this enclave can re-issue receipts for, from `fromSeq` on, newest kept. */
  private recentResults(fromSeq: bigint): Array<{ seq: bigint; result: ExecutedTx }> {
    // Kept as bytes: only the newest MAX_RECENT_RESULTS, and RECENT_RESULTS_BYTES of them, are
    // decoded (older ones resent get REPLAYED).
    const byHash = new Map<string, { seq: bigint; size: number; decode: () => ExecutedTx }>()
    for (const [k, r] of this.replicated) {
      if (r.seq >= fromSeq)
        byHash.set(k, { seq: r.seq, size: r.bytes.length, decode: () => decodeExecuted(r.bytes) })
    }
    for (const [k, r] of this.receipts) {
      if (r.seq >= fromSeq)
        byHash.set(k, {
          seq: r.seq,
          size: r.answer.length,
          decode: () => receiptOutcome(r.answer),
        })
    }
    const sorted = [...byHash.values()].sort((a, b) => (a.seq < b.seq ? -1 : a.seq > b.seq ? 1 : 0))
    const out: Array<{ seq: bigint; result: ExecutedTx }> = []
    let bytes = 0
    for (let i = sorted.length - 1; i >= 0 && out.length < MAX_RECENT_RESULTS; i--) {
      bytes += sorted[i]!.size
      if (bytes > RECENT_RESULTS_BYTES) break
      out.push({ seq: sorted[i]!.seq, result: sorted[i]!.decode() })
    }
    return out.reverse()
  }

  private rememberResults(recent: Array<{ seq: bigint; result: ExecutedTx }>): void {
    for (const r of recent) {
      this.replicated.put(hex(r.result.txHash), {
        seq: r.seq,
        bytes: encodeExecuted(r.result),
      })
    }
  }

  private maybeActivate(): void {
    const g = this.genesis
    if (!g || g.activated || this.view.phase !== Phase.Creating) return
    let mask = 1n << BigInt(this.view.executorSlot)
    let all = true
    for (const slot of this.view.watchdogSlots()) {
      if ((this.acked.get(hexKey(this.view.signers[slot]!)) ?? -1n) >= 0n)
        mask |= 1n << BigInt(slot)
      else all = false
    }
    if (!all) return
    g.activated = true
    const digest = this.world!.digest()
    const sig = signDigest(
      activationDigest({
        chainId: this.ctx.chainId,
        manager: this.ctx.manager,
        instance: this.id,
        contractEncryptionKey: this.contractPublicKey!,
        genesisDigest: digest,
        ackedMask: mask,
        eventIndex: this.view.index,
        eventHash: this.view.hash,
      }),
      this.ctx.identity.signingKey,
    )
    this.ctx.out({
      type: 'activate',
      instance: this.id,
      contractEncryptionKey: this.contractPublicKey!,
      genesisDigest: digest,
      ackedMask: mask,
      eventIndex: this.view.index,
      signature: sig,
    })
    this.log_('info', 'Genesis acknowledged by every watchdog', { mask: mask.toString() })
  }

  // ------------------------------------------------------------ transactions (executor)

  private answer(w: Waiter, a: Answer): void {
    this.answerEncoded(w, encodeAnswer(a))
  }

  /** Seals an encoded answer (`encodeAnswer`) to the waiter. */
  private answerEncoded(w: Waiter, answer: Uint8Array): void {
    const sealed = sealAnswer(w.responseKey, answer)
    if (w.challenge) {
      if (this.role === 'executor' && this.view.phase === Phase.ExecutorChallenged)
        this.respondOnChain(sealed)
      return
    }
    this.ctx.out({ type: 'answer', requestId: w.requestId, sealed })
  }

  private reject(w: Waiter, e: ProtocolError): void {
    this.answer(w, { kind: 'rejected', error: e.toObject() })
  }

  private openClientBox(
    box: Uint8Array,
    context: string,
  ): { plaintext: Uint8Array; responseKey: Uint8Array; boxKey: Uint8Array } {
    if (!this.contractSecretKey || !this.contractPublicKey) {
      // A member removed from the pool dropped its keys with its state: a client that still
      // sends here must follow the manager to the executor now, not wait for this enclave to
      // catch up (the SDK retries NOT_READY at the same operator for 10 s).
      if (this.role !== 'executor')
        throw new ProtocolError(
          'WRONG_ROLE',
          `instance ${this.id}: this enclave is not its executor (and holds no contract key)`,
        )
      throw new ProtocolError(
        'NOT_READY',
        `instance ${this.id}: no contract key in this enclave yet`,
      )
    }
    const opened = boxOpen({
      recipientSecretKey: this.contractSecretKey,
      recipientPublicKey: this.contractPublicKey,
      box,
      context,
      aad: instanceAad(this.id),
    })
    return {
      plaintext: opened.plaintext,
      responseKey: opened.responseKey,
      boxKey: boxSenderKey(box),
    }
  }

  private assertServing(): void {
    if (this.role !== 'executor') {
      throw new ProtocolError('WRONG_ROLE', `instance ${this.id}: this enclave is not its executor`)
    }
    if (!SERVING.has(this.view.phase)) {
      throw new ProtocolError(
        'WRONG_PHASE',
        `instance ${this.id}: not active (phase ${this.view.phase})`,
      )
    }
  }

  /**
   * An executor restarted from a sealed copy may be behind its own log, which the watchdogs
   * hold further (the host may serve a stale copy): until every watchdog confirmed its state,
   * what it would answer from that state (a view, a user's next nonce, a nonce gap) may be
   * wrong, so it answers nothing final. UNAVAILABLE: the client tries again (simulator seed 144:
   * a stale nonce led a user to re-use nonces already spent).
   */
  private assertConfirmed(): void {
    if (this.awaitingPool) {
      throw new ProtocolError(
        'UNAVAILABLE',
        `instance ${this.id}: the executor restarted and is confirming its state with the watchdogs; retry`,
      )
    }
  }

  /**
   * Opens, checks and queues a transaction without executing anything: the caller runs
   * `pump()` once for a run of them (group commit, `Enclave.call`).
   */
  acceptSealedTx(requestId: string, box: Uint8Array): void {
    const { plaintext, responseKey, boxKey } = this.openClientBox(box, BOX_CONTEXT.tx)
    const waiter: Waiter = { requestId, responseKey }
    try {
      // Refused sealed, as every refusal of an opened box: a client trusts only its enclave's
      // word that a transaction was not taken (a host's could be a lie).
      this.assertServing()
      this.acceptTx(decodeSignedTx(plaintext), boxKey, waiter)
    } catch (e) {
      if (!(e instanceof ProtocolError)) throw e
      this.reject(waiter, e)
    }
  }

  /**
   * Checks that `tx.from` sent `tx`: its own signature, or its authorisation of the box's
   * ephemeral key (`boxKey`), checked once per session and then remembered (decision 0014).
   * The authorisation's expiry counts only for a transaction not seen before (`acceptTx`): a
   * resubmitted box still gets the receipt it has.
   */
  private checkSender(tx: SignedTx, txHash: Uint8Array, boxKey: Uint8Array): void {
    const domain = { chainId: this.ctx.chainId, manager: this.ctx.manager }
    if (!tx.session) {
      if (!equalBytes(recoverAddress(txHash, tx.signature), tx.from))
        throw new ProtocolError('BAD_SIGNATURE', 'tx.signature: not signed by tx.from')
      return
    }
    const { validUntil } = tx.session
    const key = hex(boxKey) + hex(tx.from)
    const known = this.sessions.get(key)
    if (known && known.validUntil === validUntil && equalBytes(known.signature, tx.signature))
      return
    const digest = hashSession(domain, { instance: this.id, account: tx.from, boxKey, validUntil })
    if (!equalBytes(recoverAddress(digest, tx.signature), tx.from)) {
      throw new ProtocolError(
        'BAD_SIGNATURE',
        "tx.signature: tx.from did not authorise this box's session key",
      )
    }
    this.sessions.delete(key)
    setBounded(this.sessions, key, { validUntil, signature: tx.signature.slice() }, MAX_SESSIONS)
  }

  private acceptTx(tx: SignedTx, boxKey: Uint8Array, waiter: Waiter): void {
    if (tx.instance !== this.id)
      throw new ProtocolError('MALFORMED', `tx.instance: expected ${this.id}, got ${tx.instance}`)
    const intrinsic = intrinsicGas(tx.data)
    if (tx.gasLimit > this.ctx.maxGasPerTx || tx.gasLimit < intrinsic) {
      throw new ProtocolError(
        'OUT_OF_RANGE',
        `tx.gasLimit: ${tx.gasLimit} outside [${intrinsic} (its intrinsic gas), ${this.ctx.maxGasPerTx}]`,
      )
    }
    const txHash = hashTx({ chainId: this.ctx.chainId, manager: this.ctx.manager }, tx)
    this.checkSender(tx, txHash, boxKey)
    const key = hex(txHash)
    const done = this.receipts.get(key)
    if (done) {
      this.answerEncoded(waiter, done.answer)
      return
    }
    const earlier = this.replicated.get(key)
    if (earlier && this.role === 'executor' && earlier.seq > this.heldByAll()) {
      // Executed before a restart or a takeover, in an update not every current watchdog is
      // known to hold: a receipt now could be rolled back if this executor were replaced
      // before they get it (after a takeover, until each acknowledged the handover).
      if (this.late.length >= LIMITS.maxQueuedTxs)
        throw new ProtocolError('UNAVAILABLE', 'tx: its update is being replicated; resubmit')
      this.late.push({ result: decodeExecuted(earlier.bytes), seq: earlier.seq, waiter })
      return
    }
    if (earlier) {
      this.answerEncoded(waiter, this.receiptAnswer(decodeExecuted(earlier.bytes), earlier.seq))
      return
    }
    const known = this.byHash.get(key)
    if (known) {
      const clients = known.waiters.filter((w) => !w.challenge)
      if (clients.length >= MAX_WAITERS_PER_TX) {
        // Each copy of the request waits for the same answer; the oldest copy's client has
        // most likely given up on it. A challenge's waiter is answered on-chain and stays.
        const oldest = clients[0]!
        known.waiters.splice(known.waiters.indexOf(oldest), 1)
        this.reject(
          oldest,
          new ProtocolError(
            'UNAVAILABLE',
            `tx: more than ${MAX_WAITERS_PER_TX} copies of this request wait; the oldest is dropped, resubmit`,
          ),
        )
      }
      known.waiters.push(waiter)
      return
    }
    if (!this.servedAfterTermination(tx)) this.assertNotTerminated()
    if (tx.session && tx.session.validUntil < this.ctx.block().timestamp) {
      throw new ProtocolError(
        'EXPIRED',
        `tx.session.validUntil: ${tx.session.validUntil} is in the past; authorise a new session`,
      )
    }
    const from = hex(tx.from)
    const expected = this.nextNonce.get(from) ?? this.world!.getNonce(tx.from)
    if (tx.nonce < expected) {
      throw new ProtocolError(
        'REPLAYED',
        `tx.nonce: ${tx.nonce} was already used; next is ${expected}`,
      )
    }
    if (this.queue.length + this.byHash.size >= LIMITS.maxQueuedTxs) {
      throw new ProtocolError('UNAVAILABLE', 'executor queue is full; retry later')
    }
    const p: Pending = { tx, txHash, key, waiters: [waiter], receivedAt: this.ctx.now() }
    if (tx.nonce > expected) {
      if (tx.nonce - expected > FUTURE_NONCE_WINDOW) {
        // The gap may be this enclave's stale state, not the user's.
        this.assertConfirmed()
        throw new ProtocolError(
          'BAD_NONCE',
          `tx.nonce: ${tx.nonce} is too far ahead; next is ${expected}`,
        )
      }
      let m = this.future.get(from)
      if (!m) {
        m = new Map()
        this.future.set(from, m)
      }
      if (m.has(tx.nonce))
        throw new ProtocolError(
          'BAD_NONCE',
          `tx.nonce: another tx with nonce ${tx.nonce} is waiting`,
        )
      m.set(tx.nonce, p)
      this.byHash.set(key, p)
      return
    }
    this.enqueue(from, p)
  }

  private enqueue(from: string, p: Pending): void {
    this.queue.push(p)
    this.byHash.set(p.key, p)
    let next = p.tx.nonce + 1n
    const m = this.future.get(from)
    while (m?.has(next)) {
      const q = m.get(next)!
      m.delete(next)
      this.queue.push(q)
      next++
    }
    if (m && m.size === 0) this.future.delete(from)
    this.nextNonce.set(from, next)
  }

  private inFlight(): number {
    return Number(this.seq - this.released)
  }

  /**
   * Executes queued transactions as batches while the pipeline has room. With nothing in
   * flight a batch starts at once (a lone transaction never waits); while updates are in
   * flight, a further one starts only for a full batch's worth of transactions, and the rest
   * wait for the next acknowledgement and then go as one batch (group commit: replication
   * costs a signature, a message and a seal per update, not per transaction).
   */
  async pump(): Promise<void> {
    if (this.busy || this.role !== 'executor' || !SERVING.has(this.view.phase)) return
    if (this.awaitingPool) return
    this.busy = true
    try {
      for (;;) {
        // Deposits the view holds and the world has not credited: after a restart whose sealed
        // view is ahead of its sealed state, once a wait for the pool ends (simulator seed 30),
        // those the chain reported while a batch ran, and those the last update had no room for.
        this.creditAgreed()
        const inFlight = this.inFlight()
        const pending = this.queue.length > 0 || this.systemDirty
        if (!pending || inFlight >= LIMITS.maxInFlightUpdates) break
        if (inFlight > 0 && this.queue.length < LIMITS.pipelineMinBatchTxs) break
        const clock = this.runClock(this.ctx.now(), true)
        if (!clock) {
          // No clock yet: transactions wait for the watchdogs' reports (their acks pump again);
          // an update without any (a credit, the empty update that gets a watchdog silent to
          // the handover challenged) goes now.
          if (this.systemDirty) await this.executeBatch([], this.clockFloor)
          break
        }
        await this.executeBatch(this.queue.splice(0, LIMITS.maxBatchTxs), clock)
      }
    } finally {
      this.busy = false
    }
  }

  private async executeBatch(batch: Pending[], chain: ChainClock): Promise<void> {
    const world = this.world!
    const block = { number: chain.number, timestamp: chain.timestamp, prevRandao: randomBytes(32) }
    const executed: Executed[] = []
    // The bytes of the results so far: the write set's are counted by the world.
    const room = updateRoom()
    let results = 0
    for (const [i, p] of batch.entries()) {
      if (this.terminatedInWorld() && !this.servedAfterTermination(p.tx)) {
        // Transactions queued behind the one that terminated the contract never run; their
        // senders' next nonce is the world's again (a withdrawal may follow).
        this.byHash.delete(p.key)
        this.nextNonce.delete(hex(p.tx.from))
        const err = this.terminatedError()
        for (const w of p.waiters) this.reject(w, err)
        continue
      }
      const nonce = world.getNonce(p.tx.from)
      if (p.tx.nonce !== nonce) {
        // Only possible if a queued tx was reordered; it is answered, never silently dropped.
        this.byHash.delete(p.key)
        this.nextNonce.delete(hex(p.tx.from))
        for (const w of p.waiters)
          this.reject(w, new ProtocolError('BAD_NONCE', `tx.nonce: expected ${nonce}`))
        continue
      }
      const existed = world.hasAccount(p.tx.from)
      world.setNonce(p.tx.from, nonce + 1n)
      const result = await world.call({
        from: p.tx.from,
        to: p.tx.to,
        value: p.tx.value,
        data: p.tx.data,
        gasLimit: p.tx.gasLimit,
        block,
        updateRoom: room - results,
      })
      if (result.oversized && (executed.length > 0 || this.systemDirty)) {
        // The update is full: this transaction and the rest go, in order, at the head of the
        // next batch. Alone in an update it would not fit either and stays an error.
        world.restoreNonce(p.tx.from, nonce, existed)
        this.queue.unshift(...batch.slice(i))
        break
      }
      executed.push({ p, result })
      results += executedBytes(result)
    }
    if (executed.length === 0 && !this.systemDirty) return
    this.systemDirty = false
    const payload: UpdatePayload = {
      writeSet: encodeWriteSet(world.takeWriteSet()),
      results: executed.map(({ p, result }) => ({
        txHash: p.txHash,
        from: p.tx.from,
        nonce: p.tx.nonce,
        status: result.status,
        gasUsed: result.gasUsed,
        returnData: result.returnData,
        logs: result.logs,
      })),
      // The floor, not the clock run at: a clock no watchdog bounded must not become the
      // floor of the members that apply this update (decision 0032).
      blockNumber: this.clockFloor.number,
      timestamp: this.clockFloor.timestamp,
    }
    const plain = encodeUpdatePayload(payload)
    const packed = packUpdatePayload(plain)
    const seq = this.seq + 1n
    const prevHash = this.lastHash
    const hash = updateHash({ instance: this.id, seq, prevHash, payloadHash: keccak256(plain) })
    const body: UpdateBody = {
      seq,
      prevHash,
      eventIndex: this.view.index,
      digest: world.digest(),
      payload: this.sealPacked(packed, seq, prevHash),
    }
    this.seq = seq
    this.lastHash = hash
    this.seal('append', this.updateRecord(body, packed))
    this.compactSealedLog()
    const entry: LogEntry = {
      seq,
      body,
      hash,
      executed,
      credited: lastCredited(world),
      sentAt: this.ctx.now(),
      createdAt: this.ctx.now(),
    }
    this.log.set(seq, entry)
    this.broadcastUpdate(entry)
    this.release()
  }

  /** An update's payload as it travels: deflated (`packed`), then sealed under the state key. */
  private sealPacked(packed: Uint8Array, seq: bigint, prevHash: Uint8Array): Uint8Array {
    return aeadSeal(this.stateKey!, packed, this.payloadAad(seq, prevHash))
  }

  /** v2: the sealed payload is deflated (decision 0013); a v1 body does not open as v2. */
  private payloadAad(seq: bigint, prevHash: Uint8Array): Uint8Array {
    return concatBytes(utf8('POSE-UPDATE-v2'), uintToWord(this.id), uintToWord(seq), prevHash)
  }

  /** The sealed record of an update this member holds; `packed`: its payload, deflated. */
  private updateRecord(body: UpdateBody, packed: Uint8Array): Uint8Array {
    return encodeSealedUpdate({ body: { ...body, payload: packed }, from: this.stateFrom })
  }

  /**
   * Sends the update to each watchdog that has not acked it (of `only`, when given): under
   * the pair key of each (decision 0020), or as the signed broadcast envelope.
   */
  private broadcastUpdate(entry: LogEntry, only?: Set<string>): void {
    let signed: PeerEnvelopeWire | undefined
    for (const slot of this.view.watchdogSlots()) {
      const signer = this.view.signers[slot]!
      const k = hexKey(signer)
      if ((this.acked.get(k) ?? -1n) >= entry.seq) continue
      if (only && !only.has(k)) continue
      const key = this.pairKeyWith(slot)
      let envelope: PeerEnvelopeWire
      if (key) {
        const w = this.updateWire(entry)
        const e = { kind: 'update' as const, instance: this.id, from: this.ctx.identity.signer }
        const tagged = tagEnvelope({ ...e, to: signer, body: w.body }, key, w.bodyHash)
        envelope = {
          kind: 'update',
          instance: dec(this.id),
          from: hex(e.from),
          to: hex(signer),
          body: w.bodyHex,
          signature: hex(tagged.signature),
        }
      } else envelope = signed ??= envelopeToWire(this.updateEnvelope(entry))
      this.ctx.out({ type: 'send', to: signer, envelope })
    }
    entry.sentAt = this.ctx.now()
  }

  /** The update's body as it travels, encoded once. */
  private updateWire(entry: LogEntry): NonNullable<LogEntry['wire']> {
    if (entry.wire) return entry.wire
    const body = encodeUpdateBody(entry.body)
    entry.wire = { body, bodyHex: hex(body), bodyHash: keccak256(body) }
    return entry.wire
  }

  /** The update's envelope to every member, signed on first use. */
  private updateEnvelope(entry: LogEntry): PeerEnvelope {
    entry.envelope ??= signEnvelope(
      {
        kind: 'update',
        instance: this.id,
        from: this.ctx.identity.signer,
        to: BROADCAST,
        body: this.updateWire(entry).body,
      },
      this.ctx.identity.signingKey,
    )
    return entry.envelope
  }

  /**
   * This enclave's pair key with the member in `slot` (decision 0020), or undefined when the
   * slot is outside the pool (-1 included), empty, this enclave's own, or has no key in the view.
   */
  private pairKeyWith(slot: number): Uint8Array | undefined {
    const signer = this.view.signers[slot]
    const encryptionKey = this.view.encryptionKeys[slot]
    if (!signer || !encryptionKey || equalBytes(signer, BROADCAST)) return undefined
    if (equalBytes(signer, this.ctx.identity.signer)) return undefined
    return this.ctx.pairKey({ signer, encryptionKey } satisfies PairParty)
  }

  /**
   * Checks a tagged envelope (an update or an ack to this enclave) under the pair key of its
   * sender, who must be a member of this instance: BAD_SIGNATURE if the tag is wrong.
   */
  verifyTag(e: PeerEnvelope): void {
    const key = this.pairKeyWith(this.view.slotOf(e.from))
    if (!key) {
      throw new ProtocolError(
        this.view.executor ? 'WRONG_ROLE' : 'NOT_READY',
        `peer ${e.kind}: sender is not a member of instance ${this.id}`,
      )
    }
    verifyEnvelopeTag(e, key)
  }

  /** The encoded answer with the receipt of a transaction executed earlier (cached, signed once). */
  private receiptAnswer(result: ExecutedTx, seq: bigint): Uint8Array {
    return (
      this.receipts.get(hex(result.txHash))?.answer ??
      this.keepReceipt(this.makeReceipt(result, seq))
    )
  }

  /**
   * Encodes a released receipt as the answer its senders get, and keeps it for resends under
   * `key`, its transaction hash in hex (made here unless the caller has it).
   */
  private keepReceipt(receipt: Receipt, key: string = hex(receipt.txHash)): Uint8Array {
    const answer = encodeAnswer({ kind: 'receipt', receipt })
    this.receipts.put(key, { seq: receipt.seq, answer })
    return answer
  }

  /** The last seq every current watchdog acknowledged (this.seq without watchdogs). */
  private heldByAll(): bigint {
    let min = this.seq
    for (const slot of this.view.watchdogSlots()) {
      const a = this.acked.get(hexKey(this.view.signers[slot]!)) ?? -1n
      if (a < min) min = a
    }
    return min
  }

  /**
   * Whether every current watchdog holds this executor's whole state: every update released and
   * a handover acknowledged. What leaves the enclave as coins (authorisations, final balances)
   * waits for it: a member promoted later continues from what it holds.
   */
  private heldEverywhere(): boolean {
    return this.released >= this.seq && this.heldByAll() >= this.seq
  }

  /** Releases receipts of every update that all current watchdogs acknowledged, in order. */
  private release(): void {
    const min = this.heldByAll()
    // Receipts released by this call are signed together, under one signature (decision 0015).
    const released: Array<{ result: ExecutedTx; seq: bigint; key: string; waiters: Waiter[] }> = []
    while (this.released < min) {
      const seq = this.released + 1n
      const entry = this.log.get(seq)
      this.released = seq
      if (!entry) continue
      this.log.delete(seq)
      // Every watchdog holds the credits of this update: the view forgets their deposits (until
      // then the world may yet be replaced by the pool's, and they would be credited again).
      this.view.pruneDeposits(entry.credited)
      for (const { p, result } of entry.executed) {
        this.byHash.delete(p.key)
        released.push({
          result: {
            txHash: p.txHash,
            from: p.tx.from,
            nonce: p.tx.nonce,
            status: result.status,
            gasUsed: result.gasUsed,
            returnData: result.returnData,
            logs: result.logs,
          },
          seq,
          key: p.key,
          waiters: p.waiters,
        })
      }
    }
    if (released.length > 0) {
      const receipts = signReceipts(
        released.map(({ result, seq }) => this.unsignedReceipt(result, seq)),
        { chainId: this.ctx.chainId, manager: this.ctx.manager },
        this.ctx.identity.signingKey,
      )
      for (const [i, { key, waiters }] of released.entries()) {
        const answer = this.keepReceipt(receipts[i]!, key)
        for (const w of waiters) this.answerEncoded(w, answer)
      }
    }
    if (this.late.length > 0) {
      const waiting: typeof this.late = []
      for (const l of this.late) {
        if (l.seq > min) {
          waiting.push(l)
          continue
        }
        this.answerEncoded(l.waiter, this.receiptAnswer(l.result, l.seq))
      }
      this.late = waiting
    }
    // Also once every watchdog holds the whole state (a restored log has no entries to prune
    // by); not on a handover's release, which no watchdog has acknowledged yet.
    if (this.heldByAll() >= this.seq && !this.systemDirty && this.world)
      this.view.pruneDeposits(lastCredited(this.world))
    this.compactSealedLog(0)
  }

  // ------------------------------------------------------------ termination (SPEC §4 Coins)

  /** Whether the contract called `PoseSystem.terminate()` in this enclave's state. */
  private terminatedInWorld(): boolean {
    return !!this.world && this.world.getStorageWord(SYSTEM_ADDRESS, SYSTEM_TERMINATED_SLOT) !== 0n
  }

  private terminatedError(): ProtocolError {
    return new ProtocolError(
      'WRONG_PHASE',
      `instance ${this.id}: the contract terminated; final balances are withdrawn on-chain`,
    )
  }

  private assertNotTerminated(): void {
    if (this.terminatedInWorld()) throw this.terminatedError()
  }

  /**
   * Whether `tx` runs although the contract terminated in the world: a withdrawal to the system
   * address while the final balances cannot be published (more accounts than their pages may
   * list), the users' only way out. While they can be, nothing runs: transactions would keep
   * the executor from publishing them (it publishes with nothing unreleased).
   */
  private servedAfterTermination(tx: { to: Uint8Array; data: Uint8Array }): boolean {
    // Before termination the count may still fall (an account spends all it holds), so it is
    // neither needed nor kept.
    if (!isSystemWithdraw(tx) || !this.terminatedInWorld()) return false
    return this.finalBalancesUnpublishable()
  }

  /**
   * Whether, the contract having terminated in the world, its final balances list more accounts
   * than their pages may. After termination the listed accounts only grow (credited deposits;
   * withdrawals keep an account listed): once too many, always. Otherwise counted again after
   * any change.
   */
  private finalBalancesUnpublishable(): boolean {
    const u = this.unpublishable
    if (u?.value || (u?.seq === this.seq && !this.systemDirty)) return u.value
    const value = this.finalBalances().length > LIMITS.maxFinalAccounts
    this.unpublishable = { seq: this.seq, value }
    return value
  }

  /**
   * Every account's final cumulative withdrawal: what it already withdrew plus what it holds.
   * Listed: every account without code that holds coins or withdrew some in the world (one that
   * burned all it held may not have claimed them on-chain yet, and after termination only this
   * list pays). Coins held by contracts are not listed (no key can claim them on-chain); a
   * contract that holds users' coins pays them out before it terminates.
   */
  private finalBalances(): FinalBalance[] {
    const world = this.world!
    const out: FinalBalance[] = []
    for (const { address, balance } of world.accountsWithoutCode()) {
      const withdrawn = world.getStorageWord(SYSTEM_ADDRESS, systemWithdrawnSlot(address))
      if (balance > 0n || withdrawn > 0n)
        out.push({ account: address, cumulative: withdrawn + balance })
    }
    return out.sort((a, b) => compareBytes(a.account, b.account))
  }

  /**
   * Once the update that terminated the contract is held by every watchdog and every deposit
   * the manager recorded is credited, the executor publishes the final balances in pages of
   * `MAX_FINAL_ACCOUNTS`, each signed at the view's latest event (retried until the chain shows
   * the termination; the manager accepts only a signature naming its latest event and refuses a
   * page already in). Every member computes the same pages from the same released state, so a
   * new executor completes what an old one started.
   */
  private publishTermination(now: number): void {
    // Also while the executor is challenged: a page is the answer (decision 0030).
    const { phase } = this.view
    const open = phase === Phase.Active || phase === Phase.WatchdogsChallenged
    if (!open && phase !== Phase.ExecutorChallenged) return
    if (!this.terminatedInWorld() || !this.heldEverywhere() || this.systemDirty) return
    // Not from a state its pool has not confirmed: its host may have served an older copy than
    // the pool released.
    if (this.unconfirmedState()) return
    // Every deposit the manager recorded is credited. The view may still keep deposits already
    // credited (a promoted member keeps those of its last updates until every watchdog holds
    // its handover, which a silent one never does): they are in the balances.
    const credited = lastCredited(this.world!)
    if (this.view.deposits.some((d) => d.index > credited)) return
    const t = this.terminationSent
    if (t && t.eventIndex === this.view.index && now - t.at < TERMINATE_RETRY_MS) return
    this.terminationSent = { eventIndex: this.view.index, at: now }
    // Once too many accounts, always (see `servedAfterTermination`): not counted again.
    if (this.unpublishable?.value) return
    if (this.finalPagesAt?.seq !== this.seq) {
      const balances = this.finalBalances()
      if (balances.length > LIMITS.maxFinalAccounts) {
        this.unpublishable = { seq: this.seq, value: true }
        if (!t) {
          this.log_('warn', 'Too many funded accounts to publish as final balances', {
            accounts: balances.length,
            max: LIMITS.maxFinalAccounts,
          })
        }
        return
      }
      const pages = finalBalancesPages(balances)
      this.finalPagesAt = { seq: this.seq, root: finalBalancesRoot(balances), pages }
      // Counted: `servedAfterTermination` need not count them again at this seq.
      this.unpublishable = { seq: this.seq, value: false }
    }
    const { root, pages } = this.finalPagesAt
    for (const [page, balances] of pages.entries()) {
      const digest = terminateDigest({
        chainId: this.ctx.chainId,
        manager: this.ctx.manager,
        instance: this.id,
        root,
        page,
        pages: pages.length,
        pageHash: keccak256(encodeFinalPage(root, balances)),
        eventIndex: this.view.index,
        eventHash: this.view.hash,
      })
      this.ctx.out({
        type: 'terminate',
        instance: this.id,
        root,
        page,
        pages: pages.length,
        accounts: balances.map((b) => b.account),
        cumulatives: balances.map((b) => b.cumulative),
        eventIndex: this.view.index,
        signature: signDigest(digest, this.ctx.identity.signingKey),
      })
    }
    this.log_('info', 'Contract terminated; publishing its final balances', {
      accounts: pages.reduce((n, p) => n + p.length, 0),
      pages: pages.length,
      eventIndex: Number(this.view.index),
    })
  }

  /**
   * Whether the executor, challenged, published its final balances' pages since the challenge
   * and a user's claim (or deposit) landed after them: the manager takes a first page only at
   * its latest event, so the pages in flight were refused. Only events a user pays for count:
   * a host cannot make them up (the view checks the manager's running hash) nor make them with
   * its operator's key alone, as it can a watchdog challenge. The manager takes no deposit
   * while the executor is challenged, so during a challenge only a claim, with an
   * authorisation signed before the end, can void a page.
   */
  private pageVoidedSinceChallenge(): boolean {
    const t = this.terminationSent
    return !!t && t.eventIndex >= this.view.challengeIndex && this.view.lastUserEvent > t.eventIndex
  }

  /**
   * The caller's cumulative withdrawal, signed for the manager's `withdraw` (SPEC §4 Coins).
   * Only state every watchdog holds is authorised: while an update, or a promoted member's
   * handover, is not yet acknowledged by every watchdog, a new executor might not hold it, and
   * the coins would be both in the world and paid out. (A handover counts its whole state as
   * released, including a predecessor's updates no watchdog may hold.)
   */
  private authorisation(account: Uint8Array): Uint8Array {
    if (!this.heldEverywhere()) {
      throw new ProtocolError(
        'NOT_READY',
        'withdrawal authorisation: updates are still being replicated; retry',
      )
    }
    const cumulative = this.world!.getStorageWord(SYSTEM_ADDRESS, systemWithdrawnSlot(account))
    const signature = signDigest(
      withdrawDigest({
        chainId: this.ctx.chainId,
        manager: this.ctx.manager,
        instance: this.id,
        recipient: account,
        cumulative,
        eventIndex: this.view.index,
        eventHash: this.view.hash,
      }),
      this.ctx.identity.signingKey,
    )
    // abi.encode(uint256 cumulative, uint64 eventIndex, bytes signature)
    const padded = new Uint8Array(96)
    padded.set(signature)
    return concatBytes(
      uintToWord(cumulative),
      uintToWord(this.view.index),
      uintToWord(96n),
      uintToWord(65n),
      padded,
    )
  }

  /**
   * Keeps a watchdog's report of its view (the latest few: one ahead of this view is checked
   * once this view gets there) and how far a report agreed with this view.
   */
  private noteViewReport(k: string, index: bigint, hash: Uint8Array): void {
    if (index <= (this.viewAgreed.get(k) ?? 0n)) return
    let reports = this.viewReports.get(k)
    if (!reports) {
      reports = []
      this.viewReports.set(k, reports)
    }
    if (!reports.some((r) => r.index === index)) {
      reports.push({ index, hash })
      if (reports.length > MAX_VIEW_REPORTS) reports.shift()
    }
  }

  /**
   * The furthest event at which every current watchdog's view agrees with this one: a deposit
   * up to it is on the chain other operators feed, not one this executor's host made up
   * (decision 0025). Unbounded with no watchdog (s = 0 trusts its one operator's feed).
   */
  private agreedIndex(): bigint {
    let min: bigint | undefined
    for (const slot of this.view.watchdogSlots()) {
      const k = hexKey(this.view.signers[slot]!)
      let agreed = this.viewAgreed.get(k) ?? 0n
      const reports = this.viewReports.get(k)
      if (reports) {
        for (const r of reports) {
          if (r.index <= agreed) continue
          const mine = this.view.hashAt(r.index)
          if (mine && equalBytes(mine, r.hash)) agreed = r.index
        }
        const left = reports.filter(
          (r) => r.index > agreed && r.index > this.view.index - BigInt(RECENT_HASHES),
        )
        if (left.length > 0) this.viewReports.set(k, left)
        else this.viewReports.delete(k)
        this.viewAgreed.set(k, agreed)
      }
      if (min === undefined || agreed < min) min = agreed
    }
    return min ?? MAX_U64_INDEX
  }

  /**
   * A deposit waits for the watchdogs' views (`creditDeposits`, also on each tick through
   * `pump`): they are asked for them, at this view's latest event, at most once per RESEND_MS.
   */
  private probeForDeposits(now: number): void {
    if (now - this.creditProbeAt < RESEND_MS) return
    this.creditProbeAt = now
    const nonce = randomBytes(32)
    for (const slot of this.view.watchdogSlots()) {
      const signer = this.view.signers[slot]!
      // A member drawn again keeps being asked for its own probe's nonce (see `redrawn`).
      this.sendProbe(signer, this.redrawn.get(hexKey(signer)) ?? nonce, this.view.index)
    }
  }

  /**
   * A watchdog whose chain view moved tells its executor where it is now (an ack, which
   * carries the view): deposits are credited once every watchdog's view agrees (decision 0025).
   */
  reportView(): void {
    if (this.role !== 'watchdog' || !this.world || !this.stateFrom) return
    const exec = this.view.executor
    if (exec && equalBytes(exec, this.stateFrom)) this.ack(exec)
  }

  /**
   * The executor credits deposits the chain reported (SPEC §5) exactly once: the index of the
   * last credited event lives in the world's replicated state, so a new executor continues
   * where the old one stopped, however often an operator replays the events. The view keeps
   * them until every watchdog holds the credit (release()). Only deposits up to where every
   * watchdog's chain view agrees with this one are credited (decision 0025).
   */
  creditDeposits(): void {
    // Not while a batch executes, which counts its update's bytes as it goes: pump() credits
    // before each batch.
    if (!this.busy) this.creditAgreed()
  }

  /**
   * `creditDeposits`, for as many deposits as half an update holds (decision 0028), one at
   * least: the rest wait for the next update.
   */
  private creditAgreed(): void {
    if (this.view.deposits.length === 0) this.creditWaitSince = undefined
    if (this.role !== 'executor' || !this.world || this.view.deposits.length === 0) return
    // Not into a state that may yet be replaced by the pool's: the credited deposits would be
    // forgotten with it. pump() credits them once the executor serves again.
    if (this.unconfirmedState()) return
    let last = lastCredited(this.world)
    const agreed = this.agreedIndex()
    if (this.view.deposits.some((d) => d.index > last && d.index > agreed)) {
      this.creditWaitSince ??= this.ctx.now()
      this.probeForDeposits(this.ctx.now())
    }
    const room = updateRoom() / 2
    for (const d of this.view.deposits) {
      if (d.index <= last) continue
      // Not before every watchdog's view shows the same chain up to it (decision 0025).
      if (d.index > agreed) break
      if (this.systemDirty && this.world.pendingWriteSetBytes() > room) break
      this.world.credit(d.from, d.amount)
      last = d.index
      this.systemDirty = true
    }
    if (this.systemDirty) this.world.setStorageWord(SYSTEM_ADDRESS, SYSTEM_LAST_CREDITED_SLOT, last)
    if (!this.view.deposits.some((d) => d.index > last)) this.creditWaitSince = undefined
  }

  /**
   * A deposit that waited `VIEW_LAG_MS` for a watchdog's view: that watchdog is challenged
   * on-chain with a payload that is no update, so its answer acknowledges nothing. Answering
   * takes a view that reached the challenge, past the deposit, which its next ack reports; a
   * watchdog whose host keeps the chain from it cannot answer and is removed (decision 0025).
   */
  private challengeLaggingViews(now: number): void {
    if (this.view.watchdogMask !== 0 || this.creditWaitSince === undefined || !this.world) return
    if (now - this.creditWaitSince < VIEW_LAG_MS) return
    const last = lastCredited(this.world)
    const waiting = this.view.deposits.find((d) => d.index > last)
    if (!waiting) return
    this.agreedIndex()
    let mask = 0n
    for (const slot of this.view.watchdogSlots()) {
      const k = hexKey(this.view.signers[slot]!)
      if ((this.viewAgreed.get(k) ?? 0n) < waiting.index) mask |= 1n << BigInt(slot)
    }
    if (mask === 0n) return
    this.creditWaitSince = now
    this.ctx.out({
      type: 'challengeWatchdogs',
      instance: this.id,
      memberMask: mask,
      payload: concatBytes(utf8('POSE-VIEW-v1'), uintToWord(waiting.index)),
    })
    this.log_('warn', "A deposit waits for watchdogs' chain views; challenging them on-chain", {
      mask: mask.toString(),
      deposit: Number(waiting.index),
    })
  }

  private unsignedReceipt(r: ExecutedTx, seq: bigint): Omit<Receipt, 'signature' | 'proof'> {
    return unsignedReceipt(r, this.id, seq, this.ctx.identity.signer)
  }

  private makeReceipt(r: ExecutedTx, seq: bigint): Receipt {
    return signReceipt(
      this.unsignedReceipt(r, seq),
      { chainId: this.ctx.chainId, manager: this.ctx.manager },
      this.ctx.identity.signingKey,
    )
  }

  // ------------------------------------------------------------ view calls

  async viewCall(requestId: string, box: Uint8Array): Promise<void> {
    this.assertServing()
    this.assertConfirmed()
    const { plaintext, responseKey } = this.openClientBox(box, BOX_CONTEXT.view)
    await this.serveView(plaintext, { requestId, responseKey })
  }

  /** Runs a signed view call and answers `waiter`: a client's request, or a challenge on-chain. */
  private async serveView(plaintext: Uint8Array, waiter: Waiter): Promise<void> {
    try {
      const v = decodeSignedView(plaintext)
      if (v.instance !== this.id)
        throw new ProtocolError('MALFORMED', `view.instance: expected ${this.id}`)
      const digest = hashViewCall({ chainId: this.ctx.chainId, manager: this.ctx.manager }, v)
      if (!equalBytes(recoverAddress(digest, v.signature), v.from)) {
        throw new ProtocolError('BAD_SIGNATURE', 'view.signature: not signed by view.from')
      }
      if (v.expiry < this.ctx.block().timestamp) {
        throw new ProtocolError('REPLAYED', `view.expiry: ${v.expiry} is in the past`)
      }
      if (equalBytes(v.to, SYSTEM_ADDRESS) && equalBytes(v.data, SYSTEM_NONCE_SELECTOR)) {
        const n = this.nextNonce.get(hex(v.from)) ?? this.world!.getNonce(v.from)
        return this.answer(waiter, {
          kind: 'view',
          status: 'success',
          returnData: uintToWord(n),
          seq: this.seq,
        })
      }
      if (equalBytes(v.to, SYSTEM_ADDRESS) && equalBytes(v.data, SYSTEM_AUTHORISATION_SELECTOR)) {
        return this.answer(waiter, {
          kind: 'view',
          status: 'success',
          returnData: this.authorisation(v.from),
          seq: this.seq,
        })
      }
      const chain = this.runClock(this.ctx.now())
      if (!chain)
        throw new ProtocolError(
          'NOT_READY',
          `instance ${this.id}: no watchdog reported its chain clock yet`,
        )
      const r = await this.world!.view({
        from: v.from,
        to: v.to,
        data: v.data,
        gasLimit: this.ctx.maxGasPerTx,
        block: { number: chain.number, timestamp: chain.timestamp, prevRandao: randomBytes(32) },
      })
      this.answer(waiter, {
        kind: 'view',
        status: r.status,
        returnData: r.returnData,
        seq: this.seq,
      })
    } catch (e) {
      if (e instanceof ProtocolError) return this.reject(waiter, e)
      throw e
    }
  }

  // ------------------------------------------------------------ peer messages

  /** Sends a peer message: an ack under the pair key with its receiver, anything else signed. */
  private send(kind: PeerKind, to: Uint8Array, body: Uint8Array): void {
    const e = { kind, instance: this.id, from: this.ctx.identity.signer, to, body }
    const key = kind === 'ack' ? this.pairKeyWith(this.view.slotOf(to)) : undefined
    const env = key ? tagEnvelope(e, key) : signEnvelope(e, this.ctx.identity.signingKey)
    this.ctx.out({ type: 'send', to, envelope: envelopeToWire(env) })
  }

  async onPeer(e: PeerEnvelope): Promise<void> {
    switch (e.kind) {
      case 'genesis':
        return this.onGenesis(e)
      case 'update':
        return this.onUpdate(e)
      case 'ack':
        return this.onAck(e)
      case 'sync':
        return this.onSync(e)
    }
  }

  private requireFromExecutor(e: PeerEnvelope): void {
    const exec = this.view.executor
    if (!exec) throw new ProtocolError('NOT_READY', `instance ${this.id}: no executor known yet`)
    if (!equalBytes(e.from, exec)) {
      throw new ProtocolError(
        'WRONG_ROLE',
        `peer ${e.kind}: sender is not the executor of instance ${this.id}`,
      )
    }
    if (this.role !== 'watchdog') {
      throw new ProtocolError(
        'WRONG_ROLE',
        `peer ${e.kind}: this enclave is not a watchdog of instance ${this.id}`,
      )
    }
  }

  private openGenesis(e: PeerEnvelope): GenesisSecrets {
    const { box } = decodeGenesisBody(e.body)
    const { plaintext } = boxOpen({
      recipientSecretKey: this.ctx.identity.encryptionSecretKey,
      recipientPublicKey: this.ctx.identity.encryptionKey,
      box,
      context: BOX_CONTEXT.genesis,
      aad: instanceAad(this.id),
    })
    const g = decodeGenesisSecrets(plaintext)
    // A state from a member enclave: the clock it ran at is this member's floor too.
    this.clockFloor = laterClock(this.clockFloor, g.clockNumber, g.clockTimestamp)
    return g
  }

  /** The world a genesis describes, checked against its digest. */
  private async worldOf(g: GenesisSecrets): Promise<World> {
    const world = await this.makeWorld(g.stateKey)
    world.applyWriteSet(decodeWriteSet(g.snapshot))
    world.takeWriteSet()
    if (!equalBytes(world.digest(), g.digest)) {
      throw new ProtocolError('MALFORMED', 'genesis: state does not match its digest')
    }
    return world
  }

  private async onGenesis(e: PeerEnvelope): Promise<void> {
    if (this.role === 'executor') return this.onStateReturned(e)
    this.requireFromExecutor(e)
    const g = this.openGenesis(e)
    const sameExecutor = this.stateFrom !== undefined && equalBytes(this.stateFrom, e.from)
    if (this.world && this.seq >= g.seq && sameExecutor) {
      // Either way the executor learns where this member stands (it may have been restarted
      // from a stale copy of its own state, see onStateReturned).
      this.ack(e.from)
      if (this.seq === g.seq && equalBytes(this.lastHash, g.lastHash)) return
      throw new ProtocolError(
        'OUT_OF_ORDER',
        `genesis at seq ${g.seq}, but this enclave holds seq ${this.seq} from the same executor`,
      )
    }
    if (g.baseSeq > g.seq) {
      throw new ProtocolError('MALFORMED', `genesis: baseSeq ${g.baseSeq} is beyond seq ${g.seq}`)
    }
    const world = await this.worldOf(g)
    this.ahead.clear()
    // Outcomes of updates the handover discards must never be re-issued as receipts. From
    // another executor only its own outcomes (`recent`) are kept: its log agrees with this one up
    // to the seq at which it took over only if both followed the same executor before, and a
    // member that missed a whole handover (or restored an old copy) followed another.
    const kept = sameExecutor ? g.seq : -1n
    if (this.world && !sameExecutor && this.seq > g.baseSeq) {
      this.log_('info', 'Following a new executor; updates after its takeover are replaced', {
        heldSeq: Number(this.seq),
        baseSeq: Number(g.baseSeq),
        seq: Number(g.seq),
      })
    }
    for (const [k, r] of this.replicated) if (r.seq > kept) this.replicated.delete(k)
    this.rememberResults(g.recent)
    if (g.seq === 0n && !equalBytes(genesisUpdateHash(this.id, g.digest), g.lastHash)) {
      throw new ProtocolError('MALFORMED', 'genesis: lastHash does not bind the genesis digest')
    }
    this.contractSecretKey = g.contractSecretKey
    this.contractPublicKey = x25519Public(g.contractSecretKey)
    this.stateKey = g.stateKey
    this.world = world
    this.seq = g.seq
    this.lastHash = g.lastHash
    this.heldDigests.clear()
    this.forgetCredits()
    this.stateFrom = e.from
    // The view forgets the deposits the sender knows every member holds the credit of (a
    // newcomer's view holds every deposit since the instance began, and seals it with each
    // event); those the state credits beyond that wait for `settleDeposits`.
    let settled = lastCredited(world)
    if (g.settled < settled) settled = g.settled
    this.view.pruneDeposits(settled)
    this.seal('snapshot', this.snapshotRecord())
    this.log_('info', 'Genesis state received', { seq: Number(g.seq) })
    this.ack(e.from)
  }

  /**
   * A watchdog hands this executor back the state of the executor's own log, which the pool
   * holds further than this enclave's sealed state did: the host restarted it from a stale
   * copy. The executor adopts it; everything it queued on the stale state is answered
   * UNAVAILABLE (clients resubmit), and every watchdog is brought to the adopted state.
   */
  private async onStateReturned(e: PeerEnvelope): Promise<void> {
    const slot = this.view.slotOf(e.from)
    if (slot < 0 || slot === this.view.executorSlot) {
      throw new ProtocolError('WRONG_ROLE', 'genesis: sender is not a watchdog of this instance')
    }
    const asked =
      this.provisional !== undefined ||
      (this.pulling !== undefined && equalBytes(this.pulling.from, e.from))
    if (!asked) {
      throw new ProtocolError(
        'OUT_OF_ORDER',
        'genesis: this executor asked that member for nothing',
      )
    }
    const g = this.openGenesis(e)
    if (g.seq <= this.seq) {
      throw new ProtocolError('OUT_OF_ORDER', `genesis: seq ${g.seq} is not beyond ${this.seq}`)
    }
    if (!this.contractSecretKey || !equalBytes(g.contractSecretKey, this.contractSecretKey)) {
      throw new ProtocolError('MALFORMED', "genesis: not this instance's contract key")
    }
    const world = await this.worldOf(g)
    const released = this.released
    this.abandonPending(
      new ProtocolError(
        'UNAVAILABLE',
        `instance ${this.id}: the executor resynchronised; resubmit`,
      ),
    )
    this.world = world
    this.stateKey = g.stateKey
    this.seq = g.seq
    this.lastHash = g.lastHash
    this.rememberResults(g.recent)
    if (this.provisional) {
      this.endProvisional(`took the predecessor's log up to seq ${g.seq} from a watchdog`)
      return
    }
    // Updates beyond what was released before are released once every watchdog holds them.
    this.released = released
    this.pulling = undefined
    for (const s of this.view.watchdogSlots()) this.acked.set(hexKey(this.view.signers[s]!), -1n)
    this.seal('snapshot', this.snapshotRecord())
    this.log_('warn', 'Sealed state was behind the pool; recovered it from a watchdog', {
      seq: Number(g.seq),
    })
    const now = this.ctx.now()
    this.genesis = { body: new Uint8Array(), sentAt: now, startedAt: now, activated: true }
    this.sendGenesis(now)
  }

  /** A watchdog returns its state to the executor whose log it follows (see onStateReturned). */
  private returnState(e: PeerEnvelope): void {
    const exec = this.view.executor
    const { fromSeq, nonce, viewAt } = decodeSyncBody(e.body)
    // A probe's nonce is echoed in every later ack to that executor, also by a member still
    // waiting for the state (its first ack, after the state, then counts).
    if (nonce && exec && equalBytes(e.from, exec)) {
      this.probe = { from: e.from, nonce }
      // A probe that names no event asks what this member holds: the executor restarted, was
      // promoted or drew it again, and counts its log up to `fromSeq − 1` as released.
      if (viewAt === undefined) this.forgetCredits(fromSeq - 1n)
    }
    if (
      nonce &&
      viewAt === undefined &&
      exec &&
      equalBytes(e.from, exec) &&
      this.role === 'watchdog' &&
      !this.world
    ) {
      // Drawn but not yet given the state (the executor restarted before it sent it): the
      // answer says this member holds nothing, so that the restarted executor need not
      // challenge it on-chain for a state it never sent (simulator seed 2).
      this.ackNothing(e.from)
      return
    }
    if (!exec || !equalBytes(e.from, exec) || !this.world || !this.stateFrom) {
      throw new ProtocolError('WRONG_ROLE', 'sync: only the executor may ask a watchdog for state')
    }
    if (nonce) {
      // A probe: answered at once with what this watchdog holds now.
      this.ack(e.from, viewAt)
      if (this.seq < fromSeq) return
    } else if (!equalBytes(this.stateFrom, e.from) && this.seq < fromSeq) {
      // A member promoted from a restored copy asks what this watchdog holds of the log it
      // followed before the promotion: nothing beyond its copy, says the ack.
      this.ack(e.from)
      return
    }
    const now = this.ctx.now()
    if (now - this.returnedStateAt < RESEND_MS) return
    this.returnedStateAt = now
    this.sendState(this.view.executorSlot, undefined, fromSeq)
  }

  /**
   * Acks to `to` what this watchdog holds, with its chain view: at event `viewAt` when asked and
   * still known (an executor waiting to credit names its latest event), else its latest.
   */
  private ack(to: Uint8Array, viewAt?: bigint): void {
    const asked = viewAt === undefined ? undefined : this.view.hashAt(viewAt)
    const head = this.ctx.block()
    this.ackedAt = this.ctx.now()
    this.ackedHead = head.number
    const body: AckBody = {
      seq: this.seq,
      updateHash: this.lastHash,
      digest: this.world!.digest(),
      stateFrom: this.stateFrom ?? new Uint8Array(20),
      nonce: this.probe && equalBytes(this.probe.from, to) ? this.probe.nonce : ZERO32,
      viewIndex: asked ? viewAt! : this.view.index,
      viewHash: asked ?? this.view.hash,
      headNumber: head.number,
      headTimestamp: head.timestamp,
    }
    this.send('ack', to, encodeAckBody(body))
  }

  /**
   * Answers a probe from a member that holds no state of this instance: seq 0 and a zero
   * update hash, digest and log owner, which no member holding a state sends (its digest is a
   * hash, its log owner an executor), with its chain view like any ack.
   */
  private ackNothing(to: Uint8Array): void {
    const head = this.ctx.block()
    const body: AckBody = {
      seq: 0n,
      updateHash: ZERO32,
      digest: ZERO32,
      stateFrom: new Uint8Array(20),
      nonce: this.probe && equalBytes(this.probe.from, to) ? this.probe.nonce : ZERO32,
      viewIndex: this.view.index,
      viewHash: this.view.hash,
      headNumber: head.number,
      headTimestamp: head.timestamp,
    }
    this.send('ack', to, encodeAckBody(body))
  }

  /**
   * An idle watchdog acks the executor it follows again once its chain clock moved on and
   * CLOCK_REPORT_MS passed since its last ack: the executor's next transaction then runs at a
   * recent clock, not at the one of the last update's ack (decision 0032).
   */
  private reportClock(now: number): void {
    if (!this.world || !this.stateFrom || !SERVING.has(this.view.phase)) return
    const exec = this.view.signers[this.view.executorSlot]
    if (!exec || !equalBytes(exec, this.stateFrom)) return
    if (this.ctx.block().number <= this.ackedHead || now - this.ackedAt < CLOCK_REPORT_MS) return
    this.ack(exec)
  }

  /**
   * The chain clock a transaction or a view runs at: this enclave's, but no later than the
   * newest clock each current watchdog reported, and never earlier than the last one used,
   * replicated or handed over (the floor). A host that pushes its enclave's clock ahead moves it
   * only as far as every other member's operator does too (decision 0032). A watchdog that has
   * not reported since this executor started (drawn, promoted past) holds the clock at the
   * floor. With no floor yet (a member promoted before any transaction ran) transactions wait
   * for every watchdog's report (undefined) for up to `ackTimeoutMs` from the first one queued
   * (`queued`; a view waits for nothing and starts no wait), then run without the missing ones,
   * as they do with no watchdog in the pool (s = 0, or every slot vacant): one operator's word,
   * which never becomes the floor that states carry to other members. Nothing runs earlier than
   * anything this enclave ran before (`ranAt`).
   */
  private runClock(now: number, queued = false): ChainClock | undefined {
    const floor = this.clockFloor
    let { number, timestamp } = this.ctx.block()
    let missing = false
    const slots = this.view.watchdogSlots()
    for (const slot of slots) {
      let r = this.clockReports.get(hexKey(this.view.signers[slot]!))
      if (!r) {
        if (floor.timestamp === 0n) {
          missing = true
          continue
        }
        r = floor
      }
      if (r.number < number) number = r.number
      if (r.timestamp < timestamp) timestamp = r.timestamp
    }
    if (!missing) this.clockWaitSince = undefined
    else {
      if (this.clockWaitSince === undefined && queued) this.clockWaitSince = now
      if (this.clockWaitSince === undefined || now - this.clockWaitSince < this.ctx.ackTimeoutMs)
        return undefined
    }
    const capped = laterClock(floor, number, timestamp)
    if (!missing && (slots.length > 0 || this.view.watchdogCount === 0)) this.clockFloor = capped
    this.ranAt = laterClock(this.ranAt, capped.number, capped.timestamp)
    return this.ranAt
  }

  /** Keeps the newest chain clock a watchdog's ack reported (`runClock`). */
  private noteClockReport(k: string, a: AckBody): void {
    // An enclave not fed since it started reports no clock (zero), not a bound.
    if (a.headTimestamp === 0n) return
    const r = this.clockReports.get(k) ?? NO_CLOCK
    this.clockReports.set(k, laterClock(r, a.headNumber, a.headTimestamp))
  }

  /** Applies a decrypted update payload: checks the chain and the resulting digest. */
  private applyPlainUpdate(body: UpdateBody, plain: Uint8Array): void {
    if (body.seq !== this.seq + 1n) {
      throw new ProtocolError('OUT_OF_ORDER', `update ${body.seq} does not follow ${this.seq}`)
    }
    if (!equalBytes(body.prevHash, this.lastHash)) {
      throw new ProtocolError(
        'OUT_OF_ORDER',
        `update ${body.seq}: prevHash does not match this enclave's log`,
      )
    }
    const payload = scanUpdatePayload(plain)
    const hash = updateHash({
      instance: this.id,
      seq: body.seq,
      prevHash: body.prevHash,
      payloadHash: keccak256(plain),
    })
    const world = this.world!
    // All or nothing: on a digest other than the executor's, the world stays as it was.
    world.applyCheckedWriteSet(decodeWriteSet(payload.writeSet), body.digest, `update ${body.seq}`)
    // The executor's clock floor after the update: this member's own, if it is promoted.
    this.clockFloor = laterClock(this.clockFloor, payload.blockNumber, payload.timestamp)
    for (const [i, bytes] of payload.resultBytes.entries()) {
      this.replicated.put(hex(payload.txHashes[i]!), { bytes, seq: body.seq })
    }
    this.seq = body.seq
    this.lastHash = hash
    setBounded(this.heldDigests, body.seq, body.digest, HELD_DIGESTS)
  }

  /**
   * After update `seq` from the executor it follows, a watchdog forgets the deposits credited
   * up to update `seq − maxInFlightUpdates`: that executor started update `seq` only once every
   * watchdog held that one (`pump`). Its releases are acknowledged, except at a handover
   * (`creditedAt` starts afresh with each executor and whole state) and after a restart (the
   * restarted executor's probe sets `settleFloor`). So whoever serves next holds the credit. A
   * later update's credit, held by some members only, may yet be replaced by the state of a
   * member without it: forgotten, its deposit would be credited by nobody.
   */
  private settleDeposits(): void {
    if (this.seq <= this.settleFloor) return
    const credited = lastCredited(this.world!)
    setBounded(this.creditedAt, this.seq, credited, LIMITS.maxInFlightUpdates + 1)
    const settled = this.creditedAt.get(this.seq - BigInt(LIMITS.maxInFlightUpdates))
    if (settled !== undefined) this.view.pruneDeposits(settled)
  }

  /** Drops what `settleDeposits` recorded: the executor, or its log, changed. */
  private forgetCredits(floor = 0n): void {
    this.creditedAt.clear()
    this.settleFloor = floor
  }

  private async onUpdate(e: PeerEnvelope): Promise<void> {
    this.requireFromExecutor(e)
    this.acceptUpdate(decodeUpdateBody(e.body), e.from)
  }

  /** A watchdog takes an update from the executor `from`: applies it in order, then acks. */
  private acceptUpdate(body: UpdateBody, from: Uint8Array): void {
    if (!this.world || !this.stateKey)
      throw new ProtocolError('NOT_READY', `instance ${this.id}: no genesis yet`)
    if (body.seq <= this.seq) {
      this.ack(from)
      return
    }
    if (body.seq > this.seq + 1n) {
      if (this.ahead.size < LIMITS.maxInFlightUpdates * 4) this.ahead.set(body.seq, { body, from })
      const now = this.ctx.now()
      if (now - this.lastSyncAt > RESEND_MS / 2) {
        this.lastSyncAt = now
        this.send('sync', from, encodeSyncBody({ fromSeq: this.seq + 1n }))
      }
      return
    }
    let next: UpdateBody | undefined = body
    while (next) {
      const packed = aeadOpen(this.stateKey, next.payload, this.payloadAad(next.seq, next.prevHash))
      if (!this.stateFrom || !equalBytes(this.stateFrom, from)) this.forgetCredits()
      this.applyPlainUpdate(next, unpackUpdatePayload(packed))
      this.stateFrom = from
      this.settleDeposits()
      this.seal('append', this.updateRecord(next, packed))
      this.compactSealedLog()
      this.ahead.delete(next.seq)
      next = this.ahead.get(this.seq + 1n)?.body
    }
    for (const k of this.ahead.keys()) if (k <= this.seq) this.ahead.delete(k)
    this.ack(from)
  }

  private async onAck(e: PeerEnvelope): Promise<void> {
    if (this.role !== 'executor')
      throw new ProtocolError('WRONG_ROLE', `ack: not the executor of instance ${this.id}`)
    const slot = this.view.slotOf(e.from)
    if (slot < 0 || slot === this.view.executorSlot) {
      throw new ProtocolError('WRONG_ROLE', `ack: sender is not a watchdog of instance ${this.id}`)
    }
    const a = decodeAckBody(e.body)
    setBounded(this.ackedFrom, hexKey(e.from), a.stateFrom, 64)
    this.noteViewReport(hexKey(e.from), a.viewIndex, a.viewHash)
    this.noteClockReport(hexKey(e.from), a)
    if (this.provisional) {
      if (!equalBytes(a.nonce, this.provisional.nonce)) return
      // A watchdog of the same predecessor that holds no more of its log than this enclave:
      // everything the pool released is here (each watchdog held all of it).
      if (a.seq <= this.seq && equalBytes(a.stateFrom, this.provisional.predecessor))
        this.endProvisional('a watchdog holds no more of the log')
      // A watchdog that took this enclave's own handover of this very state (the handover's
      // sealed snapshot was lost since): nothing was released beyond it.
      else if (
        a.seq === this.seq &&
        equalBytes(a.stateFrom, this.ctx.identity.signer) &&
        equalBytes(a.updateHash, this.lastHash)
      )
        this.endProvisional('a watchdog holds this handover already')
      return
    }
    if (holdsNothing(a)) {
      // A member that holds no state of this instance (see `ackNothing`) vouches for nothing: a
      // restarted executor stops waiting for it (every member that holds a state must still
      // confirm, and one holding more is pulled from) and sends it the whole state once serving.
      // It stays unacknowledged.
      const k = hexKey(e.from)
      if (this.restartProbe && equalBytes(a.nonce, this.restartProbe.nonce)) {
        this.restartProbe.confirmed.add(k)
        this.endPoolWaitIfConfirmed()
        // Transactions that waited for the pool run now, not at the next tick.
        if (!this.awaitingPool) await this.pump()
      }
      return
    }
    if (a.seq > this.seq) {
      if (this.stateFrom && equalBytes(a.stateFrom, this.stateFrom)) {
        // The member holds more of this executor's own log than this enclave does.
        this.pullState(e.from)
        return
      }
      throw new ProtocolError('OUT_OF_ORDER', `ack for seq ${a.seq} beyond ${this.seq}`)
    }
    const expected = a.seq === this.seq ? this.lastHash : this.log.get(a.seq)?.hash
    if (expected && !equalBytes(expected, a.updateHash)) {
      throw new ProtocolError(
        'MALFORMED',
        `ack for seq ${a.seq}: update hash differs from the executor's log`,
      )
    }
    if (!expected && a.seq > this.released) {
      throw new ProtocolError('OUT_OF_ORDER', `ack for seq ${a.seq}: unknown update`)
    }
    const k = hexKey(e.from)
    const probe = this.redrawn.get(k)
    if (probe) {
      if (!equalBytes(a.nonce, probe)) return
      this.redrawn.delete(k)
    }
    if ((this.acked.get(k) ?? -1n) < a.seq) this.acked.set(k, a.seq)
    if (this.restartProbe && equalBytes(a.nonce, this.restartProbe.nonce))
      this.restartProbe.confirmed.add(k)
    this.endPoolWaitIfConfirmed()
    this.maybeActivate()
    this.release()
    await this.pump()
  }

  private pullState(from: Uint8Array): void {
    const now = this.ctx.now()
    if (this.pulling && now - this.pulling.at < RESEND_MS) return
    if (!this.pulling) {
      this.log_('warn', "A watchdog holds more of this executor's log; fetching it", {
        seq: Number(this.seq),
      })
    }
    this.pulling = { from, at: now }
    this.awaitingPool = true
    this.send('sync', from, encodeSyncBody({ fromSeq: this.seq + 1n }))
  }

  /** Whether every watchdog acknowledged since the restart. */
  private poolConfirmed(): boolean {
    const probe = this.restartProbe
    return this.view.watchdogSlots().every((s) => {
      const k = hexKey(this.view.signers[s]!)
      return probe ? probe.confirmed.has(k) : (this.acked.get(k) ?? -1n) >= 0n
    })
  }

  private async onSync(e: PeerEnvelope): Promise<void> {
    if (this.role === 'watchdog') return this.returnState(e)
    if (this.role !== 'executor')
      throw new ProtocolError('WRONG_ROLE', `sync: not the executor of instance ${this.id}`)
    if (this.view.slotOf(e.from) < 0)
      throw new ProtocolError('WRONG_ROLE', 'sync: sender is not a member')
    const { fromSeq } = decodeSyncBody(e.body)
    const k = hexKey(e.from)
    if (fromSeq <= this.released && !this.log.has(fromSeq) && !this.awaitingPool) {
      // The member is behind what was released (a restart from an older copy): the updates it
      // lacks left the log, so it gets the whole state, at most once per RESEND_MS.
      const slot = this.view.slotOf(e.from)
      const now = this.ctx.now()
      if (slot === this.view.executorSlot || now - (this.fullStateSentAt.get(k) ?? 0) < RESEND_MS)
        return
      this.fullStateSentAt.set(k, now)
      this.sendState(slot)
      return
    }
    const only = new Set([k])
    for (let s = fromSeq; s <= this.seq; s++) {
      const entry = this.log.get(s)
      if (entry) this.broadcastUpdate(entry, only)
    }
  }

  // ------------------------------------------------------------ timers

  async tick(now: number): Promise<void> {
    if (this.role === 'watchdog') return this.reportClock(now)
    if (this.role !== 'executor' || !this.world) return
    if (this.provisional) return this.askPool(now)
    this.probePool(now)
    const g = this.genesis
    const waiting = this.view
      .watchdogSlots()
      .some((slot) => this.needsFullState(this.view.signers[slot]!))
    if (g && waiting && now - g.sentAt >= RESEND_MS) this.sendGenesis(now)
    for (const entry of this.log.values()) {
      if (now - entry.sentAt >= RESEND_MS) this.broadcastUpdate(entry)
    }
    this.replicateForSilentMembers(now)
    if (this.view.phase === Phase.Active || this.view.phase === Phase.ExecutorChallenged) {
      // One challenge at a time: the manager takes one watchdog round.
      if (!this.challengeLateWatchdogs(now) && !this.challengeUnconfirmedWatchdogs(now))
        this.challengeLaggingViews(now)
    }
    this.publishTermination(now)
    this.expireFuture(now)
    await this.pump()
  }

  /**
   * Answers BAD_NONCE to transactions that waited FUTURE_TTL_MS for earlier nonces. Not while
   * a restarted executor waits for its pool: its state may be stale and their nonces next (the
   * wait starts again when it serves, see endPoolWaitIfConfirmed).
   */
  private expireFuture(now: number): void {
    if (this.awaitingPool) return
    for (const [from, m] of this.future) {
      for (const [nonce, p] of m) {
        if (now - p.receivedAt < FUTURE_TTL_MS) continue
        m.delete(nonce)
        this.byHash.delete(p.key)
        const err = new ProtocolError(
          'BAD_NONCE',
          `tx.nonce: ${nonce} waited too long for the nonces before it`,
        )
        for (const w of p.waiters) this.reject(w, err)
      }
      if (m.size === 0) this.future.delete(from)
    }
  }

  status() {
    return {
      instance: this.id,
      role: this.role,
      phase: this.view.phase,
      seq: this.seq,
      eventIndex: this.view.index,
      queued: this.queue.length,
      inFlight: this.inFlight(),
    }
  }

  private log_(
    level: 'debug' | 'info' | 'warn',
    message: string,
    fields: Record<string, string | number | boolean>,
  ): void {
    this.ctx.out({
      type: 'log',
      level,
      message,
      fields: { instance: this.id.toString(), ...fields },
    })
  }
}
