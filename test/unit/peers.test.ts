/**
 * Peer links between operators (src/operator/peers.ts): endpoints come from the chain, where
 * the manager only checks their length, so an endpoint that is no usable URL must not throw out
 * of a send (it would drop the enclave's other outputs) nor stop the links to other peers.
 */
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { createServer } from 'node:http'
import { test } from 'node:test'
import WebSocket from 'ws'
import { PeerNetwork, peerUrl } from '../../src/operator/peers.ts'
import type { PeerEnvelopeWire } from '../../src/protocol/index.ts'

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
