/**
 * Restarting operators in a simulator whose operators also crash at named points: the crash
 * watcher that brings those back at once, the lock it shares with the fault schedule, and the
 * restart of an operator the fault schedule crashed.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { waitFor } from '../e2e/helpers.ts'
import type { Stages } from './stages.ts'

/** What the restart needs of the devnet. */
export type Restartable = {
  operators: ReadonlyArray<{ dataDir: string }>
  startOperator: (i: number) => Promise<void>
}

/** What the crash watcher needs of the devnet. */
export type Watched = Pick<Restartable, 'startOperator'> & {
  operators: Array<{
    dataDir: string
    process: { exitCode: number | null; signalCode: NodeJS.Signals | null } | undefined
  }>
  killEnclave: (i: number) => unknown
  killOperator: (i: number, signal: NodeJS.Signals) => Promise<void>
}

/** The marker an operator leaves in its data directory when it crashes at a named point. */
export const crashMarker = (dataDir: string): string => join(dataDir, 'crash-point')

/**
 * Starts operator `i`. An operator that crashes at a named point while it starts (restoring,
 * catching up or dropping a removed instance's state, before it serves) is one more injected
 * crash, not a failed fault: it left its marker, and the crash watcher counts it and restarts
 * the operator (simulator seed 188). Any other failure to start is thrown.
 */
export async function restartCrashed(devnet: Restartable, i: number): Promise<void> {
  await devnet.startOperator(i).catch((e: Error) => {
    if (!existsSync(crashMarker(devnet.operators[i]!.dataDir))) throw e
  })
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** How long a fault or a restart waits for the lock at most (the scenario's own bound is 15 min). */
export const LOCK_WAIT_MS = 600_000

/**
 * Taken by the fault schedule while it injects a fault and by the crash watcher while it
 * restarts an operator, so the two do not kill and start operators at once.
 */
export class Lock {
  private taken = false

  /**
   * @param maxWaitMs how long `take` waits for the lock before it gives up: longer than any
   *   fault holds it (an operator's restart, a partition waiting for the workload), so a lock
   *   never released ends the scenario with an error instead of hanging it.
   * @param pollMs how often `take` looks whether the lock is free.
   */
  constructor(
    private readonly maxWaitMs = LOCK_WAIT_MS,
    private readonly pollMs = 50,
  ) {}

  get held(): boolean {
    return this.taken
  }

  /** Waits until the lock is free and takes it; throws after `maxWaitMs` (a bounded number of polls). */
  async take(): Promise<void> {
    const deadline = Date.now() + this.maxWaitMs
    const polls = Math.ceil(this.maxWaitMs / this.pollMs)
    for (let n = 0; this.taken; n++) {
      if (n >= polls || Date.now() > deadline)
        throw new Error(`the fault lock was held for more than ${this.maxWaitMs} ms`)
      await pause(this.pollMs)
    }
    this.taken = true
  }

  release(): void {
    this.taken = false
  }

  /** Takes the lock while `f` runs. */
  async hold<T>(f: () => Promise<T>): Promise<T> {
    await this.take()
    try {
      return await f()
    } finally {
      this.release()
    }
  }

  /** Releases the lock while `f` runs and takes it back afterwards. */
  async lend<T>(f: () => Promise<T>): Promise<T> {
    this.release()
    try {
      return await f()
    } finally {
      await this.take()
    }
  }
}

/**
 * How an operator's process ended up once the crash watcher stopped: running; crashed at a named
 * point after the watcher's last round (its marker names the point: one more injected crash,
 * not a bug; the termination seals right up to the end, simulator seed 1722); or dead without
 * a marker, which no fault explains.
 */
export function endState(op: Watched['operators'][number]): 'running' | 'died' | { at: string } {
  const p = op.process
  if (p && p.exitCode === null && p.signalCode === null) return 'running'
  const marker = crashMarker(op.dataDir)
  return existsSync(marker) ? { at: readFileSync(marker, 'utf8') } : 'died'
}

/**
 * Restarts operators that crash at named points, at once, from the instance's set-up on (a
 * crash can come while the instance is set up) until the scenario ends; any other death is a
 * violation. A round is skipped while the fault schedule holds the lock.
 */
export async function watchCrashes(
  devnet: Watched,
  o: {
    stages: Stages
    lock: Lock
    /** Counts a crash of operator `i` at the named point `point`. */
    crashed: (point: string, i: number) => void
    check: (ok: boolean, what: string) => void
    log: (line: string) => void
    /** Operators the scenario keeps down after a crash at a named point; it restarts them. */
    held?: ReadonlySet<number>
  },
): Promise<void> {
  const deadline = Date.now() + 900_000
  while (!o.stages.reached('ended') && Date.now() < deadline) {
    await pause(200)
    if (o.lock.held) continue
    for (const [i, op] of devnet.operators.entries()) {
      const p = op.process
      if (!p || (p.exitCode === null && p.signalCode === null)) continue
      const marker = crashMarker(op.dataDir)
      if (!existsSync(marker)) {
        o.check(false, `operator ${i} died (${p.signalCode ?? p.exitCode}) without being killed`)
        op.process = undefined
        continue
      }
      o.crashed(readFileSync(marker, 'utf8'), i)
      rmSync(marker)
      await o.lock.take()
      devnet.killEnclave(i)
      await devnet.killOperator(i, 'SIGKILL')
      if (o.held?.has(i)) {
        o.lock.release()
        o.log(`  fault: operator ${i} crashed at a named point; kept down`)
        continue
      }
      // Crashing at a named point again while it starts is one more injected crash: the next
      // round counts it and restarts it.
      await restartCrashed(devnet, i).catch((e: Error) =>
        o.check(false, `restart ${i}: ${e.message}`),
      )
      o.lock.release()
      o.log(`  fault: operator ${i} crashed at a named point and restarted`)
    }
  }
}

/**
 * Waits up to `timeoutMs` until `recovered` holds, with the lock lent to the crash watcher
 * meanwhile: the pool recovers only if a member that crashes at a named point meanwhile comes
 * back (seed 62: the executor crashed at one while a fault waited, stayed down for two minutes,
 * and the s = 1 instance froze).
 */
export async function waitForRecovery(
  lock: Lock,
  recovered: () => Promise<boolean>,
  timeoutMs: number,
): Promise<void> {
  await lock.lend(() => waitFor('the pool to recover', recovered, timeoutMs))
}
