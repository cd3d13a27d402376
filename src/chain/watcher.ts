/**
 * Follows the manager's events by polling `eth_getLogs` (works against any JSON-RPC endpoint)
 * and hands each block range to a callback in order. A failing callback stops the cursor, so
 * the same range is offered again on the next poll: nothing is skipped.
 *
 * Except when the enclave refused the events of some instances only, having applied those of
 * every other (its `chain` ecall's error lists them, `feedRefusals`): one instance must not stop
 * the feed of all, nor move the cursor back for all. A refused instance is read again by itself
 * (`eth_getLogs` on its id's topic, from the block of its last accepted event up to the cursor,
 * in ranges, a bounded number a poll) and its events are kept out of the ranges' batches
 * meanwhile; the cursor goes on for the others. An event refused as out of order shows an event
 * missing before it (a log the endpoint left out, as a lagging backend does): the instance is
 * read again for as long as that lasts, after a pause of `refusalBackoffMs` doubling up to
 * `refusalBackoffMaxMs`, and never withheld (its members must see its challenges). An event that
 * does not extend the running hash or does not decode may be a garbled answer: it is read again
 * `refusalRetries` times, then the instance's events are withheld for `withholdMs` and read
 * again; an instance whose view diverged (`halted`) is withheld for good. Each batch that
 * withholds events is reported, and the readings again (the first ones, then every so many).
 *
 * Only blocks at least `confirmations` deep are offered: an event the enclave has applied (a
 * deposit credited, a member removed) cannot be taken back, so it must not be in a block a
 * reorganisation can still replace. The watcher remembers the hashes of the blocks it offered
 * and reports a reorganisation that reached below the confirmation depth; it then reads the
 * replaced blocks again, so that events the new blocks carry are offered (the enclave skips
 * those it holds, and its running-hash check refuses any that differ from what it applied).
 */
import {
  type Address,
  type Chain,
  decodeEventLog,
  getAbiItem,
  hexToBytes,
  type PublicClient,
  type Transport,
} from 'viem'
import {
  type ChainEvent,
  decodeFeedRefusals,
  type FeedRefusal,
  ProtocolError,
} from '../protocol/index.ts'
import { poseManagerAbi } from './abi.generated.ts'
import { HeadSubscription } from './heads.ts'

/**
 * An operator registered (`enclaveSigner`), changed its endpoint, or withdrew its stake and is
 * gone (`left`: registered no more, member of no pool).
 */
export type OperatorEvent =
  | { operator: Address; enclaveSigner?: Address; endpoint: string; left?: undefined }
  | { operator: Address; left: true }

export type ChainBatch = {
  blockNumber: bigint
  timestamp: bigint
  instanceEvents: ChainEvent[]
  operatorEvents: OperatorEvent[]
}

export type WatcherOptions = {
  client: PublicClient<Transport, Chain>
  manager: Address
  fromBlock?: bigint
  pollIntervalMs?: number
  maxRange?: bigint
  /** Blocks a block must have on top of it before its events are offered (default 0). */
  confirmations?: bigint
  /**
   * A `ws://` or `wss://` endpoint of the same chain whose `newHeads` subscription says when to
   * poll (src/chain/heads.ts). While it is live the watcher polls on each head, and otherwise
   * every `subscribedPollIntervalMs` as a safety net; while it is not, every `pollIntervalMs`.
   */
  headsUrl?: string
  /** Polling interval while the head subscription is live (default 2,000 ms). */
  subscribedPollIntervalMs?: number
  /** The head subscription became live or stopped being live (with the reason). */
  onHeads?: (live: boolean, reason?: string) => void
  onBatch: (b: ChainBatch) => Promise<void>
  onError?: (e: unknown) => void
  /**
   * A block the watcher offered is no longer on the chain: `depth` blocks from the fork are read
   * again (at least that many were replaced when no remembered block survived).
   */
  onReorg?: (r: { depth: number; block: bigint }) => void
  /**
   * Times an instance is read again after the enclave refused its event as not extending the
   * running hash or malformed (`STALE_EVENT`, `MALFORMED`, its view not diverged), before its
   * events are withheld for `withholdMs` (default 1). One refused as out of order is read again
   * for as long as it is refused, and never withheld.
   */
  refusalRetries?: number
  /** Pause before the first reading again of a refused instance; doubled for each further one (default 1 s). */
  refusalBackoffMs?: number
  /** The longest of those pauses (default 5 s). */
  refusalBackoffMaxMs?: number
  /**
   * How long a refused instance's events are withheld before it is read again (default 30 s),
   * when reading it again did not cure the refusal; one whose view diverged, for good.
   */
  withholdMs?: number
  /**
   * The enclave refused events of an instance (see `feedRefusals`), or events of an instance
   * were withheld. Without it, each is passed to `onError` as a ProtocolError.
   */
  onRefused?: (r: RefusalReport) => void
  /** The clock for those pauses, in ms (default `Date.now`). */
  now?: () => number
}

/**
 * What the watcher did about a refusal: the instance's events are read again from `fromBlock`
 * (its `attempt`th reading again since it last took an event at or past the refused one; the
 * first few are reported, then every `REPORT_EVERY`th), or they are withheld (`withheldEvents`
 * of them from the batch just offered; none when it was just refused).
 */
export type RefusalReport = FeedRefusal &
  (
    | { action: 'reread'; fromBlock: bigint; attempt: number }
    | { action: 'withheld'; withheldEvents: number }
  )

/**
 * The instances an `onBatch` error says the enclave refused, having applied the events of every
 * other instance of the batch (`unlisted`: how many more it refused without naming them; the
 * format is `src/protocol/feedRefusals.ts`). None for any other error: the batch failed as a
 * whole.
 */
export function feedRefusals(e: unknown): { refused: FeedRefusal[]; unlisted: number } {
  return decodeFeedRefusals(
    typeof e === 'object' && e !== null ? (e as { details?: unknown }).details : undefined,
  )
}

/** An instance event and the block it is in. */
type Placed = { event: ChainEvent; block: bigint }

/** A refused instance read again by itself; its events are kept out of the ranges' batches. */
type CatchUp = {
  /** Not read before this time (ms): the pause after a refusal. */
  due: number
  /** The next block to read once a reading began (it may take several polls); none before. */
  next?: bigint
}

const INSTANCE_EVENT = getAbiItem({ abi: poseManagerAbi, name: 'InstanceEvent' })

/** Instances whose last accepted event's block is remembered (the oldest forgotten first). */
const TRACKED_INSTANCES = 100_000
/** Instances withheld at most; past it the one withheld longest is offered again. */
const MAX_WITHHELD = 10_000
/** Instances read again at once at most; past it the oldest is offered in the ranges again. */
const MAX_CATCHING = 10_000
/** Offers of one range, each keeping more refused instances out, before the poll gives up. */
const MAX_OFFERS = 4
/**
 * `eth_getLogs` requests of one poll that read refused instances again, and the time they may
 * take (the rest wait for the next poll, so that the ranges of all are not held up long).
 */
const REREAD_RANGES_PER_POLL = 32
const REREAD_MS_PER_POLL = 1_000
/** Readings again of an instance reported each; past them, every `REPORT_EVERY`th only. */
const REPORT_FIRST = 3
const REPORT_EVERY = 12

/** `map.set` that keeps at most `max` keys, forgetting the one set longest ago. */
function setRecent<K, V>(map: Map<K, V>, key: K, value: V, max: number): void {
  map.delete(key)
  map.set(key, value)
  if (map.size > max) map.delete(map.keys().next().value as K)
}

/** A manager log decoded (undefined when it does not decode as a manager event). */
function decodeLog(log: {
  data: `0x${string}`
  topics: readonly `0x${string}`[]
}): { eventName: string; args: Record<string, unknown> } | undefined {
  try {
    return decodeEventLog({
      abi: poseManagerAbi,
      data: log.data,
      topics: log.topics as never,
    }) as never
  } catch {
    return undefined
  }
}

/** An `InstanceEvent`'s event, in `block` unless the log names its own. */
function placeInstanceEvent(
  args: Record<string, unknown>,
  logBlock: bigint | null | undefined,
  block: bigint,
): Placed {
  return {
    event: {
      instance: args.id as bigint,
      index: BigInt(args.index as bigint),
      kind: Number(args.kind),
      data: hexToBytes(args.data as `0x${string}`),
      hash: hexToBytes(args.hash as `0x${string}`),
    },
    block: logBlock ?? block,
  }
}

/** Offered block hashes remembered to measure the depth of a reorganisation. */
const REMEMBERED_BLOCKS = 64

export class ManagerWatcher {
  private cursor: bigint
  private timer: NodeJS.Timeout | undefined
  private running = false
  /** `stop()` was called: a poll under way offers no further range. */
  private stopping = false
  private polling: Promise<void> | undefined
  /** A head arrived while a poll was under way: poll again right after it. */
  private again = false
  private heads: HeadSubscription | undefined
  /** The last offered batches (first and last block, the last one's hash), oldest first. */
  private offered: Array<{ from: bigint; number: bigint; hash: `0x${string}` }> = []
  /** The last block and time offered: those of a batch of events read again. */
  private lastOffered: { blockNumber: bigint; timestamp: bigint } | undefined
  /** The head block when the last poll completed. */
  private seen: { number: bigint; hash: `0x${string}` } | undefined
  /** Reorganisations seen that replaced offered blocks. */
  reorgs = 0
  /** Per instance, the block of its last event in a batch the enclave took (applied or known). */
  private readonly lastAccepted = new Map<bigint, bigint>()
  /**
   * Refused instances: readings again since the refused event (forgotten once it takes an event
   * at or past it), and of those, the refusals in a row that reading again cannot cure alone.
   */
  private readonly rereads = new Map<bigint, { attempts: number; index: bigint; uncured: number }>()
  /** Instances read again by themselves, their events kept out of the ranges' batches. */
  private readonly catching = new Map<bigint, CatchUp>()
  /** Instances whose events are not offered: the refusal, and until when (none if halted). */
  private readonly withheld = new Map<bigint, { refusal: FeedRefusal; until: number }>()

  constructor(private readonly opts: WatcherOptions) {
    this.cursor = opts.fromBlock ?? 0n
  }

  get nextBlock(): bigint {
    return this.cursor
  }

  start(): void {
    if (this.running) return
    this.running = true
    this.stopping = false
    const url = this.opts.headsUrl
    if (url) {
      this.heads = new HeadSubscription({
        url,
        // Heads of another chain would only make it poll at the wrong times: refused.
        chainId: this.opts.client.chain.id,
        onHead: () => this.wake(),
        ...(this.opts.onHeads ? { onState: this.opts.onHeads } : {}),
      })
      this.heads.start()
    }
    void this.loop()
  }

  /** Polls now: at once when idle, or right after the poll under way. */
  wake(): void {
    if (!this.running) return
    if (this.polling) {
      this.again = true
      return
    }
    clearTimeout(this.timer)
    void this.loop()
  }

  /** Subscribed to new heads, so polling only as a safety net. */
  get subscribed(): boolean {
    return this.heads?.live ?? false
  }

  private async loop(): Promise<void> {
    this.timer = undefined
    do {
      this.again = false
      this.polling = this.poll().catch((e) => this.opts.onError?.(e))
      await this.polling
    } while (this.again && this.running)
    this.polling = undefined
    if (!this.running) return
    const ms = this.subscribed
      ? (this.opts.subscribedPollIntervalMs ?? 2_000)
      : (this.opts.pollIntervalMs ?? 250)
    this.timer = setTimeout(() => void this.loop(), ms)
  }

  async stop(): Promise<void> {
    this.running = false
    this.stopping = true
    clearTimeout(this.timer)
    await this.heads?.stop()
    this.heads = undefined
    await this.polling
  }

  /**
   * Processes every block up to the chain head once, then reads again the refused instances
   * whose pause is over (also when no block came, and when reading the ranges failed).
   */
  async poll(): Promise<void> {
    this.releaseWithheld()
    try {
      await this.readRanges()
    } finally {
      await this.catchUp()
    }
  }

  private async readRanges(): Promise<void> {
    const { client, manager } = this.opts
    const tip = await client.getBlock({ blockTag: 'latest' })
    // The same head block as at the end of the last complete poll: its hash commits to every
    // block below it, so nothing was added or replaced (one request per idle poll).
    if (tip.number === this.seen?.number && tip.hash === this.seen.hash) return
    const head = tip.number - (this.opts.confirmations ?? 0n)
    await this.checkOffered(tip)
    let ranges = 0
    while (this.cursor <= head && !this.stopping) {
      const to = this.cursor + this.maxRange - 1n < head ? this.cursor + this.maxRange - 1n : head
      // The range's last block is read before its logs, and its hash is remembered as offered:
      // a fork after this read shows at the next check of the newest offered block (which reads
      // the range again); one before it shows now, as a block that does not follow the last one
      // offered. Read after the logs, it could be the new fork's block (with none of the logs)
      // and the replaced fork's events would stand as offered. Up to the head itself (no
      // confirmations), the head read above is that block, checked unless a range came since.
      const block = to === tip.number ? tip : await client.getBlock({ blockNumber: to })
      // The chain changed during this poll: the next one reads it from the fork.
      if ((block !== tip || ranges > 0) && (await this.checkOffered(block))) return
      const logs = await client.getLogs({ address: manager, fromBlock: this.cursor, toBlock: to })
      // A log of that block from another fork: the chain changed between the two requests, and
      // the range is read again next poll.
      for (const log of logs) {
        if (log.blockNumber === to && block.hash && log.blockHash && log.blockHash !== block.hash)
          throw new Error(`block ${to} changed while its logs were read; reading it again`)
      }
      const batch: ChainBatch = {
        blockNumber: to,
        timestamp: block.timestamp,
        instanceEvents: [],
        operatorEvents: [],
      }
      const placed: Placed[] = []
      for (const log of logs) {
        const ev = decodeLog(log)
        if (!ev) continue
        if (ev.eventName === 'InstanceEvent') {
          placed.push(placeInstanceEvent(ev.args, log.blockNumber, to))
        } else if (ev.eventName === 'OperatorRegistered') {
          batch.operatorEvents.push({
            operator: ev.args.operator as Address,
            enclaveSigner: ev.args.enclaveSigner as Address,
            endpoint: ev.args.endpoint as string,
          })
        } else if (ev.eventName === 'EndpointChanged') {
          batch.operatorEvents.push({
            operator: ev.args.operator as Address,
            endpoint: ev.args.endpoint as string,
          })
        } else if (ev.eventName === 'StakeWithdrawn') {
          batch.operatorEvents.push({ operator: ev.args.operator as Address, left: true })
        }
      }
      await this.offer(batch, placed)
      const from = this.cursor
      this.cursor = to + 1n
      this.lastOffered = { blockNumber: to, timestamp: block.timestamp }
      ranges++
      if (block.hash) {
        this.offered.push({ from, number: to, hash: block.hash })
        if (this.offered.length > REMEMBERED_BLOCKS) this.offered.shift()
      }
    }
    // Only a poll that offered every range up to the head may skip the next one for this head.
    if (this.cursor > head) this.seen = { number: tip.number, hash: tip.hash }
  }

  private get maxRange(): bigint {
    return this.opts.maxRange ?? 2000n
  }

  /**
   * Hands a range's batch to `onBatch`, without the events of withheld instances and of those
   * read again by themselves. When the enclave refused some instances only (`feedRefusals`),
   * each is read again or withheld (`refuse`), and the batch goes again without them (the
   * enclave skips the events it applied). Throws when the batch failed as a whole, or refusals
   * kept coming: the range is offered again next poll.
   */
  private async offer(batch: ChainBatch, placed: Placed[]): Promise<void> {
    for (let offers = 1; ; offers++) {
      const kept = this.withhold(placed, offers === 1)
      try {
        await this.opts.onBatch({ ...batch, instanceEvents: kept.map((p) => p.event) })
        this.noteAccepted(kept, [])
        return
      } catch (e) {
        const { refused, unlisted } = feedRefusals(e)
        if (refused.length === 0 || offers >= MAX_OFFERS) throw e
        // Instances refused but not named would count as taken: then nothing is.
        if (unlisted === 0) this.noteAccepted(kept, refused)
        for (const r of refused) this.refuse(r)
      }
    }
  }

  /**
   * What is done about a refused instance: read again by itself after a pause (an event out of
   * order, for as long as it is refused; another refusal, `refusalRetries` times), or withheld
   * (for `withholdMs` when reading again did not cure it, for good when its view diverged).
   */
  private refuse(r: FeedRefusal): void {
    const prev = this.rereads.get(r.instance)
    const uncured = r.code === 'OUT_OF_ORDER' ? 0 : (prev?.uncured ?? 0) + 1
    if (r.halted || uncured > this.refusalRetries) {
      this.catching.delete(r.instance)
      if (r.halted) this.rereads.delete(r.instance)
      else {
        const attempts = prev?.attempts ?? 0
        setRecent(
          this.rereads,
          r.instance,
          { attempts, index: r.index, uncured },
          TRACKED_INSTANCES,
        )
      }
      const until = r.halted ? Number.POSITIVE_INFINITY : this.now() + this.withholdMs
      setRecent(this.withheld, r.instance, { refusal: r, until }, MAX_WITHHELD)
      this.report({ ...r, action: 'withheld', withheldEvents: 0 })
      return
    }
    const attempt = (prev?.attempts ?? 0) + 1
    setRecent(
      this.rereads,
      r.instance,
      { attempts: attempt, index: r.index, uncured },
      TRACKED_INSTANCES,
    )
    this.withheld.delete(r.instance)
    setRecent(this.catching, r.instance, { due: this.now() + this.backoff(attempt) }, MAX_CATCHING)
    if (attempt <= REPORT_FIRST || attempt % REPORT_EVERY === 0) {
      const fromBlock = this.lastAccepted.get(r.instance) ?? this.opts.fromBlock ?? 0n
      this.report({ ...r, action: 'reread', fromBlock, attempt })
    }
  }

  /** The pause before the `attempt`th reading again: doubling from the first, capped. */
  private backoff(attempt: number): number {
    const base = this.opts.refusalBackoffMs ?? 1_000
    const max = this.opts.refusalBackoffMaxMs ?? 5_000
    return Math.min(base * 2 ** Math.min(attempt - 1, 30), max)
  }

  /**
   * Reads again, by themselves, the refused instances whose pause is over: each from the block
   * of its last accepted event up to the cursor (`eth_getLogs` on its id's topic, in ranges of
   * `maxRange`, at most `REREAD_RANGES_PER_POLL` requests and `REREAD_MS_PER_POLL` a poll for
   * all, a longer reading going on next poll), handing its events to `onBatch` range by range. One read up to the cursor
   * without a refusal is level: its events go in the ranges' batches again. Never throws.
   */
  private async catchUp(): Promise<void> {
    const now = this.now()
    const budget = { left: REREAD_RANGES_PER_POLL, until: now + REREAD_MS_PER_POLL }
    for (const [instance, c] of [...this.catching]) {
      if (budget.left <= 0 || this.now() >= budget.until || this.stopping) return
      if (c.due > now || this.catching.get(instance) !== c) continue
      try {
        await this.readInstance(instance, c, budget)
      } catch (e) {
        // A failed request (or callback): this instance waits a pause, the others go on.
        if (this.catching.get(instance) === c) {
          const attempts = this.rereads.get(instance)?.attempts ?? 1
          setRecent(
            this.catching,
            instance,
            { due: this.now() + this.backoff(attempts) },
            MAX_CATCHING,
          )
        }
        try {
          this.opts.onError?.(e)
        } catch {
          // A failing report must not stop the feed.
        }
      }
    }
  }

  /** Reads `instance` again (see `catchUp`), each request taken from `budget`. */
  private async readInstance(
    instance: bigint,
    c: CatchUp,
    budget: { left: number; until: number },
  ): Promise<void> {
    const { client, manager } = this.opts
    let next = c.next ?? this.lastAccepted.get(instance) ?? this.opts.fromBlock ?? 0n
    c.next = next
    while (next < this.cursor && budget.left > 0 && this.now() < budget.until && !this.stopping) {
      const last = this.cursor - 1n
      const to: bigint = next + this.maxRange - 1n < last ? next + this.maxRange - 1n : last
      budget.left--
      const logs = await client.getLogs({
        address: manager,
        event: INSTANCE_EVENT,
        args: { id: instance },
        fromBlock: next,
        toBlock: to,
      })
      const placed: Placed[] = []
      for (const log of logs) {
        const ev = decodeLog(log)
        // Only this instance's: an endpoint may answer more than the topic asked for.
        if (ev?.eventName !== 'InstanceEvent' || ev.args.id !== instance) continue
        placed.push(placeInstanceEvent(ev.args, log.blockNumber, to))
      }
      if (placed.length > 0 && !(await this.feedInstance(instance, placed, to))) return
      next = to + 1n
      c.next = next
    }
    if (this.catching.get(instance) !== c) return
    // Level up to the cursor: its events go in the ranges' batches again.
    if (next >= this.cursor) this.catching.delete(instance)
    // Not done: next in line after the others.
    else setRecent(this.catching, instance, c, MAX_CATCHING)
  }

  /**
   * Hands one instance's events read again to `onBatch`, as of the last block offered (the
   * enclave keeps the latest block and time it was given). False when refused: the instance is
   * read again later, or withheld (`refuse`). Throws when the batch failed as a whole.
   */
  private async feedInstance(instance: bigint, placed: Placed[], to: bigint): Promise<boolean> {
    const at = this.lastOffered ?? { blockNumber: to, timestamp: 0n }
    try {
      await this.opts.onBatch({
        blockNumber: at.blockNumber,
        timestamp: at.timestamp,
        instanceEvents: placed.map((p) => p.event),
        operatorEvents: [],
      })
      this.noteAccepted(placed, [])
      return true
    } catch (e) {
      const { refused, unlisted } = feedRefusals(e)
      const mine = refused.find((r) => r.instance === instance)
      if (!mine) throw e
      if (unlisted === 0) this.noteAccepted(placed, refused)
      this.refuse(mine)
      return false
    }
  }

  private now(): number {
    return this.opts.now?.() ?? Date.now()
  }

  private get refusalRetries(): number {
    return this.opts.refusalRetries ?? 1
  }

  private get withholdMs(): number {
    return this.opts.withholdMs ?? 30_000
  }

  /**
   * The events of instances neither withheld nor read again by themselves; with `report`, each
   * withholding is reported (those read again are soon, and are reported when refused).
   */
  private withhold(placed: Placed[], report: boolean): Placed[] {
    if (this.withheld.size === 0 && this.catching.size === 0) return placed
    const kept: Placed[] = []
    const dropped = new Map<bigint, number>()
    for (const p of placed) {
      const id = p.event.instance
      if (this.withheld.has(id)) dropped.set(id, (dropped.get(id) ?? 0) + 1)
      else if (!this.catching.has(id)) kept.push(p)
    }
    if (report) {
      for (const [instance, n] of dropped) {
        const w = this.withheld.get(instance)!
        this.report({ ...w.refusal, action: 'withheld', withheldEvents: n })
      }
    }
    return kept
  }

  /**
   * Remembers the block of each instance's last event the enclave took, and forgets the
   * readings again of an instance that took an event at or past the one refused.
   */
  private noteAccepted(kept: Placed[], refused: FeedRefusal[]): void {
    const refusedAt = new Map(refused.map((r) => [r.instance, r.index]))
    for (const p of kept) {
      const { instance, index } = p.event
      const at = refusedAt.get(instance)
      if (at !== undefined && index >= at) continue
      setRecent(this.lastAccepted, instance, p.block, TRACKED_INSTANCES)
      const r = this.rereads.get(instance)
      if (r && index >= r.index) this.rereads.delete(instance)
    }
  }

  /**
   * Instances withheld long enough (and whose enclave still follows them) are read again by
   * themselves, from the block of their last accepted event; the cursor stays.
   */
  private releaseWithheld(): void {
    const now = this.now()
    for (const [instance, w] of this.withheld) {
      if (w.until > now) continue
      this.withheld.delete(instance)
      setRecent(this.catching, instance, { due: now }, MAX_CATCHING)
    }
  }

  private report(r: RefusalReport): void {
    try {
      if (this.opts.onRefused) {
        this.opts.onRefused(r)
        return
      }
      const what =
        r.action === 'reread'
          ? `reading its events again from block ${r.fromBlock} (attempt ${r.attempt})`
          : r.withheldEvents > 0
            ? `${r.withheldEvents} of its events withheld from the batch`
            : r.halted
              ? 'its events are withheld for good: its view diverged from the chain feed'
              : `its events are withheld for ${Math.round(this.withholdMs / 1000)} s`
      const code = r.code === 'OUT_OF_ORDER' || r.code === 'MALFORMED' ? r.code : 'STALE_EVENT'
      this.opts.onError?.(
        new ProtocolError(
          code,
          `chain feed: instance ${r.instance} event ${r.index} refused by the enclave (${r.code}): ${what}`,
          { details: r.reason },
        ),
      )
    } catch {
      // A failing report must not stop the feed.
    }
  }

  /**
   * Compares the newest offered block with the chain, given a block just read from it (the head,
   * or the last block of the range about to be read). A block whose parent is the newest offered
   * one shows it still on the chain without another request. On a mismatch (or a chain now
   * shorter than that block) the blocks after the newest offered block still on the chain are
   * read again: the enclave skips the events it already holds, takes those the replaced blocks
   * did not have, and refuses any that differ from what it applied (its running-hash check).
   * Returns whether the chain was reorganised (the cursor moved back).
   */
  private async checkOffered(block: {
    number: bigint
    parentHash: `0x${string}`
  }): Promise<boolean> {
    const last = this.offered.at(-1)
    if (!last) return false
    if (block.number === last.number + 1n && block.parentHash === last.hash) return false
    if (last.number <= block.number) {
      const now = await this.opts.client.getBlock({ blockNumber: last.number })
      if (now.hash === last.hash) return false
    }
    // The newest offered block still on the chain: every block up to it is unchanged.
    let kept = -1
    for (let k = this.offered.length - 2; k >= 0 && kept < 0; k--) {
      const b = this.offered[k]!
      if (b.number > block.number) continue
      const there = await this.opts.client.getBlock({ blockNumber: b.number })
      if (there.hash === b.hash) kept = k
    }
    // Without one, the fork is at or below the oldest block remembered: read from there.
    const from = kept >= 0 ? this.offered[kept]!.number + 1n : this.offered[0]!.from
    if (from < this.cursor) this.cursor = from
    // An instance read again past the fork reads the new blocks too.
    for (const c of this.catching.values()) if (c.next !== undefined && c.next > from) c.next = from
    this.offered = this.offered.slice(0, kept + 1)
    this.seen = undefined
    this.reorgs++
    // At most this many blocks were replaced (at least, when no remembered block survived).
    this.opts.onReorg?.({ depth: Number(last.number - from + 1n), block: last.number })
    return true
  }
}
