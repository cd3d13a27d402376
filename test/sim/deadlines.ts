/**
 * The simulator's chain controller: which challenge deadline it moves anvil's clock past next,
 * and when.
 */
import type { Stages } from './stages.ts'

/** The fields of an instance the choice depends on (as `readInstance` returns them). */
export type OpenChallenges = {
  phaseName: string
  challengeDeadline: bigint
  watchdogMask: number
  watchdogDeadline: bigint
}

/**
 * The earliest deadline still open (0n when none is), so deadlines pass in the order they
 * would in real time. An executor challenged while its watchdog is silent challenges that
 * watchdog, extending its own deadline by Δ; it needs the watchdog's deadline to pass, the slot
 * refilled and the newcomer synchronised before its own deadline. Passing the later deadline
 * at once passes both and times out an honest executor (simulator seed 159).
 */
export function nextDeadline(info: OpenChallenges): bigint {
  const open = [
    info.phaseName === 'ExecutorChallenged' ? info.challengeDeadline : 0n,
    info.phaseName === 'WatchdogsChallenged' || info.watchdogMask !== 0
      ? info.watchdogDeadline
      : 0n,
  ].filter((d) => d > 0n)
  open.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
  return open[0] ?? 0n
}

/** Wall-clock time an open challenge gets before the simulator lets Δ pass. */
export const ANSWER_GRACE_MS = 8_000

/** The chain whose clock the controller moves (anvil, in the simulator). */
export type ChainClock = {
  /** The instance's open challenges. */
  read: () => Promise<OpenChallenges>
  /** The latest block's timestamp. */
  timestamp: () => Promise<bigint>
  /** Moves the chain's clock `seconds` on and mines a block. */
  advance: (seconds: number) => Promise<void>
}

/** Wall-clock time as the controller sees it. */
export type Clock = { now: () => number; sleep: (ms: number) => Promise<void> }

const realTime: Clock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
}

/**
 * Stands in for the passage of time on the chain: once a challenge has been open for
 * `ANSWER_GRACE_MS` of wall-clock time (ample for an honest member to answer), the chain's
 * clock moves past its deadline, so the timeout or finalisation follows without waiting for Δ.
 * Δ on a real chain is far longer than a restart, so no deadline passes while an operator is
 * (re)starting (`restarting.count` > 0): an honest member that crashed and came back answers its
 * challenges in time, and the grace starts again once every operator is up. Runs from the
 * instance's set-up until the scenario's final checks are done: a challenge open then would
 * otherwise hold the scenario for a real-time Δ.
 */
export async function chainController(
  chain: ChainClock,
  o: {
    stages: Stages
    restarting: { count: number }
    /** Called for each deadline passed, with the instance's open challenges before it passed. */
    passed: (deadline: bigint, info: OpenChallenges) => void
    /** Called when an open deadline is first seen (for the scenario's timeline). */
    opened?: (deadline: bigint, info: OpenChallenges) => void
    clock?: Clock
  },
): Promise<void> {
  const clock = o.clock ?? realTime
  const deadline = clock.now() + 900_000
  const seen = new Map<string, number>()
  while (!o.stages.reached('ended') && clock.now() < deadline) {
    await clock.sleep(300)
    if (o.restarting.count > 0) {
      for (const k of seen.keys()) seen.set(k, clock.now())
      continue
    }
    try {
      const info = await chain.read()
      const open = nextDeadline(info)
      if (open === 0n) continue
      const key = `${info.phaseName}:${info.watchdogMask}:${open}`
      const first = seen.get(key) ?? clock.now()
      if (!seen.has(key)) o.opened?.(open, info)
      seen.set(key, first)
      if (clock.now() - first < ANSWER_GRACE_MS) continue
      const now = await chain.timestamp()
      if (now <= open) {
        await chain.advance(Number(open - now) + 1)
        o.passed(open, info)
      }
    } catch {
      // The chain is local; a failed read is retried on the next round.
    }
  }
}
