/**
 * Section `scaling`: aggregate throughput with 1, 2 and 4 instances (s = 1) on one devnet with
 * enough operators for disjoint pools; pools are drawn on-chain at random, so they may overlap
 * (the table says how many operators the active pools share). The same clients send in every
 * run; client i sends to instance i mod k.
 */
import { cpus } from 'node:os'
import { readInstance } from '../../src/chain/manager.ts'
import { printTable, progress, type Row, round, withDevnet } from '../lib/common.ts'
import { cpuByKind, cpuDelta } from '../lib/procs.ts'
import { deployToken, devnetClients, type LoadResult, runLoad } from '../lib/workload.ts'

export type ScalingConfig = {
  operators: number
  clients: number
  txsPerClient: number
  instanceCounts: number[]
}

export type ScalingResult = {
  runs: Array<{
    instances: number
    pools: number[][]
    sharedOperators: number
    load: LoadResult
    cpuUtilisation: number
  }>
  summary: Record<string, number>
}

export async function benchScaling(cfg: ScalingConfig): Promise<ScalingResult> {
  const max = Math.max(...cfg.instanceCounts)
  const runs = await withDevnet(
    { operators: cfg.operators, users: cfg.clients },
    async (devnet) => {
      const clients = await devnetClients(devnet)
      progress(`scaling: deploying ${max} instances with s=1`)
      const instances = await Promise.all(
        Array.from({ length: max }, (_, i) => deployToken(clients[i]!, clients, 1)),
      )
      const pools: number[][] = []
      for (const id of instances) {
        const info = await readInstance(clients[0]!.publicClient, devnet.manager, id)
        pools.push(info.operators.map((o) => devnet.operators.findIndex((x) => x.address === o)))
      }
      // Every client warms up on every instance: a client's first transfer to an instance
      // also reads the instance and fetches its nonce, which no measured run should pay.
      for (const id of instances) await runLoad(clients, [id], 2)
      const out: ScalingResult['runs'] = []
      for (const k of cfg.instanceCounts) {
        const used = pools.slice(0, k)
        const all = used.flat()
        const shared = all.length - new Set(all).size
        progress(
          `scaling: ${k} instance(s), ${clients.length} clients × ${cfg.txsPerClient} (pools ${used.map((p) => p.join('+')).join(', ')})`,
        )
        const c0 = cpuByKind(devnet)
        const load = await runLoad(clients, instances.slice(0, k), cfg.txsPerClient)
        const cpu = cpuDelta(c0, cpuByKind(devnet))
        const busy = Object.values(cpu).reduce((a, b) => a + b, 0)
        out.push({
          instances: k,
          pools: used,
          sharedOperators: shared,
          load,
          cpuUtilisation: round(busy / load.seconds / cpus().length, 2),
        })
        progress(`scaling: ${k} instance(s): ${load.tps} tx/s`)
      }
      return out
    },
  )
  const summary = Object.fromEntries(runs.map((r) => [`instances_${r.instances}`, r.load.tps]))
  const rows: Row[] = runs.map((r) => ({
    instances: r.instances,
    pools: r.pools.map((p) => p.join('+')).join(' '),
    shared_operators: r.sharedOperators,
    tps: r.load.tps,
    p50_ms: r.load.latencyMs.p50,
    p99_ms: r.load.latencyMs.p99,
    cpu_utilisation: r.cpuUtilisation,
  }))
  printTable(`Scaling with instances (s = 1, ${cfg.operators} operators)`, rows, [
    "pools = devnet operator indices of each instance's members, in slot order.",
    'cpu_utilisation = CPU seconds of all processes / wall seconds / cores.',
  ])
  return { runs, summary }
}
