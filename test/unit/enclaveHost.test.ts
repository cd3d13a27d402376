/**
 * The ecall channel. Host side, against a stand-in enclave process that answers every ecall
 * but one method, which it never answers (as an enclave that hangs; simulator seed 128): the
 * host reports that ecall once it has waited `slowEcallMs`, and not the answered ones; and
 * ecalls made in one turn of the host's event loop reach the enclave as one message. Enclave
 * side, against the real bundle: a malformed batch is refused and runs nothing; peer messages
 * run before the other ecalls queued with them.
 */
import assert from 'node:assert/strict'
import { fork } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import {
  type EcallResponse,
  LIMITS,
  type ProtocolError,
  unpackResponses,
} from '../../src/protocol/index.ts'
import { EnclaveHost, type EnclaveHostOptions } from '../../src/tee/enclaveHost.ts'
import { DEFAULT_BUNDLE_PATH } from '../../src/tee/measurement.ts'

/** Answers `status` with how many messages it had received and its place in its message. */
const STAND_IN = `
let messages = 0
process.send({ ready: true })
process.on('message', (m) => {
  messages++
  const answer = (r, place) => r.method === 'tick' ? undefined
    : { id: r.id, ok: true, result: { messages, place }, outputs: [] }
  if (m.batch) process.send({ batch: m.batch.map(answer).filter(Boolean) })
  else if (answer(m, 0)) process.send(answer(m, 0))
})
process.on('disconnect', () => process.exit(0))
`

/** Runs `fn` with a started host over the stand-in; stops it and removes the stand-in after. */
async function withStandIn(
  opts: Omit<EnclaveHostOptions, 'bundlePath'>,
  fn: (host: EnclaveHost) => Promise<void>,
): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'enclave-host-'))
  const bundlePath = join(dir, 'stand-in.mjs')
  writeFileSync(bundlePath, STAND_IN)
  const host = new EnclaveHost({ ...opts, bundlePath })
  try {
    await host.start()
    await fn(host)
  } finally {
    await host.stop()
    rmSync(dir, { recursive: true, force: true })
  }
}

test('an ecall the enclave leaves unanswered is reported once, with its method and the ecalls pending', {
  timeout: 15_000,
}, async () => {
  const slow: Array<{ method: string; waitedMs: number; pending: number }> = []
  let reported: () => void = () => {}
  const firstReport = new Promise<void>((r) => {
    reported = r
  })
  await withStandIn(
    {
      slowEcallMs: 200,
      onSlowEcall: (method, waitedMs, pending) => {
        slow.push({ method, waitedMs, pending })
        reported()
      },
    },
    async (host) => {
      const answered = await host.ecall('status', {})
      assert.deepEqual(answered.outputs, [])
      const hung = host.ecall('tick', { now: 1 })
      hung.catch(() => undefined)
      let bound: NodeJS.Timeout | undefined
      await Promise.race([
        firstReport,
        new Promise((_, reject) => {
          bound = setTimeout(
            () => reject(new Error('the unanswered ecall was not reported')),
            5_000,
          )
        }),
      ]).finally(() => clearTimeout(bound))
      // Answered ecalls made meanwhile and after are not reported.
      await host.ecall('status', {})
      await new Promise((r) => setTimeout(r, 400))
      assert.deepEqual(slow, [{ method: 'tick', waitedMs: 200, pending: 1 }])
    },
  )
})

test('an ecall unanswered past hungEcallMs kills the hung enclave: its ecalls fail and onExit follows', {
  timeout: 15_000,
}, async () => {
  const hung: Array<[string, number]> = []
  let exited: (v: [number | null, NodeJS.Signals | null]) => void = () => {}
  const exit = new Promise<[number | null, NodeJS.Signals | null]>((r) => {
    exited = r
  })
  await withStandIn(
    {
      hungEcallMs: 300,
      onHung: (method, waitedMs) => hung.push([method, waitedMs]),
      onExit: (code, signal) => exited([code, signal]),
    },
    async (host) => {
      await host.ecall('status', {})
      await assert.rejects(host.ecall('tick', { now: 1 }), (e: ProtocolError) => {
        assert.equal(e.code, 'UNAVAILABLE')
        assert.match(e.message, /exited/)
        return true
      })
      assert.deepEqual(await exit, [null, 'SIGKILL'])
      assert.deepEqual(hung, [['tick', 300]])
      await assert.rejects(host.ecall('status', {}), /not running/)
    },
  )
})

test('ecalls made in one turn of the event loop reach the enclave as one message, answered in order', {
  timeout: 15_000,
}, async () => {
  await withStandIn({}, async (host) => {
    const one = await host.ecall('status', {})
    assert.deepEqual(one.result, { messages: 1, place: 0 })
    const five = await Promise.all(Array.from({ length: 5 }, () => host.ecall('status', {})))
    // One message (the second), each ecall answered with its own result.
    assert.deepEqual(
      five.map((r) => r.result),
      [0, 1, 2, 3, 4].map((place) => ({ messages: 2, place })),
    )
    const later = await host.ecall('status', {})
    assert.deepEqual(later.result, { messages: 3, place: 0 })
  })
})

test('an ecall whose parameters cannot be sent fails alone with MALFORMED; the rest of its turn is answered', {
  timeout: 15_000,
}, async () => {
  await withStandIn({}, async (host) => {
    // A peer's envelope nested deeper than the structured clone can serialise.
    let deep: unknown[] = []
    for (let i = 0; i < 10_000; i++) deep = [deep]
    const turn = [
      host.ecall('status', {}),
      host.ecall('peer', { envelope: deep }),
      host.ecall('status', {}),
    ]
    const settled = await Promise.allSettled(turn)
    assert.deepEqual(
      settled.map((r) => r.status),
      ['fulfilled', 'rejected', 'fulfilled'],
    )
    const err = (settled[1] as PromiseRejectedResult).reason as ProtocolError
    assert.equal(err.code, 'MALFORMED')
    assert.match(err.message, /ecall peer: its parameters cannot be passed to the enclave/)
    // The channel still works.
    assert.ok((await host.ecall('status', {})).result)
  })
})

test('the enclave refuses a malformed ecall batch with MALFORMED, runs nothing of it, keeps answering and runs peer messages first', {
  timeout: 15_000,
}, async () => {
  const child = fork(DEFAULT_BUNDLE_PATH, [], {
    serialization: 'advanced',
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  const inbox: EcallResponse[] = []
  let wake: () => void = () => {}
  child.on('message', (m: unknown) => {
    unpackResponses(m, (r) => inbox.push(r))
    wake()
  })
  const next = async (): Promise<EcallResponse> => {
    for (let i = 0; i < 100 && inbox.length === 0; i++) {
      await new Promise<void>((r) => {
        wake = r
        setTimeout(r, 100)
      })
    }
    const m = inbox.shift()
    if (!m) throw new Error('no answer from the enclave process within 10 s')
    return m
  }
  try {
    const ready = await next()
    assert.ok(ready.ok && (ready.result as { ready?: boolean }).ready)
    const status = (id: number) => ({ id, method: 'status', params: {} })
    const tooMany = Array.from({ length: LIMITS.maxEcallBatch + 1 }, (_, i) => status(100 + i))
    for (const batch of ['status', [], { 0: status(7) }, tooMany]) {
      child.send({ batch })
      const r = await next()
      assert.equal(r.ok, false)
      assert.equal(r.id, -1)
      if (!r.ok) assert.equal(r.error.code, 'MALFORMED')
    }
    // A well-formed batch runs its ecalls in order; the uninitialised enclave refuses `status`
    // with NOT_READY, so each answer carries its own id.
    child.send({ batch: [status(1), { id: 2, method: 'nope', params: {} }, status(3)] })
    const answers = [await next(), await next(), await next()]
    assert.deepEqual(
      answers.map((a) => [a.id, a.ok ? 'ok' : a.error.code]),
      [
        [1, 'NOT_READY'],
        [2, 'MALFORMED'],
        [3, 'NOT_READY'],
      ],
    )
    // Peer messages (updates, acknowledgements) go before the ecalls queued with them, each
    // class in its own order: an acknowledgement never waits behind a run of transactions.
    const peer = (id: number) => ({ id, method: 'peer', params: { envelope: 'junk' } })
    child.send({ batch: [status(4), peer(5), status(6), peer(7)] })
    const ordered = [await next(), await next(), await next(), await next()]
    assert.deepEqual(
      ordered.map((a) => a.id),
      [5, 7, 4, 6],
    )
    // A run of `tx` ecalls (protocol/ecallWire.ts) whose parts do not fit together is refused
    // with MALFORMED for each of its ids, or as a whole (id -1) when its ids cannot be read.
    const run = (over: object) => ({
      txs: {
        ids: [8, 9],
        instance: 1n,
        requestIds: ['a', 'b'],
        boxes: new Uint8Array(4),
        ends: Uint32Array.of(2, 4),
        ...over,
      },
    })
    const refusals: Array<[object, number[], RegExp]> = [
      [{ ids: 'x' }, [-1], /tx run: expected 1 to \d+ ecall ids/],
      [{ ids: [8, 9.5] }, [-1], /ecall ids/],
      [{ requestIds: ['a'] }, [8, 9], /tx run: expected 2 request ids/],
      [{ boxes: [1, 2, 3, 4] }, [8, 9], /tx run: boxes: expected bytes/],
      [{ ends: [2, 4] }, [8, 9], /tx run: ends: expected a Uint32Array of 2/],
      [{ ends: Uint32Array.of(3, 2) }, [8, 9], /tx run: ends\[1\]: 2 is outside 3\.\.4/],
      [{ ends: Uint32Array.of(2, 5) }, [8, 9], /tx run: ends\[1\]: 5 is outside 2\.\.4/],
      [{ ends: Uint32Array.of(1, 3) }, [8, 9], /tx run: boxes: 1 bytes after the last/],
    ]
    for (const [over, ids, message] of refusals) {
      child.send({ batch: [run(over)] })
      for (const id of ids) {
        const r = await next()
        assert.equal(r.id, id)
        assert.ok(
          !r.ok && r.error.code === 'MALFORMED' && message.test(r.error.message),
          r.ok ? 'ok' : r.error.message,
        )
      }
    }
    // A run that fits: each of its ecalls runs and is answered on its own (NOT_READY here).
    child.send({ batch: [run({}), status(10)] })
    const fromRun = [await next(), await next(), await next()]
    assert.deepEqual(
      fromRun.map((a) => [a.id, a.ok ? 'ok' : a.error.code]),
      [
        [8, 'NOT_READY'],
        [9, 'NOT_READY'],
        [10, 'NOT_READY'],
      ],
    )
    assert.equal(inbox.length, 0, 'nothing ran from the refused batches')
  } finally {
    child.kill()
  }
})
