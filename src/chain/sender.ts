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

/**
 * Why a mined call reverted although it passed simulation (the state changed in between, or
 * the node misjudged it): the gas it used against its limit and the revert the same call
 * gives when replayed on the state before its block (what it ran on, if it was the block's
 * first transaction) and on the state after it.
 */
export async function explainRevert(
  publicClient: PublicClient<Transport, Chain>,
  receipt: TransactionReceipt,
  request: object,
): Promise<Error> {
  const tx = await publicClient
    .getTransaction({ hash: receipt.transactionHash })
    .catch(() => undefined)
  const replay = (blockNumber: bigint) =>
    publicClient.simulateContract({ ...request, blockNumber } as never).then(
      () => 'passes',
      (e: unknown) => revertReason(e),
    )
  const [before, after] = await Promise.all([
    replay(receipt.blockNumber - 1n),
    replay(receipt.blockNumber),
  ])
  const gas = tx ? `gas ${receipt.gasUsed} of ${tx.gas}` : `gas ${receipt.gasUsed}`
  return new Error(
    `transaction ${receipt.transactionHash} reverted in block ${receipt.blockNumber} (${gas}; replayed before its block: ${before}; after it: ${after})`,
  )
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
        // The state can change between estimate and inclusion (other calls to the same
        // instance land first), so the estimate gets headroom; unused gas is not paid.
        const estimate = await this.publicClient.estimateContractGas(request as never)
        const hash = await this.walletClient.writeContract({
          ...(request as object),
          gas: (estimate * 5n) / 4n + 20_000n,
        } as never)
        const receipt = await this.publicClient.waitForTransactionReceipt({ hash, timeout: 60_000 })
        if (receipt.status !== 'success')
          throw await explainRevert(this.publicClient, receipt, request as object)
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
