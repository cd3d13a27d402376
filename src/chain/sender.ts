/**
 * Sends manager transactions one at a time per account (so nonces never collide), waits for
 * their receipts and turns reverts into errors that name the custom error.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import {
  type Abi,
  type Account,
  BaseError,
  type Chain,
  ContractFunctionRevertedError,
  type Hash,
  type PublicClient,
  TransactionNotFoundError,
  type TransactionReceipt,
  TransactionReceiptNotFoundError,
  type Transport,
  type WalletClient,
} from 'viem'

/** How long `TxSender.write` waits for a sent transaction's receipt. */
const RECEIPT_TIMEOUT_MS = 60_000

/**
 * A manager call that did not go through: refused by the manager (`reverted`), failed at the
 * endpoint before it was sent, or sent (`hash`) without a receipt to say how it ended.
 */
export class ChainTxError extends Error {
  override name = 'ChainTxError'
  /**
   * The manager refused the call (its simulation reverted, or the mined transaction did):
   * sending it again as it is fails again. Otherwise the endpoint failed (unreachable, a
   * timeout, a nonce race) and a retry may go through.
   */
  readonly reverted: boolean
  /**
   * The transaction, when one was sent. Without `reverted` its fate is unknown (no receipt came
   * in time, or the endpoint failed while it was awaited): it may still land, so look it up
   * before sending the call again (a deposit sent twice is paid twice).
   */
  readonly hash: Hash | undefined

  constructor(
    readonly functionName: string,
    readonly reason: string,
    options: { cause?: unknown; reverted?: boolean; hash?: Hash } = {},
  ) {
    const reverted = options.reverted ?? false
    super(
      options.hash && !reverted
        ? `${functionName} was sent as transaction ${options.hash}, but no receipt came (${reason}); it may still land: look the transaction up before sending it again`
        : `${functionName} failed: ${reason}`,
      { cause: options.cause },
    )
    this.reverted = reverted
    this.hash = options.hash
  }
}

/** Whether a viem error is a contract's revert (in simulation or estimation). */
function isRevert(e: unknown): boolean {
  return (
    e instanceof BaseError &&
    e.walk((x) => x instanceof ContractFunctionRevertedError) instanceof
      ContractFunctionRevertedError
  )
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
        // From here on the transaction is out: a failure names it, as it may still land.
        const receipt = await this.publicClient
          .waitForTransactionReceipt({ hash, timeout: RECEIPT_TIMEOUT_MS })
          .catch((e: unknown) => {
            throw new ChainTxError(p.functionName, revertReason(e), { cause: e, hash })
          })
        if (receipt.status !== 'success') {
          const why = await explainRevert(this.publicClient, receipt, request as object)
          throw new ChainTxError(p.functionName, why.message, { cause: why, reverted: true, hash })
        }
        return { hash, receipt }
      } catch (e) {
        if (e instanceof ChainTxError) throw e
        throw new ChainTxError(p.functionName, revertReason(e), {
          cause: e,
          reverted: isRevert(e),
        })
      }
    }
    const next = this.queue.then(run, run)
    this.queue = next.catch(() => undefined)
    return next
  }

  /**
   * How the call `write` sent as `hash` ended, when `write` could not tell (ChainTxError with a
   * hash, not `reverted`): mined (its receipt), or unknown to the endpoint (`dropped`: sending
   * the call again cannot pay it twice). A mined revert is a ChainTxError with `reverted`; one
   * the endpoint still holds unmined, a ChainTxError with its hash; an endpoint's failure is
   * thrown as it is.
   */
  async settle(
    functionName: string,
    hash: Hash,
  ): Promise<{ hash: Hash; receipt: TransactionReceipt } | 'dropped'> {
    const receipt = await this.publicClient.getTransactionReceipt({ hash }).catch((e: unknown) => {
      if (e instanceof TransactionReceiptNotFoundError) return undefined
      throw e
    })
    if (receipt) {
      if (receipt.status === 'success') return { hash, receipt }
      throw new ChainTxError(functionName, `transaction ${hash} reverted`, { reverted: true, hash })
    }
    const tx = await this.publicClient.getTransaction({ hash }).catch((e: unknown) => {
      if (e instanceof TransactionNotFoundError) return undefined
      throw e
    })
    if (tx) throw new ChainTxError(functionName, 'not mined yet', { hash })
    return 'dropped'
  }
}

/**
 * `write`, sent again after an endpoint's failure (not after a revert) up to `attempts` times in
 * all, waiting `backoffMs`, then twice as long each time up to `maxBackoffMs`; given up at once
 * when `signal` aborts (a node that stops). For calls a member must land on-chain before a
 * deadline (answers to challenges): one failed request to the endpoint must not get an honest
 * member removed and slashed. Past the deadline the manager reverts the call, which ends the
 * attempts. A call sent without a receipt (`ChainTxError.hash`, or `sent` from an earlier run)
 * is looked up with `settle` before each further attempt: its receipt ends the attempts, and
 * while the endpoint still holds it unmined nothing is sent again (the second copy would
 * revert, or pay twice).
 */
export async function writeWithRetry<T>(
  write: () => Promise<T>,
  opts: {
    attempts: number
    backoffMs: number
    maxBackoffMs?: number
    signal?: AbortSignal
    onRetry?: (error: unknown, attempt: number) => void
    settle?: (hash: Hash) => Promise<T | 'dropped'>
    sent?: Hash | undefined
  },
): Promise<T> {
  let sent = opts.sent
  for (let attempt = 1; ; attempt++) {
    try {
      if (sent !== undefined && opts.settle) {
        const fate = await opts.settle(sent)
        if (fate !== 'dropped') return fate
        sent = undefined
      }
      return await write()
    } catch (e) {
      const final = e instanceof ChainTxError && e.reverted
      if (e instanceof ChainTxError && e.hash !== undefined && !e.reverted) sent = e.hash
      if (final || attempt >= opts.attempts || opts.signal?.aborted) throw e
      opts.onRetry?.(e, attempt)
      const backoff = Math.min(
        opts.backoffMs * 2 ** Math.min(attempt - 1, 30),
        opts.maxBackoffMs ?? Number.POSITIVE_INFINITY,
      )
      const waited = await sleep(backoff, undefined, {
        ...(opts.signal ? { signal: opts.signal } : {}),
      }).then(
        () => true,
        () => false,
      )
      if (!waited) throw e
    }
  }
}

/**
 * `text` with each URL cut to its origin: an RPC provider's URL often carries its API key in the
 * path or query (viem's error messages name the URL they failed on), and logs must not.
 */
export function redactUrls(text: string): string {
  return text.replace(/\b(?:https?|wss?):\/\/[^\s"'<>]+/gi, (url) => {
    try {
      const u = new URL(url)
      const rest = u.pathname !== '/' || u.search !== '' || u.hash !== ''
      return `${u.protocol}//${u.host}${rest ? '/…' : ''}`
    } catch {
      return '(a URL)'
    }
  })
}
