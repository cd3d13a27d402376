/**
 * Chain reorganisations on anvil (`anvil_reorg`): the last `depth` blocks are replaced by new
 * blocks that carry the same signed transactions, with senders interleaved in a seeded order
 * (each sender's nonces stay in order) and spread over different heights. Block hashes,
 * numbers and timestamps of those transactions change, and so may the order of the manager's
 * events, as in a reorganisation on a live chain where the dropped transactions return from
 * the mempool.
 */

/** A JSON-RPC call to the chain (`anvilRpcAt` against the devnet's anvil). */
export type Rpc = (method: string, params: unknown[]) => Promise<unknown>

/** How long the simulator waits for one answer of anvil. */
export const RPC_TIMEOUT_MS = 30_000

/**
 * JSON-RPC calls to anvil at `url`, each given up after `RPC_TIMEOUT_MS`: src/devnet's
 * `anvilRpc` sets no timeout, and a hung call would hold the block clock (and every fault
 * waiting on it) for good.
 */
export function anvilRpcAt(url: string): Rpc {
  return async (method, params) => {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
      signal: AbortSignal.timeout(RPC_TIMEOUT_MS),
    })
    const json = (await res.json()) as { result?: unknown; error?: { message: string } }
    if (json.error) throw new Error(`${method}: ${json.error.message}`)
    return json.result
  }
}

type RpcTx = { hash: `0x${string}`; from: string; nonce: string }
type RpcBlock = { transactions: RpcTx[] }

export async function reorgChain(
  rpc: Rpc,
  depth: number,
  random: () => number,
): Promise<{ depth: number; moved: number }> {
  // A block mined between reading the range and replacing it would be replaced unread and its
  // transactions dropped for good (outside the model): read again if the head moved.
  let head = 0
  let bySender = new Map<string, Array<`0x${string}`>>()
  for (let attempt = 0; ; attempt++) {
    head = await blockNumber(rpc)
    if (depth < 1 || depth >= head) return { depth: 0, moved: 0 }
    bySender = new Map()
    for (let n = head - depth + 1; n <= head; n++) {
      const block = (await rpc('eth_getBlockByNumber', [`0x${n.toString(16)}`, true])) as RpcBlock
      for (const tx of block.transactions) {
        const raw = (await rpc('eth_getRawTransactionByHash', [tx.hash])) as `0x${string}`
        const q = bySender.get(tx.from) ?? []
        q.push(raw)
        bySender.set(tx.from, q)
      }
    }
    if ((await blockNumber(rpc)) === head) break
    if (attempt === 4) return { depth: 0, moved: 0 }
  }
  // Interleave senders at random, keeping each sender's own order (nonces).
  const queues = [...bySender.values()]
  const order: Array<`0x${string}`> = []
  while (queues.some((q) => q.length > 0)) {
    const open = queues.filter((q) => q.length > 0)
    order.push(open[Math.floor(random() * open.length)]!.shift()!)
  }
  // Non-decreasing heights within the replaced range.
  let at = 0
  const pairs = order.map((raw) => {
    if (random() < 0.5) at = Math.min(depth - 1, at + 1)
    return [raw, at] as const
  })
  await rpc('anvil_reorg', [depth, pairs])
  return { depth, moved: order.length }
}

/**
 * Replaces every block from block `from` on, as `reorgChain` does, if they are at most `maxDepth`
 * blocks; otherwise nothing (`depth` 0). Run it with mining paused, so the head cannot move
 * between the count and the replacement.
 */
export async function reorgFrom(
  rpc: Rpc,
  from: number,
  maxDepth: number,
  random: () => number,
): Promise<{ depth: number; moved: number }> {
  const depth = (await blockNumber(rpc)) - from + 1
  return depth <= maxDepth ? reorgChain(rpc, depth, random) : { depth: 0, moved: 0 }
}

async function blockNumber(rpc: Rpc): Promise<number> {
  return Number(BigInt((await rpc('eth_blockNumber', [])) as string))
}
