/**
 * Follows the manager's events by polling `eth_getLogs` (works against any JSON-RPC endpoint)
 * and hands each block range to a callback in order. A failing callback stops the cursor, so
 * the same range is offered again on the next poll: nothing is skipped.
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
  hexToBytes,
  type PublicClient,
  type Transport,
} from 'viem'
import type { ChainEvent } from '../protocol/index.ts'
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
  /** The head block when the last poll completed. */
  private seen: { number: bigint; hash: `0x${string}` } | undefined
  /** Reorganisations seen that replaced offered blocks. */
  reorgs = 0

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

  /** Processes every block up to the chain head once. */
  async poll(): Promise<void> {
    const { client, manager } = this.opts
    const tip = await client.getBlock({ blockTag: 'latest' })
    // The same head block as at the end of the last complete poll: its hash commits to every
    // block below it, so nothing was added or replaced (one request per idle poll).
    if (tip.number === this.seen?.number && tip.hash === this.seen.hash) return
    const head = tip.number - (this.opts.confirmations ?? 0n)
    await this.checkOffered(tip)
    let ranges = 0
    while (this.cursor <= head && !this.stopping) {
      const to =
        this.cursor + (this.opts.maxRange ?? 2000n) - 1n < head
          ? this.cursor + (this.opts.maxRange ?? 2000n) - 1n
          : head
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
      for (const log of logs) {
        let ev: { eventName: string; args: Record<string, unknown> }
        try {
          ev = decodeEventLog({ abi: poseManagerAbi, data: log.data, topics: log.topics }) as never
        } catch {
          continue
        }
        if (ev.eventName === 'InstanceEvent') {
          const a = ev.args
          batch.instanceEvents.push({
            instance: a.id as bigint,
            index: BigInt(a.index as bigint),
            kind: Number(a.kind),
            data: hexToBytes(a.data as `0x${string}`),
            hash: hexToBytes(a.hash as `0x${string}`),
          })
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
      await this.opts.onBatch(batch)
      const from = this.cursor
      this.cursor = to + 1n
      ranges++
      if (block.hash) {
        this.offered.push({ from, number: to, hash: block.hash })
        if (this.offered.length > REMEMBERED_BLOCKS) this.offered.shift()
      }
    }
    // Only a poll that offered every range up to the head may skip the next one for this head.
    if (this.cursor > head) this.seen = { number: tip.number, hash: tip.hash }
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
    this.offered = this.offered.slice(0, kept + 1)
    this.seen = undefined
    this.reorgs++
    // At most this many blocks were replaced (at least, when no remembered block survived).
    this.opts.onReorg?.({ depth: Number(last.number - from + 1n), block: last.number })
    return true
  }
}
