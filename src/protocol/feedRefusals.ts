/**
 * How a `chain` ecall that refused the events of some instances, having applied those of every
 * other, names them to its host: in its error's `details`, one line per refused instance,
 *
 *     refused instance=<decimal> event=<decimal> code=<error code> halted=<0|1>: <reason>
 *
 * and, past `MAX_REFUSALS_LISTED` of them (the enclave host keeps 4,000 characters of details),
 * a last line `refused more=<count>: instances not listed`. The enclave writes it
 * (`ChainFeedRefused`), the operator's watcher reads it; a host that reads none of it sees a
 * failed batch.
 */

/** One instance whose events a `chain` ecall refused, from the event named on. */
export type FeedRefusal = {
  instance: bigint
  /** The refused event. */
  index: bigint
  /** The enclave's error code (OUT_OF_ORDER, STALE_EVENT, MALFORMED). */
  code: string
  /** The instance's view diverged from the feed: it takes no later event, for good. */
  halted: boolean
  reason: string
}

/** Refusals the details list one a line; the others are counted. */
export const MAX_REFUSALS_LISTED = 12

/** The details naming `refused` (see the file's comment). */
export function encodeFeedRefusals(refused: readonly FeedRefusal[]): string {
  const lines = refused
    .slice(0, MAX_REFUSALS_LISTED)
    .map(
      (r) =>
        `refused instance=${r.instance} event=${r.index} code=${r.code} halted=${r.halted ? 1 : 0}: ${r.reason.replace(/\s+/g, ' ').slice(0, 120)}`,
    )
  if (refused.length > MAX_REFUSALS_LISTED)
    lines.push(`refused more=${refused.length - MAX_REFUSALS_LISTED}: instances not listed`)
  return lines.join('\n')
}

const REFUSAL_LINE =
  /^refused instance=(\d{1,78}) event=(\d{1,20}) code=([A-Z_]{1,32}) halted=([01]): ([^\n]{0,300})$/gm
const UNLISTED_LINE = /^refused more=(\d{1,6}): /m

/**
 * The refused instances an error's `details` name (`unlisted`: how many more were refused
 * without being named); none for details of any other error.
 */
export function decodeFeedRefusals(details: unknown): {
  refused: FeedRefusal[]
  unlisted: number
} {
  const refused: FeedRefusal[] = []
  if (typeof details !== 'string' || details.length > 16_000) return { refused, unlisted: 0 }
  for (const m of details.matchAll(REFUSAL_LINE)) {
    refused.push({
      instance: BigInt(m[1]!),
      index: BigInt(m[2]!),
      code: m[3]!,
      halted: m[4] === '1',
      reason: m[5]!,
    })
  }
  const more = refused.length > 0 ? UNLISTED_LINE.exec(details) : null
  return { refused, unlisted: more ? Number(more[1]) : 0 }
}
