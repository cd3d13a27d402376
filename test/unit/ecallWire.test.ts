/**
 * The ecall channel's compact items (src/protocol/ecallWire.ts): whatever the host sends and
 * the enclave answers comes out of packing, Node's structured clone and unpacking as it went
 * in; runs are packed only where they may be; and an `answers` output that does not fit
 * together reaches the host as a warning, never as a crash or a wrong answer.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { deserialize, serialize } from 'node:v8'
import fc from 'fast-check'
import {
  type EcallRequest,
  type EcallResponse,
  type EnclaveOutput,
  isTxRun,
  packRequests,
  packResponses,
  unpackResponses,
  unpackTxRun,
} from '../../src/protocol/index.ts'

/** Through the channel's serialisation (Node's `advanced` IPC uses V8's serializer). */
const clone = <T>(v: T): T => deserialize(serialize(v)) as T

/** As the enclave's runner reads a message's items. */
function expandRequests(items: unknown[]): unknown[] {
  const out: unknown[] = []
  for (const item of items) {
    if (!isTxRun(item)) {
      out.push(item)
      continue
    }
    const run = unpackTxRun(item)
    assert.ok('ecalls' in run, 'a packed run unpacks')
    out.push(...run.ecalls)
  }
  return out
}

/** Byte arrays compared by their bytes, whatever their class and buffer. */
const plain = (v: unknown): unknown =>
  v instanceof Uint8Array
    ? { bytes: [...v] }
    : Array.isArray(v)
      ? v.map(plain)
      : typeof v === 'object' && v !== null
        ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]))
        : v

const bytesArb = fc.uint8Array({ maxLength: 300 })
const txArb = fc.record({
  requestId: fc.string({ minLength: 1, maxLength: 40 }),
  instance: fc.constantFrom(1n, 2n, 2n ** 200n),
  box: bytesArb,
})
const requestArb: fc.Arbitrary<Omit<EcallRequest, 'id'>> = fc.oneof(
  { weight: 6, arbitrary: txArb.map((params) => ({ method: 'tx' as const, params })) },
  // Not packable: a further field, or a box that is not bytes. They go as they are.
  {
    weight: 1,
    arbitrary: txArb.map((p) => ({ method: 'tx' as const, params: { ...p, extra: 1 } })),
  },
  {
    weight: 1,
    arbitrary: txArb.map((p) => ({ method: 'tx' as const, params: { ...p, box: [1, 2] } })),
  },
  {
    weight: 1,
    arbitrary: fc.constant({ method: 'tick' as const, params: { now: 5 } }),
  },
  {
    weight: 1,
    arbitrary: bytesArb.map((b) => ({ method: 'view' as const, params: { box: b } })),
  },
)

test('requests come out of packing, the channel and unpacking as they went in; runs of two or more become one item', () => {
  fc.assert(
    fc.property(fc.array(requestArb, { maxLength: 60 }), (drawn) => {
      const requests = drawn.map((r, i) => ({ id: i + 1, ...r }) as EcallRequest)
      const items = clone(packRequests(requests))
      assert.deepEqual(plain(expandRequests(items)), plain(requests))
      // Count the runs a packer must make: consecutive plain `tx` ecalls of one instance.
      let expected = 0
      for (let i = 0; i < requests.length; ) {
        const key = (r: EcallRequest) => {
          const p = r.params as { instance?: bigint; box?: unknown; extra?: unknown }
          return r.method === 'tx' && p.box instanceof Uint8Array && !('extra' in p)
            ? p.instance
            : undefined
        }
        const k = key(requests[i]!)
        let j = i + 1
        while (k !== undefined && j < requests.length && key(requests[j]!) === k) j++
        expected += j - i >= 2 ? 1 : j - i
        i = j
      }
      assert.equal(items.length, expected)
    }),
    { numRuns: 300 },
  )
})

const sealedAnswer = fc.record({
  type: fc.constant('answer' as const),
  requestId: fc.string({ maxLength: 40 }),
  sealed: bytesArb,
})
const outputArb: fc.Arbitrary<EnclaveOutput> = fc.oneof(
  { weight: 6, arbitrary: sealedAnswer },
  {
    weight: 1,
    arbitrary: fc.record({
      type: fc.constant('answer' as const),
      requestId: fc.string({ maxLength: 8 }),
      error: fc.constant({ name: 'ProtocolError', code: 'TIMEOUT' as const, message: 'late' }),
    }),
  },
  {
    weight: 1,
    arbitrary: bytesArb.map((blob) => ({
      type: 'seal' as const,
      instance: 3n,
      mode: 'append' as const,
      blob,
    })),
  },
  {
    weight: 1,
    arbitrary: fc.constant({
      type: 'log' as const,
      level: 'info' as const,
      message: 'm',
      fields: { a: 1 },
    }),
  },
)
const responseArb: fc.Arbitrary<Omit<EcallResponse, 'id'>> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.constant({ ok: true as const, result: {}, outputs: [] as EnclaveOutput[] }),
  },
  {
    weight: 2,
    arbitrary: fc
      .array(outputArb, { maxLength: 12 })
      .map((outputs) => ({ ok: true as const, result: {}, outputs })),
  },
  {
    weight: 1,
    arbitrary: fc.constant({
      ok: true as const,
      result: { seq: 4n },
      outputs: [] as EnclaveOutput[],
    }),
  },
  {
    weight: 1,
    arbitrary: fc.array(outputArb, { maxLength: 4 }).map((outputs) => ({
      ok: false as const,
      error: { name: 'ProtocolError', code: 'MALFORMED' as const, message: 'bad' },
      outputs,
    })),
  },
)

test('responses come out of packing, the channel and unpacking as they went in, in order', () => {
  fc.assert(
    fc.property(fc.array(responseArb, { maxLength: 40 }), (drawn) => {
      const responses = drawn.map((r, i) => ({ id: i + 1, ...r }) as EcallResponse)
      const items = clone(packResponses(responses))
      const out: EcallResponse[] = []
      for (const item of items) unpackResponses(item, (r) => out.push(r))
      assert.deepEqual(plain(out), plain(responses))
      // The same, given the whole message as the host receives it.
      const whole: EcallResponse[] = []
      unpackResponses(clone({ batch: packResponses(responses) }), (r) => whole.push(r))
      assert.deepEqual(plain(whole), plain(responses))
      // Nothing packed is larger as items than as it was.
      assert.ok(items.length <= responses.length)
    }),
    { numRuns: 300 },
  )
})

test('a run of empty successful responses travels as its ids; sealed answers in one array', () => {
  const ok = (id: number): EcallResponse => ({ id, ok: true, result: {}, outputs: [] })
  const answer = (requestId: string, n: number): EnclaveOutput => ({
    type: 'answer',
    requestId,
    sealed: new Uint8Array(n).fill(n),
  })
  const withAnswers: EcallResponse = {
    id: 4,
    ok: true,
    result: {},
    outputs: [
      answer('a', 3),
      answer('b', 5),
      { type: 'log', level: 'info', message: 'x', fields: {} },
    ],
  }
  const items = packResponses([ok(1), ok(2), ok(3), withAnswers, ok(5)])
  assert.deepEqual(items[0], { oks: [1, 2, 3] })
  const packed = (items[1] as { outputs: Array<{ type: string }> }).outputs
  assert.deepEqual(
    packed.map((o) => o.type),
    ['answers', 'log'],
  )
  assert.deepEqual([...(packed[0] as unknown as { ends: Uint32Array }).ends], [3, 8])
  assert.deepEqual(items[2], ok(5), 'a lone empty response goes as it is')
})

test('the host turns answers that do not fit together into a warning and keeps the other outputs', () => {
  const seal: EnclaveOutput = {
    type: 'seal',
    instance: 1n,
    mode: 'append',
    blob: new Uint8Array([1]),
  }
  const answers = (over: object) => ({
    type: 'answers',
    requestIds: ['a', 'b'],
    sealed: new Uint8Array(6),
    ends: Uint32Array.of(2, 6),
    ...over,
  })
  for (const over of [
    { ends: Uint32Array.of(4, 2) },
    { ends: Uint32Array.of(2, 7) },
    { ends: [2, 6] },
    { requestIds: ['a'] },
    { requestIds: ['a', 7] },
    { sealed: 'xx' },
  ]) {
    const out: EcallResponse[] = []
    unpackResponses({ id: 9, ok: true, result: {}, outputs: [seal, answers(over)] }, (r) =>
      out.push(r),
    )
    assert.equal(out.length, 1)
    assert.deepEqual(
      out[0]!.outputs.map((o) => o.type),
      ['seal', 'log'],
    )
    const log = out[0]!.outputs[1] as Extract<EnclaveOutput, { type: 'log' }>
    assert.equal(log.level, 'warn')
    assert.match(log.message, /answers that do not fit together/)
  }
  // What is not an object, and ids that are not numbers, are skipped.
  const got: EcallResponse[] = []
  for (const junk of [null, 7, 'x', { oks: 'x' }, { oks: [1, '2', null, 3] }])
    unpackResponses(junk, (r) => got.push(r))
  assert.deepEqual(
    got.map((r) => r.id),
    [1, 3],
  )
})

test('a response the host cannot read fails its ecall alone with MALFORMED and none of its outputs', () => {
  const seal: EnclaveOutput = { type: 'seal', instance: 1n, mode: 'append', blob: Uint8Array.of(1) }
  const cases: Array<[unknown, RegExp]> = [
    [{ id: 1, ok: true, result: {} }, /`outputs` is not an array/],
    [{ id: 2, ok: 'yes', result: {}, outputs: [] }, /`ok` is not a boolean/],
    [{ id: 3, ok: true, result: {}, outputs: [seal, null] }, /not an object with a type/],
    [{ id: 4, ok: true, result: {}, outputs: [seal, { type: 7 }] }, /not an object with a type/],
    [{ id: 5, ok: false, outputs: [seal] }, /`error` is missing/],
  ]
  for (const [response, why] of cases) {
    const out: EcallResponse[] = []
    unpackResponses({ batch: [response, { id: 9, ok: true, result: {}, outputs: [seal] }] }, (r) =>
      out.push(r),
    )
    assert.equal(out.length, 2)
    const [bad, good] = out as [EcallResponse, EcallResponse]
    assert.equal(bad.id, (response as { id: number }).id)
    assert.ok(!bad.ok)
    assert.equal(bad.error.code, 'MALFORMED')
    assert.match(bad.error.message, why)
    assert.deepEqual(bad.outputs, [])
    // The next response of the message is handled as usual.
    assert.deepEqual(good, { id: 9, ok: true, result: {}, outputs: [seal] })
  }
})
