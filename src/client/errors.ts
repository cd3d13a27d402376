/**
 * SDK errors in viem's style: one base class with `shortMessage`, `details`, `docsPath` and
 * `cause`, and a message that says what to do next.
 */
import type { Hex } from 'viem'
import { type ErrorCode, ProtocolError } from '../protocol/index.ts'
import type { PoseReceipt } from './actions/sendTransaction.ts'

/** What every SDK error may carry besides its one-line message. */
export type PoseErrorOptions = {
  details?: string
  docsPath?: string
  cause?: unknown
  code?: ErrorCode | 'CLIENT'
}

export class PoseError extends Error {
  override name = 'PoseError'
  readonly shortMessage: string
  readonly details: string | undefined
  readonly docsPath: string | undefined
  readonly code: ErrorCode | 'CLIENT'

  constructor(shortMessage: string, options: PoseErrorOptions = {}) {
    const lines = [shortMessage]
    if (options.details) lines.push('', `Details: ${options.details}`)
    if (options.docsPath) lines.push(`Docs: ${options.docsPath}`)
    super(lines.join('\n'), { cause: options.cause })
    this.shortMessage = shortMessage
    this.details = options.details
    this.docsPath = options.docsPath
    this.code = options.code ?? 'CLIENT'
  }
}

/** The enclave or operator refused a request; `code` says why (e.g. BAD_NONCE). */
export class PoseRequestError extends PoseError {
  override name = 'PoseRequestError'
  /**
   * Who said it: `enclave`, a rejection opened under the request's response key, which no host
   * can make up; `host`, an operator's error body, whatever it claims; `client`, the SDK itself
   * (its transport, its checks).
   */
  readonly origin: 'enclave' | 'host' | 'client'

  constructor(
    shortMessage: string,
    options: PoseErrorOptions & { origin?: 'enclave' | 'host' | 'client' } = {},
  ) {
    super(shortMessage, options)
    this.origin = options.origin ?? 'client'
  }

  /** An operator's error object (`{ name, code, message, details? }`), checked, as an SDK error. */
  static fromObject(o: unknown): PoseRequestError {
    const err = ProtocolError.fromObject(o)
    return new PoseRequestError(err.shortMessage, {
      code: err.code,
      origin: 'host',
      ...(err.details ? { details: err.details } : {}),
    })
  }
}

/**
 * A transaction that may have been executed although no receipt came: an attempt of it went
 * unanswered, it was refused by the executor's host rather than its enclave, or its enclave
 * refused only its nonce (BAD_NONCE: one ahead of the account's, whose box may still run once
 * the nonces before it did; REPLAYED: one used already, perhaps by this very transaction). Its
 * nonce stays taken (after BAD_NONCE or REPLAYED the account's next nonce is asked of the
 * enclave again); `getReceipt({ txHash })` asks for its receipt again. Sending the same
 * payment anew could make it twice. `code` is the last refusal's.
 */
export class TransactionUnconfirmedError extends PoseRequestError {
  override name = 'TransactionUnconfirmedError'
  constructor(
    readonly txHash: Hex,
    readonly nonce: bigint,
    cause: PoseRequestError,
  ) {
    super(`Transaction ${txHash} (nonce ${nonce}) may have been executed; no receipt came`, {
      code: cause.code,
      details: `${cause.shortMessage}. Ask for its receipt with getReceipt({ txHash }) before sending it again.`,
      cause,
    })
  }
}

/**
 * A deploy that failed after its instance was created on-chain (its creation fee paid): it names
 * the instance, which may still become active (`getInstance`), and the failure (`cause`, whose
 * `code` it keeps).
 */
export class DeployContractError extends PoseError {
  override name = 'DeployContractError'
  constructor(
    readonly instance: bigint,
    readonly createTxHash: Hex,
    cause: unknown,
  ) {
    const reason =
      cause instanceof PoseError
        ? cause.shortMessage
        : cause instanceof Error
          ? cause.message
          : String(cause)
    super(
      `Instance ${instance} was created (transaction ${createTxHash}) but not deployed: ${reason}`,
      {
        cause,
        code: cause instanceof PoseError ? cause.code : 'CLIENT',
        details:
          'The instance stays on-chain: check it with getInstance({ instance }). One frozen before activation credits its creation fee back to the creator (claim).',
      },
    )
  }
}

/** A receipt that does not verify against the enclave keys registered on-chain. */
export class ReceiptVerificationError extends PoseError {
  override name = 'ReceiptVerificationError'
}

/** The contract reverted; `errorName`/`args` decode a custom error when the ABI knows it. */
export class ContractRevertError extends PoseError {
  override name = 'ContractRevertError'
  /**
   * The receipt of the transaction that reverted (`writeContract`): it ran, took its nonce and
   * is final; absent for a view call.
   */
  receipt?: PoseReceipt
  constructor(
    readonly data: `0x${string}`,
    readonly errorName: string | undefined,
    readonly args: readonly unknown[] | undefined,
  ) {
    super(
      errorName
        ? `Contract reverted with ${errorName}(${(args ?? []).map(String).join(', ')})`
        : `Contract reverted (data ${data.slice(0, 74)})`,
    )
  }
}
