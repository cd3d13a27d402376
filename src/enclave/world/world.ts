/**
 * The EVM world of one instance (SPEC §5): `@ethereumjs/evm` (Cancun) over our journaled state
 * manager. Expected outcomes (revert, out of gas, invalid opcode) are values, never exceptions.
 * Gas price is zero inside the world; gas only bounds work. Also produces write sets and a keyed,
 * incremental state digest: the sum mod 2^256 of keccak256(key ‖ leaf) over every account and
 * every non-zero storage slot, updated from the changed keys only.
 */
import { createCustomCommon, Hardfork, Mainnet } from '@ethereumjs/common'
import {
  EVM,
  EVMError,
  EVMMockBlockchain,
  type EVMResult,
  getActivePrecompiles,
  type Message,
  NobleBN254,
} from '@ethereumjs/evm'
import { Address, KECCAK256_NULL } from '@ethereumjs/util'
import {
  type AccountWrite,
  bytesToUnprefixedHex,
  canonicalizeWriteSet,
  equalBytes,
  executedBytes,
  intrinsicGas,
  keccak256,
  MAX_LOGS_PER_TX,
  ProtocolError,
  setUintWord,
  uintToWord,
  type WriteSet,
  wordToUint,
} from '../../protocol/index.ts'
import {
  executeCall,
  executeCallPorted,
  fastJournal,
  fastOpcodes,
  type InterpreterClass,
  interpreterClassOf,
  memoizeActivatedEips,
  runFrame,
} from './evmFastPaths.ts'
import {
  type AccountState,
  type Changes,
  JournaledStateManager,
  pad32,
  stripZeros,
} from './journaledStateManager.ts'
import { cacheJumpAnalysis } from './jumpAnalysis.ts'
import { WordSum } from './wordSum.ts'

/**
 * EIP-4844's point evaluation precompile. The enclave holds no KZG trusted setup, so every call
 * fails as one with an invalid proof does (all the gas it was given, an exceptional halt): the
 * caller sees a failed call, never an exception that would leave the transaction half applied.
 */
const POINT_EVALUATION = '0x000000000000000000000000000000000000000a'
const pointEvaluationUnavailable = (input: { gasLimit: bigint }) => ({
  returnValue: new Uint8Array(),
  executionGasUsed: input.gasLimit,
  exceptionError: new EVMError(EVMError.errorMessages.INVALID_PROOF),
})

export type BlockContext = { number: bigint; timestamp: bigint; prevRandao: Uint8Array }
export type ExecLog = { address: Uint8Array; topics: Uint8Array[]; data: Uint8Array }
export type ExecResult = {
  status: 'success' | 'revert' | 'error'
  error?: string
  /** Undone because the update had no room for it (`updateRoom`). */
  oversized?: boolean
  returnData: Uint8Array
  logs: ExecLog[]
  gasUsed: bigint
  createdAddress?: Uint8Array
}
export type WorldOptions = {
  chainId: bigint
  maxGasPerTx: bigint
  digestKey: Uint8Array
  /**
   * The faster paths of ./evmFastPaths.ts (default true). `false` runs `@ethereumjs/evm` as
   * shipped: the reference the fast paths are tested against.
   */
  fastPaths?: boolean
}

const MOD = 1n << 256n
const MAX_U256 = MOD - 1n

/** Entries of a world's leaf cache (`World.accountLeaves`, `World.slotLeaves`). */
const LEAF_CACHE_MAX = 4096
type AccountLeaf = AccountState & { leaf: Uint8Array }
type SlotLeaf = { value: Uint8Array; leaf: Uint8Array }

/** Whether two account states have the same fields (and so the same leaf). */
const sameAccount = (x: AccountState, y: AccountState): boolean =>
  x.nonce === y.nonce && x.balance === y.balance && Buffer.compare(x.codeHash, y.codeHash) === 0
const ZERO_ADDRESS = new Address(new Uint8Array(20))
const BLOCK_GAS_LIMIT = 30_000_000n
/** EIP-3529: a transaction's refund is at most a fifth of the gas it used. */
const MAX_REFUND_QUOTIENT = 5n

/** The package's interpreter class, from the first frame the package runs itself. */
let interpreterClass: InterpreterClass | undefined

/**
 * An EVM that can create the instance's contract at a fixed address, and runs call frames
 * through `runFrame` (./evmFastPaths.ts) when `fastFrames` is set.
 */
class WorldEVM extends EVM {
  fixedCreateAddress: Address | undefined
  fastFrames = false

  protected override async runInterpreter(
    message: Message,
    opts?: Parameters<typeof runFrame>[3],
  ): Promise<EVMResult['execResult']> {
    if (this.fastFrames && interpreterClass && this._tx && this._block)
      return runFrame(this, interpreterClass, message, opts)
    const r = await super.runInterpreter(message, opts as never)
    if (this.fastFrames && !interpreterClass) interpreterClass = interpreterClassOf(r)
    return r
  }

  /** Whether message calls go through `executeCall` (set once the world's common is known). */
  fastCalls = false

  protected override _executeCall(message: Parameters<EVM['_executeCall']>[0]) {
    // Debug output and the profiler stay with the package's own method.
    if (!this.fastCalls || this.DEBUG || this._optsCached.profiler?.enabled === true)
      return super._executeCall(message)
    return executeCall(this, message)
  }

  protected override async _generateAddress(
    message: Parameters<EVM['_generateAddress']>[0],
  ): Promise<Address> {
    if (this.fixedCreateAddress && message.depth === 0) return this.fixedCreateAddress
    return super._generateAddress(message)
  }
}

const hex = bytesToUnprefixedHex
const unhexKey = (k: string) => new Uint8Array(Buffer.from(k, 'hex'))

function assertAmount(v: bigint, what: string): void {
  if (typeof v !== 'bigint' || v < 0n || v > MAX_U256) {
    throw new ProtocolError('OUT_OF_RANGE', `${what}: ${v} is not a uint256`)
  }
}

/** An outcome that is no call's: refused before it ran, or undone after. */
function failed(error: string, gasUsed = 0n): ExecResult {
  return { status: 'error', error, returnData: new Uint8Array(), logs: [], gasUsed }
}

export class World {
  private readonly digestSum = new WordSum()
  /** Input of one leaf hash (`leafAccount`, `leafSlot`), the digest key at its start. */
  private readonly leaf = Buffer.alloc(32 + 1 + 20 + 96)
  private readonly leafView = new DataView(this.leaf.buffer, this.leaf.byteOffset, this.leaf.length)

  private constructor(
    private readonly evm: WorldEVM,
    private readonly sm: JournaledStateManager,
    private readonly opts: WorldOptions,
    private readonly warm: string[],
  ) {
    this.leaf.set(opts.digestKey, 0)
  }

  static async create(opts: WorldOptions): Promise<World> {
    if (opts.digestKey.length !== 32)
      throw new ProtocolError('MALFORMED', 'digestKey: expected 32 bytes')
    const common = createCustomCommon({ chainId: Number(opts.chainId) }, Mainnet, {
      hardfork: Hardfork.Cancun,
      // KECCAK256 (mapping slots, events) through the WebAssembly implementation.
      customCrypto: { keccak256 },
    })
    const fast = opts.fastPaths !== false
    if (fast) memoizeActivatedEips(common)
    const sm = new JournaledStateManager({ paddedStorage: fast })
    const evm = new WorldEVM({
      common,
      stateManager: sm,
      bn254: new NobleBN254(),
      blockchain: new EVMMockBlockchain(),
      customPrecompiles: [{ address: POINT_EVALUATION, function: pointEvaluationUnavailable }],
    })
    evm.fastFrames = fast
    evm.fastCalls = fast && executeCallPorted(common)
    if (fast) {
      fastOpcodes(evm)
      fastJournal(evm)
    }
    const warm = getActivePrecompiles(common) as unknown as Map<string, unknown>
    return new World(evm, sm, opts, [...warm.keys()])
  }

  // ---------------------------------------------------------------- execution

  private block(b: BlockContext) {
    return {
      header: {
        number: b.number,
        coinbase: ZERO_ADDRESS,
        timestamp: b.timestamp,
        difficulty: 0n,
        prevRandao: b.prevRandao,
        gasLimit: BLOCK_GAS_LIMIT,
        baseFeePerGas: 0n,
        getBlobGasPrice: () => 1n,
      },
    }
  }

  private prepare(from: Uint8Array, to?: Uint8Array): void {
    const j = this.evm.journal
    j.cleanJournal()
    for (const p of this.warm) j.addAlwaysWarmAddress(p)
    j.addAlwaysWarmAddress(hex(from))
    if (to) j.addAlwaysWarmAddress(hex(to))
    j.addAlwaysWarmAddress(hex(ZERO_ADDRESS.bytes))
    this.evm.transientStorage.clear()
    this.sm.originalStorageCache.clear()
  }

  /**
   * The outcome of a top-level message that was given its gas limit less `intrinsic`: the gas it
   * used counts the intrinsic gas and, on success, less the refund (EIP-3529: at most a fifth),
   * as an Ethereum receipt's does.
   */
  private async finish(r: EVMResult, intrinsic: bigint): Promise<ExecResult> {
    const err = r.execResult.exceptionError
    if (!err) {
      // EIP-6780 (Cancun): SELFDESTRUCT deletes only a contract created in the same transaction;
      // any other only sends its coins to the beneficiary.
      const created = r.execResult.createdAddresses
      for (const addr of r.execResult.selfdestruct?.keys() ?? []) {
        if (!created?.has(addr)) continue
        await this.sm.deleteAccount(new Address(unhexKey(addr.slice(2))))
      }
      await this.evm.journal.cleanup()
    } else {
      this.evm.journal.cleanJournal()
    }
    const out: ExecResult = {
      status: !err ? 'success' : err.error === 'revert' ? 'revert' : 'error',
      returnData: r.execResult.returnValue,
      logs: (r.execResult.logs ?? []).map(([address, topics, data]) => ({ address, topics, data })),
      gasUsed: intrinsic + r.execResult.executionGasUsed,
    }
    if (!err) {
      const refund = r.execResult.gasRefund ?? 0n
      const cap = out.gasUsed / MAX_REFUND_QUOTIENT
      out.gasUsed -= refund < cap ? refund : cap
    }
    if (err && err.error !== 'revert') out.error = err.error
    if (r.createdAddress && !err) out.createdAddress = r.createdAddress.bytes
    return out
  }

  private checkGas(gasLimit: bigint): ExecResult | undefined {
    if (gasLimit <= 0n || gasLimit > this.opts.maxGasPerTx)
      return failed(`gas limit ${gasLimit} outside (0, ${this.opts.maxGasPerTx}]`)
    return undefined
  }

  /**
   * Runs one top-level message (gas checked, journal prepared) and turns the outcome into a value.
   * A transaction's (`capLogs`) with more than MAX_LOGS_PER_TX logs is undone: its outcome goes
   * into an update every member decodes (a genesis or a view carries no logs). So is one whose
   * outcome and the changes pending since the last take (`pendingWriteSetBytes`) would pass
   * `updateRoom` bytes (decision 0028): its outcome is `oversized`.
   */
  private async run(p: {
    capLogs?: boolean
    updateRoom?: number | undefined
    from: Uint8Array
    to?: Uint8Array
    value: bigint
    data: Uint8Array
    gasLimit: bigint
    block: BlockContext
  }): Promise<ExecResult> {
    assertAmount(p.value, 'value')
    const bad = this.checkGas(p.gasLimit)
    if (bad) return bad
    const intrinsic = intrinsicGas(p.data, p.to === undefined)
    if (p.gasLimit < intrinsic)
      return failed(`gas limit ${p.gasLimit} below the intrinsic gas ${intrinsic}`)
    this.prepare(p.from, p.to)
    // No spread inside the literal: on Node 20 every property after one is added by V8's
    // runtime, microseconds per call.
    const opts: Parameters<WorldEVM['runCall']>[0] = {
      caller: new Address(p.from),
      origin: new Address(p.from),
      data: p.data,
      value: p.value,
      gasLimit: p.gasLimit - intrinsic,
      gasPrice: 0n,
      block: this.block(p.block),
      // Nonces of users are managed by the executor role, not by the EVM.
      skipNonceIncrement: true,
    }
    if (p.to) opts.to = new Address(p.to)
    // The message runs inside a checkpoint of its own, so that what it did can be undone when
    // its outcome breaks a limit, or when the EVM throws (a bug: no outcome is an exception)
    // rather than half applied and replicated.
    const depth = this.sm.depth
    this.sm.checkpointNow()
    let out: ExecResult
    try {
      const r = await this.evm.runCall(opts)
      cacheJumpAnalysis(r.execResult.runState?.interpreter)
      out = await this.finish(r, intrinsic)
    } catch (e) {
      this.sm.revertTo(depth)
      this.evm.journal.cleanJournal()
      return failed(`the EVM failed: ${e instanceof Error ? e.message : String(e)}`)
    }
    if (p.capLogs && out.logs.length > MAX_LOGS_PER_TX) {
      this.sm.revertNow()
      return failed(`${out.logs.length} logs, more than ${MAX_LOGS_PER_TX}`, out.gasUsed)
    }
    if (p.updateRoom !== undefined) {
      const bytes = this.sm.changeBytes + executedBytes(out)
      if (bytes > p.updateRoom) {
        this.sm.revertNow()
        const r = failed(`its update needs ${bytes} bytes, more than ${p.updateRoom}`, out.gasUsed)
        r.oversized = true
        return r
      }
    }
    this.sm.commitNow()
    return out
  }

  /** Runs creation code; the contract is placed at `address`. */
  async deploy(p: {
    from: Uint8Array
    initCode: Uint8Array
    value: bigint
    gasLimit: bigint
    block: BlockContext
    address: Uint8Array
  }): Promise<ExecResult> {
    this.evm.fixedCreateAddress = new Address(p.address)
    try {
      return await this.run({
        from: p.from,
        value: p.value,
        data: p.initCode,
        gasLimit: p.gasLimit,
        block: p.block,
      })
    } finally {
      this.evm.fixedCreateAddress = undefined
    }
  }

  /**
   * A transaction's call: its state changes stay only if it succeeds. With `updateRoom`, they
   * stay only if its outcome and the changes pending since the last take fit in that many bytes
   * of an update's results and write set; otherwise its outcome is `oversized` (and an error).
   */
  call(p: {
    from: Uint8Array
    to: Uint8Array
    value: bigint
    data: Uint8Array
    gasLimit: bigint
    block: BlockContext
    updateRoom?: number
  }): Promise<ExecResult> {
    return this.run({ ...p, capLogs: true })
  }

  /** A read-only call: whatever it does is undone. */
  async view(p: {
    from: Uint8Array
    to: Uint8Array
    data: Uint8Array
    gasLimit: bigint
    block: BlockContext
  }): Promise<ExecResult> {
    const depth = this.sm.depth
    this.sm.checkpointNow()
    try {
      return await this.run({ ...p, value: 0n })
    } finally {
      // The keys the view wrote leave the change set again.
      this.sm.revertTo(depth)
    }
  }

  // ---------------------------------------------------------------- accounts

  private acct(a: Uint8Array): AccountState {
    return this.sm.getAccountState(hex(a)) ?? { nonce: 0n, balance: 0n, codeHash: KECCAK256_NULL }
  }

  getNonce(a: Uint8Array): bigint {
    return this.acct(a).nonce
  }

  setNonce(a: Uint8Array, nonce: bigint): void {
    if (nonce < 0n || nonce >= 1n << 64n)
      throw new ProtocolError('OUT_OF_RANGE', `nonce ${nonce} out of range`)
    this.sm.setAccountState(hex(a), { ...this.acct(a), nonce })
  }

  /**
   * Sets `a`'s nonce back to `nonce`, which `setNonce` raised from it; an account that
   * `existed` not before is removed again, so no empty account is left in the state.
   */
  restoreNonce(a: Uint8Array, nonce: bigint, existed: boolean): void {
    if (existed) this.setNonce(a, nonce)
    else this.sm.setAccountState(hex(a), undefined)
  }

  /** Whether `a` is in the state (an account with fields, even all zero). */
  hasAccount(a: Uint8Array): boolean {
    return this.sm.getAccountState(hex(a)) !== undefined
  }

  getBalance(a: Uint8Array): bigint {
    return this.acct(a).balance
  }

  credit(a: Uint8Array, amount: bigint): void {
    assertAmount(amount, 'amount')
    const cur = this.acct(a)
    assertAmount(cur.balance + amount, 'balance')
    this.sm.setAccountState(hex(a), { ...cur, balance: cur.balance + amount })
  }

  debit(a: Uint8Array, amount: bigint): void {
    assertAmount(amount, 'amount')
    const cur = this.acct(a)
    if (cur.balance < amount)
      throw new ProtocolError('OUT_OF_RANGE', `balance ${cur.balance} is below ${amount}`)
    this.sm.setAccountState(hex(a), { ...cur, balance: cur.balance - amount })
  }

  /** Places runtime code at an address (the system contract at genesis). */
  installCode(address: Uint8Array, code: Uint8Array): void {
    const key = hex(address)
    this.sm.setCode(key, code)
    this.sm.setAccountState(key, { ...this.acct(address), codeHash: keccak256(code) })
  }

  /** A storage word as an integer. */
  getStorageWord(address: Uint8Array, slot: bigint): bigint {
    return wordToUint(this.sm.getSlot(hex(address), this.slotKey(slot)))
  }

  /**
   * Storage keys of the slots the enclave reads itself (its system slots, read for every
   * transaction): their hex strings kept, not made again on every read.
   */
  private readonly slotKeys = new Map<bigint, string>()

  private slotKey(slot: bigint): string {
    let k = this.slotKeys.get(slot)
    if (k === undefined) {
      k = hex(uintToWord(slot))
      if (this.slotKeys.size < 64) this.slotKeys.set(slot, k)
    }
    return k
  }

  setStorageWord(address: Uint8Array, slot: bigint, value: bigint): void {
    const key = hex(address)
    if (!this.sm.getAccountState(key)) this.sm.setAccountState(key, this.acct(address))
    this.sm.setSlot(key, this.slotKey(slot), uintToWord(value))
  }

  // ---------------------------------------------------------------- replication

  /** `digestKey ‖ 1 ‖ address ‖ nonce ‖ balance ‖ codeHash`, hashed: an account's leaf. */
  private leafAccount(key: string, a: AccountState): Uint8Array {
    const b = this.leafInput(1, key)
    b.fill(0, 53, 117)
    setUintWord(this.leafView, 53, a.nonce, 'nonce')
    setUintWord(this.leafView, 85, a.balance, 'balance')
    b.set(a.codeHash, 117)
    return keccak256(b)
  }

  /** `digestKey ‖ 2 ‖ address ‖ slot ‖ value`, hashed: a non-zero storage slot's leaf. */
  private leafSlot(key: string, slot: string, value: Uint8Array): Uint8Array {
    const b = this.leafInput(2, key)
    const slotBytes = slot.length >>> 1
    if (slotBytes > 32 || value.length > 32)
      throw new ProtocolError('INTERNAL', 'state digest: a storage key or value over 32 bytes')
    b.fill(0, 53, 117)
    b.write(slot, 85 - slotBytes, slotBytes, 'hex')
    b.set(value, 117 - value.length)
    return keccak256(b.subarray(0, 117))
  }

  /** The account whose address the leaf buffer holds: a fold visits an account's slots in a row. */
  private leafKey: string | undefined

  /** The leaf buffer with its tag and address written (the digest key stays in place). */
  private leafInput(tag: number, key: string): Buffer {
    const b = this.leaf
    b[32] = tag
    if (key !== this.leafKey) {
      b.fill(0, 33, 53)
      b.write(key, 33, 20, 'hex')
      this.leafKey = key
    }
    return b
  }

  /**
   * Leaf hashes the digest holds for recently changed accounts and slots, each with what it
   * hashed: when a key changes again, its earlier leaf is subtracted without hashing it a second
   * time (a transfer's sender and its two balances, on every member, in every batch). An entry
   * is used only if what it hashed equals the value being subtracted, so a stale one only
   * misses. At most `LEAF_CACHE_MAX` entries; cleared when full, and not filled by a fold of
   * more changes than half of that (a state handover).
   */
  private readonly accountLeaves = new Map<string, AccountLeaf>()
  private readonly slotLeaves = new Map<string, Map<string, SlotLeaf>>()
  private cachedLeaves = 0

  /** Leaf hashes the cache holds (tests check its bound). */
  leafCacheSize(): number {
    let n = this.accountLeaves.size
    for (const m of this.slotLeaves.values()) n += m.size
    return n
  }

  private makeRoom(): void {
    if (++this.cachedLeaves <= LEAF_CACHE_MAX) return
    this.accountLeaves.clear()
    this.slotLeaves.clear()
    this.cachedLeaves = 1
  }

  /** `leafAccount`, from the cache when it holds this key's leaf for exactly these fields. */
  private accountLeafOf(key: string, a: AccountState): Uint8Array {
    const e = this.accountLeaves.get(key)
    return e !== undefined && sameAccount(e, a) ? e.leaf : this.leafAccount(key, a)
  }

  private keepAccountLeaf(key: string, a: AccountState, keep: boolean): Uint8Array {
    const leaf = this.leafAccount(key, a)
    if (keep) {
      if (!this.accountLeaves.has(key)) this.makeRoom()
      this.accountLeaves.set(key, {
        nonce: a.nonce,
        balance: a.balance,
        codeHash: a.codeHash,
        leaf,
      })
    }
    return leaf
  }

  /** `leafSlot`, from the cache when it holds this slot's leaf for exactly this value. */
  private slotLeafOf(key: string, slot: string, value: Uint8Array): Uint8Array {
    const e = this.slotLeaves.get(key)?.get(slot)
    if (e !== undefined && Buffer.compare(e.value, value) === 0) return e.leaf
    return this.leafSlot(key, slot, value)
  }

  private keepSlotLeaf(key: string, slot: string, value: Uint8Array, keep: boolean): Uint8Array {
    const leaf = this.leafSlot(key, slot, value)
    if (keep) {
      let m = this.slotLeaves.get(key)
      if (m === undefined) {
        m = new Map()
        this.slotLeaves.set(key, m)
      }
      if (!m.has(slot)) this.makeRoom()
      // A copy: the cache must not see a later change to the array the state holds.
      m.set(slot, { value: value.slice(), leaf })
    }
    return leaf
  }

  /**
   * Folds changes into the digest and, when `build`, returns the write set of what really
   * changed (a member applying a write set needs only the digest).
   */
  private fold(c: Changes, build: true): WriteSet
  private fold(c: Changes, build: false): undefined
  private fold(c: Changes, build: boolean): WriteSet | undefined {
    const accounts: AccountWrite[] = []
    const deleted: Uint8Array[] = []
    const sum = this.digestSum
    let changes = c.accounts.size
    for (const m of c.slots.values()) changes += m.size
    const keep = changes <= LEAF_CACHE_MAX / 2
    for (const [key, before] of c.accounts) {
      const now = this.sm.getAccountState(key)
      const fieldsChanged = !before || !now || !sameAccount(before, now)
      // An account whose fields are as they were keeps its leaf: subtracting and adding it
      // again would leave the digest as it is.
      if (fieldsChanged) {
        if (before) sum.sub(this.accountLeafOf(key, before))
        if (now) sum.add(this.keepAccountLeaf(key, now, keep))
      }
      const slotChanges = c.slots.get(key)
      const storage: Array<[Uint8Array, Uint8Array]> = []
      for (const [slot, old] of slotChanges ?? []) {
        const cur = this.sm.getSlot(key, slot)
        const oldS = stripZeros(old)
        if (Buffer.compare(oldS, cur) === 0) continue // the same leaf, or none before and after
        if (oldS.length > 0) sum.sub(this.slotLeafOf(key, slot, oldS))
        if (cur.length > 0) sum.add(this.keepSlotLeaf(key, slot, cur, keep))
        if (build) storage.push([pad32(unhexKey(slot)), pad32(cur)])
      }
      if (!build) continue
      if (!now) {
        if (before) deleted.push(unhexKey(key))
        continue
      }
      const codeChanged = c.code.has(key)
      if (!fieldsChanged && !codeChanged && storage.length === 0) continue
      const w: AccountWrite = {
        address: unhexKey(key),
        nonce: now.nonce,
        balance: now.balance,
        storage,
      }
      if (codeChanged) w.code = this.sm.code.get(key) ?? new Uint8Array()
      accounts.push(w)
    }
    return build ? canonicalizeWriteSet({ accounts, deleted }) : undefined
  }

  /**
   * A bound on the bytes of the write set the changes since the last take make, without its
   * frame (WRITE_SET_FRAME_BYTES): the write set `takeWriteSet` would return is never larger.
   */
  pendingWriteSetBytes(): number {
    return this.sm.changeBytes
  }

  /** The changes since the last take, as a canonical write set; updates the digest. */
  takeWriteSet(): WriteSet {
    return this.fold(this.sm.takeChanges(), true)
  }

  /**
   * Applies a write set made by `takeWriteSet` on another world with the same prior state, and
   * keeps it only if the state it leads to has the digest `expected` (the one the update
   * carries): otherwise the world is left as it was, digest included, and INTERNAL is thrown.
   * A member whose state diverged thus rejects the update without taking it in part, and
   * applies the right one if it comes. Only for a world with no changes of its own pending (a
   * member that applies updates): pending changes would be folded in and, on a rejection,
   * their share of the digest put back while the changes stay.
   */
  applyCheckedWriteSet(ws: WriteSet, expected: Uint8Array, what: string): void {
    const sum = this.digestSum.save()
    this.sm.checkpointNow()
    let ok = false
    try {
      this.applyWriteSet(ws)
      ok = equalBytes(this.digest(), expected)
    } finally {
      if (ok) this.sm.commitNow()
      else {
        this.sm.revertNow()
        this.digestSum.restore(sum)
      }
    }
    if (!ok)
      throw new ProtocolError('INTERNAL', `${what}: state digest differs from the executor's`)
  }

  /** Applies a write set made by `takeWriteSet` on another world with the same prior state. */
  applyWriteSet(ws: WriteSet): void {
    for (const d of ws.deleted) {
      const key = hex(d)
      this.sm.setAccountState(key, undefined)
      if (this.sm.code.has(key)) this.sm.setCode(key, new Uint8Array())
      this.sm.clearSlots(key)
    }
    for (const a of ws.accounts) {
      const key = hex(a.address)
      const cur = this.sm.getAccountState(key)
      const codeHash = a.code
        ? a.code.length === 0
          ? KECCAK256_NULL
          : keccak256(a.code)
        : (cur?.codeHash ?? KECCAK256_NULL)
      if (a.code) this.sm.setCode(key, a.code)
      this.sm.setAccountState(key, { nonce: a.nonce, balance: a.balance, codeHash })
      for (const [slot, value] of a.storage) this.sm.setSlot(key, hex(slot), value)
    }
    this.fold(this.sm.takeChanges(), false)
  }

  /** The whole state as one write set (handover to a new member). */
  snapshot(): WriteSet {
    const accounts: AccountWrite[] = []
    for (const [key, a] of this.sm.accounts) {
      const storage: Array<[Uint8Array, Uint8Array]> = []
      for (const [slot, v] of this.sm.storage.get(key) ?? [])
        storage.push([pad32(unhexKey(slot)), pad32(v)])
      const w: AccountWrite = {
        address: unhexKey(key),
        nonce: a.nonce,
        balance: a.balance,
        storage,
      }
      const code = this.sm.code.get(key)
      if (code) w.code = code
      accounts.push(w)
    }
    return canonicalizeWriteSet({ accounts, deleted: [] })
  }

  /** 32-byte keyed digest of the state as of the last take or apply. */
  digest(): Uint8Array {
    return this.digestSum.toWord()
  }

  /** Every account without code, with its balance (whom final balances may name). */
  accountsWithoutCode(): Array<{ address: Uint8Array; balance: bigint }> {
    const out: Array<{ address: Uint8Array; balance: bigint }> = []
    for (const [key, a] of this.sm.accounts) {
      if (!this.sm.code.get(key)) out.push({ address: unhexKey(key), balance: a.balance })
    }
    return out
  }

  stateSize(): { accounts: number; slots: number } {
    let slots = 0
    for (const m of this.sm.storage.values()) slots += m.size
    return { accounts: this.sm.accounts.size, slots }
  }
}
