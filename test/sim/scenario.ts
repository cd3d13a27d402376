/**
 * One fault-injection scenario (issue: simulator): a devnet of real processes on loopback,
 * a seeded workload from three users (transfers, views, coin withdrawals), and a seeded fault
 * schedule: crashes and restarts of operator and enclave processes, faulty peer links (drop,
 * duplicate, delay/reorder, tamper), chain time jumps and challenge deadlines passed with
 * anvil's clock. At the end every invariant is checked; each broken one is a violation. Then
 * the issuer ends the instance, with a fault of its own, and termination's promises are checked
 * (test/sim/termination.ts).
 */
import { appendFileSync, cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { BaseError, parseEther } from 'viem'
import { closableTokenAbi, closableTokenBytecode } from '../../examples/contracts.generated.ts'
import {
  poseManagerAbi,
  readInstance,
  readOperator,
  readOperatorRecord,
} from '../../src/chain/manager.ts'
import { ChainTxError } from '../../src/chain/sender.ts'
import type { PoseClient, PoseReceipt } from '../../src/client/index.ts'
import { freePort } from '../../src/devnet/anvil.ts'
import { DEFAULT_MANAGER_PARAMS } from '../../src/devnet/deploy.ts'
import { type Devnet, startDevnet } from '../../src/devnet/devnet.ts'
import { CRASH_POINTS, type LinkFaultConfig, seededRandom } from '../../src/operator/faults.ts'
import {
  addressToWord,
  concatBytes,
  decodeMemberRemoved,
  EventKind,
  hexToBytes,
  SYSTEM_ADDRESS_HEX,
} from '../../src/protocol/index.ts'
import { userClients, waitFor } from '../e2e/helpers.ts'
import {
  type PenaltyEvent,
  poolProblems,
  type SentTransfer,
  splitCounters,
  unexplainedLogErrors,
  unexplainedPenalties,
  viewBounds,
} from './checks.ts'
import { chainController, type OpenChallenges } from './deadlines.ts'
import { stoppedShort } from './failure.ts'
import { Devnets } from './interrupt.ts'
import { BlockClock } from './mining.ts'
import { HTTP_TIMEOUT_MS, type Member, memberStates, poolMembers } from './pool.ts'
import {
  type FaultyProxy,
  operatorUrls,
  type ProxyFaults,
  SecretScanner,
  startFaultyProxy,
} from './proxy.ts'
import { anvilRpcAt, type Rpc, reorgChain, reorgFrom } from './reorg.ts'
import { endState, Lock, restartCrashed, waitForRecovery, watchCrashes } from './restart.ts'
import { converge } from './settle.ts'
import { Stages } from './stages.ts'
import { endInstance, terminationPlan } from './termination.ts'

export type ScenarioOptions = { seed: number; txsPerUser: number; log?: (line: string) => void }

export type ScenarioResult = {
  seed: number
  watchdogs: number
  receipts: number
  /** Injected faults by class (test/sim/checks.ts, `isInjectedFault`). */
  faults: Record<string, number>
  /** The simulator's other counters: restarts it made, faults skipped or that did not fire. */
  other: Record<string, number>
  checks: number
  violations: string[]
  maxLatencyMs: number
  durationMs: number
  /** Kept for a scenario with violations: every process's log and the fault timeline. */
  logsDir?: string
}

const OPERATORS = 5
/** Crashes at named points per scenario, at most. */
const MAX_POINT_CRASHES = 3
const USERS = 3
const WITHDRAW_UNIT = parseEther('0.01')
/** Token balances at deployment: the issuer holds the whole supply. */
const INITIAL_TOKENS: readonly bigint[] = [3_000_000n, 0n, 0n]
const DEPOSIT = parseEther('1')
/** A receipt slower than this (wall clock) breaks the liveness bound. */
const LATENCY_BOUND_MS = 60_000
/** Operators feed their enclaves events this many blocks deep; reorgs stay within it. */
const CONFIRMATIONS = 2
/** A partition lasts at most this long (wall clock). */
const PARTITION_MS = 20_000
/** Operator `i` makes its peer connections from 127.0.0.(PEER_SOURCE_BASE + i). */
const PEER_SOURCE_BASE = 10

/**
 * Whether operator `i` of scenario `seed` follows anvil's new heads (`--rpc-ws`): in every
 * scenario one or two of the five operators poll instead.
 */
function headsFollowed(seed: number, i: number): boolean {
  return (seed * 7 + i) % 3 !== 0
}

type Recorded = { user: number; receipt: PoseReceipt } & (
  | { kind: 'transfer'; to: number; amount: bigint }
  | { kind: 'burn'; amount: bigint }
)

/** Devnets of the scenarios running now, so an interrupted run can stop them all. */
const devnets = new Devnets<Devnet>()

/**
 * Stops every running scenario's devnet (anvil, operators, enclaves), including those still
 * starting.
 */
export async function stopRunningScenarios(): Promise<void> {
  await devnets.stopAll()
}

export async function runScenario(o: ScenarioOptions): Promise<ScenarioResult> {
  const t0 = performance.now()
  // The devnet's data directories (operator logs, sealed state) and the scenario's own
  // timeline: removed after a clean scenario, kept after one with violations or that failed.
  const dir = mkdtempSync(join(tmpdir(), `pose-sim-${o.seed}-`))
  const timeline = join(dir, 'timeline.log')
  const log = (line: string) => {
    appendFileSync(timeline, `${new Date().toISOString()} ${line}\n`)
    o.log?.(line)
  }
  const rnd = seededRandom(o.seed)
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!
  const watchdogs = 1 + Math.floor(rnd() * 2)
  const link: Omit<LinkFaultConfig, 'seed'> = {
    drop: pick([0, 0.02, 0.05]),
    duplicate: pick([0, 0.03]),
    delay: pick([0, 0.1, 0.2]),
    maxDelayMs: 40,
    tamper: pick([0, 0.01, 0.03]),
    replay: pick([0, 0.02]),
  }
  const faults: Record<string, number> = {}
  const count = (k: string, n = 1) => {
    faults[k] = (faults[k] ?? 0) + n
  }
  const violations: string[] = []
  // Also in the timeline, so that the directory kept for a failing scenario says what failed.
  const violate = (what: string) => {
    violations.push(what)
    log(`VIOLATION: ${what}`)
  }
  let checks = 0
  const check = (ok: boolean, what: string) => {
    checks++
    if (!ok) violate(what)
  }

  // Named crash points: in half the scenarios, two operators may crash at them (a few times).
  const crashy = rnd() < 0.5 ? [Math.floor(rnd() * OPERATORS), Math.floor(rnd() * OPERATORS)] : []
  const crashConfig = {
    probability: pick([0.01, 0.03]),
    // A handover or a challenge response comes a few times per scenario, a seal at every update,
    // a page of final balances once or twice at the end.
    probabilities: { handover: 0.25, 'challenge-response': 0.25, 'final-page': 0.5 },
    points: CRASH_POINTS.filter(() => rnd() < 0.6),
    after: 10,
  }
  // Users and peers reach each operator through a proxy that delays and cuts connections.
  const clientFaults: ProxyFaults = {
    cut: pick([0, 0.01, 0.02]),
    delay: pick([0, 0.05]),
    maxDelayMs: 30,
  }
  const ports: number[] = []
  const proxies: FaultyProxy[] = []
  // A network partition: the isolated operators reach nobody (users, peers) and nobody reaches
  // them; each operator's peer connections come from its own loopback address, so the proxies
  // can tell them apart. The chain stays reachable from both sides.
  const isolated = new Set<number>()
  const sideOf = (remote: string): boolean => {
    const m = /^(?:::ffff:)?127\.0\.0\.(\d+)$/.exec(remote)
    return m ? isolated.has(Number(m[1]) - PEER_SOURCE_BASE) : false
  }
  // Secrets that must never leave users' clients or enclaves in plaintext.
  const scanner = new SecretScanner()
  for (let i = 0; i < OPERATORS; i++) {
    const targetPort = await freePort()
    ports.push(targetPort)
    proxies.push(
      await startFaultyProxy({
        targetPort,
        seed: o.seed * 32 + i,
        faults: clientFaults,
        count,
        scanner,
        blocked: (remote) => sideOf(remote) !== isolated.has(i),
      }),
    )
  }
  // A malicious chain feed: in half the scenarios one operator lags, reorders and replays the
  // manager's events it hands its enclave.
  const lying = rnd() < 0.5 ? [Math.floor(rnd() * OPERATORS)] : []
  // Operators some fault targeted: only these may be slashed or removed from the pool. A lying
  // chain feed targets its operator for the whole scenario (its enclave's view lags up to
  // 1.5 s a batch, and what it refuses it may see late).
  const targeted = new Set<number>(lying)
  const chainConfig = { hold: 0.1, maxHoldMs: 1_500, reorder: 0.1, replay: 0.1 }
  const starts = new Map<number, number>()
  let crashBudget = MAX_POINT_CRASHES
  // Crash points for one operator's next start only (the termination's crash between pages),
  // and operators kept down after such a crash until the scenario restarts them.
  const armed = new Map<number, Record<string, string>>()
  // Operators armed with the termination's `final-page` crash for their next start.
  const armedFinalPage = new Set<number>()
  const held = new Set<number>()
  const start = startDevnet({
    dir,
    operators: OPERATORS,
    users: USERS,
    operatorStake: 10n * DEFAULT_MANAGER_PARAMS.minStake,
    operatorEnv: (i) => {
      const n = (starts.get(i) ?? 0) + 1
      starts.set(i, n)
      const env: Record<string, string> = {
        POSE_LINK_FAULTS: JSON.stringify({ ...link, seed: o.seed * 16 + i }),
      }
      if (lying.includes(i))
        env.POSE_CHAIN_FAULTS = JSON.stringify({ ...chainConfig, seed: o.seed * 64 + i * 8 + n })
      if (crashy.includes(i) && crashBudget > 0 && crashConfig.points.length > 0)
        env.POSE_CRASH_POINTS = JSON.stringify({ ...crashConfig, seed: o.seed * 64 + i * 8 + n })
      const once = armed.get(i)
      if (once !== undefined) {
        Object.assign(env, once)
        armed.delete(i)
      }
      return env
    },
    operatorArgs: (i) => [
      '--port',
      String(ports[i]),
      '--public-url',
      operatorUrls(i, ports[i]!, proxies[i]!.port).publicUrl,
      '--confirmations',
      String(CONFIRMATIONS),
      '--peer-source-address',
      `127.0.0.${PEER_SOURCE_BASE + i}`,
    ],
    healthUrl: (i) => operatorUrls(i, ports[i]!, proxies[i]!.port).healthUrl,
    // Operators follow anvil's new heads, except one in three (by seed and index, so that the
    // scenario's draws stay as they were) that polls the chain as an operator without a
    // WebSocket endpoint does.
    headSubscription: (i) => headsFollowed(o.seed, i),
  })
  const devnet = await devnets.add(start).catch(async (e: unknown) => {
    await Promise.all(proxies.map((x) => x.close()))
    throw stoppedShort(e, dir)
  })
  // Operators being (re)started right now. Δ on a real chain is far longer than a restart, so
  // the chain controller lets no deadline pass while one is starting: an honest member that
  // crashed and came back answers its challenges in time.
  const restarting = { count: 0 }
  const startOperator = devnet.startOperator
  devnet.startOperator = async (i: number) => {
    restarting.count++
    try {
      await startOperator(i)
    } finally {
      restarting.count--
    }
  }
  const down = new Set<number>()
  const stages = new Stages()
  // Blocks every second, paused while the chain is reorganised (test/sim/mining.ts).
  const rpc = anvilRpcAt(devnet.rpcUrl)
  const blocks = new BlockClock(rpc)
  let threw = false
  try {
    await blocks.start()
    // Operators that crashed at a named point come back at once; any other death is a bug.
    // The fault schedule holds `lock` while it injects a fault.
    const lock = new Lock()
    const watcher = watchCrashes(devnet, {
      stages,
      lock,
      crashed: (point, i) => {
        targeted.add(i)
        if (point === 'final-page' && armedFinalPage.delete(i)) {
          // The termination's armed crash: counted there, as the termination fault it is.
          count('armed-final-page-crash')
          return
        }
        count(`crash-${point}`)
        crashBudget--
      },
      check,
      log,
      held,
    })
    const clients = await userClients(devnet, { autoChallenge: true, failoverTimeoutMs: 90_000 })
    scanner.add(
      clients.flatMap((c, u) => [
        { name: `user ${u}'s private key`, bytes: hexToBytes(devnet.userKeys[u]!) },
        {
          // transfer(to, …) calldata up to the recipient: only ever inside an encrypted box.
          name: `a plaintext transfer to user ${u}`,
          bytes: concatBytes(
            hexToBytes('0xa9059cbb'),
            addressToWord(hexToBytes(c.account.address)),
          ),
        },
      ]),
    )
    const admin = clients[0]!
    const { instance } = await admin.deployContract({
      abi: closableTokenAbi,
      bytecode: closableTokenBytecode,
      args: [INITIAL_TOKENS[0]!],
      watchdogCount: watchdogs,
    })
    log(
      `seed ${o.seed}: instance ${instance}, s = ${watchdogs}, peer links ${JSON.stringify(link)}, client links ${JSON.stringify(clientFaults)}`,
    )

    // Challenge deadlines pass from the set-up on and until the end of the final checks: a
    // challenge open then would otherwise hold the scenario for a real-time Δ.
    const chain = chainController(
      {
        read: () => readInstance(admin.publicClient, devnet.manager, instance),
        timestamp: async () =>
          (await admin.publicClient.getBlock({ blockTag: 'latest' })).timestamp,
        advance: (seconds) => blocks.advance(seconds),
      },
      {
        stages,
        restarting,
        passed: (deadline, info) => {
          count('deadline-passed')
          log(`  chain: deadline ${deadline} passed (${describeOpen(info)})`)
        },
        opened: (deadline, info) =>
          log(`  chain: deadline ${deadline} open (${describeOpen(info)})`),
      },
    )

    const recorded: Recorded[] = []
    // Every token transfer from the moment its request is sent, for the bounds of balance views.
    const sent: SentTransfer[] = []
    // Every workload receipt must succeed: a transfer of a few tokens the sender holds, a burn
    // of coins it holds. `writeContract` throws only on `revert`, `sendTransaction` never.
    const succeeded = (r: PoseReceipt, what: string): void =>
      check(r.status === 'success', `${what}: receipt status ${r.status}`)
    // Sends a transfer of `amount` tokens from user `u` to user `to` and records it.
    const transfer = async (u: number, to: number, amount: bigint, what: string) => {
      const t: SentTransfer = { from: u, to, amount, sentAt: performance.now(), outcome: 'unknown' }
      sent.push(t)
      const receipt = await timed(
        clients[u]!.writeContract({
          instance,
          abi: closableTokenAbi,
          functionName: 'transfer',
          args: [clients[to]!.account.address, amount],
        }),
        what,
      )
      t.outcome = receipt.status === 'success' ? 'success' : 'not-executed'
      t.receiptedAt = performance.now()
      succeeded(receipt, what)
      recorded.push({ user: u, receipt, kind: 'transfer', to, amount })
    }
    let maxLatencyMs = 0
    let slowest = ''
    const timed = async <T>(p: Promise<T>, what = 'setup'): Promise<T> => {
      const start = performance.now()
      const startedAt = new Date().toISOString()
      const r = await p
      const ms = performance.now() - start
      if (ms > maxLatencyMs) {
        maxLatencyMs = ms
        slowest = `${what}, sent ${startedAt}`
      }
      if (ms > LATENCY_BOUND_MS)
        log(`  slow request: ${what}, sent ${startedAt}, ${ms.toFixed(0)} ms`)
      return r
    }
    // Setup: alice hands out tokens; everyone deposits coins.
    for (const to of [1, 2]) await transfer(0, to, 1_000_000n, `setup transfer to user ${to}`)
    for (const c of clients) await c.deposit({ instance, value: DEPOSIT })
    for (const [u, c] of clients.entries()) {
      // The balance last read names a credit missing (0) apart from one counted twice.
      let seen = 'none read'
      await waitFor(`user ${u}'s deposit credit`, async () => {
        const balance = await c.getBalance({ instance })
        seen = `${balance} of ${DEPOSIT}`
        return balance === DEPOSIT
      }).catch((e: Error) => {
        throw new Error(`${e.message} (balance ${seen})`)
      })
    }

    // Faults run beside the workload, triggered by progress so a seed replays the same plan.
    stages.enter('workload')
    const plan = faultPlan(o.seed, o.txsPerUser * USERS)
    let progress = 0
    const faultLoop = (async () => {
      for (const step of plan) {
        await waitFor(
          'workload progress',
          async () => progress >= step.at || stages.reached('settling'),
          600_000,
        )
        if (stages.reached('settling')) return
        // Lets the workload move on (and crashed operators come back) before the fault's
        // second half.
        const later = async (maxMs = Number.POSITIVE_INFINITY) => {
          lock.release()
          const until = Date.now() + maxMs
          await waitFor(
            'workload progress',
            async () =>
              progress >= step.at + USERS * 3 || stages.reached('settling') || Date.now() > until,
            600_000,
          )
          await lock.take()
        }
        await lock.take()
        try {
          await injectFault(
            {
              devnet,
              client: admin,
              instance,
              down,
              isolated,
              count,
              log,
              later,
              lock,
              blocks,
              rpc,
              target: (i) => targeted.add(i),
            },
            step.kind,
            seededRandom(o.seed * 131 + step.at),
          )
        } catch (e) {
          // A fault that cannot be carried out (an operator that does not come back) is a
          // finding, reported with the seed, not a crash of the simulator.
          check(false, `fault ${step.kind}: ${(e as Error).message.split('\n')[0]}`)
        } finally {
          lock.release()
        }
      }
    })()

    const workload = clients.map(async (c, u) => {
      const r = seededRandom(o.seed * 7 + u + 1)
      for (let k = 0; k < o.txsPerUser; k++) {
        const roll = r()
        try {
          if (roll < 0.75) {
            const to = (u + 1 + Math.floor(r() * (USERS - 1))) % USERS
            const amount = BigInt(1 + Math.floor(r() * 5))
            await transfer(u, to, amount, `user ${u} step ${k} (transfer)`)
          } else if (roll < 0.9) {
            const sentAt = performance.now()
            const bal = await timed(
              c.readContract({ instance, abi: closableTokenAbi, functionName: 'myBalance' }),
              `user ${u} step ${k} (view)`,
            )
            const { low, high } = viewBounds(u, INITIAL_TOKENS[u]!, sent, {
              sentAt,
              answeredAt: performance.now(),
            })
            check(
              low <= bal && bal <= high,
              `user ${u} step ${k}: balance view ${bal}, the receipts bound it to ${low}…${high}`,
            )
          } else {
            const what = `user ${u} step ${k} (burn)`
            const receipt = await timed(
              c.sendTransaction({
                instance,
                to: SYSTEM_ADDRESS_HEX,
                value: WITHDRAW_UNIT,
                data: '0x3ccfd60b',
                gasLimit: 100_000n,
              }),
              what,
            )
            succeeded(receipt, what)
            recorded.push({ user: u, receipt, kind: 'burn', amount: WITHDRAW_UNIT })
            // The user's claims so far paid every burn before this one: the authorisation now
            // pays exactly this burn (NothingToWithdraw would mean a burn paid nothing).
            await c.withdraw({ instance })
            const paid = await withdrawnBy(devnet, c, instance)
            const burned = burnedBy(recorded, u)
            check(paid === burned, `${what}: paid ${paid} on-chain, burned ${burned} in the world`)
          }
        } catch (e) {
          const what = roll < 0.75 ? 'transfer' : roll < 0.9 ? 'view' : 'burn and withdrawal'
          violate(`user ${u} step ${k} (${what}): ${describeError(e)}`)
        }
        progress++
      }
    })
    await Promise.all(workload)
    log('  workload done; restarting crashed members, then waiting for the pool to settle')
    stages.enter('settling')
    await faultLoop

    // Everyone back up, then every member must agree (the watcher keeps restarting operators
    // that crash at named points while the pool settles).
    await lock.take()
    for (const i of [...down]) {
      await restartCrashed(devnet, i)
      down.delete(i)
      count('restart')
    }
    lock.release()
    await settle(devnet, admin, instance, check)
    await checkPool(devnet, admin, instance, check)
    check(
      maxLatencyMs <= LATENCY_BOUND_MS,
      `a request took ${maxLatencyMs.toFixed(0)} ms (${slowest})`,
    )
    try {
      await checkInvariants(devnet, clients, instance, recorded, check)
      // Every burn was claimed right after it: nothing is left to claim.
      for (const c of clients) await claimRest(c, instance, check)
      await checkCoins(devnet, clients, instance, recorded, check)
    } catch (e) {
      check(false, `final checks failed: ${(e as Error).message.split('\n')[0]}`)
    }
    // The issuer ends the instance, with a fault of its own (test/sim/termination.ts).
    stages.enter('terminating')
    let endReceipts = 0
    const reorgRandom = seededRandom(o.seed * 977 + 14)
    try {
      const ended = await endInstance(
        {
          seed: o.seed,
          devnet,
          clients,
          instance,
          coins: clients.map((_, u) => ({ deposited: DEPOSIT, paid: burnedBy(recorded, u) })),
          lock,
          arm: (i, env) => {
            armed.set(i, env)
            if (env.POSE_CRASH_POINTS?.includes('final-page')) armedFinalPage.add(i)
          },
          target: (i) => targeted.add(i),
          tokenBalance: (u) => tokenBalances(recorded)[u]!,
          held,
          reorgFrom: (from) =>
            blocks.paused(() => reorgFrom(rpc, Number(from), CONFIRMATIONS, reorgRandom)),
          count,
          log,
          check,
          timed,
        },
        terminationPlan(seededRandom(o.seed * 977 + 13)),
      )
      endReceipts = ended.length
    } catch (e) {
      check(false, `termination: ${describeError(e)}`)
    }
    stages.enter('ended')
    await watcher
    await chain
    for (const op of devnet.operators) scanner.scanDir(op.dataDir)
    // Errors in operator logs no fault explains (reorganisations stay within the confirmation
    // depth, so no operator may have offered its enclave a block that was later replaced).
    for (const [i, op] of devnet.operators.entries()) {
      const logText = existsSync(op.logPath) ? readFileSync(op.logPath, 'utf8') : ''
      const errors = unexplainedLogErrors(logText, { lyingFeed: lying.includes(i) })
      check(errors.length === 0, `operator ${i}: ${errors.join('; ')}`)
    }
    check(scanner.found.size === 0, `secret leaked: ${[...scanner.found].join('; ')}`)
    for (const [i, op] of devnet.operators.entries()) {
      const state = endState(op)
      if (typeof state === 'object') {
        targeted.add(i)
        const armedCrash = state.at === 'final-page' && armedFinalPage.has(i)
        count(armedCrash ? 'armed-final-page-crash' : `crash-${state.at}`)
      }
      check(state !== 'died', `operator ${i} process died without being killed`)
      if (state === 'running') addLinkFaults(await health(devnet, admin, i), count)
    }
    // Only an operator a fault targeted may have been slashed or removed from the pool.
    try {
      const found = await penalties(devnet, admin, instance)
      for (const e of found)
        log(
          `  chain: operator ${e.operator} ${e.what}${targeted.has(e.operator) ? '' : ' (no fault targeted it)'}`,
        )
      const unexplained = unexplainedPenalties(found, targeted)
      check(unexplained.length === 0, `slashed or removed: ${unexplained.join('; ')}`)
    } catch (e) {
      check(false, `reading slashes and removals: ${describeError(e)}`)
    }
    return {
      seed: o.seed,
      watchdogs,
      receipts: recorded.length + endReceipts,
      ...splitCounters(faults),
      checks,
      violations,
      maxLatencyMs,
      durationMs: performance.now() - t0,
      ...(violations.length > 0 ? { logsDir: dir } : {}),
    }
  } catch (e) {
    // A scenario that stopped short (a step timed out, a process would not start) keeps its
    // logs like one with violations.
    threw = true
    log(`scenario failed: ${(e as Error).message}`)
    throw stoppedShort(e, dir)
  } finally {
    stages.enter('ended')
    blocks.stop()
    await devnet.stop()
    devnets.delete(devnet)
    await Promise.all(proxies.map((x) => x.close()))
    if (!threw && violations.length === 0 && !process.env.POSE_KEEP_DEVNET)
      rmSync(dir, { recursive: true, force: true })
  }
}

type FaultKind =
  | 'crash-executor'
  | 'crash-watchdog'
  | 'restart-member'
  | 'stale-restart'
  | 'time-jump'
  | 'partition'
  | 'reorg'

/** A seeded plan: a fault at each of a few progress points. */
function faultPlan(seed: number, total: number): Array<{ at: number; kind: FaultKind }> {
  const r = seededRandom(seed * 31 + 5)
  const kinds: FaultKind[] = [
    'crash-executor',
    'crash-watchdog',
    'restart-member',
    'stale-restart',
    'time-jump',
    'partition',
    'reorg',
  ]
  const n = 2 + Math.floor(r() * 3)
  const plan: Array<{ at: number; kind: FaultKind }> = []
  for (let i = 0; i < n; i++) {
    plan.push({
      at: Math.floor(((i + 0.3 + r() * 0.5) / (n + 1)) * total),
      kind: kinds[Math.floor(r() * kinds.length)]!,
    })
  }
  return plan.sort((a, b) => a.at - b.at)
}

type FaultContext = {
  devnet: Devnet
  client: PoseClient
  instance: bigint
  /** Operators crashed by a fault, restarted before the next one. */
  down: Set<number>
  /** Operators cut off by a network partition. */
  isolated: Set<number>
  count: (k: string, n?: number) => void
  log: (line: string) => void
  /** Returns once the workload has moved on (or `maxMs` passed); the second half follows. */
  later: (maxMs?: number) => Promise<void>
  /** Held while the fault is injected; the crash watcher restarts operators in between. */
  lock: Lock
  /** The chain's block production (paused while the chain is reorganised). */
  blocks: BlockClock
  /** JSON-RPC calls to the devnet's anvil. */
  rpc: Rpc
  /** Records that a fault targets operator `i` (it may then be slashed or removed). */
  target: (i: number) => void
}

/** Faults that take a member out (crash, restart, stale state, partition). */
const MEMBER_FAULTS = new Set<FaultKind>([
  'crash-executor',
  'crash-watchdog',
  'stale-restart',
  'restart-member',
  'partition',
])
/** How long a member fault waits for the pool to recover from the previous one. */
const HEALTHY_WAIT_MS = 60_000

/** An instance's open challenges, for the timeline. */
function describeOpen(info: OpenChallenges): string {
  const parts = [info.phaseName]
  if (info.phaseName === 'ExecutorChallenged') parts.push(`executor by ${info.challengeDeadline}`)
  if (info.watchdogMask !== 0)
    parts.push(`watchdogs ${info.watchdogMask} by ${info.watchdogDeadline}`)
  return parts.join(', ')
}

/** Why the pool has not recovered from a failure yet, or '' once it has. */
async function poolUnhealthy(
  devnet: Devnet,
  client: PoseClient,
  instance: bigint,
): Promise<string> {
  try {
    const info = await readInstance(client.publicClient, devnet.manager, instance)
    if (info.phaseName !== 'Active') return `phase ${info.phaseName}`
    if (info.watchdogMask !== 0) return 'a watchdog challenge is open'
    if (info.operators.some((op) => /^0x0{40}$/.test(op))) return 'a slot is empty'
    const ds = await memberStates(devnet, client, instance)
    const seqs = ds.map((d) => Number(d.seq))
    const max = Math.max(0, ...seqs)
    // Members a few updates apart are in step (updates are in flight under load); a member
    // without the state (seq 0) or far behind is still catching up.
    if (seqs.some((q) => q === 0 && max > 0) || seqs.some((q) => max - q > 16))
      return `members at seq ${seqs.join('/')}`
    return ''
  } catch (e) {
    return (e as Error).message.split('\n')[0]!.slice(0, 200)
  }
}

async function injectFault(ctx: FaultContext, kind: FaultKind, rnd: () => number): Promise<void> {
  const { devnet, client, instance, down, count, log, later } = ctx
  // Crashed members come back before the next fault: one member at most is down at a time.
  for (const i of [...down]) {
    await restartCrashed(devnet, i)
    down.delete(i)
    count('restart')
  }
  if (MEMBER_FAULTS.has(kind)) {
    // One failure at a time: a member fails only once the pool has recovered from the last
    // failure (every slot refilled, no challenge open, every member holding the state). With
    // s = 1 a second failure before that leaves no member with the state, and the instance
    // freezes by design (SPEC: live while one member with the state answers).
    let why = ''
    try {
      await waitForRecovery(
        ctx.lock,
        async () => {
          why = await poolUnhealthy(devnet, client, instance)
          return why === ''
        },
        HEALTHY_WAIT_MS,
      )
    } catch {
      count('skipped-pool-recovering')
      log(`  fault: ${kind} skipped, the pool has not recovered (${why})`)
      return
    }
  }
  const pool = await poolMembers(devnet, client, instance)
  const { info, live, watchdogs } = pool
  if (info.phaseName !== 'Active' || live.length < 2) return
  const executor = pool.executor!
  if (kind === 'reorg') {
    const depth = 1 + Math.floor(rnd() * CONFIRMATIONS)
    const r = await ctx.blocks.paused(() => reorgChain(ctx.rpc, depth, rnd))
    // Depth 0: the head kept moving while the range was read, or the chain is too short.
    count(r.depth > 0 ? 'chain-reorg' : 'chain-reorg-skipped')
    log(
      r.depth > 0
        ? `  fault: chain reorganisation of ${r.depth} blocks (${r.moved} transactions moved)`
        : '  fault: chain reorganisation skipped (the head kept moving while it was read)',
    )
    return
  }
  if (kind === 'partition') {
    // The executor, a watchdog or an operator outside the pool, cut off until the workload
    // has moved on or PARTITION_MS passed (views wait for the executor to be reachable again;
    // transactions get their receipts through on-chain challenges meanwhile).
    const outside = devnet.operators.map((_, i) => i).filter((i) => !live.some((m) => m.i === i))
    const roll = rnd()
    const who =
      roll < 0.4
        ? executor.i
        : roll < 0.8 || outside.length === 0
          ? pickFrom(watchdogs, rnd).i
          : outside[Math.floor(rnd() * outside.length)]!
    ctx.target(who)
    ctx.isolated.add(who)
    count('partition')
    log(`  fault: operator ${who} partitioned from users and peers`)
    await later(PARTITION_MS)
    ctx.isolated.delete(who)
    log(`  fault: partition of operator ${who} healed`)
    return
  }
  if (kind === 'time-jump') {
    await ctx.blocks.advance(Number(DEFAULT_MANAGER_PARAMS.delta) / 2)
    count('time-jump')
    log(`  fault: time jump of Δ/2`)
    return
  }
  // A crash hits the member its class names; a restart or a stale copy any live member (a
  // watchdog served a stale copy, promoted later, checks it against the pool before it hands it
  // over).
  const target =
    kind === 'crash-executor'
      ? executor
      : kind === 'crash-watchdog'
        ? pickFrom(watchdogs, rnd)
        : pickFrom(live, rnd)
  ctx.target(target.i)
  addLinkFaults(await health(devnet, client, target.i), count)
  if (kind === 'stale-restart') {
    // A malicious host keeps a copy of the sealed state and serves it after a restart: the
    // member comes back behind the pool (an executor rolled back is challenged and replaced).
    const dir = join(devnet.operators[target.i]!.dataDir, 'instances')
    const copy = `${dir}.stale`
    cpSync(dir, copy, { recursive: true })
    await later()
    devnet.killEnclave(target.i)
    await devnet.killOperator(target.i, 'SIGKILL')
    rmSync(dir, { recursive: true, force: true })
    cpSync(copy, dir, { recursive: true })
    rmSync(copy, { recursive: true, force: true })
    await devnet.startOperator(target.i)
    count('stale-restart')
    log(`  fault: stale sealed state served to operator ${target.i} (slot ${target.slot})`)
    return
  }
  if (kind === 'restart-member') {
    // A clean restart: the member resumes from its sealed state.
    await devnet.killOperator(target.i, 'SIGTERM')
    await devnet.startOperator(target.i)
    count('restart-member')
    log(`  fault: restart of operator ${target.i} (slot ${target.slot})`)
    return
  }
  devnet.killEnclave(target.i)
  await devnet.killOperator(target.i, 'SIGKILL')
  down.add(target.i)
  count(kind)
  log(`  fault: ${kind} (operator ${target.i}, slot ${target.slot})`)
}

/** One of `xs` (not empty), drawn with `rnd`. */
function pickFrom(xs: readonly Member[], rnd: () => number): Member {
  return xs[Math.floor(rnd() * xs.length)]!
}

type Health = { ok: boolean; faults?: Record<string, number> }

async function health(devnet: Devnet, client: PoseClient, i: number): Promise<Health | undefined> {
  try {
    const { endpoint } = await readOperator(
      client.publicClient,
      devnet.manager,
      devnet.operators[i]!.address,
    )
    const res = await fetch(`${endpoint}/v1/health`, {
      signal: AbortSignal.timeout(HTTP_TIMEOUT_MS),
    })
    return (await res.json()) as Health
  } catch {
    return undefined
  }
}

/** Adds an operator's injected peer-link and chain-feed faults (reported by its health API). */
function addLinkFaults(h: Health | undefined, count: (k: string, n?: number) => void): void {
  for (const [k, n] of Object.entries(h?.faults ?? {}))
    if (n > 0) count(k.startsWith('chain-') ? k : `link-${k}`, n)
}

/**
 * Claims whatever the caller's authorisation allows beyond what it withdrew on-chain, once every
 * burn was claimed right after it: the manager must refuse it as paying nothing.
 */
async function claimRest(
  c: PoseClient,
  instance: bigint,
  check: (ok: boolean, what: string) => void,
): Promise<void> {
  const outcome = await c.withdraw({ instance }).then(
    () => 'paid',
    (e: unknown) => {
      if (e instanceof ChainTxError && e.reason.startsWith('PoseManager_NothingToWithdraw'))
        return ''
      throw e
    },
  )
  check(outcome === '', `${c.account.address}: a claim after every burn was claimed ${outcome}`)
}

/** Removal reasons of the manager's `MemberRemoved` (contracts/src/PoseManager.sol). */
const REMOVAL_REASONS: Record<number, string> = {
  1: 'did not acknowledge genesis',
  2: 'timed out',
  3: 'exited',
  4: 'released before activation',
}

/** Every slash the manager made and every removal from the instance's pool, by operator. */
async function penalties(
  devnet: Devnet,
  client: PoseClient,
  instance: bigint,
): Promise<PenaltyEvent[]> {
  const { publicClient } = client
  const index = (address: string) =>
    devnet.operators.findIndex((op) => op.address.toLowerCase() === address.toLowerCase())
  const out: PenaltyEvent[] = []
  const slashes = await publicClient.getContractEvents({
    address: devnet.manager,
    abi: poseManagerAbi,
    eventName: 'Slashed',
    fromBlock: 0n,
  })
  for (const l of slashes) {
    const { operator, amount } = l.args as { operator: string; amount: bigint }
    out.push({ operator: index(operator), what: `slashed ${amount} at block ${l.blockNumber}` })
  }
  const signers = new Map<string, number>()
  for (const [i, op] of devnet.operators.entries()) {
    const { enclaveSigner } = await readOperatorRecord(publicClient, devnet.manager, op.address)
    signers.set(enclaveSigner.toLowerCase(), i)
  }
  const events = await publicClient.getContractEvents({
    address: devnet.manager,
    abi: poseManagerAbi,
    eventName: 'InstanceEvent',
    args: { id: instance },
    fromBlock: 0n,
  })
  for (const l of events) {
    const { kind, data } = l.args as { kind: number; data: `0x${string}` }
    if (kind !== EventKind.MemberRemoved) continue
    const r = decodeMemberRemoved(hexToBytes(data))
    const signer = `0x${Buffer.from(r.signer).toString('hex')}`
    out.push({
      operator: signers.get(signer) ?? -1,
      what: `removed from slot ${r.slot} (${REMOVAL_REASONS[r.reason] ?? `reason ${r.reason}`}) at block ${l.blockNumber}`,
    })
  }
  return out
}

/** How long the members' roles may take to follow the chain once their states agree. */
const ROLES_MS = 30_000

/**
 * Checks the pool once its members agree: every slot filled, its operators distinct, and
 * exactly one member acting as executor, the one the chain names (`poolProblems`).
 */
async function checkPool(
  devnet: Devnet,
  client: PoseClient,
  instance: bigint,
  check: (ok: boolean, what: string) => void,
): Promise<void> {
  let last: string[] = ['not read']
  await waitFor(
    'the pool to take its shape',
    async () => {
      try {
        const info = await readInstance(client.publicClient, devnet.manager, instance)
        const roles = await memberStates(devnet, client, instance)
        last = poolProblems({ operators: info.operators, executorSlot: info.executorSlot, roles })
      } catch (e) {
        last = [(e as Error).message.split('\n')[0]!.slice(0, 200)]
      }
      return last.length === 0
    },
    ROLES_MS,
  ).catch(() => undefined)
  check(last.length === 0, `pool at the end: ${last.join('; ')}`)
}

/** An error's first line, with a viem error's details and the RPC method it came from. */
function describeError(e: unknown): string {
  const first = (e as Error).message.split('\n')[0] ?? ''
  // The viem error may be the cause of the SDK's or the chain sender's error.
  let viem: unknown = e
  for (let i = 0; i < 5 && viem && !(viem instanceof BaseError); i++)
    viem = (viem as { cause?: unknown }).cause
  if (!(viem instanceof BaseError)) return first
  const request = viem.walk((x) => typeof (x as { body?: unknown }).body === 'object') as {
    body?: { method?: unknown; params?: unknown }
  } | null
  const method =
    typeof request?.body?.method === 'string'
      ? ` [${request.body.method} ${JSON.stringify(request.body.params ?? []).slice(0, 300)}]`
      : ''
  return `${first}${viem.details ? ` (${viem.details})` : ''}${method}`
}

/** Waits until the instance is active and every live member holds the same state. */
async function settle(
  devnet: Devnet,
  client: PoseClient,
  instance: bigint,
  check: (ok: boolean, what: string) => void,
): Promise<void> {
  try {
    await converge(
      {
        phase: async () =>
          (await readInstance(client.publicClient, devnet.manager, instance)).phaseName,
        digests: () => memberStates(devnet, client, instance),
      },
      90_000,
    )
    check(true, 'members agree')
  } catch (e) {
    check(false, (e as Error).message)
  }
}

async function checkInvariants(
  _devnet: Devnet,
  clients: PoseClient[],
  instance: bigint,
  recorded: Recorded[],
  check: (ok: boolean, what: string) => void,
): Promise<void> {
  // Each user's receipted transactions: nonces 0..n-1, each once, in seq order.
  for (const u of clients.keys()) {
    const mine = recorded.filter((x) => x.user === u).map((x) => x.receipt)
    const nonces = mine.map((r) => r.nonce).sort((a, b) => (a < b ? -1 : 1))
    check(
      nonces.every((n, i) => n === BigInt(i)),
      `user ${u}: receipted nonces are not 0..${nonces.length - 1}`,
    )
    const bySeq = [...mine].sort((a, b) => (a.seq < b.seq ? -1 : a.seq > b.seq ? 1 : 0))
    check(
      bySeq.every((r, i) => i === 0 || r.nonce > bySeq[i - 1]!.nonce),
      `user ${u}: receipts out of order`,
    )
  }
  // Replaying every receipted transfer gives the final token balances.
  const expected = tokenBalances(recorded)
  for (const [u, c] of clients.entries()) {
    const bal = await c.readContract({ instance, abi: closableTokenAbi, functionName: 'myBalance' })
    check(bal === expected[u], `user ${u}: token balance ${bal}, receipts say ${expected[u]}`)
  }
}

/** Each user's token balance by the receipted transfers. */
function tokenBalances(recorded: readonly Recorded[]): bigint[] {
  const balances = [...INITIAL_TOKENS]
  for (const x of recorded) {
    if (x.kind !== 'transfer' || x.receipt.status !== 'success') continue
    balances[x.user]! -= x.amount
    balances[x.to]! += x.amount
  }
  return balances
}

/** What the manager paid user `c` of the instance's coins. */
async function withdrawnBy(devnet: Devnet, c: PoseClient, instance: bigint): Promise<bigint> {
  return (await c.publicClient.readContract({
    address: devnet.manager,
    abi: poseManagerAbi,
    functionName: 'withdrawnBy',
    args: [instance, c.account.address],
  })) as bigint
}

/** The coins user `u` burned in the world, by its receipts. */
function burnedBy(recorded: readonly Recorded[], u: number): bigint {
  return recorded
    .filter((x) => x.user === u && x.kind === 'burn' && x.receipt.status === 'success')
    .reduce((a, x) => a + x.amount, 0n)
}

async function checkCoins(
  devnet: Devnet,
  clients: PoseClient[],
  instance: bigint,
  recorded: Recorded[],
  check: (ok: boolean, what: string) => void,
): Promise<void> {
  for (const [u, c] of clients.entries()) {
    const burned = burnedBy(recorded, u)
    const inWorld = await c.getBalance({ instance })
    check(
      inWorld === DEPOSIT - burned,
      `user ${u}: world balance ${inWorld}, expected ${DEPOSIT - burned}`,
    )
    const paid = await withdrawnBy(devnet, c, instance)
    check(paid === burned, `user ${u}: paid ${paid} on-chain, burned ${burned} in the world`)
  }
  const [deposited, withdrawn] = (await clients[0]!.publicClient.readContract({
    address: devnet.manager,
    abi: poseManagerAbi,
    functionName: 'balanceOfInstance',
    args: [instance],
  })) as [bigint, bigint]
  check(deposited === DEPOSIT * BigInt(clients.length), `deposited ${deposited}`)
  check(withdrawn <= deposited, `withdrawn ${withdrawn} exceeds deposited ${deposited}`)
}
