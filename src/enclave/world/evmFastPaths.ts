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
 * - MSTORE: the package turns the word into bytes through a hex string and pads them to 32 bytes
 *   by spreading two arrays into an array literal (≈ 1 µs); here the word's bytes are written
 *   directly (`uintToWord` of src/protocol). Its gas handler is the package's.
 *
 * The storage manager's side of the same cost is `paddedStorage` (./journaledStateManager.ts).
 */
import type { Common } from '@ethereumjs/common'
import { type EVM, EVMError, type Message } from '@ethereumjs/evm'
import { Account, createZeroAddress } from '@ethereumjs/util'
import { uintToWord } from '../../protocol/index.ts'

/** What `runInterpreter` returns (the package's `ExecResult`). */
type FrameResult = Awaited<ReturnType<EVM['runCall']>>['execResult']

/** The package's interpreter, as far as a call frame uses it. */
type Interp = {
  _env: unknown
  _result: {
    logs: unknown[]
    returnValue?: Uint8Array | undefined
    selfdestruct: unknown
    createdAddresses?: unknown
  }
  run(
    code: Uint8Array | undefined,
    opts: object,
  ): Promise<{
    runState: { gasLeft: bigint; gasRefund?: bigint; stateGasSpilled?: bigint }
    exceptionError?: EVMError
  }>
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
  opts: { initialLogs?: unknown } = {},
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
  const res = await interpreter.run(m.code as Uint8Array | undefined, opts)
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
