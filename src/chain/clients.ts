/** viem clients for any EVM JSON-RPC endpoint (SPEC §2: Chain). */
import {
  type Account,
  type Chain,
  createPublicClient,
  createWalletClient,
  defineChain,
  http,
  type PublicClient,
  type RpcError,
  type Transport,
  type WalletClient,
} from 'viem'
import { nodeFetch } from './fetch.ts'

export type ChainClients = {
  chain: Chain
  publicClient: PublicClient<Transport, Chain>
  walletClient?: WalletClient<Transport, Chain, Account> | undefined
}

/** Learns the chain id from the endpoint and builds clients for it. */
export async function createChainClients(p: {
  rpcUrl: string
  account?: Account
  pollingIntervalMs?: number
}): Promise<ChainClients> {
  const probe = createPublicClient({
    transport: http(p.rpcUrl, { retryCount: 2, timeout: 10_000, fetchFn: nodeFetch }),
  })
  const chainId = await probe.getChainId()
  const chain = defineChain({
    id: chainId,
    name: chainId === 31337 ? 'anvil' : `chain-${chainId}`,
    nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 },
    rpcUrls: { default: { http: [p.rpcUrl] } },
  })
  const transport = retryingStaleHeads(
    http(p.rpcUrl, { retryCount: 3, timeout: 20_000, fetchFn: nodeFetch }),
  )
  const pollingInterval = p.pollingIntervalMs ?? 250
  const publicClient = createPublicClient({ chain, transport, pollingInterval })
  const clients: ChainClients = { chain, publicClient }
  if (p.account) {
    clients.walletClient = createWalletClient({
      chain,
      transport,
      account: p.account,
      pollingInterval,
    })
  }
  return clients
}

/** Reads against a block tag: safe to send again, and the ones a moving head can fail. */
const READS_AT_A_BLOCK = new Set([
  'eth_call',
  'eth_estimateGas',
  'eth_createAccessList',
  'eth_getBalance',
  'eth_getCode',
  'eth_getStorageAt',
  'eth_getTransactionCount',
  'eth_getBlockByNumber',
  'eth_getLogs',
  'eth_feeHistory',
  'eth_maxPriorityFeePerGas',
])

/**
 * A node that resolves `latest` to a block it no longer has: during a reorganisation anvil
 * answers `-32602 BlockOutOfRangeError: block height is H but requested was H+k` for a read
 * that raced it, and load-balanced nodes behind one endpoint answer "header not found" for a
 * head another node served a moment ago.
 */
export function isStaleHeadError(e: unknown): boolean {
  let x: unknown = e
  for (let depth = 0; depth < 8 && typeof x === 'object' && x !== null; depth++) {
    const { code, details, message, cause } = x as Partial<RpcError> & { cause?: unknown }
    const text = `${details ?? ''} ${message ?? ''}`
    if (code === -32602 && /BlockOutOfRange|block height is/i.test(text)) return true
    if (
      (code === -32000 || code === -32001) &&
      /header not found|block not found|unknown block/i.test(text)
    )
      return true
    x = cause
  }
  return false
}

/**
 * Sends a read that failed on a stale head again (up to 4 times, 100–400 ms apart); other
 * requests and other errors pass through. Writes are never repeated here.
 */
export function retryingStaleHeads(inner: Transport, delayMs = 100): Transport {
  return (config) => {
    const t = inner(config)
    const request = (async (args: { method: string }, options?: unknown) => {
      for (let attempt = 1; ; attempt++) {
        try {
          return await (t.request as (a: unknown, o?: unknown) => Promise<unknown>)(args, options)
        } catch (e) {
          if (attempt > 4 || !READS_AT_A_BLOCK.has(args.method) || !isStaleHeadError(e)) throw e
          await new Promise((r) => setTimeout(r, delayMs * attempt))
        }
      }
    }) as typeof t.request
    return { ...t, request }
  }
}
