import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import { createServer as createNetServer, type Socket } from 'node:net'
import { after, before, test } from 'node:test'
import { PoseRequestError } from '../../src/client/errors.ts'
import { getJson, postJson, requestSealed } from '../../src/client/transport.ts'
import { freePort } from '../../src/devnet/anvil.ts'
import { LIMITS } from '../../src/protocol/index.ts'

let server: Server
let base: string
const seen: { method: string; body: string; type: string | undefined }[] = []

before(async () => {
  server = createServer((req, res) => {
    let body = ''
    req.setEncoding('utf8')
    req.on('data', (c: string) => {
      body += c
    })
    req.on('end', () => {
      seen.push({ method: req.method!, body, type: req.headers['content-type'] })
      switch (req.url) {
        case '/ok':
          res.writeHead(200, { 'content-type': 'application/json' })
          return res.end(JSON.stringify({ echo: body ? JSON.parse(body) : null }))
        case '/refused':
          res.writeHead(409, { 'content-type': 'application/json' })
          return res.end(
            JSON.stringify({
              error: { name: 'ProtocolError', code: 'BAD_NONCE', message: 'nope' },
            }),
          )
        case '/html':
          res.writeHead(502, { 'content-type': 'text/html' })
          return res.end('<html>bad gateway</html>')
        case '/null':
          res.writeHead(200, { 'content-type': 'application/json' })
          return res.end('null')
        case '/null500':
          res.writeHead(500, { 'content-type': 'application/json' })
          return res.end('null')
        case '/array':
          res.writeHead(200, { 'content-type': 'application/json' })
          return res.end('[1]')
        case '/silent':
          return // never answers
        case '/cut':
          return req.socket.destroy()
        case '/huge': {
          // Just over the limit, in 1 MiB chunks, never a valid JSON end.
          res.writeHead(200, { 'content-type': 'application/json' })
          const chunk = Buffer.alloc(1024 * 1024, 0x20)
          for (let i = 0; i <= LIMITS.maxPeerMessageBytes / chunk.length; i++) res.write(chunk)
          return res.end()
        }
      }
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`
})

after(() => {
  server.closeAllConnections()
  server.close()
})

async function rejection(p: Promise<unknown>): Promise<PoseRequestError> {
  const e = await p.then(
    () => assert.fail('expected a rejection'),
    (err: unknown) => err,
  )
  assert.ok(e instanceof PoseRequestError, `expected PoseRequestError, got ${e}`)
  return e
}

test('postJson sends a JSON body and parses the JSON answer; keep-alive reuses the connection', async () => {
  const connections = new Set<unknown>()
  server.on('connection', (s) => connections.add(s))
  for (let i = 0; i < 20; i++) {
    assert.deepEqual(await postJson(`${base}/ok`, { box: `0x0${i}` }), { echo: { box: `0x0${i}` } })
  }
  assert.deepEqual(await getJson(`${base}/ok`), { echo: null })
  const last = seen.at(-2)!
  assert.equal(last.method, 'POST')
  assert.equal(last.type, 'application/json')
  assert.equal(seen.at(-1)!.method, 'GET')
  assert.ok(connections.size <= 1, `20 sequential requests opened ${connections.size} connections`)
})

test('an error body becomes a PoseRequestError with the operator code', async () => {
  const e = await rejection(postJson(`${base}/refused`, {}))
  assert.equal(e.code, 'BAD_NONCE')
})

test('an answer that is no JSON object is no answer: UNAVAILABLE, naming the status', async () => {
  for (const [path, status] of [
    ['/html', 502],
    ['/null', 200],
    ['/null500', 500],
    ['/array', 200],
  ] as const) {
    const e = await rejection(getJson(`${base}${path}`))
    assert.equal(e.code, 'UNAVAILABLE', path)
    assert.match(e.message, new RegExp(`answered ${status} with no JSON object`), path)
  }
})

test('an endpoint that is no URL (an operator registers any string) is UNAVAILABLE, typed', async () => {
  for (const endpoint of ['10.0.0.1:8080', '', 'not a url']) {
    const e = await rejection(postJson(`${endpoint}/v1/instances/1/tx`, {}))
    assert.equal(e.code, 'UNAVAILABLE', endpoint)
    assert.match(e.message, /is no URL/)
  }
})

test('a cut connection and a closed port are UNAVAILABLE; a silent operator is TIMEOUT', async () => {
  assert.equal((await rejection(postJson(`${base}/cut`, {}))).code, 'UNAVAILABLE')
  const closed = await rejection(getJson(`http://127.0.0.1:${await freePort()}/v1/health`))
  assert.equal(closed.code, 'UNAVAILABLE')
  assert.match(closed.message, /unreachable/)
  // Accepted and never answered: the SDK's failover counts it as a silent executor at once.
  const t0 = performance.now()
  const silent = await rejection(postJson(`${base}/silent`, {}, 200))
  assert.equal(silent.code, 'TIMEOUT')
  assert.match(silent.message, /did not answer within 200 ms/)
  assert.ok(performance.now() - t0 >= 190, 'after the time allowed')
  // The server is still usable afterwards (the timed-out socket was dropped, not reused).
  assert.deepEqual(await getJson(`${base}/ok`), { echo: null })
})

test('an answer over the size limit is dropped, not buffered whole', async () => {
  const e = await rejection(getJson(`${base}/huge`))
  assert.equal(e.code, 'UNAVAILABLE')
  assert.match(e.details ?? '', /answer larger than/)
})

test('an unsupported scheme is refused before any I/O', async () => {
  const e = await rejection(getJson('ftp://127.0.0.1/x'))
  assert.equal(e.code, 'UNAVAILABLE')
  assert.match(e.details ?? '', /unsupported protocol/)
})

test('a request box over the limit is refused OVERSIZED before any I/O, on either transport', async () => {
  const box = new Uint8Array(LIMITS.maxTxBoxBytes + 1)
  // A closed port: any I/O would fail UNAVAILABLE instead.
  const endpoint = `http://127.0.0.1:${await freePort()}`
  for (const transport of ['ws', 'http'] as const) {
    const e = await rejection(requestSealed(endpoint, 'tx', 1n, box, { transport }))
    assert.equal(e.code, 'OVERSIZED', transport)
    assert.match(e.message, new RegExp(`${box.length} bytes`))
  }
})

test('an operator whose WebSocket upgrade never answers gets the request over HTTP before the request times out', async () => {
  const sealed = '0x0102'
  const host = createServer((req, res) => {
    req.resume()
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ sealed }))
    })
  })
  // Upgrades are taken and never answered.
  host.on('upgrade', () => undefined)
  await new Promise<void>((r) => host.listen(0, '127.0.0.1', r))
  try {
    const endpoint = `http://127.0.0.1:${(host.address() as { port: number }).port}`
    const answer = await requestSealed(endpoint, 'tx', 1n, new Uint8Array(8), {
      transport: 'ws',
      timeoutMs: 2_000,
    })
    assert.deepEqual([...answer], [1, 2])
  } finally {
    host.closeAllConnections()
    host.close()
  }
  // A stopped host (the kernel accepts, nobody reads): the upgrade fails, then the HTTP request
  // times out, and the request ends in TIMEOUT.
  const sockets: Socket[] = []
  const stopped = createNetServer((c) => {
    sockets.push(c)
    c.on('error', () => undefined)
    c.resume()
  })
  await new Promise<void>((r) => stopped.listen(0, '127.0.0.1', r))
  try {
    const endpoint = `http://127.0.0.1:${(stopped.address() as { port: number }).port}`
    const e = await rejection(
      requestSealed(endpoint, 'tx', 1n, new Uint8Array(8), { transport: 'ws', timeoutMs: 400 }),
    )
    assert.equal(e.code, 'TIMEOUT')
  } finally {
    for (const c of sockets) c.destroy()
    await new Promise<void>((r) => stopped.close(() => r()))
  }
})
