/**
 * JSON over HTTP to operator nodes; error bodies become PoseRequestError with their code.
 * Requests go through node:http(s) with one keep-alive agent per scheme: on this path (one
 * request per transaction) it costs a fraction of `fetch`'s CPU per round trip
 * (bench/README.md, "client transport").
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http'
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https'
import { LIMITS, ProtocolError } from '../protocol/index.ts'
import { PoseRequestError } from './errors.ts'

const agents = {
  http: new HttpAgent({ keepAlive: true, maxSockets: 256 }),
  https: new HttpsAgent({ keepAlive: true, maxSockets: 256 }),
}
/** The largest answer body a client reads (an operator's answers are far smaller). */
const MAX_RESPONSE_BYTES = LIMITS.maxPeerMessageBytes

export async function postJson<T>(url: string, body: unknown, timeoutMs = 60_000): Promise<T> {
  return request<T>(url, 'POST', JSON.stringify(body), timeoutMs)
}

export async function getJson<T>(url: string, timeoutMs = 10_000): Promise<T> {
  return request<T>(url, 'GET', undefined, timeoutMs)
}

/** One request; resolves with the status and the body text, rejects on a transport failure. */
function send(
  url: URL,
  method: 'GET' | 'POST',
  body: string | undefined,
  timeoutMs: number,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const https = url.protocol === 'https:'
    if (!https && url.protocol !== 'http:') {
      reject(new Error(`unsupported protocol ${url.protocol}`))
      return
    }
    const headers: Record<string, string | number> = { accept: 'application/json' }
    if (body !== undefined) {
      headers['content-type'] = 'application/json'
      headers['content-length'] = Buffer.byteLength(body)
    }
    const onResponse = (res: IncomingMessage) => {
      const chunks: Buffer[] = []
      let size = 0
      res.on('data', (c: Buffer) => {
        size += c.length
        if (size > MAX_RESPONSE_BYTES) {
          req.destroy(new Error(`answer larger than ${MAX_RESPONSE_BYTES} bytes`))
          return
        }
        chunks.push(c)
      })
      res.on('error', (e) => {
        clearTimeout(timer)
        reject(e)
      })
      res.on('end', () => {
        clearTimeout(timer)
        resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') })
      })
    }
    const options = { method, headers, agent: https ? agents.https : agents.http }
    const req = https
      ? httpsRequest(url, options, onResponse)
      : httpRequest(url, options, onResponse)
    const timer = setTimeout(
      () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)),
      timeoutMs,
    )
    // Like AbortSignal.timeout: the timer alone does not keep the process alive.
    timer.unref()
    req.on('error', (e) => {
      clearTimeout(timer)
      reject(e)
    })
    req.end(body)
  })
}

async function request<T>(
  url: string,
  method: 'GET' | 'POST',
  body: string | undefined,
  timeoutMs: number,
): Promise<T> {
  const target = new URL(url)
  let res: { status: number; text: string }
  try {
    res = await send(target, method, body, timeoutMs)
  } catch (cause) {
    throw new PoseRequestError(`Operator at ${target.origin} is unreachable`, {
      details: cause instanceof Error ? cause.message : String(cause),
      code: 'UNAVAILABLE',
      cause,
    })
  }
  let json: unknown
  try {
    json = JSON.parse(res.text)
  } catch {
    throw new PoseRequestError(`Operator answered ${res.status} with a non-JSON body`, {
      code: 'MALFORMED',
    })
  }
  if (res.status < 200 || res.status > 299) {
    const err = ProtocolError.fromObject((json as { error?: unknown }).error)
    throw new PoseRequestError(err.shortMessage, {
      code: err.code,
      ...(err.details ? { details: err.details } : {}),
    })
  }
  return json as T
}

/** Codes an operator answers while it has not caught up with the chain yet: safe to retry. */
const CATCHING_UP = new Set(['NOT_READY', 'WRONG_PHASE', 'UNKNOWN_INSTANCE'])

/** Catching up, or the connection failed: for requests that are idempotent at one operator. */
export const RETRY_UNAVAILABLE = new Set([...CATCHING_UP, 'UNAVAILABLE'])

/**
 * Posts a request the enclave refuses before acting on it while its operator lags the chain
 * (e.g. right after activation); retries those refusals (or the codes in `retry`) for up to
 * `waitMs`.
 */
export async function postWhenReady<T>(
  url: string,
  body: unknown,
  waitMs = 10_000,
  retry: ReadonlySet<string> = CATCHING_UP,
): Promise<T> {
  const deadline = Date.now() + waitMs
  for (let delay = 50; ; delay = Math.min(delay * 2, 500)) {
    try {
      return await postJson<T>(url, body)
    } catch (e) {
      if (!(e instanceof PoseRequestError) || !retry.has(e.code) || Date.now() + delay > deadline)
        throw e
      await new Promise((r) => setTimeout(r, delay))
    }
  }
}
