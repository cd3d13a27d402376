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
