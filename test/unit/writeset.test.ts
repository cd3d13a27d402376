import assert from 'node:assert/strict'
import { test } from 'node:test'
import fc from 'fast-check'
import {
  canonicalizeWriteSet,
  decodeWriteSet,
  encodeWriteSet,
  ProtocolError,
  type WriteSet,
} from '../../src/protocol/index.ts'

const b = (n: number) => fc.uint8Array({ minLength: n, maxLength: n })
const writeSet: fc.Arbitrary<WriteSet> = fc
  .record(
    {
      accounts: fc.uniqueArray(
        fc.record(
          {
            address: b(20),
            nonce: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
            balance: fc.bigInt({ min: 0n, max: (1n << 256n) - 1n }),
            code: fc.option(fc.uint8Array({ maxLength: 100 }), { nil: undefined }),
            storage: fc.uniqueArray(fc.tuple(b(32), b(32)), {
              maxLength: 5,
              selector: (s) => Buffer.from(s[0]).toString('hex'),
            }),
          },
          { requiredKeys: ['address', 'nonce', 'balance', 'storage'], noNullPrototype: true },
        ),
        { maxLength: 6, selector: (a) => Buffer.from(a.address).toString('hex') },
      ),
      deleted: fc.uniqueArray(b(20), {
        maxLength: 3,
        selector: (a) => Buffer.from(a).toString('hex'),
      }),
    },
    { noNullPrototype: true },
  )
  .map((ws) => canonicalizeWriteSet(ws as WriteSet))

test('write sets round-trip and encode canonically', () => {
  fc.assert(
    fc.property(writeSet, (ws) => {
      const bytes = encodeWriteSet(ws)
      const back = decodeWriteSet(bytes)
      assert.deepEqual(encodeWriteSet(back), bytes)
      assert.equal(back.accounts.length, ws.accounts.length)
      return true
    }),
    { numRuns: 300 },
  )
})

test('truncation at every offset, trailing bytes and bad versions are rejected', () => {
  const [ws] = fc.sample(
    writeSet.filter((w) => w.accounts.length > 0),
    1,
  ) as [WriteSet]
  const bytes = encodeWriteSet(ws)
  for (let i = 0; i < bytes.length; i++) {
    assert.throws(
      () => decodeWriteSet(bytes.subarray(0, i)),
      (e: unknown) => e instanceof ProtocolError && e.code === 'MALFORMED',
    )
  }
  assert.throws(() => decodeWriteSet(Uint8Array.from([...bytes, 0])), /trailing/)
  assert.throws(() => decodeWriteSet(Uint8Array.from([2, ...bytes.subarray(1)])), /version/)
  assert.throws(() => decodeWriteSet(bytes, { maxBytes: bytes.length - 1 }), /exceeds/)
})

test('duplicate or unsorted accounts and slots are rejected', () => {
  const a = {
    address: new Uint8Array(20).fill(2),
    nonce: 1n,
    balance: 2n,
    storage: [] as Array<[Uint8Array, Uint8Array]>,
  }
  const dup = { accounts: [a, { ...a }], deleted: [] }
  assert.throws(() => encodeWriteSet(dup), /canonical/)
  const one = encodeWriteSet({ accounts: [a], deleted: [] })
  // Splice the same account twice by hand: decode must refuse.
  const body = one.subarray(5, one.length - 4)
  const forged = Uint8Array.from([1, 0, 0, 0, 2, ...body, ...body, 0, 0, 0, 0])
  assert.throws(() => decodeWriteSet(forged), /canonical order/)
  const slots = {
    accounts: [
      {
        ...a,
        storage: [
          [new Uint8Array(32).fill(9), new Uint8Array(32)],
          [new Uint8Array(32).fill(1), new Uint8Array(32)],
        ] as Array<[Uint8Array, Uint8Array]>,
      },
    ],
    deleted: [],
  }
  assert.throws(() => encodeWriteSet(slots), /canonical/)
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 400 }), (bytes) => {
      try {
        decodeWriteSet(bytes)
      } catch (e) {
        assert.ok(e instanceof ProtocolError)
      }
      return true
    }),
    { numRuns: 500 },
  )
})
