/**
 * Typed errors shared by every component. Each carries a stable `code`, a one-line
 * `shortMessage` naming what was wrong, and serialises with `toObject()` so it can cross the
 * enclave and HTTP boundaries intact (Lodestar's pattern; viem's `shortMessage`/`details`).
 */

export const ERROR_CODES = [
  'MALFORMED',
  'OUT_OF_RANGE',
  'OVERSIZED',
  'BAD_SIGNATURE',
  'DECRYPTION_FAILED',
  'BAD_NONCE',
  'REPLAYED',
  'EXPIRED',
  'UNKNOWN_INSTANCE',
  'WRONG_ROLE',
  'WRONG_PHASE',
  'NOT_READY',
  'STALE_EVENT',
  'OUT_OF_ORDER',
  'COMMITMENT_MISMATCH',
  'TIMEOUT',
  'UNAVAILABLE',
  'INTERNAL',
] as const

export type ErrorCode = (typeof ERROR_CODES)[number]

export type ErrorObject = { name: string; code: ErrorCode; message: string; details?: string }

export class ProtocolError extends Error {
  override name = 'ProtocolError'
  readonly code: ErrorCode
  readonly shortMessage: string
  readonly details: string | undefined

  constructor(
    code: ErrorCode,
    shortMessage: string,
    options: { details?: string; cause?: unknown } = {},
  ) {
    super(options.details ? `${shortMessage}\n\nDetails: ${options.details}` : shortMessage, {
      cause: options.cause,
    })
    this.code = code
    this.shortMessage = shortMessage
    this.details = options.details
  }

  toObject(): ErrorObject {
    const o: ErrorObject = { name: this.name, code: this.code, message: this.shortMessage }
    if (this.details !== undefined) o.details = this.details
    return o
  }

  static fromObject(o: unknown): ProtocolError {
    if (typeof o === 'object' && o !== null) {
      const r = o as Record<string, unknown>
      const code = (ERROR_CODES as readonly string[]).includes(r.code as string)
        ? (r.code as ErrorCode)
        : 'INTERNAL'
      const msg = typeof r.message === 'string' ? r.message.slice(0, 1000) : 'unknown error'
      const opts: { details?: string } = {}
      if (typeof r.details === 'string') opts.details = r.details.slice(0, 4000)
      return new ProtocolError(code, msg, opts)
    }
    return new ProtocolError('INTERNAL', 'unknown error')
  }
}

export function isProtocolError(e: unknown): e is ProtocolError {
  return e instanceof ProtocolError
}

/** Converts anything thrown into a ProtocolError without leaking stack traces across boundaries. */
export function toProtocolError(e: unknown): ProtocolError {
  if (e instanceof ProtocolError) return e
  const message = e instanceof Error ? e.message : String(e)
  return new ProtocolError('INTERNAL', message.split('\n')[0]!.slice(0, 500))
}
