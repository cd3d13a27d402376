/**
 * Sends manager transactions one at a time per account (so nonces never collide), waits for
 * their receipts and turns reverts into errors that name the custom error.
 */
import {
  type Abi,
  type Account,
  BaseError,
  type Chain,
  ContractFunctionRevertedError,
  type Hash,
  type PublicClient,
  type TransactionReceipt,
  type Transport,
  type WalletClient,
} from 'viem'

export class ChainTxError extends Error {
  override name = 'ChainTxError'
  constructor(
    readonly functionName: string,
    readonly reason: string,
    options: { cause?: unknown } = {},
  ) {
    super(`${functionName} failed: ${reason}`, options)
  }
}

/** Names the custom error of a revert, e.g. `PoseManager_StakeTooLow(1, 2)`. */
export function revertReason(e: unknown): string {
  if (e instanceof BaseError) {
    const revert = e.walk((x) => x instanceof ContractFunctionRevertedError)
    if (revert instanceof ContractFunctionRevertedError) {
      const d = revert.data
      if (d?.errorName) return `${d.errorName}(${(d.args ?? []).map(String).join(', ')})`
      return revert.reason ?? revert.shortMessage
    }
    return e.shortMessage
  }
  return e instanceof Error ? e.message : String(e)
}

export class TxSender {
  private queue: Promise<unknown> = Promise.resolve()

  constructor(
    private readonly publicClient: PublicClient<Transport, Chain>,
    private readonly walletClient: WalletClient<Transport, Chain, Account>,
  ) {}

  get address() {
    return this.walletClient.account.address
  }

  /** Simulates, sends and waits for one contract call; reverts become ChainTxError. */
  async write(p: {
    address: `0x${string}`
    abi: Abi
    functionName: string
    args?: readonly unknown[]
    value?: bigint
  }): Promise<{ hash: Hash; receipt: TransactionReceipt }> {
    const run = async () => {
      try {
        const { request } = await this.publicClient.simulateContract({
          account: this.walletClient.account,
          address: p.address,
          abi: p.abi,
          functionName: p.functionName,
          args: p.args ?? [],
          ...(p.value !== undefined ? { value: p.value } : {}),
        } as never)
        const hash = await this.walletClient.writeContract(request as never)
        const receipt = await this.publicClient.waitForTransactionReceipt({ hash, timeout: 60_000 })
        if (receipt.status !== 'success') throw new Error(`transaction ${hash} reverted`)
        return { hash, receipt }
      } catch (e) {
        throw new ChainTxError(p.functionName, revertReason(e), { cause: e })
      }
    }
    const next = this.queue.then(run, run)
    this.queue = next.catch(() => undefined)
    return next
  }
}
