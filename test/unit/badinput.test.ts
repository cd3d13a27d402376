/**
 * The bad-input corpus: more than 10,000 malformed, truncated, oversized, mistyped, deeply
 * nested, forged, mis-addressed and replayed inputs at every boundary an attacker reaches
 * (operator HTTP API, peer messages, ecalls, encrypted transactions, wire decoders). Each is
 * refused with a typed error; no process state is lost and the instance keeps serving.
 * Prints the count per boundary.
 */
import assert from 'node:assert/strict'
import { after, test } from 'node:test'
import fc from 'fast-check'
import { createApi } from '../../src/operator/api.ts'
import {
  aeadOpen,
  BOX_CONTEXT,
  boxSeal,
  bytesToHex,
  decodeAckBody,
  decodeActivated,
  decodeAnswer,
  decodeCreated,
  decodeDeployRequest,
  decodeDeposit,
  decodeEnvelope,
  decodeGenesisBody,
  decodeGenesisSecrets,
  decodeMemberRemoved,
  decodePoolDrawn,
  decodeReceipt,
  decodeRefilled,
  decodeSignedTx,
  decodeSignedView,
  decodeSyncBody,
  decodeTerminated,
  decodeUpdateBody,
  decodeUpdatePayload,
  decodeWriteSet,
  type EnclaveOutput,
  ERROR_CODES,
  encodeSignedTx,
  generateSecretKey,
  hashTx,
  INSTANCE_ADDRESS,
  instanceAad,
  ProtocolError,
  randomBytes,
  secretKeyToAddress,
  signDigest,
  utf8,
} from '../../src/protocol/index.ts'
import { CHAIN_ID, MANAGER, type Node, pump, setupActive, transferBox } from './harness.ts'

const counts: Record<string, number> = { http: 0, peer: 0, ecall: 0, tx: 0, decoders: 0 }
after(() => {
  const total = Object.values(counts).reduce((a, b) => a + b, 0)
  console.log(
    `bad inputs rejected with typed errors: ${Object.entries(counts)
      .map(([k, n]) => `${k} ${n}`)
      .join(', ')}; total ${total}`,
  )
})

const typed = (e: unknown, where: string): ProtocolError => {
  assert.ok(e instanceof ProtocolError, `${where}: untyped ${String(e).slice(0, 200)}`)
  assert.ok((ERROR_CODES as readonly string[]).includes(e.code))
  return e
}

const deep = (depth: number): unknown => (depth === 0 ? 1 : { a: [deep(depth - 1)] })

test('HTTP API: 3,000 hostile requests get 4xx with a typed code; none reaches the enclave', async () => {
  let reached = 0
  const api = createApi({
    info: () => ({ ok: true }),
    deploy: async () => {
      reached++
      throw new ProtocolError('DECRYPTION_FAILED', 'box: does not open')
    },
    request: async () => {
      reached++
      throw new ProtocolError('DECRYPTION_FAILED', 'box: does not open')
    },
    digest: async () => {
      throw new ProtocolError('UNKNOWN_INSTANCE', 'no such instance')
    },
    status: async () => ({ instances: [] }),
  })
  const body = fc.oneof(
    fc.json(),
    fc.string(),
    fc.constant(''),
    fc.constant('{"box":'),
    fc.constant(JSON.stringify(deep(40))),
    fc.constant(JSON.stringify({ box: `0x${'ab'.repeat(300_000)}` })),
    fc
      .record({ box: fc.oneof(fc.string(), fc.integer(), fc.constant('0x0'), fc.constant(null)) })
      .map((x) => JSON.stringify(x)),
    fc.constant(JSON.stringify({ box: '0xzz' })),
    fc.constant(JSON.stringify({ box: '0x00', extra: 1 })),
  )
  const id = fc.oneof(
    fc.constantFrom('0', '-1', '1.5', '0x10', '9'.repeat(90), '%00', '..', 'NaN', '1e3'),
    fc.string({ maxLength: 30 }).map(encodeURIComponent),
  )
  await fc.assert(
    fc.asyncProperty(
      body,
      id,
      fc.constantFrom('tx', 'view', 'deploy', 'digest'),
      fc.constantFrom('application/json', 'text/plain', 'application/x-www-form-urlencoded'),
      async (payload, instance, kind, contentType) => {
        counts.http!++
        const r = await api.inject({
          method: kind === 'digest' ? 'GET' : 'POST',
          url: `/v1/instances/${instance}/${kind}`,
          payload,
          headers: { 'content-type': contentType },
        })
        assert.ok(
          r.statusCode >= 400 && r.statusCode < 500,
          `${r.statusCode} ${r.body.slice(0, 200)}`,
        )
        const err = JSON.parse(r.body).error
        assert.ok((ERROR_CODES as readonly string[]).includes(err?.code), r.body.slice(0, 200))
      },
    ),
    { numRuns: 3000 },
  )
  // Only well-formed boxes for valid ids reach the backend, which refuses them itself.
  assert.ok(reached < counts.http!)
})

test('peer messages, ecalls and encrypted transactions: 6,500 hostile inputs lose nothing', async () => {
  const { nodes, instance, creatorKey, contractEncryptionKey, answers } = await setupActive()
  const [n0, n1] = nodes as [Node, Node, Node]
  const target = { instance, contractEncryptionKey }
  const recipient = randomBytes(20)
  // A real transaction; its peer envelopes become material for forgeries and replays.
  const first = transferBox(target, creatorKey, 0n, recipient)
  const r = await n0.enclave.call('tx', { requestId: 'first', instance, box: first.box })
  const captured: Array<Extract<EnclaveOutput, { type: 'send' }>> = r.outputs.filter(
    (o): o is Extract<EnclaveOutput, { type: 'send' }> => o.type === 'send',
  )
  await pump(nodes, r.outputs, answers)
  assert.ok(answers.has('first'))
  const digests = async () =>
    Promise.all(
      nodes.map(async (n) =>
        bytesToHex(
          ((await n.enclave.call('digest', { instance })).result as { digest: Uint8Array }).digest,
        ),
      ),
    )
  const before = await digests()
  const real = captured[0]!.envelope as Record<string, string>

  // Peer messages: arbitrary values, real envelopes with a field replaced or one digit flipped,
  // envelopes for other instances, and replays of real ones (which are idempotent).
  const flip = (h: string, i: number) => {
    const j = 2 + (i % (h.length - 2))
    return h.slice(0, j) + (h[j] === '0' ? '1' : '0') + h.slice(j + 1)
  }
  const hostileEnvelope = fc.oneof(
    fc.anything({ withBigInt: true, maxDepth: 4 }),
    fc
      .tuple(
        fc.constantFrom('kind', 'instance', 'from', 'to', 'body', 'signature'),
        fc.anything({ maxDepth: 2 }),
      )
      .map(([k, v]) => ({ ...real, [k]: v })),
    fc
      .tuple(fc.constantFrom('from', 'to', 'body', 'signature'), fc.nat())
      .map(([k, i]) => ({ ...real, [k]: flip(real[k]!, i) })),
    fc
      .constantFrom('2', '0', '18446744073709551616', '-1')
      .map((inst) => ({ ...real, instance: inst })),
    fc
      .constantFrom('genesis', 'update', 'ack', 'sync', 'nope')
      .filter((kind) => kind !== real.kind)
      .map((kind) => ({ ...real, kind })),
    fc.constant(deep(50)),
  )
  await fc.assert(
    fc.asyncProperty(hostileEnvelope, fc.constantFrom(0, 1), async (envelope, to) => {
      counts.peer!++
      try {
        await (to === 0 ? n0 : n1).enclave.call('peer', { envelope })
        assert.fail('a hostile envelope was accepted')
      } catch (e) {
        typed(e, 'peer')
      }
    }),
    { numRuns: 3000 },
  )
  for (const o of captured)
    await n1.enclave.call('peer', { envelope: o.envelope }).catch(() => undefined)

  // Ecalls: every method with arbitrary parameters.
  const methods = [
    'init',
    'restore',
    'chain',
    'deploy',
    'tx',
    'view',
    'peer',
    'tick',
    'digest',
    'status',
    'constructor',
    'hasOwnProperty',
    '__proto__',
  ]
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom(...methods),
      fc.anything({ withBigInt: true, withTypedArray: true, maxDepth: 4 }),
      async (m, p) => {
        counts.ecall!++
        try {
          await n1.enclave.call(m, p)
        } catch (e) {
          typed(e, `ecall ${m}`)
        }
      },
    ),
    { numRuns: 2000 },
  )

  // Encrypted transactions that open but are wrong: forged signatures, another instance,
  // used nonces, gas out of range, garbage plaintext. Each is answered with a sealed, typed
  // rejection (or refused outright when the box itself is bad).
  const domain = { chainId: CHAIN_ID, manager: MANAGER }
  const txCase = fc.record({
    flavour: fc.constantFrom('forged', 'instance', 'replayed', 'gas', 'garbage', 'box'),
    nonce: fc.bigInt({ min: 0n, max: 1n << 64n }),
  })
  await fc.assert(
    fc.asyncProperty(txCase, async ({ flavour, nonce }) => {
      counts.tx!++
      const from = generateSecretKey()
      const tx = {
        instance: flavour === 'instance' ? instance + 1n : instance,
        from: flavour === 'forged' ? randomBytes(20) : secretKeyToAddress(from),
        nonce: flavour === 'replayed' ? 0n : nonce % 64n === 0n ? 1n : nonce,
        to: INSTANCE_ADDRESS,
        value: 0n,
        data: new Uint8Array(4),
        gasLimit: flavour === 'gas' ? 1n : 100_000n,
      }
      const key = flavour === 'replayed' ? creatorKey : from
      if (flavour === 'replayed') tx.from = secretKeyToAddress(creatorKey)
      const plaintext =
        flavour === 'garbage'
          ? randomBytes(Number(nonce % 300n))
          : encodeSignedTx({ ...tx, signature: signDigest(hashTx(domain, tx), key) })
      const sealed = boxSeal({
        recipientPublicKey: contractEncryptionKey,
        plaintext,
        context: BOX_CONTEXT.tx,
        aad: instanceAad(instance),
      })
      const box =
        flavour === 'box'
          ? sealed.box.slice(0, Number(nonce % BigInt(sealed.box.length)))
          : sealed.box
      try {
        const out = await n0.enclave.call('tx', { requestId: `bad-${counts.tx}`, instance, box })
        const answer = out.outputs.find((o) => o.type === 'answer')
        assert.ok(answer && answer.type === 'answer' && answer.sealed, `${flavour}: no rejection`)
        const a = decodeAnswer(aeadOpen(sealed.responseKey, answer.sealed, utf8('POSE-ANSWER-v1')))
        assert.equal(a.kind, 'rejected', `${flavour}: accepted`)
        if (a.kind === 'rejected')
          assert.ok((ERROR_CODES as readonly string[]).includes(a.error.code))
      } catch (e) {
        if (e instanceof assert.AssertionError) throw e
        typed(e, `tx ${flavour}`)
      }
    }),
    { numRuns: 1500 },
  )

  // Nothing changed, and the instance still serves.
  assert.deepEqual(await digests(), before)
  const next = transferBox(target, creatorKey, 1n, recipient)
  await pump(
    nodes,
    (await n0.enclave.call('tx', { requestId: 'next', instance, box: next.box })).outputs,
    answers,
  )
  const a = decodeAnswer(aeadOpen(next.responseKey, answers.get('next')!, utf8('POSE-ANSWER-v1')))
  assert.equal(a.kind === 'receipt' && a.receipt.status, 'success')
})

test('wire decoders: 1,500 hostile byte strings give a value or a typed error, never a crash', () => {
  const decoders: Array<[string, (b: Uint8Array) => unknown]> = [
    ['signed tx', decodeSignedTx],
    ['signed view', decodeSignedView],
    ['deploy request', decodeDeployRequest],
    ['receipt', decodeReceipt],
    ['answer', decodeAnswer],
    ['envelope', decodeEnvelope],
    ['update body', decodeUpdateBody],
    ['update payload', decodeUpdatePayload],
    ['genesis secrets', decodeGenesisSecrets],
    ['genesis body', decodeGenesisBody],
    ['ack', decodeAckBody],
    ['sync', decodeSyncBody],
    ['write set', decodeWriteSet],
    ['Created', decodeCreated],
    ['PoolDrawn', decodePoolDrawn],
    ['Activated', decodeActivated],
    ['MemberRemoved', decodeMemberRemoved],
    ['Refilled', decodeRefilled],
    ['Deposit', decodeDeposit],
    ['Terminated', decodeTerminated],
  ]
  const hostile = fc.oneof(
    fc.uint8Array({ maxLength: 400 }),
    fc.json().map((j) => utf8(j)),
    fc.constant(utf8(JSON.stringify(deep(60)))),
    fc.constant(utf8('{"seq":"1","seq":"2"}')),
    fc.constant(new Uint8Array(0)),
  )
  fc.assert(
    fc.property(fc.constantFrom(...decoders), hostile, ([name, decode], bytes) => {
      counts.decoders!++
      try {
        decode(bytes)
      } catch (e) {
        typed(e, name)
      }
    }),
    { numRuns: 1500 },
  )
})
