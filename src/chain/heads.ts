/**
 * New chain heads pushed by a WebSocket JSON-RPC endpoint (`eth_subscribe` with `newHeads`), so
 * that a chain follower looks at the chain when a block arrives instead of every few hundred
 * milliseconds. An operator that polled every 200 ms asked its endpoint 60 times per 12-second
 * block; on a devnet under load, where no block comes for minutes, those polls cost its three
 * operators and anvil about 2 % of the CPU of every off-chain transfer (bench/README.md,
 * 2026-12-06, night).
 *
 * The subscription only says *when* to look: the follower still reads the chain over HTTP, so a
 * lost, late or forged notification costs at most a poll and never changes what it reads. While
 * the socket is down, or the endpoint refuses the subscription, `live` is false and the follower
 * polls at its normal rate; the subscription reconnects with backoff and, once subscribed again,
 * reports a head at once (one may have come while it was away).
 */
import WebSocket from 'ws'

/** Largest frame accepted: a header is about 1 KB. */
const MAX_FRAME_BYTES = 256 * 1024
/** First and longest wait before reconnecting. */
const RETRY_MIN_MS = 250
const RETRY_MAX_MS = 10_000
/** A connection not subscribed this long after it began (opening included) is cut and retried. */
const SETUP_TIMEOUT_MS = 10_000
const SUBSCRIBE_ID = 1
const CHAIN_ID_ID = 2

export type HeadSubscriptionOptions = {
  /** `ws://` or `wss://` JSON-RPC endpoint. */
  url: string
  /**
   * The chain the heads must come from: asked with `eth_chainId` before subscribing, and an
   * endpoint of another chain is not subscribed to (a misconfiguration, reported).
   */
  chainId?: number
  /** A new head arrived (or the subscription was just made: one may have been missed). */
  onHead: () => void
  /** The subscription became live, or stopped being live (with the reason). */
  onState?: (live: boolean, reason?: string) => void
  /** How long a connection may take to open and subscribe (default 10 s). */
  setupTimeoutMs?: number
}

export class HeadSubscription {
  private ws: WebSocket | undefined
  private subscription: string | undefined
  /** The id of the request (`eth_chainId`, then `eth_subscribe`) whose answer is awaited. */
  private awaiting: number | undefined
  private retryMs = RETRY_MIN_MS
  private retryTimer: NodeJS.Timeout | undefined
  /** Each connection's setup timer, cleared once it is subscribed or closed. */
  private readonly setupTimers = new WeakMap<WebSocket, NodeJS.Timeout>()
  private stopped = true
  /** Frames that were not a JSON-RPC answer or notification this subscription expects. */
  ignoredFrames = 0
  /** Heads reported (notifications and re-subscriptions). */
  heads = 0

  constructor(private readonly opts: HeadSubscriptionOptions) {}

  /** How long the subscription waits before reconnecting after its next loss. */
  get backoffMs(): number {
    return this.retryMs
  }

  /** Subscribed and connected: heads are pushed. */
  get live(): boolean {
    return this.subscription !== undefined
  }

  start(): void {
    if (!this.stopped) return
    this.stopped = false
    this.connect()
  }

  async stop(): Promise<void> {
    this.stopped = true
    clearTimeout(this.retryTimer)
    const ws = this.ws
    this.ws = undefined
    this.subscription = undefined
    this.awaiting = undefined
    if (!ws || ws.readyState === WebSocket.CLOSED) return
    const closed = new Promise<void>((r) => ws.once('close', () => r()))
    ws.terminate()
    await closed
  }

  private connect(): void {
    if (this.stopped) return
    let ws: WebSocket
    try {
      ws = new WebSocket(this.opts.url, { maxPayload: MAX_FRAME_BYTES })
    } catch (e) {
      this.down(`cannot connect: ${(e as Error).message}`)
      return
    }
    this.ws = ws
    // This connection's own: a later connection's timer is never cleared by this one's events.
    // It runs until the subscription is made, so an endpoint that opens and then never answers
    // is cut, reported and tried again like one that never opens.
    const setupMs = this.opts.setupTimeoutMs ?? SETUP_TIMEOUT_MS
    const setupTimer = setTimeout(() => {
      if (this.ws === ws) this.refuse(ws, `not subscribed within ${setupMs} ms`)
      else ws.terminate()
    }, setupMs)
    setupTimer.unref()
    this.setupTimers.set(ws, setupTimer)
    ws.on('open', () => {
      if (this.opts.chainId === undefined) this.subscribe(ws)
      else {
        this.awaiting = CHAIN_ID_ID
        ws.send(JSON.stringify({ jsonrpc: '2.0', id: CHAIN_ID_ID, method: 'eth_chainId' }))
      }
    })
    ws.on('message', (data, isBinary) => {
      if (this.ws !== ws) return
      if (isBinary) return void this.ignoredFrames++
      this.onFrame(ws, data.toString())
    })
    // 'close' follows every 'error'; the reason is kept for it.
    let reason = 'connection closed'
    ws.on('error', (e) => {
      reason = e.message || 'connection failed'
    })
    ws.on('close', () => {
      clearTimeout(setupTimer)
      if (this.ws !== ws) return
      this.ws = undefined
      this.down(reason)
    })
  }

  private subscribe(ws: WebSocket): void {
    this.awaiting = SUBSCRIBE_ID
    ws.send(
      JSON.stringify({
        jsonrpc: '2.0',
        id: SUBSCRIBE_ID,
        method: 'eth_subscribe',
        params: ['newHeads'],
      }),
    )
  }

  /** Gives up on this connection: cut, reported (see `down`), tried again later. */
  private refuse(ws: WebSocket, reason: string): void {
    ws.terminate()
    this.ws = undefined
    this.down(reason)
  }

  private onFrame(ws: WebSocket, text: string): void {
    let msg: unknown
    try {
      msg = JSON.parse(text)
    } catch {
      this.ignoredFrames++
      return
    }
    if (typeof msg !== 'object' || msg === null) return void this.ignoredFrames++
    const m = msg as { id?: unknown; result?: unknown; error?: unknown; method?: unknown }
    if (this.awaiting !== undefined && m.id === this.awaiting) {
      this.awaiting = undefined
      this.onAnswer(ws, m)
      return
    }
    if (m.method === 'eth_subscription') {
      const p = (m as { params?: { subscription?: unknown } }).params
      if (this.subscription !== undefined && p?.subscription === this.subscription) {
        // A head delivered: the endpoint works, so a later loss reconnects soon. (Reset on the
        // subscription alone, an endpoint that subscribes and then drops would be asked again
        // every 250 ms for ever.)
        this.retryMs = RETRY_MIN_MS
        this.head()
        return
      }
    }
    this.ignoredFrames++
  }

  /** The answer to `eth_chainId` or `eth_subscribe` on a connection not yet subscribed. */
  private onAnswer(ws: WebSocket, m: { id?: unknown; result?: unknown; error?: unknown }): void {
    if (m.id === CHAIN_ID_ID) {
      const id =
        typeof m.result === 'string' && /^0x[0-9a-f]{1,16}$/i.test(m.result)
          ? Number(m.result)
          : undefined
      if (id === this.opts.chainId) this.subscribe(ws)
      else
        this.refuse(
          ws,
          id === undefined
            ? 'eth_chainId: no chain id in the answer'
            : `the endpoint serves chain ${id}, not chain ${this.opts.chainId}`,
        )
      return
    }
    if (typeof m.result === 'string' && m.result.length > 0 && m.result.length <= 130) {
      clearTimeout(this.setupTimers.get(ws))
      this.subscription = m.result
      this.opts.onState?.(true)
      this.head()
      return
    }
    // An endpoint without subscriptions: polling it is, and it is asked again later.
    const why =
      typeof m.error === 'object' && m.error !== null && 'message' in m.error
        ? String((m.error as { message: unknown }).message).slice(0, 200)
        : 'no subscription id in the answer'
    this.refuse(ws, `eth_subscribe refused: ${why}`)
  }

  private head(): void {
    this.heads++
    this.opts.onHead()
  }

  /** Not subscribed any more: tell, and try again after the current backoff. */
  private down(reason: string): void {
    const was = this.subscription !== undefined
    this.subscription = undefined
    this.awaiting = undefined
    if (this.stopped) return
    if (was || this.retryMs === RETRY_MIN_MS) this.opts.onState?.(false, reason)
    clearTimeout(this.retryTimer)
    this.retryTimer = setTimeout(() => this.connect(), this.retryMs)
    this.retryTimer.unref()
    this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS)
  }
}
