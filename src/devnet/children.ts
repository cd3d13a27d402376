/**
 * Child processes (anvil, operator nodes) that must not outlive the process that started them.
 * Stopping a devnet kills them in order; this is the backstop when that never runs: the parent
 * exits through an uncaught error (e.g. EPIPE on a closed stdout) or `process.exit`. Each child
 * still running then gets SIGKILL (enclaves follow their operator on IPC disconnect).
 * A signal whose default action ends the process emits no 'exit', so this backstop does not run
 * then: a long-running entry point (`pose devnet`, `pose operator start`, the simulator, the
 * benchmarks) keeps a SIGINT and SIGTERM handler for its whole run (src/devnet/interrupt.ts).
 */
import type { ChildProcess } from 'node:child_process'

const alive = new Set<ChildProcess>()
let installed = false

function killAll(): void {
  for (const child of alive) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  }
  alive.clear()
}

/** Registers `child` to be killed if this process exits while it still runs. */
export function killOnExit(child: ChildProcess): ChildProcess {
  if (!installed) {
    installed = true
    process.once('exit', killAll)
  }
  alive.add(child)
  child.once('exit', () => alive.delete(child))
  return child
}
