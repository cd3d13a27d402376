/**
 * Interrupting a long-running command (the devnet demo, an operator node): one handler for
 * SIGINT and SIGTERM, installed before anything starts and kept in place until the process
 * exits. Node emits no 'exit' event when a signal's default action ends the process, so without
 * it the backstops of src/devnet/children.ts and src/devnet/anvil.ts (kill the children, remove
 * their temporary directories) never run.
 */

/** Where the signals come from and how the process exits (the process, unless a test stands in). */
export type Interruptible = {
  signals: { on: (signal: 'SIGINT' | 'SIGTERM', listener: () => void) => unknown }
  exit: (code: number) => void
  log: (line: string) => void
}

const thisProcess: Interruptible = {
  signals: process,
  exit: (code) => process.exit(code),
  log: (line) => console.error(line),
}

export type OnInterruptOptions = {
  /** The line logged on the first signal, given its name (default: "SIGINT: stopping"). */
  message?: (signal: 'SIGINT' | 'SIGTERM') => string
  /** The exit code once `stop` resolved (default 130, as a shell reports an interrupt). */
  exitCode?: number
  via?: Interruptible
}

/**
 * On the first SIGINT or SIGTERM, runs `stop` and exits with `exitCode`, or with 1 once `stop`
 * rejected (its error logged). The handlers stay in place: a second signal (a wrapper such as
 * tsx or npm forwards the one it got, or an impatient Ctrl-C) would otherwise meet Node's default
 * action and end the process before `stop` is done, leaving processes and directories behind.
 * Later signals are logged and otherwise ignored.
 */
export function onInterrupt(
  stop: (signal: 'SIGINT' | 'SIGTERM') => Promise<void>,
  opts: OnInterruptOptions = {},
): { readonly interrupted: boolean } {
  const via = opts.via ?? thisProcess
  let interrupted = false
  for (const signal of ['SIGINT', 'SIGTERM'] as const)
    via.signals.on(signal, () => {
      if (interrupted) {
        via.log(`${signal}: already stopping, please wait`)
        return
      }
      interrupted = true
      via.log(opts.message?.(signal) ?? `${signal}: stopping`)
      void Promise.resolve()
        .then(() => stop(signal))
        .then(
          () => via.exit(opts.exitCode ?? 130),
          (e: unknown) => {
            via.log(`stopping failed: ${e instanceof Error ? e.message : String(e)}`)
            via.exit(1)
          },
        )
    })
  return {
    get interrupted() {
      return interrupted
    },
  }
}
