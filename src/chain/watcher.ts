/**
 * Follows the manager's events by polling `eth_getLogs` (works against any JSON-RPC endpoint)
 * and hands each block range to a callback in order. A failing callback stops the cursor, so
 * the same range is offered again on the next poll: nothing is skipped.
 *
 * Only blocks at least `confirmations` deep are offered: an event the enclave has applied (a
 * deposit credited, a member removed) cannot be taken back, so it must not be in a block a
 * reorganisation can still replace. The watcher remembers the hashes of the blocks it offered
 * and reports a reorganisation that reached below the confirmation depth (the enclave's
 * running-hash check then refuses any event that differs from what it already holds).
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

export type OperatorEvent = { operator: Address; enclaveSigner?: Address; endpoint: string }

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
  onBatch: (b: ChainBatch) => Promise<void>
  onError?: (e: unknown) => void
  /** A block the watcher offered is no longer on the chain: up to `depth` blocks replaced. */
  onReorg?: (r: { depth: number; block: bigint }) => void
}

/** Offered block hashes remembered to measure the depth of a reorganisation. */
const REMEMBERED_BLOCKS = 64

export class ManagerWatcher {
  private cursor: bigint
  private timer: NodeJS.Timeout | undefined
  private running = false
  private polling: Promise<void> | undefined
  /** The last offered batch ends, oldest first. */
  private offered: Array<{ number: bigint; hash: `0x${string}` }> = []
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
    this.running = true
    const loop = async () => {
      if (!this.running) return
      this.polling = this.poll().catch((e) => this.opts.onError?.(e))
      await this.polling
      if (this.running) this.timer = setTimeout(loop, this.opts.pollIntervalMs ?? 250)
    }
    void loop()
  }

  async stop(): Promise<void> {
    this.running = false
    if (this.timer) clearTimeout(this.timer)
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
    await this.checkOffered()
    while (this.cursor <= head) {
      const to =
        this.cursor + (this.opts.maxRange ?? 2000n) - 1n < head
          ? this.cursor + (this.opts.maxRange ?? 2000n) - 1n
          : head
      const logs = await client.getLogs({ address: manager, fromBlock: this.cursor, toBlock: to })
      const block = await client.getBlock({ blockNumber: to })
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
        }
      }
      await this.opts.onBatch(batch)
      this.cursor = to + 1n
      if (block.hash) {
        this.offered.push({ number: to, hash: block.hash })
        if (this.offered.length > REMEMBERED_BLOCKS) this.offered.shift()
      }
    }
    this.seen = { number: tip.number, hash: tip.hash }
  }

  /** Compares the newest offered block with the chain; on a mismatch, finds the fork depth. */
  private async checkOffered(): Promise<void> {
    const last = this.offered.at(-1)
    if (!last) return
    const now = await this.opts.client.getBlock({ blockNumber: last.number })
    if (now.hash === last.hash) return
    // The newest offered block still on the chain bounds the fork point from below.
    let kept = -1n
    for (let k = this.offered.length - 2; k >= 0 && kept < 0n; k--) {
      const b = this.offered[k]!
      const there = await this.opts.client.getBlock({ blockNumber: b.number })
      if (there.hash === b.hash) kept = b.number
    }
    const depth = Number(last.number - kept)
    this.reorgs++
    this.offered = []
    this.opts.onReorg?.({ depth, block: last.number })
  }
}
