/**
 * The enclave: one object behind the ecall interface (SPEC §2, §3). It owns the keys, the chain
 * view of every instance and the instances this enclave is a member of. Every request is
 * validated here; nothing the host says is trusted beyond what the running hash and enclave
 * signatures prove.
 */
import {
  attestationReportHash,
  BROADCAST,
  type ChainEvent,
  type EcallName,
  type EcallResults,
  type EnclaveOutput,
  type ErrorCode,
  EventKind,
  ecallSchemas,
  encodeFeedRefusals,
  envelopeFromWire,
  equalBytes,
  type FeedRefusal,
  hex,
  isTaggedEnvelope,
  LIMITS,
  type PairParty,
  ProtocolError,
  pairKey,
  setBounded,
  TAGGED_PEER_KINDS,
  toProtocolError,
  validate,
  verifyEnvelope,
} from '../protocol/index.ts'
import { ChainView, EventRefused } from './chainView.ts'
import {
  createSealer,
  generateIdentity,
  type Identity,
  sealIdentity,
  unsealIdentity,
} from './identity.ts'
import { type EnclaveContext, Instance } from './instance.ts'

/** Pair keys remembered (decision 0020): one per peer enclave of any instance this one serves. */
const MAX_PAIR_KEYS = 1024

/** `EnclaveContext.pairKey`: this enclave's pair key with a peer, derived once per peer. */
function pairKeys(identity: Identity): (peer: PairParty) => Uint8Array {
  const keys = new Map<string, Uint8Array>()
  const me = {
    secretKey: identity.encryptionSecretKey,
    encryptionKey: identity.encryptionKey,
    signer: identity.signer,
  }
  return (peer) => {
    const id = `${hex(peer.signer)}${hex(peer.encryptionKey)}`
    const known = keys.get(id)
    if (known) return known
    const key = pairKey(me, peer)
    setBounded(keys, id, key, MAX_PAIR_KEYS)
    return key
  }
}

/**
 * The `chain` ecall's error when it refused the events of some instances, having applied those
 * of every other instance in the batch. Its `details` name each refused instance, one a line,
 * as `src/protocol/feedRefusals.ts` writes them; the host's watcher reads them.
 */
export class ChainFeedRefused extends ProtocolError {
  override name = 'ChainFeedRefused'
  /** `code`: the first refusal's. */
  constructor(
    readonly refused: FeedRefusal[],
    code: ErrorCode,
  ) {
    const first = refused[0]!
    const more = refused.length > 1 ? ` (and ${refused.length - 1} more instances)` : ''
    super(
      code,
      `chain: events refused, those of every other instance applied: ${first.reason.slice(0, 300)}${more}`,
      { details: encodeFeedRefusals(refused) },
    )
  }
}

const DEFAULT_MAX_GAS_PER_TX = 30_000_000n
/** How long the executor waits for a watchdog's ack before challenging it on-chain. */
const DEFAULT_ACK_TIMEOUT_MS = 5_000

export class Enclave {
  private identity: Identity | undefined
  private blockNumber = 0n
  /** Whether the host has fed chain events since this process started. */
  private fed = false
  private timestamp = 0n
  private views = new Map<bigint, ChainView>()
  private instances = new Map<bigint, Instance>()
  private outputs: EnclaveOutput[] = []
  private ctx: EnclaveContext | undefined
  /** Instances holding transactions accepted by `tx` ecalls whose batch has not run yet. */
  private deferred = new Set<Instance>()

  constructor(private readonly now: () => number = Date.now) {}

  /**
   * Runs one ecall; returns its result and the outputs it produced.
   *
   * `more`: further ecalls are queued behind this one. Consecutive `tx` ecalls then run as one
   * update (group commit): each is opened, checked and queued at once, and the queue executes
   * when the run of `tx` ecalls ends: at the last ecall queued, before any other kind of ecall
   * (which thus sees the same state as if each transaction had run on arrival), or once
   * `LIMITS.groupCommitTxs` transactions wait. An update's signature, seal and receipt
   * signature are paid per run of transactions, not per transaction; a lone transaction still
   * goes at once.
   */
  async call(
    method: string,
    params: unknown,
    more = false,
  ): Promise<{ result: unknown; outputs: EnclaveOutput[] }> {
    this.outputs = []
    try {
      const result = await this.run(method, params, more)
      return { result, outputs: this.outputs }
    } catch (e) {
      ;(e as { outputs?: EnclaveOutput[] }).outputs = this.outputs
      throw e
    }
  }

  private async run(method: string, params: unknown, more: boolean): Promise<unknown> {
    let result: unknown
    try {
      if (!Object.hasOwn(ecallSchemas, method)) {
        throw new ProtocolError(
          'MALFORMED',
          `ecall: unknown method ${JSON.stringify(String(method).slice(0, 40))}`,
        )
      }
      const name = method as EcallName
      if (name !== 'tx') await this.runDeferred()
      const p = validate(params, ecallSchemas[name] as never, `ecall ${name}`) as never
      if (name !== 'init' && !this.identity)
        throw new ProtocolError('NOT_READY', 'ecall: enclave not initialised')
      result = await this.dispatch(name, p, more)
    } finally {
      // A refused `tx` ecall ends the run as well when nothing is queued behind it.
      if (!more) await this.runDeferred()
    }
    return result
  }

  /** Executes the transactions that `tx` ecalls queued without running (see `call`). */
  private async runDeferred(): Promise<void> {
    for (const inst of this.deferred) {
      this.deferred.delete(inst)
      await inst.pump()
    }
  }

  private async dispatch(
    name: EcallName,
    p: never,
    more: boolean,
  ): Promise<EcallResults[EcallName]> {
    switch (name) {
      case 'init':
        return this.init(p)
      case 'restore':
        return this.restore(p)
      case 'chain':
        return this.chain(p)
      case 'deploy':
        return this.member(p).deploy((p as { box: Uint8Array }).box)
      case 'tx': {
        const q = p as { requestId: string; box: Uint8Array }
        const inst = this.member(p)
        inst.acceptSealedTx(q.requestId, q.box)
        if (more && inst.queuedTxs < LIMITS.groupCommitTxs) this.deferred.add(inst)
        else {
          this.deferred.delete(inst)
          await inst.pump()
        }
        return {}
      }
      case 'view': {
        const q = p as { requestId: string; box: Uint8Array }
        await this.member(p).viewCall(q.requestId, q.box)
        return {}
      }
      case 'peer':
        return this.peer(p)
      case 'tick': {
        for (const inst of this.instances.values()) {
          if (inst.view.diverged !== undefined) continue
          // Challenges are answered when their event arrives. A member restarted after it
          // sealed that event, but before its answer reached the chain, finds the event in its
          // restored view and is fed nothing new: it answers here, once the chain feed has
          // resumed (simulator seed 197). Each answer goes out once per challenge.
          if (this.fed) {
            await inst.answerChallenge()
            inst.answerWatchdogChallenge()
          }
          await inst.tick((p as { now: number }).now)
        }
        return {}
      }
      case 'digest': {
        const inst = this.member(p, false)
        return {
          role: inst.role,
          seq: inst.seq,
          digest: inst.world?.digest() ?? new Uint8Array(32),
        }
      }
      case 'status':
        return {
          signer: this.identity!.signer,
          instances: [...this.instances.values()].map((i) => i.status()),
        }
    }
  }

  /**
   * The instance `p` names. `acting` (all but reading its digest): refused once its view
   * diverged from the chain feed, whose state may hold events the chain no longer has.
   */
  private member(p: { instance: bigint }, acting = true): Instance {
    const inst = this.instances.get(p.instance)
    if (!inst)
      throw new ProtocolError(
        'UNKNOWN_INSTANCE',
        `instance ${p.instance}: this enclave is not a member`,
      )
    if (acting) this.assertFollowing(inst)
    return inst
  }

  /** Refuses to act for an instance whose chain view diverged from the feed (`ChainView.diverged`). */
  private assertFollowing(inst: Instance): void {
    const at = inst.view.diverged
    if (at === undefined) return
    throw new ProtocolError(
      'STALE_EVENT',
      `instance ${inst.id}: the chain feed diverged from this enclave's view at event ${at}; it no longer acts for the instance`,
    )
  }

  private init(p: {
    platformSecret: Uint8Array
    measurement: Uint8Array
    chainId: bigint
    manager: Uint8Array
    operator: Uint8Array
    sealedIdentity?: Uint8Array | undefined
  }): EcallResults['init'] {
    if (this.identity) throw new ProtocolError('WRONG_PHASE', 'init: enclave already initialised')
    const sealer = createSealer(p.platformSecret, p.measurement)
    const identity = p.sealedIdentity
      ? unsealIdentity(sealer, p.sealedIdentity)
      : generateIdentity()
    this.identity = identity
    this.ctx = {
      identity,
      sealer,
      chainId: p.chainId,
      manager: p.manager,
      maxGasPerTx: DEFAULT_MAX_GAS_PER_TX,
      ackTimeoutMs: DEFAULT_ACK_TIMEOUT_MS,
      out: (o) => this.outputs.push(o),
      block: () => ({ number: this.blockNumber, timestamp: this.timestamp }),
      now: this.now,
      pairKey: pairKeys(identity),
    }
    return {
      signer: identity.signer,
      encryptionKey: identity.encryptionKey,
      sealedIdentity: sealIdentity(sealer, identity),
      reportHash: attestationReportHash({
        chainId: p.chainId,
        manager: p.manager,
        measurement: p.measurement,
        signer: identity.signer,
        encryptionKey: identity.encryptionKey,
        operator: p.operator,
      }),
      insecure: true,
    }
  }

  private async restore(p: {
    instance: bigint
    blobs: Uint8Array[]
  }): Promise<EcallResults['restore']> {
    if (this.instances.has(p.instance))
      throw new ProtocolError('WRONG_PHASE', `restore: instance ${p.instance} already loaded`)
    const inst = await Instance.restore(this.ctx!, p.instance, p.blobs)
    this.instances.set(p.instance, inst)
    this.views.set(p.instance, inst.view)
    return { seq: inst.seq, records: inst.restoredRecords }
  }

  /**
   * Applies a batch of chain events, each instance's in their order. An instance whose event is
   * refused (not the next one, not extending its running hash, different from the event applied
   * at its index) takes none of its later events in the batch; every other instance takes its
   * own, and acts on them. The refusals then fail the ecall as one `ChainFeedRefused` naming
   * each refused instance, so the host reports them and reads the range again if it can.
   */
  private async chain(p: {
    blockNumber: bigint
    timestamp: bigint
    events: ChainEvent[]
  }): Promise<EcallResults['chain']> {
    this.fed = true
    if (p.blockNumber > this.blockNumber) this.blockNumber = p.blockNumber
    if (p.timestamp > this.timestamp) this.timestamp = p.timestamp
    const byInstance = new Map<bigint, ChainEvent[]>()
    for (const e of p.events) {
      const list = byInstance.get(e.instance)
      if (list) list.push(e)
      else byInstance.set(e.instance, [e])
    }
    const touched = new Set<Instance>()
    const refused: FeedRefusal[] = []
    let firstCode: ErrorCode | undefined
    for (const [id, events] of byInstance) {
      const divergedBefore = this.views.get(id)?.diverged
      for (const e of events) {
        let applied: boolean
        try {
          applied = this.applyEvent(e)
        } catch (thrown) {
          // Anything else an event's contents make its view throw refuses that instance alone.
          const err = toProtocolError(thrown)
          const halted = this.views.get(id)?.diverged !== undefined
          firstCode ??= err.code
          refused.push({
            instance: id,
            index: e.index,
            code: err.code,
            halted,
            reason: err.shortMessage,
          })
          // A divergence is sealed with the view: a restarted enclave does not act for it either.
          if (halted && divergedBefore === undefined) this.instances.get(id)?.sealView()
          break
        }
        if (!applied) continue
        let inst = this.instances.get(id)
        const joins = e.kind === EventKind.PoolDrawn || e.kind === EventKind.Refilled
        const view = this.views.get(id)!
        if (!inst && joins && view.slotOf(this.identity!.signer) >= 0) {
          inst = new Instance(view, this.ctx!)
          this.instances.set(id, inst)
        }
        if (inst) {
          inst.updateRole()
          inst.sealView()
          touched.add(inst)
        }
      }
    }
    // After the whole batch: the view is at its latest index, which challenge answers must name.
    for (const inst of touched) {
      // Diverged later in the batch: its state may hold events the chain does not.
      if (inst.view.diverged !== undefined) continue
      inst.syncMembers()
      inst.reportView()
      inst.creditDeposits()
      await inst.answerChallenge()
      inst.answerWatchdogChallenge()
      inst.countWatchdogResponses()
      await inst.pump()
    }
    if (firstCode) throw new ChainFeedRefused(refused, firstCode)
    return {}
  }

  /** Applies one event to its instance's view (made at its first event); false for a replay. */
  private applyEvent(e: ChainEvent): boolean {
    let view = this.views.get(e.instance)
    if (!view) {
      if (e.index !== 1n) {
        throw new EventRefused(
          'OUT_OF_ORDER',
          e.instance,
          e.index,
          false,
          `instance ${e.instance}: first event fed is ${e.index}, expected 1`,
        )
      }
      view = new ChainView(e.instance)
      this.views.set(e.instance, view)
    }
    return view.apply(e)
  }

  private async peer(p: { envelope: unknown }): Promise<EcallResults['peer']> {
    const env = envelopeFromWire(p.envelope)
    if (env.body.length > LIMITS.maxPeerMessageBytes)
      throw new ProtocolError('OVERSIZED', 'peer: body too large')
    // An update goes to every member under one signature (`to` = BROADCAST); anything else
    // names its receiver.
    const broadcast = env.kind === 'update' && equalBytes(env.to, BROADCAST)
    if (!broadcast && !equalBytes(env.to, this.identity!.signer)) {
      throw new ProtocolError('MALFORMED', 'peer: message is addressed to another enclave')
    }
    // A tagged update or ack is checked by its instance, which knows the sender's key
    // (decision 0020); anything else carries the sender's signature.
    const tagged = isTaggedEnvelope(env)
    if (!tagged) verifyEnvelope(env)
    else if (broadcast || !TAGGED_PEER_KINDS.includes(env.kind))
      throw new ProtocolError('MALFORMED', `peer ${env.kind}: must be signed, not tagged`)
    const inst = this.instances.get(env.instance)
    if (!inst)
      throw new ProtocolError(
        'UNKNOWN_INSTANCE',
        `peer ${env.kind}: not a member of instance ${env.instance}`,
      )
    this.assertFollowing(inst)
    if (tagged) inst.verifyTag(env)
    await inst.onPeer(env)
    return {}
  }
}
