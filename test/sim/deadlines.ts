/**
 * Which challenge deadline the simulator's chain controller moves anvil's clock past next.
 */

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
