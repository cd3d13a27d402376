/**
 * The simulator's checks that need no devnet (docs/simulator.md, "Invariants checked"): which
 * counters are injected faults, what a balance view may answer given the receipts, what the
 * pool must look like at the end, which operator log errors no fault explains, and which
 * slashes or removals no fault explains. Pure, so test/unit/simChecks.test.ts can check them.
 */

/**
 * Counters the simulator keeps that are not injected faults: restarts it makes after a fault,
 * faults it skipped or that did not fire, and steps of the scenario's end. The headline's fault
 * count leaves them out; the run prints them apart.
 */
const NOT_FAULTS = new Set([
  'restart',
  'skipped-pool-recovering',
  'chain-reorg-skipped',
  'terminate',
  'terminate-reorg-skipped',
  'terminate-reorg-deposit-moved',
  'terminate-withhold-rechallenge',
  'terminate-withhold-pages-not-sent',
  'terminate-restart-executor-not-fired',
  'terminate-crash-executor-not-fired',
  'terminate-crash-watchdog-skipped',
  'armed-final-page-crash',
])

/** Fault classes the simulator injects (docs/simulator.md, the tables of faults). */
const INJECTED = [
  /^crash-(executor|watchdog)$/,
  /^crash-(before-seal|after-seal|handover|challenge-response|final-page)$/,
  /^(restart-member|stale-restart|time-jump|deadline-passed|partition|chain-reorg)$/,
  /^client-link-(cut-request|cut-response|delay)$/,
  /^link-(drop|duplicate|replay|delay|tamper)$/,
  /^chain-(hold|reorder|replay)$/,
  /^terminate-(withhold-pages|crash-watchdog|restart-executor|crash-executor|reorg)$/,
]

/**
 * Whether counter `k` counts an injected fault. A counter that is neither a known fault class
 * nor known bookkeeping counts as bookkeeping, so the headline never grows by a counter nobody
 * classified (the unit test names every class of the docs).
 */
export function isInjectedFault(k: string): boolean {
  return !NOT_FAULTS.has(k) && INJECTED.some((re) => re.test(k))
}

/** Splits a scenario's counters into injected faults and everything else. */
export function splitCounters(counts: Record<string, number>): {
  faults: Record<string, number>
  other: Record<string, number>
} {
  const faults: Record<string, number> = {}
  const other: Record<string, number> = {}
  for (const [k, n] of Object.entries(counts)) (isInjectedFault(k) ? faults : other)[k] = n
  return { faults, other }
}

/** A token transfer of the workload, from the moment its request was sent. */
export type SentTransfer = {
  from: number
  to: number
  amount: bigint
  /** When its request was sent (`performance.now()`). */
  sentAt: number
  /**
   * `success` once its receipt says so (at `receiptedAt`); `not-executed` for a receipt that
   * says it did nothing (`revert`, `error`); `unknown` while pending or after the request
   * failed (it may still have run).
   */
  outcome: 'success' | 'not-executed' | 'unknown'
  receiptedAt?: number | undefined
}

/**
 * The range a view of user `u`'s token balance may answer (SPEC §3: a view runs on the
 * executor's state, which holds every released update and maybe later ones not yet released).
 * The user's own transfers are exact: it sends one request at a time, so each of its earlier
 * transfers was answered before the view was sent (one whose request failed may or may not have
 * run). An incoming transfer is surely in the view if its receipt came before the view was sent
 * (released, so held by every member that may serve it), and may be in it only if it was sent
 * before the view was answered.
 */
export function viewBounds(
  u: number,
  initial: bigint,
  transfers: readonly SentTransfer[],
  view: { sentAt: number; answeredAt: number },
): { low: bigint; high: bigint } {
  let low = initial
  let high = initial
  for (const t of transfers) {
    if (t.from === u && t.to === u) continue
    if (t.from === u) {
      if (t.outcome === 'success') {
        low -= t.amount
        high -= t.amount
      } else if (t.outcome === 'unknown') low -= t.amount
    } else if (t.to === u) {
      if (t.outcome === 'success' && t.receiptedAt !== undefined && t.receiptedAt < view.sentAt)
        low += t.amount
      if (t.outcome !== 'not-executed' && t.sentAt < view.answeredAt) high += t.amount
    }
  }
  return { low, high }
}

/** What the end-state pool check reads: the instance on-chain and each member's own role. */
export type PoolShape = {
  operators: readonly string[]
  executorSlot: number
  /** The role each live member's enclave reports (`executor`, `watchdog`, `none`), by slot. */
  roles: ReadonlyArray<{ slot: number; role: string }>
}

const ZERO_ADDRESS = /^0x0{40}$/

/**
 * What is wrong with the pool at the end of a scenario (empty when nothing is): every slot
 * filled, its operators distinct, and exactly one member, the one at the on-chain executor
 * slot, taking itself for the executor, every other one for a watchdog.
 */
export function poolProblems(p: PoolShape): string[] {
  const problems: string[] = []
  const empty = p.operators.flatMap((op, slot) => (ZERO_ADDRESS.test(op) ? [slot] : []))
  if (empty.length > 0) problems.push(`slots ${empty.join(', ')} empty`)
  const filled = p.operators.filter((op) => !ZERO_ADDRESS.test(op)).map((op) => op.toLowerCase())
  if (new Set(filled).size !== filled.length)
    problems.push(`an operator holds two slots (${p.operators.join(', ')})`)
  const executors = p.roles.filter((r) => r.role === 'executor').map((r) => r.slot)
  if (executors.length !== 1 || executors[0] !== p.executorSlot)
    problems.push(
      `members in slots [${executors.join(', ')}] act as executor, the chain names slot ${p.executorSlot}`,
    )
  const others = p.roles.filter((r) => r.slot !== p.executorSlot && r.role !== 'watchdog')
  for (const r of others) problems.push(`the member in slot ${r.slot} acts as ${r.role}`)
  const missing = p.operators.flatMap((op, slot) =>
    !ZERO_ADDRESS.test(op) && !p.roles.some((r) => r.slot === slot) ? [slot] : [],
  )
  if (missing.length > 0) problems.push(`no role from slots ${missing.join(', ')}`)
  return problems
}

/** A parsed line of an operator's log (pino JSON). */
type LogEntry = { level?: unknown; msg?: unknown; code?: unknown; halted?: unknown }

/** Why an operator may log errors a healthy pool does not cause. */
export type LogExcuses = {
  /** The operator's chain feed lies (`POSE_CHAIN_FAULTS`): its enclave may refuse its feed for good. */
  lyingFeed: boolean
}

/**
 * The errors in an operator's log that no fault explains: a block offered that a
 * reorganisation later replaced (`CHAIN_REORG`; reorganisations stay within the confirmation
 * depth), a chain feed its enclave refused for good (`CHAIN_FEED_REFUSED` with `halted`),
 * unless the feed lies; an instance its sealed state did not restore; an enclave output the
 * operator failed to handle; a request that failed inside the operator. Other errors (an
 * enclave process killed with its operator, say) are the faults' own traces.
 */
export function unexplainedLogErrors(text: string, excuses: LogExcuses): string[] {
  const found = new Map<string, number>()
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue
    let e: LogEntry
    try {
      e = JSON.parse(line) as LogEntry
    } catch {
      continue
    }
    if (typeof e.level !== 'number' || e.level < 50) continue
    const msg = typeof e.msg === 'string' ? e.msg : ''
    let what: string | undefined
    if (e.code === 'CHAIN_REORG') what = 'fed its enclave a block a reorganisation replaced'
    else if (e.code === 'CHAIN_FEED_REFUSED' && e.halted === true && !excuses.lyingFeed)
      what = 'its enclave refused its chain feed for good (CHAIN_FEED_REFUSED, halted)'
    else if (msg.startsWith('Instance not restored from its sealed state'))
      what = `instance not restored from its sealed state (${msg.includes('no longer serves') ? 'set aside' : 'files kept'})`
    else if (msg === 'Enclave output not handled') what = 'an enclave output was not handled'
    else if (msg === 'Request failed inside the operator') what = 'a request failed inside it'
    if (what) found.set(what, (found.get(what) ?? 0) + 1)
  }
  return [...found].map(([what, n]) => (n > 1 ? `${what} (${n} times)` : what))
}

/** A slash or a removal from the pool the manager recorded, by operator index. */
export type PenaltyEvent = { operator: number; what: string }

/**
 * Slashes and removals of operators no fault targeted: an honest operator answers every
 * challenge on-chain (its chain provider stays reachable whatever its links do), so only a
 * member the simulator crashed, restarted, partitioned, served a stale state, fed a lying
 * chain view or made withhold pages may lose its stake or its slot.
 */
export function unexplainedPenalties(
  events: readonly PenaltyEvent[],
  targeted: ReadonlySet<number>,
): string[] {
  return events
    .filter((e) => !targeted.has(e.operator))
    .map((e) => `operator ${e.operator}, which no fault targeted: ${e.what}`)
}
