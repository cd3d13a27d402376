/**
 * The end of every simulator scenario (SPEC §4 Coins; docs/decisions/0029): the issuer ends
 * the instance from inside the world, with a seeded fault while the executor publishes the
 * final balances, and the simulator checks what termination promises: the instance terminates
 * on-chain and releases its pool; the final balances list exactly every account holding coins,
 * each with its cumulative withdrawal; every user is paid exactly the rest once; the manager pays
 * out nothing it was not given.
 */
import { getAddress, keccak256, parseEther, stringToBytes } from 'viem'
import { closableTokenAbi } from '../../examples/contracts.generated.ts'
import {
  poseManagerAbi,
  readFinalBalancesPages,
  readInstance,
  readOperatorRecord,
} from '../../src/chain/manager.ts'
import { ChainTxError } from '../../src/chain/sender.ts'
import { type PoseClient, type PoseReceipt, PoseRequestError } from '../../src/client/index.ts'
import type { Devnet } from '../../src/devnet/devnet.ts'
import type { CrashPoints } from '../../src/operator/faults.ts'
import {
  bytesToHex,
  finalBalanceProof,
  hexToBytes,
  MAX_FINAL_ACCOUNTS,
} from '../../src/protocol/index.ts'
import { waitFor } from '../e2e/helpers.ts'
import { poolMembers } from './pool.ts'
import { type Lock, restartCrashed } from './restart.ts'

/** A `POSE_CRASH_POINTS` configuration. */
export type CrashPointsConfig = CrashPoints['config']

/** What may go wrong while the instance ends. */
export type TerminationFault =
  /** Nothing beyond the scenario's standing faults (links, chain feeds, named crash points). */
  | 'none'
  /**
   * The executor's host withholds every page (restarted before `close` with
   * `POSE_WITHHOLD_PAGES`) and would send anything else: the issuer challenges it after
   * `close`, it gives no answer but pages (decision 0030), so it is timed out and slashed, and
   * the promoted member publishes.
   */
  | 'withhold-pages'
  /** A watchdog crashes before `close`: `close`'s receipt, and so the publication, waits for its removal. */
  | 'crash-watchdog'
  /**
   * The executor restarts right after `close` and resumes the publication from sealed state;
   * with two pages it crashes at its `final-page` crash point and is restarted at once.
   */
  | 'restart-executor'
  /**
   * The executor crashes right after `close` (with two pages, at its `final-page` crash point)
   * and stays down: a user's view challenges it, a watchdog is promoted and publishes or
   * finishes the pages.
   */
  | 'crash-executor'

export type TerminationPlan = {
  fault: TerminationFault
  /** Accounts the issuer pays coins to before the end: with more than a page, two pages. */
  recipients: number
  /**
   * Whether a user deposits again after `close`: right after it, racing the publication, or
   * (with two pages) once the first page is in, when the manager must refuse it.
   */
  lateDeposit: 'none' | 'after-close' | 'after-first-page'
  /**
   * With two pages: whether the chain is reorganised right after the first page, replacing the
   * blocks from that page's on (a late deposit among them may come before it, and the page then
   * fail as no longer naming the latest event).
   */
  reorg: boolean
}

/** Recipients of the paged case: more than one page of final balances with the users. */
export const PAGED_RECIPIENTS = MAX_FINAL_ACCOUNTS + 76
/** Recipients per payout transaction (well within an update and the per-transaction gas). */
const PAYOUT_CHUNK = 400
/** Coins (wei) each recipient gets. */
const PAYOUT_EACH = 1_000n
/** What the late deposit adds, if it lands before the publication starts. */
const LATE_DEPOSIT = parseEther('0.003')
/** How long the publication may take once nothing holds it up any more. */
const PUBLICATION_MS = 180_000
/** How long the issuer waits for an end before it challenges a withholding executor again. */
const RECHALLENGE_MS = 30_000
/** At most this many challenges again (each answered one was voided by a later event). */
const MAX_RECHALLENGES = 4

/** The plan of one scenario's end, from its own seeded draws. */
export function terminationPlan(rnd: () => number): TerminationPlan {
  const roll = rnd()
  const fault: TerminationFault =
    roll < 0.15
      ? 'none'
      : roll < 0.25
        ? 'withhold-pages'
        : roll < 0.45
          ? 'crash-watchdog'
          : roll < 0.7
            ? 'restart-executor'
            : 'crash-executor'
  const recipients = rnd() < 0.3 ? PAGED_RECIPIENTS : 0
  const late = rnd()
  const reorg = rnd()
  return {
    fault,
    recipients,
    lateDeposit:
      late < 0.5 ? 'none' : late < 0.75 && recipients > 0 ? 'after-first-page' : 'after-close',
    reorg: recipients > 0 && reorg < 0.5,
  }
}

/**
 * Whether a request's failure only says that the instance terminated while it was pending: the
 * SDK's `WRONG_PHASE` with the instance `Terminated` on-chain (simulator seed 1737: a promoted
 * executor ended the instance before it served a view that had challenged its predecessor).
 */
export function endedMeanwhile(e: unknown, phaseName: string): boolean {
  return e instanceof PoseRequestError && e.code === 'WRONG_PHASE' && phaseName === 'Terminated'
}

/** Deterministic recipients without keys: nobody claims their coins, which the checks expect. */
export function payoutRecipients(seed: number, n: number): `0x${string}`[] {
  return Array.from({ length: n }, (_, i) =>
    getAddress(`0x${keccak256(stringToBytes(`pose-sim ${seed} recipient ${i}`)).slice(-40)}`),
  )
}

export type TerminationContext = {
  seed: number
  devnet: Devnet
  /** The users; the first is the token's issuer. */
  clients: PoseClient[]
  instance: bigint
  /** What each user deposited and what it was paid on-chain before the end (its burns). */
  coins: Array<{ deposited: bigint; paid: bigint }>
  lock: Lock
  /** Sets environment variables (fault injection) for operator `i`'s next start only. */
  arm: (i: number, env: Record<string, string>) => void
  /** Records that a fault targets operator `i` (it may then be slashed or removed). */
  target: (i: number) => void
  /** User `u`'s token balance by its receipts (no transfer is sent after the workload). */
  tokenBalance: (u: number) => bigint
  /** Operators the crash watcher keeps down after a crash at a named point. */
  held: Set<number>
  /**
   * Reorganises the chain from block `from` on, with mining paused (`reorgFrom`), if that is
   * within the operators' confirmation depth (`depth` 0 otherwise).
   */
  reorgFrom: (from: bigint) => Promise<{ depth: number; moved: number }>
  count: (k: string, n?: number) => void
  log: (line: string) => void
  check: (ok: boolean, what: string) => void
  /** Runs a user's request, recording its latency; a rejection is a violation of the caller's. */
  timed: <T>(p: Promise<T>, what: string) => Promise<T>
}

/** The instance's live members by slot, with their operator's index. */
function members(ctx: TerminationContext) {
  return poolMembers(ctx.devnet, ctx.clients[0]!, ctx.instance)
}

/** How many pages of final balances other than the last are in on-chain. */
async function pagesPublished(ctx: TerminationContext): Promise<number> {
  const { publicClient } = ctx.clients[0]!
  return (await readFinalBalancesPages(publicClient, ctx.devnet.manager, ctx.instance)).size
}

/** Pages in on-chain, for the timeline: 'all' once terminated. */
async function pagesIn(ctx: TerminationContext): Promise<string> {
  const { info } = await members(ctx)
  return info.phaseName === 'Terminated' ? 'all' : String(await pagesPublished(ctx))
}

/** Restarts operator `i` (SIGTERM, then start) with the crash watcher held off. */
function restartNow(ctx: TerminationContext, i: number): Promise<void> {
  return ctx.lock.hold(async () => {
    await ctx.devnet.killOperator(i, 'SIGTERM')
    await ctx.devnet.startOperator(i)
  })
}

/** Kills operator `i` and its enclave (SIGKILL) with the crash watcher held off. */
function crash(ctx: TerminationContext, i: number): Promise<void> {
  return ctx.lock.hold(async () => {
    ctx.devnet.killEnclave(i)
    await ctx.devnet.killOperator(i, 'SIGKILL')
  })
}

/** Starts operator `i` again after a crash and lets the crash watcher look after it again. */
function restart(ctx: TerminationContext, i: number): Promise<void> {
  return ctx.lock.hold(async () => {
    ctx.held.delete(i)
    await restartCrashed(ctx.devnet, i)
    ctx.count('restart')
  })
}

/**
 * Ends the scenario's instance as `plan` says and checks the outcome. Returns the receipts the
 * users got on the way (payouts and `close`).
 */
export async function endInstance(
  ctx: TerminationContext,
  plan: TerminationPlan,
): Promise<PoseReceipt[]> {
  const { clients, instance, devnet, log, check, timed } = ctx
  const issuer = clients[0]!
  const receipts: PoseReceipt[] = []
  const recipients = payoutRecipients(ctx.seed, plan.recipients)
  log(
    `  termination: fault ${plan.fault}, ${recipients.length} payout recipients${plan.lateDeposit === 'none' ? '' : `, a deposit ${plan.lateDeposit}`}`,
  )
  for (let k = 0; k < recipients.length; k += PAYOUT_CHUNK) {
    const to = recipients.slice(k, k + PAYOUT_CHUNK)
    const r = await timed(
      issuer.writeContract({
        instance,
        abi: closableTokenAbi,
        functionName: 'payOut',
        args: [to, PAYOUT_EACH],
        value: BigInt(to.length) * PAYOUT_EACH,
        gasLimit: 20_000_000n,
      }),
      `payout to recipients ${k}…${k + to.length - 1}`,
    )
    check(r.status === 'success', `payout ${k}: ${r.status}`)
    receipts.push(r)
  }
  const paidOut = BigInt(recipients.length) * PAYOUT_EACH

  let down: number | undefined
  let phase = ''
  let extra = 0n
  const late = plan.lateDeposit === 'none' ? undefined : clients[clients.length - 1]!
  // A deposit racing the publication: credited before the first page, or refused on-chain; once
  // the first page is in, refused.
  const deposit = (afterFirstPage: boolean): Promise<bigint> =>
    late!.deposit({ instance, value: LATE_DEPOSIT }).then(
      () => {
        check(!afterFirstPage, 'a deposit after the first page of final balances was taken')
        return LATE_DEPOSIT
      },
      (e: unknown) => {
        const refused =
          e instanceof ChainTxError && /PoseManager_(Terminating|UnexpectedPhase)/.test(e.reason)
        check(refused, `late deposit: ${(e as Error).message.split('\n')[0]}`)
        return 0n
      },
    )
  let lateDeposit = Promise.resolve(0n)
  try {
    const executorFault = plan.fault === 'restart-executor' || plan.fault === 'crash-executor'
    const paged = recipients.length > 0
    const executor = executorFault ? (await members(ctx)).executor : undefined
    let armedProcess: { exitCode: number | null; signalCode: NodeJS.Signals | null } | undefined
    if (plan.fault === 'crash-watchdog') {
      const w = (await members(ctx)).watchdogs[0]
      if (w) {
        ctx.target(w.i)
        await crash(ctx, w.i)
        down = w.i
        ctx.count('terminate-crash-watchdog')
        log(`  termination: watchdog operator ${w.i} (slot ${w.slot}) crashed before close`)
      }
    } else if (executor && paged) {
      // Between two pages the window is a block at most: the executor is restarted with a crash
      // point armed right after its first page (kept down for `crash-executor`).
      const points: CrashPointsConfig = {
        seed: ctx.seed,
        probability: 1,
        points: ['final-page'],
        after: 0,
      }
      ctx.target(executor.i)
      ctx.arm(executor.i, { POSE_CRASH_POINTS: JSON.stringify(points) })
      if (plan.fault === 'crash-executor') ctx.held.add(executor.i)
      await restartNow(ctx, executor.i)
      armedProcess = devnet.operators[executor.i]!.process
      log(`  termination: executor operator ${executor.i} restarted to crash after its first page`)
    }
    let withholder: { i: number; stake: bigint; process: unknown } | undefined
    if (plan.fault === 'withhold-pages') {
      const { executor: e } = await members(ctx)
      if (e) {
        ctx.target(e.i)
        ctx.arm(e.i, { POSE_WITHHOLD_PAGES: '1' })
        await restartNow(ctx, e.i)
        const { process } = devnet.operators[e.i]!
        withholder = { i: e.i, stake: await stakeOf(ctx, e.i), process }
        log(`  termination: executor operator ${e.i} restarted to withhold every page`)
      }
    }
    const closed = await timed(
      issuer.writeContract({ instance, abi: closableTokenAbi, functionName: 'close' }),
      'close',
    )
    check(closed.status === 'success', `close: ${closed.status}`)
    receipts.push(closed)
    ctx.count('terminate')

    if (plan.lateDeposit === 'after-close') lateDeposit = deposit(false)
    if (withholder) {
      // Nobody but the issuer notices: it challenges the executor, which gives no answer but
      // pages; the chain controller passes the deadline and another member times it out. The
      // late deposit lands first: one after the challenge and its pages would void them, and
      // the executor would answer as ever (decision 0030, addendum), ending nothing.
      await lateDeposit
      await issuer.challengeExecutor({ instance }).then(
        () => ctx.count('terminate-withhold-pages'),
        (e: unknown) =>
          log(`  termination: the challenge failed: ${(e as Error).message.split('\n')[0]}`),
      )
    }
    if (plan.lateDeposit === 'after-first-page') {
      await waitFor(
        'the first page of final balances',
        async () => (await pagesPublished(ctx)) > 0,
        PUBLICATION_MS,
      ).catch(() => check(false, 'the first page of final balances never came'))
      lateDeposit = deposit(true)
    }
    if (plan.reorg) await reorgAfterFirstPage(ctx, lateDeposit)

    if (executor && paged) {
      // The crash point fires once the first page's call is done.
      const i = executor.i
      const p = armedProcess
      const fired = await waitFor(
        'the executor to crash after its first page',
        async () => !p || p.exitCode !== null || p.signalCode !== null,
        PUBLICATION_MS,
      ).then(
        () => p !== undefined,
        () => false,
      )
      if (plan.fault === 'crash-executor') down = i
      // Counted as a fault only if the armed crash fired (another member may have published).
      ctx.count(fired ? `terminate-${plan.fault}` : `terminate-${plan.fault}-not-fired`)
      log(
        fired
          ? `  termination: executor operator ${i} crashed after a page (pages in: ${await pagesIn(ctx)})`
          : `  termination: executor operator ${i} did not crash at its first page (pages in: ${await pagesIn(ctx)})`,
      )
    } else if (executor && plan.fault === 'restart-executor') {
      ctx.target(executor.i)
      await restartNow(ctx, executor.i)
      ctx.count('terminate-restart-executor')
      log(`  termination: executor operator ${executor.i} restarted after close`)
    } else if (executor) {
      ctx.target(executor.i)
      await crash(ctx, executor.i)
      down = executor.i
      ctx.count('terminate-crash-executor')
      log(
        `  termination: executor operator ${executor.i} crashed after close (pages in: ${await pagesIn(ctx)})`,
      )
    }
    if (down !== undefined && plan.fault === 'crash-executor') {
      // Nobody would notice a silent executor that holds the final balances back but a user:
      // one whose view finds no executor challenges it, and a watchdog takes over.
      const { info } = await members(ctx)
      if (info.phaseName !== 'Terminated') {
        const outcome = await timed(
          clients[1]!
            .readContract({ instance, abi: closableTokenAbi, functionName: 'myBalance' })
            .then(
              (bal) => {
                // No transfer runs after the workload: the view is exact.
                const expected = ctx.tokenBalance(1)
                check(bal === expected, `a view after close: balance ${bal}, expected ${expected}`)
                return 'answered'
              },
              // The promoted executor may end the instance before it serves the view: the SDK
              // then says so (simulator seed 1737).
              async (e: unknown) => {
                if (!endedMeanwhile(e, (await members(ctx)).info.phaseName)) throw e
                return 'refused: the instance terminated meanwhile'
              },
            ),
          'a view after close, the executor down',
        )
        log(`  termination: the view after close ${outcome}`)
      }
    }
    extra = await lateDeposit
    if (late && plan.reorg) {
      // The reorganisation may have moved the deposit on either side of the first page: the
      // manager's count says where it ended up, and the final balances must agree with it.
      const [deposited] = await instanceTotals(ctx)
      const moved = deposited - sum(ctx.coins.map((c) => c.deposited))
      check(moved === 0n || moved === LATE_DEPOSIT, `late deposit: ${moved} deposited on-chain`)
      if (moved !== extra) {
        ctx.count('terminate-reorg-deposit-moved')
        log("  termination: the reorganisation changed the late deposit's fate")
      }
      extra = moved
    }
    if (late) log(`  termination: the late deposit ${extra > 0n ? 'landed' : 'was refused'}`)

    // An executor whose pages an event after the challenge voided (a watchdog challenge of its
    // own, say) answers as ever (decision 0030, addendum): the issuer, seeing no termination,
    // challenges the withholder again, as a user would.
    let rechallengedAt = Date.now()
    let rechallenges = 0
    await waitFor(
      'the termination on-chain',
      async () => {
        phase = (await readInstance(issuer.publicClient, devnet.manager, instance)).phaseName
        if (
          withholder &&
          phase === 'Active' &&
          rechallenges < MAX_RECHALLENGES &&
          Date.now() - rechallengedAt >= RECHALLENGE_MS &&
          (await members(ctx)).executor?.i === withholder.i
        ) {
          rechallengedAt = Date.now()
          rechallenges++
          ctx.count('terminate-withhold-rechallenge')
          log('  termination: the withholder answered as ever; the issuer challenges it again')
          void issuer.challengeExecutor({ instance }).catch((e: unknown) => {
            log(`  termination: the challenge failed: ${(e as Error).message.split('\n')[0]}`)
          })
        }
        return phase === 'Terminated'
      },
      PUBLICATION_MS,
    ).catch(() => check(false, `the instance did not terminate on-chain (phase ${phase})`))
    if (withholder && phase === 'Terminated') {
      // Its operator crashing at a named point and restarted meanwhile would have published.
      const restarted = devnet.operators[withholder.i]!.process !== withholder.process
      const slashed = (await stakeOf(ctx, withholder.i)) < withholder.stake
      check(slashed || restarted, 'the executor withholding the pages was not timed out')
      if (slashed) log(`  termination: executor operator ${withholder.i} timed out and slashed`)
    }
  } finally {
    if (down !== undefined) await restart(ctx, down)
  }
  if (phase !== 'Terminated') return receipts

  const ended = await readInstance(issuer.publicClient, devnet.manager, instance)
  check(
    ended.operators.every((op) => /^0x0{40}$/.test(op)),
    'the pool was not released at termination',
  )
  await checkFinalBalances(ctx, { recipients, paidOut, late, extra })
  return receipts
}

/**
 * Once the first page is in (and the late deposit, if any, mined), replaces the blocks from that
 * page's on: the page, the next one and a deposit refused after it may change order. Skipped if
 * the page is deeper than the operators' confirmations by then, as enclaves may have seen it.
 */
async function reorgAfterFirstPage(
  ctx: TerminationContext,
  lateDeposit: Promise<bigint>,
): Promise<void> {
  const { clients, devnet, instance, log } = ctx
  try {
    await waitFor('the first page of final balances', async () => (await pagesPublished(ctx)) > 0)
  } catch {
    log('  termination: no reorganisation, the first page did not come (or came with the last)')
    ctx.count('terminate-reorg-skipped')
    return
  }
  await lateDeposit
  // Logs come in chain order: the first is the earliest page.
  const [page] = await clients[0]!.publicClient.getContractEvents({
    address: devnet.manager,
    abi: poseManagerAbi,
    eventName: 'FinalBalancesPage',
    args: { id: instance },
    fromBlock: 0n,
  })
  const first = page!.blockNumber
  const r = await ctx.reorgFrom(first)
  ctx.count(r.depth > 0 ? 'terminate-reorg' : 'terminate-reorg-skipped')
  log(
    r.depth > 0
      ? `  termination: chain reorganisation of ${r.depth} blocks from the first page's (${r.moved} transactions moved)`
      : '  termination: no reorganisation, the first page is deeper than the confirmations',
  )
}

/** Operator `i`'s stake on the manager. */
async function stakeOf(ctx: TerminationContext, i: number): Promise<bigint> {
  const { publicClient } = ctx.clients[0]!
  const op = ctx.devnet.operators[i]!.address
  return (await readOperatorRecord(publicClient, ctx.devnet.manager, op)).stake
}

/** The manager's deposited and withdrawn totals of the scenario's instance. */
async function instanceTotals(ctx: TerminationContext): Promise<[bigint, bigint]> {
  return (await ctx.clients[0]!.publicClient.readContract({
    address: ctx.devnet.manager,
    abi: poseManagerAbi,
    functionName: 'balanceOfInstance',
    args: [ctx.instance],
  })) as [bigint, bigint]
}

function sum(xs: readonly bigint[]): bigint {
  return xs.reduce((a, x) => a + x, 0n)
}

async function checkFinalBalances(
  ctx: TerminationContext,
  o: {
    recipients: readonly `0x${string}`[]
    paidOut: bigint
    late: PoseClient | undefined
    extra: bigint
  },
): Promise<void> {
  const { clients, instance, check } = ctx
  const issuer = clients[0]!
  const { balances } = await issuer.getFinalBalances({ instance })
  const final = new Map(balances.map((b) => [b.account.toLowerCase(), b.cumulative]))
  const leaves = balances.map((b) => ({ account: hexToBytes(b.account), cumulative: b.cumulative }))
  check(
    balances.length === clients.length + o.recipients.length,
    `final balances list ${balances.length} accounts, expected ${clients.length + o.recipients.length}`,
  )
  const wrong = o.recipients.filter((r) => final.get(r.toLowerCase()) !== PAYOUT_EACH)
  check(wrong.length === 0, `${wrong.length} payout recipients have a wrong final balance`)
  for (const [u, c] of clients.entries()) {
    // Coins never move between users: each one's cumulative is what it put in, less the
    // issuer's payouts.
    const expected =
      ctx.coins[u]!.deposited + (c === o.late ? o.extra : 0n) - (u === 0 ? o.paidOut : 0n)
    const got = final.get(c.account.address.toLowerCase())
    check(got === expected, `user ${u}: final cumulative ${got}, expected ${expected}`)
    const before = ctx.coins[u]!.paid
    try {
      const r = await c.withdraw({ instance })
      check(
        r.amount === expected - before,
        `user ${u}: final withdrawal paid ${r.amount}, expected ${expected - before}`,
      )
    } catch (e) {
      check(false, `user ${u}: final withdrawal: ${(e as Error).message.split('\n')[0]}`)
    }
    if (got === undefined) continue
    // Sent to the manager as it is (the SDK would refuse it before sending): it must revert.
    const proof = finalBalanceProof(leaves, {
      account: hexToBytes(c.account.address),
      cumulative: got,
    }).map(bytesToHex)
    const twice = await c.sender
      .write({
        address: ctx.devnet.manager,
        abi: poseManagerAbi,
        functionName: 'withdrawFinal',
        args: [instance, c.account.address, got, proof],
      })
      .then(
        () => 'paid again',
        (e: unknown) =>
          e instanceof ChainTxError && /PoseManager_NothingToWithdraw/.test(e.reason)
            ? ''
            : (e as Error).message,
      )
    check(twice === '', `user ${u}: a second final withdrawal: ${twice.split('\n')[0]}`)
  }
  // Anyone may claim a final balance for its account: the issuer pays the lowest and the
  // highest recipient's (on the first page and the last) against the root.
  const sorted = [...o.recipients].sort((a, b) => (a.toLowerCase() < b.toLowerCase() ? -1 : 1))
  const claimed = await claimForRecipients(
    ctx,
    balances,
    sorted.length > 0 ? [sorted[0]!, sorted.at(-1)!] : [],
  )
  const [deposited, withdrawn] = await instanceTotals(ctx)
  const put = sum(ctx.coins.map((c) => c.deposited)) + o.extra
  check(deposited === put, `deposited ${deposited} on-chain, expected ${put}`)
  // Everything is paid but the coins of the recipients nobody claimed for.
  const expected = deposited - o.paidOut + claimed
  check(
    withdrawn === expected,
    `withdrawn ${withdrawn} after every user's final withdrawal, expected ${expected}`,
  )
}

/**
 * Claims the final balance of each of `recipients` on its behalf (`withdrawFinal` with a proof
 * from the published leaves) and checks each is paid exactly its payout. Returns what was paid.
 */
async function claimForRecipients(
  ctx: TerminationContext,
  balances: ReadonlyArray<{ account: `0x${string}`; cumulative: bigint }>,
  recipients: readonly `0x${string}`[],
): Promise<bigint> {
  const { clients, instance, devnet, check } = ctx
  const issuer = clients[0]!
  const leaves = balances.map((b) => ({ account: hexToBytes(b.account), cumulative: b.cumulative }))
  let paid = 0n
  for (const r of new Set(recipients)) {
    const proof = finalBalanceProof(leaves, {
      account: hexToBytes(r),
      cumulative: PAYOUT_EACH,
    }).map(bytesToHex)
    const before = await issuer.publicClient.getBalance({ address: r })
    try {
      await issuer.sender.write({
        address: devnet.manager,
        abi: poseManagerAbi,
        functionName: 'withdrawFinal',
        args: [instance, r, PAYOUT_EACH, proof],
      })
      const got = (await issuer.publicClient.getBalance({ address: r })) - before
      check(got === PAYOUT_EACH, `recipient ${r}: paid ${got} on its final balance`)
      paid += got
    } catch (e) {
      check(false, `recipient ${r}: final withdrawal: ${(e as Error).message.split('\n')[0]}`)
    }
  }
  return paid
}
