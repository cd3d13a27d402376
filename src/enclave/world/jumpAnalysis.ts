/**
 * One jump analysis per contract code, not per call. `@ethereumjs/evm` analyses a contract's
 * whole code on every call that jumps: the opcode of every byte, every PUSH value as a bigint,
 * the JUMPDEST map. The result depends only on the code and the EVM's opcode table, and the
 * interpreter only reads it. Code does not change once stored (the state manager keeps its own
 * copy and hands out that same array on every call), so the analysis is kept per code array and
 * opcode table, in weak maps: code that is no longer held (a replaced world, a deploy's creation
 * code) takes its analysis with it. The price is memory: an analysis holds a pointer per code
 * byte and the PUSH values, roughly ten times the code it describes, for as long as the code is
 * held.
 *
 * The interpreter class is not exported by the package; `cacheJumpAnalysis` is given an
 * interpreter from a finished run (`execResult.runState.interpreter`) and wraps its class's
 * analysis once for the process.
 */

type Analyse = (this: AnalysingInterpreter, code: Uint8Array) => unknown
type AnalysingInterpreter = { _evm?: { _opcodeMap?: object } }

const analyses = new WeakMap<object, WeakMap<Uint8Array, unknown>>()
let wrapped: Analyse | undefined
/** Analyses run and analyses reused since the process started (tests, diagnostics). */
export const jumpAnalysisCounts = { analysed: 0, reused: 0 }

/** Whether the interpreter class analyses jumps through the cache (tests, diagnostics). */
export function jumpAnalysisCached(): boolean {
  return wrapped !== undefined
}

/** Wraps the analysis of `interpreter`'s class, once; later calls return at once. */
export function cacheJumpAnalysis(interpreter: unknown): void {
  if (wrapped || typeof interpreter !== 'object' || interpreter === null) return
  const proto = Object.getPrototypeOf(interpreter) as { _getValidJumpDestinations?: Analyse }
  const analyse = proto?._getValidJumpDestinations
  // Another version of the package may analyse differently: then every call analyses again.
  if (typeof analyse !== 'function' || analyse.length !== 1) return
  wrapped = function cachedJumpAnalysis(this: AnalysingInterpreter, code: Uint8Array) {
    const table = this._evm?._opcodeMap
    if (!table) return analyse.call(this, code)
    let byCode = analyses.get(table)
    if (!byCode) {
      byCode = new WeakMap()
      analyses.set(table, byCode)
    }
    let a = byCode.get(code)
    if (a === undefined) {
      a = analyse.call(this, code)
      byCode.set(code, a)
      jumpAnalysisCounts.analysed++
    } else jumpAnalysisCounts.reused++
    return a
  }
  proto._getValidJumpDestinations = wrapped
}
