/** JSON over HTTP to operator nodes; error bodies become PoseRequestError with their code. */
import { ProtocolError } from '../protocol/index.ts'
import { PoseRequestError } from './errors.ts'

export async function postJson<T>(url: string, body: unknown, timeoutMs = 60_000): Promise<T> {
  return request<T>(
    url,
    { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) },
    timeoutMs,
  )
}

export async function getJson<T>(url: string, timeoutMs = 10_000): Promise<T> {
  return request<T>(url, { method: 'GET' }, timeoutMs)
}

async function request<T>(url: string, init: RequestInit, timeoutMs: number): Promise<T> {
  let res: Response
  try {
    res = await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) })
  } catch (cause) {
    throw new PoseRequestError(`Operator at ${new URL(url).origin} is unreachable`, {
      details: cause instanceof Error ? cause.message : String(cause),
      code: 'UNAVAILABLE',
      cause,
    })
  }
  const text = await res.text()
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    throw new PoseRequestError(`Operator answered ${res.status} with a non-JSON body`, {
      code: 'MALFORMED',
    })
  }
  if (!res.ok) {
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
