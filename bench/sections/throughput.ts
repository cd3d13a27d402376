/**
 * Section `throughput`: PrivateToken transfers three ways.
 *
 * - `bare_evm`: the enclave's EVM world (`World`) in this process, no protocol at all: one
 *   `call` per transfer (and, as a second figure, the executor's per-transaction work on the
 *   world: nonce, call, write set, encoding). Measured four times (before anvil, before the
 *   devnets, right after s = 2's saturation runs as `bare_evm_beside_s2`, at the end) and the
 *   fastest kept: the other figures are compared with it.
 *   `bare_evm_stock` is the same world running `@ethereumjs/evm` as shipped, without the world's
 *   faster paths (src/enclave/world/evmFastPaths.ts): what runs before 2026-12-05 measured.
 * - `anvil`: real transactions on a fresh automining anvil (a new chain for every run), signed
 *   locally, each client waiting for its receipt before sending the next. Its JSON-RPC goes
 *   through the SDK's HTTP transport and its signatures through viem's local account, as the
 *   POSE clients' requests do.
 * - `s0`..`s4`: the full protocol on the devnet (operator and enclave processes, replication to
 *   every watchdog, verified receipts) with s watchdogs, placed as `placement` says
 *   (`lib/placement.ts`: by default the executor's enclave on a core of its own); with
 *   `executor-core`, s = 2 is also measured `shared` at its best number of clients. The SDK's
 *   defaults: each transfer is sealed in its client's box session (one x25519 exchange per
 *   session) and authorised by the session's EIP-712 `Session` signature (one per session of up
 *   to 65,536 boxes or 10 minutes, not one per transfer), and goes over the operators'
 *   WebSocket API. Every client runs in this one process, so they share one WebSocket per
 *   operator (a turn's requests in one frame) and one cache of recovered receipt signers (a
 *   release's receipts share one signature, recovered once here): the SDK's real behaviour for
 *   a service acting for many accounts; bench/README.md says what it means for the figures.
 *
 * Low load = one client sending sequentially; saturation = the best median rate over the
 * numbers of clients in `clients`, each client sending sequentially.
 */
import { cpus } from 'node:os'
import {
  type Address,
  createPublicClient,
  createWalletClient,
  encodeFunctionData,
  type Hex,
  http,
} from 'viem'
import { generatePrivateKey } from 'viem/accounts'
import { privateTokenAbi, privateTokenBytecode } from '../../examples/contracts.generated.ts'
import { privateKeyToPoseAccount } from '../../src/client/account.ts'
import type { ApiTransport, PoseClient } from '../../src/client/index.ts'
import { postJson } from '../../src/client/transport.ts'
import { anvilRpc, startAnvil } from '../../src/devnet/anvil.ts'
import { type BareEvmResult, bareEvmInChild } from '../lib/bareEvm.ts'
import {
  cpuSeconds,
  type LatencySummary,
  onCleanup,
  printTable,
  progress,
  round,
  summarize,
  withDevnet,
} from '../lib/common.ts'
import {
  executorEnclavePid,
  type Placement,
  placeExecutor,
  placementUnavailable,
} from '../lib/placement.ts'
import { cpuByKind, cpuDelta, cpuPerTx, type ProcessKind } from '../lib/procs.ts'
import { bestAtLargest, bestAtSmallest, pastSaturation, txsPerClient } from '../lib/saturation.ts'
import { deployToken, devnetClients, type LoadResult, medianRun, runLoad } from '../lib/workload.ts'

export type ThroughputConfig = {
  /** Transfers for the in-process EVM figure. */
  bareTxs: number
  /** Numbers of concurrent clients tried for saturation; the best median rate is reported. */
  clients: number[]
  /** Sequential transfers of the single low-load client. */
  lowTxs: number
  /** Transfers per saturation run, shared by its clients. */
  satTxs: number
  /**
   * `satTxs` for anvil. Anvil slows down as its chain grows: 8 clients gave 487–659 tx/s in runs
   * of 1,280 transfers and 394–551 in runs of 2,560 (alternating, one sitting), so its runs stay
   * at the length that measured it before POSE's runs grew, its better case.
   */
  anvilSatTxs: number
  /**
   * Fewest transfers each client sends in a saturation run (the run grows beyond `satTxs`
   * when needed): with few per client, the start and the drain at the end, when fewer clients
   * are still sending, weigh on the rate.
   */
  minTxsPerClient: number
  /** Saturation runs per system; the run with the median rate is reported. */
  repeats: number
  watchdogCounts: number[]
  /** Where the devnet's processes run during its runs (`shared` where affinity is unavailable). */
  placement: Placement
}

/** Saturation runs with one number of clients. */
export type ClientsResult = {
  clients: number
  /** The run with the median rate. */
  median: LoadResult
  /** Rate of every run. */
  runs: number[]
  /** CPU time per transaction over these runs, by kind of process (devnet runs only). */
  cpuMsPerTx?: Record<ProcessKind, number>
  /**
   * The executor's enclave process alone (part of `cpuMsPerTx.enclaves`), when its pid was
   * known: what the other processes leave to the watchdogs' enclaves, and what core 0 carries
   * under `executor-core`.
   */
  executorCpuMsPerTx?: number
}

/** Saturation: the number of clients whose median rate is best, and every number tried. */
export type Saturation = {
  saturation: LoadResult
  /** Rate of every saturation run with the reported number of clients. */
  saturationRuns: number[]
  byClients: ClientsResult[]
  /**
   * The best median came with the largest number of clients tried (of several): saturation
   * is not shown, and more clients might give more.
   */
  atLargestTried?: true
  /**
   * The best median came with the smallest number of clients tried (of several): fewer
   * clients might give more, and the rate's rise to its best is not shown.
   */
  atSmallestTried?: true
}

export type ThroughputResult = {
  /**
   * The fastest of four measurements: before anvil, before the devnets, right after s = 2's
   * saturation runs (`bareBeside`) and at the end. A shared machine only ever slows a run down,
   * and the section's other figures are compared with it.
   */
  bareEvm: BareEvmResult & { runs: number[] }
  /** The same, on `@ethereumjs/evm` as shipped (the fastest of as many runs). */
  bareEvmStock?: BareEvmResult & { runs: number[] }
  /**
   * `saturation` is the better of the first search and `again`: anvil measured once more at the
   * search's best number of clients after the POSE runs, so that a slow stretch of the host
   * during the first search cannot lower the figure POSE is compared with.
   */
  anvil: { low: LoadResult; again?: ClientsResult } & Saturation
  pose: Array<
    {
      s: number
      operators: number
      /** Where the processes ran during this instance's runs. */
      placement: Placement
      low: LoadResult
      /** CPU time per transaction at saturation (its runs), by kind of process. */
      cpuMsPerTx: Record<ProcessKind, number>
      /**
       * With `executor-core` and s = 2: the same instance at the reported number of clients
       * with every process on every core (`repeats` runs), as all runs were until 2026-12-04.
       */
      shared?: ClientsResult
      /**
       * s = 2 only: the bare EVM measured once more right after this instance's saturation
       * runs, with every process back on every core and the devnet idle beside it. The host's
       * speed drifts by tens of per cent within one run (bench/README.md, 2026-12-06), so this
       * compares s = 2 with the machine as it was then. It is one of `bareEvm`'s runs too, whose
       * fastest the targets use.
       */
      bareBeside?: BareEvmResult
    } & Saturation
  >
  /**
   * The users' API over WebSocket (the SDK's default) and over HTTP, in alternating runs with
   * the same clients on the s = 2 instance, at the largest number of clients.
   */
  apiTransport?: ApiTransportAb
}

export type ApiTransportAb = {
  s: number
  clients: number
  runs: Record<ApiTransport, number[]>
  /** Median rate of each transport's runs. */
  tps: Record<ApiTransport, number>
  cpuMsPerTx: Record<ApiTransport, Record<ProcessKind, number>>
  /** One client sending `lowTxs` sequentially, twice per transport, alternating: p50 of each run. */
  lowP50Ms: Record<ApiTransport, number[]>
}

/**
 * The rates at which every core of this machine would be busy at a run's CPU time per
 * transaction: `all` with every process of the run (the SDK clients' included), `server`
 * without the clients (in a deployment their CPU is on the users' machines). Given the
 * executor's enclave's own share, `others`: the rate at which every process but that one would
 * keep the other cores busy (`executor-core` gives it core 0 alone).
 */
export function cpuCeilings(
  cpuMsPerTx: Record<ProcessKind, number>,
  executorMs?: number,
): {
  cores: number
  /** CPU milliseconds per transaction over every process. */
  total: number
  all: number
  server: number
  others?: number
} {
  const cores = cpus().length
  const total = Object.values(cpuMsPerTx).reduce((a, b) => a + b, 0)
  const server = cpuMsPerTx.operators + cpuMsPerTx.enclaves + cpuMsPerTx.anvil
  const rest = executorMs === undefined ? 0 : total - executorMs
  return {
    cores,
    total,
    all: round((1000 * cores) / total, 0),
    server: round((1000 * cores) / server, 0),
    ...(cores > 1 && rest > 0 ? { others: round((1000 * (cores - 1)) / rest, 0) } : {}),
  }
}

/** The executor's enclave's CPU per transaction in the runs that gave `p`'s saturation rate. */
export const executorMsAtSaturation = (p: Saturation): number | undefined =>
  p.byClients.find((b) => b.clients === p.saturation.clients)?.executorCpuMsPerTx

/**
 * Runs `repeats` saturation runs for each number of clients (`satTxs` transfers per run,
 * shared by its clients, at least `minTxsPerClient` each) and reports the number whose median
 * rate is best. Stops early once past saturation (`pastSaturation`).
 */
async function saturate(
  cfg: ThroughputConfig,
  run: (clients: number, perClient: number) => Promise<LoadResult>,
  label: string,
  /** The devnet whose processes' CPU time is counted per number of clients. */
  devnet?: Parameters<typeof cpuByKind>[0],
  /** Its executor's enclave process, whose CPU time is also given alone. */
  executorPid?: number,
): Promise<Saturation> {
  const byClients: ClientsResult[] = []
  for (const c of cfg.clients) {
    const cpu0 = devnet ? cpuByKind(devnet) : undefined
    const exec0 = cpuSeconds(executorPid)
    const runs: LoadResult[] = []
    for (let i = 0; i < cfg.repeats; i++) runs.push(await run(c, txsPerClient(cfg, c)))
    const median = medianRun(runs)
    const txs = runs.reduce((a, r) => a + r.txs, 0)
    const cpuMsPerTx = devnet && cpu0 ? cpuPerTx(devnet, cpu0, txs, 3) : undefined
    const exec1 = cpuSeconds(executorPid)
    const executorCpuMsPerTx =
      exec0 !== undefined && exec1 !== undefined
        ? round(((exec1 - exec0) * 1000) / txs, 3)
        : undefined
    byClients.push({
      clients: c,
      median,
      runs: runs.map((r) => r.tps),
      ...(cpuMsPerTx ? { cpuMsPerTx } : {}),
      ...(executorCpuMsPerTx !== undefined ? { executorCpuMsPerTx } : {}),
    })
    progress(
      `throughput: ${label}: ${c} clients ${median.tps} tx/s (runs: ${runs.map((r) => r.tps).join(', ')})`,
    )
    if (pastSaturation(byClients.map((b) => b.median.tps))) {
      if (c !== cfg.clients.at(-1))
        progress(`throughput: ${label}: past saturation, more clients not tried`)
      break
    }
  }
  const best = byClients.reduce((a, b) => (b.median.tps > a.median.tps ? b : a))
  const atLargestTried = bestAtLargest(byClients.map((b) => b.median.tps))
  if (atLargestTried)
    progress(
      `throughput: ${label}: the rate did not fall by the largest number of clients tried (${byClients.at(-1)!.clients}); more might give more`,
    )
  const atSmallestTried = bestAtSmallest(byClients.map((b) => b.median.tps))
  if (atSmallestTried)
    progress(
      `throughput: ${label}: the best rate came with the smallest number of clients tried (${byClients[0]!.clients}); fewer might give more`,
    )
  return {
    saturation: best.median,
    saturationRuns: best.runs,
    byClients,
    ...(atLargestTried ? { atLargestTried: true as const } : {}),
    ...(atSmallestTried ? { atSmallestTried: true as const } : {}),
  }
}

/**
 * JSON-RPC to anvil over the SDK's own transport (keep-alive node:http), so both sides of the
 * comparison pay the same per-request cost.
 */
async function rpc<T>(url: string, method: string, params: unknown[]): Promise<T> {
  const r = await postJson<{ result?: T; error?: { message: string } }>(url, {
    jsonrpc: '2.0',
    id: 1,
    method,
    params,
  })
  if (r.error) throw new Error(`${method}: ${r.error.message}`)
  return r.result as T
}

/**
 * Starts a fresh anvil with `count` funded accounts holding PrivateToken, runs `fn` on it and
 * stops it. Every measured run gets its own chain: anvil keeps its whole history in memory and
 * slows down as it grows (one block per transaction), so runs on one shared chain fell from
 * 887 to 456 tx/s with their order alone. A fresh chain per run is anvil at its best.
 */
async function withFreshAnvil<T>(
  count: number,
  fn: (load: (n: number) => Promise<LoadResult>) => Promise<T>,
): Promise<T> {
  const anvil = await startAnvil({})
  const remove = onCleanup(() => anvil.stop())
  try {
    const keys = Array.from({ length: count }, () => generatePrivateKey())
    const accounts = keys.map((k) => privateKeyToPoseAccount(k))
    for (const a of accounts)
      await anvilRpc(anvil.url, 'anvil_setBalance', [a.address, `0x${(10n ** 22n).toString(16)}`])
    const chain = {
      id: 31337,
      name: 'anvil',
      nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 },
      rpcUrls: { default: { http: [anvil.url] } },
    } as const
    const publicClient = createPublicClient({ chain, transport: http(anvil.url) })
    const owner = createWalletClient({ chain, transport: http(anvil.url), account: accounts[0]! })
    const hash = await owner.deployContract({
      abi: privateTokenAbi,
      bytecode: privateTokenBytecode,
      args: [10n ** 15n],
    })
    const token = (await publicClient.waitForTransactionReceipt({ hash, pollingInterval: 20 }))
      .contractAddress as Address
    for (const a of accounts.slice(1)) {
      const h = await owner.writeContract({
        address: token,
        abi: privateTokenAbi,
        functionName: 'transfer',
        args: [a.address, 10n ** 12n],
      })
      await publicClient.waitForTransactionReceipt({ hash: h, pollingInterval: 20 })
    }
    const nonces = await Promise.all(
      accounts.map((a) => publicClient.getTransactionCount({ address: a.address })),
    )

    /** Sends `n` transfers from each account; each waits for its receipt. */
    const load = async (n: number): Promise<LoadResult> => {
      const latencies: number[] = []
      const t0 = performance.now()
      await Promise.all(
        accounts.map(async (a, i) => {
          const to = accounts[(i + 1) % accounts.length]!.address
          for (let k = 0; k < n; k++) {
            const s = performance.now()
            const raw = await a.signTransaction({
              chainId: 31337,
              type: 'eip1559',
              to: token,
              data: encodeFunctionData({
                abi: privateTokenAbi,
                functionName: 'transfer',
                args: [to, 1n],
              }),
              nonce: nonces[i]!++,
              gas: 100_000n,
              maxFeePerGas: 10n ** 11n,
              maxPriorityFeePerGas: 1n,
            })
            const txHash = await rpc<Hex>(anvil.url, 'eth_sendRawTransaction', [raw])
            for (;;) {
              const r = await rpc<{ status: Hex } | null>(anvil.url, 'eth_getTransactionReceipt', [
                txHash,
              ])
              if (r) {
                if (r.status !== '0x1') throw new Error(`anvil transfer reverted: ${txHash}`)
                break
              }
              await new Promise((res) => setTimeout(res, 2))
            }
            latencies.push(performance.now() - s)
          }
        }),
      )
      const seconds = (performance.now() - t0) / 1000
      return {
        clients: count,
        txs: latencies.length,
        seconds: round(seconds, 2),
        tps: round(latencies.length / seconds, 1),
        latencyMs: summarize(latencies),
      }
    }
    await load(5) // warm-up (JIT in this process, anvil's first blocks)
    return await fn(load)
  } finally {
    remove()
    await anvil.stop()
  }
}

const anvilSaturation = (cfg: ThroughputConfig, label: string): Promise<Saturation> =>
  saturate(
    { ...cfg, satTxs: cfg.anvilSatTxs },
    (clients, perClient) => withFreshAnvil(clients, (load) => load(perClient)),
    label,
  )

async function anvilBaseline(cfg: ThroughputConfig): Promise<ThroughputResult['anvil']> {
  const low = await withFreshAnvil(1, (load) => load(cfg.lowTxs))
  return { low, ...(await anvilSaturation(cfg, 'anvil')) }
}

/** Anvil once more at its best number of clients; the better median is the baseline. */
async function anvilAgain(
  cfg: ThroughputConfig,
  first: ThroughputResult['anvil'],
): Promise<ThroughputResult['anvil']> {
  const clients = first.saturation.clients
  progress(`throughput: anvil again, ${clients} clients`)
  const again = (await anvilSaturation({ ...cfg, clients: [clients] }, 'anvil again')).byClients[0]!
  if (again.median.tps <= first.saturation.tps) return { ...first, again }
  return { ...first, saturation: again.median, saturationRuns: again.runs, again }
}

export async function benchThroughput(cfg: ThroughputConfig): Promise<ThroughputResult> {
  const bareRuns: BareEvmResult[] = []
  const stockRuns: BareEvmResult[] = []
  const measureBare = async (when: string) => {
    progress(
      `throughput: bare EVM ${when}, ${cfg.bareTxs} transfers in a child process (Node's defaults)`,
    )
    const b = await bareEvmInChild(cfg.bareTxs)
    bareRuns.push(b)
    const stock = await bareEvmInChild(cfg.bareTxs, false)
    stockRuns.push(stock)
    progress(
      `throughput: bare EVM ${b.tps} tx/s (${b.tpsWithWriteSet} with write sets); @ethereumjs/evm as shipped ${stock.tps} tx/s`,
    )
  }
  await measureBare('(1 of 3)')

  progress(
    `throughput: anvil, 1 client × ${cfg.lowTxs}; saturation: ${cfg.anvilSatTxs} transfers shared by ${cfg.clients.join(' / ')} clients`,
  )
  const anvil = await anvilBaseline(cfg)
  progress(`throughput: anvil ${anvil.saturation.tps} tx/s at saturation`)

  await measureBare('(2 of 3)')
  const unavailable = cfg.placement === 'shared' ? undefined : placementUnavailable()
  if (unavailable) progress(`throughput: placement shared, not ${cfg.placement}: ${unavailable}`)
  const placement: Placement = unavailable ? 'shared' : cfg.placement
  const pose: { out: ThroughputResult['pose']; ab?: ApiTransportAb | undefined } = { out: [] }
  // Each s on a devnet of its own with s + 1 operators: on a devnet shared by every s, the
  // instances measured before and the operators outside the pool kept working on the same two
  // cores, and s = 2 ran ≈ 10 % slower (bench/README.md, 2026-12-06).
  for (const s of cfg.watchdogCounts) {
    const operators = s + 1
    await withDevnet({ operators, users: Math.max(...cfg.clients) }, async (devnet) => {
      const clients = await devnetClients(devnet)
      const { out } = pose
      progress(`throughput: s=${s}: deploying PrivateToken and funding ${clients.length} users`)
      const instance = await deployToken(clients[0]!, clients, s)
      await runLoad(clients, [instance], 3) // warm-up: nonces, instance info, JIT on every process
      let undo = () => {}
      // Where this instance's runs take place: a placement that cannot be set up (its enclave
      // process not found, an affinity refused) leaves them shared, and the result says so.
      let placed: Placement = 'shared'
      // Found once: its CPU time is counted apart whatever the placement.
      const found = await executorEnclavePid(devnet, clients[0]!, instance).then(
        (pid) => ({ pid }),
        (error: unknown) => ({ error }),
      )
      const executorPid = 'pid' in found ? found.pid : undefined
      if (placement === 'executor-core') {
        try {
          if (!('pid' in found)) throw found.error
          const pid = found.pid
          undo = placeExecutor(devnet, pid)
          placed = 'executor-core'
          progress(`throughput: s=${s}: the executor's enclave (pid ${pid}) alone on core 0`)
        } catch (e) {
          progress(`throughput: s=${s}: shared cores: ${(e as Error).message}`)
        }
      }
      try {
        progress(`throughput: s=${s}: low load, 1 client × ${cfg.lowTxs}`)
        const low = await runLoad(clients.slice(0, 1), [instance], cfg.lowTxs)
        progress(`throughput: s=${s}: low load p50 ${low.latencyMs.p50} ms; saturation`)
        const sat = await saturate(
          cfg,
          (c, perClient) => runLoad(clients.slice(0, c), [instance], perClient),
          `s=${s}`,
          devnet,
          executorPid,
        )
        // CPU per transaction with the number of clients that gave the saturation rate.
        const cpuMsPerTx = sat.byClients.find((b) => b.clients === sat.saturation.clients)!
          .cpuMsPerTx!
        progress(
          `throughput: s=${s}: ${sat.saturation.tps} tx/s at saturation (${sat.saturation.clients} clients)`,
        )
        let bareBeside: BareEvmResult | undefined
        if (s === 2) {
          undo()
          progress(`throughput: s=${s}: bare EVM beside it, ${cfg.bareTxs} transfers`)
          bareBeside = await bareEvmInChild(cfg.bareTxs)
          bareRuns.push(bareBeside)
          progress(
            `throughput: s=${s}: bare EVM beside it ${bareBeside.tps} tx/s (s = 2 ${round((100 * sat.saturation.tps) / bareBeside.tps, 1)} % of it)`,
          )
          if (placed === 'executor-core' && executorPid !== undefined)
            undo = placeExecutor(devnet, executorPid)
          pose.ab = await apiTransportAb(cfg, devnet, clients, instance)
        }
        undo()
        let shared: ClientsResult | undefined
        if (s === 2 && placed !== 'shared') {
          const c = sat.saturation.clients
          shared = (
            await saturate(
              { ...cfg, clients: [c] },
              (n, perClient) => runLoad(clients.slice(0, n), [instance], perClient),
              `s=${s} shared`,
              devnet,
            )
          ).byClients[0]!
        }
        out.push({
          s,
          operators,
          placement: placed,
          low,
          ...sat,
          cpuMsPerTx,
          ...(shared ? { shared } : {}),
          ...(bareBeside ? { bareBeside } : {}),
        })
      } finally {
        undo()
      }
    })
  }
  await measureBare('(3 of 3)')
  const anvilBest = await anvilAgain(cfg, anvil)
  progress(`throughput: anvil ${anvilBest.saturation.tps} tx/s at saturation (the better of two)`)
  const fastestOf = (runs: BareEvmResult[]) => ({
    ...runs.reduce((a, b) => (b.tps > a.tps ? b : a)),
    runs: runs.map((b) => b.tps),
  })
  const result: ThroughputResult = {
    bareEvm: fastestOf(bareRuns),
    bareEvmStock: fastestOf(stockRuns),
    anvil: anvilBest,
    pose: pose.out,
    ...(pose.ab ? { apiTransport: pose.ab } : {}),
  }
  printThroughput(result)
  return result
}

/**
 * The same clients on one instance, switched between the users' WebSocket API and HTTP POSTs,
 * in alternating runs (`repeats` of each, the WebSocket API first).
 */
async function apiTransportAb(
  cfg: ThroughputConfig,
  devnet: Parameters<typeof cpuByKind>[0],
  all: PoseClient[],
  instance: bigint,
): Promise<ApiTransportAb> {
  const clients = all.slice(0, Math.max(...cfg.clients))
  const each = txsPerClient(cfg, clients.length)
  const runs: Record<ApiTransport, LoadResult[]> = { ws: [], http: [] }
  /** CPU seconds by kind of process, summed over each transport's runs. */
  const cpu: Record<ApiTransport, Partial<Record<ProcessKind, number>>> = { ws: {}, http: {} }
  const lowP50Ms: Record<ApiTransport, number[]> = { ws: [], http: [] }
  const order: ApiTransport[] = ['ws', 'http']
  const use = (t: ApiTransport) => {
    for (const c of all) c.failover.apiTransport = t
  }
  try {
    for (const t of order) {
      use(t)
      await runLoad(clients, [instance], 3) // each transport's connections opened and warm
    }
    for (let i = 0; i < cfg.repeats; i++)
      for (const t of order) {
        use(t)
        const c0 = cpuByKind(devnet)
        runs[t].push(await runLoad(clients, [instance], each))
        for (const [k, v] of Object.entries(cpuDelta(c0, cpuByKind(devnet))))
          cpu[t][k as ProcessKind] = (cpu[t][k as ProcessKind] ?? 0) + v
      }
    for (let i = 0; i < 2; i++)
      for (const t of order) {
        use(t)
        lowP50Ms[t].push((await runLoad(clients.slice(0, 1), [instance], cfg.lowTxs)).latencyMs.p50)
      }
  } finally {
    use('ws')
  }
  const perTx = (t: ApiTransport) => {
    const txs = runs[t].reduce((a, r) => a + r.txs, 0)
    return Object.fromEntries(
      Object.entries(cpu[t]).map(([k, v]) => [k, round((v * 1000) / txs, 2)]),
    ) as Record<ProcessKind, number>
  }
  const rates = { ws: runs.ws.map((r) => r.tps), http: runs.http.map((r) => r.tps) }
  const result: ApiTransportAb = {
    s: 2,
    clients: clients.length,
    runs: rates,
    tps: { ws: medianRun(runs.ws).tps, http: medianRun(runs.http).tps },
    cpuMsPerTx: { ws: perTx('ws'), http: perTx('http') },
    lowP50Ms,
  }
  progress(
    `throughput: s=2 users' API: WebSocket ${rates.ws.join(', ')} tx/s, low-load p50 ${lowP50Ms.ws.join(', ')} ms; HTTP ${rates.http.join(', ')} tx/s, ${lowP50Ms.http.join(', ')} ms (${clients.length} clients)`,
  )
  return result
}

const lat = (l: LatencySummary) => ({ p50_ms: l.p50, p99_ms: l.p99 })

export function printThroughput(r: ThroughputResult): void {
  const rows = [
    {
      system: 'bare_evm (World.call, own process)',
      low_tps: null,
      low_p50_ms: null,
      low_p99_ms: null,
      sat_tps: r.bareEvm.tps,
      sat_p50_ms: null,
      sat_p99_ms: null,
    },
    {
      system: 'bare_evm + nonce + write set',
      low_tps: null,
      low_p50_ms: null,
      low_p99_ms: null,
      sat_tps: r.bareEvm.tpsWithWriteSet,
      sat_p50_ms: null,
      sat_p99_ms: null,
    },
    ...(r.bareEvmStock
      ? [
          {
            system: 'bare_evm, @ethereumjs/evm as shipped',
            low_tps: null,
            low_p50_ms: null,
            low_p99_ms: null,
            sat_tps: r.bareEvmStock.tps,
            sat_p50_ms: null,
            sat_p99_ms: null,
          },
        ]
      : []),
    ...[
      ['anvil (automine, real txs)', r.anvil] as const,
      ...r.pose.map((p) => [`POSE s=${p.s} (${p.operators} operators)`, p] as const),
    ].map(([system, x]) => ({
      system,
      low_tps: x.low.tps,
      ...Object.fromEntries(Object.entries(lat(x.low.latencyMs)).map(([k, v]) => [`low_${k}`, v])),
      sat_tps: x.saturation.tps,
      ...Object.fromEntries(
        Object.entries(lat(x.saturation.latencyMs)).map(([k, v]) => [`sat_${k}`, v]),
      ),
    })),
    ...r.pose.flatMap((p) =>
      p.shared
        ? [
            {
              system: `POSE s=${p.s}, shared cores`,
              low_tps: null,
              low_p50_ms: null,
              low_p99_ms: null,
              sat_tps: p.shared.median.tps,
              ...Object.fromEntries(
                Object.entries(lat(p.shared.median.latencyMs)).map(([k, v]) => [`sat_${k}`, v]),
              ),
            },
          ]
        : [],
    ),
  ]
  const placements = [...new Set(r.pose.map((p) => p.placement))]
  // Anvil's search may stop early (past saturation); the POSE searches try every number.
  const tried = [
    ...new Set([r.anvil, ...r.pose].flatMap((x) => x.byClients.map((b) => b.clients))),
  ].sort((a, b) => a - b)
  const sweep = (x: Saturation) =>
    x.byClients.map((b) => `${b.clients}: ${b.runs.join(', ')}`).join('; ')
  printTable('Throughput and latency: PrivateToken transfers', rows, [
    `low = 1 client sending sequentially; sat = clients at once, each sequential: the best median of ${r.anvil.saturationRuns.length} runs over ${tried.join(' / ')} clients.`,
    `clients at saturation: anvil ${r.anvil.saturation.clients}; ${r.pose.map((p) => `s=${p.s} ${p.saturation.clients}`).join('; ')}.`,
    ...([r.anvil, ...r.pose].some((x) => x.atLargestTried || x.atSmallestTried)
      ? [
          `best at an end of the numbers tried (saturation not shown there): ${[
            ['anvil', r.anvil] as const,
            ...r.pose.map((p) => [`s=${p.s}`, p] as const),
          ]
            .flatMap(([name, x]) =>
              x.atLargestTried
                ? [`${name} at the largest`]
                : x.atSmallestTried
                  ? [`${name} at the smallest`]
                  : [],
            )
            .join(', ')}.`,
        ]
      : []),
    `saturation runs (tx/s) by clients: anvil ${sweep(r.anvil)}; ${r.pose.map((p) => `s=${p.s} ${sweep(p)}`).join(' | ')}.`,
    ...(r.anvil.again
      ? [
          `anvil at saturation: the better median of the search (before the devnet) and of ${r.anvil.again.clients} clients again at the end (${r.anvil.again.runs.join(', ')} tx/s).`,
        ]
      : []),
    `POSE placement: ${placements.join(', ')}${placements.includes('executor-core') ? " (the executor's enclave alone on core 0, every other process on the other cores)" : ' (every process on every core)'}.`,
    ...r.pose.flatMap((p) =>
      p.shared
        ? [
            `s=${p.s}, shared cores: every process on every core, ${p.shared.clients} clients (${p.shared.runs.join(', ')} tx/s).`,
          ]
        : [],
    ),
    `bare EVM: the fastest of ${r.bareEvm.runs.length} measurements (before anvil, before the devnets, after s = 2's saturation runs, at the end): ${r.bareEvm.runs.join(' / ')} tx/s; gas per transfer ${r.bareEvm.gasPerTx} (execution gas, no intrinsic 21k).`,
    ...(r.bareEvmStock
      ? [
          `bare EVM on @ethereumjs/evm as shipped (no fast paths), measured beside each: ${r.bareEvmStock.runs.join(' / ')} tx/s; the fast paths ${round(r.bareEvm.tps / r.bareEvmStock.tps, 2)} × as fast.`,
        ]
      : []),
  ])
  printTable(
    'CPU time per transaction at saturation (ms, summed over processes of each kind)',
    r.pose.map((p) => {
      const exec = executorMsAtSaturation(p)
      const c = cpuCeilings(p.cpuMsPerTx, exec)
      return {
        system: `POSE s=${p.s}`,
        clients: p.saturation.clients,
        ...p.cpuMsPerTx,
        executor: exec ?? null,
        total: round(c.total, 2),
        [`cpu_ceiling_tps (${c.cores} cores)`]: c.all,
        server_ceiling_tps: c.server,
        others_ceiling_tps: c.others ?? null,
        busy_pct: round((100 * p.saturation.tps * c.total) / 1000 / c.cores, 1),
        executor_busy_pct: exec === undefined ? null : round((p.saturation.tps * exec) / 10, 1),
      }
    }),
    [
      'Over the saturation runs with the number of clients that gave the saturation rate.',
      'bench = this process: every SDK client (sealing in box sessions, one Session signature per client and session, receipt checks with one signer recovery per release for all of them, one WebSocket per operator).',
      "executor = the executor's enclave process alone (part of enclaves).",
      "others_ceiling_tps = every process but the executor's enclave on the other cores (executor-core).",
      'cpu_ceiling_tps = cores / CPU per tx: the rate at which every core would be busy.',
      "server_ceiling_tps = the same without the clients (their CPU would be on users' machines).",
      "busy_pct = how busy the cores were on average at the saturation rate (rate × CPU per tx / cores); executor_busy_pct = the share of one core the executor's enclave used.",
    ],
  )
  const ab = r.apiTransport
  if (ab)
    printTable(
      `Users' API: WebSocket (SDK default) against HTTP POST, s=${ab.s}, ${ab.clients} clients`,
      (['ws', 'http'] as const).map((t) => ({
        api: t === 'ws' ? 'WebSocket /v1/ws' : 'HTTP POST',
        median_tps: ab.tps[t],
        runs: ab.runs[t].join(' / '),
        low_p50_ms: ab.lowP50Ms[t].join(' / '),
        ...ab.cpuMsPerTx[t],
      })),
      [
        'The same clients and instance, alternating runs; CPU ms per transaction by kind of process at saturation; low_p50_ms: one client, two runs each.',
        `WebSocket / HTTP = ${round(ab.tps.ws / ab.tps.http, 2)} × in this run.`,
      ],
    )
}
