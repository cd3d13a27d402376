/**
 * Sends manager transactions one at a time per account (so nonces never collide), waits for
 * their receipts (sending a copy with higher fees at the same nonce while one sits unmined)
 * and turns reverts into errors that name the custom error.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import {
  type Abi,
  type Account,
  type Address,
  BaseError,
  type Chain,
  ContractFunctionRevertedError,
  Eip1559FeesNotSupportedError,
  encodeFunctionData,
  type Hash,
  type Hex,
  keccak256,
  type PublicClient,
  type ReplacementReturnType,
  TransactionNotFoundError,
  type TransactionReceipt,
  TransactionReceiptNotFoundError,
  type Transport,
  type WalletClient,
} from 'viem'

/** How long `TxSender.write` waits for a sent transaction's receipt (any of its copies'). */
const RECEIPT_TIMEOUT_MS = 60_000
/** How long a sent copy may stay unmined before a copy with higher fees replaces it. */
const BUMP_AFTER_MS = 15_000
/** The most copies with higher fees `TxSender.write` sends for one call. */
const MAX_BUMPS = 5
/** The default fee ceiling of the copies, as a multiple of the first copy's maxFeePerGas. */
const FEE_CEILING_MULTIPLE = 10n
/**
 * How long the call's nonce must stay taken with no copy of it seen (no receipt, none known as
 * mined) before the call counts as replaced by a foreign transaction (see `replacedAfterMs`).
 */
const REPLACED_AFTER_MS = 15_000
/** The fewest looks in a row that must see it so, however long they took (see `replacedNow`). */
const REPLACED_LOOKS = 3
/** Hashes of calls whose fate `settle` may be asked about, remembered at most (oldest first out). */
const MAX_REMEMBERED = 1024

/**
 * A manager call that did not go through: refused by the manager (`reverted`), failed at the
 * endpoint before it was sent, sent (`hash`) without a receipt to say how it ended, or sent and
 * replaced at its nonce by another transaction of the account (`dropped`).
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
   * The transaction sent was replaced at its nonce by another transaction of the same account
   * (another client of it, the operator's CLI say) that was mined instead: the call did not
   * happen, and sending it again cannot pay it twice. `hash` names the copy that was replaced;
   * `writeWithRetry` still looks it up (`TxSender.settle`) before sending the call again, as a
   * receipt that a node behind the endpoint showed late ends the attempts.
   */
  readonly dropped: boolean
  /**
   * The transaction, when one was sent (the latest copy, when copies with higher fees followed
   * it). Without `reverted` or `dropped` its fate is unknown (no receipt came in time, or the
   * endpoint failed while it was awaited): it may still land, so look it up (`TxSender.settle`,
   * which knows its other copies) before sending the call again (a deposit sent twice is paid
   * twice).
   */
  readonly hash: Hash | undefined

  constructor(
    readonly functionName: string,
    readonly reason: string,
    options: { cause?: unknown; reverted?: boolean; dropped?: boolean; hash?: Hash } = {},
  ) {
    const reverted = options.reverted ?? false
    const dropped = !reverted && (options.dropped ?? false)
    super(
      options.hash && dropped
        ? `${functionName} was sent as transaction ${options.hash}, but it did not land (${reason}); it may be sent again`
        : options.hash && !reverted
          ? `${functionName} was sent as transaction ${options.hash}, but no receipt came (${reason}); it may still land: look the transaction up before sending it again`
          : `${functionName} failed: ${reason}`,
      { cause: options.cause },
    )
    this.reverted = reverted
    this.dropped = dropped
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

/** What a transaction offers per gas: EIP-1559 fees, or a gas price where the chain has none. */
type Fees = { maxFeePerGas: bigint; maxPriorityFeePerGas: bigint } | { gasPrice: bigint }

/**
 * The transactions sent for one call: all at one nonce of one account, each later one offering
 * higher fees than the one before (it replaces it in the endpoints' pools). At most one of
 * them is mined.
 */
type Copies = {
  from: Address
  nonce: number
  /** Every copy signed, in turn, also one whose sending failed (it may have gone out). */
  hashes: Hash[]
  /** The latest copy the endpoint took (the first one, until then): the one an error names. */
  named: Hash
  /**
   * Since when (`Date.now()`) and in how many looks in a row the call's nonce has been seen taken
   * by none of its copies: by `write`'s wait, then by `settle` (each call of it one look), so a
   * lookup goes on from where the wait stopped. Undefined until then, and again once a look sees
   * a copy or the nonce free (see `replacedNow`).
   */
  taken?: { since: number; looks: number } | undefined
}

/** What a look at a call's nonce found (`TxSender.minedCopy`). */
type NonceLook = { hash: Hash; receipt: TransactionReceipt } | 'taken' | undefined

/** `x` raised by 12.5 %, rounded up (at least by 1): what nodes take as a replacement's fees. */
function raised(x: bigint): bigint {
  const step = (x + 7n) / 8n
  return x + (step > 0n ? step : 1n)
}

function maxOf(a: bigint, b: bigint): bigint {
  return a > b ? a : b
}

function minOf(a: bigint, b: bigint): bigint {
  return a < b ? a : b
}

export type TxSenderOptions = {
  /** How long `write` waits for a receipt of the call (any copy's); default 60 s. */
  receiptTimeoutMs?: number
  /**
   * How long a copy may stay unmined before a copy with higher fees is sent at the same nonce;
   * default 15 s. A transaction priced for the base fee when it was sent sits in the pool for
   * good once a few full blocks raise the base fee past its maxFeePerGas, and every later call
   * of the account waits behind its nonce.
   */
  bumpAfterMs?: number
  /**
   * The most copies with higher fees sent for one call; default 5. They go out one per
   * `bumpAfterMs` within `receiptTimeoutMs` (3 at most with the defaults).
   */
  maxBumps?: number
  /**
   * The highest maxFeePerGas (gas price, where the chain has no EIP-1559 fees) a copy offers;
   * default 10 times the first copy's. A copy that cannot offer 12.5 % more under it is not sent.
   */
  feeCeiling?: bigint
  /**
   * How long the call's nonce must be seen taken with no copy of the call seen (no receipt, none
   * known as mined), from the first look that saw it so, before the call counts as replaced by a
   * foreign transaction (`dropped`, sent again by `writeWithRetry`); default 15 s, and 3 looks
   * at least. Behind a load balancer the account's nonce can come from a node that has the block
   * while the receipt comes from one that does not yet (a block behind: seconds); a call taken
   * as replaced on fewer looks than that lag would be sent, and paid, twice.
   */
  replacedAfterMs?: number
}

export class TxSender {
  private queue: Promise<unknown> = Promise.resolve()
  /** Whether the chain has no EIP-1559 fees (learnt from the first fee estimate). */
  private legacyFees: boolean | undefined
  private readonly receiptTimeoutMs: number
  private readonly bumpAfterMs: number
  private readonly maxBumps: number
  private readonly feeCeiling: bigint | undefined
  private readonly replacedAfterMs: number
  /**
   * The copies of calls that ended without a known fate, by each of their hashes, for `settle`:
   * the hash a ChainTxError names is the latest copy's, and an earlier one may be the one mined.
   * Shared by the senders of a process (a hash names one transaction on any of them).
   */
  private static readonly unsettled = new Map<Hash, Copies>()

  constructor(
    private readonly publicClient: PublicClient<Transport, Chain>,
    private readonly walletClient: WalletClient<Transport, Chain, Account>,
    options: TxSenderOptions = {},
  ) {
    this.receiptTimeoutMs = options.receiptTimeoutMs ?? RECEIPT_TIMEOUT_MS
    this.bumpAfterMs = options.bumpAfterMs ?? BUMP_AFTER_MS
    this.maxBumps = options.maxBumps ?? MAX_BUMPS
    this.feeCeiling = options.feeCeiling
    this.replacedAfterMs = options.replacedAfterMs ?? REPLACED_AFTER_MS
  }

  get address() {
    return this.walletClient.account.address
  }

  /**
   * Simulates, sends and waits for one contract call; reverts become ChainTxError. The receipt
   * returned is the call's own, never that of a transaction that replaced it at its nonce. With
   * an account that signs here (a private key), a copy that stays unmined for `bumpAfterMs` is
   * replaced by one with the same calldata, gas and nonce and higher fees (see
   * `TxSenderOptions`), and the hash returned is the copy that was mined; a call whose nonce
   * another transaction of the account took (for `replacedAfterMs`) is a ChainTxError with
   * `dropped`. An account that signs elsewhere (a wallet's) chooses its own nonce and fees: its
   * transaction is sent once, and a copy the wallet sped up is the call's (`walletOutcome`).
   */
  async write(p: {
    address: `0x${string}`
    abi: Abi
    functionName: string
    args?: readonly unknown[]
    value?: bigint
  }): Promise<{ hash: Hash; receipt: TransactionReceipt }> {
    const run = async () => {
      let copies: Copies | undefined
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
        const gas = (estimate * 5n) / 4n + 20_000n
        const account = this.walletClient.account
        const data = encodeFunctionData({
          abi: p.abi,
          functionName: p.functionName,
          args: p.args ?? [],
        } as never)
        if (account.type !== 'local') {
          const hash = await this.walletClient.writeContract({
            ...(request as object),
            gas,
          } as never)
          return await this.walletOutcome(p, request, data, hash)
        }
        // The nonce and the fees are chosen here rather than by viem (which would ask the same),
        // as a copy with higher fees must replace the transaction at its very nonce; and each
        // copy is signed here, so its hash is known before it goes out.
        const [nonce, fees] = await Promise.all([
          this.publicClient.getTransactionCount({ address: account.address, blockTag: 'pending' }),
          this.feesNow(),
        ])
        const chain = this.walletClient.chain
        const sign = (f: Fees) =>
          account.signTransaction(
            {
              chainId: chain.id,
              to: p.address,
              data,
              ...(p.value !== undefined ? { value: p.value } : {}),
              gas,
              nonce,
              ...f,
            },
            { serializer: chain.serializers?.transaction },
          )
        const first = await sign(fees)
        const firstHash = keccak256(first)
        // Recorded before it goes out: a send whose answer is lost (a timeout) may have reached
        // the endpoint, so from here on a failure names the transaction (it may still land) and
        // `settle` knows it; an error without a hash would have the call sent again at the next
        // nonce, and run twice.
        const sent: Copies = { from: account.address, nonce, hashes: [firstHash], named: firstHash }
        copies = sent
        await this.walletClient.sendRawTransaction({ serializedTransaction: first })
        const mined = await this.waitForCopies(p.functionName, sent, fees, async (f) => {
          const signed = await sign(f)
          const hash = keccak256(signed)
          // Known before it goes out: a copy whose answer is lost may still be mined.
          sent.hashes.push(hash)
          await this.walletClient.sendRawTransaction({ serializedTransaction: signed })
          sent.named = hash
        })
        return await this.outcome(p.functionName, p.abi, request, mined)
      } catch (e) {
        // Once the first copy is signed, only its sending can fail here (the wait's and the
        // outcome's failures are ChainTxErrors already): the copy may have gone out all the same.
        const error =
          e instanceof ChainTxError
            ? e
            : copies
              ? new ChainTxError(p.functionName, `sending it failed: ${revertReason(e)}`, {
                  cause: e,
                  hash: copies.named,
                })
              : new ChainTxError(p.functionName, revertReason(e), {
                  cause: e,
                  reverted: isRevert(e),
                })
        if (copies && !error.reverted && error.hash !== undefined) TxSender.remember(copies)
        throw error
      }
    }
    const next = this.queue.then(run, run)
    this.queue = next.catch(() => undefined)
    return next
  }

  /** A mined call's receipt, or the ChainTxError of its revert (explained). */
  private async outcome(
    functionName: string,
    abi: Abi,
    request: unknown,
    { hash, receipt }: { hash: Hash; receipt: TransactionReceipt },
  ): Promise<{ hash: Hash; receipt: TransactionReceipt }> {
    // Never a replacement's receipt taken for the call's: viem's receipt wait answers with one
    // unless told not to look for replacements.
    if (receipt.transactionHash.toLowerCase() !== hash.toLowerCase())
      throw new ChainTxError(functionName, `the receipt is of ${receipt.transactionHash}`, { hash })
    if (receipt.status !== 'success') {
      // With the whole ABI: simulateContract's request keeps only the function's entry, and the
      // replay could then not name the manager's custom error (simulator seed 1983).
      const why = await explainRevert(this.publicClient, receipt, { ...(request as object), abi })
      throw new ChainTxError(functionName, why.message, { cause: why, reverted: true, hash })
    }
    return { hash, receipt }
  }

  /**
   * The outcome of a call a wallet signed and sent as `hash` (with its own nonce and fees), with
   * viem's replacement check on: a wallet may speed its transaction up (the same nonce, to, data
   * and value, higher fees: viem's reason `repriced`), and the copy mined is then the call's own.
   * Without the check the wait for `hash` would run into its timeout, and `settle` would find the
   * hash unknown (`dropped`) and have the call sent, and paid, twice. A replacement that is not a
   * copy of the call (`cancelled`, `replaced`) means the call did not happen: a ChainTxError with
   * `dropped` naming `hash`, at once, as viem reports a replacement only once it is mined.
   */
  private async walletOutcome(
    p: { functionName: string; abi: Abi; address: Address; value?: bigint },
    request: unknown,
    data: Hex,
    hash: Hash,
  ): Promise<{ hash: Hash; receipt: TransactionReceipt }> {
    let replaced: ReplacementReturnType<Chain> | undefined
    const receipt = await this.publicClient
      .waitForTransactionReceipt({
        hash,
        timeout: this.receiptTimeoutMs,
        onReplaced: (r) => {
          replaced = r
        },
      })
      .catch((e: unknown) => {
        throw new ChainTxError(p.functionName, revertReason(e), { cause: e, hash })
      })
    if (replaced === undefined)
      return await this.outcome(p.functionName, p.abi, request, { hash, receipt })
    const by = replaced.transaction
    // viem's `repriced` compares the replacement with the transaction it replaced; the call's own
    // target, calldata and value are checked as well (a chain may define its own reasons).
    const copy =
      replaced.reason === 'repriced' &&
      by.to?.toLowerCase() === p.address.toLowerCase() &&
      by.input.toLowerCase() === data.toLowerCase() &&
      by.value === (p.value ?? 0n)
    if (copy) return await this.outcome(p.functionName, p.abi, request, { hash: by.hash, receipt })
    // Kept for `settle` as replaced already, so a lookup before the call is sent again does not
    // wait out `replacedAfterMs` for what viem saw mined.
    TxSender.remember({
      from: replaced.replacedTransaction.from,
      nonce: replaced.replacedTransaction.nonce,
      hashes: [hash],
      named: hash,
      taken: { since: Date.now() - this.replacedAfterMs, looks: REPLACED_LOOKS },
    })
    throw new ChainTxError(
      p.functionName,
      `the wallet ${replaced.reason === 'cancelled' ? 'cancelled' : 'replaced'} it at its nonce ${replaced.replacedTransaction.nonce} with transaction ${by.hash}`,
      { hash, dropped: true },
    )
  }

  /**
   * Waits for whichever of the call's copies is mined, sending a copy with higher fees whenever
   * the latest stayed unmined for `bumpAfterMs` (at most `maxBumps`, never above the ceiling).
   * Bounded by `receiptTimeoutMs`: then, or when the endpoint fails, a ChainTxError names the
   * latest copy sent (fate unknown). A nonce taken by a transaction that is none of the copies
   * (a replacement sent by another client of the account), for `replacedAfterMs` (`replacedNow`),
   * is a ChainTxError with `dropped`: its receipt is not the call's, whatever its status.
   */
  private async waitForCopies(
    functionName: string,
    copies: Copies,
    fees: Fees,
    send: (f: Fees) => Promise<void>,
  ): Promise<{ hash: Hash; receipt: TransactionReceipt }> {
    const started = Date.now()
    const deadline = started + this.receiptTimeoutMs
    const ceiling =
      this.feeCeiling ??
      FEE_CEILING_MULTIPLE * ('gasPrice' in fees ? fees.gasPrice : fees.maxFeePerGas)
    const pollMs = Math.max(1, this.publicClient.pollingInterval ?? 1_000)
    let offered = fees
    let bumps = 0
    let bumpAt = started + this.bumpAfterMs
    for (;;) {
      const found = await this.minedCopy(copies).catch((e: unknown) => {
        throw new ChainTxError(functionName, revertReason(e), { cause: e, hash: copies.named })
      })
      if (found && found !== 'taken') return found
      if (this.replacedNow(copies, found))
        throw new ChainTxError(
          functionName,
          `another transaction of ${copies.from} took its nonce ${copies.nonce}`,
          { hash: copies.named, dropped: true },
        )
      const now = Date.now()
      if (now >= deadline) {
        const n = copies.hashes.length
        const taken = copies.taken
        throw new ChainTxError(
          functionName,
          `waited ${Math.round(this.receiptTimeoutMs / 1000)} s` +
            (n > 1 ? `; the latest of ${n} copies at nonce ${copies.nonce}, fees rising` : '') +
            (taken ? `; ${takenFor(copies, now)}` : ''),
          { hash: copies.named },
        )
      }
      // A nonce taken is no reason for a copy with higher fees (it would be refused as too low).
      if (copies.taken === undefined && bumps < this.maxBumps && now >= bumpAt) {
        bumps++
        bumpAt = now + this.bumpAfterMs
        // A copy that fails to go out (the endpoint is down; the nonce was mined meanwhile:
        // "nonce too low") leaves the copies sent before it to be waited for; the next copy
        // offers more than this one (a node may have wanted more of a replacement).
        const next = await this.bumpedFees(offered, ceiling).catch(() => offered)
        if (next === undefined) bumps = this.maxBumps
        else if (next !== offered) {
          offered = next
          await send(next).catch(() => undefined)
        }
      }
      await sleep(Math.min(pollMs, Math.max(0, deadline - Date.now())))
    }
  }

  /**
   * Whether the call's nonce is taken, and by which copy: its hash and receipt; `taken` when
   * by none of them (none has a receipt, none is known as mined); undefined while the nonce is
   * free, or while a copy known as mined has no receipt yet (an endpoint behind a load balancer
   * may answer from a node that lags). The nonce is read before the receipts, so a copy mined
   * in between is not missed.
   */
  private async minedCopy(copies: Copies): Promise<NonceLook> {
    const mined = await this.publicClient.getTransactionCount({
      address: copies.from,
      blockTag: 'latest',
    })
    if (mined <= copies.nonce) return undefined
    const newestFirst = [...copies.hashes].reverse()
    for (const hash of newestFirst) {
      const receipt = await this.receiptOf(hash)
      if (receipt) return { hash, receipt }
    }
    for (const hash of newestFirst) {
      const tx = await this.transactionOf(hash)
      if (tx && tx.blockNumber !== null) return undefined
    }
    return 'taken'
  }

  /**
   * Records one look at the call's nonce (`found`, from `minedCopy`) in its copies, and tells
   * whether the call now counts as replaced by a foreign transaction: its nonce seen taken by none
   * of its copies for `replacedAfterMs` at least since the first look that saw it so, and in
   * `REPLACED_LOOKS` looks in a row at least. Behind a load balancer the account's nonce can be
   * answered by a node that has the block and the receipt by one that does not yet (a block
   * behind, seconds): a few polls alone would take a landed call for replaced, and it would be
   * sent, and paid, twice. Any other answer (a copy's receipt, a copy known as mined, the nonce
   * free) starts the count again.
   */
  private replacedNow(copies: Copies, found: NonceLook): boolean {
    if (found !== 'taken') {
      copies.taken = undefined
      return false
    }
    const now = Date.now()
    const taken = copies.taken ?? { since: now, looks: 0 }
    taken.looks++
    copies.taken = taken
    return taken.looks >= REPLACED_LOOKS && now - taken.since >= this.replacedAfterMs
  }

  /** The receipt of the transaction `hash` itself (never a replacement's), if it was mined. */
  private async receiptOf(hash: Hash): Promise<TransactionReceipt | undefined> {
    const receipt = await this.publicClient.getTransactionReceipt({ hash }).catch((e: unknown) => {
      if (e instanceof TransactionReceiptNotFoundError) return undefined
      throw e
    })
    return receipt && receipt.transactionHash.toLowerCase() === hash.toLowerCase()
      ? receipt
      : undefined
  }

  /** The fees a transaction sent now should offer (viem's estimate: 1.2 base fees plus a tip). */
  private async feesNow(): Promise<Fees> {
    if (!this.legacyFees) {
      try {
        const { maxFeePerGas, maxPriorityFeePerGas } = await this.publicClient.estimateFeesPerGas()
        this.legacyFees = false
        return { maxFeePerGas, maxPriorityFeePerGas }
      } catch (e) {
        if (!(e instanceof Eip1559FeesNotSupportedError)) throw e
        this.legacyFees = true
      }
    }
    const { gasPrice } = await this.publicClient.estimateFeesPerGas({ type: 'legacy' })
    return { gasPrice }
  }

  /**
   * The fees of a copy to replace one offering `prev`: at least 12.5 % more in each (nodes
   * refuse a replacement with less, geth's minimum being 10 %), and at least what a
   * transaction sent now offers; capped at `ceiling`. Undefined when the cap leaves less than
   * the 12.5 %.
   */
  private async bumpedFees(prev: Fees, ceiling: bigint): Promise<Fees | undefined> {
    const now = await this.feesNow()
    if ('gasPrice' in prev) {
      const least = raised(prev.gasPrice)
      const want = maxOf(least, 'gasPrice' in now ? now.gasPrice : 0n)
      const gasPrice = minOf(want, ceiling)
      return gasPrice >= least ? { gasPrice } : undefined
    }
    const leastFee = raised(prev.maxFeePerGas)
    const leastTip = raised(prev.maxPriorityFeePerGas)
    const wantFee = maxOf(leastFee, 'maxFeePerGas' in now ? now.maxFeePerGas : 0n)
    const maxFeePerGas = minOf(wantFee, ceiling)
    const wantTip = maxOf(leastTip, 'maxPriorityFeePerGas' in now ? now.maxPriorityFeePerGas : 0n)
    const maxPriorityFeePerGas = minOf(wantTip, maxFeePerGas)
    if (maxFeePerGas < leastFee || maxPriorityFeePerGas < leastTip) return undefined
    return { maxFeePerGas, maxPriorityFeePerGas }
  }

  /** Keeps a call's copies for `settle`, by each of their hashes. */
  private static remember(copies: Copies): void {
    for (const hash of copies.hashes) TxSender.unsettled.set(hash, copies)
    for (const hash of TxSender.unsettled.keys()) {
      if (TxSender.unsettled.size <= MAX_REMEMBERED) break
      TxSender.unsettled.delete(hash)
    }
  }

  private static forget(copies: Copies): void {
    for (const hash of copies.hashes) TxSender.unsettled.delete(hash)
  }

  /**
   * How the call `write` sent as `hash` ended, when `write` could not tell (ChainTxError with a
   * hash, not `reverted`): mined (its receipt, or that of another copy of it `write` sent with
   * higher fees, named by its hash), or not (`dropped`: unknown to the endpoint, or its nonce
   * taken by a transaction that is none of its copies; sending the call again cannot pay it
   * twice). A mined revert is a ChainTxError with `reverted`; a call the endpoint still holds
   * unmined, a ChainTxError with its hash; an endpoint's failure is thrown as it is. A nonce
   * taken by none of the copies counts as `dropped` only once it has been seen so for
   * `replacedAfterMs` (`replacedNow`, over `write`'s wait and the lookups before this one): until
   * then a ChainTxError with the hash says the fate is still unknown, to be asked again later (a
   * node behind the endpoint may not show the call's receipt yet).
   */
  async settle(
    functionName: string,
    hash: Hash,
  ): Promise<{ hash: Hash; receipt: TransactionReceipt } | 'dropped'> {
    let copies = TxSender.unsettled.get(hash)
    if (!copies) {
      // A hash sent by another process (or forgotten): looked up on its own.
      const receipt = await this.receiptOf(hash)
      if (receipt) return settled(functionName, { hash, receipt })
      const tx = await this.transactionOf(hash)
      if (!tx) return 'dropped'
      if (tx.blockNumber !== null) throw new ChainTxError(functionName, 'not mined yet', { hash })
      // Pending, so the endpoint says, but its nonce may be taken by another transaction: judged
      // from now on as the calls sent here are, over this lookup and the next ones.
      copies = { from: tx.from, nonce: tx.nonce, hashes: [hash], named: hash }
      TxSender.remember(copies)
    }
    const found = await this.minedCopy(copies)
    const replaced = this.replacedNow(copies, found)
    if (found === 'taken') {
      if (!replaced)
        throw new ChainTxError(functionName, takenFor(copies, Date.now()), { hash: copies.named })
      TxSender.forget(copies)
      return 'dropped'
    }
    if (found) {
      TxSender.forget(copies)
      return settled(functionName, found)
    }
    // Still at its nonce (or mined without a receipt yet): held unmined if a copy is known.
    for (const h of [...copies.hashes].reverse())
      if (await this.transactionOf(h))
        throw new ChainTxError(functionName, 'not mined yet', { hash: h })
    TxSender.forget(copies)
    return 'dropped'
  }

  /** The transaction `hash`, mined or pending, if the endpoint knows it. */
  private async transactionOf(hash: Hash) {
    return this.publicClient.getTransaction({ hash }).catch((e: unknown) => {
      if (e instanceof TransactionNotFoundError) return undefined
      throw e
    })
  }
}

/** A mined call's receipt, or the ChainTxError of its revert. */
function settled(
  functionName: string,
  found: { hash: Hash; receipt: TransactionReceipt },
): { hash: Hash; receipt: TransactionReceipt } {
  if (found.receipt.status === 'success') return found
  throw new ChainTxError(functionName, `transaction ${found.hash} reverted`, {
    reverted: true,
    hash: found.hash,
  })
}

/** Since when a call's nonce has been seen taken by none of its copies, for an error's reason. */
function takenFor(copies: Copies, now: number): string {
  const t = copies.taken
  const s = t ? Math.round((now - t.since) / 100) / 10 : 0
  return `its nonce ${copies.nonce} seen taken by another transaction for ${s} s (${t?.looks ?? 0} looks), not yet long enough to rule out a node behind the endpoint that lags`
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
 * revert, or pay twice). A call replaced at its nonce (`ChainTxError.dropped`) is looked up as
 * well before it is sent again: a receipt that shows late (a node behind the endpoint lagged)
 * ends the attempts; otherwise `settle` agrees that it did not happen, and it is sent again.
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
