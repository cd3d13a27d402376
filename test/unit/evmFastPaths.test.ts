/**
 * The world's faster paths through `@ethereumjs/evm` (src/enclave/world/evmFastPaths.ts) against
 * the package as shipped (`fastPaths: false`): the same programs, run in both, give the same
 * status, error, return data, logs, gas, created address, write set and state digest.
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { describe, test } from 'node:test'
import { EVM } from '@ethereumjs/evm'
import fc from 'fast-check'
import { encodeDeployData, encodeFunctionData, numberToHex } from 'viem'
import { tokenInitCode, transferCalldata } from '../../bench/lib/world.ts'
import { prizePoolAbi, prizePoolBytecode } from '../../examples/contracts.generated.ts'
import { FAST_OPCODES, interpreterClassOf } from '../../src/enclave/world/evmFastPaths.ts'
import { type ExecResult, World } from '../../src/enclave/world/world.ts'
import {
  bytesToHex,
  encodeWriteSet,
  hexToBytes,
  INSTANCE_ADDRESS,
  uintToWord,
} from '../../src/protocol/index.ts'

const KEY = new Uint8Array(32).fill(9)
const EMPTY = new Uint8Array(0)
const block = { number: 7n, timestamp: 1_700_000_000n, prevRandao: new Uint8Array(32).fill(3) }
const users = [1, 2, 3].map((i) => new Uint8Array(20).fill(i))
const PROGRAM = new Uint8Array(20).fill(0xa1)
const CALLEE = new Uint8Array(20).fill(0xb2)

const worlds = async () => {
  const make = (fastPaths: boolean) =>
    World.create({ chainId: 31337n, maxGasPerTx: 30_000_000n, digestKey: KEY, fastPaths })
  return { fast: await make(true), stock: await make(false) }
}

// ------------------------------------------------------------------ a small assembler

const op = {
  STOP: 0x00,
  ADD: 0x01,
  ADDRESS: 0x30,
  CALLER: 0x33,
  CALLDATALOAD: 0x35,
  POP: 0x50,
  MLOAD: 0x51,
  MSTORE: 0x52,
  MSTORE8: 0x53,
  SLOAD: 0x54,
  SSTORE: 0x55,
  JUMPI: 0x57,
  JUMPDEST: 0x5b,
  TLOAD: 0x5c,
  TSTORE: 0x5d,
  MCOPY: 0x5e,
  PUSH0: 0x5f,
  KECCAK256: 0x20,
  LOG0: 0xa0,
  CREATE: 0xf0,
  CALL: 0xf1,
  RETURN: 0xf3,
  REVERT: 0xfd,
  INVALID: 0xfe,
  SELFDESTRUCT: 0xff,
  GAS: 0x5a,
  AND: 0x16,
} as const

/** PUSH0 or the shortest PUSHn of `v`. */
function push(v: bigint): number[] {
  if (v === 0n) return [op.PUSH0]
  const bytes: number[] = []
  for (let x = v; x > 0n; x >>= 8n) bytes.unshift(Number(x & 0xffn))
  return [0x5f + bytes.length, ...bytes]
}
const pushAddress = (a: Uint8Array) => [0x73, ...a]

/**
 * CALL `target` (its push) with `value` and memory [0, inLength) as calldata, 32 bytes of output
 * at `out`; the success flag goes to slot `s`.
 */
const callAndKeep = (target: number[], value: bigint, inLength: bigint, out: bigint, s: bigint) => [
  ...push(32n), // out length
  ...push(out),
  ...push(inLength),
  ...push(0n), // in offset
  ...push(value),
  ...target,
  op.GAS,
  op.CALL,
  ...push(s),
  op.SSTORE,
]

/** A value of any byte length, small values and words with leading zero bytes included. */
const word = fc.oneof(
  fc.constantFrom(0n, 1n, 0x80n, 0xffn, (1n << 256n) - 1n, 1n << 255n),
  fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
  fc
    .tuple(fc.integer({ min: 1, max: 32 }), fc.bigInt({ min: 0n, max: (1n << 256n) - 1n }))
    .map(([bytes, v]) => v & ((1n << BigInt(8 * bytes)) - 1n)),
)
const offset = fc.integer({ min: 0, max: 320 }).map(BigInt)
const slot = fc.oneof(fc.integer({ min: 0, max: 5 }).map(BigInt), word)
const length = fc.integer({ min: 0, max: 96 }).map(BigInt)

/** One step of a program; each leaves the stack as it found it. */
const step: fc.Arbitrary<number[]> = fc.oneof(
  // Arithmetic and bit operations (static gas, run inline), the result kept in memory.
  fc
    .tuple(
      word,
      word,
      fc.constantFrom(0x01, 0x02, 0x03, 0x04, 0x06, 0x10, 0x18, 0x1b, 0x1d),
      offset,
    )
    .map(([a, b, o, at]) => [...push(a), ...push(b), o, ...push(at), op.MSTORE]),
  fc.tuple(offset, word).map(([o, v]) => [...push(v), ...push(o), op.MSTORE]),
  fc.tuple(offset, word).map(([o, v]) => [...push(v), ...push(o), op.MSTORE8]),
  fc.tuple(slot, word).map(([s, v]) => [...push(v), ...push(s), op.SSTORE]),
  fc.tuple(slot, offset).map(([s, o]) => [...push(s), op.SLOAD, ...push(o), op.MSTORE]),
  fc.tuple(slot, word).map(([s, v]) => [...push(v), ...push(s), op.TSTORE]),
  fc.tuple(slot, offset).map(([s, o]) => [...push(s), op.TLOAD, ...push(o), op.MSTORE]),
  fc.tuple(offset, offset).map(([o, t]) => [...push(t), op.MLOAD, ...push(o), op.MSTORE]),
  // Call data from anywhere in it, across its end and past it (calls send up to 40 bytes).
  fc
    .tuple(fc.oneof(fc.integer({ min: 0, max: 48 }).map(BigInt), word), offset)
    .map(([p, o]) => [...push(p), op.CALLDATALOAD, ...push(o), op.MSTORE]),
  fc
    .tuple(fc.constantFrom(op.CALLER, op.ADDRESS), slot)
    .map(([o, s]) => [o, ...push(s), op.SSTORE]),
  fc
    .tuple(offset, offset, length)
    .map(([d, s, n]) => [...push(n), ...push(s), ...push(d), op.MCOPY]),
  fc
    .tuple(offset, length, slot)
    .map(([o, n, s]) => [...push(n), ...push(o), op.KECCAK256, ...push(s), op.SSTORE]),
  fc
    .tuple(fc.integer({ min: 0, max: 4 }), offset, length, fc.array(word, { maxLength: 4 }))
    .map(([k, o, n, topics]) => [
      ...topics.slice(0, k).flatMap(push),
      ...Array(Math.max(0, k - topics.length)).fill(op.PUSH0),
      ...push(n),
      ...push(o),
      op.LOG0 + k,
    ]),
  // CALL the callee with a word of calldata (odd words make it revert) and keep the success flag.
  fc
    .tuple(fc.oneof(word, fc.constant(0xdeadn)), fc.constantFrom(0n, 1n, 1000n), offset, slot)
    .map(([w, value, out, s]) => [
      ...push(w),
      ...push(0n),
      op.MSTORE,
      ...callAndKeep(pushAddress(CALLEE), value, 32n, out, s),
    ]),
  // CALL a precompile (ecrecover, sha256, identity, blake2f, which fails on this input) or an
  // account with no code, with or without value; keep the success flag and the output.
  fc
    .tuple(fc.constantFrom(1n, 2n, 4n, 9n, 0x77n), fc.constantFrom(0n, 1n), offset, slot)
    .map(([to, value, out, s]) => callAndKeep(push(to), value, 64n, out, s)),
  // CREATE a contract (runtime code STOP, or CALLER SELFDESTRUCT), CALL it, keep the call's
  // success flag and the address.
  fc.tuple(fc.constantFrom(0n, 1n), fc.boolean(), slot, slot).map(([value, destructs, s, t]) => [
    // PUSH2 runtime PUSH1 0 MSTORE PUSH1 2 PUSH1 30 RETURN: 11 bytes at offsets 21..31.
    ...push(0x61_0000_6000_52_6002_601e_f3n | ((destructs ? 0x33ffn : 0x0000n) << 64n)),
    ...push(0n),
    op.MSTORE,
    ...push(11n),
    ...push(21n),
    ...push(value),
    op.CREATE, // [addr]
    ...[op.PUSH0, op.PUSH0, op.PUSH0, op.PUSH0, op.PUSH0],
    0x85, // DUP6: addr
    op.GAS,
    op.CALL, // [addr, ok]
    ...push(s),
    op.SSTORE,
    ...push(t),
    op.SSTORE,
  ]),
)

/** How a program ends. */
const ending = fc.oneof(
  fc.tuple(offset, length).map(([o, n]) => [...push(n), ...push(o), op.RETURN]),
  fc.tuple(offset, length).map(([o, n]) => [...push(n), ...push(o), op.REVERT]),
  fc.constant([op.STOP]),
  fc.constant([op.INVALID]),
  fc.constant([]), // runs off the end of the code
  fc.constant([op.ADD]), // stack underflow in an opcode run inline
  fc.constant([...push(2n), 0x56]), // JUMP to a byte that is no JUMPDEST
  fc.constant([...push(4n), 0x56, 0x00, op.JUMPDEST]), // a JUMP over a STOP: JUMPDEST ends it
)

/**
 * The callee: stores its calldata word at slot 1 and logs it; reverts with it when the word is
 * odd, returns it otherwise; a word of 0xdead selfdestructs to the caller.
 */
const callee = Uint8Array.from([
  ...push(0n),
  op.CALLDATALOAD, // [w]
  0x80, // DUP1
  ...push(1n),
  op.SSTORE, // [w]
  0x80,
  ...push(0n),
  op.MSTORE, // [w]
  0x80,
  ...push(0xdeadn),
  0x14, // EQ
  ...push(0x30n), // jump to the selfdestruct
  op.JUMPI, // [w]
  ...push(0x77n),
  ...push(32n),
  ...push(0n),
  0xa1, // LOG1
  ...push(1n),
  op.AND, // [w & 1]
  ...push(0x2an),
  op.JUMPI,
  ...push(32n),
  ...push(0n),
  op.RETURN,
])
// Fix up the jump targets: find where the REVERT and SELFDESTRUCT tails land.
const calleeCode = (() => {
  const body = [...callee]
  const revertAt = body.length
  body.push(op.JUMPDEST, ...push(32n), ...push(0n), op.REVERT)
  const destructAt = body.length
  body.push(op.JUMPDEST, 0x33, op.SELFDESTRUCT) // CALLER SELFDESTRUCT
  // The two PUSH1 placeholders (0x30, 0x2a) are the only PUSH1s with those values.
  const patch = (placeholder: number, target: number) => {
    const i = body.findIndex((b, j) => b === 0x60 && body[j + 1] === placeholder)
    assert.ok(i >= 0 && target < 256)
    body[i + 1] = target
  }
  patch(0x30, destructAt)
  patch(0x2a, revertAt)
  return Uint8Array.from(body)
})()

// ------------------------------------------------------------------ comparing outcomes

/** The package's interpreter class (not exported by it), from a frame `world`'s EVM runs. */
async function packageInterpreter(world: World) {
  const { evm } = world as unknown as {
    evm: {
      runCode(o: {
        code: Uint8Array
        gasLimit: bigint
      }): Promise<Parameters<typeof interpreterClassOf>[0]>
    }
  }
  const Interpreter = interpreterClassOf(
    await evm.runCode({ code: Uint8Array.from([op.STOP]), gasLimit: 1000n }),
  )
  assert.ok(Interpreter, 'the package interpreter behind a frame')
  return Interpreter
}

const show = (r: ExecResult) => ({
  status: r.status,
  error: r.error,
  returnData: bytesToHex(r.returnData),
  gasUsed: r.gasUsed,
  createdAddress: r.createdAddress && bytesToHex(r.createdAddress),
  logs: r.logs.map((l) => ({
    address: bytesToHex(l.address),
    topics: l.topics.map(bytesToHex),
    data: bytesToHex(l.data),
  })),
})

async function same(
  w: { fast: World; stock: World },
  run: (world: World) => Promise<ExecResult>,
  what: string,
) {
  const a = await run(w.fast)
  const b = await run(w.stock)
  assert.deepEqual(show(a), show(b), what)
  assert.deepEqual(
    bytesToHex(encodeWriteSet(w.fast.takeWriteSet())),
    bytesToHex(encodeWriteSet(w.stock.takeWriteSet())),
    `${what}: write set`,
  )
  assert.deepEqual(bytesToHex(w.fast.digest()), bytesToHex(w.stock.digest()), `${what}: digest`)
  return a
}

describe('EVM fast paths', () => {
  test('property: generated programs run the same with and without the fast paths', async () => {
    let statuses = new Set<string>()
    await fc.assert(
      fc.asyncProperty(
        fc.array(step, { minLength: 1, maxLength: 24 }),
        ending,
        fc.array(
          fc.record({
            // 22,000: out of gas a few opcodes in, mostly in opcodes run inline.
            gas: fc.constantFrom(22_000n, 30_000n, 120_000n, 1_000_000n),
            // More than the sender holds: the value cannot move and the call ends at once.
            value: fc.constantFrom(0n, 5n, 2_000_000n),
            data: fc.uint8Array({ maxLength: 40 }),
          }),
          { minLength: 1, maxLength: 3 },
        ),
        async (steps, end, calls) => {
          const w = await worlds()
          const code = Uint8Array.from([...steps.flat(), ...end])
          for (const world of [w.fast, w.stock]) {
            world.installCode(PROGRAM, code)
            world.installCode(CALLEE, calleeCode)
            world.credit(users[0]!, 1_000_000n)
            world.credit(PROGRAM, 50_000n)
            world.takeWriteSet()
          }
          for (const [i, c] of calls.entries()) {
            const r = await same(
              w,
              (world) =>
                world.call({
                  from: users[0]!,
                  to: PROGRAM,
                  value: c.value,
                  data: c.data,
                  gasLimit: c.gas,
                  block,
                }),
              `call ${i} of ${bytesToHex(code)}`,
            )
            statuses.add(r.status)
          }
        },
      ),
      { numRuns: 150, seed: 0x5053 },
    )
    // The generator reaches every kind of outcome.
    assert.deepEqual([...statuses].sort(), ['error', 'revert', 'success'])
    statuses = new Set()
  })

  test('SSTORE and SLOAD charge and refund the same in every net-metering case', async () => {
    const w = await worlds()
    for (const world of [w.fast, w.stock]) world.credit(users[0]!, 10n ** 18n)
    // A world's outcome nets the refund (at most a fifth of the gas used), so the changes of the
    // refund counter are recorded from the package's interpreter, which both worlds run.
    const Interpreter = await packageInterpreter(w.stock)
    type Refund = (this: unknown, amount: bigint, context?: string) => void
    const proto = Interpreter.prototype as unknown as Record<'refundGas' | 'subRefund', Refund>
    const shipped = { refundGas: proto.refundGas, subRefund: proto.subRefund }
    let refunds: string[] = []
    for (const name of ['refundGas', 'subRefund'] as const)
      proto[name] = function (amount, context) {
        refunds.push(`${name} ${amount}`)
        return shipped[name].call(this, amount, context)
      }
    const run = async (code: Uint8Array, original: bigint, gasLimit: bigint, what: string) => {
      for (const world of [w.fast, w.stock]) {
        world.installCode(PROGRAM, code)
        world.setStorageWord(PROGRAM, 0n, original)
        world.takeWriteSet()
      }
      const seen: string[][] = []
      const r = await same(
        w,
        async (world) => {
          refunds = []
          const out = await world.call({
            from: users[0]!,
            to: PROGRAM,
            value: 0n,
            data: EMPTY,
            gasLimit,
            block,
          })
          seen.push(refunds)
          return out
        },
        what,
      )
      assert.deepEqual(seen[0], seen[1], `${what}: refunds`)
      return { status: r.status, refunds: seen[0]! }
    }
    const writes = (values: bigint[]) => values.flatMap((v) => [...push(v), ...push(0n), op.SSTORE])
    try {
      // EIP-2200's states with EIP-3529's refunds, as their test vectors walk them: two or three
      // writes to one slot, values 0 to 3, an original value of 0 or 1, then an SLOAD of it.
      let refunded = 0
      for (const original of [0n, 1n])
        for (let n = 2; n <= 3; n++)
          for (let k = 0; k < 4 ** n; k++) {
            const values = Array.from({ length: n }, (_, i) => BigInt(Math.floor(k / 4 ** i) % 4))
            const code = Uint8Array.from([
              ...writes(values),
              ...push(0n),
              op.SLOAD,
              ...push(1n),
              op.SSTORE,
            ])
            const r = await run(code, original, 200_000n, `original ${original}, writes ${values}`)
            assert.equal(r.status, 'success')
            if (r.refunds.length > 0) refunded++
          }
      assert.ok(refunded > 40, `${refunded} cases with refunds`)
      // The sentry: an SSTORE with 2,300 gas or less left fails even where it would cost 100.
      // PUSH1 1 PUSH0 SSTORE (cold, 0 → 1: 22,100) PUSH1 2 PUSH0 SSTORE (warm, dirty: 100).
      const sentry = Uint8Array.from(writes([1n, 2n]))
      const before = 21_000n + 3n + 2n + 22_100n + 3n + 2n // the intrinsic gas first
      const statuses = []
      for (const left of [2_299n, 2_300n, 2_301n])
        statuses.push((await run(sentry, 0n, before + left, `sentry, ${left} left`)).status)
      assert.deepEqual(statuses, ['error', 'error', 'success'])
    } finally {
      Object.assign(proto, shipped)
    }
    // SSTORE in a static call fails; SLOAD there runs.
    const viaStatic = Uint8Array.from([
      ...[32n, 0n, 0n, 0n].flatMap(push), // out length, out offset, in length, in offset
      ...pushAddress(CALLEE),
      op.GAS,
      0xfa, // STATICCALL
      ...push(2n),
      op.SSTORE,
    ])
    for (const [name, callee] of [
      ['SSTORE', Uint8Array.from([...push(5n), ...push(0n), op.SSTORE])],
      ['SLOAD', Uint8Array.from([...push(0n), op.SLOAD, ...push(0n), op.MSTORE])],
    ] as const) {
      for (const world of [w.fast, w.stock]) world.installCode(CALLEE, callee)
      const r = await run(viaStatic, 0n, 200_000n, `${name} in a static call`)
      assert.equal(r.status, 'success')
      assert.equal(w.fast.getStorageWord(PROGRAM, 2n), name === 'SLOAD' ? 1n : 0n, name)
    }
  })

  test('the example contracts run the same: token transfers, a prize pool paying out', async () => {
    const w = await worlds()
    await same(
      w,
      (world) =>
        world.deploy({
          from: users[0]!,
          initCode: tokenInitCode(10n ** 18n),
          value: 0n,
          gasLimit: 5_000_000n,
          block,
          address: INSTANCE_ADDRESS,
        }),
      'token deployment',
    )
    for (let i = 0; i < 12; i++) {
      const from = users[i % 3]!
      const to = users[(i + 1) % 3]!
      await same(
        w,
        (world) =>
          world.call({
            from,
            to: INSTANCE_ADDRESS,
            value: 0n,
            data: transferCalldata(to, BigInt(1 + i * 1000)),
            gasLimit: 200_000n,
            block,
          }),
        `transfer ${i}`,
      )
    }

    const pool = await worlds()
    const POOL = new Uint8Array(20).fill(0xc3)
    for (const world of [pool.fast, pool.stock]) for (const u of users) world.credit(u, 10n ** 18n)
    await same(
      pool,
      (world) =>
        world.deploy({
          from: users[0]!,
          initCode: hexToBytes(
            encodeDeployData({ abi: prizePoolAbi, bytecode: prizePoolBytecode, args: [1000n, 3n] }),
          ),
          value: 0n,
          gasLimit: 5_000_000n,
          block,
          address: POOL,
        }),
      'prize pool deployment',
    )
    for (const [i, u] of users.entries()) {
      await same(
        pool,
        (world) =>
          world.call({
            from: u,
            to: POOL,
            value: 1000n,
            data: hexToBytes(encodeFunctionData({ abi: prizePoolAbi, functionName: 'enter' })),
            gasLimit: 500_000n,
            block,
          }),
        `entry ${i} (the third draws and pays the winner)`,
      )
    }
  })
})

test('uintToWord, which MSTORE writes with, gives any stack value as its 32-byte word', () => {
  fc.assert(
    fc.property(word, (v) => {
      assert.equal(bytesToHex(uintToWord(v)), numberToHex(v, { size: 32 }))
    }),
    { numRuns: 2000, seed: 7 },
  )
  // Its fast path for small values keeps the range checks of narrower types and of negatives.
  assert.throws(() => uintToWord(256n, 'byte', 8), /byte: 256 does not fit in uint8/)
  assert.throws(() => uintToWord(-1n), /does not fit in uint256/)
  assert.equal(bytesToHex(uintToWord(255n, 'byte', 8)), numberToHex(255n, { size: 32 }))
})

test('the package code the fast paths stand in for is the code they were written from', async () => {
  // A new version of @ethereumjs/evm or /common may change what a message call, a call frame, the
  // opcode loop, the opcodes of `fastOpcodes`, the journal's warm sets or isActivatedEIP do:
  // review src/enclave/world/evmFastPaths.ts against it, then update these.
  const version = (name: string) =>
    JSON.parse(
      readFileSync(
        new URL(`../../node_modules/@ethereumjs/${name}/package.json`, import.meta.url),
        'utf8',
      ),
    ).version
  assert.equal(version('evm'), '10.1.3')
  assert.equal(version('common'), '10.1.3')
  const hash = (f: unknown) => createHash('sha256').update(String(f)).digest('hex').slice(0, 16)
  const stock = (await World.create({
    chainId: 1n,
    maxGasPerTx: 1_000_000n,
    digestKey: KEY,
    fastPaths: false,
  })) as unknown as {
    evm: {
      _opcodeMap: Array<{ opHandler: unknown; gasHandler?: unknown }>
      journal: Record<string, unknown>
      common: { isActivatedEIP: unknown }
    }
  }
  assert.equal(
    hash((EVM.prototype as unknown as { runInterpreter: unknown }).runInterpreter),
    '1f4905264075376d',
  )
  assert.equal(
    hash((EVM.prototype as unknown as { _executeCall: unknown })._executeCall),
    'f2358d2eeecc46e1',
  )
  // The opcode handlers `fastOpcodes` replaces (LOG0–4 share one) and the journal's warm sets.
  const handlers: Record<number, string> = {
    32: '5ec46a4fd5dac211',
    48: 'c17473679116ed3f',
    51: 'a0df2560bc10f0e9',
    53: 'f5788778df413f6f',
    81: '273cfeaa15517b02',
    82: '29edc93190b4e005',
    84: 'f0aad8fd616a7024',
    85: '707207ab1d17a826',
    160: 'edb80da68f1ea91c',
    161: 'edb80da68f1ea91c',
    162: 'edb80da68f1ea91c',
    163: 'edb80da68f1ea91c',
    164: 'edb80da68f1ea91c',
  }
  assert.deepEqual(FAST_OPCODES, Object.keys(handlers).map(Number))
  for (const [o, h] of Object.entries(handlers))
    assert.equal(hash(stock.evm._opcodeMap[Number(o)]!.opHandler), h, `opcode ${o}`)
  // The gas handlers of SLOAD and SSTORE, which the fast paths replace in Cancun.
  assert.equal(hash(stock.evm._opcodeMap[84]!.gasHandler), 'bcc3d658b9e4417b', 'SLOAD gas')
  assert.equal(hash(stock.evm._opcodeMap[85]!.gasHandler), 'b51063daf05d5f11', 'SSTORE gas')
  const fast = (await World.create({
    chainId: 1n,
    maxGasPerTx: 1_000_000n,
    digestKey: KEY,
  })) as unknown as typeof stock
  assert.deepEqual(
    [84, 85].map((o) => (fast.evm._opcodeMap[o]!.gasHandler as { name: string }).name),
    ['sloadGas', 'sstoreGas'],
  )
  const journal = stock.evm.journal
  assert.equal(hash(journal.isWarmedAddress), '5a70c85ebf478dd2')
  assert.equal(hash(journal.addWarmedAddress), '61726fa248c4233c')
  assert.equal(hash(journal.isWarmedStorage), '52bfcecd810efc2b')
  assert.equal(hash(journal.addWarmedStorage), '4025a2e5951e6487')
  const Interpreter = await packageInterpreter(stock as unknown as World)
  const proto = Interpreter.prototype as unknown as { run: unknown; runStep: unknown }
  assert.equal(hash(proto.run), '8e769d9b5ec21205')
  assert.equal(hash(proto.runStep), 'cc2ccda2341c2f42')
  assert.equal(hash(stock.evm.common.isActivatedEIP), '931ac8a66349e377')
})
