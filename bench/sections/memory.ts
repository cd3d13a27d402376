/**
 * Section `memory`: resident memory (VmRSS) of the enclave and operator processes with 0, 1,
 * 10 and 100 idle PrivateToken instances (s = 1, so each instance lives in two enclaves), and
 * the idle CPU the devnet burns with that many instances. The per-instance figure is the growth
 * of the summed enclave RSS between the two largest counts divided by the instances added.
 */
import { privateTokenAbi, privateTokenBytecode } from '../../examples/contracts.generated.ts'
import type { PoseClient } from '../../src/client/index.ts'
import { printTable, progress, type Row, round, sleep, withDevnet } from '../lib/common.ts'
import { cpuByKind, cpuDelta, rssMiB } from '../lib/procs.ts'
import { devnetClients, transfer } from '../lib/workload.ts'

export type MemoryConfig = {
  operators: number
  instanceCounts: number[]
  /** Wait before measuring (replication, sealing, GC settle), then the idle-CPU window. */
  settleMs: number
  idleMs: number
}

export type MemoryPoint = {
  instances: number
  enclaveRssMiB: number[]
  operatorRssMiB: number[]
  enclaveTotalMiB: number
  operatorTotalMiB: number
  /** Idle CPU over 5 s, in cores, by kind. */
  idleCpuCores: Record<string, number>
}

export type MemoryResult = {
  points: MemoryPoint[]
  summary: Record<string, number>
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0)

async function deployMany(clients: PoseClient[], count: number): Promise<bigint[]> {
  const out: bigint[] = []
  let next = 0
  await Promise.all(
    clients.map(async (c) => {
      while (next < count) {
        next++
        const { instance } = await c.deployContract({
          abi: privateTokenAbi,
          bytecode: privateTokenBytecode,
          args: [1_000_000n],
          watchdogCount: 1,
        })
        // One transfer, so each instance has a user balance and an update in its log.
        await transfer(c, instance, '0x000000000000000000000000000000000000bEEF')
        out.push(instance)
      }
    }),
  )
  return out
}

export async function benchMemory(cfg: MemoryConfig): Promise<MemoryResult> {
  const points = await withDevnet({ operators: cfg.operators, users: 8 }, async (devnet) => {
    const clients = await devnetClients(devnet)
    const out: MemoryPoint[] = []
    const measure = async (instances: number) => {
      await sleep(cfg.settleMs)
      const c0 = cpuByKind(devnet)
      await sleep(cfg.idleMs)
      const cpu = cpuDelta(c0, cpuByKind(devnet))
      const rss = rssMiB(devnet)
      if (rss.enclaves.length !== devnet.operators.length || rss.enclaves.some((x) => x === 0))
        throw new Error('memory: an enclave process or its pid file is gone')
      const p: MemoryPoint = {
        instances,
        enclaveRssMiB: rss.enclaves.map((x) => round(x, 1)),
        operatorRssMiB: rss.operators.map((x) => round(x, 1)),
        enclaveTotalMiB: round(sum(rss.enclaves), 1),
        operatorTotalMiB: round(sum(rss.operators), 1),
        idleCpuCores: Object.fromEntries(
          Object.entries(cpu)
            .filter(([k]) => k !== 'bench')
            .map(([k, v]) => [k, round(v / (cfg.idleMs / 1000), 3)]),
        ),
      }
      out.push(p)
      progress(
        `memory: ${instances} instance(s): enclaves ${p.enclaveTotalMiB} MiB, operators ${p.operatorTotalMiB} MiB`,
      )
    }
    await measure(0)
    let have = 0
    for (const n of cfg.instanceCounts) {
      progress(`memory: deploying ${n - have} instance(s) (s = 1) to reach ${n}`)
      await deployMany(clients, n - have)
      have = n
      await measure(n)
    }
    return out
  })

  const last = points.at(-1)!
  const prev = points.at(-2)!
  const added = last.instances - prev.instances
  const perInstance = (last.enclaveTotalMiB - prev.enclaveTotalMiB) / added
  const summary: Record<string, number> = {
    enclave_baseline_mib: round(points[0]!.enclaveTotalMiB / points[0]!.enclaveRssMiB.length, 1),
    per_instance_kib: round(perInstance * 1024, 0),
    per_membership_kib: round((perInstance * 1024) / 2, 0),
  }
  for (const p of points) summary[`enclaves_total_mib_${p.instances}`] = p.enclaveTotalMiB
  const rows: Row[] = points.map((p) => ({
    instances: p.instances,
    enclaves_total_mib: p.enclaveTotalMiB,
    per_enclave_mib: p.enclaveRssMiB.join(' / '),
    operators_total_mib: p.operatorTotalMiB,
    idle_cpu_operators: p.idleCpuCores.operators,
    idle_cpu_enclaves: p.idleCpuCores.enclaves,
    idle_cpu_anvil: p.idleCpuCores.anvil,
  }))
  printTable(`Memory (VmRSS) with idle instances (s = 1, ${cfg.operators} operators)`, rows, [
    `per idle instance (all its members): ${summary.per_instance_kib} KiB; per membership: ${summary.per_membership_kib} KiB (enclave RSS growth ${prev.instances}→${last.instances}).`,
    `idle_cpu_* = cores busy over ${cfg.idleMs / 1000} s while nobody sends (chain polling, duty checks, ticks).`,
    ...(perInstance <= 0
      ? [
          `RSS did not grow from ${prev.instances} to ${last.instances} instances: the garbage collector's swings exceed ${added} instances' memory, so this run says nothing per instance.`,
        ]
      : []),
  ])
  return { points, summary }
}
