/**
 * Peer messaging between operators (SPEC §2, §7): enclave envelopes relayed over WebSockets.
 * Operators cannot read or forge envelopes; they only deliver them. Outbound connections are
 * re-opened on failure and queue a bounded number of messages meanwhile; lost messages are
 * covered by the enclaves' resend timers.
 */

import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import WebSocket, { WebSocketServer } from 'ws'
import type { PeerEnvelopeWire } from '../protocol/index.ts'
import { LIMITS, zeroMask } from '../protocol/index.ts'
import type { LinkFaults } from './faults.ts'

const MAX_QUEUE = 10_000

type Conn = { ws: WebSocket | undefined; queue: string[]; connecting: boolean; retryAt: number }

export class PeerNetwork {
  private conns = new Map<string, Conn>()
  private wss = new WebSocketServer({ noServer: true, maxPayload: LIMITS.maxPeerMessageBytes })
  private closed = false

  constructor(
    private readonly onEnvelope: (envelope: unknown) => void,
    private readonly onProtocolError: (reason: string) => void,
    /** Simulator only: drops, duplicates, delays and tampers with outbound frames. */
    private readonly faults?: LinkFaults,
    /** Local address outbound connections are made from (default: the system's choice). */
    private readonly sourceAddress?: string,
  ) {
    this.wss.on('connection', (ws) => {
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
        this.onEnvelope((msg as { envelope: unknown }).envelope)
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
      c = { ws: undefined, queue: [], connecting: false, retryAt: 0 }
      this.conns.set(endpoint, c)
    }
    if (c.ws?.readyState === WebSocket.OPEN) {
      c.ws.send(frame)
      return
    }
    if (c.queue.length < MAX_QUEUE) c.queue.push(frame)
    this.connect(endpoint, c)
  }

  private connect(endpoint: string, c: Conn): void {
    if (c.connecting || this.closed || Date.now() < c.retryAt) return
    c.connecting = true
    const url = `${endpoint.replace(/^http/, 'ws').replace(/\/$/, '')}/v1/peer`
    const ws = new WebSocket(url, {
      maxPayload: LIMITS.maxPeerMessageBytes,
      generateMask: zeroMask,
      ...(this.sourceAddress ? { localAddress: this.sourceAddress } : {}),
    })
    ws.on('open', () => {
      c.connecting = false
      c.ws = ws
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
