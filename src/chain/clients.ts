/** viem clients for any EVM JSON-RPC endpoint (SPEC §2: Chain). */
import {
  type Account,
  type Chain,
  createPublicClient,
  createWalletClient,
  defineChain,
  http,
  type PublicClient,
  type Transport,
  type WalletClient,
} from 'viem'

export type ChainClients = {
  chain: Chain
  publicClient: PublicClient<Transport, Chain>
  walletClient?: WalletClient<Transport, Chain, Account>
}

/** Learns the chain id from the endpoint and builds clients for it. */
export async function createChainClients(p: {
  rpcUrl: string
  account?: Account
  pollingIntervalMs?: number
}): Promise<ChainClients> {
  const probe = createPublicClient({
    transport: http(p.rpcUrl, { retryCount: 2, timeout: 10_000 }),
  })
  const chainId = await probe.getChainId()
  const chain = defineChain({
    id: chainId,
    name: chainId === 31337 ? 'anvil' : `chain-${chainId}`,
    nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 },
    rpcUrls: { default: { http: [p.rpcUrl] } },
  })
  const transport = http(p.rpcUrl, { retryCount: 3, timeout: 20_000 })
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
