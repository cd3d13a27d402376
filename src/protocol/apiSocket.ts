/**
 * The users' WebSocket API (SPEC §2: user ──HTTP/WS──► operator node), at `/v1/ws` on the
 * operator's HTTP port: transactions and view calls as binary frames on one long-lived
 * connection, many in flight at once, answered in any order by request id. It carries the same
 * boxes and sealed answers as `POST /v1/instances/:id/{tx,view}`, without a request line,
 * headers and hex per call, and a side batches the records of one event-loop turn into one
 * frame (a released batch of receipts leaves as one write).
 *
 * A frame is `version u8 (1) | count u32 | count records`. A request record is
 * `kind u8 (1 tx, 2 view) | id u32 | instance (32-byte big-endian) | box (u32 length, bytes)`;
 * an answer record is `kind u8 (0x81 sealed answer, 0x82 error) | id u32 | payload (u32 length,
 * bytes)`, where an error's payload is the UTF-8 JSON of the error object the HTTP API sends
 * (`{ name, code, message, details? }`). An error about a frame that could not be read carries
 * id 0 (clients number their requests from 1).
 */
import { ByteReader, ByteWriter } from './binary.ts'
import { concatBytes, uintToWord, utf8, wordToUint } from './bytes.ts'
import { type ErrorObject, ProtocolError } from './errors.ts'
import { LIMITS } from './limits.ts'

export const API_SOCKET_PATH = '/v1/ws'
const VERSION = 1

export const API_SOCKET_LIMITS = {
  /** Records in one frame. */
  maxRecords: 1024,
  /** Bytes of one request frame (the SDK splits larger batches). */
  maxFrameBytes: 4 * 1024 * 1024,
  /** Bytes of one answer frame: one view result may be this large, as over HTTP. */
  maxAnswerFrameBytes: LIMITS.maxPeerMessageBytes,
  /** Bytes of records a side puts in one frame before it starts another. */
  splitFrameBytes: 1024 * 1024,
  /** Requests one connection may have unanswered at an operator. */
  maxInFlight: LIMITS.maxQueuedTxs,
  /**
   * Bytes of answers an operator holds for a connection that does not read them: past it the
   * operator stops reading that connection's requests until half of them have left.
   */
  maxUnsentAnswerBytes: 16 * 1024 * 1024,
} as const

/**
 * `generateMask` for the WebSocket clients of the SDK and the operators: a zero mask, which `ws`
 * neither applies when sending (no copy of the payload to mask) nor when receiving. RFC 6455
 * masks client frames so that script in a browser cannot choose the bytes an intermediary
 * sees; these clients are Node processes sending boxes, sealed updates and signed envelopes,
 * and every frame stays valid (mask bit set, key 0).
 */
export function zeroMask(mask: Uint8Array): void {
  mask.fill(0)
}

export type ApiRequestKind = 'tx' | 'view'
export type ApiRequest = { kind: ApiRequestKind; id: number; instance: bigint; box: Uint8Array }
export type ApiAnswer =
  | { kind: 'sealed'; id: number; sealed: Uint8Array }
  | { kind: 'error'; id: number; error: ErrorObject }

const REQUEST_CODES: Record<ApiRequestKind, number> = { tx: 1, view: 2 }
const SEALED = 0x81
const ERROR = 0x82
const RECORD_OVERHEAD = 1 + 4 + 32 + 4

/** Bytes a request adds to a frame. */
export const requestRecordBytes = (r: ApiRequest): number => RECORD_OVERHEAD + r.box.length
/** Bytes an answer adds to a frame (an error's JSON is small). */
export const answerRecordBytes = (a: ApiAnswer): number =>
  9 + (a.kind === 'sealed' ? a.sealed.length : 256)

/**
 * `items` cut into runs of at most `maxRecords` and about `splitFrameBytes` each (a single
 * larger item makes a run of its own): the records of one frame each.
 */
export function frameRuns<T>(items: readonly T[], bytes: (item: T) => number): T[][] {
  const runs: T[][] = []
  let run: T[] = []
  let size = 0
  for (const item of items) {
    const n = bytes(item)
    if (
      run.length > 0 &&
      (run.length >= API_SOCKET_LIMITS.maxRecords || size + n > API_SOCKET_LIMITS.splitFrameBytes)
    ) {
      runs.push(run)
      run = []
      size = 0
    }
    run.push(item)
    size += n
  }
  if (run.length > 0) runs.push(run)
  return runs
}

function header(what: string, count: number): ByteWriter {
  if (count < 1 || count > API_SOCKET_LIMITS.maxRecords)
    throw new ProtocolError(
      'OUT_OF_RANGE',
      `${what}: ${count} records (1 to ${API_SOCKET_LIMITS.maxRecords})`,
    )
  return new ByteWriter(what, 512).u8(VERSION).u32(count)
}

function readHeader(
  frame: Uint8Array,
  what: string,
  maxBytes: number,
): { r: ByteReader; count: number } {
  if (frame.length > maxBytes)
    throw new ProtocolError('OVERSIZED', `${what}: ${frame.length} bytes (at most ${maxBytes})`)
  const r = new ByteReader(frame, what)
  const version = r.u8('version')
  if (version !== VERSION)
    throw new ProtocolError('MALFORMED', `${what}: version ${version} (expected ${VERSION})`)
  const count = r.count('count', API_SOCKET_LIMITS.maxRecords)
  if (count === 0) throw new ProtocolError('MALFORMED', `${what}: no records`)
  return { r, count }
}

/**
 * A received frame (one buffer, an ArrayBuffer or fragments) as a plain Uint8Array over the
 * same memory. The boxes and answers read from it are views of it: each frame is a buffer of its
 * own that nothing writes to after it arrived, and a copy of a box or an answer (more than 64
 * bytes) would get a backing store of its own, which costs ≈ 1–3.5 µs to allocate and more to
 * free at the next scavenge than the copy itself.
 */
export function frameBytes(data: Uint8Array | ArrayBuffer | readonly Uint8Array[]): Uint8Array {
  if (data instanceof ArrayBuffer) return new Uint8Array(data)
  if (data instanceof Uint8Array) return new Uint8Array(data.buffer, data.byteOffset, data.length)
  return concatBytes(...data)
}

export function encodeApiRequests(requests: readonly ApiRequest[]): Uint8Array {
  const w = header('api request frame', requests.length)
  for (const q of requests) {
    w.u8(REQUEST_CODES[q.kind]).u32(q.id)
    w.raw(uintToWord(q.instance, 'instance')).bytes(q.box)
  }
  return w.finish()
}

/**
 * The requests of a frame, each checked on its own: a record with an unknown kind, a zero
 * instance or an oversized box becomes a rejection naming its id; a frame that cannot be read
 * to the end throws (MALFORMED or OVERSIZED), and nothing in it is acted on.
 */
export function decodeApiRequests(frame: Uint8Array): {
  requests: ApiRequest[]
  rejected: Array<{ id: number; error: ProtocolError }>
} {
  const { r, count } = readHeader(frame, 'api request frame', API_SOCKET_LIMITS.maxFrameBytes)
  const requests: ApiRequest[] = []
  const rejected: Array<{ id: number; error: ProtocolError }> = []
  for (let i = 0; i < count; i++) {
    const code = r.u8(`records[${i}].kind`)
    const id = r.u32(`records[${i}].id`)
    const instance = wordToUint(r.fixed(32, `records[${i}].instance`))
    const box = r.bytesView(`records[${i}].box`)
    const kind = code === 1 ? 'tx' : code === 2 ? 'view' : undefined
    if (id === 0) {
      // Answers with id 0 are about a whole frame; a request's answer must not look like one.
      rejected.push({
        id,
        error: new ProtocolError('MALFORMED', 'request 0: ids start at 1 (0 names a frame)'),
      })
    } else if (!kind) {
      rejected.push({ id, error: new ProtocolError('MALFORMED', `request ${id}: kind ${code}`) })
    } else if (instance === 0n) {
      rejected.push({
        id,
        error: new ProtocolError('MALFORMED', `request ${id}: instance must be positive`),
      })
    } else if (box.length > LIMITS.maxTxBoxBytes) {
      rejected.push({
        id,
        error: new ProtocolError(
          'OVERSIZED',
          `request ${id}: box larger than ${LIMITS.maxTxBoxBytes} bytes`,
        ),
      })
    } else requests.push({ kind, id, instance, box })
  }
  r.end()
  return { requests, rejected }
}

export function encodeApiAnswers(answers: readonly ApiAnswer[]): Uint8Array {
  const w = header('api answer frame', answers.length)
  for (const a of answers) {
    if (a.kind === 'sealed') w.u8(SEALED).u32(a.id).bytes(a.sealed)
    else
      w.u8(ERROR)
        .u32(a.id)
        .bytes(utf8(JSON.stringify(a.error)))
  }
  return w.finish()
}

export function decodeApiAnswers(frame: Uint8Array): ApiAnswer[] {
  const { r, count } = readHeader(frame, 'api answer frame', API_SOCKET_LIMITS.maxAnswerFrameBytes)
  const answers: ApiAnswer[] = []
  for (let i = 0; i < count; i++) {
    const code = r.u8(`records[${i}].kind`)
    const id = r.u32(`records[${i}].id`)
    const payload = r.bytesView(`records[${i}].payload`)
    if (code === SEALED) answers.push({ kind: 'sealed', id, sealed: payload })
    else if (code === ERROR) {
      let error: unknown
      try {
        error = JSON.parse(new TextDecoder().decode(payload))
      } catch {
        throw new ProtocolError('MALFORMED', `api answer frame.records[${i}]: error is not JSON`)
      }
      answers.push({ kind: 'error', id, error: ProtocolError.fromObject(error).toObject() })
    } else
      throw new ProtocolError('MALFORMED', `api answer frame.records[${i}].kind: ${code} unknown`)
  }
  r.end()
  return answers
}
