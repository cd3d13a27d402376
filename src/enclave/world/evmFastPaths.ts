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
 * - MSTORE: the package turns the word into bytes through a hex string and pads them to 32 bytes
 *   by spreading two arrays into an array literal (≈ 1 µs); here the word's bytes are written
 *   directly (`uintToWord` of src/protocol). Its gas handler is the package's.
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
import { uintToWord } from '../../protocol/index.ts'

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
type MstoreState = {
  stack: { popN(n: number): bigint[] }
  memory: { write(offset: number, size: number, value: Uint8Array): void }
}

/**
 * Replaces the MSTORE handler in `evm`'s opcode table (the table is the EVM's own, rebuilt by the
 * package only when the hardfork changes). Returns false, changing nothing, when the table's
 * MSTORE entry is not the package's synchronous handler with a gas handler.
 */
export function fastMstore(evm: EVM): boolean {
  const table = (evm as unknown as { _opcodeMap?: OpcodeEntry[] })._opcodeMap
  const entry = table?.[0x52]
  if (
    !table ||
    !entry ||
    entry.opcodeInfo?.name !== 'MSTORE' ||
    entry.opcodeInfo.isAsync !== false ||
    typeof entry.opHandler !== 'function' ||
    typeof entry.gasHandler !== 'function'
  )
    return false
  table[0x52] = {
    ...entry,
    opHandler: function mstore(runState: MstoreState): void {
      const [offset, value] = runState.stack.popN(2) as [bigint, bigint]
      runState.memory.write(Number(offset), 32, uintToWord(value))
    },
  }
  return true
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
