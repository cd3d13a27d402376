import { type Abi, encodeFunctionData, type Hex, prepareEncodeFunctionData } from 'viem'

type Prepared = { abi: Abi; functionName: Hex }

/**
 * The functions of each ABI that have no overload, prepared once (viem's
 * `prepareEncodeFunctionData`: the function found by name and its selector): on a hot path viem
 * otherwise looks the function up, formats its signature and finds its selector again on every
 * call. `null` for a name to leave to viem each time (overloaded, or not in the ABI: viem then
 * picks the overload by the arguments, or throws its own error).
 */
const prepared = new WeakMap<Abi, Map<string, Prepared | null>>()

/** `encodeFunctionData({ abi, functionName, args })`, with the function prepared once per ABI. */
export function encodeCall(
  abi: Abi,
  functionName: string,
  args: readonly unknown[] | undefined,
): Hex {
  let byName = prepared.get(abi)
  if (!byName) {
    byName = new Map()
    prepared.set(abi, byName)
  }
  let p = byName.get(functionName)
  if (p === undefined) {
    const items = abi.filter((x) => x.type === 'function' && x.name === functionName)
    p =
      items.length === 1
        ? (prepareEncodeFunctionData({ abi, functionName } as never) as unknown as Prepared)
        : null
    if (byName.size < 1024) byName.set(functionName, p)
  }
  if (p === null) return encodeFunctionData({ abi, functionName, args } as never)
  return encodeFunctionData({ abi: p.abi, functionName: p.functionName, args } as never)
}
