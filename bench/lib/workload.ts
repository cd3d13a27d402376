/**
 * The benchmark workload: PrivateToken transfers through the full protocol. Each user has its
 * own key and SDK client and sends sequentially; several users run concurrently.
 */
import type { Address } from 'viem'
import { privateTokenAbi, privateTokenBytecode } from '../../examples/contracts.generated.ts'
import { readInstance } from '../../src/chain/manager.ts'
import {
  createPoseClient,
  type PoseClient,
  type PoseReceipt,
  privateKeyToPoseAccount,
} from '../../src/client/index.ts'
import type { Devnet } from '../../src/devnet/devnet.ts'
import { type LatencySummary, round, summarize } from './common.ts'

export const TOKEN_SUPPLY = 10n ** 15n
const SHARE = 10n ** 12n

/**
 * Most SDK clients one benchmark process drives (each is a funded user of the devnet; the
 * token's supply funds at most 1,000). At s = 2, 512 gave 5,474 tx/s against 5,058 at 256
 * and 768 fell back to 0.92 of 512 (bench/README.md, 2026-12-05, late night): more would
 * only queue.
 */
export const MAX_CLIENTS = 512

/**
 * V8 flags of the process that drives the SDK clients (`npm run bench`, `bench:ab`'s devnets).
 * On this 2-core machine the clients share a core with the watchdogs and the operators; on a
 * deployment they run on the users' machines. With Node's defaults, hundreds of clients in one
 * process spend about a quarter of its CPU collecting garbage: scavenges of a young generation
 * that starts at 1 MiB, run by four helper threads that only wait for that same core. A larger
 * young generation, collected on the main thread, took the clients' CPU per transfer from 0.227
 * to 0.165 ms (bench/README.md, 2026-12-05, mid-morning). The system under test keeps Node's
 * defaults, and so does the bare EVM it is compared with (`bareEvmInChild`).
 */
export const LOAD_GENERATOR_FLAGS = [
  '--single-threaded-gc',
  '--min-semi-space-size=16',
  '--max-semi-space-size=64',
] as const

/** The flags of `LOAD_GENERATOR_FLAGS` this process was started without. */
export function missingLoadGeneratorFlags(): string[] {
  return LOAD_GENERATOR_FLAGS.filter((f) => !process.execArgv.includes(f))
}

export function devnetClients(
  devnet: Devnet,
  opts: { autoChallenge?: boolean; count?: number } = {},
): Promise<PoseClient[]> {
  return Promise.all(
    devnet.userKeys.slice(0, opts.count ?? devnet.userKeys.length).map((k) =>
      createPoseClient({
        rpcUrl: devnet.rpcUrl,
        manager: devnet.manager,
        account: privateKeyToPoseAccount(k),
        pollingIntervalMs: 100,
        autoChallenge: opts.autoChallenge ?? false,
      }),
    ),
  )
}

export function transfer(
  client: PoseClient,
  instance: bigint,
  to: Address,
  amount = 1n,
): Promise<PoseReceipt> {
  return client.writeContract({
    instance,
    abi: privateTokenAbi,
    functionName: 'transfer',
    args: [to, amount],
  })
}

/**
 * Deploys a PrivateToken instance with `s` watchdogs from `owner` and gives every other client
 * a share, so every client can send transfers.
 */
export async function deployToken(
  owner: PoseClient,
  others: PoseClient[],
  s: number,
): Promise<bigint> {
  const { instance } = await owner.deployContract({
    abi: privateTokenAbi,
    bytecode: privateTokenBytecode,
    args: [TOKEN_SUPPLY],
    watchdogCount: s,
  })
  for (const c of others) {
    if (c === owner) continue
    const r = await transfer(owner, instance, c.account.address, SHARE)
    if (r.status !== 'success') throw new Error(`funding transfer failed: ${r.status}`)
  }
  return instance
}

export type LoadResult = {
  clients: number
  txs: number
  seconds: number
  tps: number
  latencyMs: LatencySummary
}

/** The run with the median rate (the lower middle one for an even count). */
export function medianRun<T extends { tps: number }>(runs: T[]): T {
  const sorted = [...runs].sort((a, b) => a.tps - b.tps)
  return sorted[Math.floor((sorted.length - 1) / 2)]!
}

/**
 * `perClient` sequential transfers from each client (all clients at once); client `i` sends to
 * client `i + 1` on instance `instances[i % instances.length]`.
 */
export async function runLoad(
  clients: PoseClient[],
  instances: bigint[],
  perClient: number,
): Promise<LoadResult> {
  const latencies: number[] = []
  const t0 = performance.now()
  await Promise.all(
    clients.map(async (c, i) => {
      const to = clients[(i + 1) % clients.length]!.account.address
      const instance = instances[i % instances.length]!
      for (let k = 0; k < perClient; k++) {
        const s = performance.now()
        const r = await transfer(c, instance, to)
        latencies.push(performance.now() - s)
        if (r.status !== 'success') throw new Error(`transfer ${k} of client ${i}: ${r.status}`)
      }
    }),
  )
  const seconds = (performance.now() - t0) / 1000
  return {
    clients: clients.length,
    txs: latencies.length,
    seconds: round(seconds, 2),
    tps: round(latencies.length / seconds, 1),
    latencyMs: summarize(latencies),
  }
}

export type StreamEvent = {
  client: number
  sentAt: number
  receivedAt: number
  executor: string
  seq: bigint
}

/**
 * Transfers sent continuously by every client (sequential per client) until `stop()`; every
 * receipt is recorded with its send and receive times (ms, `performance.now()`).
 */
export function startStreams(clients: PoseClient[], instance: bigint) {
  const events: StreamEvent[] = []
  const errors: unknown[] = []
  let stopped = false
  const loops = clients.map(async (c, i) => {
    const to = clients[(i + 1) % clients.length]!.account.address
    while (!stopped) {
      const sentAt = performance.now()
      try {
        const r = await transfer(c, instance, to)
        events.push({
          client: i,
          sentAt,
          receivedAt: performance.now(),
          executor: r.executor.toLowerCase(),
          seq: r.seq,
        })
      } catch (e) {
        errors.push(e)
        if (errors.length > 20) return
        await new Promise((r) => setTimeout(r, 200))
      }
    }
  })
  return {
    events,
    errors,
    stop: async () => {
      stopped = true
      await Promise.all(loops)
    },
  }
}

/** The enclave signer of the current executor, lowercase. */
export async function executorSigner(client: PoseClient, instance: bigint): Promise<string> {
  const info = await readInstance(client.publicClient, client.manager, instance)
  return info.signers[info.executorSlot]!.toLowerCase()
}
