/**
 * The rules of the saturation search (bench/sections/throughput.ts), kept free of I/O so that
 * unit tests check them.
 */

/**
 * A system whose median rate fell below this share of its best for two numbers of clients in a
 * row is past saturation: larger numbers are not tried (anvil peaks at 8 clients and took a
 * minute to fund 256 accounts for each run).
 */
export const PAST_SATURATION = 0.8

/**
 * Transfers each client sends in a saturation run: `satTxs` shared by the clients, at least
 * `minTxsPerClient` each.
 */
export function txsPerClient(
  cfg: { satTxs: number; minTxsPerClient: number },
  clients: number,
): number {
  return Math.max(Math.ceil(cfg.satTxs / clients), cfg.minTxsPerClient)
}

/**
 * Whether the search is past saturation after the medians so far (in the order tried): the
 * last two are both below `PAST_SATURATION` of the best.
 */
export function pastSaturation(medians: readonly number[]): boolean {
  if (medians.length < 2) return false
  const best = Math.max(...medians)
  return medians.slice(-2).every((m) => m < PAST_SATURATION * best)
}

/**
 * Whether the best of the medians (in the order tried, by increasing number of clients) is the
 * last of several: the search never showed the rate falling, so saturation is not shown.
 */
export function bestAtLargest(medians: readonly number[]): boolean {
  if (medians.length < 2) return false
  return medians.at(-1)! >= Math.max(...medians)
}

/**
 * Whether the best of the medians (in the order tried, by increasing number of clients) is the
 * first of several: fewer clients were not tried, so the search never showed the rate rising
 * to its best (anvil peaks at its smallest number, 8).
 */
export function bestAtSmallest(medians: readonly number[]): boolean {
  if (medians.length < 2) return false
  return medians[0]! >= Math.max(...medians)
}
