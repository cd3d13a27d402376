/**
 * The operator's end of the users' WebSocket API (`src/protocol/apiSocket.ts`): requests go to
 * the same backend as the HTTP API's, answers and errors go back by request id, and the answers
 * ready in one event-loop turn leave as one frame. A frame that cannot be read is answered with
 * an error (id 0) and dropped; the connection stays open. A connection may have
 * `API_SOCKET_LIMITS.maxInFlight` requests unanswered; more are refused with UNAVAILABLE. A
 * connection that does not read its answers is not read either once
 * `API_SOCKET_LIMITS.maxUnsentAnswerBytes` of them wait to be sent, until half have left: its
 * requests wait in TCP's buffers, nothing is dropped, and the operator's memory stays bounded.
 */
import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import WebSocket, { WebSocketServer } from 'ws'
import {
  API_SOCKET_LIMITS,
  type ApiAnswer,
  answerRecordBytes,
  decodeApiRequests,
  encodeApiAnswers,
  frameBytes,
  frameRuns,
  ProtocolError,
} from '../protocol/index.ts'
import { type ApiBackend, publicError } from './api.ts'

export class ApiSockets {
  private readonly wss = new WebSocketServer({
    noServer: true,
    maxPayload: API_SOCKET_LIMITS.maxFrameBytes,
    perMessageDeflate: false,
  })

  constructor(
    private readonly request: ApiBackend['request'],
    /** A host-side error a client was told only was internal (see `publicError`). */
    private readonly internalError?: (e: unknown) => void,
  ) {
    this.wss.on('connection', (ws) => this.serve(ws))
  }

  /** Open connections. */
  get connections(): number {
    return this.wss.clients.size
  }

  /** Takes over an upgrade to `API_SOCKET_PATH`. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.wss.handleUpgrade(req, socket, head, (ws) => this.wss.emit('connection', ws, req))
  }

  private serve(ws: WebSocket): void {
    let inFlight = 0
    let out: ApiAnswer[] = []
    let flushing = false
    /** Reading paused while the answers not yet sent exceed the limit. */
    let held = false
    const cap = API_SOCKET_LIMITS.maxUnsentAnswerBytes
    // Called as each frame leaves for the kernel: a client that reads again lets them leave.
    const sent = () => {
      if (held && ws.bufferedAmount <= cap / 2) {
        held = false
        ws.resume()
      }
    }
    const flush = () => {
      flushing = false
      const answers = out
      out = []
      if (ws.readyState !== WebSocket.OPEN) return
      for (const run of frameRuns(answers, answerRecordBytes)) ws.send(encodeApiAnswers(run), sent)
      if (!held && ws.bufferedAmount > cap) {
        held = true
        ws.pause()
      }
    }
    const answer = (a: ApiAnswer) => {
      out.push(a)
      if (!flushing) {
        flushing = true
        setImmediate(flush)
      }
    }
    const reject = (id: number, e: unknown) =>
      answer({ kind: 'error', id, error: publicError(e, this.internalError).toObject() })

    ws.on('message', (data, isBinary) => {
      if (!isBinary)
        return reject(0, new ProtocolError('MALFORMED', 'ws: text frames are not accepted'))
      let decoded: ReturnType<typeof decodeApiRequests>
      try {
        decoded = decodeApiRequests(frameBytes(data))
      } catch (e) {
        return reject(0, e)
      }
      for (const { id, error } of decoded.rejected) reject(id, error)
      for (const q of decoded.requests) {
        if (inFlight >= API_SOCKET_LIMITS.maxInFlight) {
          reject(
            q.id,
            new ProtocolError(
              'UNAVAILABLE',
              `ws: more than ${API_SOCKET_LIMITS.maxInFlight} requests in flight on this connection`,
            ),
          )
          continue
        }
        inFlight++
        // One promise per request (the backend's): this runs for every transaction.
        let answered: Promise<Uint8Array>
        try {
          answered = this.request(q.kind, q.instance, q.box)
        } catch (e) {
          answered = Promise.reject(e)
        }
        answered.then(
          (sealed) => {
            inFlight--
            answer({ kind: 'sealed', id: q.id, sealed })
          },
          (e) => {
            inFlight--
            reject(q.id, e)
          },
        )
      }
    })
    ws.on('error', () => ws.terminate())
  }

  async close(): Promise<void> {
    for (const ws of this.wss.clients) ws.terminate()
    await new Promise<void>((r) => this.wss.close(() => r()))
  }
}
