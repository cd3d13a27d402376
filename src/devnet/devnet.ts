/**
 * A local POSE network: embedded anvil, the manager, and N operators, each an operator process
 * with its own enclave process and data directory (SPEC §2: Devnet). Used by `npm start`,
 * `pose devnet`, the e2e tests and the benchmarks.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import {
  createWriteStream,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  type WriteStream,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { type Address, createPublicClient, type Hex, http } from 'viem'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { readOperator } from '../chain/manager.ts'
import { bytesToHex, hexToBytes } from '../protocol/index.ts'
import { DEFAULT_BUNDLE_PATH, measureBundle, REPO_ROOT } from '../tee/measurement.ts'
import { type Anvil, anvilRpc, startAnvil } from './anvil.ts'
import { killOnExit } from './children.ts'
import { DEFAULT_MANAGER_PARAMS, deployManager, type ManagerParams } from './deploy.ts'

export type OperatorProcess = {
  index: number
  key: Hex
  address: Address
  dataDir: string
  logPath: string
  process: ChildProcess | undefined
}

export type DevnetOptions = {
  operators?: number
  users?: number
  /** Directory for data and logs; a fresh temporary directory by default. */
  dir?: string
  blockTime?: number
  params?: ManagerParams
  log?: (line: string) => void
  /** Stake each operator registers with (default: the manager minimum). */
  operatorStake?: bigint
  /**
   * Whether operator `i` follows anvil's new heads over its WebSocket (`--rpc-ws`; default: every
   * operator). Without it an operator polls the chain every 200 ms.
   */
  headSubscription?: boolean | ((i: number) => boolean)
  /** Extra environment for operator `i` (e.g. the simulator's POSE_LINK_FAULTS). */
  operatorEnv?: (i: number) => Record<string, string>
  /** Extra command-line options for operator `i` (e.g. `--port`, `--public-url`). */
  operatorArgs?: (i: number) => string[]
  /**
   * Where to probe operator `i`'s health while it starts, when its registered endpoint is not
   * reachable from here (a proxy in front of it that may be cut). Default: that endpoint.
   */
  healthUrl?: (i: number) => string | undefined
  /**
   * Aborts the start (an interrupted `pose devnet`): whatever started is stopped, its temporary
   * directory removed, and the start rejects with the signal's reason.
   */
  signal?: AbortSignal
}

/** What a devnet is started with; tests stand in for anvil or the enclave bundle. */
export type DevnetDeps = {
  startAnvil?: (opts: { blockTime: number }) => Promise<Anvil>
  bundlePath?: string
}

export type Devnet = {
  anvil: Anvil
  rpcUrl: string
  manager: Address
  verifier: Address
  devAuthorityKey: Hex
  deployerKey: Hex
  userKeys: Hex[]
  operators: OperatorProcess[]
  dir: string
  /**
   * Starts operator `i` and waits until it serves. A start already under way is awaited
   * rather than repeated, and an operator that runs is left alone: a second process would find
   * its port taken and leave the first one untracked.
   */
  startOperator: (i: number) => Promise<void>
  killOperator: (i: number, signal?: NodeJS.Signals) => Promise<void>
  enclavePid: (i: number) => number | undefined
  /**
   * SIGKILLs operator `i`'s enclave process if it still runs; false if there is none (a pid
   * file names a process that exited, whose pid may since belong to another process).
   */
  killEnclave: (i: number) => boolean
  /**
   * Stops the operators, their enclaves and anvil, then removes the devnet's temporary directory
   * unless `keepDir` (a failed run, kept for its logs), POSE_KEEP_DEVNET is set, or the directory
   * was given as `dir`.
   */
  stop: (o?: { keepDir?: boolean }) => Promise<void>
}

/**
 * A devnet that failed to start after something was started: everything it started is stopped,
 * and its directory (the operators' logs the cause may point to) is kept, at `dir`.
 */
export class DevnetStartError extends Error {
  override name = 'DevnetStartError'
  constructor(
    readonly dir: string,
    cause: unknown,
  ) {
    const reason =
      typeof (cause as { shortMessage?: unknown })?.shortMessage === 'string'
        ? (cause as { shortMessage: string }).shortMessage
        : cause instanceof Error
          ? cause.message
          : String(cause)
    super(`the devnet did not start (its data and logs are kept in ${dir}): ${reason}`, {
      cause,
    })
  }
}

const FUND = 10n ** 22n

async function fund(rpcUrl: string, address: Address): Promise<void> {
  await anvilRpc(rpcUrl, 'anvil_setBalance', [address, `0x${FUND.toString(16)}`])
}

/**
 * SIGKILLs `pid` only if it is the enclave process of the operator whose data directory is
 * `dataDir` (the operator passes it as the enclave's argument). A pid read from a file may have
 * been reused by any other process since: on a busy machine with 32,768 pids a long simulator
 * run reuses them within minutes, and killing blindly took down another scenario's operator.
 */
export function killIfEnclaveOf(pid: number, dataDir: string): boolean {
  const label = resolve(dataDir)
  let ours: boolean
  try {
    ours = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes(label)
  } catch {
    try {
      const command = execFileSync('ps', ['-o', 'command=', '-p', String(pid)], {
        encoding: 'utf8',
      })
      ours = command.trimEnd().endsWith(` ${label}`)
    } catch {
      return false // no such process
    }
  }
  if (!ours) return false
  try {
    process.kill(pid, 'SIGKILL')
    return true
  } catch {
    return false
  }
}

/**
 * Waits until `ready()` returns true for a process just started, polling every 100 ms. Fails at
 * once, with the tail of its log, if the process exits or is killed by a signal (a crash while
 * it starts); fails after `timeoutMs` with the last thing `ready()` reported otherwise.
 */
export async function waitForStart(p: {
  child: ChildProcess
  out: WriteStream
  logPath: string
  what: string
  ready: () => Promise<true | string>
  timeoutMs?: number
  /** Ends the wait (rejecting with its reason) once aborted. */
  signal?: AbortSignal
}): Promise<void> {
  const { child, out, logPath, what } = p
  const deadline = Date.now() + (p.timeoutMs ?? 60_000)
  const tail = () => readFileSync(logPath, 'utf8').slice(-2000)
  for (;;) {
    p.signal?.throwIfAborted()
    if (child.exitCode !== null || child.signalCode !== null) {
      // Its output reaches the log asynchronously: wait until it is all written.
      await new Promise<void>((resolve) => {
        if (out.writableFinished) resolve()
        else out.once('finish', () => resolve())
        setTimeout(resolve, 2_000).unref()
      })
      const how =
        child.signalCode !== null
          ? `was killed by ${child.signalCode}`
          : `exited with code ${child.exitCode}`
      throw new Error(`${what} ${how} while starting; see ${logPath}:\n${tail()}`)
    }
    const state = await p.ready()
    if (state === true) return
    if (Date.now() > deadline)
      throw new Error(
        `${what} did not start within ${(p.timeoutMs ?? 60_000) / 1000} s (${state}); see ${logPath}:\n${tail()}`,
      )
    await new Promise((r) => setTimeout(r, 100))
  }
}

/**
 * Starts anvil, deploys the manager and starts `opts.operators` operators. A start that fails
 * after anvil is up stops everything it started and rejects with a `DevnetStartError` naming the
 * directory kept for inspection; an aborted one (`opts.signal`) removes its temporary directory.
 */
export async function startDevnet(
  opts: DevnetOptions = {},
  deps: DevnetDeps = {},
): Promise<Devnet> {
  const log = opts.log ?? (() => undefined)
  // Checked before anything starts: the operators' enclaves run this bundle.
  const bundlePath = deps.bundlePath ?? DEFAULT_BUNDLE_PATH
  if (!existsSync(bundlePath))
    throw new Error(`the enclave bundle ${bundlePath} is missing: run \`npm run build\` first`)
  const measurement = measureBundle(bundlePath)
  opts.signal?.throwIfAborted()
  const temporary = opts.dir === undefined
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'pose-devnet-'))
  mkdirSync(dir, { recursive: true })
  let anvil: Anvil
  try {
    anvil = await (deps.startAnvil ?? startAnvil)({ blockTime: opts.blockTime ?? 1 })
  } catch (e) {
    // Nothing was written to it yet.
    if (temporary) rmSync(dir, { recursive: true, force: true })
    throw e
  }
  const operators: OperatorProcess[] = []
  const userKeys: Hex[] = []
  const devAuthorityKey = generatePrivateKey()
  const deployerKey = generatePrivateKey()
  // Set once the manager is deployed, before any operator starts.
  let manager: Address = '0x'
  let verifier: Address = '0x'
  const client = createPublicClient({ transport: http(anvil.url) })

  const running = (op: OperatorProcess) =>
    op.process !== undefined && op.process.exitCode === null && op.process.signalCode === null
  const starting = new Map<number, Promise<void>>()
  const startOperator = (i: number): Promise<void> => {
    const inFlight = starting.get(i)
    if (inFlight) return inFlight
    if (running(operators[i]!)) return Promise.resolve()
    const started = spawnOperator(i).finally(() => starting.delete(i))
    starting.set(i, started)
    return started
  }

  const followsHeads = (i: number): boolean => {
    const h = opts.headSubscription ?? true
    return typeof h === 'function' ? h(i) : h
  }
  const spawnOperator = async (i: number): Promise<void> => {
    const op = operators[i]!
    const out = createWriteStream(op.logPath, { flags: 'a' })
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        join(REPO_ROOT, 'src', 'cli', 'main.ts'),
        'operator',
        'start',
        '--rpc',
        anvil.url,
        ...(followsHeads(i) ? ['--rpc-ws', anvil.url.replace(/^http/, 'ws')] : []),
        '--manager',
        manager,
        '--data-dir',
        op.dataDir,
        ...(opts.operatorStake !== undefined ? ['--stake', opts.operatorStake.toString()] : []),
        ...(opts.operatorArgs?.(i) ?? []),
      ],
      {
        cwd: REPO_ROOT,
        env: {
          ...process.env,
          POSE_OPERATOR_KEY: op.key,
          POSE_DEV_AUTHORITY_KEY: devAuthorityKey,
          POSE_LOG_LEVEL: process.env.POSE_LOG_LEVEL ?? 'info',
          ...opts.operatorEnv?.(i),
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    )
    killOnExit(child)
    // Both streams feed one log; it ends once the process has closed them both.
    child.stdout?.pipe(out, { end: false })
    child.stderr?.pipe(out, { end: false })
    child.once('close', () => out.end())
    op.process = child
    await waitForStart({
      child,
      out,
      logPath: op.logPath,
      what: `operator ${i}`,
      ready: async () => {
        const info = await readOperator(client as never, manager, op.address)
        if (!info.registered || readPid(op.dataDir, 'operator.pid') !== child.pid)
          return `registered ${info.registered}, endpoint ${info.endpoint}`
        try {
          const base = opts.healthUrl?.(i) ?? info.endpoint
          const res = await fetch(`${base}/v1/health`, {
            signal: AbortSignal.timeout(2_000),
          })
          if (res.ok) return true
        } catch {}
        return `registered, endpoint ${info.endpoint} not answering`
      },
      ...(opts.signal ? { signal: opts.signal } : {}),
    })
    log(`operator ${i} (${op.address}) up`)
  }

  const killOperator = async (i: number, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> => {
    const op = operators[i]!
    const child = op.process
    if (!child || !running(op)) {
      op.process = undefined
      return
    }
    const exited = new Promise<void>((r) => child.once('exit', () => r()))
    child.kill(signal)
    // A stopped (SIGSTOP) operator acts on the signal only once it runs again.
    if (signal !== 'SIGKILL') child.kill('SIGCONT')
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
    await exited
    clearTimeout(timer)
    op.process = undefined
  }

  const enclavePid = (i: number) => readPid(operators[i]!.dataDir, 'enclave.pid')
  const killEnclave = (i: number): boolean => {
    const pid = enclavePid(i)
    return pid !== undefined && killIfEnclaveOf(pid, operators[i]!.dataDir)
  }

  const stop = async (o: { keepDir?: boolean } = {}) => {
    await Promise.all(operators.map((_, i) => killOperator(i)))
    // An enclave whose operator was SIGKILLed exits on IPC disconnect; make sure.
    for (let i = 0; i < operators.length; i++) killEnclave(i)
    await anvil.stop()
    // POSE_KEEP_DEVNET=1 keeps the operators' data dirs and logs for inspection.
    if (temporary && !o.keepDir && !process.env.POSE_KEEP_DEVNET)
      rmSync(dir, { recursive: true, force: true })
  }

  try {
    opts.signal?.throwIfAborted()
    log(`anvil listening on ${anvil.url}`)
    await fund(anvil.url, privateKeyToAccount(deployerKey).address)
    ;({ manager, verifier } = await deployManager({
      rpcUrl: anvil.url,
      deployerKey,
      devAuthorityKey: hexToBytes(devAuthorityKey),
      measurements: [measurement],
      params: opts.params ?? DEFAULT_MANAGER_PARAMS,
    }))
    log(
      `manager deployed at ${manager} (verifier ${verifier}, measurement ${bytesToHex(measurement)})`,
    )
    for (let i = 0; i < (opts.operators ?? 4); i++) {
      const key = generatePrivateKey()
      const address = privateKeyToAccount(key).address
      await fund(anvil.url, address)
      const dataDir = join(dir, `operator-${i}`)
      mkdirSync(dataDir, { recursive: true })
      operators.push({
        index: i,
        key,
        address,
        dataDir,
        logPath: join(dataDir, 'operator.log'),
        process: undefined,
      })
    }
    for (let i = 0; i < (opts.users ?? 3); i++) {
      const key = generatePrivateKey()
      await fund(anvil.url, privateKeyToAccount(key).address)
      userKeys.push(key)
    }
    opts.signal?.throwIfAborted()
    await Promise.all(operators.map((_, i) => startOperator(i)))
  } catch (e) {
    const aborted = opts.signal?.aborted === true
    await stop({ keepDir: !aborted })
    throw aborted ? e : new DevnetStartError(dir, e)
  }
  return {
    anvil,
    rpcUrl: anvil.url,
    manager,
    verifier,
    devAuthorityKey,
    deployerKey,
    userKeys,
    operators,
    dir,
    startOperator,
    killOperator,
    enclavePid,
    killEnclave,
    stop,
  }
}

function readPid(dir: string, file: string): number | undefined {
  try {
    const n = Number(readFileSync(join(dir, file), 'utf8').trim())
    return Number.isInteger(n) && n > 0 ? n : undefined
  } catch {
    return undefined
  }
}
