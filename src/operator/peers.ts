/**
 * Peer messaging between operators (SPEC §2, §7): enclave envelopes relayed over WebSockets.
 * Operators cannot read or forge envelopes; they only deliver them. Outbound connections are
 * re-opened on failure and queue a bounded number of messages meanwhile; a link holds at most
 * `MAX_HELD_BYTES` of frames (queued, or buffered for a peer that does not read) and drops the
 * rest; an endpoint that is no usable URL is reported and its frames dropped for a minute. Lost
 * messages are covered by the enclaves' resend timers.
 *
 * Links are held to account both ways, since a peer can vanish without a FIN and anyone can open
 * a connection: every link is pinged each `HEARTBEAT_MS` and cut when its peer answered nothing
 * by the next ping (an outbound link then reconnects on its next frame); an outbound handshake
 * has `HANDSHAKE_TIMEOUT_MS`; inbound connections past `MAX_INBOUND` in all, or past
 * `MAX_INBOUND_PER_ADDRESS` from one address, close the one idle longest, never the newcomer, so
 * idle connections cannot lock honest peers out. One link per endpoint connects at a time, and
 * `retainEndpoints` closes the links to endpoints no operator uses any more.
 */

import type { IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import WebSocket, { WebSocketServer } from 'ws'
import type { PeerEnvelopeWire } from '../protocol/index.ts'
import { LIMITS, ProtocolError, zeroMask } from '../protocol/index.ts'
import type { LinkFaults } from './faults.ts'

const MAX_QUEUE = 10_000
/** Inbound peer connections at once (one per operator this node shares a pool with). */
const MAX_INBOUND = 1024
/**
 * Inbound peer connections from one address (`inboundAddressKey`) at once, so one host cannot
 * take every slot. Behind a proxy every peer shares the proxy's address: raise it there.
 */
const MAX_INBOUND_PER_ADDRESS = 64
/** Interval between pings on every peer link; a link that answered nothing by the next is cut. */
const HEARTBEAT_MS = 15_000
/** How long an outbound connection may take to open (TCP, TLS and the WebSocket upgrade). */
const HANDSHAKE_TIMEOUT_MS = 10_000
/** Wait after an outbound link failed before a frame to that peer connects it again. */
const RECONNECT_DELAY_MS = 250
/**
 * Slowest rate at which a live peer takes the bytes queued ahead of a ping: a link busy sending
 * a large frame (a whole state is up to a peer frame of 64 MiB) gets this long for its pong.
 */
const MIN_PEER_BYTES_PER_MS = (1024 * 1024) / 1000

/**
 * An object of at most 16 fields, each a string or a number: the shape of an envelope's wire
 * form (`PeerEnvelopeWire`), checked before it crosses into the enclave (which checks the rest).
 */
function flatRecord(v: unknown): boolean {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false
  let n = 0
  for (const k in v) {
    const x = (v as Record<string, unknown>)[k]
    if (++n > 16 || (typeof x !== 'string' && typeof x !== 'number')) return false
  }
  return true
}

/** How long an endpoint that is no usable URL waits before it is tried again. */
const BAD_ENDPOINT_RETRY_MS = 60_000

/**
 * The peer WebSocket URL of an operator's endpoint (`http(s)://host[:port][/path]`, as
 * registered on-chain), or undefined when the endpoint is no usable URL: the manager only checks
 * an endpoint's length, so any operator can register one that `ws` would refuse with a throw.
 */
export function peerUrl(endpoint: string): string | undefined {
  let u: URL
  try {
    u = new URL(endpoint)
  } catch {
    return undefined
  }
  const protocol = { 'http:': 'ws:', 'https:': 'wss:', 'ws:': 'ws:', 'wss:': 'wss:' }[u.protocol]
  if (!protocol || u.hash !== '' || u.search !== '' || u.username !== '' || u.password !== '')
    return undefined
  return `${protocol}//${u.host}${u.pathname.replace(/\/+$/, '')}/v1/peer`
}

/**
 * Bytes of frames one peer link holds, queued while it connects or buffered by an open socket
 * whose peer does not read: past it, frames to that peer are dropped (the enclaves resend what
 * was lost), so a peer that accepts a connection and never reads cannot grow this process.
 */
const MAX_HELD_BYTES = 2 * LIMITS.maxPeerMessageBytes

/**
 * The key the per-address cap counts an inbound connection under: its IPv4 address (also when
 * IPv4-mapped), or the /64 prefix of its IPv6 address, since one host is given a whole /64.
 */
export function inboundAddressKey(address: string): string {
  const bare = address.replace(/%.*$/, '').toLowerCase()
  if (/^::ffff:\d+\.\d+\.\d+\.\d+$/.test(bare)) return bare.slice(7)
  if (!bare.includes(':')) return bare
  const [head = '', tail] = bare.split('::')
  const h = head === '' ? [] : head.split(':')
  const t = tail === undefined || tail === '' ? [] : tail.split(':')
  const groups =
    tail === undefined
      ? h
      : [...h, ...Array<string>(Math.max(0, 8 - h.length - t.length)).fill('0'), ...t]
  const prefix = groups.slice(0, 4).map((g) => Number.parseInt(g, 16).toString(16))
  return `${prefix.join(':')}::/64`
}

export type PeerNetworkOptions = {
  /** Simulator only: drops, duplicates, delays and tampers with outbound frames. */
  faults?: LinkFaults | undefined
  /** Local address outbound connections are made from (default: the system's choice). */
  sourceAddress?: string | undefined
  /** A peer's endpoint cannot be connected to at all (retried after a minute). */
  onUnusableEndpoint?: ((endpoint: string, reason: string) => void) | undefined
  /** Bytes of frames one link holds (default `MAX_HELD_BYTES`). */
  maxHeldBytes?: number | undefined
  /** Inbound connections at once (default `MAX_INBOUND`). */
  maxInbound?: number | undefined
  /** Inbound connections at once from one address (default `MAX_INBOUND_PER_ADDRESS`). */
  maxInboundPerAddress?: number | undefined
  /** Milliseconds between pings on every link (default `HEARTBEAT_MS`). */
  heartbeatMs?: number | undefined
  /** Milliseconds an outbound connection may take to open (default `HANDSHAKE_TIMEOUT_MS`). */
  handshakeTimeoutMs?: number | undefined
  /** Milliseconds after an outbound link failed before it connects again (default 250). */
  reconnectDelayMs?: number | undefined
  /** Clock in milliseconds for idle times, retries and heartbeats (default `Date.now`). */
  now?: (() => number) | undefined
}

/** A link's heartbeat: the ping it has not had an answer to, and what may delay the answer. */
type Heartbeat = {
  /** When the unanswered ping was sent; undefined once answered (or before the first). */
  pingAt: number | undefined
  /** Bytes this side had queued ahead of that ping: the peer sees the ping only after them. */
  aheadBytes: number
  /** Bytes read from the peer when that ping was sent: a peer still sending is alive. */
  readAtPing: number
}

const newHeartbeat = (): Heartbeat => ({ pingAt: undefined, aheadBytes: 0, readAtPing: 0 })

/** A link as one heartbeat sees it: how to read its progress and how to cut it. */
type Beating = {
  ws: WebSocket
  hb: Heartbeat
  /** Bytes read from the peer so far (0 on outbound links, where the peer sends only pongs). */
  bytesRead: () => number
  cut: () => void
}

/** An outbound link to one endpoint. */
type Conn = {
  /** The open socket frames go to (or the last one, until its close is seen). */
  ws: WebSocket | undefined
  /** `ws`'s heartbeat. */
  beat: Heartbeat
  /** The socket being connected: at most one at a time, so no socket is ever orphaned. */
  pending: WebSocket | undefined
  queue: string[]
  queuedBytes: number
  retryAt: number
  /** The endpoint is no usable URL: frames are dropped until `retryAt`. */
  unusable: boolean
}

/** An inbound connection. */
type Inbound = {
  /** `inboundAddressKey` of its remote address. */
  address: string
  /** When it last delivered a valid envelope, or opened: the one idle longest goes first. */
  activeAt: number
  /** Its TCP socket, whose bytes read show a peer busy sending is alive. */
  socket: Socket
  beat: Heartbeat
}

/** Asserts an option is a positive number. */
function assertPositive(name: string, value: number): number {
  if (!(value > 0) || !Number.isFinite(value))
    throw new ProtocolError('OUT_OF_RANGE', `${name}: expected a positive number, got ${value}`)
  return value
}

export class PeerNetwork {
  private conns = new Map<string, Conn>()
  private wss = new WebSocketServer({ noServer: true, maxPayload: LIMITS.maxPeerMessageBytes })
  /** Inbound connections by socket, in the order they opened. */
  private inbound = new Map<WebSocket, Inbound>()
  private closed = false
  private readonly faults: LinkFaults | undefined
  private readonly sourceAddress: string | undefined
  private readonly onUnusableEndpoint: ((endpoint: string, reason: string) => void) | undefined
  private readonly maxHeldBytes: number
  private readonly maxInbound: number
  private readonly maxInboundPerAddress: number
  private readonly heartbeatMs: number
  private readonly handshakeTimeoutMs: number
  private readonly reconnectDelayMs: number
  private readonly now: () => number
  /** One timer pings every link, inbound and outbound. */
  private readonly heartbeat: NodeJS.Timeout
  private lastBeatAt: number

  /**
   * @param onEnvelope An inbound envelope of the right shape, for the enclave to check.
   * @param onProtocolError A frame refused, or a connection closed to make room (the reason).
   * @throws ProtocolError `OUT_OF_RANGE` when a cap or an interval in `opts` is not positive.
   */
  constructor(
    private readonly onEnvelope: (envelope: unknown) => void,
    private readonly onProtocolError: (reason: string) => void,
    opts: PeerNetworkOptions = {},
  ) {
    this.faults = opts.faults
    this.sourceAddress = opts.sourceAddress
    this.onUnusableEndpoint = opts.onUnusableEndpoint
    this.maxHeldBytes = opts.maxHeldBytes ?? MAX_HELD_BYTES
    this.maxInbound = assertPositive('maxInbound', opts.maxInbound ?? MAX_INBOUND)
    this.maxInboundPerAddress = assertPositive(
      'maxInboundPerAddress',
      opts.maxInboundPerAddress ?? MAX_INBOUND_PER_ADDRESS,
    )
    this.heartbeatMs = assertPositive('heartbeatMs', opts.heartbeatMs ?? HEARTBEAT_MS)
    this.handshakeTimeoutMs = assertPositive(
      'handshakeTimeoutMs',
      opts.handshakeTimeoutMs ?? HANDSHAKE_TIMEOUT_MS,
    )
    this.reconnectDelayMs = assertPositive(
      'reconnectDelayMs',
      opts.reconnectDelayMs ?? RECONNECT_DELAY_MS,
    )
    this.now = opts.now ?? Date.now
    this.lastBeatAt = this.now()
    this.heartbeat = setInterval(() => this.beatAll(), this.heartbeatMs)
    this.heartbeat.unref()
    this.wss.on('connection', (ws, req) => {
      if (this.closed) return ws.terminate()
      const link: Inbound = {
        address: inboundAddressKey(req.socket.remoteAddress ?? ''),
        activeAt: this.now(),
        socket: req.socket,
        beat: newHeartbeat(),
      }
      this.inbound.set(ws, link)
      ws.on('close', () => this.inbound.delete(ws))
      ws.on('pong', () => {
        link.beat.pingAt = undefined
      })
      this.makeRoomFor(ws, link)
      ws.on('message', (data, isBinary) => {
        if (isBinary) return this.onProtocolError('peer: binary frames are not accepted')
        let msg: unknown
        try {
          msg = JSON.parse(data.toString())
        } catch {
          return this.onProtocolError('peer: frame is not JSON')
        }
        if (typeof msg !== 'object' || msg === null || !('envelope' in msg)) {
          return this.onProtocolError('peer: frame has no envelope')
        }
        const envelope = (msg as { envelope: unknown }).envelope
        // The enclave checks every field; what reaches it is at least an envelope's shape.
        if (!flatRecord(envelope)) return this.onProtocolError('peer: envelope is not flat')
        link.activeAt = this.now()
        this.onEnvelope(envelope)
      })
      ws.on('error', () => ws.terminate())
    })
  }

  /**
   * Closes inbound connections until `newcomer` fits both caps: the one idle longest of its
   * address, then of all. Evicting the newcomer instead would let anyone who holds the slots
   * with idle connections lock every honest peer out; this way a held slot lasts only until a
   * newcomer needs it, unless it carries valid envelopes.
   */
  private makeRoomFor(newcomer: WebSocket, link: Inbound): void {
    const idlest = (sameAddress: boolean): WebSocket | undefined => {
      let found: WebSocket | undefined
      let at = Number.POSITIVE_INFINITY
      for (const [ws, l] of this.inbound) {
        if (ws === newcomer || (sameAddress && l.address !== link.address)) continue
        // INVARIANT: strictly older wins, so of equally idle ones the first opened goes.
        if (l.activeAt < at) {
          found = ws
          at = l.activeAt
        }
      }
      return found
    }
    const evict = (ws: WebSocket | undefined, reason: string) => {
      if (!ws) return false
      this.inbound.delete(ws)
      ws.terminate()
      this.onProtocolError(reason)
      return true
    }
    let fromAddress = 0
    for (const l of this.inbound.values()) if (l.address === link.address) fromAddress++
    const perAddress = `peer: more than ${this.maxInboundPerAddress} inbound connections from ${link.address}; closed the one idle longest`
    for (; fromAddress > this.maxInboundPerAddress; fromAddress--)
      if (!evict(idlest(true), perAddress)) break
    const inAll = `peer: more than ${this.maxInbound} inbound connections; closed the one idle longest`
    while (this.inbound.size > this.maxInbound) if (!evict(idlest(false), inAll)) break
  }

  /**
   * One heartbeat of every link: pings the live ones and cuts the dead. Skipped when the timer
   * itself ran late (a blocked event loop), since answers that arrived meanwhile are read only
   * after the timers run; a link found dead is judged again once the I/O already waiting has
   * been read, for the same reason.
   */
  private beatAll(): void {
    const now = this.now()
    const late = now - this.lastBeatAt > 1.5 * this.heartbeatMs
    this.lastBeatAt = now
    if (late || this.closed) return
    const links: Beating[] = []
    for (const [ws, link] of this.inbound) {
      const cut = () => {
        this.inbound.delete(ws)
        ws.terminate()
      }
      links.push({ ws, hb: link.beat, bytesRead: () => link.socket.bytesRead, cut })
    }
    // A cut outbound link runs the usual path: its close clears it, the next frame reconnects.
    for (const c of this.conns.values()) {
      const ws = c.ws
      if (ws) links.push({ ws, hb: c.beat, bytesRead: () => 0, cut: () => ws.terminate() })
    }
    const suspects: Beating[] = []
    for (const l of links) {
      const state = this.judge(l, now)
      if (state === 'dead') suspects.push(l)
      else if (state === 'alive') {
        l.hb.pingAt = now
        l.hb.aheadBytes = l.ws.bufferedAmount
        l.hb.readAtPing = l.bytesRead()
        l.ws.ping()
      }
    }
    // Immediates run after the poll phase: a pong that waited in the kernel's buffer is read.
    if (suspects.length > 0)
      setImmediate(() => {
        for (const l of suspects) if (!this.closed && this.judge(l, now) === 'dead') l.cut()
      })
  }

  /**
   * A link's state at a heartbeat: `dead` when its last ping is unanswered, no byte was read
   * from the peer since, and time enough passed to send what was queued ahead of the ping at
   * `MIN_PEER_BYTES_PER_MS`; `waiting` while such a ping may still be answered (or the socket
   * is no longer open); `alive` otherwise, and due a new ping.
   */
  private judge(l: Beating, now: number): 'alive' | 'waiting' | 'dead' {
    const { ws, hb } = l
    if (ws.readyState !== WebSocket.OPEN) return 'waiting'
    if (hb.pingAt === undefined || l.bytesRead() !== hb.readAtPing) return 'alive'
    return now - hb.pingAt >= hb.aheadBytes / MIN_PEER_BYTES_PER_MS ? 'dead' : 'waiting'
  }

  /** Attach to an HTTP server's upgrade event for path /v1/peer. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    if (!req.url?.startsWith('/v1/peer')) {
      socket.destroy()
      return
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.wss.emit('connection', ws, req))
  }

  send(endpoint: string, envelope: PeerEnvelopeWire): void {
    if (this.closed) return
    const frame = JSON.stringify({ envelope })
    if (!this.faults) {
      this.sendFrame(endpoint, frame)
      return
    }
    for (const f of this.faults.apply(frame)) {
      if (f.delayMs === 0) this.sendFrame(endpoint, f.frame)
      else setTimeout(() => this.sendFrame(endpoint, f.frame), f.delayMs).unref()
    }
  }

  private sendFrame(endpoint: string, frame: string): void {
    if (this.closed) return
    let c = this.conns.get(endpoint)
    if (!c) {
      c = {
        ws: undefined,
        beat: newHeartbeat(),
        pending: undefined,
        queue: [],
        queuedBytes: 0,
        retryAt: 0,
        unusable: false,
      }
      this.conns.set(endpoint, c)
    }
    if (c.ws?.readyState === WebSocket.OPEN) {
      if (c.ws.bufferedAmount + frame.length <= this.maxHeldBytes) c.ws.send(frame)
      return
    }
    if (c.unusable && this.now() < c.retryAt) return
    if (c.queue.length < MAX_QUEUE && c.queuedBytes + frame.length <= this.maxHeldBytes) {
      c.queue.push(frame)
      c.queuedBytes += frame.length
    }
    this.connect(endpoint, c)
  }

  private connect(endpoint: string, c: Conn): void {
    if (c.pending || this.closed || this.now() < c.retryAt) return
    const url = peerUrl(endpoint)
    let ws: WebSocket
    try {
      if (!url) throw new Error('not an http(s) or ws(s) URL without query or fragment')
      ws = new WebSocket(url, {
        maxPayload: LIMITS.maxPeerMessageBytes,
        generateMask: zeroMask,
        handshakeTimeout: this.handshakeTimeoutMs,
        ...(this.sourceAddress ? { localAddress: this.sourceAddress } : {}),
      })
    } catch (e) {
      // Nothing can reach it: its frames are dropped until it is tried again (the enclaves
      // resend what was lost, and a member no one reaches is challenged on-chain).
      c.unusable = true
      c.retryAt = this.now() + BAD_ENDPOINT_RETRY_MS
      c.queue = []
      c.queuedBytes = 0
      this.onUnusableEndpoint?.(endpoint, (e as Error).message)
      return
    }
    c.unusable = false
    c.pending = ws
    const beat = newHeartbeat()
    ws.on('open', () => {
      // INVARIANT: only the pending socket becomes the link; any other is closed, never left.
      if (c.pending !== ws || this.closed) return ws.terminate()
      c.pending = undefined
      if (c.ws && c.ws !== ws) c.ws.terminate()
      c.ws = ws
      c.beat = beat
      c.queuedBytes = 0
      for (const f of c.queue.splice(0)) ws.send(f)
    })
    // A socket's `close` can come long after its `error` (the closing handshake waits up to
    // 30 s), when another socket is connecting or open: it may reset only its own state.
    const fail = () => {
      if (c.pending === ws) c.pending = undefined
      else if (c.ws === ws) c.ws = undefined
      else return
      c.retryAt = this.now() + this.reconnectDelayMs
    }
    ws.on('error', fail)
    ws.on('close', fail)
    ws.on('pong', () => {
      beat.pingAt = undefined
    })
    ws.on('message', () => undefined)
  }

  /**
   * Closes the links to every endpoint not in `endpoints` and forgets them (frames still queued
   * for them are dropped): an operator that changed its endpoint leaves no link to the old one.
   * Call it with the endpoints of every operator known whenever one of them changes; a later
   * frame to a forgotten endpoint opens a new link as usual.
   *
   * @example
   * peers.retainEndpoints(endpointByOperator.values())
   */
  retainEndpoints(endpoints: Iterable<string>): void {
    const keep = new Set(endpoints)
    for (const [endpoint, c] of this.conns) {
      if (keep.has(endpoint)) continue
      this.conns.delete(endpoint)
      c.pending?.terminate()
      c.ws?.terminate()
    }
  }

  /** Closes every link, inbound and outbound, including connections still opening. */
  async close(): Promise<void> {
    this.closed = true
    clearInterval(this.heartbeat)
    for (const c of this.conns.values()) {
      c.pending?.terminate()
      c.ws?.terminate()
    }
    for (const ws of this.wss.clients) ws.terminate()
    this.inbound.clear()
    await new Promise<void>((r) => this.wss.close(() => r()))
  }
}
