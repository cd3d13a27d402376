/**
 * Section `memory`: resident memory (VmRSS) of the enclave and operator processes with 0, 1,
 * 10 and 100 idle PrivateToken instances (s = 1, so each instance lives in two enclaves), and
 * the idle CPU the devnet burns with that many instances. Every process is asked for a full
 * garbage collection before each reading (bench/lib/gcHook.cjs, loaded through
 * `NODE_OPTIONS`), each point is the median of several readings, and the per-instance figure
 * is the least-squares slope of the summed enclave RSS over every point.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { privateTokenAbi, privateTokenBytecode } from '../../examples/contracts.generated.ts'
import type { PoseClient } from '../../src/client/index.ts'
import {
  median,
  printTable,
  progress,
  type Row,
  round,
  sleep,
  waitFor,
  withDevnet,
} from '../lib/common.ts'
import { leastSquares } from '../lib/fit.ts'
import { cpuByKind, cpuDelta, devnetPids, rssMiB } from '../lib/procs.ts'
import { devnetClients, transfer } from '../lib/workload.ts'

export type MemoryConfig = {
  operators: number
  instanceCounts: number[]
  /** Wait before measuring (replication, sealing, GC settle), then the idle-CPU window. */
  settleMs: number
  idleMs: number
  /** RSS readings per point (each after a requested collection); the median is reported. */
  readings?: number
}

export type MemoryPoint = {
  instances: number
  /** Each process's median over the readings. */
  enclaveRssMiB: number[]
  operatorRssMiB: number[]
  /** The median of the readings' sums. */
  enclaveTotalMiB: number
  operatorTotalMiB: number
  /** Every reading's sum over the enclaves, in the order read. */
  enclaveTotalReadingsMiB: number[]
  /** Whether every process confirmed a full collection before each reading. */
  collected: boolean
  /** Idle CPU over `idleMs`, in cores, by kind. */
  idleCpuCores: Record<string, number>
}

export type MemoryResult = {
  points: MemoryPoint[]
  /** Least-squares slope of the summed enclave RSS over the points, KiB per instance. */
  perInstanceKiB: number
  /** Its standard error (KiB), from the scatter of the points about the line. */
  perInstanceStdErrKiB: number
  summary: Record<string, number>
}

/** Readings per point unless the config says otherwise. */
const READINGS = 5
/** Pause between a confirmed collection and the RSS reading (freed pages returned). */
const AFTER_GC_MS = 200
const GC_HOOK = fileURLToPath(new URL('../lib/gcHook.cjs', import.meta.url))

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
  const readings = cfg.readings ?? READINGS
  const gcDir = mkdtempSync(join(tmpdir(), 'bench-gc-'))
  const nodeOptions =
    `${process.env.NODE_OPTIONS ?? ''} --require ${JSON.stringify(GC_HOOK)}`.trim()
  const served = (pid: number): number => {
    try {
      return Number(readFileSync(join(gcDir, `gc-${pid}`), 'utf8'))
    } catch {
      return 0
    }
  }
  try {
    const points = await withDevnet(
      {
        operators: cfg.operators,
        users: 8,
        operatorEnv: () => ({ NODE_OPTIONS: nodeOptions, BENCH_GC_DIR: gcDir }),
      },
      async (devnet) => {
        const clients = await devnetClients(devnet)
        const out: MemoryPoint[] = []
        /** Asks every operator and enclave process for a full collection; whether all did. */
        const collect = async (): Promise<boolean> => {
          const p = devnetPids(devnet)
          const pids = [...p.operators, ...p.enclaves]
          const before = new Map(pids.map((pid) => [pid, served(pid)]))
          for (const pid of pids) {
            try {
              process.kill(pid, 'SIGWINCH')
            } catch {}
          }
          try {
            await waitFor(
              'every process to collect its garbage',
              () => pids.every((pid) => served(pid) > before.get(pid)!),
              5_000,
              20,
            )
            return true
          } catch {
            return false
          }
        }
        const measure = async (instances: number) => {
          await sleep(cfg.settleMs)
          const c0 = cpuByKind(devnet)
          await sleep(cfg.idleMs)
          const cpu = cpuDelta(c0, cpuByKind(devnet))
          const taken: Array<ReturnType<typeof rssMiB>> = []
          let collected = true
          for (let k = 0; k < readings; k++) {
            collected = (await collect()) && collected
            await sleep(AFTER_GC_MS)
            const rss = rssMiB(devnet)
            if (
              rss.enclaves.length !== devnet.operators.length ||
              rss.enclaves.some((x) => x === 0)
            )
              throw new Error('memory: an enclave process or its pid file is gone')
            taken.push(rss)
          }
          const perProcess = (pick: (r: ReturnType<typeof rssMiB>) => number[]) =>
            pick(taken[0]!).map((_, i) => round(median(taken.map((r) => pick(r)[i] ?? 0)), 1))
          const enclaveTotals = taken.map((r) => round(sum(r.enclaves), 1))
          const p: MemoryPoint = {
            instances,
            enclaveRssMiB: perProcess((r) => r.enclaves),
            operatorRssMiB: perProcess((r) => r.operators),
            enclaveTotalMiB: round(median(enclaveTotals), 1),
            operatorTotalMiB: round(median(taken.map((r) => sum(r.operators))), 1),
            enclaveTotalReadingsMiB: enclaveTotals,
            collected,
            idleCpuCores: Object.fromEntries(
              Object.entries(cpu)
                .filter(([k]) => k !== 'bench')
                .map(([k, v]) => [k, round(v / (cfg.idleMs / 1000), 3)]),
            ),
          }
          out.push(p)
          progress(
            `memory: ${instances} instance(s): enclaves ${p.enclaveTotalMiB} MiB (readings ${enclaveTotals.join(' / ')}${collected ? '' : '; a process did not confirm its collection'}), operators ${p.operatorTotalMiB} MiB`,
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
      },
    )
    return summarizeMemory(points, cfg)
  } finally {
    rmSync(gcDir, { recursive: true, force: true })
  }
}

function summarizeMemory(points: MemoryPoint[], cfg: MemoryConfig): MemoryResult {
  const fit = leastSquares(
    points.map((p) => p.instances),
    points.map((p) => p.enclaveTotalMiB * 1024),
  )
  const perInstanceKiB = round(fit.slope, 0)
  const summary: Record<string, number> = {
    enclave_baseline_mib: round(points[0]!.enclaveTotalMiB / points[0]!.enclaveRssMiB.length, 1),
    per_instance_kib: perInstanceKiB,
    per_membership_kib: round(fit.slope / 2, 0),
  }
  for (const p of points) summary[`enclaves_total_mib_${p.instances}`] = p.enclaveTotalMiB
  const rows: Row[] = points.map((p) => ({
    instances: p.instances,
    enclaves_total_mib: p.enclaveTotalMiB,
    readings_mib: p.enclaveTotalReadingsMiB.join(' / '),
    collected: p.collected ? 'yes' : 'NO',
    per_enclave_mib: p.enclaveRssMiB.join(' / '),
    operators_total_mib: p.operatorTotalMiB,
    idle_cpu_operators: p.idleCpuCores.operators,
    idle_cpu_enclaves: p.idleCpuCores.enclaves,
    idle_cpu_anvil: p.idleCpuCores.anvil,
  }))
  const counts = points.map((p) => p.instances).join(', ')
  const stdErr = round(fit.slopeStdErr, 0)
  printTable(`Memory (VmRSS) with idle instances (s = 1, ${cfg.operators} operators)`, rows, [
    `per idle instance (all its members): ${perInstanceKiB} KiB = ${Math.round(fit.slope * 1024).toLocaleString('en-US')} bytes${Number.isFinite(stdErr) ? ` (± ${stdErr} KiB)` : ''}; per membership: ${summary.per_membership_kib} KiB (least-squares slope of the enclaves' RSS over ${counts} instances).`,
    'Each point: the median of the readings, each taken after every operator and enclave process ran a full collection (collected = every process confirmed it).',
    `idle_cpu_* = cores busy over ${cfg.idleMs / 1000} s while nobody sends (chain polling, duty checks, ticks).`,
    ...(fit.slope <= 0
      ? [
          `RSS did not grow with the instances (${counts}): the swings exceed their memory, so this run says nothing per instance.`,
        ]
      : []),
  ])
  return { points, perInstanceKiB, perInstanceStdErrKiB: stdErr, summary }
}
