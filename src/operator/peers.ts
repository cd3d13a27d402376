/**
 * Peer messaging between operators (SPEC §2, §7): enclave envelopes relayed over WebSockets.
 * Operators cannot read or forge envelopes; they only deliver them. Outbound connections are
 * re-opened on failure and queue a bounded number of messages meanwhile; a link holds at most
 * `MAX_HELD_BYTES` of frames (queued, or buffered for a peer that does not read) and drops the
 * rest; an endpoint that is no usable URL is reported and its frames dropped for a minute. Lost
 * messages are covered by the enclaves' resend timers.
 */

import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import WebSocket, { WebSocketServer } from 'ws'
import type { PeerEnvelopeWire } from '../protocol/index.ts'
import { LIMITS, zeroMask } from '../protocol/index.ts'
import type { LinkFaults } from './faults.ts'

const MAX_QUEUE = 10_000
/** Inbound peer connections at once (one per operator this node shares a pool with). */
const MAX_INBOUND = 1024

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

export type PeerNetworkOptions = {
  /** Simulator only: drops, duplicates, delays and tampers with outbound frames. */
  faults?: LinkFaults | undefined
  /** Local address outbound connections are made from (default: the system's choice). */
  sourceAddress?: string | undefined
  /** A peer's endpoint cannot be connected to at all (retried after a minute). */
  onUnusableEndpoint?: ((endpoint: string, reason: string) => void) | undefined
  /** Bytes of frames one link holds (default `MAX_HELD_BYTES`). */
  maxHeldBytes?: number | undefined
}

type Conn = {
  ws: WebSocket | undefined
  queue: string[]
  queuedBytes: number
  connecting: boolean
  retryAt: number
  /** The endpoint is no usable URL: frames are dropped until `retryAt`. */
  unusable: boolean
}

export class PeerNetwork {
  private conns = new Map<string, Conn>()
  private wss = new WebSocketServer({ noServer: true, maxPayload: LIMITS.maxPeerMessageBytes })
  private closed = false
  private readonly faults: LinkFaults | undefined
  private readonly sourceAddress: string | undefined
  private readonly onUnusableEndpoint: ((endpoint: string, reason: string) => void) | undefined
  private readonly maxHeldBytes: number

  constructor(
    private readonly onEnvelope: (envelope: unknown) => void,
    private readonly onProtocolError: (reason: string) => void,
    opts: PeerNetworkOptions = {},
  ) {
    this.faults = opts.faults
    this.sourceAddress = opts.sourceAddress
    this.onUnusableEndpoint = opts.onUnusableEndpoint
    this.maxHeldBytes = opts.maxHeldBytes ?? MAX_HELD_BYTES
    this.wss.on('connection', (ws) => {
      if (this.wss.clients.size > MAX_INBOUND) {
        ws.terminate()
        return this.onProtocolError(`peer: more than ${MAX_INBOUND} inbound connections`)
      }
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
        this.onEnvelope(envelope)
      })
      ws.on('error', () => ws.terminate())
    })
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
        queue: [],
        queuedBytes: 0,
        connecting: false,
        retryAt: 0,
        unusable: false,
      }
      this.conns.set(endpoint, c)
    }
    if (c.ws?.readyState === WebSocket.OPEN) {
      if (c.ws.bufferedAmount + frame.length <= this.maxHeldBytes) c.ws.send(frame)
      return
    }
    if (c.unusable && Date.now() < c.retryAt) return
    if (c.queue.length < MAX_QUEUE && c.queuedBytes + frame.length <= this.maxHeldBytes) {
      c.queue.push(frame)
      c.queuedBytes += frame.length
    }
    this.connect(endpoint, c)
  }

  private connect(endpoint: string, c: Conn): void {
    if (c.connecting || this.closed || Date.now() < c.retryAt) return
    const url = peerUrl(endpoint)
    let ws: WebSocket
    try {
      if (!url) throw new Error('not an http(s) or ws(s) URL without query or fragment')
      ws = new WebSocket(url, {
        maxPayload: LIMITS.maxPeerMessageBytes,
        generateMask: zeroMask,
        ...(this.sourceAddress ? { localAddress: this.sourceAddress } : {}),
      })
    } catch (e) {
      // Nothing can reach it: its frames are dropped until it is tried again (the enclaves
      // resend what was lost, and a member no one reaches is challenged on-chain).
      c.unusable = true
      c.retryAt = Date.now() + BAD_ENDPOINT_RETRY_MS
      c.queue = []
      c.queuedBytes = 0
      this.onUnusableEndpoint?.(endpoint, (e as Error).message)
      return
    }
    c.unusable = false
    c.connecting = true
    ws.on('open', () => {
      c.connecting = false
      c.ws = ws
      c.queuedBytes = 0
      for (const f of c.queue.splice(0)) ws.send(f)
    })
    const fail = () => {
      c.connecting = false
      if (c.ws === ws) c.ws = undefined
      c.retryAt = Date.now() + 250
    }
    ws.on('error', fail)
    ws.on('close', fail)
    ws.on('message', () => undefined)
  }

  async close(): Promise<void> {
    this.closed = true
    for (const c of this.conns.values()) c.ws?.terminate()
    for (const ws of this.wss.clients) ws.terminate()
    await new Promise<void>((r) => this.wss.close(() => r()))
  }
}
