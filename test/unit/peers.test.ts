/**
 * Peer links between operators (src/operator/peers.ts): endpoints come from the chain, where
 * the manager only checks their length, so an endpoint that is no usable URL must not throw out
 * of a send (it would drop the enclave's other outputs) nor stop the links to other peers.
 * Anyone can connect and a peer can vanish without a FIN, so idle or dead connections must
 * neither lock honest peers out nor hold a link open. Loopback only; every wait is bounded.
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { once } from 'node:events'
import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { Duplex } from 'node:stream'
import { test } from 'node:test'
import WebSocket, { WebSocketServer } from 'ws'
import { inboundAddressKey, PeerNetwork, peerUrl } from '../../src/operator/peers.ts'
import { type PeerEnvelopeWire, ProtocolError } from '../../src/protocol/index.ts'

/** Polls `done` every 10 ms, at most `tries` times (about 2 s by default); its last value. */
async function until(done: () => boolean, tries = 200): Promise<boolean> {
  for (let i = 0; i < tries && !done(); i++) await new Promise((r) => setTimeout(r, 10))
  return done()
}

/** An HTTP server on 127.0.0.1 whose upgrades go to `onUpgrade`; its sockets, as they come. */
async function listen(
  onUpgrade: (req: IncomingMessage, socket: Duplex, head: Buffer) => void,
): Promise<{ http: Server; port: number; endpoint: string; sockets: Duplex[] }> {
  const sockets: Duplex[] = []
  const http = createServer()
  http.on('upgrade', (req, socket, head) => {
    sockets.push(socket)
    onUpgrade(req, socket, head)
  })
  http.listen(0, '127.0.0.1')
  await once(http, 'listening')
  const { port } = http.address() as { port: number }
  return { http, port, endpoint: `http://127.0.0.1:${port}/`, sockets }
}

/** A valid envelope's shape (the enclave would refuse it; the operator passes it on). */
const envelope = (n = 0) => ({ kind: 'ack', instance: '1', n }) as unknown as PeerEnvelopeWire

/** Opens a client connection to a peer server and waits until it is open. */
async function dial(port: number, opts: WebSocket.ClientOptions = {}): Promise<WebSocket> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/v1/peer`, opts)
  await once(ws, 'open')
  return ws
}

test('an endpoint maps to its peer WebSocket URL, or to nothing when it is no usable URL', () => {
  const cases: Array<[string, string | undefined]> = [
    ['http://127.0.0.1:34433/', 'ws://127.0.0.1:34433/v1/peer'],
    ['http://127.0.0.1:34433', 'ws://127.0.0.1:34433/v1/peer'],
    ['https://op.example/pose//', 'wss://op.example/pose/v1/peer'],
    ['ws://[::1]:9/', 'ws://[::1]:9/v1/peer'],
    ['wss://op.example', 'wss://op.example/v1/peer'],
    ['x', undefined],
    ['', undefined],
    ['ftp://a', undefined],
    ['ws://a#f', undefined],
    ['http://a/?q=1', undefined],
    ['http://u:p@a/', undefined],
    ['http://a b/', undefined],
    ['javascript:alert(1)', undefined],
  ]
  for (const [endpoint, url] of cases) assert.equal(peerUrl(endpoint), url, endpoint)
})

test('a send to an unusable endpoint is reported once and dropped; other peers still get theirs', async () => {
  const received: unknown[] = []
  const b = new PeerNetwork(
    (envelope) => received.push(envelope),
    () => undefined,
  )
  const http = createServer()
  http.on('upgrade', (req, socket, head) => b.handleUpgrade(req, socket, head))
  http.listen(0, '127.0.0.1')
  await once(http, 'listening')
  const { port } = http.address() as { port: number }
  const unusable: Array<[string, string]> = []
  const a = new PeerNetwork(
    () => undefined,
    () => undefined,
    { onUnusableEndpoint: (endpoint, reason) => unusable.push([endpoint, reason]) },
  )
  const envelope = { kind: 'ack', instance: '1' } as unknown as PeerEnvelopeWire
  try {
    for (const bad of ['ws://a#f', 'x', 'http://a b/']) {
      assert.doesNotThrow(() => a.send(bad, envelope))
      assert.doesNotThrow(() => a.send(bad, envelope), 'again, within the minute')
    }
    assert.deepEqual(
      unusable.map(([e]) => e),
      ['ws://a#f', 'x', 'http://a b/'],
      'each reported once',
    )
    a.send(`http://127.0.0.1:${port}/`, envelope)
    for (let i = 0; i < 200 && received.length === 0; i++)
      await new Promise((r) => setTimeout(r, 10))
    assert.deepEqual(received, [envelope])
  } finally {
    await a.close()
    await b.close()
    http.close()
  }
})

test('an inbound frame reaches the enclave only with an envelope of flat fields', async () => {
  const received: unknown[] = []
  const refused: string[] = []
  const b = new PeerNetwork(
    (envelope) => received.push(envelope),
    (reason) => refused.push(reason),
  )
  const http = createServer()
  http.on('upgrade', (req, socket, head) => b.handleUpgrade(req, socket, head))
  http.listen(0, '127.0.0.1')
  await once(http, 'listening')
  const { port } = http.address() as { port: number }
  const ws = new WebSocket(`ws://127.0.0.1:${port}/v1/peer`)
  try {
    await once(ws, 'open')
    const deep = JSON.stringify({
      envelope: { kind: JSON.parse(`${'['.repeat(500)}${']'.repeat(500)}`) },
    })
    const wide = JSON.stringify({
      envelope: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`f${i}`, 'x'])),
    })
    for (const frame of [
      'not json',
      '{"no":"envelope"}',
      '{"envelope":[1,2]}',
      '{"envelope":null}',
      '{"envelope":{"kind":{"a":1}}}',
      deep,
      wide,
    ])
      ws.send(frame)
    ws.send(Buffer.from('{"envelope":{}}'), { binary: true })
    const ok = { kind: 'ack', instance: '1', from: '0x01', to: '0x02', body: '0x', signature: '0x' }
    ws.send(JSON.stringify({ envelope: ok }))
    for (let i = 0; i < 200 && received.length === 0; i++)
      await new Promise((r) => setTimeout(r, 10))
    assert.deepEqual(received, [ok])
    assert.deepEqual(refused, [
      'peer: frame is not JSON',
      'peer: frame has no envelope',
      'peer: envelope is not flat',
      'peer: envelope is not flat',
      'peer: envelope is not flat',
      'peer: envelope is not flat',
      'peer: envelope is not flat',
      'peer: binary frames are not accepted',
    ])
  } finally {
    ws.terminate()
    await b.close()
    http.close()
  }
})

test('a link holds at most its byte cap of frames while it connects, and drops the rest', async () => {
  const received: Array<{ kind: string; n?: number }> = []
  const b = new PeerNetwork(
    (envelope) => received.push(envelope as { kind: string; n?: number }),
    () => undefined,
  )
  // The handshake waits until the test lets it through: frames sent meanwhile are queued.
  const held: Array<() => void> = []
  const http = createServer()
  http.on('upgrade', (req, socket, head) => held.push(() => b.handleUpgrade(req, socket, head)))
  http.listen(0, '127.0.0.1')
  await once(http, 'listening')
  const { port } = http.address() as { port: number }
  const endpoint = `http://127.0.0.1:${port}/`
  const padded = (n: number) =>
    ({ kind: 'update', n, body: 'ab'.repeat(150) }) as unknown as PeerEnvelopeWire
  const frameBytes = JSON.stringify({ envelope: padded(0) }).length
  const a = new PeerNetwork(
    () => undefined,
    () => undefined,
    { maxHeldBytes: 3 * frameBytes + 10 },
  )
  try {
    for (let n = 0; n < 10; n++) assert.doesNotThrow(() => a.send(endpoint, padded(n)))
    for (let i = 0; i < 200 && held.length === 0; i++) await new Promise((r) => setTimeout(r, 10))
    assert.equal(held.length, 1, 'one connection attempt')
    held[0]!()
    // Frames on one link arrive in order: once a marker sent after the queue was flushed
    // arrives, everything queued before it has.
    const marker = { kind: 'marker' } as unknown as PeerEnvelopeWire
    for (let i = 0; i < 200 && !received.some((e) => e.kind === 'marker'); i++) {
      a.send(endpoint, marker)
      await new Promise((r) => setTimeout(r, 10))
    }
    const updates = received.slice(
      0,
      received.findIndex((e) => e.kind === 'marker'),
    )
    assert.deepEqual(
      updates.map((e) => e.n),
      [0, 1, 2],
      'the first three frames fit the cap; the other seven were dropped',
    )
  } finally {
    await a.close()
    await b.close()
    http.close()
  }
})

test('an inbound address counts under its IPv4 address, or under its IPv6 /64', () => {
  const cases: Array<[string, string]> = [
    ['127.0.0.1', '127.0.0.1'],
    ['::ffff:127.0.0.1', '127.0.0.1'],
    ['::1', '0:0:0:0::/64'],
    ['2001:db8:1:2:3:4:5:6', '2001:db8:1:2::/64'],
    ['2001:DB8:1:2::9', '2001:db8:1:2::/64'],
    ['2001:0db8:0001:0002:aaaa::1', '2001:db8:1:2::/64'],
    ['2001:db8::', '2001:db8:0:0::/64'],
    ['fe80::1%eth0', 'fe80:0:0:0::/64'],
    ['', ''],
  ]
  for (const [address, key] of cases) assert.equal(inboundAddressKey(address), key, address)
})

test('a cap or an interval that is not positive is refused with a typed error naming it', () => {
  for (const [opts, field] of [
    [{ heartbeatMs: 0 }, 'heartbeatMs'],
    [{ handshakeTimeoutMs: Number.NaN }, 'handshakeTimeoutMs'],
    [{ maxInbound: -1 }, 'maxInbound'],
    [{ maxInboundPerAddress: 0 }, 'maxInboundPerAddress'],
    [{ reconnectDelayMs: Number.POSITIVE_INFINITY }, 'reconnectDelayMs'],
  ] as const) {
    assert.throws(
      () =>
        new PeerNetwork(
          () => undefined,
          () => undefined,
          opts,
        ),
      (e: unknown) =>
        e instanceof ProtocolError && e.code === 'OUT_OF_RANGE' && e.shortMessage.startsWith(field),
    )
  }
})

test('an inbound peer that answers no ping is cut; one that answers, or is sending, stays', async () => {
  const b = new PeerNetwork(
    () => undefined,
    () => undefined,
    { heartbeatMs: 20 },
  )
  const { http, port } = await listen((req, socket, head) => b.handleUpgrade(req, socket, head))
  // A peer gone without a FIN answers nothing, as this one does.
  const silent = await dial(port, { autoPong: false })
  const live = await dial(port)
  // A peer busy sending may answer late (its pong waits behind its frames): bytes count too.
  const busy = await dial(port, { autoPong: false })
  const sending = setInterval(() => busy.send(JSON.stringify({ envelope: envelope() })), 2)
  let pings = 0
  live.on('ping', () => pings++)
  try {
    assert.ok(await until(() => silent.readyState === WebSocket.CLOSED), 'the silent one is cut')
    assert.ok(await until(() => pings >= 4), 'the live one is still pinged')
    assert.equal(live.readyState, WebSocket.OPEN, 'the live one stays')
    assert.equal(busy.readyState, WebSocket.OPEN, 'the busy one stays')
  } finally {
    clearInterval(sending)
    silent.terminate()
    live.terminate()
    busy.terminate()
    await b.close()
    http.close()
  }
})

test('past the inbound cap the connection idle longest is closed, never the newcomer', async () => {
  let t = 1
  const received: unknown[] = []
  const reasons: string[] = []
  const b = new PeerNetwork(
    (e) => received.push(e),
    (reason) => reasons.push(reason),
    { maxInbound: 3, now: () => t },
  )
  const { http, port } = await listen((req, socket, head) => b.handleUpgrade(req, socket, head))
  const clients: WebSocket[] = []
  try {
    const c1 = await dial(port)
    clients.push(c1)
    t = 2
    const c2 = await dial(port)
    clients.push(c2)
    t = 3
    const c3 = await dial(port)
    clients.push(c3)
    // The first to open delivers an envelope: it is no longer the one idle longest.
    t = 4
    c1.send(JSON.stringify({ envelope: envelope() }))
    assert.ok(await until(() => received.length === 1), 'the envelope arrives')
    t = 5
    const c4 = await dial(port)
    clients.push(c4)
    assert.ok(await until(() => c2.readyState === WebSocket.CLOSED), 'the idle longest is closed')
    for (const c of [c1, c3, c4]) assert.equal(c.readyState, WebSocket.OPEN)
    assert.deepEqual(reasons, [
      'peer: more than 3 inbound connections; closed the one idle longest',
    ])
  } finally {
    for (const c of clients) c.terminate()
    await b.close()
    http.close()
  }
})

test('one address holds at most its cap of inbound connections; its idle longest goes', async () => {
  let t = 1
  const reasons: string[] = []
  const b = new PeerNetwork(
    () => undefined,
    (reason) => reasons.push(reason),
    { maxInboundPerAddress: 2, now: () => t },
  )
  const { http, port } = await listen((req, socket, head) => b.handleUpgrade(req, socket, head))
  const clients: WebSocket[] = []
  try {
    for (; t <= 3; t++) clients.push(await dial(port))
    const [x1, x2, x3] = clients as [WebSocket, WebSocket, WebSocket]
    assert.ok(await until(() => x1.readyState === WebSocket.CLOSED), 'the first is closed')
    for (const c of [x2, x3]) assert.equal(c.readyState, WebSocket.OPEN)
    assert.deepEqual(reasons, [
      'peer: more than 2 inbound connections from 127.0.0.1; closed the one idle longest',
    ])
  } finally {
    for (const c of clients) c.terminate()
    await b.close()
    http.close()
  }
})

test('an outbound link whose peer answers no ping is cut, and the next frame reconnects', async () => {
  // A peer gone without a FIN answers nothing, as this one does.
  const peer = new WebSocketServer({ noServer: true, autoPong: false })
  const accepted: WebSocket[] = []
  const closed: WebSocket[] = []
  const { http, endpoint } = await listen((req, socket, head) =>
    peer.handleUpgrade(req, socket, head, (ws) => {
      accepted.push(ws)
      ws.on('close', () => closed.push(ws))
    }),
  )
  const a = new PeerNetwork(
    () => undefined,
    () => undefined,
    { heartbeatMs: 20, reconnectDelayMs: 10 },
  )
  try {
    a.send(endpoint, envelope())
    assert.ok(await until(() => accepted.length === 1), 'connected')
    assert.ok(await until(() => closed.length === 1), 'cut for want of a pong')
    for (let i = 0; i < 200 && accepted.length < 2; i++) {
      a.send(endpoint, envelope())
      await new Promise((r) => setTimeout(r, 10))
    }
    assert.equal(accepted.length, 2, 'connected again')
  } finally {
    await a.close()
    for (const ws of accepted) ws.terminate()
    await new Promise<void>((r) => peer.close(() => r()))
    http.close()
  }
})

test('an outbound connection whose upgrade is never answered is given up, then tried again', async () => {
  // Accepts TCP and reads the upgrade request, but never answers it.
  let ended = 0
  const { http, endpoint, sockets } = await listen((_req, socket) => {
    socket.resume().on('end', () => ended++)
  })
  const a = new PeerNetwork(
    () => undefined,
    () => undefined,
    { handshakeTimeoutMs: 30, reconnectDelayMs: 10 },
  )
  try {
    for (let i = 0; i < 200 && sockets.length < 2; i++) {
      a.send(endpoint, envelope())
      await new Promise((r) => setTimeout(r, 10))
    }
    assert.equal(sockets.length, 2, 'a second attempt after the first timed out')
    assert.ok(await until(() => ended >= 1), 'the first attempt was closed')
  } finally {
    await a.close()
    for (const s of sockets) s.destroy()
    http.close()
  }
})

test("a failed socket's late close lets no second connection open while one is connecting", async () => {
  const received: unknown[] = []
  const b = new PeerNetwork(
    (e) => received.push(e),
    () => undefined,
  )
  // The first upgrade is answered by hand, then sent a frame the client refuses: its `error`
  // comes at once, its `close` only when this server closes the socket. Later upgrades wait
  // until the test lets them through to `b`.
  let first: Duplex | undefined
  let firstEnded = false
  const held: Array<() => void> = []
  const { http, endpoint, sockets } = await listen((req, socket, head) => {
    if (first) return held.push(() => b.handleUpgrade(req, socket, head))
    first = socket
    socket.on('data', () => undefined)
    socket.on('end', () => {
      firstEnded = true
    })
    const accept = createHash('sha1')
      .update(`${req.headers['sec-websocket-key']}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`)
      .digest('base64')
    socket.write(
      'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        `Sec-WebSocket-Accept: ${accept}\r\n\r\n`,
    )
    // RSV1 set without an extension negotiated: a protocol error at the client.
    socket.write(Buffer.from([0xc1, 0x00]))
  })
  const a = new PeerNetwork(
    () => undefined,
    () => undefined,
    { reconnectDelayMs: 10 },
  )
  try {
    a.send(endpoint, envelope(0))
    assert.ok(await until(() => firstEnded), 'the client failed the first socket')
    for (let i = 0; i < 200 && held.length === 0; i++) {
      a.send(endpoint, envelope(1))
      await new Promise((r) => setTimeout(r, 10))
    }
    assert.equal(held.length, 1, 'a second socket is connecting')
    // The first socket's close comes now, while the second still connects.
    first!.destroy()
    for (let i = 0; i < 30 && held.length === 1; i++) {
      a.send(endpoint, envelope(2))
      await new Promise((r) => setTimeout(r, 10))
    }
    assert.equal(held.length, 1, 'no third socket while the second connects')
    held[0]!()
    assert.ok(await until(() => received.length > 0), 'the second socket carries the frames')
  } finally {
    await a.close()
    await b.close()
    for (const s of sockets) s.destroy()
    http.close()
  }
})

test('close() also ends an outbound connection still opening', async () => {
  let ended = 0
  const { http, endpoint, sockets } = await listen((_req, socket) => {
    socket.resume().on('end', () => ended++)
  })
  const a = new PeerNetwork(
    () => undefined,
    () => undefined,
  )
  try {
    a.send(endpoint, envelope())
    assert.ok(await until(() => sockets.length === 1), 'connecting')
    await a.close()
    assert.ok(await until(() => ended === 1), 'the connection still opening is closed')
  } finally {
    for (const s of sockets) s.destroy()
    http.close()
  }
})

test('retainEndpoints closes the links to endpoints no operator uses any more', async () => {
  const received: Array<{ n: number }> = []
  const b = new PeerNetwork(
    (e) => received.push(e as { n: number }),
    () => undefined,
  )
  const toB = (req: IncomingMessage, socket: Duplex, head: Buffer) =>
    b.handleUpgrade(req, socket, head)
  // One operator's old and new endpoint: two servers in front of the same peer.
  const old = await listen(toB)
  const now = await listen(toB)
  const closedOld: Duplex[] = []
  const closedNow: Duplex[] = []
  old.http.on('upgrade', (_req, socket) => socket.on('close', () => closedOld.push(socket)))
  now.http.on('upgrade', (_req, socket) => socket.on('close', () => closedNow.push(socket)))
  const a = new PeerNetwork(
    () => undefined,
    () => undefined,
  )
  try {
    a.send(old.endpoint, envelope(1))
    a.send(now.endpoint, envelope(2))
    assert.ok(await until(() => received.length === 2), 'both links carry frames')
    a.retainEndpoints([now.endpoint])
    assert.ok(await until(() => closedOld.length === 1), 'the link to the old endpoint is closed')
    a.send(now.endpoint, envelope(3))
    assert.ok(await until(() => received.some((e) => e.n === 3)), 'the kept link still carries')
    assert.equal(now.sockets.length, 1, 'on the same connection')
    assert.equal(closedNow.length, 0, 'which stayed open')
    // A frame to a forgotten endpoint opens a new link as usual.
    a.send(old.endpoint, envelope(4))
    assert.ok(await until(() => received.some((e) => e.n === 4)), 'a new link to it carries')
    assert.equal(old.sockets.length, 2)
  } finally {
    await a.close()
    await b.close()
    old.http.close()
    now.http.close()
  }
})
