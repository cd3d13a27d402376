import assert from 'node:assert/strict'
import { createDecipheriv, hkdfSync } from 'node:crypto'
import { test } from 'node:test'
import { x25519 } from '@noble/curves/ed25519.js'
import fc from 'fast-check'
import {
  encodeAbiParameters,
  hashTypedData,
  bytesToHex as viemHex,
  keccak256 as viemKeccak,
  recoverAddress as viemRecover,
} from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { privateKeyToPoseAccount } from '../../src/client/account.ts'
import { signTyped } from '../../src/client/actions/getNonce.ts'
import {
  aeadOpen,
  aeadSeal,
  BoxSessions,
  boxOpen,
  boxSeal,
  bytesToHex,
  compareBytes,
  concatBytes,
  generateSecretKey,
  generateX25519KeyPair,
  hashSession,
  hashTagged,
  hashTaggedWith,
  hashTx,
  hashViewCall,
  hkdf,
  keccak256,
  keccak256Js,
  keccakImplementation,
  keccakWritten,
  openAnswer,
  ProtocolError,
  pairKey,
  pairTag,
  pairTagValid,
  poseTypes,
  randomBytes,
  recoverAddress,
  sealAnswer,
  secp256k1Backend,
  secretKeyToAddress,
  signDigest,
  utf8,
  x25519PublicKey,
} from '../../src/protocol/index.ts'
import { runScript } from './childScript.ts'

const bytes = (min = 0, max = 512) => fc.uint8Array({ minLength: min, maxLength: max })
const addr = () => fc.uint8Array({ minLength: 20, maxLength: 20 })
const u = (bits: number) => fc.bigInt({ min: 0n, max: (1n << BigInt(bits)) - 1n })

test('keccak256 (WebAssembly) matches viem and the JS implementation, views and sizes alike', () => {
  fc.assert(
    fc.property(bytes(), (b) => bytesToHex(keccak256(b)) === viemKeccak(b)),
    { numRuns: 200 },
  )
  // Around the 136-byte rate, large inputs, and views into a larger buffer.
  fc.assert(
    fc.property(bytes(0, 20_000), fc.nat(64), fc.nat(64), (b, lo, hi) => {
      const view = b.subarray(
        Math.min(lo, b.length),
        Math.max(Math.min(lo, b.length), b.length - hi),
      )
      const out = keccak256(view)
      return bytesToHex(out) === bytesToHex(keccak256Js(view)) && out.length === 32
    }),
    { numRuns: 300 },
  )
  for (const n of [135, 136, 137, 271, 272, 273])
    assert.equal(bytesToHex(keccak256(new Uint8Array(n))), viemKeccak(new Uint8Array(n)))
  // Each call returns its own buffer.
  const a = keccak256(new Uint8Array([1]))
  const b = keccak256(new Uint8Array([2]))
  assert.notEqual(bytesToHex(a), bytesToHex(b))
  assert.equal(bytesToHex(a), viemKeccak(new Uint8Array([1])))
})

test('keccak256 calls the WebAssembly module directly, and past its buffer through the hasher', () => {
  // A module the check refused would leave the hasher (or, without one, the JS implementation
  // at ≈ 10 × the time): this is the path every process runs.
  assert.equal(keccakImplementation(), 'wasm-direct')
  // Either side of the module's 16 KiB buffer, alternating: the hasher and the direct calls share
  // the module's state, and each call starts it afresh.
  const sizes = [16_383, 16_384, 16_385, 40_000, 0, 16_384, 1, 16_385, 200]
  for (const n of sizes) {
    const data = new Uint8Array(n)
    for (let i = 0; i < n; i++) data[i] = (i * 7 + n) & 0xff
    assert.equal(bytesToHex(keccak256(data)), bytesToHex(keccak256Js(data)), `${n} bytes`)
  }
})

test('tagged hashes equal keccak256(abi.encode(tag, words...)): nested, failed, zeroed and oversized writes', () => {
  const abiHash = (tag: string, words: Uint8Array[]) =>
    viemKeccak(
      encodeAbiParameters(
        [{ type: 'string' }, ...words.map(() => ({ type: 'bytes32' as const }))],
        [tag, ...words.map((w) => viemHex(w))],
      ),
    )
  const word = () => fc.uint8Array({ minLength: 32, maxLength: 32 })
  fc.assert(
    fc.property(fc.string({ maxLength: 80 }), fc.array(word(), { maxLength: 12 }), (tag, words) => {
      assert.equal(bytesToHex(hashTagged(tag, words)), abiHash(tag, words))
    }),
    { numRuns: 200 },
  )
  const a = randomBytes(32)
  const b = randomBytes(32)
  // A hash computed while another is being written (the kept buffer is taken) is unaffected,
  // and so is the outer one.
  const outer = hashTaggedWith('OUTER', 2, (w) => w.word(hashTagged('INNER', [a, b])).word(a))
  assert.equal(bytesToHex(outer), abiHash('OUTER', [hexWord(abiHash('INNER', [a, b])), a]))
  // A write that fails releases the buffer; an address word after a run of 0xff bytes is zeroed
  // in front (the buffer is reused).
  assert.throws(
    () => hashTaggedWith('T', 2, (w) => w.word(a).uint(-1n, 'x')),
    (e: unknown) => e instanceof ProtocolError && e.code === 'OUT_OF_RANGE',
  )
  hashTagged('FILL', [new Uint8Array(32).fill(0xff), new Uint8Array(32).fill(0xff)])
  const address = randomBytes(20)
  const padded = new Uint8Array(32)
  padded.set(address, 12)
  assert.equal(
    bytesToHex(hashTaggedWith('FILL', 2, (w) => w.address(address).uint(7n))),
    abiHash('FILL', [padded, hexWord(`0x${'0'.repeat(63)}7`)]),
  )
  // Larger than the kept buffer, and a write of the wrong length is refused.
  const many = Array.from({ length: 80 }, () => randomBytes(32))
  assert.equal(bytesToHex(hashTagged('MANY', many)), abiHash('MANY', many))
  assert.throws(
    () => keccakWritten(64, (w) => w.word(a)),
    (e: unknown) => e instanceof ProtocolError && e.code === 'INTERNAL',
  )
  assert.equal(bytesToHex(keccakWritten(64, (w) => w.word(a).word(b))), viemKeccak(concat(a, b)))
})

const hexWord = (h: string) => new Uint8Array(Buffer.from(h.slice(2), 'hex'))
const concat = (x: Uint8Array, y: Uint8Array) => new Uint8Array([...x, ...y])

test('native and noble backends sign identically and recover the signer alike', () => {
  assert.ok(['native', 'noble'].includes(secp256k1Backend))
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), (digest) => {
      const sk = generateSecretKey()
      const sig = signDigest(digest, sk)
      const who = secretKeyToAddress(sk)
      // Deterministic nonces (RFC 6979) and low s: both backends sign identically.
      assert.deepEqual(signDigest(digest, sk, 'native'), signDigest(digest, sk, 'noble'))
      assert.deepEqual(recoverAddress(digest, sig, 'noble'), who)
      assert.deepEqual(recoverAddress(digest, sig, 'native'), who)
      return true
    }),
    { numRuns: 50 },
  )
})

test('privateKeyToPoseAccount signs every kind of payload byte for byte as viem does', async () => {
  const typed = {
    domain: {
      name: 'Mail',
      version: '1',
      chainId: 31337,
      verifyingContract: `0x${'42'.repeat(20)}`,
    },
    types: {
      Mail: [
        { name: 'to', type: 'address' },
        { name: 'body', type: 'string' },
      ],
    },
    primaryType: 'Mail',
    message: { to: `0x${'17'.repeat(20)}`, body: 'hello' },
  } as const
  await fc.assert(
    fc.asyncProperty(
      fc.uint8Array({ minLength: 32, maxLength: 32 }),
      fc.string(),
      fc.bigInt({ min: 0n, max: 2n ** 64n }),
      async (hash, message, nonce) => {
        const key = bytesToHex(generateSecretKey())
        const ours = privateKeyToPoseAccount(key)
        const viems = privateKeyToAccount(key)
        assert.equal(ours.address, viems.address)
        assert.equal(
          await ours.sign({ hash: bytesToHex(hash) }),
          await viems.sign({ hash: bytesToHex(hash) }),
        )
        assert.equal(await ours.signMessage({ message }), await viems.signMessage({ message }))
        assert.equal(await ours.signTypedData(typed), await viems.signTypedData(typed))
        for (const tx of [
          {
            type: 'eip1559',
            chainId: 31337,
            nonce: Number(nonce % 1000n),
            to: typed.message.to,
            value: nonce,
            gas: 21_000n,
            maxFeePerGas: 10n ** 9n,
            maxPriorityFeePerGas: 1n,
          },
          {
            type: 'legacy',
            chainId: 1,
            nonce: 7,
            to: typed.message.to,
            value: nonce,
            gas: 21_000n,
            gasPrice: 10n ** 9n,
            data: viemHex(hash),
          },
        ] as const) {
          assert.equal(await ours.signTransaction(tx), await viems.signTransaction(tx))
        }
        return true
      },
    ),
    { numRuns: 20 },
  )
})

test('signatures are accepted by viem (ecrecover semantics)', async () => {
  const sk = generateSecretKey()
  const digest = keccak256(new Uint8Array([1, 2, 3]))
  const sig = signDigest(digest, sk)
  const recovered = await viemRecover({ hash: viemHex(digest), signature: viemHex(sig) })
  assert.equal(recovered.toLowerCase(), bytesToHex(secretKeyToAddress(sk)))
})

test('malformed and high-s signatures are rejected with BAD_SIGNATURE', () => {
  const digest = keccak256(new Uint8Array([9]))
  const sig = signDigest(digest, generateSecretKey())
  for (const bad of [
    sig.subarray(0, 64),
    new Uint8Array(65),
    Uint8Array.from([...sig.subarray(0, 64), 29]),
  ]) {
    assert.throws(
      () => recoverAddress(digest, bad),
      (e: unknown) => e instanceof ProtocolError && e.code === 'BAD_SIGNATURE',
    )
  }
  // s' = n - s is the malleable twin of a valid signature.
  const n = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n
  let s = 0n
  for (const b of sig.subarray(32, 64)) s = (s << 8n) | BigInt(b)
  const twin = sig.slice()
  const hs = (n - s).toString(16).padStart(64, '0')
  twin.set(Buffer.from(hs, 'hex'), 32)
  twin[64] = sig[64] === 27 ? 28 : 27
  assert.throws(
    () => recoverAddress(digest, twin),
    (e: unknown) => e instanceof ProtocolError && e.code === 'BAD_SIGNATURE',
  )
})

test('box: round trip, response key shared, bound to context and aad', () => {
  fc.assert(
    fc.property(
      bytes(0, 2048),
      bytes(0, 64),
      fc.constantFrom('tx', 'view', 'deploy'),
      (plaintext, aad, context) => {
        const r = generateX25519KeyPair()
        const { box, responseKey } = boxSeal({
          recipientPublicKey: r.publicKey,
          plaintext,
          context,
          aad,
        })
        const opened = boxOpen({
          recipientSecretKey: r.secretKey,
          recipientPublicKey: r.publicKey,
          box,
          context,
          aad,
        })
        assert.deepEqual(opened.plaintext, plaintext)
        assert.deepEqual(opened.responseKey, responseKey)
        const other = context === 'tx' ? 'view' : 'tx'
        assert.throws(
          () =>
            boxOpen({
              recipientSecretKey: r.secretKey,
              recipientPublicKey: r.publicKey,
              box,
              context: other,
              aad,
            }),
          /authentication failed/,
        )
        return true
      },
    ),
    { numRuns: 60 },
  )
})

test('HKDF equals RFC 5869 (node:crypto hkdfSync), and a box opens with an independent x25519 + HKDF + AES-GCM', () => {
  fc.assert(
    fc.property(
      bytes(0, 64),
      bytes(0, 80),
      fc.string({ maxLength: 40 }),
      fc.integer({ min: 1, max: 64 }),
      (ikm, salt, info, length) => {
        const expected = new Uint8Array(hkdfSync('sha256', ikm, salt, utf8(info), length))
        assert.deepEqual(hkdf(ikm, salt, info, length), expected)
        return true
      },
    ),
    { numRuns: 200 },
  )
  fc.assert(
    fc.property(
      bytes(0, 300),
      bytes(0, 40),
      fc.constantFrom('tx', 'view'),
      (plaintext, aad, context) => {
        const r = generateX25519KeyPair()
        const { box, responseKey } = boxSeal({
          recipientPublicKey: r.publicKey,
          plaintext,
          context,
          aad,
        })
        // SPEC §6.1 by hand: ephemeral(32) | nonce(12) | ciphertext | tag(16).
        const eph = box.subarray(0, 32)
        const shared = x25519.getSharedSecret(r.secretKey, eph)
        const salt = new Uint8Array([...eph, ...r.publicKey])
        const key = (dir: string, extra: Uint8Array = new Uint8Array()) =>
          new Uint8Array(
            hkdfSync(
              'sha256',
              shared,
              salt,
              new Uint8Array([...utf8(`POSE-BOX-v1/${dir}/${context}`), ...extra]),
              32,
            ),
          )
        const d = createDecipheriv('aes-256-gcm', key('request'), box.subarray(32, 44))
        d.setAAD(aad)
        d.setAuthTag(box.subarray(box.length - 16))
        const opened = Buffer.concat([d.update(box.subarray(44, box.length - 16)), d.final()])
        assert.deepEqual(new Uint8Array(opened), plaintext)
        // The response key is the context's answer key followed by the box's nonce, and an
        // answer is AES-GCM under that key with the label and the nonce as associated data.
        const nonce = box.subarray(32, 44)
        assert.deepEqual(responseKey, new Uint8Array([...key('answer'), ...nonce]))
        const answer = sealAnswer(responseKey, plaintext)
        const a = createDecipheriv('aes-256-gcm', key('answer'), answer.subarray(0, 12))
        a.setAAD(new Uint8Array([...utf8('POSE-ANSWER-v2'), ...nonce]))
        a.setAuthTag(answer.subarray(answer.length - 16))
        const read = Buffer.concat([a.update(answer.subarray(12, answer.length - 16)), a.final()])
        assert.deepEqual(new Uint8Array(read), plaintext)
        return true
      },
    ),
    { numRuns: 40 },
  )
})

test('box sessions: one ephemeral key per recipient for a bounded number of boxes, an answer key per session bound to each box', () => {
  const open = (r: { secretKey: Uint8Array; publicKey: Uint8Array }, box: Uint8Array) =>
    boxOpen({
      recipientSecretKey: r.secretKey,
      recipientPublicKey: r.publicKey,
      box,
      context: 'tx',
    })
  const a = generateX25519KeyPair()
  const b = generateX25519KeyPair()
  const sessions = new BoxSessions({ maxBoxes: 3, maxRecipients: 1 })
  const seal = (r: { publicKey: Uint8Array }, text: string) =>
    sessions.seal({ recipientPublicKey: r.publicKey, plaintext: utf8(text), context: 'tx' })
  const boxes = [seal(a, 'one'), seal(a, 'two'), seal(a, 'three'), seal(a, 'four')]
  const eph = boxes.map((x) => bytesToHex(x.box.subarray(0, 32)))
  // Three boxes share the ephemeral key, the fourth starts a new session.
  assert.equal(new Set(eph.slice(0, 3)).size, 1)
  assert.notEqual(eph[3], eph[0])
  // Every box opens, with its own response key; an answer opens only with its box's key.
  for (const [i, text] of ['one', 'two', 'three', 'four'].entries()) {
    const opened = open(a, boxes[i]!.box)
    assert.equal(new TextDecoder().decode(opened.plaintext), text)
    assert.deepEqual(opened.responseKey, boxes[i]!.responseKey)
  }
  assert.equal(new Set(boxes.map((x) => bytesToHex(x.responseKey))).size, 4)
  // A session's boxes share the answer key; the nonce after it binds an answer to its box.
  assert.equal(
    new Set(boxes.slice(0, 3).map((x) => bytesToHex(x.responseKey.subarray(0, 32)))).size,
    1,
  )
  const answer = sealAnswer(boxes[0]!.responseKey, utf8('receipt'))
  assert.equal(new TextDecoder().decode(openAnswer(boxes[0]!.responseKey, answer)), 'receipt')
  assert.throws(() => openAnswer(boxes[1]!.responseKey, answer), /authentication failed/)
  assert.throws(() => openAnswer(boxes[0]!.responseKey.subarray(0, 32), answer), /responseKey/)
  // A nonce changed on the way gives another response key, and the request does not open.
  const tampered = boxes[1]!.box.slice()
  tampered[32]! ^= 1
  assert.throws(() => open(a, tampered), /authentication failed/)
  // A session per recipient: another recipient gets another key, and (one recipient at most
  // here) the first recipient's session is dropped.
  const toB = seal(b, 'b')
  assert.notEqual(bytesToHex(toB.box.subarray(0, 32)), eph[3])
  assert.equal(new TextDecoder().decode(open(b, toB.box).plaintext), 'b')
  assert.notEqual(bytesToHex(seal(a, 'again').box.subarray(0, 32)), eph[3])
  // Sessions expire.
  const short = new BoxSessions({ maxAgeMs: 0 })
  const x = short.seal({ recipientPublicKey: a.publicKey, plaintext: utf8('x'), context: 'tx' })
  const y = short.seal({ recipientPublicKey: a.publicKey, plaintext: utf8('y'), context: 'tx' })
  assert.notEqual(bytesToHex(x.box.subarray(0, 32)), bytesToHex(y.box.subarray(0, 32)))
  // The recipient remembers a bounded number of ephemeral keys: boxes from more sessions than
  // that, and then from the first again, all open.
  const many = Array.from({ length: 1100 }, (_, i) =>
    boxSeal({ recipientPublicKey: a.publicKey, plaintext: utf8(`m${i}`), context: 'tx' }),
  )
  for (const [i, m] of [...many, many[0]!].entries())
    assert.equal(new TextDecoder().decode(open(a, m.box).plaintext), `m${i % 1100}`)
})

test('x25519 keys through JWK agree with the DER path and with noble; bad points are refused', () => {
  for (let i = 0; i < 50; i++) {
    const kp = generateX25519KeyPair()
    assert.equal(bytesToHex(kp.publicKey), bytesToHex(x25519PublicKey(kp.secretKey)))
    assert.equal(bytesToHex(kp.publicKey), bytesToHex(x25519.getPublicKey(kp.secretKey)))
  }
  // A box sealed to a key opens with the secret key, and the shared secret is noble's.
  const r = generateX25519KeyPair()
  const { box } = boxSeal({ recipientPublicKey: r.publicKey, plaintext: utf8('hi'), context: 't' })
  const opened = boxOpen({
    recipientSecretKey: r.secretKey,
    recipientPublicKey: r.publicKey,
    box,
    context: 't',
  })
  assert.equal(new TextDecoder().decode(opened.plaintext), 'hi')
  // An all-zero (low-order) ephemeral key is refused with a typed error.
  const zero = box.slice()
  zero.fill(0, 0, 32)
  assert.throws(
    () =>
      boxOpen({
        recipientSecretKey: r.secretKey,
        recipientPublicKey: r.publicKey,
        box: zero,
        context: 't',
      }),
    (e: unknown) => e instanceof ProtocolError && e.code === 'DECRYPTION_FAILED',
  )
})

test('pair keys: both sides derive the same key, independently (noble x25519 + RFC 5869 HKDF), bound to both parties; tags verify only untampered', () => {
  const party = () => {
    const kp = generateX25519KeyPair()
    const signer = randomBytes(20)
    return { secretKey: kp.secretKey, encryptionKey: kp.publicKey, signer }
  }
  const pub = (p: { encryptionKey: Uint8Array; signer: Uint8Array }) => ({
    encryptionKey: p.encryptionKey,
    signer: p.signer,
  })
  for (let i = 0; i < 20; i++) {
    const a = party()
    const b = party()
    const ab = pairKey(a, pub(b))
    assert.equal(bytesToHex(ab), bytesToHex(pairKey(b, pub(a))), 'the same key from either side')
    // Decision 0020: HKDF-SHA256 over the x25519 secret, salted with both parties in byte order.
    const [x, y] = [concatBytes(a.encryptionKey, a.signer), concatBytes(b.encryptionKey, b.signer)]
    const salt = compareBytes(x, y) <= 0 ? concatBytes(x, y) : concatBytes(y, x)
    const ikm = x25519.getSharedSecret(a.secretKey, b.encryptionKey)
    const expected = new Uint8Array(hkdfSync('sha256', ikm, salt, utf8('POSE-PAIR-v1'), 32))
    assert.equal(bytesToHex(ab), bytesToHex(expected))
    // Another party, or the same key claimed by another address, gives another key.
    assert.notEqual(bytesToHex(ab), bytesToHex(pairKey(a, pub(party()))))
    assert.notEqual(bytesToHex(ab), bytesToHex(pairKey(a, { ...pub(b), signer: randomBytes(20) })))
    const data = randomBytes(32)
    const tag = pairTag(ab, data)
    assert.equal(tag.length, 32)
    assert.ok(pairTagValid(pairKey(b, pub(a)), data, tag))
    const flipped = tag.slice()
    flipped[i % 32]! ^= 1
    assert.ok(!pairTagValid(ab, data, flipped))
    assert.ok(!pairTagValid(ab, data, tag.subarray(0, 31)))
    assert.ok(!pairTagValid(pairKey(a, pub(party())), data, tag))
  }
  // A low-order public key gives no shared secret: a typed error.
  assert.throws(
    () => pairKey(party(), { encryptionKey: new Uint8Array(32), signer: randomBytes(20) }),
    (e: unknown) => e instanceof ProtocolError && e.code === 'DECRYPTION_FAILED',
  )
})

test('key generation and box sealing never deadlock in a garbage collection (Node 20 KeyGenJob lock)', async () => {
  // Exporting a key made by generateKeyPairSync deadlocked when a collection during the export
  // freed that key's generation job (its destructor takes the lock the export holds): a client
  // hung in boxSeal. Compaction on every collection and a 1 MiB young generation hang the old
  // code within seconds (4 runs of 4); the loop is bounded in count and time.
  const box = new URL('../../src/protocol/box.ts', import.meta.url).href
  const script = [
    `import { boxSeal, generateX25519KeyPair } from ${JSON.stringify(box)}`,
    'const r = generateX25519KeyPair()',
    'const plaintext = new Uint8Array(200)',
    'const t0 = Date.now()',
    'let i = 0',
    'for (; i < 30_000 && Date.now() - t0 < 20_000; i++) {',
    "  boxSeal({ recipientPublicKey: r.publicKey, plaintext, context: 'tx' })",
    '  if (i % 1000 === 0) generateX25519KeyPair()',
    '}',
    'console.log(i)',
  ].join('\n')
  const { code, signal, out } = await runScript(script, {
    nodeFlags: ['--stress-compaction', '--max-semi-space-size=1'],
    killAfterMs: 45_000,
  })
  assert.equal(signal, null, 'the process finished instead of hanging')
  assert.equal(code, 0)
  assert.ok(Number(out.trim()) > 1000, `boxes sealed: ${out.trim()}`)
})

test('box: any flipped byte is rejected with DECRYPTION_FAILED', () => {
  const r = generateX25519KeyPair()
  const { box } = boxSeal({
    recipientPublicKey: r.publicKey,
    plaintext: new Uint8Array(40).fill(7),
    context: 'tx',
  })
  fc.assert(
    fc.property(fc.nat({ max: box.length - 1 }), fc.integer({ min: 1, max: 255 }), (i, x) => {
      const t = box.slice()
      t[i]! ^= x
      assert.throws(
        () =>
          boxOpen({
            recipientSecretKey: r.secretKey,
            recipientPublicKey: r.publicKey,
            box: t,
            context: 'tx',
          }),
        (e: unknown) => e instanceof ProtocolError && e.code === 'DECRYPTION_FAILED',
      )
      return true
    }),
    { numRuns: 200 },
  )
  assert.throws(
    () =>
      boxOpen({
        recipientSecretKey: r.secretKey,
        recipientPublicKey: r.publicKey,
        box: box.subarray(0, 20),
        context: 'tx',
      }),
    /expected at least/,
  )
})

test('randomBytes: right lengths, fresh arrays, no string handed out twice across pool refills', () => {
  // 12-byte nonces over several refills of the 4 KiB pool, mixed with other sizes.
  const seen = new Set<string>()
  const drawn: Uint8Array[] = []
  for (let i = 0; i < 2_000; i++) {
    const n = [12, 32, 1, 20, 512, 513, 5_000][i % 7]!
    const r = randomBytes(n)
    assert.ok(r instanceof Uint8Array && r.length === n && r.byteOffset === 0)
    assert.equal(r.buffer.byteLength, n, 'its own buffer, not a view of the pool')
    if (n >= 12) {
      const k = bytesToHex(r)
      assert.ok(!seen.has(k), `a ${n}-byte string repeated`)
      seen.add(k)
    }
    drawn.push(r)
  }
  // Later draws do not change earlier ones (nothing aliases the pool).
  const copy = drawn.map((r) => r.slice())
  for (let i = 0; i < 1_000; i++) randomBytes(12)
  assert.deepEqual(drawn, copy)
  // Not constant: the bytes of many draws cover most byte values.
  const values = new Set<number>()
  for (const r of drawn.slice(0, 200)) for (const b of r) values.add(b)
  assert.ok(values.size > 200)
  assert.equal(randomBytes(0).length, 0)
})

test('aead: round trip and wrong key', () => {
  fc.assert(
    fc.property(bytes(32, 32), bytes(), bytes(0, 32), (key, pt, aad) => {
      assert.deepEqual(aeadOpen(key, aeadSeal(key, pt, aad), aad), pt)
      const other = key.slice()
      other[0]! ^= 1
      assert.throws(() => aeadOpen(other, aeadSeal(key, pt, aad), aad))
      return true
    }),
    { numRuns: 100 },
  )
})

test('x25519 public key derivation is consistent', () => {
  const kp = generateX25519KeyPair()
  assert.deepEqual(x25519PublicKey(kp.secretKey), kp.publicKey)
})

test('the EIP-712 domain separator follows the domain asked for, even one changed in place', () => {
  const tx = {
    instance: 7n,
    from: new Uint8Array(20).fill(1),
    nonce: 3n,
    to: new Uint8Array(20).fill(2),
    value: 0n,
    data: Uint8Array.of(0xab),
    gasLimit: 100_000n,
  }
  const message = {
    instance: tx.instance,
    from: bytesToHex(tx.from),
    nonce: tx.nonce,
    to: bytesToHex(tx.to),
    value: tx.value,
    data: bytesToHex(tx.data),
    gasLimit: tx.gasLimit,
  }
  const viemDigest = (chainId: bigint, manager: Uint8Array) =>
    hashTypedData({
      domain: { name: 'POSE', version: '1', chainId, verifyingContract: bytesToHex(manager) },
      types: poseTypes,
      primaryType: 'Tx',
      message,
    })
  // One domain object, asked for again after its manager's bytes and its chain id changed:
  // the separator kept for the last domain must not answer for the changed one.
  const domain = { chainId: 1n, manager: new Uint8Array(20).fill(0x11) }
  for (let round = 0; round < 3; round++) {
    assert.equal(bytesToHex(hashTx(domain, tx)), viemDigest(domain.chainId, domain.manager))
    assert.equal(bytesToHex(hashTx(domain, tx)), viemDigest(domain.chainId, domain.manager))
    domain.manager[19] = round + 0x20
    if (round === 1) domain.chainId = 31337n
  }
  // Two domains in turn.
  const other = { chainId: 5n, manager: new Uint8Array(20).fill(0x22) }
  for (let i = 0; i < 4; i++) {
    const d = i % 2 === 0 ? domain : other
    assert.equal(bytesToHex(hashTx(d, tx)), viemDigest(d.chainId, d.manager))
  }
})

test('EIP-712 Tx, View and Session digests equal viem hashTypedData and wallet signatures recover', async () => {
  const account = privateKeyToAccount(bytesToHex(generateSecretKey()))
  const samples = fc.sample(
    fc.record({
      instance: u(256),
      nonce: u(64),
      value: u(256),
      gasLimit: u(64),
      to: addr(),
      data: bytes(0, 100),
      chainId: u(64),
      manager: addr(),
      expiry: u(64),
      boxKey: bytes(32, 32),
    }),
    25,
  )
  for (const s of samples) {
    const domain = {
      name: 'POSE',
      version: '1',
      chainId: s.chainId,
      verifyingContract: bytesToHex(s.manager),
    } as const
    const from = account.address
    const tx = {
      instance: s.instance,
      from: Buffer.from(from.slice(2), 'hex'),
      nonce: s.nonce,
      to: s.to,
      value: s.value,
      data: s.data,
      gasLimit: s.gasLimit,
    }
    const ours = hashTx({ chainId: s.chainId, manager: s.manager }, tx)
    const message = {
      instance: s.instance,
      from,
      nonce: s.nonce,
      to: bytesToHex(s.to),
      value: s.value,
      data: bytesToHex(s.data),
      gasLimit: s.gasLimit,
    }
    assert.equal(
      bytesToHex(ours),
      hashTypedData({ domain, types: poseTypes, primaryType: 'Tx', message }),
    )
    const view = { instance: s.instance, from: tx.from, to: s.to, data: s.data, expiry: s.expiry }
    assert.equal(
      bytesToHex(hashViewCall({ chainId: s.chainId, manager: s.manager }, view)),
      hashTypedData({
        domain,
        types: poseTypes,
        primaryType: 'View',
        message: {
          instance: s.instance,
          from,
          to: bytesToHex(s.to),
          data: bytesToHex(s.data),
          expiry: s.expiry,
        },
      }),
    )
    const session = {
      instance: s.instance,
      account: tx.from,
      boxKey: s.boxKey,
      validUntil: s.expiry,
    }
    assert.equal(
      bytesToHex(hashSession({ chainId: s.chainId, manager: s.manager }, session)),
      hashTypedData({
        domain,
        types: poseTypes,
        primaryType: 'Session',
        message: {
          instance: s.instance,
          account: from,
          boxKey: bytesToHex(s.boxKey),
          validUntil: s.expiry,
        },
      }),
    )
  }
  const s = samples[0]!
  const domain = {
    name: 'POSE',
    version: '1',
    chainId: Number(s.chainId % 1000000n) + 1,
    verifyingContract: bytesToHex(s.manager),
  } as const
  const message = {
    instance: 1n,
    from: account.address,
    nonce: 0n,
    to: bytesToHex(s.to),
    value: 0n,
    data: '0x',
    gasLimit: 100000n,
  } as const
  const sig = await account.signTypedData({ domain, types: poseTypes, primaryType: 'Tx', message })
  const digest = hashTx(
    { chainId: BigInt(domain.chainId), manager: s.manager },
    {
      ...message,
      from: Buffer.from(account.address.slice(2), 'hex'),
      to: s.to,
      data: new Uint8Array(),
    },
  )
  assert.equal(
    bytesToHex(recoverAddress(digest, Buffer.from(sig.slice(2), 'hex'))),
    account.address.toLowerCase(),
  )
})

test('the SDK signs the EIP-712 digest directly only where that equals the wallet signature', async () => {
  const local = privateKeyToAccount(bytesToHex(generateSecretKey()))
  // A wallet that only signs typed data (no raw-digest signing), like a JSON-RPC account.
  const wallet = { ...local, sign: undefined }
  let rawSigns = 0
  const counting = {
    ...local,
    sign: (p: { hash: `0x${string}` }) => {
      rawSigns++
      return local.sign(p)
    },
  }
  const manager = new Uint8Array(20).fill(7)
  const domain = { chainId: 31337n, manager }
  const base = { domain, manager: bytesToHex(manager) }
  for (const s of fc.sample(fc.record({ nonce: u(64), to: addr(), data: bytes(0, 80) }), 10)) {
    const tx = {
      instance: 3n,
      from: Buffer.from(local.address.slice(2), 'hex'),
      nonce: s.nonce,
      to: s.to,
      value: 0n,
      data: s.data,
      gasLimit: 21000n,
    }
    const message = { ...tx, from: local.address, to: bytesToHex(s.to), data: bytesToHex(s.data) }
    const digest = hashTx(domain, tx)
    const viaDigest = await signTyped(
      { ...base, account: counting } as never,
      'Tx',
      message,
      digest,
    )
    const viaTypedData = await signTyped(
      { ...base, account: wallet } as never,
      'Tx',
      message,
      digest,
    )
    assert.equal(viaDigest, viaTypedData)
    const view = { instance: 3n, from: tx.from, to: s.to, data: s.data, expiry: s.nonce }
    const viewMessage = {
      ...view,
      from: local.address,
      to: bytesToHex(s.to),
      data: bytesToHex(s.data),
    }
    const viewDigest = hashViewCall(domain, view)
    assert.equal(
      await signTyped({ ...base, account: counting } as never, 'View', viewMessage, viewDigest),
      await signTyped({ ...base, account: wallet } as never, 'View', viewMessage, viewDigest),
    )
  }
  assert.equal(rawSigns, 20)
})
