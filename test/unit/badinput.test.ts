/**
 * The bad-input corpus: more than 10,000 malformed, truncated, oversized, mistyped, deeply
 * nested, forged, mis-addressed and replayed inputs at every boundary an attacker reaches
 * (operator HTTP API, peer messages, ecalls, encrypted transactions, wire decoders, the `pose`
 * command line). Each is refused with a typed error; no process state is lost and the instance
 * keeps serving. Prints the count per boundary.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, test } from 'node:test'
import { promisify } from 'node:util'
import fc from 'fast-check'
import { type CliCommand, runCli } from '../../src/cli/program.ts'
import { CLI_ERROR_CODES, CliError, type CliErrorCode, printable } from '../../src/cli/validate.ts'
import { createApi } from '../../src/operator/api.ts'
import {
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
  openAnswer,
  ProtocolError,
  randomBytes,
  secretKeyToAddress,
  signDigest,
  utf8,
} from '../../src/protocol/index.ts'
import {
  answerOf,
  CHAIN_ID,
  MANAGER,
  type Node,
  pump,
  setupActive,
  transferBox,
} from './harness.ts'

const execFileAsync = promisify(execFile)

const counts: Record<string, number> = { http: 0, peer: 0, ecall: 0, tx: 0, decoders: 0, cli: 0 }
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

test('HTTP API: 3,000 hostile requests get 4xx with a typed code; none reaches the enclave', {
  timeout: 120_000,
}, async () => {
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
    { numRuns: 3000, seed: 11 },
  )
  // Only well-formed boxes for valid ids reach the backend, which refuses them itself.
  assert.ok(reached < counts.http!)
})

test('peer messages, ecalls and encrypted transactions: 6,500 hostile inputs lose nothing', {
  timeout: 120_000,
}, async () => {
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
    { numRuns: 3000, seed: 12 },
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
    { numRuns: 2000, seed: 13 },
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
        const a = decodeAnswer(openAnswer(sealed.responseKey, answer.sealed))
        assert.equal(a.kind, 'rejected', `${flavour}: accepted`)
        if (a.kind === 'rejected')
          assert.ok((ERROR_CODES as readonly string[]).includes(a.error.code))
      } catch (e) {
        if (e instanceof assert.AssertionError) throw e
        typed(e, `tx ${flavour}`)
      }
    }),
    { numRuns: 1500, seed: 14 },
  )

  // Nothing changed, and the instance still serves.
  assert.deepEqual(await digests(), before)
  const next = transferBox(target, creatorKey, 1n, recipient)
  await pump(
    nodes,
    (await n0.enclave.call('tx', { requestId: 'next', instance, box: next.box })).outputs,
    answers,
  )
  const a = answerOf(answers, 'next', next.responseKey)
  assert.equal(a.kind === 'receipt' && a.receipt.status, 'success')
})

test('wire decoders: 1,500 hostile byte strings give a value or a typed error, never a crash', {
  timeout: 120_000,
}, () => {
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
    { numRuns: 1500, seed: 15 },
  )
})

// The `pose` command line: hostile argv vectors end in a typed CliError before the runner.

const hex = (b: Uint8Array) => `0x${Buffer.from(b).toString('hex')}`
const bytesOf = (n: number) => fc.uint8Array({ minLength: n, maxLength: n }).map(hex)
const SECP256K1_N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n
const U256 = (1n << 256n) - 1n
const LONG = 'x'.repeat(100_000)
const garbage = fc.string({ unit: 'binary', maxLength: 40 })
const notMatching = (re: RegExp) => garbage.filter((x) => !re.test(x))

/**
 * How to write an option value well and badly, and the code a bad one gets: `edge` lists the
 * bad values every command line tries (boundaries, near misses, oversized), `random` adds more.
 */
type Kind = {
  valid: fc.Arbitrary<readonly [raw: string, parsed: unknown]>
  edge: string[]
  random: fc.Arbitrary<string>
  code: CliErrorCode
}
const same = (a: fc.Arbitrary<string>) => a.map((v) => [v, v] as const)
const int = (min: number, max: number): Kind => ({
  valid: fc.integer({ min, max }).map((n) => [String(n), n] as const),
  edge: [String(min - 1), String(max + 1), '1.5', 'NaN', '', '1e3', '0x10', ' 4', 'Infinity'],
  random: fc.oneof(
    fc.integer({ min: max + 1 }).map(String),
    fc.constantFrom('9'.repeat(400), LONG),
    notMatching(/^[0-9]+$/),
  ),
  code: 'BAD_OPTION',
})
const wei = (min: bigint): Kind => ({
  valid: fc
    .tuple(fc.bigInt({ min, max: U256 }), fc.boolean())
    .map(([n, asHex]) => [asHex ? `0x${n.toString(16)}` : String(n), n] as const),
  edge: [String(min - 1n), String(U256 + 1n), `0x1${'0'.repeat(64)}`, '-5', '1e99', '1.5', '0x'],
  random: fc.oneof(
    fc.constantFrom('abc', '', '0xg', ' 5', '+5', '1_000', 'NaN', LONG),
    notMatching(/^(?:[0-9]+|0x[0-9a-fA-F]+)$/),
  ),
  code: 'BAD_OPTION',
})
/** A stake: whole gwei up to the manager's 48-bit gwei record. */
const GWEI = 10n ** 9n
const STAKE_CAP = ((1n << 48n) - 1n) * GWEI
const stake: Kind = {
  valid: fc.tuple(fc.bigInt({ min: 0n, max: STAKE_CAP / GWEI }), fc.boolean()).map(([g, asHex]) => {
    const n = g * GWEI
    return [asHex ? `0x${n.toString(16)}` : String(n), n] as const
  }),
  edge: [
    '1',
    String(GWEI + 1n),
    String(STAKE_CAP + GWEI),
    String(STAKE_CAP + 1n),
    `0x1${'0'.repeat(64)}`,
    '-5',
    '1e99',
    '1.5',
    '0x',
  ],
  random: fc.oneof(
    fc.constantFrom('abc', '', '0xg', ' 5', '+5', '1_000', 'NaN', LONG),
    notMatching(/^(?:[0-9]+|0x[0-9a-fA-F]+)$/),
    fc
      .bigInt({ min: 1n, max: U256 })
      .filter((n) => n % GWEI !== 0n || n > STAKE_CAP)
      .map(String),
  ),
  code: 'BAD_OPTION',
}
const kinds = {
  url: {
    valid: same(
      fc.oneof(
        fc.constantFrom(
          'http://127.0.0.1:8545',
          'http://[::1]:8545',
          'https://rpc.example.org/v2/K',
        ),
        fc.webUrl({ validSchemes: ['http', 'https'] }),
      ),
    ),
    edge: ['', 'localhost:8545', 'ftp://x', 'ws://127.0.0.1:8545', 'http://', 'http://a\nb'],
    random: fc.oneof(
      fc.constantFrom('file:///etc/passwd', 'javascript:alert(1)', 'http://exa mple.org'),
      fc.constantFrom('http://host:99999', 'http://[::1', `http://${LONG}`, ' http://x', '--rpc'),
      notMatching(/^https?:\/\//i),
    ),
    code: 'BAD_OPTION',
  },
  wsUrl: {
    valid: same(
      fc.oneof(
        fc.constantFrom('ws://127.0.0.1:8545', 'ws://[::1]:8546', 'wss://rpc.example.org/ws/K'),
        fc.webUrl({ validSchemes: ['ws', 'wss'] }),
      ),
    ),
    edge: ['', '127.0.0.1:8545', 'http://127.0.0.1:8545', 'ws://', 'ws://a\nb', 'wss://'],
    random: fc.oneof(
      fc.constantFrom('ws://host:99999', 'ws://[::1', `ws://${LONG}`, ' ws://x', '--rpc-ws'),
      notMatching(/^wss?:\/\//i),
    ),
    code: 'BAD_OPTION',
  },
  address: {
    valid: same(
      fc.oneof(
        bytesOf(20),
        bytesOf(20).map((a) => `0x${a.slice(2).toUpperCase()}`),
      ),
    ),
    edge: ['', '0x1234', `0x${'a'.repeat(39)}`, `0x${'a'.repeat(41)}`, `0X${'a'.repeat(40)}`],
    random: fc.oneof(
      fc.constantFrom(`0x${'g'.repeat(40)}`, 'ab'.repeat(20), LONG, '\u0000', '\u202e'),
      notMatching(/^0x[0-9a-fA-F]{40}$/),
    ),
    code: 'BAD_OPTION',
  },
  key: {
    valid: fc
      .bigInt({ min: 1n, max: SECP256K1_N - 1n })
      .map((k) => `0x${k.toString(16).padStart(64, '0')}`)
      .map((k) => [k, k] as const),
    edge: [
      '',
      '0x01',
      `0x${'0'.repeat(64)}`,
      `0x${SECP256K1_N.toString(16)}`,
      `0x${'f'.repeat(64)}`,
    ],
    random: fc.oneof(
      fc.constantFrom(`0x${'zz'.repeat(32)}`, 'a'.repeat(64), `0x${'a'.repeat(66)}`, LONG),
      fc.constantFrom(` 0x${'1'.repeat(64)}`),
      notMatching(/^0x[0-9a-fA-F]{64}$/),
    ),
    code: 'BAD_KEY',
  },
  instance: {
    valid: fc.bigInt({ min: 1n, max: U256 }).map((n) => [String(n), n] as const),
    edge: ['0', '-1', String(U256 + 1n), '01', '0x10', '1.5', ''],
    random: fc.oneof(
      fc.constantFrom('abc', '9'.repeat(100), '1 ', 'NaN', LONG),
      notMatching(/^[0-9]+$/),
    ),
    code: 'BAD_OPTION',
  },
  host: {
    valid: same(
      fc.oneof(fc.constantFrom('127.0.0.1', '::', 'localhost'), fc.ipV4(), fc.ipV6(), fc.domain()),
    ),
    edge: ['', 'exa mple', 'host_name', '-leading', `${'a'.repeat(64)}.org`, '1.2.3.4:80'],
    random: fc.oneof(
      fc.constantFrom('a..b', 'http://x', 'hôst', LONG),
      garbage.filter((x) => /[^A-Za-z0-9.:-]/.test(x)),
    ),
    code: 'BAD_OPTION',
  },
  ip: {
    valid: same(fc.oneof(fc.ipV4(), fc.ipV6())),
    edge: ['localhost', '1.2.3', '256.1.1.1', '', '::g'],
    random: fc.oneof(
      fc.constantFrom('1.2.3.4.5', 'example.org'),
      garbage.filter((x) => /[^0-9a-fA-F.:]/.test(x)),
    ),
    code: 'BAD_OPTION',
  },
  path: {
    valid: same(garbage.filter((x) => x.length > 0 && !x.includes('\0'))),
    edge: ['', '\0', 'a\0b', 'x'.repeat(5000)],
    random: fc.constant(''),
    code: 'BAD_OPTION',
  },
  payload: {
    valid: fc.uint8Array({ maxLength: 300 }).map((b) => [hex(b), hex(b)] as const),
    edge: ['0x1', '', '00', `0x${'00'.repeat(128 * 1024 + 1)}`],
    random: fc.oneof(fc.constantFrom('abc', '0xzz', LONG), notMatching(/^0x(?:[0-9a-fA-F]{2})*$/)),
    code: 'BAD_OPTION',
  },
  measurement: {
    valid: same(bytesOf(32)),
    edge: ['0x12', 'ab'.repeat(32), `0x${'ab'.repeat(33)}`, ''],
    random: fc.oneof(
      fc.constantFrom(`0x${'zz'.repeat(32)}`, LONG),
      notMatching(/^0x[0-9a-fA-F]{64}$/),
    ),
    code: 'BAD_OPTION',
  },
} satisfies Record<string, Kind>

type Opt = { flag: string; kind: Kind; field: string; required?: boolean; dflt?: unknown }
type Spec = {
  path: string[]
  cmd: CliCommand['cmd']
  opts: Opt[]
  /** Keys: from the flag or else the environment variable. */
  keys?: Array<{ flag: string; env: string; field: string }>
  bool?: { flag: string; field: string; given: boolean; absent: boolean }
  /** deploy: --artifact and --args for the constructor; function: also --function. */
  call?: 'deploy' | 'function'
  /** Constraints across options a valid command line keeps. */
  ok?: (e: Record<string, unknown>) => boolean
}

const chainOpts: Opt[] = [
  { flag: '--rpc', kind: kinds.url, field: 'rpc', required: true },
  { flag: '--manager', kind: kinds.address, field: 'manager', required: true },
]
const instanceOpt: Opt = {
  flag: '--instance',
  kind: kinds.instance,
  field: 'instance',
  required: true,
}
const userKey = [{ flag: '--key', env: 'POSE_KEY', field: 'key' }]
const operatorKey = [{ flag: '--key', env: 'POSE_OPERATOR_KEY', field: 'key' }]
const SPECS: Spec[] = [
  {
    path: ['devnet'],
    cmd: 'devnet',
    opts: [
      { flag: '--operators', kind: int(1, 64), field: 'operators', dflt: 4 },
      { flag: '--watchdogs', kind: int(0, 15), field: 'watchdogs', dflt: 2 },
      { flag: '--txs', kind: int(0, 1_000_000), field: 'txs', dflt: 30 },
      { flag: '--dir', kind: kinds.path, field: 'dir' },
    ],
    bool: { flag: '--keep', field: 'keep', given: true, absent: false },
    ok: (e) => (e.watchdogs as number) < (e.operators as number),
  },
  {
    path: ['operator', 'start'],
    cmd: 'operator-start',
    opts: [
      ...chainOpts,
      { flag: '--data-dir', kind: kinds.path, field: 'dataDir', required: true },
      { flag: '--host', kind: kinds.host, field: 'host', dflt: '127.0.0.1' },
      { flag: '--port', kind: int(0, 65_535), field: 'port', dflt: 0 },
      { flag: '--public-url', kind: kinds.url, field: 'publicUrl' },
      { flag: '--stake', kind: stake, field: 'stake' },
      { flag: '--confirmations', kind: int(0, 100_000), field: 'confirmations' },
      { flag: '--peer-source-address', kind: kinds.ip, field: 'peerSourceAddress' },
      { flag: '--rpc-ws', kind: kinds.wsUrl, field: 'rpcWs' },
    ],
    keys: [
      ...operatorKey,
      { flag: '--dev-authority-key', env: 'POSE_DEV_AUTHORITY_KEY', field: 'devAuthorityKey' },
    ],
  },
  {
    path: ['operator', 'exit'],
    cmd: 'operator-exit',
    opts: chainOpts,
    keys: operatorKey,
    bool: { flag: '--force', field: 'force', given: true, absent: false },
  },
  { path: ['operator', 'withdraw'], cmd: 'operator-withdraw', opts: chainOpts, keys: operatorKey },
  {
    path: ['deploy'],
    cmd: 'deploy',
    opts: [...chainOpts, { flag: '--watchdogs', kind: int(0, 15), field: 'watchdogs', dflt: 2 }],
    keys: userKey,
    call: 'deploy',
  },
  {
    path: ['send'],
    cmd: 'send',
    opts: [...chainOpts, instanceOpt, { flag: '--value', kind: wei(0n), field: 'value', dflt: 0n }],
    keys: userKey,
    call: 'function',
  },
  {
    path: ['call'],
    cmd: 'call',
    opts: [...chainOpts, instanceOpt],
    keys: userKey,
    call: 'function',
  },
  {
    path: ['challenge'],
    cmd: 'challenge',
    opts: [
      ...chainOpts,
      instanceOpt,
      { flag: '--payload', kind: kinds.payload, field: 'payload', dflt: '0x' },
    ],
    keys: userKey,
  },
  {
    path: ['deposit'],
    cmd: 'deposit',
    opts: [
      ...chainOpts,
      instanceOpt,
      { flag: '--value', kind: wei(1n), field: 'value', required: true },
    ],
    keys: userKey,
  },
  { path: ['balance'], cmd: 'balance', opts: [...chainOpts, instanceOpt], keys: userKey },
  {
    path: ['withdraw'],
    cmd: 'withdraw',
    opts: [...chainOpts, instanceOpt, { flag: '--amount', kind: wei(0n), field: 'amount' }],
    keys: userKey,
    bool: { flag: '--no-submit', field: 'submit', given: false, absent: true },
  },
  {
    path: ['status'],
    cmd: 'status',
    opts: [...chainOpts, { flag: '--instance', kind: kinds.instance, field: 'instance' }],
  },
  {
    path: ['verify-measurement'],
    cmd: 'verify-measurement',
    opts: [
      { flag: '--expected', kind: kinds.measurement, field: 'expected' },
      { flag: '--rpc', kind: kinds.url, field: 'rpc' },
      { flag: '--verifier', kind: kinds.address, field: 'verifier' },
    ],
    ok: (e) => 'rpc' in e === 'verifier' in e,
  },
]
const COMMANDS = [
  'operator',
  'help',
  ...SPECS.filter((x) => x.path.length === 1).map((x) => x.path[0]!),
]

const fn = (name: string, inputs: unknown[]) => ({
  type: 'function',
  name,
  inputs,
  outputs: [],
  stateMutability: 'nonpayable',
})
const ABI = [
  {
    type: 'constructor',
    inputs: [{ name: 'supply', type: 'uint256' }],
    stateMutability: 'payable',
  },
  fn('transfer', [
    { name: 'to', type: 'address' },
    { name: 'amount', type: 'uint256' },
  ]),
  fn('myBalance', []),
  fn('setName', [{ name: 'name', type: 'string' }]),
  fn('setFlags', [{ name: 'flags', type: 'bool[]' }]),
  fn('put', [
    { name: 'pair', type: 'uint8[2]' },
    { name: 'tag', type: 'bytes32' },
  ]),
  fn('configure', [
    {
      name: 'cfg',
      type: 'tuple',
      components: [
        { name: 'a', type: 'uint64' },
        { name: 'b', type: 'address' },
      ],
    },
  ]),
]
const FUNCTIONS = ABI.flatMap((e) => ('name' in e ? [e.name] : []))

/** Artifact files under a fresh temporary directory: good ones and every kind of bad one. */
function writeArtifacts(dir: string) {
  const file = (name: string, content: unknown) => {
    const p = join(dir, name)
    writeFileSync(p, typeof content === 'string' ? content : JSON.stringify(content))
    return p
  }
  const broken = (inputs: unknown) => ABI.map((e) => ({ ...e, inputs }))
  return {
    good: file('good.json', { abi: ABI, bytecode: { object: '0x6080604052' } }),
    solc: file('solc.json', { abi: ABI, evm: { bytecode: { object: '6080' } } }),
    noCtor: file('noctor.json', { abi: ABI.slice(1), bytecode: '6080604052' }),
    /** Bad for every command that reads an artifact. */
    bad: [
      join(dir, 'missing.json'),
      dir,
      '/dev/zero',
      file('notjson.json', '{"abi": ['),
      file('array.json', '[1, 2]'),
      file('empty.json', ''),
      file('noabi.json', { bytecode: '0x00' }),
      file('abiobject.json', { abi: { type: 'function' } }),
      file('abistring.json', { abi: 'x' }),
      file('abinull.json', { abi: [null, 1] }),
      file('inputsnotarray.json', { abi: broken('x'), bytecode: '0x00' }),
      file('badtype.json', { abi: broken([{ name: 'x', type: 'uint7' }]), bytecode: '0x00' }),
      file('nulltype.json', { abi: broken([null]), bytecode: '0x00' }),
    ],
    /** Bad only for deploy (send and call need no bytecode). */
    badBytecode: [
      file('nobytecode.json', { abi: ABI, bytecode: { object: '0x' } }),
      file('unlinked.json', { abi: ABI, bytecode: { object: '0x6080__$1234$__' } }),
      file('bcnumber.json', { abi: ABI, bytecode: 5 }),
      file('oddbytecode.json', { abi: ABI, bytecode: '0x608' }),
    ],
  }
}
type Artifacts = ReturnType<typeof writeArtifacts>

type Case = {
  spec: Spec
  pairs: Array<readonly [flag: string, value?: string]>
  env: Record<string, string>
  expected: Record<string, unknown>
  /** Write options as --flag=value. */
  eq: boolean
}
type Hostile = {
  argv: string[]
  env: Record<string, string>
  code: CliErrorCode
  /** What the message must name (an option or an environment variable). */
  names?: string | undefined
}

const argvOf = (c: Pick<Case, 'spec' | 'pairs' | 'eq'>) => [
  ...c.spec.path,
  ...c.pairs.flatMap(([f, v]) => (v === undefined ? [f] : c.eq ? [`${f}=${v}`] : [f, v])),
]
const shown = (argv: string[]) =>
  JSON.stringify(argv.map((a) => (a.length > 80 ? `${a.slice(0, 80)}…(${a.length})` : a)))

/** Generated valid command lines for a command, with what the runner must receive. */
function validCase(spec: Spec, art: Artifacts): fc.Arbitrary<Case> {
  const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER)
  const address = bytesOf(20)
  const deployArgs = fc.oneof(
    fc
      .tuple(fc.bigInt({ min: 0n, max: U256 }), fc.constantFrom(art.good, art.solc), fc.boolean())
      .map(([n, artifact, asNumber]) => ({
        artifact,
        raw: JSON.stringify([asNumber && n <= MAX_SAFE ? Number(n) : String(n)]),
        abi: ABI,
        bytecode: artifact === art.good ? '0x6080604052' : '0x6080',
        args: [n],
      })),
    fc.constant({
      artifact: art.noCtor,
      raw: undefined,
      abi: ABI.slice(1),
      bytecode: '0x6080604052',
      args: [],
    }),
  )
  const functionArgs = fc.oneof(
    fc.tuple(address, fc.bigInt({ min: 0n, max: U256 }), fc.boolean()).map(([a, n, asNumber]) => ({
      fn: 'transfer',
      raw: JSON.stringify([a, asNumber && n <= MAX_SAFE ? Number(n) : String(n)]),
      args: [a, n],
    })),
    fc.constantFrom(
      { fn: 'myBalance', raw: undefined, args: [] },
      { fn: 'myBalance', raw: '[]', args: [] },
    ),
    garbage.map((x) => ({ fn: 'setName', raw: JSON.stringify([x]), args: [x] })),
    fc
      .array(fc.boolean(), { maxLength: 10 })
      .map((f) => ({ fn: 'setFlags', raw: JSON.stringify([f]), args: [f] })),
    fc
      .tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 }), bytesOf(32))
      .map(([a, b, t]) => ({
        fn: 'put',
        raw: JSON.stringify([[a, String(b)], t]),
        args: [[BigInt(a), BigInt(b)], t],
      })),
    fc
      .tuple(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), address, fc.boolean())
      .map(([a, b, asArray]) => ({
        fn: 'configure',
        raw: JSON.stringify([asArray ? [String(a), b] : { a: String(a), b }]),
        args: [asArray ? [a, b] : { a, b }],
      })),
  )
  return fc
    .record({
      opts: fc.tuple(
        ...spec.opts.map((o) =>
          o.required ? o.kind.valid : fc.option(o.kind.valid, { nil: undefined }),
        ),
      ),
      keys: fc.tuple(...(spec.keys ?? []).map(() => fc.tuple(kinds.key.valid, fc.boolean()))),
      bool: fc.boolean(),
      deploy: deployArgs,
      call: functionArgs,
      eq: fc.boolean(),
      reverse: fc.boolean(),
    })
    .map((r) => {
      const pairs: Array<readonly [string, string?]> = []
      const env: Record<string, string> = {}
      const expected: Record<string, unknown> = { cmd: spec.cmd }
      spec.opts.forEach((o, i) => {
        const v = r.opts[i]
        if (v) {
          pairs.push([o.flag, v[0]])
          expected[o.field] = v[1]
        } else if (o.dflt !== undefined) expected[o.field] = o.dflt
      })
      ;(spec.keys ?? []).forEach((k, i) => {
        const [[raw, parsed], viaFlag] = r.keys[i]!
        if (viaFlag) pairs.push([k.flag, raw])
        else env[k.env] = raw
        expected[k.field] = parsed
      })
      if (spec.bool) {
        if (r.bool) pairs.push([spec.bool.flag])
        expected[spec.bool.field] = r.bool ? spec.bool.given : spec.bool.absent
      }
      if (spec.call === 'deploy') {
        const d = r.deploy
        pairs.push(['--artifact', d.artifact])
        if (d.raw !== undefined) pairs.push(['--args', d.raw])
        Object.assign(expected, { abi: d.abi, bytecode: d.bytecode, args: d.args })
      } else if (spec.call === 'function') {
        const c = r.call
        pairs.push(['--artifact', art.good], ['--function', c.fn])
        if (c.raw !== undefined) pairs.push(['--args', c.raw])
        Object.assign(expected, { abi: ABI, functionName: c.fn, args: c.args })
      }
      if (r.reverse) pairs.reverse()
      return { spec, pairs, env, expected, eq: r.eq }
    })
    .filter((c) => spec.ok?.(c.expected) ?? true)
}
const validCases = (art: Artifacts) => fc.oneof(...SPECS.map((spec) => validCase(spec, art)))

/** Tokens commander reads as an option a command does not have (`known`). */
const isUnknownOption = (known: Set<string>) => (t: string) => {
  const name = t.split('=')[0]!
  // '--' ends the options, -1 or -.5 is a number (an argument), -h and -V are help and version.
  return !/^--?$/.test(name) && !/^-[\d.hV]/.test(t) && !known.has(name)
}
const UNKNOWN_OPTIONS = ['--bogus', '--RPC', '-x', '-Z', '--no-keep', '--submit', '--rpc-url']
UNKNOWN_OPTIONS.push('--value=5', '--artifact', '--instance', '--key', '--dev', `--${LONG}`)
const randomOptions = fc.oneof(
  garbage.map((x) => `--${x}`),
  garbage.map((x) => `-${x}`),
)
const POSITIONALS = ['extra', '0', '', 'devnet', LONG, '\u0000']
const randomPositional = garbage.filter((x) => !x.startsWith('-'))
const BAD_FUNCTIONS = ['steal', '', 'transfer(address,uint256)', 'Transfer', 'constructor']
BAD_FUNCTIONS.push(' transfer', '__proto__', 'toString', 'hasOwnProperty', LONG)

/**
 * The defects of a valid command line, each with the code it must get: `listed` ones every
 * sweep tries (one defect each: every edge value of every option, every missing option, every
 * bad artifact and --args, ...), `random` ones the fuzz draws from.
 */
function defects(c: Case, art: Artifacts): { listed: Hostile[]; random: fc.Arbitrary<Hostile> } {
  const { spec } = c
  const hostile = (
    pairs: Case['pairs'],
    code: CliErrorCode,
    names?: string,
    env = c.env,
    tail: string[] = [],
  ): Hostile => ({ argv: [...argvOf({ spec, pairs, eq: c.eq }), ...tail], env, code, names })
  /** The valid pairs without the flags of `set` and `drop`, then those of `set`. */
  const edit = (set: Array<readonly [string, string]>, drop: string[] = []) => {
    const gone = new Set([...drop, ...set.map(([f]) => f)])
    return [...c.pairs.filter(([f]) => !gone.has(f)), ...set]
  }
  const valued = [
    ...spec.opts.map((o) => o.flag),
    ...(spec.keys ?? []).map((k) => k.flag),
    ...(spec.call ? ['--artifact', '--args'] : []),
    ...(spec.call === 'function' ? ['--function'] : []),
  ]
  const known = new Set([...valued, '--help', '--version', ...(spec.bool ? [spec.bool.flag] : [])])
  const requiredFlags = [
    ...spec.opts.filter((o) => o.required).map((o) => o.flag),
    ...(spec.call ? ['--artifact'] : []),
    ...(spec.call === 'function' ? ['--function'] : []),
  ]
  const unknown = (t: string) => hostile([...c.pairs, [t]], 'UNKNOWN_OPTION')
  const excess = (p: string) => hostile(c.pairs, 'UNEXPECTED_ARGUMENT', undefined, c.env, [p])
  const badValue = (o: Opt, v: string) => hostile(edit([[o.flag, v]]), o.kind.code, o.flag)
  const noEnv = (k: { env: string }) => {
    const env = { ...c.env }
    delete env[k.env]
    return env
  }
  const badKey = (k: { flag: string; env: string }, v: string, viaEnv: boolean) =>
    viaEnv
      ? hostile(edit([], [k.flag]), 'BAD_KEY', k.env, { ...noEnv(k), [k.env]: v })
      : hostile(edit([[k.flag, v]]), 'BAD_KEY', k.flag)
  const badArgs = (f: string, raw: string) => {
    const fn = spec.call === 'function' ? [['--function', f] as const] : []
    return hostile(
      edit([['--args', raw], ['--artifact', art.good], ...fn]),
      'BAD_ARGS_JSON',
      '--args',
    )
  }
  const unknownFunction = (f: string) =>
    hostile(edit([['--function', f]], ['--args']), 'UNKNOWN_FUNCTION', 'function')
  const tooFewOperators = (w: number, o: number) =>
    hostile(
      edit([
        ['--watchdogs', String(w)],
        ['--operators', String(o)],
      ]),
      'BAD_OPTION',
      '--watchdogs',
    )

  const listed: Hostile[] = [
    ...UNKNOWN_OPTIONS.filter(isUnknownOption(known)).map(unknown),
    ...POSITIONALS.map(excess),
    ...valued.map((f) => hostile([...c.pairs, [f]], 'MISSING_OPTION', f)),
    ...requiredFlags.map((f) => hostile(edit([], [f]), 'MISSING_OPTION', f)),
    ...spec.opts.flatMap((o) => o.kind.edge.map((v) => badValue(o, v))),
  ]
  const random: Array<fc.Arbitrary<Hostile>> = [
    randomOptions.filter(isUnknownOption(known)).map(unknown),
    randomPositional.map(excess),
  ]
  if (spec.opts.length > 0)
    random.push(
      fc.constantFrom(...spec.opts).chain((o) => o.kind.random.map((v) => badValue(o, v))),
    )
  for (const k of spec.keys ?? []) {
    listed.push(
      ...kinds.key.edge.map((v) => badKey(k, v, false)),
      ...kinds.key.edge.filter((v) => v !== '').map((v) => badKey(k, v, true)),
      hostile(edit([], [k.flag]), 'MISSING_OPTION', k.env, noEnv(k)),
      hostile(edit([], [k.flag]), 'MISSING_OPTION', k.env, { ...noEnv(k), [k.env]: '' }),
    )
    random.push(
      fc
        .tuple(kinds.key.random, fc.boolean())
        .filter(([v]) => v !== '')
        .map(([v, viaEnv]) => badKey(k, v, viaEnv)),
    )
  }
  if (spec.call) {
    const artifacts = spec.call === 'deploy' ? [...art.bad, ...art.badBytecode] : art.bad
    listed.push(
      ...artifacts.map((a) => hostile(edit([['--artifact', a]]), 'BAD_ARTIFACT', 'artifact')),
      ...kinds.path.edge.map((a) => hostile(edit([['--artifact', a]]), 'BAD_OPTION', '--artifact')),
      ...BAD_ARGS[spec.call].map(([f, raw]) => badArgs(f, raw)),
    )
  }
  if (spec.call === 'function') {
    listed.push(...BAD_FUNCTIONS.map(unknownFunction))
    random.push(
      garbage.filter((f) => !FUNCTIONS.includes(f)).map(unknownFunction),
      // No 0x: the first argument of transfer(address,uint256) cannot be an address.
      fc
        .json()
        .filter((j) => !j.includes('0x'))
        .map((raw) => badArgs('transfer', raw)),
    )
  }
  if (spec.cmd === 'devnet') {
    listed.push(tooFewOperators(15, 15), tooFewOperators(2, 1), tooFewOperators(2, 2))
    random.push(
      fc
        .integer({ min: 1, max: 15 })
        .chain((w) => fc.integer({ min: 1, max: w }).map((o) => tooFewOperators(w, o))),
    )
  }
  if (spec.cmd === 'verify-measurement') {
    listed.push(
      hostile(edit([['--rpc', 'http://[::1]:1']], ['--verifier']), 'MISSING_OPTION', '--verifier'),
      hostile(edit([['--verifier', `0x${'2'.repeat(40)}`]], ['--rpc']), 'MISSING_OPTION', '--rpc'),
    )
  }
  return { listed, random: fc.oneof(fc.constantFrom(...listed), ...random) }
}

const NESTED = (n: number) => `${'['.repeat(n)}${']'.repeat(n)}`
/** Bad --args: for deploy (constructor(uint256)) and per function of the test ABI. */
const BAD_ARGS: Record<'deploy' | 'function', Array<readonly [fn: string, raw: string]>> = {
  deploy: [
    ...['', '[', '{', 'abc', "['1']", '{}', '"1"', '1', 'null', '[]', '["1","2"]', '[true]'],
    ...['[null]', '["abc"]', '[1.5]', '["1e3"]', '[[1]]', '[{"a":1}]', '[""]', '["-1"]', '[-1]'],
    ...[`["${U256 + 1n}"]`, '[1e400]', '[9007199254740993]', '["0x"]', '[" 1"]', '["1 "]'],
    ...[NESTED(33), NESTED(1000), NESTED(100_000), `[${NESTED(40)}]`, `["${LONG}"]`],
    ...[`[${'1,'.repeat(50_000)}1]`, JSON.stringify([deep(40)]), `[${JSON.stringify(LONG)}]`],
  ].map((raw) => ['', raw] as const),
  function: [
    ['transfer', '["0x1234","1"]'],
    ['transfer', `["0x${'a'.repeat(40)}","-1"]`],
    ['transfer', '["0x000000000000000000000000000000000000BEEf","1"]'],
    ['transfer', `["0x${'a'.repeat(40)}"]`],
    ['transfer', `["0x${'a'.repeat(40)}",1.5]`],
    ['transfer', `[1,"0x${'a'.repeat(40)}"]`],
    ['setFlags', '[[1,2]]'],
    ['setFlags', '["true"]'],
    ['setFlags', '[true]'],
    ['setFlags', `[${NESTED(20)}]`],
    ['put', '[[1],"0x00"]'],
    ['put', `[[1,256],"0x${'00'.repeat(32)}"]`],
    ['put', '[[1,2],"0x1234"]'],
    ['put', `[[1,2],"${'00'.repeat(32)}"]`],
    ['put', `[[1,2,3],"0x${'00'.repeat(32)}"]`],
    ['configure', '[{"a":"1"}]'],
    ['configure', '[[1]]'],
    ['configure', `[{"a":"-1","b":"0x${'a'.repeat(40)}"}]`],
    ['configure', `[{"a":"18446744073709551616","b":"0x${'a'.repeat(40)}"}]`],
    ['configure', '["x"]'],
    ['setName', '[5]'],
    ['setName', '[null]'],
    ['setName', '[]'],
    ['setName', `[${JSON.stringify(LONG)}, 1]`],
    ['myBalance', '[1]'],
    ['myBalance', '{}'],
    ['myBalance', '['],
    ['myBalance', '[[]]'],
  ],
}

/** Command lines broken before any command is chosen. */
function commandDefects(): { listed: Hostile[]; random: fc.Arbitrary<Hostile> } {
  const status = ['status', '--rpc', 'http://x', '--manager', `0x${'1'.repeat(40)}`]
  const subcommands = ['start', 'exit', 'withdraw', 'help']
  const unknownCommand = (x: string): Hostile[] => [
    { argv: [x], env: {}, code: 'UNKNOWN_COMMAND' },
    { argv: [x, '--rpc', 'http://127.0.0.1:8545'], env: {}, code: 'UNKNOWN_COMMAND' },
    ...(subcommands.includes(x)
      ? []
      : [{ argv: ['operator', x], env: {}, code: 'UNKNOWN_COMMAND' } satisfies Hostile]),
  ]
  const unknownOption = (t: string): Hostile[] => [
    { argv: [t], env: {}, code: 'UNKNOWN_OPTION' },
    { argv: [t, ...status], env: {}, code: 'UNKNOWN_OPTION' },
  ]
  const rootOption = isUnknownOption(new Set(['--help', '--version']))
  const listed: Hostile[] = [
    { argv: [], env: {}, code: 'MISSING_COMMAND' },
    { argv: ['operator'], env: {}, code: 'MISSING_COMMAND' },
    { argv: ['help', 'nope'], env: {}, code: 'UNKNOWN_COMMAND', names: 'nope' },
    { argv: ['help', 'Deploy', 'x'], env: {}, code: 'UNKNOWN_COMMAND', names: 'Deploy' },
    { argv: ['operator', 'help', 'stop'], env: {}, code: 'UNKNOWN_COMMAND', names: 'stop' },
    { argv: ['help', LONG], env: {}, code: 'UNKNOWN_COMMAND' },
    ...['deplot', 'Deploy', 'start', 'exit', '', 'DEVNET', 'verify', '\u0000', LONG].flatMap(
      unknownCommand,
    ),
    ...UNKNOWN_OPTIONS.filter(rootOption).flatMap(unknownOption),
  ]
  const random = fc.oneof(
    fc.constantFrom(...listed),
    randomPositional
      .filter((x) => !COMMANDS.includes(x))
      .chain((x) => fc.constantFrom(...unknownCommand(x))),
    randomOptions.filter(rootOption).chain((t) => fc.constantFrom(...unknownOption(t))),
  )
  return { listed, random }
}

test('CLI: every listed bad value of every command, 2,000 random hostile argv vectors and 400 valid ones', {
  timeout: 120_000,
}, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pose-cli-badinput-'))
  try {
    const art = writeArtifacts(dir)
    const quiet = { writeOut: () => {}, writeErr: () => {} }
    let reached = 0
    const run = async () => {
      reached++
    }
    const rejected = async (h: Hostile) => {
      counts.cli!++
      const where = `${shown(h.argv)} env ${shown(Object.keys(h.env))}`
      try {
        await runCli(h.argv, { run, env: h.env, ...quiet })
        assert.fail(`accepted: ${where}`)
      } catch (e) {
        if (e instanceof assert.AssertionError) throw e
        assert.ok(e instanceof CliError, `untyped ${String(e).slice(0, 200)}: ${where}`)
        assert.ok((CLI_ERROR_CODES as readonly string[]).includes(e.code))
        assert.equal(e.code, h.code, `${e.message}: ${where}`)
        assert.ok(!/[\r\n]/.test(e.message) && e.message.length <= 501, e.message)
        if (h.names) assert.ok(e.message.includes(h.names), `${e.message} names ${h.names}`)
      }
    }

    // The sweep: each listed defect on a valid command line of each command (both spellings).
    for (const spec of SPECS)
      for (const c of fc.sample(validCase(spec, art), { numRuns: 2, seed: 7 }))
        for (const h of defects(c, art).listed) await rejected(h)
    for (const h of commandDefects().listed) await rejected(h)

    // The fuzz: random defects of random valid command lines.
    const hostile = fc.oneof(
      { arbitrary: validCases(art).chain((c) => defects(c, art).random), weight: 12 },
      { arbitrary: commandDefects().random, weight: 1 },
    )
    await fc.assert(fc.asyncProperty(hostile, rejected), { numRuns: 2000, seed: 20_240_501 })
    assert.equal(reached, 0, 'a hostile command line reached the runner')

    // Valid command lines reach the runner with the values they spell.
    await fc.assert(
      fc.asyncProperty(validCases(art), async (c) => {
        let got: CliCommand | undefined
        const argv = argvOf(c)
        await runCli(argv, {
          run: async (x) => {
            got = x
          },
          env: c.env,
          ...quiet,
        })
        assert.deepEqual(got, c.expected, shown(argv))
      }),
      { numRuns: 400, seed: 20_240_502 },
    )
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('CLI as a process: a rejected command line prints error [CODE] and exits with 2; a failed run prints one short error', {
  timeout: 120_000,
}, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pose-cli-spawn-'))
  const root = join(import.meta.dirname, '..', '..')
  const pose = (args: string[], env: Record<string, string> = {}) =>
    execFileAsync(process.execPath, ['--import', 'tsx', join(root, 'src/cli/main.ts'), ...args], {
      cwd: root,
      env: { ...process.env, POSE_KEY: '', POSE_OPERATOR_KEY: '', ...env },
      timeout: 60_000,
    }).then(
      (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
      (e: { code: number; stdout: string; stderr: string }) => e,
    )
  try {
    const { good } = writeArtifacts(dir)
    // Port 1 on loopback: nothing listens there, and nothing may try, as all are rejected first.
    const chain = ['--rpc', 'http://127.0.0.1:1', '--manager', `0x${'1'.repeat(40)}`]
    const key = `0x${'2'.repeat(64)}`
    const cases: Array<[string[], Record<string, string>, CliErrorCode]> = [
      [['status', '--rpc', 'http://127.0.0.1:1', '--manager', '0x1234'], {}, 'BAD_OPTION'],
      [['frobnicate', '--rpc', 'x'], {}, 'UNKNOWN_COMMAND'],
      [
        ['send', ...chain, '--instance', '1', '--artifact', good, '--function', 'transfer'],
        { POSE_KEY: key },
        'BAD_ARGS_JSON',
      ],
      [
        ['deposit', ...chain, '--instance', '1', '--value', '5'],
        { POSE_KEY: `0x${'0'.repeat(64)}` },
        'BAD_KEY',
      ],
    ]
    const [version, ...rejected] = await Promise.all([
      pose(['--version']),
      ...cases.map(([args, env]) => pose(args, env)),
    ])
    assert.equal(version!.code, 0, version!.stderr)
    assert.match(version!.stdout, /^\d+\.\d+\.\d+\n$/)
    rejected.forEach((r, i) => {
      const [args, , code] = cases[i]!
      counts.cli!++
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`)
      assert.ok(r.stderr.startsWith(`error [${code}]: `), r.stderr)
      assert.doesNotMatch(r.stderr, /^\s+at /m)
      assert.ok(r.stderr.trim().split('\n').length <= 2, r.stderr)
      assert.equal(r.stdout, '')
    })
    // A valid command that fails while running (nothing listens on port 1): viem's long
    // message (request arguments, docs, version) is cut to its short message and details.
    const failed = await pose(['status', ...chain])
    assert.equal(failed.code, 1, failed.stderr)
    assert.match(failed.stderr, /^error: [^\n]+\n(details: [^\n]+\n)?$/)
    assert.doesNotMatch(failed.stderr, /Version: viem|Request body/)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test("CLI: an operator's text (endpoint, answers) is printed on one line with its control characters escaped", () => {
  const forged = 'http://op\u001b[2J\r\nslot 9 executor enclave 0xforged\u0007\u2028'
  const shown = printable(forged)
  assert.doesNotMatch(shown, /[\p{Cc}\u2028\u2029]/u)
  assert.ok(shown.includes('\\u001b[2J'), shown)
  assert.equal(printable('http://127.0.0.1:8545'), 'http://127.0.0.1:8545')
})
