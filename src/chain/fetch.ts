/**
 * The `fetch` viem's HTTP transport uses for JSON-RPC (`http(url, { fetchFn: nodeFetch })`):
 * node:http(s) with keep-alive agents instead of the global (undici) `fetch`. Operators poll
 * the chain several times a second and clients read it on every view call; on these machines
 * one `eth_blockNumber` through viem costs ≈ 1.2–1.8 ms of CPU with the global fetch and
 * ≈ 0.45–0.6 ms with this one (bench/README.md, "chain RPC transport"). viem keeps its own
 * timeouts, retries, size limit and error classes: this only moves bytes and honours the
 * abort signal it is given. `httpExchange`, underneath it, also carries the SDK's requests to
 * operators (src/client/transport.ts).
 */
import {
  Agent as HttpAgent,
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
} from 'node:http'
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https'

/** Keep-alive agents for http: and https: URLs. */
export type KeepAliveAgents = { http: HttpAgent; https: HttpsAgent }

export function keepAliveAgents(maxSockets: number): KeepAliveAgents {
  return {
    http: new HttpAgent({ keepAlive: true, maxSockets }),
    https: new HttpsAgent({ keepAlive: true, maxSockets }),
  }
}

/** The server accepted the request but sent no complete answer within the time allowed. */
export class AnswerTimeoutError extends Error {
  override name = 'AnswerTimeoutError'
  constructor(readonly timeoutMs: number) {
    super(`no answer within ${timeoutMs} ms`)
  }
}

export type HttpExchange = {
  status: number
  statusMessage: string
  headers: IncomingHttpHeaders
  body: Buffer
}

/**
 * One request over node:http(s) and its whole answer. Rejects on a transport failure, when
 * `signal` aborts (with its reason), after `timeoutMs` (the timer alone keeps no process alive)
 * and once the answer exceeds `maxBytes`.
 */
export function httpExchange(
  url: URL,
  o: {
    agents: KeepAliveAgents
    method: string
    headers: Record<string, string | number>
    body?: string | undefined
    signal?: AbortSignal | undefined
    timeoutMs?: number | undefined
    maxBytes?: number | undefined
  },
): Promise<HttpExchange> {
  return new Promise<HttpExchange>((resolve, reject) => {
    const https = url.protocol === 'https:'
    if (!https && url.protocol !== 'http:') {
      reject(new Error(`unsupported protocol ${url.protocol}`))
      return
    }
    const { signal } = o
    if (signal?.aborted) {
      reject(abortReason(signal))
      return
    }
    let timer: NodeJS.Timeout | undefined
    const onAbort = () => req.destroy(abortReason(signal!) as Error)
    const done = () => {
      clearTimeout(timer)
      signal?.removeEventListener('abort', onAbort)
    }
    const onResponse = (res: IncomingMessage) => {
      const chunks: Buffer[] = []
      let size = 0
      res.on('data', (c: Buffer) => {
        size += c.length
        if (o.maxBytes !== undefined && size > o.maxBytes) {
          req.destroy(new Error(`answer larger than ${o.maxBytes} bytes`))
          return
        }
        chunks.push(c)
      })
      res.on('error', (e) => {
        done()
        reject(e)
      })
      res.on('end', () => {
        done()
        resolve({
          status: res.statusCode ?? 0,
          statusMessage: res.statusMessage ?? '',
          headers: res.headers,
          body: Buffer.concat(chunks),
        })
      })
    }
    const options = {
      method: o.method,
      headers: o.headers,
      agent: https ? o.agents.https : o.agents.http,
    }
    const req = https
      ? httpsRequest(url, options, onResponse)
      : httpRequest(url, options, onResponse)
    if (o.timeoutMs !== undefined) {
      const ms = o.timeoutMs
      timer = setTimeout(() => req.destroy(new AnswerTimeoutError(ms)), ms)
      timer.unref()
    }
    signal?.addEventListener('abort', onAbort, { once: true })
    req.on('error', (e) => {
      done()
      reject(e)
    })
    req.end(o.body)
  })
}

const agents = keepAliveAgents(64)

function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('This operation was aborted', 'AbortError')
}

function responseHeaders(raw: IncomingHttpHeaders): Headers {
  const headers = new Headers()
  for (const [name, value] of Object.entries(raw)) {
    if (value === undefined) continue
    for (const v of Array.isArray(value) ? value : [value]) headers.append(name, v)
  }
  return headers
}

export async function nodeFetch(
  input: string | URL | Request,
  init: RequestInit = {},
): Promise<Response> {
  const body = init.body
  if (body !== undefined && body !== null && typeof body !== 'string') {
    throw new TypeError('nodeFetch: only string bodies are supported')
  }
  const headers: Record<string, string> = Object.fromEntries(new Headers(init.headers).entries())
  if (body) headers['content-length'] = String(Buffer.byteLength(body))
  const res = await httpExchange(new URL(input instanceof Request ? input.url : input), {
    agents,
    method: init.method ?? 'GET',
    headers,
    body: body ?? undefined,
    signal: init.signal ?? undefined,
  })
  // A Response cannot carry a body with these statuses.
  const empty = res.status === 204 || res.status === 205 || res.status === 304
  return new Response(empty ? null : res.body, {
    status: res.status,
    statusText: res.statusMessage,
    headers: responseHeaders(res.headers),
  })
}
