/**
 * Section `scaling`: aggregate throughput with 1, 2 and 4 instances (s = 1) on one devnet with
 * enough operators for disjoint pools. Pools are drawn on-chain at random from every eligible
 * operator, so the instances are deployed one after the other and each pool's operators then
 * request their exit (`requestExit`: they keep serving their memberships, as an exiting
 * operator does until it leaves, but are drawn no more); the next draw picks from the others.
 * With too few operators for that, the pools are drawn at once and may overlap (the table says
 * how many operators the active pools share). The same clients send in every
 * run; client i sends to instance i mod k. Every process is warmed up first with a run over all
 * instances, and the instance counts take turns (1, 2, 4, 1, 2, 4, …): a devnet's first
 * thousand transfers run markedly slower (JIT and heap growth in every process), which
 * otherwise fell on whichever count ran first.
 */
import { cpus } from 'node:os'
import { poseManagerAbi, readInstance } from '../../src/chain/manager.ts'
import type { Devnet } from '../../src/devnet/devnet.ts'
import { operatorSender } from '../lib/chain.ts'
import { printTable, progress, type Row, round, withDevnet } from '../lib/common.ts'
import { cpuByKind, cpuDelta } from '../lib/procs.ts'
import { deployToken, devnetClients, type LoadResult, medianRun, runLoad } from '../lib/workload.ts'

export type ScalingConfig = {
  operators: number
  clients: number
  txsPerClient: number
  instanceCounts: number[]
  /** Transfers per client over all instances before any measured run. */
  warmupPerClient: number
  /** Measured runs per instance count; the run with the median rate is reported. */
  repeats: number
}

export type ScalingResult = {
  /** Whether the pools were drawn apart (each pool's operators out of later draws). */
  disjointDraws: boolean
  runs: Array<{
    instances: number
    pools: number[][]
    sharedOperators: number
    load: LoadResult
    /** Rate of every run with this many instances, in the order run. */
    runsTps: number[]
    cpuUtilisation: number
  }>
  summary: Record<string, number>
}

export async function benchScaling(cfg: ScalingConfig): Promise<ScalingResult> {
  const max = Math.max(...cfg.instanceCounts)
  const { disjointDraws, runs } = await withDevnet(
    { operators: cfg.operators, users: cfg.clients },
    async (devnet) => {
      const clients = await devnetClients(devnet)
      // s = 1: pools of two. Drawn apart when every instance can have operators of its own.
      const disjoint = cfg.operators >= 2 * max
      progress(
        `scaling: deploying ${max} instances with s=1${disjoint ? ', one after the other, each pool out of the later draws' : ' (pools may overlap)'}`,
      )
      const instances: bigint[] = []
      const pools: number[][] = []
      const poolOf = async (id: bigint) =>
        (await readInstance(clients[0]!.publicClient, devnet.manager, id)).operators.map((o) =>
          devnet.operators.findIndex((x) => x.address === o),
        )
      if (disjoint) {
        for (let i = 0; i < max; i++) {
          const id = await deployToken(clients[i]!, clients, 1)
          instances.push(id)
          const pool = await poolOf(id)
          pools.push(pool)
          if (i < max - 1) await withdrawFromDraws(devnet, pool)
        }
      } else {
        instances.push(
          ...(await Promise.all(
            Array.from({ length: max }, (_, i) => deployToken(clients[i]!, clients, 1)),
          )),
        )
        for (const id of instances) pools.push(await poolOf(id))
      }
      // Every client warms up on every instance: a client's first transfer to an instance
      // also reads the instance and fetches its nonce, which no measured run should pay.
      for (const id of instances) await runLoad(clients, [id], 2)
      progress(`scaling: warm-up, ${clients.length} clients × ${cfg.warmupPerClient}`)
      await runLoad(clients, instances, cfg.warmupPerClient)
      const measured = new Map<
        number,
        Array<{ load: LoadResult; tps: number; utilisation: number }>
      >()
      for (let r = 0; r < cfg.repeats; r++) {
        for (const k of cfg.instanceCounts) {
          const c0 = cpuByKind(devnet)
          const load = await runLoad(clients, instances.slice(0, k), cfg.txsPerClient)
          const cpu = cpuDelta(c0, cpuByKind(devnet))
          const busy = Object.values(cpu).reduce((a, b) => a + b, 0)
          const runs = measured.get(k) ?? []
          runs.push({
            load,
            tps: load.tps,
            utilisation: round(busy / load.seconds / cpus().length, 2),
          })
          measured.set(k, runs)
          progress(
            `scaling: ${k} instance(s), ${clients.length} clients × ${cfg.txsPerClient}, run ${r + 1}/${cfg.repeats}: ${load.tps} tx/s`,
          )
        }
      }
      const out = cfg.instanceCounts.map((k) => {
        const used = pools.slice(0, k)
        const all = used.flat()
        const runs = measured.get(k)!
        const median = medianRun(runs)
        return {
          instances: k,
          pools: used,
          sharedOperators: all.length - new Set(all).size,
          load: median.load,
          runsTps: runs.map((x) => x.load.tps),
          cpuUtilisation: median.utilisation,
        }
      })
      return { disjointDraws: disjoint, runs: out }
    },
  )
  const summary = Object.fromEntries(runs.map((r) => [`instances_${r.instances}`, r.load.tps]))
  const rows: Row[] = runs.map((r) => ({
    instances: r.instances,
    pools: r.pools.map((p) => p.join('+')).join(' '),
    shared_operators: r.sharedOperators,
    tps: r.load.tps,
    runs: r.runsTps.join(' / '),
    p50_ms: r.load.latencyMs.p50,
    p99_ms: r.load.latencyMs.p99,
    cpu_utilisation: r.cpuUtilisation,
  }))
  printTable(`Scaling with instances (s = 1, ${cfg.operators} operators)`, rows, [
    "pools = devnet operator indices of each instance's members, in slot order.",
    `tps = the median of ${cfg.repeats} runs (runs, in the order run; instance counts take turns), after a warm-up of ${cfg.warmupPerClient} transfers per client.`,
    'cpu_utilisation = CPU seconds of all processes / wall seconds / cores.',
    disjointDraws
      ? "pools drawn apart: after each deployment its pool's operators requested their exit (they serve on, and are drawn no more)."
      : 'pools drawn at once from every operator: they may share operators (shared_operators).',
  ])
  return { disjointDraws, runs, summary }
}

/**
 * Takes `pool`'s operators (devnet indices) out of later draws: each requests its exit, as an
 * operator that wants no new memberships would. It keeps its current ones and serves them.
 */
async function withdrawFromDraws(devnet: Devnet, pool: number[]): Promise<void> {
  await Promise.all(
    pool.map(async (i) => {
      const sender = await operatorSender(devnet, devnet.operators[i]!.key)
      await sender.write({
        address: devnet.manager,
        abi: poseManagerAbi,
        functionName: 'requestExit',
      })
    }),
  )
}
