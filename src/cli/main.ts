#!/usr/bin/env node
/**
 * The `pose` command (SPEC §2: CLI). It parses and validates arguments (src/cli/program.ts) and
 * calls the SDK, the operator node or the devnet (src/cli/run.ts); it holds no business logic.
 * A rejected command line prints `error [CODE]: message` and exits with 2; a command that fails
 * while running prints `error: message` (and `details: ...`, and `transaction: 0x...` when it
 * sent one) and exits with 1.
 */
import { runCli, USAGE_HINT } from './program.ts'
import { CliError, printable } from './validate.ts'

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
function runFailureLines(e: unknown, debug: boolean): string[] {
  // viem and SDK errors carry a one-line `shortMessage` and `details` beside a long message
  // (request arguments, docs links, version); POSE_DEBUG=1 prints all of it.
  const { shortMessage, details, hash, txHash } = (e ?? {}) as {
    shortMessage?: unknown
    details?: unknown
    hash?: unknown
    txHash?: unknown
  }
  const lines: string[] = []
  if (typeof shortMessage === 'string' && !debug) {
    lines.push(`error: ${printable(shortMessage)}`)
    if (typeof details === 'string' && details && details !== shortMessage)
      lines.push(`details: ${printable(details)}`)
  } else if (e instanceof Error)
    lines.push(`error: ${debug ? escapeLines(e.stack ?? e.message) : printable(e.message)}`)
  else lines.push(`error: ${printable(String(e))}`)
  // A transaction that was sent (a chain transaction, `ChainTxError`, or an instance's,
  // `TransactionUnconfirmedError`), on its own line as the message may be cut: one without a
  // receipt may still land, and is looked up before the command is run again.
  const sent = typeof hash === 'string' ? hash : typeof txHash === 'string' ? txHash : undefined
  if (sent) lines.push(`transaction: ${printable(sent)}`)
  return lines
}

runCli(process.argv.slice(2), {
  // Loaded only for a valid command line, so usage errors and --help stay fast.
  run: async (c) => (await import('./run.ts')).runCommand(c),
}).catch((e: unknown) => {
  if (e instanceof CliError) {
    console.error(`error [${e.code}]: ${e.message}`)
    if (e.hint) console.error(USAGE_HINT)
    process.exitCode = 2
    return
  }
  for (const line of runFailureLines(e, Boolean(process.env.POSE_DEBUG))) console.error(line)
  process.exitCode = 1
})
