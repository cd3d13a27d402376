/**
 * The `fetch` viem's HTTP transport uses for JSON-RPC (`http(url, { fetchFn: nodeFetch })`):
 * node:http(s) with keep-alive agents instead of the global (undici) `fetch`. Operators poll
 * the chain several times a second and clients read it on every view call; on these machines
 * one `eth_blockNumber` through viem costs ≈ 1.2–1.8 ms of CPU with the global fetch and
 * ≈ 0.45–0.6 ms with this one (bench/README.md, "chain RPC transport"). viem keeps its own
 * timeouts, retries, size limit and error classes: this only moves bytes and honours the
 * abort signal it is given.
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http'
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https'

const agents = {
  http: new HttpAgent({ keepAlive: true, maxSockets: 64 }),
  https: new HttpsAgent({ keepAlive: true, maxSockets: 64 }),
}

function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('This operation was aborted', 'AbortError')
}

function responseHeaders(res: IncomingMessage): Headers {
  const headers = new Headers()
  for (const [name, value] of Object.entries(res.headers)) {
    if (value === undefined) continue
    for (const v of Array.isArray(value) ? value : [value]) headers.append(name, v)
  }
  return headers
}

export function nodeFetch(
  input: string | URL | Request,
  init: RequestInit = {},
): Promise<Response> {
  return new Promise<Response>((resolve, reject) => {
    const url = new URL(input instanceof Request ? input.url : input)
    const https = url.protocol === 'https:'
    if (!https && url.protocol !== 'http:') {
      reject(new TypeError(`nodeFetch: unsupported protocol ${url.protocol}`))
      return
    }
    const signal = init.signal ?? undefined
    if (signal?.aborted) {
      reject(abortReason(signal))
      return
    }
    const body = init.body
    if (body !== undefined && body !== null && typeof body !== 'string') {
      reject(new TypeError('nodeFetch: only string bodies are supported'))
      return
    }
    const headers = Object.fromEntries(new Headers(init.headers).entries())
    if (body) headers['content-length'] = String(Buffer.byteLength(body))
    const options = {
      method: init.method ?? 'GET',
      headers,
      agent: https ? agents.https : agents.http,
    }
    const onAbort = () => req.destroy(abortReason(signal!) as Error)
    const done = () => signal?.removeEventListener('abort', onAbort)
    const onResponse = (res: IncomingMessage) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('error', (e) => {
        done()
        reject(e)
      })
      res.on('end', () => {
        done()
        const status = res.statusCode ?? 0
        // A Response cannot carry a body with these statuses.
        const empty = status === 204 || status === 205 || status === 304
        resolve(
          new Response(empty ? null : Buffer.concat(chunks), {
            status,
            statusText: res.statusMessage ?? '',
            headers: responseHeaders(res),
          }),
        )
      })
    }
    const req = https
      ? httpsRequest(url, options, onResponse)
      : httpRequest(url, options, onResponse)
    signal?.addEventListener('abort', onAbort, { once: true })
    req.on('error', (e) => {
      done()
      reject(e)
    })
    req.end(body ?? undefined)
  })
}
