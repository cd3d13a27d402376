/**
 * What the `pose` command prints when a command fails while running (src/cli/main.ts): no stack,
 * the error's code when it has one, and the transaction it sent.
 */
import { printable } from './validate.ts'

/**
 * Text for POSE_DEBUG (a stack, viem's long message), which asks for all of it: its line feeds
 * kept and nothing cut, every other control character escaped as `printable` escapes it.
 */
function escapeLines(s: string): string {
  return s
    .split('\n')
    .map((line) =>
      line.replace(
        /[\p{Cc}\u2028\u2029]/gu,
        (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
      ),
    )
    .join('\n')
}

/**
 * The lines that a command that failed while running prints. An error's text comes from outside
 * the CLI (an RPC endpoint, an operator's host answering `send` or `call`, revert data), so it
 * is printed through `printable`: escape sequences and line breaks in it cannot clear the
 * terminal or forge lines of output.
 */
export function runFailureLines(e: unknown, debug: boolean): string[] {
  // viem and SDK errors carry a one-line `shortMessage` and `details` beside a long message
  // (request arguments, docs links, version); POSE_DEBUG=1 prints all of it.
  const { name, shortMessage, details, hash, txHash, code, receipt, cause } = (e ?? {}) as {
    name?: unknown
    shortMessage?: unknown
    details?: unknown
    hash?: unknown
    txHash?: unknown
    code?: unknown
    receipt?: { txHash?: unknown; seq?: unknown } | null
    cause?: { shortMessage?: unknown } | null
  }
  // An error's code (an SDK's `PoseRequestError`, the node's `UNSAFE_DELTA`, the CLI's own
  // `NO_CONTRACT`): the SDK's `CLIENT`, which every SDK error without a code of its own carries,
  // and numeric codes (JSON-RPC's) say nothing more than the message.
  const tag =
    typeof code === 'string' && /^[A-Z][A-Z0-9_]{1,39}$/.test(code) && code !== 'CLIENT'
      ? ` [${code}]`
      : ''
  const lines: string[] = []
  if (typeof shortMessage === 'string' && !debug) {
    lines.push(`error${tag}: ${printable(shortMessage)}`)
    if (name === 'TransactionUnconfirmedError') {
      // The SDK's advice (getReceipt on the client that sent it) cannot be followed from here:
      // the box it would ask with lived in this process only.
      const why = typeof cause?.shortMessage === 'string' ? `${cause.shortMessage}. ` : ''
      lines.push(
        `details: ${printable(why)}The CLI cannot ask for this transaction's receipt later (only the client that sent it can). Check its effect with a view (pose call, pose balance) before sending it again: sent again, the same payment may run twice.`,
      )
    } else if (typeof details === 'string' && details && details !== shortMessage)
      lines.push(`details: ${printable(details)}`)
  } else if (e instanceof Error)
    lines.push(`error${tag}: ${debug ? escapeLines(e.stack ?? e.message) : printable(e.message)}`)
  else lines.push(`error: ${printable(String(e))}`)
  // A transaction that was sent (a chain transaction, `ChainTxError`, or an instance's,
  // `TransactionUnconfirmedError`), on its own line as the message may be cut: one without a
  // receipt may still land, and is looked up before the command is run again. A transaction
  // that ran and reverted (`ContractRevertError` of `send`) is named with its receipt's seq.
  const sent = typeof hash === 'string' ? hash : typeof txHash === 'string' ? txHash : undefined
  if (sent) lines.push(`transaction: ${printable(sent)}`)
  else if (receipt && typeof receipt.txHash === 'string')
    lines.push(
      `transaction: ${printable(receipt.txHash)} (seq ${printable(String(receipt.seq))}, reverted; its nonce is used)`,
    )
  return lines
}
