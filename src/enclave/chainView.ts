/**
 * An enclave's view of one instance on the chain, rebuilt from the operator's event feed and
 * checked against the manager's running event hash (SPEC §4). An operator that drops, reorders
 * or forges an event gets an error here, and any signature the enclave later makes names an
 * `(eventIndex, eventHash)` the manager will reject.
 *
 * An event fed again at an index already applied is compared with what was applied: the same
 * event is skipped, a different one is refused (`EventRefused`). One whose running hash differs
 * shows a history other than the one applied (a reorganisation deeper than the operator's
 * confirmations, or a forged feed): the view is then `diverged` and takes no later event, and
 * its enclave stops acting for the instance (its state may hold events the chain does not).
 */

import { z } from 'zod'
import {
  type ChainEvent,
  dec,
  decodeActivated,
  decodeCreated,
  decodeDeposit,
  decodeExecutorChallenged,
  decodeJson,
  decodeMemberRemoved,
  decodePoolDrawn,
  decodeRefilled,
  decodeTerminated,
  decodeWatchdogChallengeFinalized,
  decodeWatchdogResponded,
  decodeWatchdogsChallenged,
  EventKind,
  encodeJson,
  equalBytes,
  hex,
  isKnownEventKind,
  LIMITS,
  nextEventHash,
  Phase,
  ProtocolError,
  setBounded,
  uint,
  unhex,
} from '../protocol/index.ts'

const ZERO32 = new Uint8Array(32)
/** Events whose running hash a view remembers (`ChainView.hashAt`). */
export const RECENT_HASHES = 4096
const ZERO20 = new Uint8Array(20)

/**
 * An event a view refused: it names the instance and the event's index. `halted`: the view has
 * diverged from the feed (`ChainView.diverged`) and takes no later event.
 */
export class EventRefused extends ProtocolError {
  override name = 'EventRefused'
  constructor(
    code: 'OUT_OF_ORDER' | 'STALE_EVENT' | 'MALFORMED',
    readonly instance: bigint,
    readonly index: bigint,
    readonly halted: boolean,
    message: string,
  ) {
    super(code, message)
  }
}

export class ChainView {
  index = 0n
  hash: Uint8Array = ZERO32
  phase: Phase = Phase.None
  creator: Uint8Array = ZERO20
  watchdogCount = 0
  initCommitment: Uint8Array = ZERO32
  signers: Uint8Array[] = []
  encryptionKeys: Uint8Array[] = []
  executorSlot = 0
  contractEncryptionKey: Uint8Array | undefined
  genesisDigest: Uint8Array | undefined
  watchdogMask = 0
  /** Deposits seen on-chain and not yet known to be credited in the world (SPEC §5). */
  deposits: { index: bigint; from: Uint8Array; amount: bigint }[] = []
  /**
   * Deposits up to this index are credited in a state every member holds (the highest index
   * `pruneDeposits` was given): a state that may yet be rolled back never settles a deposit.
   */
  settled = 0n
  /** Join order per slot (as in PoseManager): promotion picks the longest-serving member. */
  joinOrder: number[] = []
  joins = 0
  /** Index of the event that opened (or, after a timeout, renewed) the executor challenge. */
  challengeIndex = 0n
  /**
   * The running hash after event `challengeIndex`: an answer names that event, which the
   * manager keeps for open challenges once its 32-event history moved past it (decision 0024).
   */
  challengeHash: Uint8Array = ZERO32
  /** What the open executor challenge asks (typically a transaction box). */
  challengePayload: Uint8Array = new Uint8Array()
  /** Index of the event that opened the current watchdog challenge. */
  watchdogChallengeIndex = 0n
  /** The running hash after event `watchdogChallengeIndex` (see `challengeHash`). */
  watchdogChallengeHash: Uint8Array = ZERO32
  /** The open watchdog challenge's payload (a signed update, see `ChallengeUpdate`). */
  watchdogChallengePayload: Uint8Array = new Uint8Array()
  /** Slots that answered the open watchdog challenge on-chain. */
  watchdogResponded = 0
  /**
   * The index of the latest deposit or claim (`Withdrawal`): events a user pays coins or an
   * authorisation for, which neither the executor's enclave nor its host's operator key alone
   * can make (see `Instance.pageVoidedSinceChallenge`).
   */
  lastUserEvent = 0n
  /**
   * The index at which the feed offered an event whose running hash differs from the one this
   * view applied there: the feed's history is not the one applied (a reorganisation deeper than
   * the confirmations, or a forged feed). Sealed: the view takes no later event, for good.
   */
  diverged: bigint | undefined

  /**
   * The running hash after each of the latest `RECENT_HASHES` events this view applied (not
   * sealed: a restored view starts with its latest), to compare another member's view with.
   */
  private readonly recent = new Map<bigint, Uint8Array>()

  constructor(readonly instance: bigint) {}

  /** The running hash after event `index`, if this view still knows it. */
  hashAt(index: bigint): Uint8Array | undefined {
    if (index === this.index) return this.hash
    return this.recent.get(index)
  }

  /**
   * Forgets deposits up to `index`: a state every member holds credits them, so whoever
   * serves next holds the credit too (a state only some members hold may be replaced by one
   * without it, and the deposit would then be credited by nobody).
   */
  pruneDeposits(index: bigint): void {
    if (index > this.settled) this.settled = index
    if (this.deposits.length > 0 && this.deposits[0]!.index <= index) {
      this.deposits = this.deposits.filter((d) => d.index > index)
    }
  }

  /**
   * Applies the next event; returns false when it was already applied (a replay by the host).
   * Throws `EventRefused` for an event that is not the next one, does not extend the running
   * hash, or differs from the one applied at its index, and for any event after a divergence.
   */
  apply(e: ChainEvent): boolean {
    if (e.instance !== this.instance) {
      throw new ProtocolError(
        'MALFORMED',
        `event for instance ${e.instance} fed to ${this.instance}`,
      )
    }
    if (e.index <= this.index) return this.replayed(e)
    if (this.diverged !== undefined) {
      throw new EventRefused(
        'STALE_EVENT',
        this.instance,
        e.index,
        true,
        `instance ${this.instance}: event ${e.index} refused: the feed diverged from this view at event ${this.diverged}, and no later event is taken`,
      )
    }
    if (e.index !== this.index + 1n) {
      throw new EventRefused(
        'OUT_OF_ORDER',
        this.instance,
        e.index,
        false,
        `instance ${this.instance}: event ${e.index} arrived before event ${this.index + 1n}`,
      )
    }
    if (!isKnownEventKind(e.kind)) {
      throw new EventRefused(
        'MALFORMED',
        this.instance,
        e.index,
        false,
        `instance ${this.instance}: unknown event kind ${e.kind}`,
      )
    }
    const h = nextEventHash({
      prevHash: this.hash,
      instance: this.instance,
      index: e.index,
      kind: e.kind,
      data: e.data,
    })
    if (!equalBytes(h, e.hash)) {
      throw new EventRefused(
        'STALE_EVENT',
        this.instance,
        e.index,
        false,
        `instance ${this.instance}: event ${e.index} does not extend the running hash`,
      )
    }
    this.applyKind(e.kind, e.data, e.index)
    this.index = e.index
    this.hash = h
    setBounded(this.recent, e.index, h, RECENT_HASHES)
    if (this.challengeIndex === e.index) this.challengeHash = h
    if (this.watchdogChallengeIndex === e.index) this.watchdogChallengeHash = h
    return true
  }

  /**
   * An event at an index already applied. The same event (its running hash, and its contents
   * when the hash before it is known) is skipped. A different running hash is a history other
   * than the one applied: refused, and the view diverges. Where this view no longer knows the
   * running hash at that index (over `RECENT_HASHES` events back, or before a restart) the
   * event is skipped unchecked: the running hash at the latest index, which a view always
   * knows, commits to it, so a feed of another history still shows there.
   */
  private replayed(e: ChainEvent): false {
    if (e.index === 0n) {
      throw new EventRefused(
        'MALFORMED',
        this.instance,
        0n,
        this.diverged !== undefined,
        `instance ${this.instance}: no event has index 0`,
      )
    }
    const applied = this.hashAt(e.index)
    if (!applied) return false
    if (!equalBytes(applied, e.hash)) {
      if (this.diverged === undefined || e.index < this.diverged) this.diverged = e.index
      throw new EventRefused(
        'STALE_EVENT',
        this.instance,
        e.index,
        true,
        `instance ${this.instance}: event ${e.index} differs from the event applied at that index (a reorganisation deeper than the confirmations, or a forged feed); no later event is taken`,
      )
    }
    const prev = e.index === 1n ? ZERO32 : this.hashAt(e.index - 1n)
    if (
      prev &&
      !equalBytes(
        nextEventHash({
          prevHash: prev,
          instance: this.instance,
          index: e.index,
          kind: e.kind,
          data: e.data,
        }),
        applied,
      )
    ) {
      // The applied running hash with other contents: the feed altered the event, the chain's
      // history is still the one applied.
      throw new EventRefused(
        'STALE_EVENT',
        this.instance,
        e.index,
        this.diverged !== undefined,
        `instance ${this.instance}: event ${e.index} differs from the event applied at that index (its contents do not match its running hash)`,
      )
    }
    return false
  }

  private applyKind(kind: number, data: Uint8Array, index: bigint): void {
    switch (kind) {
      case EventKind.Created: {
        const c = decodeCreated(data)
        this.creator = c.creator
        this.watchdogCount = c.watchdogCount
        this.initCommitment = c.initCommitment
        this.phase = Phase.Drawing
        return
      }
      case EventKind.PoolDrawn: {
        const p = decodePoolDrawn(data)
        this.signers = p.signers
        this.encryptionKeys = p.encryptionKeys
        this.executorSlot = 0
        this.joinOrder = p.signers.map((_, i) => i + 1)
        this.joins = p.signers.length
        this.phase = Phase.Creating
        return
      }
      case EventKind.Activated: {
        const a = decodeActivated(data)
        this.contractEncryptionKey = a.contractEncryptionKey
        this.genesisDigest = a.genesisDigest
        this.phase = Phase.Active
        return
      }
      case EventKind.MemberRemoved: {
        // Mirrors PoseManager._removeMember: the longest-serving live member takes over.
        const m = decodeMemberRemoved(data)
        if (m.slot >= this.signers.length)
          throw new ProtocolError('MALFORMED', 'MemberRemoved: slot outside the pool')
        this.signers[m.slot] = ZERO20
        this.endWatchdogChallengeOf(m.slot)
        if (m.slot !== this.executorSlot) return
        if (this.phase === Phase.Creating) {
          // An executor that leaves before activation freezes the instance; the manager
          // releases the other members with events of their own.
          this.phase = Phase.Frozen
          this.watchdogMask = 0
          return
        }
        let next = -1
        this.signers.forEach((s, i) => {
          if (!equalBytes(s, ZERO20) && (next < 0 || this.joinOrder[i]! < this.joinOrder[next]!))
            next = i
        })
        if (next >= 0) {
          this.executorSlot = next
          this.endWatchdogChallengeOf(next)
          // The promoted member inherits an open challenge from its promotion on (decision 0022).
          if (this.phase === Phase.ExecutorChallenged) this.challengeIndex = index
        } else {
          this.phase = Phase.Frozen
          this.watchdogMask = 0
        }
        return
      }
      case EventKind.Deposit: {
        const d = decodeDeposit(data)
        this.deposits.push({ index, from: d.from, amount: d.amount })
        this.lastUserEvent = index
        return
      }
      case EventKind.Withdrawal:
        this.lastUserEvent = index
        return
      case EventKind.ExecutorChallenged:
        this.challengePayload = decodeExecutorChallenged(data).payload
        this.phase = Phase.ExecutorChallenged
        this.challengeIndex = index
        return
      case EventKind.ExecutorTimedOut:
        // The challenge continues against the promoted executor from this event on.
        if (this.phase === Phase.ExecutorChallenged) this.challengeIndex = index
        return
      case EventKind.ExecutorResponded:
        this.phase = this.watchdogMask !== 0 ? Phase.WatchdogsChallenged : Phase.Active
        return
      case EventKind.WatchdogsChallenged: {
        const w = decodeWatchdogsChallenged(data)
        this.watchdogMask = w.mask
        this.watchdogChallengeIndex = index
        this.watchdogChallengePayload = w.payload
        this.watchdogResponded = 0
        if (this.phase === Phase.Active) this.phase = Phase.WatchdogsChallenged
        return
      }
      case EventKind.WatchdogResponded: {
        this.watchdogResponded |= 1 << decodeWatchdogResponded(data).slot
        return
      }
      case EventKind.WatchdogChallengeFinalized:
        decodeWatchdogChallengeFinalized(data)
        this.endWatchdogRound()
        return
      case EventKind.Refilled: {
        const r = decodeRefilled(data)
        // Every slot is checked before any is written: a refused event changes nothing (a host
        // that got one slot written, then fed the genuine next event, had the state boxed to a
        // key of its own while the view's hash stayed the manager's).
        if (r.slots.some((slot) => slot >= this.signers.length))
          throw new ProtocolError('MALFORMED', 'Refilled: slot outside the pool')
        r.slots.forEach((slot, i) => {
          this.signers[slot] = r.signers[i]!
          this.encryptionKeys[slot] = r.encryptionKeys[i]!
          this.joinOrder[slot] = ++this.joins
        })
        return
      }
      case EventKind.Terminated:
        // Mirrors PoseManager.terminate: the pool is released, the final balances are on-chain.
        decodeTerminated(data)
        this.signers = this.signers.map(() => ZERO20)
        this.watchdogMask = 0
        this.phase = Phase.Terminated
        return
      default:
        // Kinds handled by later protocol stages still extend the running hash.
        return
    }
  }

  /** Mirrors PoseManager._endWatchdogChallengeOf: a round left with nobody in it ends. */
  private endWatchdogChallengeOf(slot: number): void {
    const bit = 1 << slot
    if ((this.watchdogMask & bit) === 0) return
    this.watchdogMask &= ~bit
    if (this.watchdogMask === 0) this.endWatchdogRound()
  }

  /** The watchdog round is over: finalised, or left with nobody in it. */
  private endWatchdogRound(): void {
    this.watchdogMask = 0
    this.watchdogResponded = 0
    this.watchdogChallengePayload = new Uint8Array()
    if (this.phase === Phase.WatchdogsChallenged) this.phase = Phase.Active
  }

  slotOf(signer: Uint8Array): number {
    return this.signers.findIndex((s) => equalBytes(s, signer))
  }

  get executor(): Uint8Array | undefined {
    const s = this.signers[this.executorSlot]
    return s && !equalBytes(s, ZERO20) ? s : undefined
  }

  /** Live watchdog slots (every live member except the executor). */
  watchdogSlots(): number[] {
    const out: number[] = []
    this.signers.forEach((s, i) => {
      if (i !== this.executorSlot && !equalBytes(s, ZERO20)) out.push(i)
    })
    return out
  }

  toJSON(): unknown {
    return {
      instance: dec(this.instance),
      index: dec(this.index),
      hash: hex(this.hash),
      phase: this.phase,
      creator: hex(this.creator),
      watchdogCount: this.watchdogCount,
      initCommitment: hex(this.initCommitment),
      signers: this.signers.map(hex),
      encryptionKeys: this.encryptionKeys.map(hex),
      executorSlot: this.executorSlot,
      contractEncryptionKey: this.contractEncryptionKey ? hex(this.contractEncryptionKey) : null,
      genesisDigest: this.genesisDigest ? hex(this.genesisDigest) : null,
      watchdogMask: this.watchdogMask,
      challengeIndex: dec(this.challengeIndex),
      challengeHash: hex(this.challengeHash),
      deposits: this.deposits.map((d) => ({
        index: dec(d.index),
        from: hex(d.from),
        amount: dec(d.amount),
      })),
      challengePayload: hex(this.challengePayload),
      joinOrder: this.joinOrder,
      watchdogChallengeIndex: dec(this.watchdogChallengeIndex),
      watchdogChallengeHash: hex(this.watchdogChallengeHash),
      watchdogChallengePayload: hex(this.watchdogChallengePayload),
      watchdogResponded: this.watchdogResponded,
      joins: this.joins,
      settled: dec(this.settled),
      // Only once diverged: the sealed view of every other instance is as before.
      ...(this.diverged !== undefined ? { diverged: dec(this.diverged) } : {}),
      ...(this.lastUserEvent !== 0n ? { lastUserEvent: dec(this.lastUserEvent) } : {}),
    }
  }

  static fromJSON(value: unknown): ChainView {
    const w = decodeJson(encodeJson(value), viewSchema, 'sealed view', MAX_VIEW_JSON_BYTES)
    const v = new ChainView(uint(w.instance, 'view.instance'))
    v.index = uint(w.index, 'view.index', 64)
    v.hash = unhex(w.hash, 'view.hash', 32)
    v.phase = w.phase as Phase
    v.creator = unhex(w.creator, 'view.creator', 20)
    v.watchdogCount = w.watchdogCount
    v.initCommitment = unhex(w.initCommitment, 'view.initCommitment', 32)
    v.signers = w.signers.map((s) => unhex(s, 'view.signers', 20))
    v.encryptionKeys = w.encryptionKeys.map((s) => unhex(s, 'view.encryptionKeys', 32))
    v.executorSlot = w.executorSlot
    if (w.contractEncryptionKey)
      v.contractEncryptionKey = unhex(w.contractEncryptionKey, 'view.cek', 32)
    if (w.genesisDigest) v.genesisDigest = unhex(w.genesisDigest, 'view.genesisDigest', 32)
    v.watchdogMask = w.watchdogMask
    v.challengeIndex = uint(w.challengeIndex, 'view.challengeIndex', 64)
    if (w.challengeHash) v.challengeHash = unhex(w.challengeHash, 'view.challengeHash', 32)
    v.deposits = w.deposits.map((d) => ({
      index: uint(d.index, 'view.deposits.index', 64),
      from: unhex(d.from, 'view.deposits.from', 20),
      amount: uint(d.amount, 'view.deposits.amount'),
    }))
    v.challengePayload = unhex(w.challengePayload, 'view.challengePayload')
    v.joinOrder = w.joinOrder
    v.watchdogChallengeIndex = uint(w.watchdogChallengeIndex, 'view.watchdogChallengeIndex', 64)
    if (w.watchdogChallengeHash)
      v.watchdogChallengeHash = unhex(w.watchdogChallengeHash, 'view.watchdogChallengeHash', 32)
    v.watchdogChallengePayload = unhex(w.watchdogChallengePayload ?? '0x', 'view.wcPayload')
    v.watchdogResponded = w.watchdogResponded ?? 0
    v.joins = w.joins
    v.settled = uint(w.settled ?? '0', 'view.settled', 64)
    if (w.diverged !== undefined) v.diverged = uint(w.diverged, 'view.diverged', 64)
    if (w.lastUserEvent !== undefined)
      v.lastUserEvent = uint(w.lastUserEvent, 'view.lastUserEvent', 64)
    return v
  }
}

/** A challenge payload the manager accepts, as `0x`-prefixed hex. */
const PAYLOAD_HEX_CHARS = 2 + 2 * LIMITS.maxChallengePayloadBytes
/**
 * Largest sealed view restored: room for both challenge payloads and the schema's 100,000
 * deposits not yet credited (≈ 110 bytes each).
 */
const MAX_VIEW_JSON_BYTES = 16 * 1024 * 1024

const viewSchema = z.strictObject({
  instance: z.string(),
  index: z.string(),
  hash: z.string(),
  phase: z.number().int().min(0).max(7),
  creator: z.string(),
  watchdogCount: z.number().int().min(0).max(255),
  initCommitment: z.string(),
  signers: z.array(z.string()).max(16),
  encryptionKeys: z.array(z.string()).max(16),
  executorSlot: z.number().int().min(0).max(15),
  contractEncryptionKey: z.string().nullable(),
  genesisDigest: z.string().nullable(),
  watchdogMask: z.number().int().min(0).max(0xffff),
  challengeIndex: z.string(),
  challengeHash: z.string().optional(),
  deposits: z
    .array(z.strictObject({ index: z.string(), from: z.string(), amount: z.string() }))
    .max(100_000),
  challengePayload: z.string().max(PAYLOAD_HEX_CHARS),
  watchdogChallengeIndex: z.string(),
  watchdogChallengeHash: z.string().optional(),
  watchdogChallengePayload: z.string().max(PAYLOAD_HEX_CHARS).optional(),
  watchdogResponded: z.number().int().min(0).max(0xffff).optional(),
  joinOrder: z.array(z.number().int().min(0).max(0xffff)).max(16),
  joins: z.number().int().min(0).max(0xffff),
  settled: z.string().optional(),
  diverged: z.string().optional(),
  lastUserEvent: z.string().optional(),
})
