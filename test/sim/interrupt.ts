/**
 * An interrupted simulator run (SIGINT, SIGTERM): it starts no further scenario, stops every
 * scenario's devnet, including those still starting, and exits 130.
 */

import { type Interruptible, onInterrupt as interruptWith } from '../../src/devnet/interrupt.ts'

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

export type { Interruptible } from '../../src/devnet/interrupt.ts'

/**
 * On the first SIGINT or SIGTERM, runs `stop` and exits 130, with src/devnet's handler (kept in
 * place: a second signal, which a wrapper such as tsx forwards, must not end the process before
 * `stop` is done and leave processes behind).
 */
export function onInterrupt(
  stop: () => Promise<void>,
  via?: Interruptible,
): { readonly interrupted: boolean } {
  return interruptWith(stop, {
    message: (signal) => `sim: ${signal}, stopping the running scenarios`,
    ...(via ? { via } : {}),
  })
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
