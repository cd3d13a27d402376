/**
 * The users' WebSocket API (`/v1/ws`): its frame codec, the operator's end behind a real HTTP
 * server on loopback, and the SDK's end (matching by id, errors, timeouts, lost connections,
 * falling back to HTTP, not holding the process open).
 */
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { createServer as createHttpServer, type IncomingMessage } from 'node:http'
import { createServer, type Socket } from 'node:net'
import { after, before, test } from 'node:test'
import fc from 'fast-check'
import WebSocket from 'ws'
import { PoseRequestError } from '../../src/client/errors.ts'
import { SocketUnavailableError, socketRequest } from '../../src/client/socketTransport.ts'
import { requestSealed } from '../../src/client/transport.ts'
import { type ApiBackend, createApi, INTERNAL_ERROR_MESSAGE } from '../../src/operator/api.ts'
import { ApiSockets } from '../../src/operator/apiSocket.ts'
import {
  API_SOCKET_LIMITS,
  API_SOCKET_PATH,
  type ApiAnswer,
  type ApiRequest,
  decodeApiAnswers,
  decodeApiRequests,
  encodeApiAnswers,
  encodeApiRequests,
  frameRuns,
  LIMITS,
  ProtocolError,
} from '../../src/protocol/index.ts'
import { runScript } from './childScript.ts'

// ------------------------------------------------------------------ codec

const MAX_UINT256 = (1n << 256n) - 1n

test('request and answer frames round-trip', () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.record(
          {
            kind: fc.constantFrom('tx' as const, 'view' as const),
            id: fc.integer({ min: 1, max: 0xffff_ffff }),
            instance: fc.bigInt({ min: 1n, max: MAX_UINT256 }),
            box: fc.uint8Array({ maxLength: 600 }),
          },
          { noNullPrototype: true },
        ),
        { minLength: 1, maxLength: 20 },
      ),
      (requests: ApiRequest[]) => {
        const d = decodeApiRequests(encodeApiRequests(requests))
        assert.deepEqual(d, { requests, rejected: [] })
        const answers: ApiAnswer[] = requests.map((q, i) =>
          i % 2
            ? { kind: 'sealed', id: q.id, sealed: q.box }
            : {
                kind: 'error',
                id: q.id,
                error: { name: 'ProtocolError', code: 'BAD_NONCE', message: `n${i}` },
              },
        )
        assert.deepEqual(decodeApiAnswers(encodeApiAnswers(answers)), answers)
      },
    ),
    { numRuns: 200 },
  )
})

function code(f: () => unknown): string {
  try {
    f()
  } catch (e) {
    assert.ok(e instanceof ProtocolError, `a ProtocolError, not ${String(e)}`)
    return `${e.code}: ${e.shortMessage}`
  }
  return 'accepted'
}

test('unreadable frames are refused with the field that was wrong', () => {
  const one = encodeApiRequests([{ kind: 'tx', id: 5, instance: 1n, box: new Uint8Array(8) }])
  const cases: Array<[Uint8Array, RegExp]> = [
    [new Uint8Array(0), /^MALFORMED: api request frame\.version: truncated/],
    [Uint8Array.of(2, 0, 0, 0, 1), /^MALFORMED: api request frame: version 2/],
    [Uint8Array.of(1, 0, 0, 0, 0), /^MALFORMED: api request frame: no records/],
    [Uint8Array.of(1, 0, 0, 0x04, 1), /^MALFORMED: api request frame\.count: 1025 exceeds 1024/],
    [
      one.subarray(0, one.length - 1),
      /^MALFORMED: api request frame\.records\[0\]\.box: truncated/,
    ],
    [Uint8Array.of(...one, 0), /^MALFORMED: api request frame: 1 trailing bytes/],
    [
      new Uint8Array(API_SOCKET_LIMITS.maxFrameBytes + 1),
      /^OVERSIZED: api request frame: \d+ bytes/,
    ],
  ]
  for (const [frame, want] of cases)
    assert.match(
      code(() => decodeApiRequests(frame)),
      want,
    )
  const a = encodeApiAnswers([{ kind: 'sealed', id: 1, sealed: new Uint8Array(3) }])
  const badKind = Uint8Array.from(a)
  badKind[5] = 0x83
  assert.match(
    code(() => decodeApiAnswers(badKind)),
    /records\[0\]\.kind: 131 unknown/,
  )
  const notJson = Uint8Array.from(a)
  notJson[5] = 0x82
  assert.match(
    code(() => decodeApiAnswers(notJson)),
    /records\[0\]: error is not JSON/,
  )
})

test('frames are cut at the record limit and about a mebibyte; a larger record goes alone', () => {
  const sizes = [10, 600_000, 600_000, 3_000_000, 5, ...Array(2000).fill(1)]
  const runs = frameRuns(sizes, (n) => n)
  assert.deepEqual(runs.flat(), sizes)
  assert.deepEqual(
    runs.slice(0, 4).map((r) => r.length),
    [2, 1, 1, 1024],
  )
  for (const r of runs) {
    assert.ok(r.length <= API_SOCKET_LIMITS.maxRecords)
    assert.ok(r.length === 1 || r.reduce((a, b) => a + b, 0) <= API_SOCKET_LIMITS.splitFrameBytes)
  }
})

test('a bad record is refused by its id; the others in its frame stand', () => {
  const frame = encodeApiRequests([
    { kind: 'tx', id: 1, instance: 3n, box: new Uint8Array(4) },
    { kind: 'view', id: 2, instance: 0n, box: new Uint8Array(4) },
    { kind: 'tx', id: 3, instance: 3n, box: new Uint8Array(LIMITS.maxTxBoxBytes + 1) },
    { kind: 'view', id: 4, instance: 9n, box: new Uint8Array(0) },
    { kind: 'tx', id: 0, instance: 3n, box: new Uint8Array(4) },
  ])
  const bad = Uint8Array.from(frame)
  bad[5] = 7 // the first record's kind
  const d = decodeApiRequests(bad)
  assert.deepEqual(
    d.requests.map((q) => q.id),
    [4],
  )
  assert.deepEqual(
    d.rejected.map((r) => `${r.id} ${r.error.code}`),
    ['1 MALFORMED', '2 MALFORMED', '3 OVERSIZED', '0 MALFORMED'],
  )
  assert.match(d.rejected.at(-1)!.error.message, /request 0: ids start at 1/)
})

test('arbitrary bytes decode or throw a ProtocolError, never anything else', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
      const frame = bytes.length > 0 ? Uint8Array.of(1, 0, 0, 0, 1, ...bytes) : bytes
      for (const decode of [decodeApiRequests, decodeApiAnswers]) {
        try {
          decode(frame)
        } catch (e) {
          assert.ok(e instanceof ProtocolError)
        }
      }
    }),
    { numRuns: 500 },
  )
})

// ------------------------------------------------------------------ both ends on loopback

/**
 * The backend answers a box by its first byte: 1 refuses (BAD_NONCE), 2 never answers, 3 throws
 * synchronously, 4 answers `box[1]` MiB of `box[1]`s, anything else answers `[kind, ...box]` after
 * `box[1]` ms.
 */
const backend: ApiBackend = {
  info: () => ({}),
  deploy: async () => {
    throw new ProtocolError('WRONG_PHASE', 'not here')
  },
  request: (kind, _instance, box) => {
    if (box[0] === 3) throw new Error('backend bug')
    if (box[0] === 1) return Promise.reject(new ProtocolError('BAD_NONCE', 'tx.nonce: used'))
    if (box[0] === 2) return new Promise<Uint8Array>(() => undefined)
    if (box[0] === 4) return Promise.resolve(new Uint8Array(box[1]! * 1024 * 1024).fill(box[1]!))
    return new Promise((r) =>
      setTimeout(() => r(Uint8Array.of(kind === 'tx' ? 1 : 2, ...box)), box[1] ?? 0),
    )
  },
  digest: async () => ({ role: 'executor', seq: 0n, digest: new Uint8Array(32) }),
  status: async () => ({}),
}

/** Host-side errors the WebSocket API reported instead of sending them to a client. */
const internalErrors: string[] = []

/** The HTTP API with (or without) the WebSocket API on its port, as an operator node serves it. */
async function serve(withSockets: boolean) {
  const app = createApi(backend)
  const sockets = new ApiSockets(backend.request, (e) => internalErrors.push((e as Error).message))
  if (withSockets)
    app.server.on('upgrade', (req, socket, head) => {
      if (req.url === API_SOCKET_PATH) sockets.handleUpgrade(req, socket, head)
      else socket.destroy()
    })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as { port: number }
  return {
    endpoint: `http://127.0.0.1:${port}`,
    sockets,
    close: async () => {
      await sockets.close()
      await app.close()
    },
  }
}

let server: Awaited<ReturnType<typeof serve>>
let plain: Awaited<ReturnType<typeof serve>>
before(async () => {
  server = await serve(true)
  plain = await serve(false)
})
after(async () => {
  await server.close()
  await plain.close()
})

async function rejection(p: Promise<unknown>): Promise<Error> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  )
  assert.ok(e instanceof Error, 'the request was refused')
  return e
}

test('concurrent requests share one connection and get their own answers, in any order', async () => {
  const boxes = Array.from({ length: 40 }, (_, i) => Uint8Array.of(9, (40 - i) % 7, i))
  const answers = await Promise.all(
    boxes.map((box, i) => socketRequest(server.endpoint, i % 3 ? 'tx' : 'view', 5n, box, 5_000)),
  )
  boxes.forEach((box, i) => {
    assert.deepEqual(answers[i], Uint8Array.of(i % 3 ? 1 : 2, ...box))
  })
  assert.equal(server.sockets.connections, 1)
})

test("an operator's refusal keeps its code; a silent one is TIMEOUT; a backend that throws is INTERNAL", async () => {
  const refused = await rejection(socketRequest(server.endpoint, 'tx', 5n, Uint8Array.of(1), 5_000))
  assert.ok(refused instanceof PoseRequestError)
  assert.equal(refused.code, 'BAD_NONCE')
  assert.equal(refused.shortMessage, 'tx.nonce: used')
  const silent = await rejection(socketRequest(server.endpoint, 'tx', 5n, Uint8Array.of(2), 150))
  assert.ok(silent instanceof PoseRequestError)
  assert.equal(silent.code, 'TIMEOUT')
  assert.match(silent.message, /did not answer within 150 ms/)
  const thrown = await rejection(
    socketRequest(server.endpoint, 'view', 5n, Uint8Array.of(3), 5_000),
  )
  assert.ok(thrown instanceof PoseRequestError)
  assert.equal(thrown.code, 'INTERNAL')
  // The host's own error stays in the operator's log: the client is told only it was internal.
  assert.equal(thrown.shortMessage, INTERNAL_ERROR_MESSAGE)
  assert.deepEqual(internalErrors, ['backend bug'])
  // The connection still serves; an endpoint written with a trailing slash reaches /v1/ws too.
  assert.deepEqual(
    await socketRequest(`${server.endpoint}/`, 'tx', 5n, Uint8Array.of(9, 1), 5_000),
    Uint8Array.of(1, 9, 1),
  )
  assert.deepEqual(
    await socketRequest(server.endpoint, 'tx', 5n, Uint8Array.of(9, 0), 5_000),
    Uint8Array.of(1, 9, 0),
  )
})

test('requests with their own timeouts on one connection each fail at their own deadline, in order', async () => {
  // One timer serves the connection: a request with a shorter timeout sent after longer ones
  // still fails first, and an answered request between them is not touched.
  const t0 = performance.now()
  const failedAt: Record<string, number> = {}
  const silent = (name: string, timeoutMs: number) =>
    rejection(socketRequest(server.endpoint, 'tx', 5n, Uint8Array.of(2), timeoutMs)).then((e) => {
      failedAt[name] = performance.now() - t0
      return e
    })
  const slow = silent('slow', 600)
  const quick = silent('quick', 150)
  const middle = silent('middle', 350)
  const answered = socketRequest(server.endpoint, 'tx', 5n, Uint8Array.of(9, 200), 5_000)
  for (const [e, ms] of [
    [await quick, 150],
    [await middle, 350],
    [await slow, 600],
  ] as const) {
    assert.ok(e instanceof PoseRequestError)
    assert.equal(e.code, 'TIMEOUT')
    assert.match(e.message, new RegExp(`did not answer within ${ms} ms`))
  }
  // None fails before its deadline; the short ones do not wait for the long one's.
  const at = JSON.stringify(failedAt)
  assert.ok(failedAt.quick! >= 150 && failedAt.middle! >= 350 && failedAt.slow! >= 600, at)
  assert.ok(failedAt.quick! < 600 && failedAt.middle! < 600, at)
  assert.deepEqual(await answered, Uint8Array.of(1, 9, 200))
})

/** A raw client: frames out, answers in. */
async function raw(endpoint: string) {
  const ws = new WebSocket(`${endpoint.replace('http', 'ws')}${API_SOCKET_PATH}`)
  await once(ws, 'open')
  const answers: ApiAnswer[] = []
  const frames: number[] = []
  ws.on('message', (data) => {
    const a = decodeApiAnswers(data as Buffer)
    frames.push(a.length)
    answers.push(...a)
  })
  const until = async (n: number) => {
    for (let i = 0; i < 500 && answers.length < n; i++) await new Promise((r) => setTimeout(r, 10))
    assert.ok(answers.length >= n, `${n} answers arrived (${answers.length})`)
  }
  return { ws, answers, frames, until }
}

test('bad frames are answered with a typed error and the connection keeps serving', async () => {
  const c = await raw(server.endpoint)
  try {
    c.ws.send('{"box":"0x00"}')
    c.ws.send(Uint8Array.of(1, 0, 0, 0, 1, 1))
    const frame = encodeApiRequests([
      { kind: 'tx', id: 7, instance: 0n, box: new Uint8Array(1) },
      { kind: 'tx', id: 8, instance: 2n, box: Uint8Array.of(9, 0) },
    ])
    c.ws.send(frame)
    await c.until(4)
    const text = c.answers.map((a) =>
      a.kind === 'error' ? `${a.id} ${a.error.code} ${a.error.message}` : `${a.id} sealed`,
    )
    assert.deepEqual(text.slice(0, 2), [
      '0 MALFORMED ws: text frames are not accepted',
      '0 MALFORMED api request frame.records[0].id: truncated (needs 4 bytes at offset 6 of 6)',
    ])
    assert.deepEqual(text.slice(2).sort(), [
      '7 MALFORMED request 7: instance must be positive',
      '8 sealed',
    ])
  } finally {
    c.ws.terminate()
  }
})

test('answers ready in one turn leave in one frame; requests past the in-flight limit are refused', async () => {
  const c = await raw(server.endpoint)
  try {
    const n = API_SOCKET_LIMITS.maxInFlight
    const silent: ApiRequest[] = Array.from({ length: n + 1 }, (_, i) => ({
      kind: 'tx',
      id: i + 1,
      instance: 1n,
      box: Uint8Array.of(2),
    }))
    for (let i = 0; i < silent.length; i += API_SOCKET_LIMITS.maxRecords)
      c.ws.send(encodeApiRequests(silent.slice(i, i + API_SOCKET_LIMITS.maxRecords)))
    await c.until(1)
    assert.deepEqual(
      c.answers.map((a) => (a.kind === 'error' ? `${a.id} ${a.error.code}` : 'sealed')),
      [`${n + 1} UNAVAILABLE`],
    )
  } finally {
    c.ws.terminate()
  }
  const d = await raw(server.endpoint)
  try {
    const quick: ApiRequest[] = Array.from({ length: 16 }, (_, i) => ({
      kind: 'view',
      id: i + 1,
      instance: 1n,
      box: Uint8Array.of(9, 0, i),
    }))
    d.ws.send(encodeApiRequests(quick))
    await d.until(16)
    assert.ok(d.frames.length < 16, `16 answers came in ${d.frames.length} frames`)
  } finally {
    d.ws.terminate()
  }
})

test('every answer, refusal and thrown error frees its place in the in-flight limit', async () => {
  const c = await raw(server.endpoint)
  try {
    // Twice the limit in all, never more than a frame's worth unanswered at once: each request
    // must give its place back whether it was answered (9), refused (1) or threw (3).
    const n = 2 * API_SOCKET_LIMITS.maxInFlight
    const kinds = [9, 1, 3]
    for (let sent = 0; sent < n; sent += API_SOCKET_LIMITS.maxRecords) {
      const frame: ApiRequest[] = Array.from({ length: API_SOCKET_LIMITS.maxRecords }, (_, i) => ({
        kind: 'tx',
        id: sent + i + 1,
        instance: 1n,
        box: Uint8Array.of(kinds[(sent + i) % 3]!, 0),
      }))
      c.ws.send(encodeApiRequests(frame))
      await c.until(sent + frame.length)
    }
    const codes = new Map<string, number>()
    for (const a of c.answers) {
      const k = a.kind === 'sealed' ? 'sealed' : a.error.code
      codes.set(k, (codes.get(k) ?? 0) + 1)
    }
    assert.deepEqual(Object.fromEntries(codes), {
      sealed: Math.ceil(n / 3),
      BAD_NONCE: Math.ceil((n - 1) / 3),
      INTERNAL: Math.ceil((n - 2) / 3),
    })
  } finally {
    c.ws.terminate()
  }
})

test('a client that stops reading is not read either once its answers pile up; nothing is lost', {
  timeout: 60_000,
}, async () => {
  // Every request is answered with 1 MiB; the client sends 64 requests and reads nothing.
  const MiB = 1024 * 1024
  let calls = 0
  const sockets = new ApiSockets(async () => {
    calls++
    return new Uint8Array(MiB).fill(calls % 256)
  })
  const http = createHttpServer()
  http.on(
    'upgrade' as never,
    ((req: IncomingMessage, socket: Socket, head: Buffer) =>
      sockets.handleUpgrade(req, socket, head)) as never,
  )
  http.listen(0, '127.0.0.1')
  await once(http, 'listening')
  const { port } = http.address() as { port: number }
  const c = await raw(`http://127.0.0.1:${port}`)
  try {
    c.ws.pause()
    // One request at a time, as a client that keeps sending would (a burst read at once is
    // bounded by the in-flight limit instead).
    const n = 64
    for (let i = 1; i <= n; i++) {
      c.ws.send(encodeApiRequests([{ kind: 'view', id: i, instance: 1n, box: Uint8Array.of(i) }]))
      await new Promise((r) => setTimeout(r, 25))
    }
    // Wait until the operator stops taking requests (at most 10 s).
    let last = -1
    for (let i = 0; i < 100 && calls !== last; i++) {
      last = calls
      await new Promise((r) => setTimeout(r, 100))
    }
    const cap = API_SOCKET_LIMITS.maxUnsentAnswerBytes / MiB
    // The limit, plus what the two kernels' socket buffers took before the operator's grew.
    assert.ok(
      calls < (3 * n) / 4,
      `${calls} of ${n} requests read while no answer was (limit ${cap} MiB)`,
    )
    assert.ok(calls > cap, `${calls} requests read: answers up to the limit were sent`)
    c.ws.resume()
    await c.until(n)
    assert.equal(calls, n)
    assert.deepEqual(
      c.answers.map((a) => a.id).sort((x, y) => x - y),
      Array.from({ length: n }, (_, i) => i + 1),
    )
    assert.ok(c.answers.every((a) => a.kind === 'sealed' && a.sealed.length === MiB))
  } finally {
    c.ws.terminate()
    await sockets.close()
    http.close()
  }
})

test('answers larger than a request frame arrive whole, in frames of their own', async () => {
  const [big, small] = await Promise.all([
    socketRequest(server.endpoint, 'view', 5n, Uint8Array.of(4, 5), 10_000),
    socketRequest(server.endpoint, 'view', 5n, Uint8Array.of(4, 1), 10_000),
  ])
  assert.equal(big.length, 5 * 1024 * 1024)
  assert.ok(big.every((b) => b === 5))
  assert.equal(small.length, 1024 * 1024)
  assert.ok(API_SOCKET_LIMITS.maxFrameBytes < big.length)
})

test('a connection lost with requests pending fails them with UNAVAILABLE', async () => {
  const s = await serve(true)
  try {
    const pending = rejection(socketRequest(s.endpoint, 'tx', 5n, Uint8Array.of(2), 5_000))
    // Opened and sent: the operator holds the request when it goes.
    for (let i = 0; i < 200 && s.sockets.connections === 0; i++)
      await new Promise((r) => setTimeout(r, 5))
    await new Promise((r) => setTimeout(r, 50))
    await s.sockets.close()
    const e = await pending
    assert.ok(e instanceof PoseRequestError)
    assert.equal(e.code, 'UNAVAILABLE')
  } finally {
    await s.close()
  }
})

test('a host that accepts connections and never answers: TIMEOUT, and the connection is dropped', async () => {
  // A stopped host (SIGSTOP): the kernel accepts the connection, nobody reads it.
  const sockets: Socket[] = []
  let closed = 0
  const silent = createServer((c) => {
    sockets.push(c)
    c.on('close', () => closed++).on('error', () => undefined)
    c.resume() // reads and drops: sees the client's end
  })
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r))
  const endpoint = `http://127.0.0.1:${(silent.address() as { port: number }).port}`
  try {
    // The upgrade may take longer than the request (by default it takes at most half of it,
    // and the request then goes over HTTP: transport.test.ts).
    const e = await rejection(socketRequest(endpoint, 'tx', 5n, Uint8Array.of(9, 0), 200, 10_000))
    assert.ok(e instanceof PoseRequestError)
    assert.equal(e.code, 'TIMEOUT')
    assert.equal(sockets.length, 1)
    for (let i = 0; i < 200 && closed === 0; i++) await new Promise((r) => setTimeout(r, 10))
    assert.equal(closed, 1, 'the client closed the connection')
  } finally {
    for (const c of sockets) c.destroy()
    await new Promise<void>((r) => silent.close(() => r()))
  }
})

test('a host whose WebSocket upgrade is never answered fails the connection as unavailable (the request then goes over HTTP)', async () => {
  const sockets: Socket[] = []
  const silent = createServer((c) => {
    sockets.push(c)
    c.on('error', () => undefined)
    c.resume()
  })
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r))
  const endpoint = `http://127.0.0.1:${(silent.address() as { port: number }).port}`
  try {
    // Without the upgrade's own timeout the request would end in TIMEOUT, never tried over HTTP.
    const e = await rejection(socketRequest(endpoint, 'tx', 5n, Uint8Array.of(9, 0), 5_000, 100))
    assert.ok(e instanceof SocketUnavailableError, String(e))
  } finally {
    for (const c of sockets) c.destroy()
    await new Promise<void>((r) => silent.close(() => r()))
  }
})

test("an endpoint no WebSocket can open is refused with the HTTP transport's typed error", async () => {
  const e = await rejection(socketRequest('ftp://127.0.0.1/x', 'tx', 5n, Uint8Array.of(9), 1_000))
  assert.ok(e instanceof SocketUnavailableError)
  const viaHttp = await rejection(
    requestSealed('ftp://127.0.0.1/x', 'tx', 5n, Uint8Array.of(9), { transport: 'ws' }),
  )
  assert.ok(viaHttp instanceof PoseRequestError)
  assert.equal(viaHttp.code, 'UNAVAILABLE')
})

test('an operator without the WebSocket API is sent the request over HTTP', async () => {
  const e = await rejection(socketRequest(plain.endpoint, 'tx', 5n, Uint8Array.of(9, 0), 5_000))
  assert.ok(e instanceof SocketUnavailableError)
  const sealed = await requestSealed(plain.endpoint, 'tx', 5n, Uint8Array.of(9, 0), {
    transport: 'ws',
  })
  assert.deepEqual(sealed, Uint8Array.of(1, 9, 0))
})

test('an idle connection does not keep the process alive', async () => {
  const script = [
    `import { socketRequest } from ${JSON.stringify(new URL('../../src/client/socketTransport.ts', import.meta.url).href)}`,
    `const a = await socketRequest(${JSON.stringify(server.endpoint)}, 'tx', 5n, Uint8Array.of(9, 0), 5000)`,
    `console.log(Array.from(a).join(','))`,
  ].join('\n')
  const { code: exitCode, signal, out } = await runScript(script, { killAfterMs: 15_000 })
  assert.equal(signal, null, 'the process exited by itself')
  assert.equal(exitCode, 0)
  assert.equal(out.trim(), '1,9,0')
})
