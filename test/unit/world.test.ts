import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import {
  concatHex,
  decodeFunctionResult,
  encodeDeployData,
  encodeFunctionData,
  hexToBigInt,
  keccak256,
  numberToHex,
} from 'viem'
import { privateTokenAbi, privateTokenBytecode } from '../../examples/contracts.generated.ts'
import { jumpAnalysisCached, jumpAnalysisCounts } from '../../src/enclave/world/jumpAnalysis.ts'
import { World } from '../../src/enclave/world/world.ts'
import {
  bytesToHex,
  decodeWriteSet,
  encodeWriteSet,
  hexToBytes,
  INSTANCE_ADDRESS,
  WRITE_SET_FRAME_BYTES,
} from '../../src/protocol/index.ts'

const KEY = new Uint8Array(32).fill(7)
const block = { number: 1n, timestamp: 1_700_000_000n, prevRandao: new Uint8Array(32) }
const users = [1, 2, 3, 4].map((i) => new Uint8Array(20).fill(i))
const newWorld = () => World.create({ chainId: 31337n, maxGasPerTx: 30_000_000n, digestKey: KEY })

const word = (v: bigint) => numberToHex(v, { size: 32 })

/** The state digest as world.ts defines it, from a snapshot, with viem's keccak256 and BigInts. */
function digestByDefinition(w: World): string {
  let sum = 0n
  for (const a of w.snapshot().accounts) {
    const codeHash = a.code && a.code.length > 0 ? keccak256(a.code) : keccak256('0x')
    const leaf = concatHex([
      bytesToHex(KEY),
      '0x01',
      bytesToHex(a.address),
      word(a.nonce),
      word(a.balance),
      codeHash,
    ])
    sum += hexToBigInt(keccak256(leaf))
    for (const [slot, value] of a.storage) {
      if (value.every((b) => b === 0)) continue
      sum += hexToBigInt(
        keccak256(
          concatHex([
            bytesToHex(KEY),
            '0x02',
            bytesToHex(a.address),
            bytesToHex(slot),
            bytesToHex(value),
          ]),
        ),
      )
    }
  }
  return word(sum % (1n << 256n))
}

async function deployToken(w: World, supply = 1_000_000n) {
  const r = await w.deploy({
    from: users[0]!,
    initCode: hexToBytes(
      encodeDeployData({ abi: privateTokenAbi, bytecode: privateTokenBytecode, args: [supply] }),
    ),
    value: 0n,
    gasLimit: 5_000_000n,
    block,
    address: INSTANCE_ADDRESS,
  })
  assert.equal(r.status, 'success', r.error)
  assert.deepEqual(r.createdAddress, INSTANCE_ADDRESS)
  return r
}

/** Runs `initCode` from the first user at the instance address, with a gas limit of 1,000,000. */
const deployCode = (w: World, initCode: Uint8Array) =>
  w.deploy({
    from: users[0]!,
    initCode,
    value: 0n,
    gasLimit: 1_000_000n,
    block,
    address: INSTANCE_ADDRESS,
  })

const transfer = (w: World, from: Uint8Array, to: Uint8Array, amount: bigint) =>
  w.call({
    from,
    to: INSTANCE_ADDRESS,
    value: 0n,
    data: hexToBytes(
      encodeFunctionData({
        abi: privateTokenAbi,
        functionName: 'transfer',
        args: [bytesToHex(to), amount],
      }),
    ),
    gasLimit: 200_000n,
    block,
  })

async function balanceAs(w: World, who: Uint8Array, of: Uint8Array) {
  const r = await w.view({
    from: who,
    to: INSTANCE_ADDRESS,
    data: hexToBytes(
      encodeFunctionData({
        abi: privateTokenAbi,
        functionName: 'balanceOf',
        args: [bytesToHex(of)],
      }),
    ),
    gasLimit: 1_000_000n,
    block,
  })
  return r
}

describe('EVM world', () => {
  test('deploys at the instance address with constructor arguments and runs transfers', async () => {
    const w = await newWorld()
    await deployToken(w)
    const r = await transfer(w, users[0]!, users[1]!, 250n)
    assert.equal(r.status, 'success')
    assert.equal(r.logs.length, 1)
    const own = await balanceAs(w, users[1]!, users[1]!)
    assert.equal(
      decodeFunctionResult({
        abi: privateTokenAbi,
        functionName: 'balanceOf',
        data: bytesToHex(own.returnData),
      }),
      250n,
    )
  })

  test("a contract's code is analysed for jumps once, not on every call; outcomes are unchanged", async () => {
    const a = await newWorld()
    await deployToken(a)
    const first = await transfer(a, users[0]!, users[1]!, 1n)
    assert.ok(jumpAnalysisCached(), 'the first run hooks the cache into the interpreter')
    const analysed = jumpAnalysisCounts.analysed
    const reused = jumpAnalysisCounts.reused
    const onA = [first]
    for (let i = 0; i < 5; i++) onA.push(await transfer(a, users[0]!, users[1]!, 1n))
    assert.equal(jumpAnalysisCounts.analysed, analysed)
    assert.ok(jumpAnalysisCounts.reused >= reused + 5)
    // A second world holds its own copy of the code: analysed once for it, same outcomes.
    const b = await newWorld()
    await deployToken(b)
    const onB = []
    for (let i = 0; i < 6; i++) onB.push(await transfer(b, users[0]!, users[1]!, 1n))
    assert.ok(jumpAnalysisCounts.analysed > analysed)
    const outcome = (r: Awaited<ReturnType<typeof transfer>>) => [r.status, r.gasUsed, r.logs]
    assert.deepEqual(onA.map(outcome), onB.map(outcome))
    assert.equal(onA[0]!.gasUsed > onA[1]!.gasUsed, true, 'the first transfer writes a fresh slot')
    assert.deepEqual(a.digest(), b.digest())
  })

  test('a revert keeps nothing; views enforce msg.sender; views change nothing', async () => {
    const w = await newWorld()
    await deployToken(w)
    w.takeWriteSet()
    const before = w.digest()
    const r = await transfer(w, users[1]!, users[2]!, 1n)
    assert.equal(r.status, 'revert')
    const denied = await balanceAs(w, users[2]!, users[0]!)
    assert.equal(denied.status, 'revert')
    const ws = w.takeWriteSet()
    assert.equal(ws.accounts.length, 0, 'a revert and a view leave no writes')
    assert.deepEqual(w.digest(), before)
  })

  test('a gas bomb ends out of gas, as a value', async () => {
    const w = await newWorld()
    // Runtime code: JUMPDEST; PUSH1 0; JUMP — an endless loop.
    const loop = new Uint8Array([0x5b, 0x60, 0x00, 0x56])
    // Init code returning `loop` as runtime code.
    const init = new Uint8Array([0x63, ...loop, 0x60, 0x00, 0x52, 0x60, 0x04, 0x60, 0x1c, 0xf3])
    const d = await deployCode(w, init)
    assert.equal(d.status, 'success')
    const r = await w.call({
      from: users[0]!,
      to: INSTANCE_ADDRESS,
      value: 0n,
      data: new Uint8Array(),
      gasLimit: 2_000_000n,
      block,
    })
    assert.equal(r.status, 'error')
    assert.match(r.error ?? '', /out of gas/)
    assert.equal(r.gasUsed, 2_000_000n)
    const over = await w.call({
      from: users[0]!,
      to: INSTANCE_ADDRESS,
      value: 0n,
      data: new Uint8Array(),
      gasLimit: 40_000_000n,
      block,
    })
    assert.equal(over.status, 'error')
  })

  test("gas as Ethereum counts it: the intrinsic gas is charged first, a receipt's gas used nets the refund up to a fifth", async () => {
    const w = await newWorld()
    const PROGRAM = new Uint8Array(20).fill(0xaa)
    // GAS PUSH0 MSTORE PUSH1 32 PUSH0 RETURN: returns the gas left at its first instruction.
    w.installCode(PROGRAM, Uint8Array.from([0x5a, 0x5f, 0x52, 0x60, 0x20, 0x5f, 0xf3]))
    const data = Uint8Array.from([1, 0, 0, 0]) // 16 + 3 × 4 gas of calldata
    const call = (gasLimit: bigint, to = PROGRAM, d = data) =>
      w.call({ from: users[0]!, to, value: 0n, data: d, gasLimit, block })
    const r = await call(100_000n)
    assert.equal(r.status, 'success')
    assert.equal(hexToBigInt(bytesToHex(r.returnData)), 100_000n - 21_028n - 2n, 'gasleft()')
    // GAS, PUSH0, MSTORE (3 + 3 of memory), PUSH1, PUSH0, RETURN.
    assert.equal(r.gasUsed, 21_028n + 2n + 2n + 6n + 3n + 2n)
    // A gas limit below the intrinsic gas runs nothing (the enclave refuses such a transaction).
    const short = await call(21_027n)
    assert.equal(short.status, 'error')
    assert.match(short.error ?? '', /below the intrinsic gas 21028/)
    // Exactly the intrinsic gas: the first instruction runs out of gas, all of it used.
    const exact = await call(21_028n)
    assert.equal(exact.status, 'error')
    assert.equal(exact.gasUsed, 21_028n)
    // PUSH0 PUSH0 SSTORE STOP clears slot 0, set before the transaction: 21,000 + 2 + 2 +
    // 2,900 + 2,100 (cold) = 26,004 less the 4,800 refund (a fifth of 26,004 is 5,200).
    const CLEAR = new Uint8Array(20).fill(0xbb)
    w.installCode(CLEAR, Uint8Array.from([0x5f, 0x5f, 0x55, 0x00]))
    w.setStorageWord(CLEAR, 0n, 1n)
    w.takeWriteSet()
    const cleared = await call(100_000n, CLEAR, new Uint8Array())
    assert.equal(cleared.status, 'success')
    assert.equal(cleared.gasUsed, 26_004n - 4_800n)
    // A creation pays 32,000 more and 2 per word of its code (EIP-3860): the constructor's
    // gasleft() is the limit less 21,000 + 32,000 + the code's bytes + its words, less GAS's 2.
    const init = Uint8Array.from([0x5a, 0x5f, 0x55, 0x00]) // GAS PUSH0 SSTORE STOP
    const d = await deployCode(w, init)
    assert.equal(d.status, 'success', d.error)
    const intrinsic = 21_000n + 32_000n + 3n * 16n + 4n + 2n
    assert.equal(w.getStorageWord(INSTANCE_ADDRESS, 0n), 1_000_000n - intrinsic - 2n)
  })

  test('value transfers need balance; credit and debit move native coins', async () => {
    const w = await newWorld()
    const poor = await w.call({
      from: users[0]!,
      to: users[1]!,
      value: 5n,
      data: new Uint8Array(),
      gasLimit: 100_000n,
      block,
    })
    assert.equal(poor.status, 'error')
    w.credit(users[0]!, 10n)
    const ok = await w.call({
      from: users[0]!,
      to: users[1]!,
      value: 5n,
      data: new Uint8Array(),
      gasLimit: 100_000n,
      block,
    })
    assert.equal(ok.status, 'success')
    assert.equal(w.getBalance(users[1]!), 5n)
    assert.throws(() => w.debit(users[1]!, 6n), /below/)
    assert.throws(() => w.credit(users[1]!, -1n), /uint256/)
  })

  test('SELFDESTRUCT as in Cancun (EIP-6780): only a contract created in the same transaction is deleted', async () => {
    const w = await newWorld()
    const hasCode = (a: Uint8Array) =>
      w.snapshot().accounts.some((x) => bytesToHex(x.address) === bytesToHex(a) && x.code)
    // An existing contract: PUSH20 beneficiary; SELFDESTRUCT. It sends its coins and stays.
    const old = new Uint8Array(20).fill(0xaa)
    const beneficiary = new Uint8Array(20).fill(0xbb)
    w.installCode(old, Uint8Array.from([0x73, ...beneficiary, 0xff]))
    w.credit(old, 100n)
    const call = (to: Uint8Array) =>
      w.call({ from: users[0]!, to, value: 0n, data: new Uint8Array(), gasLimit: 300_000n, block })
    assert.equal((await call(old)).status, 'success')
    assert.equal(w.getBalance(old), 0n)
    assert.equal(w.getBalance(beneficiary), 100n)
    assert.ok(hasCode(old), 'a contract from an earlier transaction keeps its code')

    // A factory that creates a child (runtime: CALLER; SELFDESTRUCT) with 1 coin, stores the
    // child's address in slot 0 and calls it, all in one transaction: the child is deleted.
    const childInit = [0x61, 0x33, 0xff, 0x60, 0x00, 0x52, 0x60, 0x02, 0x60, 0x1e, 0xf3]
    const factory = new Uint8Array(20).fill(0xcc)
    w.installCode(
      factory,
      Uint8Array.from([
        0x6a, // PUSH11 the child's init code, stored at memory bytes 21..31
        ...childInit,
        0x5f,
        0x52,
        ...[0x60, 11, 0x60, 21, 0x60, 1, 0xf0], // CREATE(value 1, offset 21, size 11)
        ...[0x80, 0x5f, 0x55], // DUP1; PUSH0; SSTORE: slot 0 = child
        ...[0x5f, 0x5f, 0x5f, 0x5f, 0x5f, 0x85, 0x5a, 0xf1], // CALL(gas, child, 0, 0, 0, 0, 0)
        0x00,
      ]),
    )
    w.credit(factory, 10n)
    assert.equal((await call(factory)).status, 'success')
    const child = hexToBytes(numberToHex(w.getStorageWord(factory, 0n), { size: 20 }))
    assert.notEqual(w.getStorageWord(factory, 0n), 0n, 'the child was created')
    assert.ok(!hasCode(child), 'a contract created and destroyed in one transaction is deleted')
    assert.ok(!w.snapshot().accounts.some((x) => bytesToHex(x.address) === bytesToHex(child)))
    assert.equal(w.getBalance(factory), 10n, "the child's coin went back to the factory")
  })

  test('the point evaluation precompile (0x0a) fails as a call, never as an exception: a revert after it keeps nothing, a view after it changes nothing', async () => {
    const w = await newWorld()
    const c = new Uint8Array(20).fill(0xd1)
    // SSTORE(0, 1); slot 1 = STATICCALL(10000, 0x0a, 0, 0, 0, 0); then REVERT if the calldata
    // is empty, STOP otherwise.
    w.installCode(
      c,
      Uint8Array.from([
        ...[0x60, 0x01, 0x5f, 0x55],
        ...[0x5f, 0x5f, 0x5f, 0x5f, 0x60, 0x0a, 0x61, 0x27, 0x10, 0xfa, 0x60, 0x01, 0x55],
        ...[0x36, 0x60, 0x18, 0x57, 0x5f, 0x5f, 0xfd, 0x5b, 0x00],
      ]),
    )
    w.takeWriteSet()
    const before = bytesToHex(w.digest())
    const message = (data: Uint8Array) => ({
      from: users[0]!,
      to: c,
      data,
      gasLimit: 300_000n,
      block,
    })
    const call = (data: Uint8Array) => w.call({ ...message(data), value: 0n })
    assert.equal((await call(new Uint8Array())).status, 'revert')
    w.takeWriteSet()
    assert.equal(w.getStorageWord(c, 0n), 0n, 'the revert undid the store before the call')
    assert.equal(bytesToHex(w.digest()), before)
    assert.equal((await w.view(message(Uint8Array.of(1)))).status, 'success')
    w.takeWriteSet()
    assert.equal(w.getStorageWord(c, 0n), 0n, 'a view changes nothing')
    assert.equal(bytesToHex(w.digest()), before)
    assert.equal((await call(Uint8Array.of(1))).status, 'success')
    assert.equal(w.getStorageWord(c, 0n), 1n)
    assert.equal(w.getStorageWord(c, 1n), 0n, 'the precompile call failed')
    // Later transactions run at the depth they should: a revert still undoes its own writes.
    assert.equal((await call(new Uint8Array())).status, 'revert')
    assert.equal(w.getStorageWord(c, 0n), 1n)
  })

  test('a transaction with more logs than an outcome may carry ends as an error and keeps nothing', async () => {
    const w = await newWorld()
    const c = new Uint8Array(20).fill(0xd2)
    // SSTORE(0, 1); then LOG0(0, 0) as many times as the first calldata byte times 8, plus one.
    const code = Uint8Array.from([
      ...[0x60, 0x01, 0x5f, 0x55],
      ...[0x5f, 0x35, 0x60, 0xf8, 0x1c, 0x60, 0x08, 0x02, 0x60, 0x01, 0x01], // n = byte0 * 8 + 1
      0x5b, // loop (offset 15): [n]
      ...[0x80, 0x15, 0x60, 0x1f, 0x57], // DUP1 ISZERO PUSH1 end JUMPI
      ...[0x5f, 0x5f, 0xa0], // LOG0(0, 0)
      ...[0x60, 0x01, 0x90, 0x03], // n - 1
      ...[0x60, 0x0f, 0x56], // JUMP loop
      0x5b, // end (offset 31)
      0x00,
    ])
    w.installCode(c, code)
    const run = (groups: number) =>
      w.call({
        from: users[0]!,
        to: c,
        value: 0n,
        data: Uint8Array.of(groups),
        gasLimit: 3_000_000n,
        block,
      })
    const at = await run(127) // 1,017 logs
    assert.equal(at.status, 'success', at.error)
    assert.equal(at.logs.length, 1017)
    w.setStorageWord(c, 0n, 0n)
    w.takeWriteSet()
    const over = await run(128) // 1,025 logs
    assert.equal(over.status, 'error')
    assert.match(over.error ?? '', /1025 logs, more than 1024/)
    assert.deepEqual(over.logs, [])
    assert.ok(over.gasUsed > 0n, 'the gas it burned counts')
    assert.equal(w.getStorageWord(c, 0n), 0n, 'its store is undone')
    // A view's or a constructor's logs go into no update: no cap there.
    const viewed = await w.view({
      from: users[0]!,
      to: c,
      data: Uint8Array.of(128),
      gasLimit: 3_000_000n,
      block,
    })
    assert.equal(viewed.status, 'success')
    const made = await w.deploy({
      from: users[0]!,
      initCode: code,
      value: 0n,
      gasLimit: 3_000_000n,
      block,
      address: new Uint8Array(20).fill(0xd4),
    })
    assert.equal(made.status, 'success', made.error)
    assert.equal(made.logs.length, 1)
  })

  test('an exception out of the EVM undoes the whole transaction and leaves no checkpoint open', async () => {
    const w = await newWorld()
    const c = new Uint8Array(20).fill(0xd3)
    w.installCode(c, Uint8Array.from([0x60, 0x01, 0x5f, 0x55, 0x00])) // SSTORE(0, 1)
    const evm = (w as unknown as { evm: { runCall: (o: unknown) => Promise<unknown> } }).evm
    const runCall = evm.runCall.bind(evm)
    const sm = (w as unknown as { sm: { depth: number; checkpointNow: () => void } }).sm
    // The EVM writes, opens checkpoints of its own and throws (what a precompile that throws
    // did, or any bug).
    evm.runCall = async (o) => {
      await runCall(o)
      sm.checkpointNow()
      sm.checkpointNow()
      throw new Error('kzg not initialized')
    }
    const r = await w
      .call({
        from: users[0]!,
        to: c,
        value: 5n,
        data: new Uint8Array(),
        gasLimit: 100_000n,
        block,
      })
      .catch((e: unknown) => e)
    evm.runCall = runCall
    assert.ok(!(r instanceof Error), 'an outcome, not an exception')
    assert.equal((r as { status: string }).status, 'error')
    assert.match((r as { error: string }).error, /the EVM failed: kzg not initialized/)
    assert.equal(sm.depth, 0)
    assert.equal(w.getStorageWord(c, 0n), 0n)
    assert.equal(w.getBalance(c), 0n)
  })

  test('replicas applying the write sets hold the same digest after every batch; snapshots restore it', async () => {
    const exec = await newWorld()
    const replica = await newWorld()
    await deployToken(exec)
    replica.applyWriteSet(decodeWriteSet(encodeWriteSet(exec.takeWriteSet())))
    assert.deepEqual(replica.digest(), exec.digest())
    for (let batch = 0; batch < 10; batch++) {
      for (let i = 0; i < 10; i++) {
        const from = users[(batch + i) % 4]!
        exec.setNonce(from, exec.getNonce(from) + 1n)
        await transfer(exec, from, users[(batch + i + 1) % 4]!, BigInt(1 + i))
      }
      replica.applyWriteSet(decodeWriteSet(encodeWriteSet(exec.takeWriteSet())))
      assert.deepEqual(replica.digest(), exec.digest(), `batch ${batch}`)
    }
    const restored = await newWorld()
    restored.applyWriteSet(exec.snapshot())
    assert.deepEqual(restored.digest(), exec.digest())
    const other = await World.create({
      chainId: 31337n,
      maxGasPerTx: 30_000_000n,
      digestKey: new Uint8Array(32).fill(8),
    })
    other.applyWriteSet(exec.snapshot())
    assert.notDeepEqual(other.digest(), exec.digest(), 'the digest is keyed')
  })

  test('the digest is the sum mod 2^256 of every keyed leaf hash, recomputed from a snapshot', async () => {
    // The definition in world.ts, built here with viem's keccak256 and BigInt arithmetic.
    const w = await newWorld()
    await deployToken(w)
    w.takeWriteSet()
    w.credit(users[2]!, 5n * 10n ** 18n)
    for (let i = 0; i < 12; i++) {
      const from = users[i % 4]!
      w.setNonce(from, w.getNonce(from) + 1n)
      await transfer(w, from, users[(i + 1) % 4]!, BigInt(1 + i))
      // Each take folds the changes since the last: old leaves leave the sum, new ones enter.
      if (i % 3 === 2) w.takeWriteSet()
    }
    w.takeWriteSet()
    assert.equal(bytesToHex(w.digest()), digestByDefinition(w))
  })

  test('property: random operation sequences keep replica digests equal', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.nat(3), fc.nat(3), fc.bigInt({ min: 0n, max: 2000n }), fc.boolean()), {
          minLength: 1,
          maxLength: 25,
        }),
        async (ops) => {
          const exec = await newWorld()
          const replica = await newWorld()
          await deployToken(exec, 5000n)
          replica.applyWriteSet(exec.takeWriteSet())
          for (const [f, t, amount, credit] of ops) {
            if (credit) exec.credit(users[f]!, amount)
            else await transfer(exec, users[f]!, users[t]!, amount)
            replica.applyWriteSet(decodeWriteSet(encodeWriteSet(exec.takeWriteSet())))
            assert.deepEqual(replica.digest(), exec.digest())
          }
          assert.deepEqual(replica.stateSize(), exec.stateSize())
        },
      ),
      { numRuns: 25 },
    )
  })

  test('property: the digest keeps its definition when keys change back and forth between takes (leaf cache)', async () => {
    // Few keys and values, so a key often returns to a value it held, is zeroed (its leaf leaves
    // the sum) and set again, within one take or across several.
    const op = fc.oneof(
      fc.record({ k: fc.constant('slot'), a: fc.nat(2), slot: fc.nat(3), v: fc.nat(3) }),
      fc.record({ k: fc.constant('credit'), a: fc.nat(2), v: fc.nat(3) }),
      fc.record({ k: fc.constant('nonce'), a: fc.nat(2), v: fc.nat(2) }),
      fc.record({ k: fc.constant('take') }),
    )
    const addresses = [0xa1, 0xa2, 0xa3].map((b) => new Uint8Array(20).fill(b))
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 40 }), async (ops) => {
        const w = await newWorld()
        const replica = await newWorld()
        for (const o of ops) {
          if (o.k === 'slot') w.setStorageWord(addresses[o.a]!, BigInt(o.slot), BigInt(o.v))
          else if (o.k === 'credit') w.credit(addresses[o.a]!, BigInt(o.v))
          else if (o.k === 'nonce') w.setNonce(addresses[o.a]!, BigInt(o.v))
          else {
            replica.applyWriteSet(decodeWriteSet(encodeWriteSet(w.takeWriteSet())))
            assert.equal(bytesToHex(w.digest()), digestByDefinition(w))
            assert.deepEqual(replica.digest(), w.digest())
          }
        }
        replica.applyWriteSet(w.takeWriteSet())
        assert.equal(bytesToHex(w.digest()), digestByDefinition(w))
        assert.deepEqual(replica.digest(), w.digest())
      }),
      { numRuns: 60 },
    )
  })

  test('the digest keeps its definition past the bound of the leaf cache (cleared, then refilled)', async () => {
    const w = await newWorld()
    const replica = await newWorld()
    const a = new Uint8Array(20).fill(0xb1)
    // Three takes of 2,000 new slots each pass the cache's 4,096 entries.
    for (let t = 0; t < 3; t++) {
      for (let i = 0; i < 2000; i++) w.setStorageWord(a, BigInt(t * 2000 + i), BigInt(i + 1))
      replica.applyWriteSet(w.takeWriteSet())
    }
    // Slots of the first take (cleared from the cache) and of the last (still in it) change.
    for (let i = 0; i < 50; i++) {
      w.setStorageWord(a, BigInt(i), BigInt(i + 7))
      w.setStorageWord(a, BigInt(4000 + i), 0n)
    }
    replica.applyWriteSet(decodeWriteSet(encodeWriteSet(w.takeWriteSet())))
    assert.equal(bytesToHex(w.digest()), digestByDefinition(w))
    assert.deepEqual(replica.digest(), w.digest())
    assert.ok(w.leafCacheSize() <= 4096, `${w.leafCacheSize()} leaves kept`)
    // A take of more changes than half the bound (a handover) leaves the cache as it was: the
    // entries of the slots it changed are stale, and the next take must not use them.
    const b = new Uint8Array(20).fill(0xb2)
    w.credit(b, 1n)
    replica.applyWriteSet(w.takeWriteSet())
    w.credit(b, 2n)
    for (let i = 0; i < 2100; i++) w.setStorageWord(a, BigInt(10_000 + i), 1n)
    for (let i = 4000; i < 4050; i++) w.setStorageWord(a, BigInt(i), 3n)
    for (let i = 0; i < 50; i++) w.setStorageWord(a, BigInt(i), BigInt(i + 9))
    const big = w.takeWriteSet()
    replica.applyWriteSet(big)
    w.credit(b, 4n)
    for (let i = 0; i < 50; i++) w.setStorageWord(a, BigInt(i), 5n)
    for (let i = 4000; i < 4050; i++) w.setStorageWord(a, BigInt(i), 4n)
    replica.applyWriteSet(w.takeWriteSet())
    assert.equal(bytesToHex(w.digest()), digestByDefinition(w))
    assert.deepEqual(replica.digest(), w.digest())
    const restored = await newWorld()
    restored.applyWriteSet(w.snapshot())
    assert.deepEqual(restored.digest(), w.digest())
  })

  test('a write set whose digest is not the expected one is not taken, not even in part', async () => {
    const exec = await newWorld()
    const replica = await newWorld()
    await deployToken(exec)
    exec.credit(users[3]!, 5n)
    replica.applyCheckedWriteSet(
      decodeWriteSet(encodeWriteSet(exec.takeWriteSet())),
      exec.digest(),
      'update 1',
    )
    for (let batch = 0; batch < 4; batch++) {
      // Slots created (new holders), changed and emptied (a whole balance sent on), an account
      // created (a new sender's nonce) and one emptied.
      const from = users[batch % 4]!
      exec.setNonce(from, exec.getNonce(from) + 1n)
      const all = hexToBigInt(bytesToHex((await balanceAs(exec, from, from)).returnData))
      assert.ok(all > 0n)
      const sent = await transfer(exec, from, users[(batch + 1) % 4]!, all)
      assert.equal(sent.status, 'success')
      exec.debit(users[3]!, exec.getBalance(users[3]!))
      const ws = encodeWriteSet(exec.takeWriteSet())
      const before = replica.digest()
      const state = encodeWriteSet(replica.snapshot())
      const wrong = exec.digest().slice()
      wrong[31]! ^= 1
      assert.throws(
        () => replica.applyCheckedWriteSet(decodeWriteSet(ws), wrong, `update ${batch + 2}`),
        (e: Error & { code?: string }) =>
          e.code === 'INTERNAL' &&
          e.message === `update ${batch + 2}: state digest differs from the executor's`,
      )
      assert.deepEqual(replica.digest(), before, 'the digest is as before')
      assert.deepEqual(encodeWriteSet(replica.snapshot()), state, 'the state is as before')
      // Its changes were taken inside the checkpoint the rejection reverted: nothing pending.
      assert.equal(replica.pendingWriteSetBytes(), 0)
      assert.equal(digestByDefinition(replica), bytesToHex(before))
      replica.applyCheckedWriteSet(decodeWriteSet(ws), exec.digest(), `update ${batch + 2}`)
      assert.deepEqual(replica.digest(), exec.digest(), `batch ${batch}`)
      assert.deepEqual(encodeWriteSet(replica.snapshot()), encodeWriteSet(exec.snapshot()))
      assert.equal(digestByDefinition(replica), bytesToHex(exec.digest()))
    }
  })

  test('the pending write set bound never falls short of the write set it makes, and what a revert or a view undid leaves it', async () => {
    // n = calldata byte 0; slots n..1 = GAS; then REVERT if calldata byte 1 is non-zero.
    const filler = Uint8Array.from([
      ...[0x5f, 0x35, 0x60, 0xf8, 0x1c], // n
      0x5b, // loop (5)
      ...[0x80, 0x15, 0x60, 0x15, 0x57], // DUP1 ISZERO PUSH1 end JUMPI
      ...[0x5a, 0x81, 0x55], // SSTORE(n, GAS)
      ...[0x60, 0x01, 0x90, 0x03], // n - 1
      ...[0x60, 0x05, 0x56], // JUMP loop
      0x5b, // end (21)
      ...[0x60, 0x01, 0x35, 0x60, 0xf8, 0x1c, 0x60, 0x20, 0x57, 0x00], // byte 1 ? revert : stop
      ...[0x5b, 0x5f, 0x5f, 0xfd], // revert (32)
    ])
    const op = fc.oneof(
      fc.record({ t: fc.constant('call' as const), n: fc.nat(40), revert: fc.boolean() }),
      fc.record({ t: fc.constant('view' as const), n: fc.nat(40) }),
      fc.record({ t: fc.constant('credit' as const), who: fc.nat(3) }),
      fc.record({ t: fc.constant('take' as const) }),
    )
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 25 }), async (ops) => {
        const w = await newWorld()
        const c = new Uint8Array(20).fill(0xf1)
        w.installCode(c, filler)
        const check = () => {
          const bound = w.pendingWriteSetBytes()
          const made = encodeWriteSet(w.takeWriteSet()).length - WRITE_SET_FRAME_BYTES
          assert.ok(made <= bound, `${made} bytes made, ${bound} bound`)
          assert.equal(w.pendingWriteSetBytes(), 0)
        }
        for (const o of ops) {
          const before = w.pendingWriteSetBytes()
          const msg = { from: users[0]!, to: c, gasLimit: 2_000_000n, block }
          if (o.t === 'call') {
            const r = await w.call({
              ...msg,
              value: 0n,
              data: Uint8Array.of(o.n, o.revert ? 1 : 0),
            })
            assert.equal(r.status, o.revert ? 'revert' : 'success', r.error)
            if (o.revert) assert.equal(w.pendingWriteSetBytes(), before, 'a revert undid it')
          } else if (o.t === 'view') {
            await w.view({ ...msg, data: Uint8Array.of(o.n, 0) })
            assert.equal(w.pendingWriteSetBytes(), before, 'a view undid it')
          } else if (o.t === 'credit') w.credit(users[o.who]!, 1n)
          else check()
        }
        check()
      }),
      { numRuns: 40 },
    )
  })

  test('a transaction that would pass its update room is undone, its gas counted; one that fits keeps its writes', async () => {
    const w = await newWorld()
    const c = new Uint8Array(20).fill(0xf2)
    // SSTORE(0, 1); then RETURN 1,024 × calldata byte 0 zero bytes.
    w.installCode(
      c,
      Uint8Array.from([
        ...[0x60, 0x01, 0x5f, 0x55],
        ...[0x5f, 0x35, 0x60, 0xf8, 0x1c, 0x61, 0x04, 0x00, 0x02, 0x5f, 0xf3],
      ]),
    )
    w.takeWriteSet()
    const run = (kib: number, updateRoom: number) =>
      w.call({
        from: users[0]!,
        to: c,
        value: 0n,
        data: Uint8Array.of(kib),
        gasLimit: 1_000_000n,
        block,
        updateRoom,
      })
    const over = await run(8, 8 * 1024 + 100)
    assert.equal(over.status, 'error')
    assert.equal(over.oversized, true)
    assert.match(over.error ?? '', /its update needs \d+ bytes, more than 8292/)
    assert.ok(over.gasUsed > 0n)
    assert.equal(w.getStorageWord(c, 0n), 0n, 'its store is undone')
    assert.equal(w.pendingWriteSetBytes(), 0)
    const fits = await run(8, 8 * 1024 + 300)
    assert.equal(fits.status, 'success', fits.error)
    assert.equal(fits.oversized, undefined)
    assert.equal(fits.returnData.length, 8 * 1024)
    assert.equal(w.getStorageWord(c, 0n), 1n)
  })

  test('a nonce raised and set back leaves the state as it was, with no empty account made', async () => {
    const w = await newWorld()
    const fresh = new Uint8Array(20).fill(0xf5)
    const old = users[1]!
    w.setNonce(old, 3n)
    w.takeWriteSet()
    const before = w.digest()
    for (const [a, existed] of [
      [fresh, false],
      [old, true],
    ] as const) {
      const nonce = w.getNonce(a)
      assert.equal(w.hasAccount(a), existed)
      w.setNonce(a, nonce + 1n)
      w.restoreNonce(a, nonce, existed)
      assert.equal(w.hasAccount(a), existed)
      assert.equal(w.getNonce(a), nonce)
    }
    assert.deepEqual(w.takeWriteSet(), { accounts: [], deleted: [] })
    assert.deepEqual(w.digest(), before)
  })
})
