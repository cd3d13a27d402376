import assert from 'node:assert/strict'
import { test } from 'node:test'
import { deflateRawSync } from 'node:zlib'
import fc from 'fast-check'
import { encodeAbiParameters, hexToBigInt, numberToHex, keccak256 as viemKeccak } from 'viem'
import {
  activationDigest,
  attestationReportHash,
  bytesToHex,
  bytesToUnprefixedHex,
  decodeAckBody,
  decodeAnswer,
  decodeDeployRequest,
  decodeEnvelope,
  decodeExecuted,
  decodeGenesisSecrets,
  decodeReceipt,
  decodeSealedUpdate,
  decodeSignedTx,
  decodeSignedView,
  decodeSyncBody,
  decodeUpdateBody,
  decodeUpdatePayload,
  encodeAckBody,
  encodeAnswer,
  encodeDeployRequest,
  encodeEnvelope,
  encodeExecuted,
  encodeGenesisSecrets,
  encodeReceipt,
  encodeSealedUpdate,
  encodeSignedTx,
  encodeSignedView,
  encodeSyncBody,
  encodeUpdateBody,
  encodeUpdatePayload,
  envelopeFromWire,
  envelopeSchema,
  envelopeToWire,
  generateSecretKey,
  hashTagged,
  hexToBytes,
  isHex,
  keccak256,
  MAX_RECEIPT_PROOF,
  nextEventHash,
  ProtocolError,
  packUpdatePayload,
  type Receipt,
  randomBytes,
  receiptDigestTagged,
  receiptNode,
  receiptNodeTagged,
  scanUpdatePayload,
  secretKeyToAddress,
  signDigest,
  signEnvelope,
  signReceipt,
  signReceipts,
  tagEnvelope,
  uintToWord,
  unpackUpdatePayload,
  utf8,
  verifyEnvelope,
  verifyEnvelopeTag,
  verifyReceiptSignature,
  wordToUint,
} from '../../src/protocol/index.ts'

const b = (n: number) => fc.uint8Array({ minLength: n, maxLength: n })
const bytes = (max = 200) => fc.uint8Array({ maxLength: max })
const u = (bits: number) => fc.bigInt({ min: 0n, max: (1n << BigInt(bits)) - 1n })
const isCode = (code: string) => (e: unknown) => e instanceof ProtocolError && e.code === code

const signedTx = fc.record(
  {
    instance: u(256),
    from: b(20),
    nonce: u(64),
    to: b(20),
    value: u(256),
    data: bytes(),
    gasLimit: u(64),
    signature: b(65),
    session: fc.record({ validUntil: u(64) }, { noNullPrototype: true }),
  },
  {
    noNullPrototype: true,
    requiredKeys: ['instance', 'from', 'nonce', 'to', 'value', 'data', 'gasLimit', 'signature'],
  },
)
const signedView = fc.record(
  { instance: u(256), from: b(20), to: b(20), data: bytes(), expiry: u(64), signature: b(65) },
  { noNullPrototype: true },
)
const log = fc.record(
  { address: b(20), topics: fc.array(b(32), { maxLength: 4 }), data: bytes(64) },
  { noNullPrototype: true },
)
const receipt = fc.record(
  {
    instance: u(256),
    txHash: b(32),
    from: b(20),
    nonce: u(64),
    seq: u(64),
    status: fc.constantFrom('success' as const, 'revert' as const, 'error' as const),
    gasUsed: u(64),
    returnData: bytes(),
    logs: fc.array(log, { maxLength: 3 }),
    executor: b(20),
    proof: fc.array(b(32), { minLength: 1, maxLength: 5 }),
    signature: b(65),
  },
  {
    noNullPrototype: true,
    requiredKeys: [
      'instance',
      'txHash',
      'from',
      'nonce',
      'seq',
      'status',
      'gasUsed',
      'returnData',
      'logs',
      'executor',
      'signature',
    ],
  },
)

test('hex: bytesToHex and hexToBytes agree with Buffer at every length, also for views, and refuse what is not 0x-prefixed even-length hex', () => {
  fc.assert(
    fc.property(bytes(400), fc.nat(7), (raw, offset) => {
      const expected = `0x${Buffer.from(raw).toString('hex')}`
      // A fresh array (kept in V8's heap up to 64 bytes) and a view into a larger buffer.
      const framed = new Uint8Array(raw.length + offset + 3).fill(0xee)
      framed.set(raw, offset)
      const view = framed.subarray(offset, offset + raw.length)
      assert.equal(bytesToHex(new Uint8Array(raw)), expected)
      assert.equal(bytesToHex(view), expected)
      assert.equal(bytesToUnprefixedHex(view), expected.slice(2))
      assert.deepEqual(hexToBytes(expected), new Uint8Array(raw))
      assert.deepEqual(hexToBytes(expected.toUpperCase().replace('0X', '0x')), new Uint8Array(raw))
      assert.deepEqual(hexToBytes(expected, 'x', raw.length), new Uint8Array(raw))
      return true
    }),
    { numRuns: 400 },
  )
  for (const bad of [
    '',
    '0',
    '00',
    '0X00',
    'x00',
    '0x0',
    '0x000',
    '0xg0',
    '0x0g',
    '0x 0',
    '0x0\u0130',
    '0x\u00e90',
    '0x-1',
  ]) {
    assert.throws(() => hexToBytes(bad, 'field'), /field: expected 0x-prefixed hex/, bad)
    assert.equal(isHex(bad), false, bad)
  }
  for (const bad of [undefined, null, 12, {}] as unknown[])
    assert.throws(() => hexToBytes(bad as string, 'field'), /field: expected 0x-prefixed hex/)
  assert.deepEqual(hexToBytes('0x'), new Uint8Array(0))
  assert.throws(() => hexToBytes('0x0011', 'key', 3), /key: expected 3 bytes, got 2/)
})

test('256-bit words: uintToWord and wordToUint agree with viem and invert each other', () => {
  fc.assert(
    fc.property(fc.oneof(u(256), u(64), u(8)), (x) => {
      const w = uintToWord(x)
      assert.equal(bytesToHex(w), numberToHex(x, { size: 32 }))
      assert.equal(wordToUint(w), x)
      return true
    }),
    { numRuns: 500 },
  )
  fc.assert(
    fc.property(bytes(40), (w) => {
      assert.equal(wordToUint(w), w.length === 0 ? 0n : hexToBigInt(bytesToHex(w)))
      // A view into a larger buffer reads only its own bytes.
      const framed = new Uint8Array(w.length + 7).fill(0xff)
      framed.set(w, 3)
      assert.equal(wordToUint(framed.subarray(3, 3 + w.length)), wordToUint(w))
      return true
    }),
    { numRuns: 500 },
  )
  // Around the one-write path for words below 2^64.
  for (const x of [(1n << 64n) - 1n, 1n << 64n, (1n << 64n) + 1n, (1n << 128n) + 3n])
    assert.equal(bytesToHex(uintToWord(x)), numberToHex(x, { size: 32 }))
  assert.throws(() => uintToWord(1n << 256n), isCode('OUT_OF_RANGE'))
  assert.throws(() => uintToWord(-1n), isCode('OUT_OF_RANGE'))
  assert.throws(() => uintToWord(1n << 64n, 'seq', 64), /seq: .* does not fit in uint64/)
})

const executed = receipt.map(
  ({ instance: _i, seq: _s, executor: _e, signature: _g, proof: _p, ...rest }) => rest,
)
const updatePayload = fc.record(
  {
    writeSet: bytes(),
    results: fc.array(executed, { maxLength: 4 }),
    blockNumber: u(64),
    timestamp: u(64),
  },
  { noNullPrototype: true },
)

test('codecs round-trip', () => {
  fc.assert(
    fc.property(signedTx, (x) => assert.deepEqual(decodeSignedTx(encodeSignedTx(x)), x) ?? true),
  )
  fc.assert(
    fc.property(
      signedView,
      (x) => assert.deepEqual(decodeSignedView(encodeSignedView(x)), x) ?? true,
    ),
  )
  fc.assert(
    fc.property(receipt, (x) => assert.deepEqual(decodeReceipt(encodeReceipt(x)), x) ?? true),
  )
  fc.assert(
    fc.property(
      receipt,
      (r) =>
        assert.deepEqual(decodeAnswer(encodeAnswer({ kind: 'receipt', receipt: r })), {
          kind: 'receipt',
          receipt: r,
        }) ?? true,
    ),
  )
  fc.assert(
    fc.property(receipt, fc.nat(16), (r, at) => {
      // An answer's fields are views into it: plain Uint8Arrays even when it is a Buffer, and
      // read from the right place when it starts at an offset in a larger buffer.
      const encoded = encodeAnswer({ kind: 'receipt', receipt: r })
      const input = Buffer.alloc(at + encoded.length)
      input.set(encoded, at)
      const a = decodeAnswer(input.subarray(at))
      assert.equal(a.kind, 'receipt')
      const got = (a as { receipt: typeof r }).receipt
      assert.deepEqual(got, r)
      for (const field of [got.txHash, got.from, got.returnData, got.executor, got.signature])
        assert.equal(Object.getPrototypeOf(field), Uint8Array.prototype)
      return true
    }),
  )
  fc.assert(
    fc.property(
      fc.constantFrom('success' as const, 'revert' as const),
      bytes(),
      u(64),
      (status, returnData, seq) => {
        const a = { kind: 'view' as const, status, returnData, seq }
        assert.deepEqual(decodeAnswer(encodeAnswer(a)), a)
        return true
      },
    ),
  )
  const rejected = {
    kind: 'rejected' as const,
    error: { name: 'ProtocolError', code: 'BAD_NONCE' as const, message: 'x' },
  }
  assert.deepEqual(decodeAnswer(encodeAnswer(rejected)), rejected)
  fc.assert(
    fc.property(
      u(256),
      bytes(1000),
      (instance, initCode) =>
        assert.deepEqual(decodeDeployRequest(encodeDeployRequest({ instance, initCode })), {
          instance,
          initCode,
        }) ?? true,
    ),
  )
  fc.assert(
    fc.property(
      u(64),
      b(32),
      u(64),
      b(32),
      bytes(),
      (seq, prevHash, eventIndex, digest, payload) => {
        const x = { seq, prevHash, eventIndex, digest, payload }
        assert.deepEqual(decodeUpdateBody(encodeUpdateBody(x)), x)
        return true
      },
    ),
  )
  fc.assert(
    fc.property(updatePayload, (x) => {
      const enc = encodeUpdatePayload(x)
      const { resultBytes, ...decoded } = decodeUpdatePayload(enc)
      assert.deepEqual(decoded, x)
      // Each outcome also as its bytes: what encodeExecuted writes, decoding to the outcome.
      assert.equal(resultBytes.length, x.results.length)
      for (const [i, r] of x.results.entries()) {
        assert.deepEqual(resultBytes[i], encodeExecuted(r))
        assert.deepEqual(decodeExecuted(resultBytes[i]!), r)
      }
      // A watchdog's scan gives the same write set and outcome bytes, and each one's hash.
      const scanned = scanUpdatePayload(enc)
      assert.deepEqual(scanned.writeSet, x.writeSet)
      assert.equal(scanned.blockNumber, x.blockNumber)
      assert.equal(scanned.timestamp, x.timestamp)
      assert.deepEqual(scanned.resultBytes, resultBytes)
      assert.deepEqual(
        scanned.txHashes,
        x.results.map((r) => r.txHash),
      )
      // A copy of the results alone: the payload's buffer (and its write set) is not kept.
      if (resultBytes.length > 0) {
        const kept = resultBytes[0]!.buffer.byteLength
        assert.ok(kept <= enc.length - x.writeSet.length, `${kept} bytes kept`)
        enc.fill(0xee)
        assert.deepEqual(decodeExecuted(resultBytes[0]!), x.results[0])
      }
      return true
    }),
  )
  fc.assert(
    fc.property(executed, fc.nat(), (x, cutAt) => {
      const enc = encodeExecuted(x)
      assert.throws(() => decodeExecuted(enc.slice(0, cutAt % enc.length)), isCode('MALFORMED'))
      assert.throws(
        () => decodeExecuted(Uint8Array.from([...enc, 0])),
        (e: unknown) => isCode('MALFORMED')(e) && /trailing/.test((e as Error).message),
      )
      return true
    }),
  )
  fc.assert(
    fc.property(
      b(32),
      b(32),
      bytes(),
      u(64),
      b(32),
      b(32),
      u(64),
      u(64),
      u(64),
      fc.tuple(u(64), u(64)),
      (
        contractSecretKey,
        stateKey,
        snapshot,
        seq,
        lastHash,
        digest,
        eventIndex,
        baseSeq,
        settled,
        [clockNumber, clockTimestamp],
      ) => {
        const x = {
          contractSecretKey,
          stateKey,
          snapshot,
          seq,
          lastHash,
          digest,
          eventIndex,
          baseSeq,
          settled,
          recent: [],
          clockNumber,
          clockTimestamp,
        }
        assert.deepEqual(decodeGenesisSecrets(encodeGenesisSecrets(x)), x)
        return true
      },
    ),
  )
  fc.assert(
    fc.property(
      fc.record({
        seq: u(64),
        updateHash: b(32),
        digest: b(32),
        stateFrom: b(20),
        nonce: b(32),
        viewIndex: u(64),
        viewHash: b(32),
        headNumber: u(64),
        headTimestamp: u(64),
      }),
      (ack) => {
        // fast-check's records have no prototype; the decoder's objects do.
        assert.deepEqual(decodeAckBody(encodeAckBody(ack)), { ...ack })
        return true
      },
    ),
  )
  fc.assert(
    fc.property(
      u(64),
      (fromSeq) =>
        assert.deepEqual(decodeSyncBody(encodeSyncBody({ fromSeq })), { fromSeq }) ?? true,
    ),
  )
  fc.assert(
    fc.property(
      u(64),
      b(32),
      (fromSeq, nonce) =>
        assert.deepEqual(decodeSyncBody(encodeSyncBody({ fromSeq, nonce })), { fromSeq, nonce }) ??
        true,
    ),
  )
})

test('decoders reject malformed, oversized and out-of-range input with a typed error', () => {
  // Binary client messages: every fault names its message and field.
  const { session: _, ...tx } = { ...fc.sample(signedTx, 1)[0]!, data: new Uint8Array(10) }
  const good = encodeSignedTx(tx)
  assert.throws(() => decodeSignedTx(good.subarray(0, 40)), /^ProtocolError: tx\.from: truncated/)
  assert.throws(() => decodeSignedTx(Uint8Array.of(3, ...good.subarray(1))), /tx\.version: unknown/)
  // Session-authorised (version 2): validUntil sits between gasLimit and the signature.
  const bySession = encodeSignedTx({ ...tx, session: { validUntil: 5n } })
  assert.equal(bySession.length, good.length + 8)
  assert.throws(
    () => decodeSignedTx(bySession.subarray(0, 1 + 32 + 20 + 8 + 20 + 32 + 8 + 4)),
    /tx\.session\.validUntil: truncated/,
  )
  assert.deepEqual(decodeSignedTx(bySession).session, { validUntil: 5n })
  assert.throws(
    () => encodeSignedTx({ ...tx, session: { validUntil: -1n } }),
    /tx\.session\.validUntil/,
  )
  assert.throws(() => decodeSignedTx(Uint8Array.of(...good, 0)), /tx: 1 trailing bytes/)
  assert.throws(() => decodeSignedTx(good.subarray(0, good.length - 1)), /tx\.data: truncated/)
  const huge = encodeSignedTx({ ...tx, data: new Uint8Array(70_000) })
  assert.throws(
    () => decodeSignedTx(huge),
    (e: unknown) => isCode('OVERSIZED')(e) && /tx\.data/.test(`${e}`),
  )
  assert.throws(() => decodeSignedTx(new Uint8Array(200_000)), isCode('OVERSIZED'))
  assert.throws(() => encodeSignedTx({ ...tx, nonce: 1n << 64n }), /tx\.nonce: .* not a 64-bit/)
  assert.throws(
    () => encodeSignedTx({ ...tx, from: new Uint8Array(3) }),
    /tx\.from: expected 20 bytes/,
  )
  const view = encodeSignedView(fc.sample(signedView, 1)[0]!)
  assert.throws(() => decodeSignedView(view.subarray(0, 60)), /view\.to: truncated/)
  const r = fc.sample(receipt, 1)[0]!
  const answer = encodeAnswer({ kind: 'receipt', receipt: { ...r, status: 'revert' } })
  const statusAt = 1 + 1 + 1 + 32 + 8 + 32 + 20 + 8
  assert.equal(answer[statusAt], 1)
  const badStatus = Uint8Array.from(answer)
  badStatus[statusAt] = 7
  assert.throws(() => decodeAnswer(badStatus), /answer\.result\.status: unknown status 7/)
  assert.throws(() => decodeAnswer(Uint8Array.of(1, 9)), /answer\.kind: unknown kind 9/)
  assert.throws(
    () => decodeReceipt(Uint8Array.of(5, ...encodeReceipt(r).subarray(1))),
    /receipt\.version: unknown version 5/,
  )
  assert.throws(
    () => decodeReceipt(Uint8Array.of(0, ...encodeReceipt(r).subarray(1))),
    /receipt\.version: unknown version 0/,
  )
  // The proof: bounded, and its length byte must match what follows.
  const { proof: _p, ...plain } = r
  const withProof = encodeReceipt({ ...plain, proof: [new Uint8Array(32).fill(9)] })
  const proofAt = withProof.length - 65 - 32 - 1
  assert.equal(withProof[proofAt], 1)
  const tooDeep = Uint8Array.from(withProof)
  tooDeep[proofAt] = MAX_RECEIPT_PROOF + 1
  assert.throws(() => decodeReceipt(tooDeep), /receipt\.proof\.length: 21 nodes exceeds 20/)
  assert.throws(() => decodeReceipt(withProof.subarray(0, withProof.length - 1)), /truncated/)
  assert.throws(
    () => encodeReceipt({ ...plain, proof: Array.from({ length: 21 }, () => new Uint8Array(32)) }),
    isCode('OUT_OF_RANGE'),
  )
  assert.throws(
    () => encodeReceipt({ ...plain, proof: [new Uint8Array(32), new Uint8Array(31)] }),
    /receipt\.proof\.1: expected 32 bytes, got 31/,
  )
  // A receipt from before decision 0015 (version 1: no proof) still decodes, as version 3 with
  // no proof: both sign the tagged digest.
  const v1 = Uint8Array.of(
    1,
    ...encodeReceipt(plain).subarray(1, -66),
    ...encodeReceipt(plain).subarray(-65),
  )
  assert.deepEqual(decodeReceipt(v1), { ...plain, version: 3 })
  const rejected = (error: object) => Uint8Array.of(1, 3, ...utf8(JSON.stringify(error)))
  assert.throws(
    () => decodeAnswer(rejected({ name: 'X', code: 'NOPE', message: 'm' })),
    /answer\.error/,
  )
  assert.throws(
    () => decodeAnswer(rejected({ name: 'X', code: 'BAD_NONCE', message: 'm', x: 1 })),
    isCode('MALFORMED'),
  )
  // JSON messages (deployments, genesis, sync) keep their depth limit.
  const deep = `${'['.repeat(5000)}1${']'.repeat(5000)}`
  assert.throws(() => decodeDeployRequest(utf8(`{"initCode":${deep}}`)), /nested deeper/)
  // Arbitrary garbage never escapes as anything but a ProtocolError.
  fc.assert(
    fc.property(
      fc.oneof(
        bytes(300),
        fc.json().map(utf8),
        fc.anything().map((v) => utf8(JSON.stringify(v) ?? 'null')),
      ),
      (input) => {
        for (const decode of [
          decodeSignedTx,
          decodeSignedView,
          decodeReceipt,
          decodeAnswer,
          decodeEnvelope,
          decodeUpdateBody,
          decodeAckBody,
        ]) {
          try {
            decode(input)
          } catch (e) {
            assert.ok(e instanceof ProtocolError, `${decode.name} threw ${e}`)
          }
        }
        return true
      },
    ),
    { numRuns: 300 },
  )
})

test("a watchdog's scan refuses a log with more topics than a log has, where skipping them would still fit", () => {
  // Four topics, then 40 bytes of data whose bytes 28–31 read as a length of 8: with the topic
  // count raised to 5, skipping five topics lands on that length, and its 8 bytes end the log.
  const data = new Uint8Array(40)
  data.set([0, 0, 0, 8], 28)
  const log = {
    address: new Uint8Array(20).fill(3),
    topics: [1, 2, 3, 4].map((t) => new Uint8Array(32).fill(t)),
    data,
  }
  const result = {
    txHash: new Uint8Array(32).fill(9),
    from: new Uint8Array(20).fill(8),
    nonce: 1n,
    status: 'success' as const,
    gasUsed: 21_000n,
    returnData: new Uint8Array(0),
    logs: [log],
  }
  const enc = encodeUpdatePayload({
    writeSet: new Uint8Array(3),
    results: [result],
    blockNumber: 1n,
    timestamp: 2n,
  })
  const at = enc.length - (40 + 4 + 4 * 32 + 1)
  assert.equal(enc[at], 4, 'the topic count')
  const five = enc.slice()
  five[at] = 5
  assert.throws(() => decodeUpdatePayload(five), /5 exceeds 4/)
  assert.throws(() => scanUpdatePayload(five), /5 exceeds 4/)
})

test('update bodies and payloads are binary and canonical: every cut, trailing byte and flipped byte is refused or re-encodes to itself', () => {
  fc.assert(
    fc.property(
      updatePayload,
      fc.nat(),
      fc.nat(),
      fc.integer({ min: 1, max: 255 }),
      (x, cutAt, flipAt, mask) => {
        const enc = encodeUpdatePayload(x)
        // A cut anywhere and a byte appended are refused, naming the message.
        const cut = cutAt % enc.length
        assert.throws(() => decodeUpdatePayload(enc.slice(0, cut)), isCode('MALFORMED'))
        assert.throws(
          () => decodeUpdatePayload(Uint8Array.from([...enc, 0])),
          (e: unknown) => isCode('MALFORMED')(e) && /trailing/.test((e as Error).message),
        )
        // A flipped byte is refused or decodes to something that encodes back to the same bytes.
        const flipped = enc.slice()
        flipped[flipAt % enc.length]! ^= mask
        // A watchdog's scan refuses exactly what the decoder refuses, with the decoder's error.
        for (const input of [enc.slice(0, cut), Uint8Array.from([...enc, 0]), flipped]) {
          let decoded: unknown
          try {
            decoded = decodeUpdatePayload(input)
          } catch (e) {
            assert.throws(() => scanUpdatePayload(input), { message: (e as Error).message })
            continue
          }
          assert.deepEqual(
            scanUpdatePayload(input).resultBytes,
            (decoded as { resultBytes: Uint8Array[] }).resultBytes,
          )
        }
        try {
          assert.deepEqual(encodeUpdatePayload(decodeUpdatePayload(flipped)), flipped)
        } catch (e) {
          assert.ok(e instanceof ProtocolError && e.code === 'MALFORMED', String(e))
        }
        return true
      },
    ),
    { numRuns: 500 },
  )
  const body = {
    seq: 7n,
    prevHash: new Uint8Array(32).fill(1),
    eventIndex: 3n,
    digest: new Uint8Array(32).fill(2),
    payload: new Uint8Array(40).fill(3),
  }
  const enc = encodeUpdateBody(body)
  assert.equal(enc.length, 1 + 8 + 32 + 8 + 32 + 40)
  for (let i = 0; i < 81; i++)
    assert.throws(() => decodeUpdateBody(enc.slice(0, i)), isCode('MALFORMED'), `cut at ${i}`)
  const v2 = enc.slice()
  v2[0] = 2
  assert.throws(() => decodeUpdateBody(v2), /update\.version: unknown version 2/)
  assert.throws(() => encodeUpdateBody({ ...body, seq: 1n << 64n }), /update\.seq: .* not a 64-bit/)
  assert.throws(
    () => encodeUpdateBody({ ...body, digest: new Uint8Array(31) }),
    /update\.digest: expected 32 bytes/,
  )

  // An ack: 181 bytes, every cut and a trailing byte refused.
  const ack = {
    seq: 9n,
    updateHash: new Uint8Array(32).fill(4),
    digest: new Uint8Array(32).fill(5),
    stateFrom: new Uint8Array(20).fill(6),
    nonce: new Uint8Array(32).fill(7),
    viewIndex: 12n,
    viewHash: new Uint8Array(32).fill(8),
    headNumber: 1_000n,
    headTimestamp: 1_700_000_000n,
  }
  const ackBytes = encodeAckBody(ack)
  assert.equal(ackBytes.length, 181)
  assert.deepEqual(decodeAckBody(ackBytes), ack)
  for (let i = 0; i < 181; i++)
    assert.throws(() => decodeAckBody(ackBytes.slice(0, i)), isCode('MALFORMED'))
  assert.throws(() => decodeAckBody(Uint8Array.from([...ackBytes, 0])), /ack: 1 trailing bytes/)

  // Out-of-range fields in a payload: status, topic count, result count.
  const one = {
    writeSet: new Uint8Array(0),
    results: [
      {
        txHash: new Uint8Array(32),
        from: new Uint8Array(20),
        nonce: 0n,
        status: 'success' as const,
        gasUsed: 21000n,
        returnData: new Uint8Array(0),
        logs: [{ address: new Uint8Array(20), topics: [], data: new Uint8Array(0) }],
      },
    ],
    blockNumber: 1n,
    timestamp: 2n,
  }
  const p = encodeUpdatePayload(one)
  const statusAt = 1 + 8 + 8 + 4 + 4 + 32 + 20 + 8
  assert.equal(p[statusAt], 0)
  const badStatus = p.slice()
  badStatus[statusAt] = 3
  assert.throws(() => decodeUpdatePayload(badStatus), /results\.0\.status: unknown status 3/)
  const topicsAt = statusAt + 1 + 8 + 4 + 4 + 20
  const badTopics = p.slice()
  badTopics[topicsAt] = 5
  assert.throws(() => decodeUpdatePayload(badTopics), /logs\.0\.topics: 5 exceeds 4/)
  const badCount = p.slice()
  new DataView(badCount.buffer).setUint32(1 + 8 + 8 + 4, 0xffffffff)
  assert.throws(() => decodeUpdatePayload(badCount), /results: 4294967295 exceeds/)
  assert.throws(
    () =>
      encodeUpdatePayload({ ...one, results: [{ ...one.results[0]!, status: 'weird' as never }] }),
    /unknown status weird/,
  )
  assert.throws(
    () => encodeUpdatePayload({ ...one, results: [{ ...one.results[0]!, gasUsed: 1n << 64n }] }),
    /gasUsed/,
  )
})

test('update payloads travel deflated: they unpack to the same bytes, and input that does not inflate or inflates past the limit is MALFORMED', () => {
  fc.assert(
    fc.property(updatePayload, fc.nat(), fc.integer({ min: 1, max: 255 }), (x, at, mask) => {
      const plain = encodeUpdatePayload(x)
      const packed = packUpdatePayload(plain)
      assert.deepEqual(unpackUpdatePayload(packed), plain)
      // A flipped byte either fails to inflate or inflates to other bytes the payload decoder
      // judges (the AEAD around a packed payload refuses any change before this point).
      const flipped = packed.slice()
      flipped[at % packed.length]! ^= mask
      try {
        unpackUpdatePayload(flipped)
      } catch (e) {
        assert.ok(isCode('MALFORMED')(e), String(e))
      }
      return true
    }),
    { numRuns: 300 },
  )
  // A one-transfer payload: half of it is zero bytes, and packing halves it.
  const word = (n: bigint) => uintToWord(n)
  const padded = (a: Uint8Array) => Uint8Array.from([...new Uint8Array(12), ...a])
  const from = new Uint8Array(20).fill(0xa1)
  const to = new Uint8Array(20).fill(0xb2)
  const transfer = encodeUpdatePayload({
    writeSet: Uint8Array.from([...word(5n), ...word(1000n), ...word(7n)]),
    results: [
      {
        txHash: new Uint8Array(32).fill(0x33),
        from,
        nonce: 4n,
        status: 'success',
        gasUsed: 34_567n,
        returnData: word(1n),
        logs: [
          {
            address: new Uint8Array(20).fill(0xc3),
            topics: [new Uint8Array(32).fill(0xdd), padded(from), padded(to)],
            data: word(1n),
          },
        ],
      },
    ],
    blockNumber: 1234n,
    timestamp: 1_700_000_000n,
  })
  assert.ok(packUpdatePayload(transfer).length < transfer.length / 2)
  // Above 4 KiB the executor deflates at level 1 (faster, a little larger): still a round trip.
  const large = encodeUpdatePayload({
    writeSet: new Uint8Array(20_000).map((_, i) => (i % 7 === 0 ? (i * 31) & 0xff : 0)),
    results: [],
    blockNumber: 1n,
    timestamp: 2n,
  })
  const packedLarge = packUpdatePayload(large)
  assert.ok(packedLarge.length < large.length / 2, `${packedLarge.length} of ${large.length}`)
  assert.deepEqual(unpackUpdatePayload(packedLarge), large)
  assert.throws(() => unpackUpdatePayload(Uint8Array.of(0xff, 0xff, 0xff)), isCode('MALFORMED'))
  assert.throws(
    () => unpackUpdatePayload(new Uint8Array(0)),
    (e: unknown) => isCode('MALFORMED')(e) && /update\.payload: does not inflate/.test(String(e)),
  )
  // A member's sealed record of an update: binary, with or without the executor it came from;
  // every cut, a trailing byte and an unknown tag or flag are refused.
  const body = {
    seq: 3n,
    prevHash: new Uint8Array(32).fill(1),
    eventIndex: 9n,
    digest: new Uint8Array(32).fill(2),
    payload: packUpdatePayload(transfer),
  }
  for (const from of [undefined, new Uint8Array(20).fill(7)]) {
    const rec = encodeSealedUpdate({ body, from })
    assert.deepEqual(decodeSealedUpdate(rec), { body, from })
    for (let i = 0; i < rec.length; i++)
      assert.throws(() => decodeSealedUpdate(rec.slice(0, i)), isCode('MALFORMED'), `cut ${i}`)
    assert.throws(() => decodeSealedUpdate(Uint8Array.from([...rec, 0])), /trailing/)
    const tag = rec.slice()
    tag[0] = 0x7b
    assert.throws(() => decodeSealedUpdate(tag), /sealed\.update\.tag: expected 177, got 123/)
  }
  const noFrom = encodeSealedUpdate({ body })
  noFrom[noFrom.length - 1] = 2
  assert.throws(() => decodeSealedUpdate(noFrom), /expected 0 or 1, got 2/)
  // A deflate bomb: 65 MiB of zeros deflates into about 64 KiB and is refused past 64 MiB.
  const bomb = new Uint8Array(deflateRawSync(new Uint8Array(65 * 1024 * 1024), { level: 9 }))
  assert.ok(bomb.length < 128 * 1024)
  assert.throws(() => unpackUpdatePayload(bomb), isCode('MALFORMED'))
})

test('envelopeFromWire accepts exactly what envelopeSchema accepts (differential)', () => {
  const hexOf = (n: number) => b(n).map((x) => bytesToHex(x))
  const valid = fc.record({
    kind: fc.constantFrom('genesis', 'update', 'ack', 'sync'),
    instance: u(256).map((x) => x.toString()),
    from: hexOf(20),
    to: hexOf(20),
    body: bytes(64).map((x) => bytesToHex(x)),
    signature: hexOf(65),
  })
  const junk = fc.oneof(
    fc.string({ maxLength: 12 }),
    fc.constantFrom(
      '',
      '0x',
      '0x0',
      '0xzz',
      '01',
      '-1',
      '1.5',
      '0x' + '00'.repeat(21),
      'upd',
      'UPDATE',
    ),
    u(300).map((x) => x.toString()),
    fc.constant((1n << 256n).toString()),
    fc.integer(),
    fc.constant(null),
    fc.array(fc.nat(), { maxLength: 2 }),
  )
  const mutated = fc
    .tuple(
      valid,
      fc.constantFrom('kind', 'instance', 'from', 'to', 'body', 'signature', 'extra', 'drop'),
      junk,
    )
    .map(([v, field, j]) => {
      const o: Record<string, unknown> = { ...v }
      if (field === 'extra') o.extra = j
      else if (field === 'drop') delete o.kind
      else o[field] = j
      return o
    })
  fc.assert(
    fc.property(fc.oneof(valid, mutated, fc.anything()), (value) => {
      const reference = envelopeSchema.safeParse(value).success
      let ours: boolean
      try {
        envelopeFromWire(value)
        ours = true
      } catch (e) {
        assert.ok(
          e instanceof ProtocolError && (e.code === 'MALFORMED' || e.code === 'OUT_OF_RANGE'),
          String(e),
        )
        ours = false
      }
      // The schema leaves the instance's range to the decoder (uint256), so compare on in-range values.
      if (
        reference &&
        typeof value === 'object' &&
        value &&
        BigInt((value as { instance: string }).instance) >= 1n << 256n
      )
        return true
      assert.equal(
        ours,
        reference,
        JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)),
      )
      return true
    }),
    { numRuns: 3000 },
  )
})

test('receipts and envelopes verify only untampered', () => {
  const sk = generateSecretKey()
  const me = secretKeyToAddress(sk)
  const domain = { chainId: 31337n, manager: new Uint8Array(20).fill(1) }
  const [{ proof: _, ...r }] = fc.sample(receipt, 1) as [Receipt]
  const signed = signReceipt({ ...r, executor: me }, domain, sk)
  assert.deepEqual(verifyReceiptSignature(signed, domain), me)
  assert.throws(
    () => verifyReceiptSignature({ ...signed, gasUsed: signed.gasUsed ^ 1n }, domain),
    isCode('BAD_SIGNATURE'),
  )
  assert.throws(
    () => verifyReceiptSignature(signed, { ...domain, chainId: 1n }),
    isCode('BAD_SIGNATURE'),
  )
  // Receipts released together: one signature over their tree's root, a proof each.
  for (const n of [2, 3, 5, 8, 9]) {
    const rs = fc
      .sample(receipt, n)
      .map(({ proof: _, signature: __, ...x }) => ({ ...x, executor: me }))
    const batch = signReceipts(rs, domain, sk)
    assert.equal(new Set(batch.map((x) => bytesToHex(x.signature))).size, 1, `${n}: one signature`)
    for (const [i, x] of batch.entries()) {
      const depth = x.proof?.length ?? 0
      assert.ok(depth >= 1 && depth <= Math.ceil(Math.log2(n)), `${n}/${i}: ${depth} siblings`)
      assert.deepEqual(verifyReceiptSignature(decodeReceipt(encodeReceipt(x)), domain), me)
      assert.throws(
        () => verifyReceiptSignature({ ...x, nonce: x.nonce ^ 1n }, domain),
        isCode('BAD_SIGNATURE'),
        `${n}/${i}: another receipt under this proof`,
      )
      const other = batch[(i + 1) % n]!
      assert.throws(
        () => verifyReceiptSignature({ ...x, proof: other.proof ?? [] }, domain),
        isCode('BAD_SIGNATURE'),
        `${n}/${i}: another receipt's proof`,
      )
      // Version 4: a one-pass digest (decision 0017) and one-block nodes (0016); the same
      // receipt read as an earlier version's reaches another root.
      assert.equal(encodeReceipt(x)[0], 4)
      for (const version of [2, 3] as const)
        assert.throws(
          () => verifyReceiptSignature({ ...x, version }, domain),
          isCode('BAD_SIGNATURE'),
          `${n}/${i}: read as version ${version}`,
        )
    }
    // Releases from executors of decisions 0015 (version 2: tagged digests and nodes) and 0016
    // (version 3: tagged digests, one-block nodes) still verify, and their receipts keep their
    // version through a decode and an encode.
    const leaves = rs.map((x) => receiptDigestTagged(x, domain))
    for (const version of [2, 3] as const) {
      const node = version === 2 ? receiptNodeTagged : receiptNode
      const level = (nodes: Uint8Array[]) => {
        const next: Uint8Array[] = []
        for (let j = 0; j < nodes.length; j += 2)
          next.push(j + 1 < nodes.length ? node(nodes[j]!, nodes[j + 1]!) : nodes[j]!)
        return next
      }
      let top = leaves
      while (top.length > 1) top = level(top)
      const oldSignature = signDigest(top[0]!, sk)
      for (const [i, x] of batch.entries()) {
        const old: Receipt = { ...x, signature: oldSignature, version }
        // Its siblings: the same tree shape, built with that version's hashes.
        const proof: Uint8Array[] = []
        let at = i
        let nodes = leaves
        while (nodes.length > 1) {
          if ((at ^ 1) < nodes.length) proof.push(nodes[at ^ 1]!)
          nodes = level(nodes)
          at >>= 1
        }
        old.proof = proof
        const bytes = encodeReceipt(old)
        assert.equal(bytes[0], version, `${n}/${i}: written as version ${version}`)
        const back = decodeReceipt(bytes)
        assert.equal(back.version, version)
        assert.deepEqual(verifyReceiptSignature(back, domain), me, `${n}/${i}: v${version}`)
        for (const other of [undefined, version === 2 ? 3 : 2] as const)
          assert.throws(
            () => {
              const { version: _v, ...current } = back
              return verifyReceiptSignature(
                other ? { ...current, version: other } : current,
                domain,
              )
            },
            isCode('BAD_SIGNATURE'),
            `${n}/${i}: version ${version} read as ${other ?? 4}`,
          )
      }
    }
  }
  // A receipt of version 1 (before decision 0015: no proof, a signature over its tagged digest)
  // reads as version 3 without a proof, and verifies.
  {
    const [{ proof: _p, signature: _s, ...x }] = fc.sample(receipt, 1) as [Receipt]
    const v1 = { ...x, executor: me }
    const signature = signDigest(receiptDigestTagged(v1, domain), sk)
    const v4 = encodeReceipt({ ...v1, signature })
    // Version 1's layout: version 4's without the proof count.
    const proofCountAt = v4.length - 65 - 1
    const bytes = Uint8Array.of(
      1,
      ...v4.subarray(1, proofCountAt),
      ...v4.subarray(proofCountAt + 1),
    )
    const back = decodeReceipt(bytes)
    assert.equal(back.version, 3)
    assert.equal(back.proof, undefined)
    assert.deepEqual(verifyReceiptSignature(back, domain), me)
    assert.equal(encodeReceipt(back)[0], 3)
    assert.throws(() => decodeReceipt(Uint8Array.of(5, ...bytes.subarray(1))), isCode('MALFORMED'))
  }
  const env = signEnvelope(
    { kind: 'ack', instance: 3n, from: me, to: new Uint8Array(20), body: utf8('{}') },
    sk,
  )
  verifyEnvelope(decodeEnvelope(encodeEnvelope(env)))
  assert.throws(() => verifyEnvelope({ ...env, instance: 4n }), isCode('BAD_SIGNATURE'))
  assert.throws(() => verifyEnvelope({ ...env, kind: 'update' }), isCode('BAD_SIGNATURE'))
  // Under a pair key (decision 0020): 32 bytes on the wire, checked against the same digest.
  const key = randomBytes(32)
  const to = randomBytes(20)
  const tagged = tagEnvelope({ ...env, to }, key)
  const back = decodeEnvelope(encodeEnvelope(tagged))
  assert.equal(back.signature.length, 32)
  verifyEnvelopeTag(back, key)
  assert.equal(
    bytesToHex(tagEnvelope({ ...env, to }, key, keccak256(env.body)).signature),
    bytesToHex(tagged.signature),
    'a body hash given is the body hash computed',
  )
  for (const changed of [
    { ...back, instance: 4n },
    { ...back, kind: 'update' as const },
    { ...back, from: to },
    { ...back, to: me },
    { ...back, body: utf8('{ }') },
  ])
    assert.throws(() => verifyEnvelopeTag(changed, key), isCode('BAD_SIGNATURE'))
  assert.throws(() => verifyEnvelopeTag(back, randomBytes(32)), isCode('BAD_SIGNATURE'))
  // Only an update or an ack to one member is tagged; 33 bytes are neither a tag nor a signature.
  assert.throws(() => tagEnvelope({ ...env, kind: 'sync', to }, key), isCode('MALFORMED'))
  assert.throws(() => tagEnvelope({ ...env, to: new Uint8Array(20) }, key), isCode('MALFORMED'))
  assert.throws(
    () => envelopeFromWire({ ...envelopeToWire(tagged), signature: bytesToHex(randomBytes(33)) }),
    isCode('MALFORMED'),
  )
})

test('hashTagged equals keccak256(abi.encode(tag, ...words)) for any tag and word count, also from its cache of tag encodings', () => {
  fc.assert(
    fc.property(
      fc.string({ maxLength: 80, unit: 'grapheme' }),
      fc.array(b(32), { maxLength: 6 }),
      (tag, words) => {
        const ref = viemKeccak(
          encodeAbiParameters(
            [{ type: 'string' }, ...words.map(() => ({ type: 'bytes32' as const }))],
            [tag, ...words.map((w) => bytesToHex(w))],
          ),
        )
        assert.equal(bytesToHex(hashTagged(tag, words)), ref)
        assert.equal(bytesToHex(hashTagged(tag, words)), ref)
        return true
      },
    ),
    { numRuns: 300 },
  )
})

test('manager hashes equal an independent ABI encoding (viem)', () => {
  fc.assert(
    fc.property(
      u(64),
      b(20),
      b(32),
      b(20),
      b(32),
      b(20),
      (chainId, manager, measurement, signer, encryptionKey, operator) => {
        const ours = attestationReportHash({
          chainId,
          manager,
          measurement,
          signer,
          encryptionKey,
          operator,
        })
        const ref = viemKeccak(
          encodeAbiParameters(
            [
              { type: 'string' },
              { type: 'uint256' },
              { type: 'address' },
              { type: 'bytes32' },
              { type: 'address' },
              { type: 'bytes32' },
              { type: 'address' },
            ],
            [
              'POSE-ATTEST-v1',
              chainId,
              bytesToHex(manager),
              bytesToHex(measurement),
              bytesToHex(signer),
              bytesToHex(encryptionKey),
              bytesToHex(operator),
            ],
          ),
        )
        assert.equal(bytesToHex(ours), ref)
        return true
      },
    ),
    { numRuns: 50 },
  )
  fc.assert(
    fc.property(
      u(64),
      b(20),
      u(256),
      b(32),
      b(32),
      u(16),
      u(64),
      b(32),
      (chainId, manager, instance, cek, gd, mask, idx, eh) => {
        const ours = activationDigest({
          chainId,
          manager,
          instance,
          contractEncryptionKey: cek,
          genesisDigest: gd,
          ackedMask: mask,
          eventIndex: idx,
          eventHash: eh,
        })
        const ref = viemKeccak(
          encodeAbiParameters(
            [
              { type: 'string' },
              { type: 'uint256' },
              { type: 'address' },
              { type: 'uint256' },
              { type: 'bytes32' },
              { type: 'bytes32' },
              { type: 'uint256' },
              { type: 'uint64' },
              { type: 'bytes32' },
            ],
            [
              'POSE-ACTIVATE-v1',
              chainId,
              bytesToHex(manager),
              instance,
              bytesToHex(cek),
              bytesToHex(gd),
              mask,
              idx,
              bytesToHex(eh),
            ],
          ),
        )
        assert.equal(bytesToHex(ours), ref)
        return true
      },
    ),
    { numRuns: 50 },
  )
  fc.assert(
    fc.property(
      b(32),
      u(256),
      u(64),
      fc.integer({ min: 0, max: 255 }),
      bytes(),
      (prevHash, instance, index, kind, data) => {
        const ours = nextEventHash({ prevHash, instance, index, kind, data })
        const ref = viemKeccak(
          encodeAbiParameters(
            [
              { type: 'bytes32' },
              { type: 'uint256' },
              { type: 'uint64' },
              { type: 'uint8' },
              { type: 'bytes32' },
            ],
            [bytesToHex(prevHash), instance, index, kind, viemKeccak(data)],
          ),
        )
        assert.equal(bytesToHex(ours), ref)
        return true
      },
    ),
    { numRuns: 50 },
  )
})
