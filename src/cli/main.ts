#!/usr/bin/env node
/**
 * The `pose` command (SPEC §2: CLI). It parses and validates arguments (src/cli/program.ts) and
 * calls the SDK, the operator node or the devnet (src/cli/run.ts); it holds no business logic.
 * A rejected command line prints `error [CODE]: message` and exits with 2; a command that fails
 * while running prints `error: message`, or `error [CODE]: message` when its error carries a
 * code (and `details: ...`, and `transaction: 0x...` when it sent one), and exits with 1.
 */
import { runFailureLines } from './failure.ts'
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
  for (const line of runFailureLines(e, Boolean(process.env.POSE_DEBUG))) console.error(line)
  process.exitCode = 1
})
