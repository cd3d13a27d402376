/**
 * Faster paths through `@ethereumjs/evm` 10.1 for the world's EVM. Each does what the package does,
 * without a cost the package pays on every call or opcode; `World.create({ fastPaths: false })`
 * runs the package as shipped, and test/unit/evmFastPaths.test.ts runs the same programs both
 * ways and compares every outcome (status, return data, logs, gas, write set, digest).
 *
 * - The call frame's result (`runInterpreter`): the package returns
 *   `{ ...result, runState: { ...runState, ...result, ...env } }`; V8 (Node 20) builds such a
 *   merge of three objects of 4–19 properties by adding the later ones one at a time through its
 *   runtime, ≈ 45–60 µs per call frame, as long as the rest of an ERC-20 transfer's call. Here the
 *   result has a fixed shape, and its `runState` is the interpreter's own run state (`env` under
 *   `.env`) instead of that merged copy; nothing in the package reads `execResult.runState`.
 * - `common.isActivatedEIP`: the package scans an array of EIP numbers, several times per
 *   opcode; here a set built from that same array (rebuilt when the array is replaced).
 * - The opcode loop (`Interpreter.run`): the package awaits an async `runStep` for every opcode
 *   (a promise and a microtask each, and another await inside for every handler the table marks
 *   async, though CALLER or CALLDATALOAD return nothing); here each step runs inline and awaits
 *   only a real promise: a dynamic gas handler's (20 of an ERC-20 transfer's 206 opcodes) or an
 *   asynchronous handler's (SLOAD, SSTORE, CALL, …).
 * - Opcodes that convert between stack words and bytes (`fastOpcodes`: KECCAK256, ADDRESS,
 *   CALLER, CALLDATALOAD, MLOAD, MSTORE, SLOAD, SSTORE, LOG0–4): the package goes through a hex
 *   string for each word (`bigIntToBytes`, `bytesToBigInt`) and pads by spreading two arrays
 *   into an array literal (≈ 1 µs and several allocations a word); here the protocol's word
 *   conversions (`uintToWord`, `wordToUint`) do it. Their gas handlers are the package's but for
 *   SLOAD's and SSTORE's (`GAS_HANDLERS`, EIPs 2200 and 2929 in Cancun), which convert the key
 *   the same way and pad each stored value to a word by spreading arrays.
 * - The journal's EIP-2929 warm sets (`fastJournal`): keyed by hex strings the package builds two
 *   characters at a time; here with the protocol's `bytesToUnprefixedHex`.
 * - A message call (`EVM._executeCall`): the package hands the frame a copy of the message,
 *   `{ ...{ codeAddress }, ...message, gasLimit }`, which V8 builds property by property in
 *   dictionary mode and places in the old generation: ≈ 7 KB per transfer that only a full
 *   collection frees (the bare EVM ran 28 % faster without it, bench/README.md). Here the
 *   frame reads the message itself: without the EIPs that change a call's gas before its frame
 *   (`executeCallPorted`), the copy differs from it only in holding `codeAddress` as its own
 *   property, and neither the frame nor anything after it writes to either.
 *
 * The storage manager's side of the same cost is `paddedStorage` (./journaledStateManager.ts).
 */
import type { Common } from '@ethereumjs/common'
import { type EVM, EVMError, type Message } from '@ethereumjs/evm'
import { Account, createZeroAddress, EthereumJSErrorWithoutCode } from '@ethereumjs/util'
import {
  bytesToUnprefixedHex,
  uintToKeptWord,
  uintToWord,
  wordToUint,
} from '../../protocol/index.ts'

/** What `runInterpreter` returns (the package's `ExecResult`). */
type FrameResult = Awaited<ReturnType<EVM['runCall']>>['execResult']
/** What `_executeCall` returns (the package's `EVMResult`). */
type CallResult = Awaited<ReturnType<EVM['runCall']>>

/** The package's interpreter, as far as a call frame uses it. */
type Interp = {
  _env: unknown
  _result: {
    logs: unknown[]
    returnValue?: Uint8Array | undefined
    selfdestruct: unknown
    createdAddresses?: unknown
  }
  run(code: Uint8Array | undefined, opts: object): Promise<CodeResult>
  runStep(op?: OpEntry): Promise<void>
  useGas(amount: bigint, context?: unknown): void
  lookupOpInfo(op: number): OpEntry
  _getValidJumpDestinations(code: Uint8Array): {
    jumps: Uint8Array
    pushes: unknown
    opcodesCached: OpEntry[]
  }
  _runState: RunState
  profilerOpts?: { enabled?: boolean }
}
type CodeResult = { runState: RunState; exceptionError?: EVMError | undefined }

/** An entry of the EVM's opcode table (`_opcodeMap`). */
type OpEntry = {
  opcodeInfo: {
    code: number
    name: string
    feeBigInt: bigint
    dynamicGas: boolean
    isAsync: boolean
    isInvalid: boolean
  }
  opHandler: (runState: RunState, common: Common) => unknown
  /** Present for an opcode with dynamic gas: the charge, from the opcode's base fee. */
  gasHandler?: (runState: RunState, gas: bigint, common: Common) => Promise<bigint>
}

/** The interpreter's run state, as far as the loop uses it. */
type RunState = {
  programCounter: number
  opCode: number
  code: Uint8Array
  gasLeft: bigint
  gasRefund?: bigint
  stateGasSpilled?: bigint
  validJumps?: Uint8Array
  cachedPushes?: unknown
  shouldDoJumpAnalysis?: boolean
  eip7928PostTargetCallOog?: unknown
  eip8037BurnLeftoverAfterCreateHaltOntoAlive?: boolean
  env: { chargeCodeAccesses?: boolean; accessWitness?: { commit(): void; revert(): void } }
}
export type InterpreterClass = new (...args: unknown[]) => Interp

/** The fields of the package's EVM a call frame reads (internal to the package). */
type EvmInternals = {
  stateManager: { getAccount(a: unknown): Promise<Account | undefined> }
  blockchain: unknown
  journal: unknown
  performanceLogger: unknown
  _optsCached: { profiler?: unknown }
  _tx?: { gasPrice: bigint; origin?: unknown }
  _block?: unknown
}

const REVERT = EVMError.errorMessages.REVERT
const STOP = EVMError.errorMessages.STOP
const INVALID_OPCODE = EVMError.errorMessages.INVALID_OPCODE
const OUT_OF_GAS = EVMError.errorMessages.OUT_OF_GAS
const INVALID_EOF_FORMAT = EVMError.errorMessages.INVALID_EOF_FORMAT
const EMPTY = new Uint8Array(0)

/**
 * One call frame, as `EVM.runInterpreter` of `@ethereumjs/evm` 10.1 runs it, returning a result
 * of fixed shape (see the module comment). `Interpreter` is the package's interpreter class (not
 * exported by the package: taken from a frame run by the package itself).
 */
export async function runFrame(
  evm: EVM,
  Interpreter: InterpreterClass,
  message: Message,
  opts: { pc?: number; initialLogs?: unknown } = {},
): Promise<FrameResult> {
  const e = evm as unknown as EvmInternals
  const m = message as Message & {
    isCreate?: boolean
    chargeCodeAccesses?: boolean
    accessWitness?: { commit(): void }
  }
  if (!e._tx || !e._block) throw new Error('runFrame: no transaction or block context')
  const to = m.to ?? createZeroAddress()
  const contract = (await e.stateManager.getAccount(to)) ?? new Account()
  const env = {
    address: to,
    caller: m.caller ?? createZeroAddress(),
    callData: m.data ?? Uint8Array.from([0]),
    callValue: m.value ?? 0n,
    code: m.code,
    isStatic: m.isStatic ?? false,
    isCreate: m.isCreate ?? false,
    depth: m.depth ?? 0,
    gasPrice: e._tx.gasPrice,
    origin: e._tx.origin ?? m.caller ?? createZeroAddress(),
    block: e._block,
    contract,
    codeAddress: m.codeAddress,
    gasRefund: m.gasRefund,
    chargeCodeAccesses: m.chargeCodeAccesses,
    blobVersionedHashes: m.blobVersionedHashes ?? [],
    accessWitness: m.accessWitness,
    createdAddresses: m.createdAddresses,
    initialLogs: opts.initialLogs,
  }
  const interpreter = new Interpreter(
    evm,
    e.stateManager,
    e.blockchain,
    env,
    m.gasLimit,
    e.journal,
    e.performanceLogger,
    e._optsCached.profiler,
  )
  if (m.selfdestruct) interpreter._result.selfdestruct = m.selfdestruct
  if (m.createdAddresses) interpreter._result.createdAddresses = m.createdAddresses
  const res = await runCode(evm, interpreter, m.code as Uint8Array | undefined, opts)
  let result = interpreter._result
  let gasUsed = m.gasLimit - res.runState.gasLeft
  const err = res.exceptionError
  if (err) {
    if (err.error !== REVERT && err.error !== INVALID_EOF_FORMAT) gasUsed = m.gasLimit
    result = {
      logs: [],
      returnValue: result.returnValue,
      selfdestruct: new Map(),
      createdAddresses: new Set(),
    }
  }
  m.accessWitness?.commit()
  return {
    logs: result.logs,
    returnValue: result.returnValue ?? EMPTY,
    selfdestruct: result.selfdestruct,
    createdAddresses: result.createdAddresses,
    runState: res.runState,
    exceptionError: err,
    gas: res.runState.gasLeft,
    executionGasUsed: gasUsed,
    gasRefund: res.runState.gasRefund,
    stateGasSpilled: res.runState.stateGasSpilled,
  } as FrameResult
}

/** The interpreter class behind a frame's result from the package's own `runInterpreter`. */
export function interpreterClassOf(result: FrameResult): InterpreterClass | undefined {
  const interp = (result.runState as { interpreter?: object } | undefined)?.interpreter
  const ctor = interp?.constructor as InterpreterClass | undefined
  return typeof ctor === 'function' && typeof ctor.prototype?.run === 'function' ? ctor : undefined
}

/** `common.isActivatedEIP` answered from a set over the common's own list of active EIPs. */
export function memoizeActivatedEips(common: Common): void {
  const c = common as unknown as { _activatedEIPsCache?: number[] }
  if (!Array.isArray(c._activatedEIPsCache)) return
  let list: number[] | undefined
  let set = new Set<number>()
  common.isActivatedEIP = (eip: number): boolean => {
    const now = c._activatedEIPsCache
    if (now !== list) {
      list = now
      set = new Set(now)
    }
    return set.has(eip)
  }
}

type OpcodeEntry = {
  opcodeInfo?: { name?: string; isAsync?: boolean }
  opHandler?: unknown
  gasHandler?: unknown
}

/** What the replaced handlers use of the package's run state. */
type OpState = {
  opCode: number
  stack: {
    pop(): bigint
    popN(n: number): bigint[]
    push(v: bigint): void
    peek(n?: number): bigint[]
  }
  memory: {
    read(offset: number, size: number, avoidCopy?: boolean): Uint8Array
    write(offset: number, size: number, value: Uint8Array): void
  }
  interpreter: {
    _env: { address: { bytes: Uint8Array }; caller: { bytes: Uint8Array } }
    getCallData(): Uint8Array
    storageLoad(key: Uint8Array, original?: boolean, trackBAL?: boolean): Promise<Uint8Array>
    storageStore(key: Uint8Array, value: Uint8Array): Promise<void>
    log(data: Uint8Array, topicsCount: number, topics: Uint8Array[]): void
    getAddress(): { bytes: Uint8Array }
    getGasLeft(): bigint
    isStatic(): boolean
    refundGas(amount: bigint, context?: string): void
    subRefund(amount: bigint, context?: string): void
    journal: {
      isWarmedStorage(address: Uint8Array, slot: Uint8Array): boolean
      addWarmedStorage(address: Uint8Array, slot: Uint8Array): void
    }
  }
}

/** CALLDATALOAD's word past the end of the call data: the rest zero. */
const padded = new Uint8Array(32)

/**
 * Handlers of the package's opcode table that turn stack words into bytes and back through hex
 * strings (`bigIntToBytes`, `bytesToBigInt`, `setLengthLeft`: ≈ 1 µs and several allocations per
 * conversion), here with the protocol's word conversions (`uintToWord`, `wordToUint`) instead.
 * Each does what the package's handler does in a fork without EIPs 8037 (state gas) and 7928
 * (block access lists) beyond that; its gas handler stays the package's (SLOAD's and SSTORE's:
 * see `GAS_HANDLERS`). MSTORE writes its word through the kept word (`uintToKeptWord`;
 * `Memory.write` copies it); KECCAK256 hashes memory in place.
 */
const HANDLERS: Record<number, { name: string; isAsync: boolean; handler: unknown }> = {
  32: {
    name: 'KECCAK256',
    isAsync: false,
    handler: function keccak256Op(rs: OpState, common: Common): void {
      const [offset, length] = rs.stack.popN(2) as [bigint, bigint]
      const data = length === 0n ? EMPTY : rs.memory.read(Number(offset), Number(length), true)
      rs.stack.push(wordToUint(common.customCrypto.keccak256!(data)))
    },
  },
  48: {
    name: 'ADDRESS',
    isAsync: false,
    handler: function address(rs: OpState): void {
      rs.stack.push(wordToUint(rs.interpreter._env.address.bytes))
    },
  },
  51: {
    name: 'CALLER',
    isAsync: false,
    handler: function caller(rs: OpState): void {
      rs.stack.push(wordToUint(rs.interpreter._env.caller.bytes))
    },
  },
  53: {
    name: 'CALLDATALOAD',
    isAsync: false,
    handler: function calldataload(rs: OpState): void {
      const pos = rs.stack.pop()
      const data = rs.interpreter.getCallData()
      if (pos >= BigInt(data.length)) {
        rs.stack.push(0n)
        return
      }
      const i = Number(pos)
      const loaded = data.subarray(i, i + 32)
      if (loaded.length === 32) rs.stack.push(wordToUint(loaded))
      else {
        // Fewer than 32 bytes left: the word is padded with zeros on the right.
        padded.fill(0)
        padded.set(loaded)
        rs.stack.push(wordToUint(padded))
      }
    },
  },
  81: {
    name: 'MLOAD',
    isAsync: false,
    handler: function mload(rs: OpState): void {
      const pos = rs.stack.pop()
      rs.stack.push(wordToUint(rs.memory.read(Number(pos), 32, true)))
    },
  },
  82: {
    name: 'MSTORE',
    isAsync: false,
    handler: function mstore(rs: OpState): void {
      const [offset, value] = rs.stack.popN(2) as [bigint, bigint]
      rs.memory.write(Number(offset), 32, uintToKeptWord(value))
    },
  },
  84: {
    name: 'SLOAD',
    isAsync: true,
    handler: async function sload(rs: OpState): Promise<void> {
      const key = rs.stack.pop()
      const value = await rs.interpreter.storageLoad(uintToWord(key))
      rs.stack.push(value.length ? wordToUint(value) : 0n)
    },
  },
  85: {
    name: 'SSTORE',
    isAsync: true,
    handler: async function sstore(rs: OpState): Promise<void> {
      const [key, val] = rs.stack.popN(2) as [bigint, bigint]
      const keyBytes = uintToWord(key)
      // The value in its shortest form, as the package gives it (no bytes for zero).
      let value: Uint8Array
      if (val === 0n) value = new Uint8Array(0)
      else {
        const w = uintToKeptWord(val)
        let i = 0
        while (w[i] === 0) i++
        value = w.slice(i)
      }
      await rs.interpreter.storageStore(keyBytes, value)
    },
  },
  160: { name: 'LOG', isAsync: false, handler: log },
  161: { name: 'LOG', isAsync: false, handler: log },
  162: { name: 'LOG', isAsync: false, handler: log },
  163: { name: 'LOG', isAsync: false, handler: log },
  164: { name: 'LOG', isAsync: false, handler: log },
}

function log(rs: OpState): void {
  const [memOffset, memLength] = rs.stack.popN(2) as [bigint, bigint]
  const topicsCount = rs.opCode - 0xa0
  const topics = rs.stack.popN(topicsCount)
  const topicsBytes = topics.map((t) => uintToWord(t))
  // The log keeps its data: a copy of memory, not a view.
  const data =
    memLength === 0n ? new Uint8Array(0) : rs.memory.read(Number(memOffset), Number(memLength))
  rs.interpreter.log(data, topicsCount, topicsBytes)
}

/*
 * The dynamic gas of SLOAD and SSTORE (EIPs 2200, 2929 and 3529's parameters), as the package's
 * gas handlers charge it in a fork from Istanbul on with EIP 2929 and without EIPs 6800, 7864 and
 * 8038 (`storageGasPorted`). The package pads the key through a hex string (`bigIntToBytes`,
 * `setLengthLeft`) and each stored value to a word by spreading arrays (`setLengthLeftStorage`):
 * ≈ 13 KB of garbage per token transfer, a sixth of what the EVM allocates for it. Here the key
 * is the protocol's word and the values are compared as numbers: a value padded to a word, or
 * none for zero, is equal to another exactly when their numbers are.
 */

/** `accessStorageEIP2929` with gas charged: the slot warmed, cold or warm read charged. */
function accessStorage(rs: OpState, key: Uint8Array, isSstore: boolean, common: Common): bigint {
  const address = rs.interpreter.getAddress().bytes
  const journal = rs.interpreter.journal
  if (!journal.isWarmedStorage(address, key)) {
    journal.addWarmedStorage(address, key)
    return common.param('coldsloadGas')
  }
  return isSstore ? 0n : common.param('warmstoragereadGas')
}

/** `adjustSstoreGasEIP2929`: a noop or refund's cost when the slot is already warm. */
function adjustSstoreGas(
  rs: OpState,
  key: Uint8Array,
  defaultCost: bigint,
  costName: 'noop' | 'initRefund' | 'cleanRefund',
  common: Common,
): bigint {
  if (!rs.interpreter.journal.isWarmedStorage(rs.interpreter.getAddress().bytes, key))
    return defaultCost
  const warmRead = common.param('warmstoragereadGas')
  if (costName === 'noop') return warmRead
  if (costName === 'initRefund') return common.param('sstoreInitEIP2200Gas') - warmRead
  return common.param('sstoreResetGas') - common.param('coldsloadGas') - warmRead
}

/** `updateSstoreGasEIP2200` over the numbers of the current, original and new values. */
function sstoreNetGas(
  rs: OpState,
  current: bigint,
  original: bigint,
  value: bigint,
  key: Uint8Array,
  common: Common,
): bigint {
  const i = rs.interpreter
  if (i.getGasLeft() <= common.param('sstoreSentryEIP2200Gas')) throw new EVMError(OUT_OF_GAS)
  if (current === value)
    return adjustSstoreGas(rs, key, common.param('sstoreNoopEIP2200Gas'), 'noop', common)
  if (original === current) {
    if (original === 0n) return common.param('sstoreInitEIP2200Gas')
    if (value === 0n)
      i.refundGas(
        common.param('sstoreClearRefundEIP2200Gas'),
        'EIP-2200 -> sstoreClearRefundEIP2200',
      )
    return common.param('sstoreCleanEIP2200Gas')
  }
  if (original !== 0n) {
    if (current === 0n)
      i.subRefund(
        common.param('sstoreClearRefundEIP2200Gas'),
        'EIP-2200 -> sstoreClearRefundEIP2200',
      )
    else if (value === 0n)
      i.refundGas(
        common.param('sstoreClearRefundEIP2200Gas'),
        'EIP-2200 -> sstoreClearRefundEIP2200',
      )
  }
  if (original === value) {
    if (original === 0n) {
      const refund = common.param('sstoreInitRefundEIP2200Gas')
      i.refundGas(adjustSstoreGas(rs, key, refund, 'initRefund', common), 'EIP-2200 -> initRefund')
    } else {
      const refund = common.param('sstoreCleanRefundEIP2200Gas')
      i.refundGas(
        adjustSstoreGas(rs, key, refund, 'cleanRefund', common),
        'EIP-2200 -> cleanRefund',
      )
    }
  }
  return common.param('sstoreDirtyEIP2200Gas')
}

const STATIC_STATE_CHANGE = EVMError.errorMessages.STATIC_STATE_CHANGE

/** Gas handlers of the table (`gasHandler`), replaced when `storageGasPorted` holds. */
const GAS_HANDLERS: Record<number, (rs: OpState, gas: bigint, common: Common) => Promise<bigint>> =
  {
    84: async function sloadGas(rs, gas, common) {
      return gas + accessStorage(rs, uintToWord(rs.stack.peek()[0]!), false, common)
    },
    85: async function sstoreGas(rs, gas, common) {
      if (rs.interpreter.isStatic()) throw new EVMError(STATIC_STATE_CHANGE)
      const [key, value] = rs.stack.peek(2) as [bigint, bigint]
      const keyBytes = uintToWord(key)
      const current = wordToUint(await rs.interpreter.storageLoad(keyBytes, false, false))
      const original = wordToUint(await rs.interpreter.storageLoad(keyBytes, true, false))
      gas += sstoreNetGas(rs, current, original, value, keyBytes, common)
      return gas + accessStorage(rs, keyBytes, true, common)
    },
  }

/** Whether the storage gas handlers of `GAS_HANDLERS` charge what the package's do. */
export function storageGasPorted(common: Common): boolean {
  return (
    common.gteHardfork('istanbul') &&
    common.isActivatedEIP(2929) &&
    !common.isActivatedEIP(6800) &&
    !common.isActivatedEIP(7864) &&
    !common.isActivatedEIP(8038)
  )
}

/** Opcodes whose handler the table of a world's EVM holds, in the package as shipped. */
export const FAST_OPCODES = Object.keys(HANDLERS).map(Number)

/**
 * Replaces the handlers of `HANDLERS` in `evm`'s opcode table (the table is the EVM's own,
 * rebuilt by the package only when the hardfork changes; the entries' gas handlers stay). An
 * entry is left as it is unless it is the package's handler of that name (awaited, for an
 * asynchronous one); with EIP 8037 or 7928 active, or without a custom keccak256, nothing is
 * replaced. Returns the opcodes replaced.
 */
export function fastOpcodes(evm: EVM): number[] {
  const table = (evm as unknown as { _opcodeMap?: OpcodeEntry[] })._opcodeMap
  const common = (evm as unknown as { common: Common }).common
  if (
    !table ||
    common.isActivatedEIP(8037) ||
    common.isActivatedEIP(7928) ||
    typeof common.customCrypto.keccak256 !== 'function'
  )
    return []
  const replaced: number[] = []
  const portedGas = storageGasPorted(common)
  for (const op of FAST_OPCODES) {
    const entry = table[op]
    const fast = HANDLERS[op]!
    if (
      !entry ||
      entry.opcodeInfo?.name !== fast.name ||
      // A handler that returns a promise needs an entry the loop awaits.
      (fast.isAsync && entry.opcodeInfo.isAsync !== true) ||
      typeof entry.opHandler !== 'function'
    )
      continue
    const gasHandler = GAS_HANDLERS[op]
    table[op] =
      portedGas && gasHandler && typeof entry.gasHandler === 'function'
        ? { ...entry, opHandler: fast.handler, gasHandler }
        : { ...entry, opHandler: fast.handler }
    replaced.push(op)
  }
  return replaced
}

/** The package's `Journal`, as far as its warm sets go. */
type WarmJournal = {
  journal: Map<string, Set<string>>
  alwaysWarmJournal: Map<string, Set<string>>
  journalDiff: Array<[number, [Set<string>, Map<string, Set<string>>, ...unknown[]]]>
  accessList?: Map<string, Set<string>>
  isWarmedAddress(address: Uint8Array): boolean
  addWarmedAddress(address: Uint8Array): void
  isWarmedStorage(address: Uint8Array, slot: Uint8Array): boolean
  addWarmedStorage(address: Uint8Array, slot: Uint8Array): void
}

/**
 * The EIP-2929 warm sets of `evm`'s journal (`isWarmedAddress`, `addWarmedAddress`,
 * `isWarmedStorage`, `addWarmedStorage`) with the protocol's hex conversion for their keys: the
 * package's `bytesToUnprefixedHex` builds each string from two-character pieces, ≈ 0.4 µs and
 * as many intermediate strings as bytes, several times per SLOAD and SSTORE. The methods are
 * the package's, line for line, with that function replaced; the journal keeps its own class.
 */
export function fastJournal(evm: EVM): void {
  const j = (evm as unknown as { journal: WarmJournal }).journal
  j.isWarmedAddress = function isWarmedAddress(this: WarmJournal, address) {
    const addressHex = bytesToUnprefixedHex(address)
    return this.journal.has(addressHex) || this.alwaysWarmJournal.has(addressHex)
  }
  j.addWarmedAddress = function addWarmedAddress(this: WarmJournal, addressArr) {
    const address = bytesToUnprefixedHex(addressArr)
    if (!this.journal.has(address)) {
      this.journal.set(address, new Set())
      this.journalDiff[this.journalDiff.length - 1]![1][0].add(address)
    }
    if (this.accessList !== undefined && !this.accessList.has(address))
      this.accessList.set(address, new Set())
  }
  j.isWarmedStorage = function isWarmedStorage(this: WarmJournal, address, slot) {
    const addressHex = bytesToUnprefixedHex(address)
    const slots = this.journal.get(addressHex)
    if (slots === undefined) {
      const always = this.alwaysWarmJournal.get(addressHex)
      return always?.has(bytesToUnprefixedHex(slot)) === true
    }
    const slotHex = bytesToUnprefixedHex(slot)
    if (slots.has(slotHex)) return true
    const always = this.alwaysWarmJournal.get(addressHex)
    return always?.has(slotHex) === true
  }
  j.addWarmedStorage = function addWarmedStorage(this: WarmJournal, address, slot) {
    const addressHex = bytesToUnprefixedHex(address)
    let slots = this.journal.get(addressHex)
    if (slots === undefined) {
      this.addWarmedAddress(address)
      slots = this.journal.get(addressHex)!
    }
    const slotStr = bytesToUnprefixedHex(slot)
    if (!slots.has(slotStr)) {
      slots.add(slotStr)
      const addressSlotMap = this.journalDiff[this.journalDiff.length - 1]![1][1]
      let slotsSet = addressSlotMap.get(addressHex)
      if (slotsSet === undefined) {
        slotsSet = new Set()
        addressSlotMap.set(addressHex, slotsSet)
      }
      slotsSet.add(slotStr)
    }
    if (this.accessList !== undefined) this.accessList.get(addressHex)!.add(slotStr)
  }
}

const isThenable = (x: unknown): x is PromiseLike<unknown> =>
  typeof x === 'object' && x !== null && typeof (x as { then?: unknown }).then === 'function'

type EvmDebug = { DEBUG?: boolean; events?: { listenerCount(name: string): number } }

/**
 * A frame's code, as `Interpreter.run` of `@ethereumjs/evm` 10.1 runs legacy (non-EOF) code, with
 * each step as its `runStep` takes it (dynamic gas, the INVALID check, the charge, the program
 * counter, the handler) run inline: the package awaits an async `runStep` per opcode, a promise,
 * an argument array and a microtask each. Only a real promise is awaited. A step right after a
 * call that left an EIP-7928 out-of-gas pending goes through the package's `runStep`; EOF code,
 * step listeners, debug mode, the profiler and verkle code witnesses run the package's `run` as
 * shipped.
 */
async function runCode(
  evm: EVM,
  interp: Interp,
  code: Uint8Array | undefined,
  opts: { pc?: number },
): Promise<CodeResult> {
  const common = (evm as unknown as { common: Common }).common
  const debug = evm as unknown as EvmDebug
  const rs = interp._runState
  if (
    code === undefined ||
    (code[0] === 0xef && common.isActivatedEIP(3540)) ||
    interp.profilerOpts?.enabled === true ||
    debug.DEBUG === true ||
    (debug.events?.listenerCount('step') ?? 0) > 0 ||
    ((common.isActivatedEIP(6800) || common.isActivatedEIP(7864)) &&
      rs.env.chargeCodeAccesses === true)
  )
    return interp.run(code, opts)
  rs.code = code
  rs.programCounter = opts.pc ?? rs.programCounter
  const start = rs.programCounter
  if (start !== 0 && (start < 0 || start >= code.length))
    throw EthereumJSErrorWithoutCode('Internal error: program counter not in range')
  let err: EVMError | undefined
  let cached: OpEntry[] | undefined
  while (rs.programCounter < code.length) {
    const pc = rs.programCounter
    let opCode: number
    let entry: OpEntry | undefined
    if (cached === undefined) {
      opCode = code[pc]!
      // The jump analysis runs once the first JUMP/JUMPI/JUMPSUB is reached, as in the package.
      if (opCode === 0x56 || opCode === 0x57 || opCode === 0x5e) {
        const { jumps, pushes, opcodesCached } = interp._getValidJumpDestinations(code)
        rs.validJumps = jumps
        rs.cachedPushes = pushes
        rs.shouldDoJumpAnalysis = false
        cached = opcodesCached
      }
    } else {
      entry = cached[pc]!
      opCode = entry.opcodeInfo.code
    }
    rs.opCode = opCode
    try {
      const op = entry ?? interp.lookupOpInfo(opCode)
      const info = op.opcodeInfo
      if (rs.eip7928PostTargetCallOog !== undefined) {
        await interp.runStep(entry)
      } else {
        // `runStep`'s order: dynamic gas, the INVALID check, the charge, the counter, the handler.
        const gas = info.dynamicGas
          ? await op.gasHandler!(rs, info.feeBigInt, common)
          : info.feeBigInt
        if (info.isInvalid) throw new EVMError(INVALID_OPCODE)
        interp.useGas(gas, info)
        rs.programCounter++
        // Several handlers the table marks async return nothing (CALLER, CALLDATALOAD, …): only
        // a promise is awaited.
        const done = op.opHandler(rs, common)
        if (info.isAsync && isThenable(done)) await done
        rs.env.accessWitness?.commit()
      }
    } catch (e) {
      rs.env.accessWitness?.revert()
      // As the package: anything but an EVM error (a bug, not an outcome) propagates.
      if ((e as { errorType?: unknown }).errorType !== 'EVMError') throw e
      if ((e as EVMError).error !== STOP) err = e as EVMError
      break
    }
  }
  if (
    err === undefined &&
    rs.eip8037BurnLeftoverAfterCreateHaltOntoAlive === true &&
    rs.gasLeft > 0n
  ) {
    rs.gasLeft = 0n
    err = new EVMError(OUT_OF_GAS)
  }
  return { runState: rs, exceptionError: err }
}

/**
 * EIPs whose steps in `_executeCall` of `@ethereumjs/evm` 10.1 `executeCall` leaves out (access
 * witnesses, state gas for new accounts, delegations, block access lists, transfer logs): with
 * any of them active the package's own method runs. None is active in Cancun, the world's fork.
 */
const CALL_EIPS_LEFT_OUT = [6800, 7864, 2780, 7702, 7928, 7708] as const

/** Whether `executeCall` does all that the package's `_executeCall` does under `common`. */
export function executeCallPorted(common: Common): boolean {
  return CALL_EIPS_LEFT_OUT.every((eip) => !common.isActivatedEIP(eip))
}

/** The fields of the package's EVM a message call uses (internal to the package). */
type CallInternals = {
  stateManager: { getAccount(a: unknown): Promise<Account | undefined> }
  _reduceSenderBalance(account: Account, message: Message): Promise<void>
  _addToBalance(account: Account, message: Message): Promise<void>
  _loadCode(message: Message): Promise<void>
  runPrecompile(
    code: unknown,
    data: Uint8Array,
    gasLimit: bigint,
  ): Promise<FrameResult> | FrameResult
  runInterpreter(message: Message, opts: { initialLogs?: unknown }): Promise<FrameResult>
  postMessageCleanup(): void
}

/**
 * A message call as `EVM._executeCall` of `@ethereumjs/evm` 10.1 makes it when
 * `executeCallPorted` holds (and neither debug output nor the profiler is on, which the caller
 * checks): the value moves, the code loads, the frame runs through the EVM's `runInterpreter`
 * with the message itself (see the module comment), and the package's own clean-up follows a
 * top-level call.
 */
export async function executeCall(evm: EVM, message: Message): Promise<CallResult> {
  const e = evm as unknown as CallInternals
  const m = message as Message & { to: NonNullable<Message['to']> }
  const account = (await e.stateManager.getAccount(m.caller)) ?? new Account()
  let errorMessage: unknown
  if (!m.delegatecall) {
    try {
      await e._reduceSenderBalance(account, m)
    } catch (err) {
      errorMessage = err
    }
  }
  const toAccount = (await e.stateManager.getAccount(m.to)) ?? new Account()
  if (!m.delegatecall) {
    try {
      await e._addToBalance(toAccount, m)
    } catch (err) {
      errorMessage = err
    }
  }
  await e._loadCode(m)
  const code = m.code as Uint8Array | ((...args: unknown[]) => unknown) | undefined
  if (!code || (typeof code !== 'function' && code.length === 0) || errorMessage !== undefined) {
    // The package's early exit: no code, or the value could not move.
    return {
      execResult: {
        gasRefund: m.gasRefund,
        executionGasUsed: 0n,
        exceptionError: errorMessage,
        returnValue: EMPTY,
        logs: undefined,
      },
    } as unknown as CallResult
  }
  let result: FrameResult
  if (m.isCompiled) {
    result = await e.runPrecompile(code, m.data, m.gasLimit)
    result.gasRefund = m.gasRefund
  } else {
    result = await e.runInterpreter(m, { initialLogs: undefined })
  }
  if (m.depth === 0) e.postMessageCleanup()
  return { execResult: result } as CallResult
}
