/**
 * The operator node's start-up check of the manager's Δ against its confirmation window
 * (src/operator/node.ts): a challenge reaches a member's enclave only once its block is
 * `confirmations` deep, and the answer must still be sent and mined within Δ. A node whose
 * members could not answer in time refuses to start (`UnsafeDeltaError`) unless told
 * `allowShortDelta`, which it logs loudly.
 */
import assert from 'node:assert/strict'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { test } from 'node:test'
import pino from 'pino'
import { hexToBytes } from 'viem'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { createChainClients } from '../../src/chain/clients.ts'
import { readOperator } from '../../src/chain/manager.ts'
import { type CliCommand, runCli } from '../../src/cli/program.ts'
import { anvilRpc, startAnvil } from '../../src/devnet/anvil.ts'
import { DEFAULT_MANAGER_PARAMS, deployManager } from '../../src/devnet/deploy.ts'
import {
  ANSWER_MARGIN_BLOCKS,
  ANSWER_MARGIN_S,
  blockIntervalOf,
  checkDelta,
  DELTA_CHECK_SAMPLE_BLOCKS,
  defaultConfirmations,
  OperatorNode,
  UnsafeDeltaError,
} from '../../src/operator/node.ts'

/** The chain feed's default poll interval (200 ms), as the node passes it. */
const FEED = 0.2

test('blockIntervalOf: the shortest mean over the stretches between sampled blocks, a second long each, never zero', () => {
  const at = (...p: Array<[number, number]>) =>
    p.map(([block, timestamp]) => ({ block, timestamp }))
  const cases: Array<[string, Array<{ block: number; timestamp: number }>, number]> = [
    [
      'Ethereum: 12-s blocks, head and 128 and 256 back',
      at([0, 0], [128, 1536], [256, 3072]),
      1537 / 128,
    ],
    ['the same in any order', at([256, 3072], [0, 0], [128, 1536]), 1537 / 128],
    ['2-s blocks', at([0, 0], [128, 256], [256, 512]), 257 / 128],
    ['Arbitrum-like 0.25-s blocks', at([0, 0], [128, 32], [256, 64]), 33 / 128],
    ['anvil automine: blocks sharing one timestamp', at([0, 100], [2, 100], [5, 100]), 1 / 3],
    ['one block on top of genesis in the same second', at([0, 100], [1, 100]), 1],
    ['only the genesis block', at([0, 100]), 1],
    ['one block given twice', at([5, 10], [5, 10]), 1],
    ['a dev clock moved on 600 s in the recent half', at([0, 0], [50, 50], [100, 700]), 51 / 50],
    [
      'a 2-s chain whose sequencer stalled for an hour',
      at([0, 0], [128, 256], [256, 4112]),
      257 / 128,
    ],
    [
      'a chain slower in the recent half: the faster half counts',
      at([0, 0], [100, 200], [200, 800]),
      201 / 100,
    ],
    ['timestamps going backwards (a broken endpoint)', at([0, 10], [10, 5]), 0.1],
  ]
  for (const [name, points, expected] of cases) {
    const got = blockIntervalOf(points)
    assert.ok(got > 0, `${name}: positive`)
    assert.ok(Math.abs(got - expected) < 1e-9, `${name}: ${got} ≠ ${expected}`)
  }
})

test('checkDelta: Δ against the confirmation window (table)', () => {
  type Row = {
    name: string
    deltaS: number
    confirmations: number
    blockIntervalS: number
    safe: boolean
    maxSafeConfirmations: number
    minSafeDeltaS: number
  }
  const rows: Row[] = [
    // The reviewer's case: the off-dev-chain default on Ethereum (64 × 12 s = 12.8 min).
    {
      name: 'Ethereum, 64 confirmations, Δ 10 min',
      deltaS: 600,
      confirmations: 64,
      blockIntervalS: 12,
      safe: false,
      maxSafeConfirmations: 47, // (600 − 30) / 12: the cushion is capped at 30 s
      minSafeDeltaS: 798, // 768 + 30
    },
    {
      name: 'Ethereum, 64 confirmations, Δ 1 h',
      deltaS: 3600,
      confirmations: 64,
      blockIntervalS: 12,
      safe: true,
      maxSafeConfirmations: 297, // (3600 − 30) / 12
      minSafeDeltaS: 798,
    },
    {
      name: '2-s blocks, 64 confirmations, Δ 2 min',
      deltaS: 120,
      confirmations: 64,
      blockIntervalS: 2,
      safe: false,
      maxSafeConfirmations: 45, // (120 − 30) / 2
      minSafeDeltaS: 158, // 128 + 30
    },
    {
      name: '2-s blocks, 64 confirmations, Δ 3 min: 52 s left is ample (a third of Δ would refuse it)',
      deltaS: 180,
      confirmations: 64,
      blockIntervalS: 2,
      safe: true,
      maxSafeConfirmations: 75, // (180 − 30) / 2
      minSafeDeltaS: 158,
    },
    {
      name: 'the devnet: Δ 60 s, 0 confirmations, 1-s blocks',
      deltaS: Number(DEFAULT_MANAGER_PARAMS.delta),
      confirmations: 0,
      blockIntervalS: 1,
      safe: true,
      maxSafeConfirmations: 40,
      minSafeDeltaS: 5, // the margin: 2 × 1 + 2 + 0.2
    },
    {
      name: 'the simulator: Δ 60 s, 2 confirmations, 1-s blocks lengthened by clock moves',
      deltaS: 60,
      confirmations: 2,
      blockIntervalS: 1.31,
      safe: true,
      maxSafeConfirmations: 30, // 40 / 1.31
      minSafeDeltaS: 8, // 2.62 + 4.82
    },
    {
      name: 'the benchmark: Δ 5 s, 0 confirmations, 1-s blocks',
      deltaS: 5,
      confirmations: 0,
      blockIntervalS: 1,
      safe: true,
      maxSafeConfirmations: 0,
      minSafeDeltaS: 5,
    },
    {
      name: 'Δ shorter than the answer margin: no confirmations are safe',
      deltaS: 3,
      confirmations: 0,
      blockIntervalS: 1,
      safe: false,
      maxSafeConfirmations: -1,
      minSafeDeltaS: 5,
    },
    {
      name: 'the boundary: exactly a third of Δ left',
      deltaS: 60,
      confirmations: 40,
      blockIntervalS: 1,
      safe: true,
      maxSafeConfirmations: 40,
      minSafeDeltaS: 60,
    },
    {
      name: 'one block past the boundary',
      deltaS: 60,
      confirmations: 41,
      blockIntervalS: 1,
      safe: false,
      maxSafeConfirmations: 40,
      minSafeDeltaS: 62, // 41 × 3/2 = 61.5
    },
    {
      name: 'the margin, not the third, binds: Δ 9 s, 2 confirmations at 1 s',
      deltaS: 9,
      confirmations: 2,
      blockIntervalS: 1,
      safe: true, // 7 s left; 4.2 s needed (the margin), more than the third (3 s)
      maxSafeConfirmations: 4, // (9 − 4.2) / 1
      minSafeDeltaS: 7, // 2 + 4.2
    },
    {
      name: 'the margin binds and is not met: Δ 6 s, 2 confirmations at 1 s',
      deltaS: 6,
      confirmations: 2,
      blockIntervalS: 1,
      safe: false, // 4 s left, 4.2 s needed
      maxSafeConfirmations: 1,
      minSafeDeltaS: 7,
    },
  ]
  for (const r of rows) {
    const c = checkDelta({
      deltaS: r.deltaS,
      confirmations: r.confirmations,
      blockIntervalS: r.blockIntervalS,
      feedLagS: FEED,
    })
    assert.equal(c.safe, r.safe, `${r.name}: safe`)
    assert.equal(c.maxSafeConfirmations, r.maxSafeConfirmations, `${r.name}: max confirmations`)
    assert.equal(c.minSafeDeltaS, r.minSafeDeltaS, `${r.name}: min Δ`)
    assert.equal(c.reachS, r.confirmations * r.blockIntervalS, `${r.name}: reach`)
    assert.equal(
      c.marginS,
      ANSWER_MARGIN_BLOCKS * r.blockIntervalS + ANSWER_MARGIN_S + FEED,
      `${r.name}: margin`,
    )
  }
})

test('checkDelta: the largest safe confirmations and the shortest safe Δ it names are the edges', () => {
  for (const blockIntervalS of [0.25, 1, 2, 12, 12.0039]) {
    for (const deltaS of [1, 5, 15, 60, 120, 600, 3600, 86_400]) {
      const at = (confirmations: number, d = deltaS) =>
        checkDelta({ deltaS: d, confirmations, blockIntervalS, feedLagS: FEED })
      const max = at(0).maxSafeConfirmations
      if (max >= 0) assert.ok(at(max).safe, `Δ ${deltaS}, ${blockIntervalS} s: ${max} is safe`)
      assert.ok(!at(max + 1).safe, `Δ ${deltaS}, ${blockIntervalS} s: ${max + 1} is not`)
      for (const confirmations of [0, 1, 64, 1000]) {
        const min = at(confirmations).minSafeDeltaS
        assert.ok(at(confirmations, min).safe, `${confirmations} at Δ ${min} is safe`)
        assert.ok(!at(confirmations, min - 1).safe, `${confirmations} at Δ ${min - 1} is not`)
      }
    }
  }
  assert.throws(() => checkDelta({ deltaS: 60, confirmations: 1, blockIntervalS: 0 }), RangeError)
})

test('UnsafeDeltaError names Δ, the confirmations, the block interval and the largest safe confirmations', () => {
  const e = new UnsafeDeltaError(
    checkDelta({ deltaS: 600, confirmations: 64, blockIntervalS: 12, feedLagS: FEED }),
  )
  assert.ok(e instanceof Error)
  assert.equal(e.name, 'UnsafeDeltaError')
  assert.equal(e.code, 'UNSAFE_DELTA')
  assert.match(e.shortMessage, /Δ of 600 s/)
  assert.match(e.shortMessage, /64 confirmations/)
  assert.match(e.shortMessage, /block interval of 12 s/)
  assert.match(e.shortMessage, /768 s after its block, 168 s after its deadline/)
  assert.match(e.details, /At most 47 confirmations are safe/)
  assert.match(e.details, /Δ is at least 798 s/)
  assert.match(e.details, /--allow-short-delta/)
  assert.ok(
    !/\n/.test(e.shortMessage) && !/\n/.test(e.details),
    'one line each (the CLI prints them)',
  )
  const none = new UnsafeDeltaError(checkDelta({ deltaS: 3, confirmations: 0, blockIntervalS: 1 }))
  assert.match(none.details, /No number of confirmations is safe/)
  assert.match(none.shortMessage, /which leaves 3 s to answer, and an answer needs 4 s/)
})

test('defaultConfirmations: 0 on the dev chain, 64 elsewhere', () => {
  assert.equal(defaultConfirmations(31337), 0)
  assert.equal(defaultConfirmations(1), 64)
})

test('pose operator start --allow-short-delta reaches the node as allowShortDelta; without it, nothing', async () => {
  const parsed = async (extra: string[]) => {
    let got: CliCommand | undefined
    await runCli(
      [
        'operator',
        'start',
        '--rpc',
        'http://127.0.0.1:8545',
        '--manager',
        `0x${'12'.repeat(20)}`,
        '--data-dir',
        '/tmp/x',
        ...extra,
      ],
      {
        env: {
          POSE_OPERATOR_KEY: `0x${'11'.repeat(32)}`,
          POSE_DEV_AUTHORITY_KEY: `0x${'22'.repeat(32)}`,
        },
        run: async (c) => {
          got = c
        },
      },
    )
    assert.ok(got?.cmd === 'operator-start')
    return got
  }
  assert.equal((await parsed(['--allow-short-delta'])).allowShortDelta, true)
  assert.ok(!('allowShortDelta' in (await parsed([]))))
})

/** A line the node logged. */
type LogLine = { level: number; msg: string; [field: string]: unknown }

test('a node whose manager Δ is too short for its confirmations refuses to start, before its enclave or registration; --allow-short-delta starts it with a warning', {
  timeout: 60_000,
}, async () => {
  // Not the dev chain's id: the node takes the production default of 64 confirmations.
  const anvil = await startAnvil({ chainId: 4242 })
  const dirs: string[] = []
  try {
    const deployerKey = generatePrivateKey()
    const fund = (a: string) =>
      anvilRpc(anvil.url, 'anvil_setBalance', [a, '0xffffffffffffffffffffff'])
    await fund(privateKeyToAccount(deployerKey).address)
    const { manager } = await deployManager({
      rpcUrl: anvil.url,
      deployerKey,
      devAuthorityKey: hexToBytes(generatePrivateKey()),
      measurements: [hexToBytes(`0x${'ab'.repeat(32)}`)],
      params: { ...DEFAULT_MANAGER_PARAMS, delta: 600n },
    })
    // Ethereum's pace: more than a sample of 12-s blocks.
    await anvilRpc(anvil.url, 'anvil_mine', [`0x${DELTA_CHECK_SAMPLE_BLOCKS.toString(16)}`, '0xc'])
    const operatorKey = generatePrivateKey()
    await fund(privateKeyToAccount(operatorKey).address)

    const start = async (more: { confirmations?: number; allowShortDelta?: boolean }) => {
      const dir = mkdtempSync(join(tmpdir(), 'pose-delta-'))
      dirs.push(dir)
      const lines: LogLine[] = []
      const logger = pino(
        new Writable({
          write(chunk, _enc, done) {
            for (const l of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(l))
            done()
          },
        }),
      )
      const node = new OperatorNode({
        rpcUrl: anvil.url,
        manager,
        privateKey: operatorKey,
        devAuthorityKey: generatePrivateKey(),
        dataDir: dir,
        // No bundle here: a start that passes the check fails at the enclave, which is after it.
        bundlePath: join(dir, 'no-such-bundle.mjs'),
        logger,
        ...more,
      })
      let error: unknown
      const t0 = performance.now()
      try {
        await node.start()
      } catch (e) {
        error = e
      } finally {
        await node.stop()
      }
      return { error, lines, dir, ms: performance.now() - t0 }
    }

    // The default (64 × 12 s = 12.8 min) against Δ = 10 min: refused, with what would do.
    const refused = await start({})
    assert.ok(refused.error instanceof UnsafeDeltaError, `refused: ${String(refused.error)}`)
    const c = refused.error.check
    assert.equal(c.deltaS, 600)
    assert.equal(c.confirmations, 64)
    assert.ok(Math.abs(c.blockIntervalS - 12) < 0.01, `interval ${c.blockIntervalS}`)
    assert.equal(c.maxSafeConfirmations, 47)
    assert.match(refused.error.shortMessage, /Δ of 600 s is too short for 64 confirmations/)
    // Nothing started and nothing sent: no enclave, no registration.
    assert.ok(!existsSync(join(refused.dir, 'enclave.pid')))
    const { publicClient } = await createChainClients({ rpcUrl: anvil.url })
    const registered = await readOperator(
      publicClient,
      manager,
      privateKeyToAccount(operatorKey).address,
    )
    assert.equal(registered.registered, false)
    assert.ok(refused.ms < 5_000, `the check took ${refused.ms} ms`)

    // The largest safe confirmations pass the check (the start then fails at the bundle).
    const safe = await start({ confirmations: 47 })
    assert.ok(!(safe.error instanceof UnsafeDeltaError), String(safe.error))
    assert.match(String(safe.error), /ENOENT/)
    assert.ok(safe.lines.some((l) => /Challenge window checked/.test(l.msg)))

    // The override: a loud warning naming the numbers, and the start goes on.
    const forced = await start({ allowShortDelta: true })
    assert.ok(!(forced.error instanceof UnsafeDeltaError), String(forced.error))
    assert.match(String(forced.error), /ENOENT/)
    const warning = forced.lines.find((l) => l.code === 'UNSAFE_DELTA')
    assert.ok(warning, 'the override is logged')
    assert.equal(warning.level, 40)
    assert.match(warning.msg, /UNSAFE, STARTED ANYWAY/)
    assert.equal(warning.deltaS, 600)
    assert.equal(warning.confirmations, 64)
    assert.equal(warning.maxSafeConfirmations, 47)
  } finally {
    for (const d of dirs) rmSync(d, { recursive: true, force: true })
    await anvil.stop()
  }
})
