/**
 * Requests to operator nodes: JSON over HTTP, and transactions and view calls over the
 * operators' WebSocket API (`socketTransport.ts`); error bodies become PoseRequestError with
 * their code.
 * HTTP requests go through node:http(s) with one keep-alive agent per scheme: with one request
 * per transaction it costs a fraction of `fetch`'s CPU per round trip (bench/README.md, "client
 * transport").
 */
import { AnswerTimeoutError, httpExchange, keepAliveAgents } from '../chain/fetch.ts'
import { bytesToHex, type Hex, hexToBytes, LIMITS } from '../protocol/index.ts'
import { PoseRequestError } from './errors.ts'
import { SocketUnavailableError, socketRequest } from './socketTransport.ts'

const agents = keepAliveAgents(256)
/** The largest answer body a client reads (an operator's answers are far smaller). */
const MAX_RESPONSE_BYTES = LIMITS.maxPeerMessageBytes

export async function postJson<T>(url: string, body: unknown, timeoutMs = 60_000): Promise<T> {
  return request<T>(url, 'POST', JSON.stringify(body), timeoutMs)
}

export async function getJson<T>(url: string, timeoutMs = 10_000): Promise<T> {
  return request<T>(url, 'GET', undefined, timeoutMs)
}

/** One request; resolves with the status and the body text, rejects on a transport failure. */
async function send(
  url: URL,
  method: 'GET' | 'POST',
  body: string | undefined,
  timeoutMs: number,
): Promise<{ status: number; text: string }> {
  const headers: Record<string, string | number> = { accept: 'application/json' }
  if (body !== undefined) {
    headers['content-type'] = 'application/json'
    headers['content-length'] = Buffer.byteLength(body)
  }
  const res = await httpExchange(url, {
    agents,
    method,
    headers,
    body,
    timeoutMs,
    maxBytes: MAX_RESPONSE_BYTES,
  })
  return { status: res.status, text: res.body.toString('utf8') }
}

async function request<T>(
  url: string,
  method: 'GET' | 'POST',
  body: string | undefined,
  timeoutMs: number,
): Promise<T> {
  let target: URL
  try {
    target = new URL(url)
  } catch (cause) {
    // An endpoint is whatever its operator registered on-chain (the manager checks only its
    // length): one that is no URL cannot be reached.
    throw new PoseRequestError(`Operator endpoint ${JSON.stringify(url.slice(0, 300))} is no URL`, {
      code: 'UNAVAILABLE',
      cause,
    })
  }
  let res: { status: number; text: string }
  try {
    res = await send(target, method, body, timeoutMs)
  } catch (cause) {
    // Connected but unanswered: the host is up and silent (withholding, or stopped), which
    // the SDK's failover treats like an operator's own TIMEOUT answer.
    if (cause instanceof AnswerTimeoutError) {
      throw new PoseRequestError(
        `Operator at ${target.origin} did not answer within ${cause.timeoutMs} ms`,
        { code: 'TIMEOUT', cause },
      )
    }
    throw new PoseRequestError(`Operator at ${target.origin} is unreachable`, {
      details: cause instanceof Error ? cause.message : String(cause),
      code: 'UNAVAILABLE',
      cause,
    })
  }
  // Every answer of an operator is a JSON object. Anything else (a proxy's error page, say) is
  // no answer: the request's fate is unknown, as when the connection is lost, so it is
  // UNAVAILABLE and the failover may send it again (idempotent) or challenge the executor.
  let json: unknown
  try {
    json = JSON.parse(res.text)
  } catch {
    json = undefined
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new PoseRequestError(
      `Operator at ${target.origin} answered ${res.status} with no JSON object`,
      {
        code: 'UNAVAILABLE',
      },
    )
  }
  if (res.status < 200 || res.status > 299) {
    throw PoseRequestError.fromObject((json as { error?: unknown }).error)
  }
  return json as T
}

/** Codes an operator answers while it has not caught up with the chain yet: safe to retry. */
const CATCHING_UP = new Set(['NOT_READY', 'WRONG_PHASE', 'UNKNOWN_INSTANCE'])

/** Catching up, or the connection failed: for requests that are idempotent at one operator. */
export const RETRY_UNAVAILABLE = new Set([...CATCHING_UP, 'UNAVAILABLE', 'TIMEOUT'])

/**
 * How long a request to an operator may go unanswered (default of the SDK's `requestTimeoutMs`):
 * above the 30 s within which an operator answers TIMEOUT itself when its enclave is slow.
 */
export const DEFAULT_REQUEST_TIMEOUT_MS = 35_000

/** Default of the SDK's `hostProbeMs`: how often, and how long, a pending request's host is checked. */
export const DEFAULT_HOST_PROBE_MS = 2_000

/**
 * Posts a request the enclave refuses before acting on it while its operator lags the chain
 * (e.g. right after activation); retries those refusals (or the codes in `retry`) for up to
 * `waitMs`. Each attempt may go unanswered for `timeoutMs` (then it fails with TIMEOUT).
 */
export function postWhenReady<T>(
  url: string,
  body: unknown,
  o: { waitMs?: number; retry?: ReadonlySet<string>; timeoutMs?: number } = {},
): Promise<T> {
  return whenReady(() => postJson<T>(url, body, o.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS), o)
}

/** How the SDK sends transactions and view calls to an executor. */
export type ApiTransport = 'ws' | 'http'

/** Endpoints whose WebSocket API could not be opened, until when (ms) HTTP is used instead. */
const httpOnly = new Map<string, number>()
const HTTP_ONLY_MS = 60_000

/**
 * Sends a transaction or view box to the operator at `endpoint` and returns the sealed answer;
 * refusals while the operator catches up are retried as in `postWhenReady`. Over `ws`, the
 * operator's WebSocket API; an operator whose WebSocket cannot be opened is sent the request
 * over HTTP (and, when it answers there, gets HTTP for the next minute).
 */
export function requestSealed(
  endpoint: string,
  kind: 'tx' | 'view',
  instance: bigint,
  box: Uint8Array,
  o: { transport: ApiTransport; timeoutMs?: number; waitMs?: number },
): Promise<Uint8Array> {
  const timeoutMs = o.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS
  // Refused here, before any I/O: over the WebSocket API a frame past the operator's limit ends
  // the connection, and with it every request pending on it.
  if (box.length > LIMITS.maxTxBoxBytes)
    return Promise.reject(
      new PoseRequestError(`${kind} box: ${box.length} bytes, more than ${LIMITS.maxTxBoxBytes}`, {
        code: 'OVERSIZED',
      }),
    )
  const http = async () =>
    hexToBytes(
      (
        await postJson<{ sealed: Hex }>(
          `${endpoint}/v1/instances/${instance}/${kind}`,
          { box: bytesToHex(box) },
          timeoutMs,
        )
      ).sealed,
      'sealed',
    )
  return whenReady(async () => {
    if (o.transport === 'http' || (httpOnly.get(endpoint) ?? 0) > Date.now()) return http()
    try {
      return await socketRequest(endpoint, kind, instance, box, timeoutMs)
    } catch (e) {
      if (!(e instanceof SocketUnavailableError)) throw e
      const sealed = await http()
      // Up, answering over HTTP, without the WebSocket API: not tried again for a while.
      httpOnly.set(endpoint, Date.now() + HTTP_ONLY_MS)
      return sealed
    }
  }, o)
}

async function whenReady<T>(
  attempt: () => Promise<T>,
  o: { waitMs?: number; retry?: ReadonlySet<string> },
): Promise<T> {
  const retry = o.retry ?? CATCHING_UP
  const deadline = Date.now() + (o.waitMs ?? 10_000)
  for (let delay = 50; ; delay = Math.min(delay * 2, 500)) {
    try {
      return await attempt()
    } catch (e) {
      if (!(e instanceof PoseRequestError) || !retry.has(e.code) || Date.now() + delay > deadline)
        throw e
      await new Promise((r) => setTimeout(r, delay))
    }
  }
}
