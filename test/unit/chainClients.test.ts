/**
 * Reads that race a reorganisation (src/chain/clients.ts `retryingStaleHeads`), against a
 * JSON-RPC server on loopback that answers the way anvil does mid-reorg; and the node:http
 * `fetch` (src/chain/fetch.ts) every chain client sends its requests through.
 */
import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, test } from 'node:test'
import {
  createPublicClient,
  HttpRequestError,
  http,
  InvalidParamsRpcError,
  TimeoutError,
} from 'viem'
import { isStaleHeadError, retryingStaleHeads } from '../../src/chain/clients.ts'
import { nodeFetch } from '../../src/chain/fetch.ts'

/** Errors still to serve, per method; every request is counted. */
const failures = new Map<string, Array<{ code: number; message: string }>>()
const seen = new Map<string, number>()
let server: Server
let url: string

before(async () => {
  server = createServer((req, res) => {
    if (req.url === '/hang') return // never answers
    if (req.url === '/broken') {
      res.writeHead(502, { 'content-type': 'text/plain', 'x-hop': ['a', 'b'] })
      res.end('upstream down')
      return
    }
    let body = ''
    req.on('data', (c) => {
      body += c
    })
    req.on('end', () => {
      const { id, method } = JSON.parse(body) as { id: number; method: string }
      seen.set(method, (seen.get(method) ?? 0) + 1)
      const error = failures.get(method)?.shift()
      const result = method === 'eth_chainId' ? '0x7a69' : '0x2a'
      res.setHeader('content-type', 'application/json')
      res.end(
        JSON.stringify(error ? { jsonrpc: '2.0', id, error } : { jsonrpc: '2.0', id, result }),
      )
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})
after(() => {
  server.close()
})

const anvilMidReorg = {
  code: -32602,
  message: 'BlockOutOfRangeError: block height is 1 but requested was 3',
}

function client() {
  failures.clear()
  seen.clear()
  return createPublicClient({
    transport: retryingStaleHeads(http(url, { retryCount: 0, fetchFn: nodeFetch }), 1),
  })
}

test('a read that races a reorg is sent again (simulator seeds 4 and 27)', async () => {
  // Seeds 4 and 27: a withdrawal's eth_call resolved `latest` while anvil_reorg had rolled the
  // head back; anvil answered -32602 and the user's withdrawal failed with "Invalid parameters
  // were provided to the RPC method".
  const c = client()
  failures.set('eth_call', [anvilMidReorg, anvilMidReorg])
  const r = await c.call({ to: '0x0000000000000000000000000000000000000001', data: '0x' })
  assert.equal(r.data, '0x2a')
  assert.equal(seen.get('eth_call'), 3)
})

test('writes, other errors and a lasting stale head are not hidden', async () => {
  const c = client()
  failures.set('eth_sendRawTransaction', [anvilMidReorg])
  await assert.rejects(c.request({ method: 'eth_sendRawTransaction', params: ['0x01'] }))
  assert.equal(seen.get('eth_sendRawTransaction'), 1)

  failures.set('eth_call', [{ code: -32602, message: 'invalid type: map, expected a string' }])
  await assert.rejects(
    c.call({ to: '0x0000000000000000000000000000000000000001', data: '0x' }),
    (e: unknown) => e instanceof Error && !isStaleHeadError(e),
  )
  assert.equal(seen.get('eth_call'), 1)

  failures.set('eth_estimateGas', Array(10).fill(anvilMidReorg))
  await assert.rejects(
    c.request({ method: 'eth_estimateGas', params: [{}] }),
    (e: unknown) => e instanceof InvalidParamsRpcError && isStaleHeadError(e),
  )
  assert.equal(seen.get('eth_estimateGas'), 5)
})

test('nodeFetch: viem reads through it; timeouts abort the request; HTTP errors keep status and headers', async () => {
  const ok = createPublicClient({ transport: http(url, { retryCount: 0, fetchFn: nodeFetch }) })
  assert.equal(await ok.getChainId(), 31337)
  assert.equal(await ok.getBlockNumber({ cacheTime: 0 }), 42n)

  const hang = createPublicClient({
    transport: http(`${url}/hang`, { retryCount: 0, timeout: 200, fetchFn: nodeFetch }),
  })
  const t0 = Date.now()
  await assert.rejects(hang.getBlockNumber({ cacheTime: 0 }), TimeoutError)
  assert.ok(Date.now() - t0 < 5_000, 'the timeout aborts the request')

  const broken = createPublicClient({
    transport: http(`${url}/broken`, { retryCount: 0, fetchFn: nodeFetch }),
  })
  await assert.rejects(broken.getBlockNumber({ cacheTime: 0 }), (e: unknown) => {
    assert.ok(e instanceof HttpRequestError)
    assert.equal(e.status, 502)
    assert.equal(e.headers?.get('x-hop'), 'a, b')
    assert.match(e.details, /upstream down/)
    return true
  })

  const aborted = new AbortController()
  aborted.abort(new Error('stop'))
  await assert.rejects(
    nodeFetch(url, { method: 'POST', body: '{}', signal: aborted.signal }),
    /stop/,
  )
  await assert.rejects(nodeFetch('ftp://127.0.0.1/'), /unsupported protocol/)
})
