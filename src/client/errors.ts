/**
 * SDK errors in viem's style: one base class with `shortMessage`, `details`, `docsPath` and
 * `cause`, and a message that says what to do next.
 */
import { type ErrorCode, ProtocolError } from '../protocol/index.ts'

export class PoseError extends Error {
  override name = 'PoseError'
  readonly shortMessage: string
  readonly details: string | undefined
  readonly docsPath: string | undefined
  readonly code: ErrorCode | 'CLIENT'

  constructor(
    shortMessage: string,
    options: {
      details?: string
      docsPath?: string
      cause?: unknown
      code?: ErrorCode | 'CLIENT'
    } = {},
  ) {
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

  /** An operator's error object (`{ name, code, message, details? }`), checked, as an SDK error. */
  static fromObject(o: unknown): PoseRequestError {
    const err = ProtocolError.fromObject(o)
    return new PoseRequestError(err.shortMessage, {
      code: err.code,
      ...(err.details ? { details: err.details } : {}),
    })
  }
}

/** A receipt that does not verify against the enclave keys registered on-chain. */
export class ReceiptVerificationError extends PoseError {
  override name = 'ReceiptVerificationError'
}

/** The contract reverted; `errorName`/`args` decode a custom error when the ABI knows it. */
export class ContractRevertError extends PoseError {
  override name = 'ContractRevertError'
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
