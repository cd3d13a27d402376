/**
 * Sections `gas` and `recovery`: one scenario per devnet drives every manager operation
 * through the real protocol (operators submit activations, responses, timeouts, refills) and
 * injects the failure classes while clients stream transfers:
 *
 *   deploy → deposit/withdraw → challenge of a live executor (answered) → a watchdog paused
 *   (SIGSTOP) past the ack timeout, challenged and answering → watchdog crash (SIGKILL) →
 *   executor crash (SIGKILL, clients challenge automatically) → executor withholding (its host
 *   stopped with SIGSTOP: connections accepted, nothing answered; full runs, pool of 3) →
 *   planned exit of the executor → stake withdrawal after the exit delay.
 *
 * Recovery = wall-clock time from the fault to the first receipt of a transaction sent after
 * the fault (for the executor's failures, also signed by the new executor). With `timeTravel`,
 * anvil's clock is moved past Δ as soon as the challenge is on-chain, so the figure is the
 * protocol's overhead without Δ. Gas = `gasUsed` of every manager transaction in the blocks;
 * each operation's figure is its highest sample (the worst case the paper's figures are held
 * against), with the median and the lowest beside it in the detailed file.
 */
import type { Address } from 'viem'
import { poseManagerAbi, readInstance } from '../../src/chain/manager.ts'
import type { PoseClient } from '../../src/client/index.ts'
import { anvilRpc } from '../../src/devnet/anvil.ts'
import { DEFAULT_MANAGER_PARAMS } from '../../src/devnet/deploy.ts'
import type { Devnet } from '../../src/devnet/devnet.ts'
import { type GasSample, managerGas, operatorSender, watchInstance } from '../lib/chain.ts'
import {
  median,
  printTable,
  progress,
  type Row,
  round,
  waitFor,
  withDevnet,
} from '../lib/common.ts'
import { operatorIndex } from '../lib/procs.ts'
import { deployToken, devnetClients, runLoad, startStreams, transfer } from '../lib/workload.ts'

export type FaultsConfig = { quick: boolean; gas: boolean; recovery: boolean }

type Scenario = {
  pool: number
  delta: number
  timeTravel: boolean
  /** Also measure an executor whose host withholds (full runs, pool of 3). */
  withholding?: boolean
}

export type RecoveryFigure = {
  failure: 'executor_crash' | 'watchdog_crash' | 'executor_withholding' | 'operator_exit'
  pool: number
  deltaS: number
  timeTravel: boolean
  /**
   * Fault → first receipt of a transaction sent after the fault (and, when the executor failed
   * or left, signed by its successor): the service is back for new work.
   */
  recoveryS: number
  /**
   * The executor's failures: fault → first receipt signed by the new executor whatever its
   * send time, which can be a transaction sent before the fault and answered on-chain to the
   * clients' challenge (what `recoveryS` measured until 2026-12-07).
   */
  firstNewExecutorReceiptS?: number
  /** Longest time without any receipt (any client) in the fault window. */
  maxGapS: number
  /** Fault → challenge on-chain, → replacement on-chain (executor change or mask cleared). */
  challengedAfterS?: number
  replacedAfterS?: number
  receiptsInWindow: number
  clientErrors: number
  /** The clients' errors in the window by code (`TIMEOUT`, `NOT_READY`, …; `other` without one). */
  clientErrorCodes?: Record<string, number>
}

export type ScenarioResult = Scenario & {
  operators: number
  durationS: number
  gas: GasSample[]
  recovery: RecoveryFigure[]
  error?: string
}

export type FaultsResult = {
  scenarios: ScenarioResult[]
  /** Highest gas per manager function, pool of 3 (the summary in latest.json). */
  gasSummary: Record<string, number>
  /**
   * Highest gas per function and pool size: the worst case, which the paper's figures are held
   * against (an operation's cost depends on the slots it writes first and on its payload).
   */
  gasByPool: Record<string, Record<string, number>>
  /** Median gas per function and pool size (nearest rank: the lower middle of an even count). */
  gasMedianByPool: Record<string, Record<string, number>>
  /** Lowest gas per function and pool size. */
  gasMinByPool: Record<string, Record<string, number>>
  /** How many successful transactions each figure comes from, per function and pool size. */
  gasSamplesByPool: Record<string, Record<string, number>>
  /** Median bytes of the payload argument per function and pool size (challenges). */
  payloadBytesByPool: Record<string, Record<string, number>>
  recoverySummary: Record<string, number | boolean>
}

const ZERO = /^0x0{40}$/
const ETH = 10n ** 18n

/** The setup of an instance: its three transactions together. */
export const SETUP = 'setup (createContract+drawPool+activate)'

/** The paper's figures (Frassetto et al., NDSS 2023) the manager is compared with. */
export const PAPER_GAS: Record<string, number> = {
  register: 153_000,
  [SETUP]: 256_000,
  deposit: 41_000,
  withdraw: 39_000,
  challengeExecutor: 66_000,
  respondExecutor: 53_000,
  executorTimeout: 62_000,
  challengeWatchdogs: 90_000,
}

const GAS_ORDER = [
  'register',
  'createContract',
  'drawPool',
  'activate',
  SETUP,
  'deposit',
  'withdraw',
  'challengeExecutor',
  'challengeExecutor (tx payload)',
  'respondExecutor',
  'respondExecutor (promoted, with receipt)',
  'executorTimeout',
  'challengeWatchdogs',
  'respondWatchdog',
  'finalizeWatchdogChallenge (remove, slash)',
  'finalizeWatchdogChallenge (all answered)',
  'refill (schedule draw)',
  'refill (draw, add member)',
  'requestExit',
  'leave (executor)',
  'withdrawStake',
]

async function passTime(devnet: Devnet, seconds: number): Promise<void> {
  await anvilRpc(devnet.rpcUrl, 'evm_increaseTime', [seconds])
  await anvilRpc(devnet.rpcUrl, 'evm_mine', [])
}

const info = (c: PoseClient, instance: bigint) => readInstance(c.publicClient, c.manager, instance)

/**
 * SIGKILLs a member's operator and enclave. The dead operator stays registered, so a refill
 * could draw it again and stall the pool for another Δ; as an operator would, it is taken out
 * of future draws (`requestExit` from its key), concurrently, so the measurement is not delayed.
 */
async function killMember(
  devnet: Devnet,
  operator: Address,
  pending: Array<Promise<unknown>>,
): Promise<void> {
  const i = operatorIndex(devnet, operator)
  devnet.killEnclave(i)
  await devnet.killOperator(i, 'SIGKILL')
  pending.push(
    operatorSender(devnet, devnet.operators[i]!.key)
      .then((s) =>
        s.write({ address: devnet.manager, abi: poseManagerAbi, functionName: 'requestExit' }),
      )
      .catch((e: unknown) => progress(`requestExit of the dead operator failed: ${String(e)}`)),
  )
}

/**
 * A withholding host: its operator and enclave processes are stopped (SIGSTOP), so the kernel
 * still accepts connections to its port but nothing answers users or peers and nothing reaches
 * the chain from it. Users notice when two health checks of its operator go unanswered while a
 * request is pending (the SDK's `hostProbeMs`), or else when the request goes unanswered
 * (`requestTimeoutMs`).
 */
function stopHost(devnet: Devnet, operator: Address): void {
  for (const pid of hostPids(devnet, operator)) process.kill(pid, 'SIGSTOP')
}

/** The operator and enclave processes of `operator`'s host that run. */
function hostPids(devnet: Devnet, operator: Address): number[] {
  const i = operatorIndex(devnet, operator)
  return [devnet.operators[i]!.process?.pid, devnet.enclavePid(i)].filter(
    (x): x is number => x !== undefined,
  )
}

function maxGap(times: number[], from: number, to: number): number {
  const ts = [from, ...times.filter((t) => t > from && t < to).sort((a, b) => a - b), to]
  let gap = 0
  for (let i = 1; i < ts.length; i++) gap = Math.max(gap, ts[i]! - ts[i - 1]!)
  return gap
}

/**
 * Runs one failure class: streams transfers from every client, injects `fault` once 10
 * receipts arrived, and waits for the first receipt of a transaction sent after the fault
 * (`sentAt` after the clock started) that `recovered` accepts.
 */
async function measureFault(p: {
  failure: RecoveryFigure['failure']
  scenario: Scenario
  devnet: Devnet
  clients: PoseClient[]
  instance: bigint
  /** Injects the fault; returns after it took effect. */
  fault: () => Promise<void>
  /**
   * Whether a receipt signed by `executor` shows recovery, besides being for a transaction sent
   * after the fault; when it names a new executor, the first receipt it accepts whatever the
   * send time is also reported (`firstNewExecutorReceiptS`).
   */
  recovered: (e: { executor: string }) => boolean
  /** The executor failed or left: its successor's first receipt of any age is reported too. */
  newExecutor?: true
  /** With time travel: when Δ may be skipped. */
  challenged: (t: { phase: string; watchdogMask: number }) => boolean
  replaced: (t: {
    phase: string
    executorSlot: number
    watchdogMask: number
    live: number
  }) => boolean
}): Promise<RecoveryFigure> {
  const { scenario, devnet, clients, instance } = p
  // The other client set (same keys) may have sent since: nonces come from the executor again.
  for (const c of clients) {
    c.state.nonces.clear()
    c.state.freeNonces.clear()
  }
  const watch = watchInstance(clients[0]!, instance)
  const streams = startStreams(clients, instance)
  try {
    await waitFor('10 receipts before the fault', () => streams.events.length >= 10, 30_000)
    const before = streams.events.length
    const t0 = performance.now()
    await p.fault()
    if (scenario.timeTravel) {
      await waitFor(
        'the challenge on-chain',
        () => watch.firstAfter(t0, p.challenged) !== undefined,
        60_000,
        20,
      )
      await passTime(devnet, scenario.delta + 1)
    }
    let t1 = 0
    await waitFor(
      `recovery from ${p.failure}`,
      () => {
        // A receipt for a transaction sent before the fault (answered late, or on-chain to a
        // challenge) says the old work was finished, not that new work is served.
        const e = streams.events
          .slice(before)
          .find((x) => x.receivedAt > t0 && x.sentAt > t0 && p.recovered(x))
        if (e) t1 = e.receivedAt
        return e !== undefined
      },
      (scenario.timeTravel ? 0 : scenario.delta * 3000) + 120_000,
      20,
    )
    const firstAny = p.newExecutor
      ? streams.events.slice(before).find((x) => x.receivedAt > t0 && p.recovered(x))
      : undefined
    // A few more receipts, so the gap figure covers the restart of the stream.
    const at = streams.events.length
    await waitFor('receipts after recovery', () => streams.events.length >= at + 5, 60_000)
    const end = performance.now()
    const challengedAt = watch.firstAfter(t0, p.challenged)
    const replacedAt = watch.firstAfter(t0, p.replaced)
    return {
      failure: p.failure,
      pool: scenario.pool,
      deltaS: scenario.delta,
      timeTravel: scenario.timeTravel,
      recoveryS: round((t1 - t0) / 1000, 2),
      ...(firstAny
        ? { firstNewExecutorReceiptS: round((firstAny.receivedAt - t0) / 1000, 2) }
        : {}),
      maxGapS: round(
        maxGap(
          streams.events.map((e) => e.receivedAt),
          t0,
          end,
        ) / 1000,
        2,
      ),
      ...(challengedAt !== undefined
        ? { challengedAfterS: round((challengedAt - t0) / 1000, 2) }
        : {}),
      ...(replacedAt !== undefined ? { replacedAfterS: round((replacedAt - t0) / 1000, 2) } : {}),
      receiptsInWindow: streams.events.length - before,
      clientErrors: streams.errors.length,
      ...(streams.errors.length > 0 ? { clientErrorCodes: errorCodes(streams.errors) } : {}),
    }
  } finally {
    await streams.stop()
    await watch.stop()
  }
}

/** How many of `errors` carry each code (`other`: no code). */
function errorCodes(errors: readonly unknown[]): Record<string, number> {
  const out: Record<string, number> = {}
  for (const e of errors) {
    const code =
      typeof e === 'object' && e !== null && typeof (e as { code?: unknown }).code === 'string'
        ? (e as { code: string }).code
        : 'other'
    out[code] = (out[code] ?? 0) + 1
  }
  return out
}

async function runScenario(sc: Scenario): Promise<ScenarioResult> {
  // Spares for the refills after the watchdog crash, the executor crash, the withholding
  // executor and the exit.
  const operators = sc.pool + (sc.withholding ? 4 : 3)
  const label = `pool ${sc.pool}, Δ=${sc.delta} s${sc.timeTravel ? ' (time travel)' : ''}`
  const t0 = Date.now()
  const recovery: RecoveryFigure[] = []
  const marks: Array<{ phase: string; block: bigint }> = [{ phase: 'start', block: -1n }]
  const background: Array<Promise<unknown>> = []
  let gas: GasSample[] = []
  let error: string | undefined
  await withDevnet(
    {
      operators,
      users: 3,
      params: { ...DEFAULT_MANAGER_PARAMS, delta: BigInt(sc.delta) },
      // Slashing takes half a minimum stake; crashed operators stay above the minimum.
      operatorStake: 5n * ETH,
    },
    async (devnet) => {
      const auto = await devnetClients(devnet, { autoChallenge: true })
      const plain = await devnetClients(devnet)
      const mark = async (phase: string) => {
        marks.push({ phase, block: await plain[0]!.publicClient.getBlockNumber({ cacheTime: 0 }) })
      }
      try {
        await mark('deploy')
        progress(`faults [${label}]: deploy with s=${sc.pool - 1}`)
        const instance = await deployToken(auto[0]!, auto, sc.pool - 1)
        /** Waits until `slot` is refilled, then lets the newcomer catch up under load. */
        const refilled = async (slot: number, fault: string) => {
          await waitFor(
            `refill after ${fault}`,
            async () => !ZERO.test((await info(plain[0]!, instance)).operators[slot]!),
            60_000,
            100,
          )
          // The refilled member receives the state before it may serve: let it catch up.
          for (const c of plain) {
            c.state.nonces.clear()
            c.state.freeNonces.clear()
          }
          await runLoad(plain, [instance], 2)
        }
        await runLoad(auto, [instance], 2)
        // Plain clients share the users' keys; each set asks the executor for nonces when it
        // takes over from the other (measureFault does too).
        await runLoad(plain, [instance], 1)

        await mark('coins')
        progress(`faults [${label}]: deposit and withdraw`)
        const [, bob] = plain as [PoseClient, PoseClient]
        await bob.deposit({ instance, value: ETH / 10n })
        await waitFor(
          'the deposit credit',
          async () => (await bob.getBalance({ instance })) === ETH / 10n,
          60_000,
          100,
        )
        await bob.withdraw({ instance, amount: ETH / 20n })

        await mark('live_challenge')
        progress(`faults [${label}]: challenge a live executor`)
        await plain[2]!.challengeExecutor({ instance })
        await waitFor(
          'the executor to answer',
          async () => (await info(plain[0]!, instance)).phaseName === 'Active',
        )

        await mark('paused_watchdog')
        progress(`faults [${label}]: pause a watchdog past the ack timeout`)
        await pauseWatchdog(devnet, plain[0]!, instance, sc)

        await mark('watchdog_crash')
        progress(`faults [${label}]: watchdog crash`)
        const start = await info(plain[0]!, instance)
        const slot = start.signers.findIndex((s, i) => i !== start.executorSlot && !ZERO.test(s))
        const victim = start.operators[slot]!
        const wd = await measureFault({
          failure: 'watchdog_crash',
          scenario: sc,
          devnet,
          clients: auto,
          instance,
          fault: () => killMember(devnet, victim, background),
          // Nothing sent after the fault can be released before the dead watchdog is removed.
          recovered: () => true,
          challenged: (t) => t.watchdogMask !== 0,
          replaced: (t) => t.watchdogMask === 0 && t.live < sc.pool,
        })
        recovery.push(wd)
        progress(
          `faults [${label}]: watchdog crash: first receipt of a transfer sent after it after ${wd.recoveryS} s`,
        )
        await waitFor(
          'refill after the watchdog crash',
          async () => !ZERO.test((await info(plain[0]!, instance)).operators[slot]!),
          60_000,
          100,
        )

        await mark('executor_crash')
        progress(`faults [${label}]: executor crash (clients challenge automatically)`)
        const before = await info(plain[0]!, instance)
        const oldSigner = before.signers[before.executorSlot]!.toLowerCase()
        const ex = await measureFault({
          failure: 'executor_crash',
          scenario: sc,
          devnet,
          clients: auto,
          instance,
          fault: () => killMember(devnet, before.operators[before.executorSlot]!, background),
          recovered: (e) => e.executor !== oldSigner,
          newExecutor: true,
          challenged: (t) => t.phase === 'ExecutorChallenged',
          replaced: (t) => t.executorSlot !== before.executorSlot && t.phase === 'Active',
        })
        recovery.push(ex)
        progress(
          `faults [${label}]: executor crash: first receipt of a transfer sent after it after ${ex.recoveryS} s (the new executor's first of any: ${ex.firstNewExecutorReceiptS ?? '?'} s)`,
        )
        await refilled(before.executorSlot, 'the executor crash')

        if (sc.withholding) {
          await mark('executor_withholding')
          progress(
            `faults [${label}]: executor withholding (its host accepts connections and answers nothing)`,
          )
          const held = await info(plain[0]!, instance)
          const heldSigner = held.signers[held.executorSlot]!.toLowerCase()
          const heldOperator = held.operators[held.executorSlot]!
          const wh = await measureFault({
            failure: 'executor_withholding',
            scenario: sc,
            devnet,
            clients: auto,
            instance,
            fault: async () => stopHost(devnet, heldOperator),
            recovered: (e) => e.executor !== heldSigner,
            newExecutor: true,
            challenged: (t) => t.phase === 'ExecutorChallenged',
            replaced: (t) => t.executorSlot !== held.executorSlot && t.phase === 'Active',
          })
          recovery.push(wh)
          progress(
            `faults [${label}]: executor withholding: first receipt of a transfer sent after it after ${wh.recoveryS} s (challenged after ${wh.challengedAfterS ?? '?'} s)`,
          )
          // The silent host is then shut down for good, like a crashed one.
          await killMember(devnet, heldOperator, background)
          await refilled(held.executorSlot, 'the withholding executor')
        }

        await mark('exit')
        progress(`faults [${label}]: planned exit of the executor's operator`)
        const cur = await info(plain[0]!, instance)
        const exiting = devnet.operators[operatorIndex(devnet, cur.operators[cur.executorSlot]!)]!
        const sender = await operatorSender(devnet, exiting.key)
        await sender.write({
          address: devnet.manager,
          abi: poseManagerAbi,
          functionName: 'requestExit',
        })
        const oldExec = cur.signers[cur.executorSlot]!.toLowerCase()
        const exit = await measureFault({
          failure: 'operator_exit',
          scenario: { ...sc, timeTravel: false },
          devnet,
          clients: plain,
          instance,
          fault: async () => {
            await sender.write({
              address: devnet.manager,
              abi: poseManagerAbi,
              functionName: 'leave',
              args: [instance],
            })
          },
          recovered: (e) => e.executor !== oldExec,
          newExecutor: true,
          challenged: () => false,
          replaced: (t) => t.executorSlot !== cur.executorSlot,
        })
        recovery.push({ ...exit, timeTravel: sc.timeTravel })
        progress(
          `faults [${label}]: exit: first receipt from the new executor of a transfer sent after the leave after ${exit.recoveryS} s`,
        )

        await mark('withdraw_stake')
        await passTime(devnet, Number(DEFAULT_MANAGER_PARAMS.exitDelay) + 1)
        await sender.write({
          address: devnet.manager,
          abi: poseManagerAbi,
          functionName: 'withdrawStake',
        })
        await Promise.all(background)
      } catch (e) {
        error = e instanceof Error ? e.message : String(e)
        progress(`faults [${label}]: FAILED: ${error}`)
      }
      gas = (await managerGas(plain[0]!, devnet.manager)).map((g) => ({
        ...g,
        phase: marks.filter((m) => m.block < BigInt(g.block)).at(-1)!.phase,
      }))
    },
  )
  return {
    ...sc,
    operators,
    durationS: round((Date.now() - t0) / 1000, 1),
    gas,
    recovery,
    ...(error ? { error } : {}),
  }
}

/**
 * Pauses a watchdog's operator and enclave (SIGSTOP) while a transaction waits for its ack;
 * once the executor challenged it on-chain, resumes it, so it answers (`respondWatchdog`). The
 * challenge is closed by `finalizeWatchdogChallenge` after Δ (skipped by time travel).
 */
async function pauseWatchdog(devnet: Devnet, client: PoseClient, instance: bigint, sc: Scenario) {
  const start = await info(client, instance)
  const slot = start.signers.findIndex((s, i) => i !== start.executorSlot && !ZERO.test(s))
  if (slot < 0) return
  const pids = hostPids(devnet, start.operators[slot]!)
  for (const pid of pids) process.kill(pid, 'SIGSTOP')
  try {
    const friend = '0x000000000000000000000000000000000000bEEF'
    const pending = transfer(client, instance, friend)
    await waitFor(
      'the executor to challenge the paused watchdog',
      async () => (await info(client, instance)).watchdogMask !== 0,
      60_000,
      50,
    )
    for (const pid of pids) process.kill(pid, 'SIGCONT')
    await pending
    await waitFor(
      'the paused watchdog to answer on-chain',
      async () => ((await info(client, instance)).respondedMask & (1 << slot)) !== 0,
      60_000,
      100,
    )
    if (sc.timeTravel) await passTime(devnet, sc.delta + 1)
    await waitFor(
      'the watchdog challenge to be finalized',
      async () => (await info(client, instance)).watchdogMask === 0,
      sc.delta * 1000 + 60_000,
      100,
    )
  } finally {
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGCONT')
      } catch {}
    }
  }
}

/**
 * Quick: one scenario with a real Δ of 5 s. Full: Δ = 60 s skipped by time travel (protocol
 * overhead) and real Δ of 5 s and 15 s with a pool of 3; pools of 5 and 11 for gas.
 */
function scenarios(cfg: FaultsConfig): Scenario[] {
  if (cfg.quick) return [{ pool: 3, delta: 5, timeTravel: false }]
  const withholding = cfg.recovery
  const list: Scenario[] = [{ pool: 3, delta: 60, timeTravel: true, withholding }]
  if (cfg.recovery)
    list.push(
      { pool: 3, delta: 5, timeTravel: false, withholding },
      { pool: 3, delta: 15, timeTravel: false, withholding },
    )
  if (cfg.gas)
    list.push({ pool: 5, delta: 60, timeTravel: true }, { pool: 11, delta: 60, timeTravel: true })
  return list
}

export async function benchFaults(cfg: FaultsConfig): Promise<FaultsResult> {
  const results: ScenarioResult[] = []
  for (const sc of scenarios(cfg)) results.push(await runScenario(sc))

  const gasByPool: Record<string, Record<string, number>> = {}
  const gasMedianByPool: Record<string, Record<string, number>> = {}
  const gasMinByPool: Record<string, Record<string, number>> = {}
  const gasSamplesByPool: Record<string, Record<string, number>> = {}
  const payloadBytesByPool: Record<string, Record<string, number>> = {}
  for (const r of results) {
    if (!r.timeTravel && results.some((x) => x.pool === r.pool && x.timeTravel)) continue
    const ok = r.gas.filter((x) => x.ok)
    const figures = gasFigures(ok.map((g) => ({ name: variant(g), gas: g.gas })))
    const bytes = new Map<string, number[]>()
    for (const g of ok) {
      if (g.payloadBytes === undefined) continue
      const name = variant(g)
      bytes.set(name, [...(bytes.get(name) ?? []), g.payloadBytes])
    }
    const pool = `pool${r.pool}`
    gasByPool[pool] = figures.max
    gasMedianByPool[pool] = figures.median
    gasMinByPool[pool] = figures.min
    gasSamplesByPool[pool] = figures.samples
    payloadBytesByPool[pool] = Object.fromEntries([...bytes].map(([fn, v]) => [fn, median(v)]))
  }
  const gasSummary: Record<string, number> = { ...(gasByPool.pool3 ?? {}) }
  // Plain function names too (the variant that does the function's full job).
  for (const [fn, main] of [
    ['refill', 'refill (draw, add member)'],
    ['finalizeWatchdogChallenge', 'finalizeWatchdogChallenge (remove, slash)'],
    ['leave', 'leave (executor)'],
  ] as const) {
    if (gasSummary[main] !== undefined) gasSummary[fn] ??= gasSummary[main]
  }

  const recoverySummary: Record<string, number | boolean> = {}
  for (const r of results.filter((x) => x.pool === 3)) {
    for (const f of r.recovery) {
      const key = f.timeTravel ? `${f.failure}_excl_delta` : `${f.failure}_delta${f.deltaS}`
      recoverySummary[key] = f.recoveryS
    }
  }
  // The headline figure: the smallest real Δ, wall clock, Δ included.
  const real = results
    .filter((x) => x.pool === 3 && !x.timeTravel)
    .sort((a, b) => a.delta - b.delta)[0]
  if (real) {
    recoverySummary.delta_s = real.delta
    for (const f of real.recovery) recoverySummary[f.failure] = f.recoveryS
  }

  const out: FaultsResult = {
    scenarios: results,
    gasSummary,
    gasByPool,
    gasMedianByPool,
    gasMinByPool,
    gasSamplesByPool,
    payloadBytesByPool,
    recoverySummary,
  }
  if (cfg.gas) printGas(out)
  if (cfg.recovery) printRecovery(out)
  return out
}

const SETUP_PARTS = ['createContract', 'drawPool', 'activate'] as const

/**
 * Each operation's highest, median and lowest gas over its samples, and how many there are;
 * setup is the sum of its three transactions' figures (its worst case: each part's highest).
 */
export function gasFigures(samples: ReadonlyArray<{ name: string; gas: number }>): {
  max: Record<string, number>
  median: Record<string, number>
  min: Record<string, number>
  samples: Record<string, number>
} {
  const by = new Map<string, number[]>()
  for (const s of samples) by.set(s.name, [...(by.get(s.name) ?? []), s.gas])
  const out = {
    max: {} as Record<string, number>,
    median: {} as Record<string, number>,
    min: {} as Record<string, number>,
    samples: {} as Record<string, number>,
  }
  for (const [name, v] of by) {
    out.max[name] = Math.max(...v)
    out.median[name] = median(v)
    out.min[name] = Math.min(...v)
    out.samples[name] = v.length
  }
  for (const stat of ['max', 'median', 'min'] as const) {
    const parts = SETUP_PARTS.map((f) => out[stat][f])
    if (parts.every((x) => x !== undefined))
      out[stat][SETUP] = parts.reduce<number>((a, b) => a + b!, 0)
  }
  return out
}

/** Phases in which users challenge a silent executor with their transaction as the payload. */
const FAILED_EXECUTOR = new Set(['executor_crash', 'executor_withholding'])

/** Names the variants of a call whose cost differs by situation. */
function variant(g: GasSample): string {
  switch (g.fn) {
    case 'refill':
      return g.logs === 0 ? 'refill (schedule draw)' : 'refill (draw, add member)'
    case 'finalizeWatchdogChallenge':
      return g.phase === 'paused_watchdog' ? `${g.fn} (all answered)` : `${g.fn} (remove, slash)`
    case 'challengeExecutor':
      return FAILED_EXECUTOR.has(g.phase ?? '') ? `${g.fn} (tx payload)` : g.fn
    case 'respondExecutor':
      return FAILED_EXECUTOR.has(g.phase ?? '') ? `${g.fn} (promoted, with receipt)` : g.fn
    case 'leave':
      return g.phase === 'exit' ? `${g.fn} (executor)` : g.fn
    default:
      return g.fn
  }
}

/**
 * The highest figure of operation `fn` over every pool size and every variant of the function
 * (`challengeExecutor` and `challengeExecutor (tx payload)`, …): the worst case the paper's
 * figure is held against. Undefined when nothing was measured.
 */
export function worstOfOperation(
  gasByPool: Record<string, Record<string, number> | undefined>,
  fn: string,
): { gas: number; variant: string; pool: string } | undefined {
  let worst: { gas: number; variant: string; pool: string } | undefined
  for (const [pool, figures] of Object.entries(gasByPool)) {
    for (const [variant, gas] of Object.entries(figures ?? {})) {
      if (variant !== fn && !(fn !== SETUP && variant.startsWith(`${fn} (`))) continue
      if (typeof gas === 'number' && (!worst || gas > worst.gas)) worst = { gas, variant, pool }
    }
  }
  return worst
}

export function printGas(r: FaultsResult): void {
  const pools = Object.keys(r.gasByPool)
  const fns = [
    ...GAS_ORDER,
    ...new Set(Object.values(r.gasByPool).flatMap((p) => Object.keys(p))),
  ].filter((f, i, a) => a.indexOf(f) === i)
  const rows: Row[] = []
  for (const fn of fns) {
    const vals = pools.map((p) => r.gasByPool[p]![fn])
    if (vals.every((v) => v === undefined) && PAPER_GAS[fn] === undefined) continue
    const row: Row = { function: fn }
    for (const [i, p] of pools.entries()) row[p] = vals[i]
    const ref = PAPER_GAS[fn]
    row.paper = ref
    const worst = ref !== undefined ? worstOfOperation(r.gasByPool, fn) : undefined
    row['worst/paper'] = ref && worst ? round(worst.gas / ref, 2) : undefined
    row.pool3_samples = r.gasSamplesByPool.pool3?.[fn]
    const lo = r.gasMinByPool.pool3?.[fn]
    const mid = r.gasMedianByPool.pool3?.[fn]
    row['pool3 lowest / median'] =
      lo !== undefined && lo !== r.gasByPool.pool3?.[fn] ? `${lo} / ${mid}` : ''
    rows.push(row)
  }
  printTable('Gas of manager transactions (highest gasUsed from receipts on anvil)', rows, [
    'Each figure is the highest of its samples (the worst case); pool3 lowest / median is given where the samples differ.',
    'worst/paper: the highest over every pool and every variant of the function (e.g. challengeExecutor with its tx payload) against the paper.',
    'gasUsed includes the 21k intrinsic cost and calldata; "paper" = reference figures of the POSE paper.',
    'register: one per operator at devnet start (the first on a new manager writes more); refill/leave/timeouts: submitted by operator nodes.',
    ...Object.keys(r.payloadBytesByPool.pool3 ?? {}).map(
      (fn) =>
        `${fn}: payload of ${pools.map((p) => `${r.payloadBytesByPool[p]?.[fn] ?? '–'} B (${p})`).join(', ')} (median; its gas grows with it).`,
    ),
  ])
}

export function printRecovery(r: FaultsResult): void {
  const rows: Row[] = []
  for (const sc of r.scenarios) {
    for (const f of sc.recovery) {
      rows.push({
        failure: f.failure,
        pool: f.pool,
        'Δ (s)': f.deltaS,
        'Δ by time travel': f.failure === 'operator_exit' ? 'n/a' : f.timeTravel ? 'yes' : 'no',
        recovery_s: f.recoveryS,
        new_executor_any_tx_s: f.firstNewExecutorReceiptS,
        max_gap_s: f.maxGapS,
        challenged_after_s: f.challengedAfterS,
        replaced_after_s: f.replacedAfterS,
        receipts: f.receiptsInWindow,
        client_errors: f.clientErrorCodes
          ? Object.entries(f.clientErrorCodes)
              .map(([c, n]) => `${c} ${n}`)
              .join(', ')
          : '',
      })
    }
    if (sc.error) rows.push({ failure: `scenario failed: ${sc.error.slice(0, 60)}`, pool: sc.pool })
  }
  printTable('Time to recovery (fault → first receipt of a transfer sent after the fault)', rows, [
    "recovery_s: to the first receipt of a transfer sent after the fault (the executor's failures: signed by its successor); new_executor_any_tx_s: to the successor's first receipt of any transfer, which may have been sent before the fault and answered on-chain to a challenge.",
    "Δ by time travel = yes: anvil's clock was moved past Δ once the challenge was on-chain; the figure excludes Δ.",
    'executor crash: clients with autoChallenge; watchdog crash: the executor challenges after the ack timeout A = 5 s.',
    "executor withholding: its host stopped (SIGSTOP); clients challenge once two of the SDK's health checks of its operator (hostProbeMs, 2 s each) go unanswered while a request is pending.",
  ])
}
