/**
 * The SDK's end of the users' WebSocket API (`src/protocol/apiSocket.ts`): one connection per
 * operator endpoint, shared by every client in the process (as the HTTP keep-alive agent is),
 * requests numbered per connection and the requests of one event-loop turn sent as one frame.
 * Errors match the HTTP transport's: an operator's rejection keeps its code, an unanswered
 * request fails with TIMEOUT, a lost connection with UNAVAILABLE. A connection that cannot be
 * opened (an operator without the WebSocket API, or one that is down) throws
 * `SocketUnavailableError`, and the caller sends the request over HTTP instead.
 */
import WebSocket from 'ws'
import {
  API_SOCKET_LIMITS,
  API_SOCKET_PATH,
  type ApiRequest,
  type ApiRequestKind,
  decodeApiAnswers,
  encodeApiRequests,
  frameBytes,
  frameRuns,
  ProtocolError,
  requestRecordBytes,
  zeroMask,
} from '../protocol/index.ts'
import { PoseRequestError } from './errors.ts'

/** The connection never opened: nothing was sent on it. */
export class SocketUnavailableError extends Error {
  override name = 'SocketUnavailableError'
}

type Pending = {
  resolve: (sealed: Uint8Array) => void
  reject: (e: Error) => void
  /** When it fails with TIMEOUT (`performance.now()` time) unless answered. */
  deadline: number
  timeoutMs: number
}

class ApiSocket {
  private readonly ws: WebSocket
  private opened = false
  private closed = false
  private tcp: { ref(): unknown; unref(): unknown } | undefined
  private readonly pending = new Map<number, Pending>()
  private queue: ApiRequest[] = []
  private flushing = false
  private nextId = 1
  /**
   * One timer for the connection's requests, at the earliest deadline it knew of when set: a
   * request costs no timer of its own to set and clear (thousands a second under load).
   */
  private sweepTimer: NodeJS.Timeout | undefined
  private sweepAt = Number.POSITIVE_INFINITY

  constructor(
    private readonly endpoint: string,
    private readonly onGone: () => void,
    handshakeTimeoutMs: number,
  ) {
    const url = `${endpoint.replace(/^http/, 'ws').replace(/\/+$/, '')}${API_SOCKET_PATH}`
    this.ws = new WebSocket(url, {
      perMessageDeflate: false,
      maxPayload: API_SOCKET_LIMITS.maxAnswerFrameBytes,
      generateMask: zeroMask,
      // An upgrade never answered fails the connection, and its requests go over HTTP.
      handshakeTimeout: handshakeTimeoutMs,
    })
    this.ws.on('upgrade', (res) => {
      this.tcp = res.socket
    })
    this.ws.on('open', () => {
      this.opened = true
      this.flush()
    })
    this.ws.on('message', (data, isBinary) => this.onFrame(data, isBinary))
    this.ws.on('error', (e) => this.fail(e))
    this.ws.on('close', () => this.fail(new Error('the connection closed')))
  }

  request(
    kind: ApiRequestKind,
    instance: bigint,
    box: Uint8Array,
    timeoutMs: number,
  ): Promise<Uint8Array> {
    if (this.closed) return Promise.reject(new SocketUnavailableError('connection closed'))
    return new Promise<Uint8Array>((resolve, reject) => {
      const id = this.nextId
      this.nextId = this.nextId >= 0xffff_ffff ? 1 : this.nextId + 1
      const deadline = performance.now() + timeoutMs
      this.pending.set(id, { resolve, reject, deadline, timeoutMs })
      this.sweepBy(deadline)
      this.tcp?.ref()
      this.queue.push({ kind, id, instance, box })
      if (this.opened && !this.flushing) {
        this.flushing = true
        setImmediate(() => this.flush())
      }
    })
  }

  /** Makes sure the sweep runs by `deadline`. */
  private sweepBy(deadline: number): void {
    if (this.sweepTimer !== undefined && this.sweepAt <= deadline) return
    clearTimeout(this.sweepTimer)
    this.sweepAt = deadline
    this.sweepTimer = setTimeout(() => this.sweep(), Math.max(0, deadline - performance.now()))
  }

  /** Fails the requests past their deadline with TIMEOUT; sets the timer for the next one. */
  private sweep(): void {
    this.sweepTimer = undefined
    this.sweepAt = Number.POSITIVE_INFINITY
    const now = performance.now()
    let next = Number.POSITIVE_INFINITY
    const late: Pending[] = []
    for (const [id, p] of this.pending) {
      if (p.deadline <= now) {
        this.pending.delete(id)
        late.push(p)
      } else if (p.deadline < next) next = p.deadline
    }
    if (next !== Number.POSITIVE_INFINITY) this.sweepBy(next)
    if (late.length === 0) return
    this.idle()
    // A connection still waiting for its handshake with nothing left to send is dropped: a
    // stopped host would otherwise hold it (and the process) open.
    if (!this.opened && this.pending.size === 0) this.fail(new Error('no handshake in time'))
    for (const p of late) {
      p.reject(
        new PoseRequestError(
          `Operator at ${this.endpoint} did not answer within ${p.timeoutMs} ms`,
          { code: 'TIMEOUT' },
        ),
      )
    }
  }

  private flush(): void {
    this.flushing = false
    if (!this.opened || this.closed) return
    // Requests that timed out while the connection opened are not sent.
    const queue = this.queue.filter((q) => this.pending.has(q.id))
    this.queue = []
    for (const run of frameRuns(queue, requestRecordBytes)) this.ws.send(encodeApiRequests(run))
  }

  private onFrame(data: WebSocket.RawData, isBinary: boolean): void {
    let answers: ReturnType<typeof decodeApiAnswers>
    try {
      if (!isBinary) throw new ProtocolError('MALFORMED', 'api answer frame: text frame')
      answers = decodeApiAnswers(frameBytes(data))
    } catch (e) {
      // An operator that sends what no operator sends: nothing on this connection is trusted,
      // and its requests' fate is unknown, as when the connection is lost (UNAVAILABLE: the
      // failover may send them again, idempotent, or challenge the executor).
      this.fail(
        new PoseRequestError(`Operator at ${this.endpoint} sent an unreadable answer frame`, {
          code: 'UNAVAILABLE',
          details: e instanceof Error ? e.message : String(e),
        }),
      )
      return
    }
    for (const a of answers) {
      const p = this.pending.get(a.id)
      if (!p) continue // answered after its timeout, or an error about a frame (id 0)
      this.pending.delete(a.id)
      if (a.kind === 'sealed') p.resolve(a.sealed)
      else p.reject(PoseRequestError.fromObject(a.error))
    }
    this.idle()
  }

  /** Lets the process exit while nothing waits on this connection. */
  private idle(): void {
    if (this.pending.size > 0) return
    this.tcp?.unref()
    clearTimeout(this.sweepTimer)
    this.sweepTimer = undefined
    this.sweepAt = Number.POSITIVE_INFINITY
  }

  private fail(cause: Error): void {
    if (!this.closed) {
      this.closed = true
      this.onGone()
      this.ws.terminate()
    }
    const error =
      cause instanceof PoseRequestError
        ? cause
        : !this.opened
          ? new SocketUnavailableError(cause.message)
          : new PoseRequestError(`Operator at ${this.endpoint} is unreachable`, {
              code: 'UNAVAILABLE',
              details: cause.message,
              cause,
            })
    const pending = [...this.pending.values()]
    this.pending.clear()
    this.idle()
    for (const p of pending) p.reject(error)
    this.queue = []
  }
}

const sockets = new Map<string, ApiSocket>()
/**
 * How long the WebSocket upgrade of a new connection to an operator may take: 10 s, or half the
 * first request's timeout when that is shorter, so that a host whose upgrade never answers
 * leaves the request time to go over HTTP (a TIMEOUT instead could have the client challenge an
 * executor that answers HTTP).
 */
const HANDSHAKE_TIMEOUT_MS = 10_000

/**
 * Sends a transaction or view box to the operator at `endpoint` over its WebSocket API; resolves
 * with the sealed answer.
 */
export function socketRequest(
  endpoint: string,
  kind: ApiRequestKind,
  instance: bigint,
  box: Uint8Array,
  timeoutMs: number,
  /** How long a new connection's upgrade may take (the first request to an endpoint sets it). */
  handshakeTimeoutMs = Math.min(HANDSHAKE_TIMEOUT_MS, Math.max(1, Math.floor(timeoutMs / 2))),
): Promise<Uint8Array> {
  let s = sockets.get(endpoint)
  if (!s) {
    let created: ApiSocket
    try {
      created = new ApiSocket(
        endpoint,
        () => {
          if (sockets.get(endpoint) === created) sockets.delete(endpoint)
        },
        handshakeTimeoutMs,
      )
    } catch (e) {
      // Not a URL a WebSocket can open (an operator registered something else): the HTTP
      // transport refuses it with its own typed error.
      return Promise.reject(new SocketUnavailableError(e instanceof Error ? e.message : String(e)))
    }
    s = created
    sockets.set(endpoint, s)
  }
  return s.request(kind, instance, box, timeoutMs)
}
