#!/usr/bin/env node
/**
 * The `pose` command (SPEC §2: CLI). It parses and validates arguments (src/cli/program.ts) and
 * calls the SDK, the operator node or the devnet (src/cli/run.ts); it holds no business logic.
 * A rejected command line prints `error [CODE]: message` and exits with 2; a command that fails
 * while running prints `error: message` (and `details: ...`) and exits with 1.
 */
import { runCli, USAGE_HINT } from './program.ts'
import { CliError } from './validate.ts'

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
  // viem and SDK errors carry a one-line `shortMessage` and `details` beside a long message
  // (request arguments, docs links, version); POSE_DEBUG=1 prints all of it.
  const { shortMessage, details } = (e ?? {}) as { shortMessage?: unknown; details?: unknown }
  if (typeof shortMessage === 'string' && !process.env.POSE_DEBUG) {
    console.error(`error: ${shortMessage}`)
    if (typeof details === 'string' && details && details !== shortMessage)
      console.error(`details: ${details}`)
  } else if (e instanceof Error)
    console.error(`error: ${process.env.POSE_DEBUG ? e.stack : e.message}`)
  else console.error(`error: ${String(e)}`)
  process.exitCode = 1
})
