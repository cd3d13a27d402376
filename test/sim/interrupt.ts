/**
 * An interrupted simulator run (SIGINT, SIGTERM): it starts no further scenario, stops every
 * scenario's devnet, including those still starting, and exits 130.
 */

/** Devnets of the scenarios running now, so an interrupted run can stop them all. */
export class Devnets<D extends { stop: () => Promise<void> }> {
  private readonly up = new Set<D>()
  /** Devnets still starting (their processes exist before the start resolves). */
  private readonly starting = new Set<Promise<D>>()

  /** Tracks the devnet `start` resolves to, from now on; resolves to it once it is up. */
  async add(start: Promise<D>): Promise<D> {
    this.starting.add(start)
    try {
      const devnet = await start
      this.up.add(devnet)
      return devnet
    } finally {
      this.starting.delete(start)
    }
  }

  delete(devnet: D): void {
    this.up.delete(devnet)
  }

  /**
   * Stops every devnet, including those still starting: they are stopped as soon as they are up
   * (a failed start cleans up after itself).
   */
  async stopAll(): Promise<void> {
    const stop = (d: D) => d.stop().catch(() => undefined)
    await Promise.all([
      ...[...this.up].map(stop),
      ...[...this.starting].map((p) => p.then(stop, () => undefined)),
    ])
  }
}

/** Where the signals come from and how the run exits (the process, unless a test stands in). */
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

/**
 * On the first SIGINT or SIGTERM, runs `stop` and exits 130. The handlers stay in place: a
 * second signal (a wrapper such as tsx forwards the one it got) would otherwise meet Node's
 * default action and end the process before `stop` is done, leaving processes behind.
 */
export function onInterrupt(
  stop: () => Promise<void>,
  via: Interruptible = thisProcess,
): { readonly interrupted: boolean } {
  let interrupted = false
  for (const signal of ['SIGINT', 'SIGTERM'] as const)
    via.signals.on(signal, () => {
      if (interrupted) return
      interrupted = true
      via.log(`sim: ${signal}, stopping the running scenarios`)
      void stop().then(() => via.exit(130))
    })
  return {
    get interrupted() {
      return interrupted
    },
  }
}

/**
 * Runs `run` for each seed in order, up to `jobs` at once; once `interrupted()` holds, no
 * further seed starts. Resolves to the results in the order they finished.
 */
export async function runSeeds<R>(
  seeds: readonly number[],
  jobs: number,
  run: (seed: number) => Promise<R>,
  interrupted: () => boolean,
): Promise<R[]> {
  const results: R[] = []
  let next = 0
  await Promise.all(
    Array.from({ length: jobs }, async () => {
      while (next < seeds.length && !interrupted()) {
        const seed = seeds[next++]!
        results.push(await run(seed))
      }
    }),
  )
  return results
}
