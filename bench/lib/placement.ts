/**
 * Where a devnet's processes run: CPU affinity for the throughput runs.
 *
 * - `shared`: the operating system places every process (anvil, operators, enclaves, the SDK
 *   clients) on any core.
 * - `executor-core`: the executor enclave's process (all its threads, its garbage collector's
 *   included) has core 0 to itself; every other process of the run shares the other cores. On
 *   a real deployment the executor's enclave runs on its operator's machine, not beside the
 *   watchdogs, the other operators and the users; on one 2-core machine the closest model is a
 *   core of its own. Measured (bench/README.md, 2026-12-04, night): the executor's main thread
 *   otherwise waits for a core ≈ 19 % of the time while the machine is ≈ 75 % busy.
 *
 * Affinity is set with util-linux `taskset` on every thread of a process (`-a`); threads
 * started later inherit it. Where it is missing (not Linux, one core, no `taskset`),
 * `placementUnavailable` says why and the runs stay `shared`.
 */
import { spawnSync } from 'node:child_process'
import { cpus, platform } from 'node:os'
import { readInstance } from '../../src/chain/manager.ts'
import type { PoseClient } from '../../src/client/index.ts'
import type { Devnet } from '../../src/devnet/devnet.ts'
import { devnetPids, operatorIndex } from './procs.ts'

export type Placement = 'shared' | 'executor-core'

export const PLACEMENTS: readonly Placement[] = ['shared', 'executor-core']

let unavailable: string | undefined | null = null

/** Why `executor-core` cannot be set up on this machine, or undefined if it can. */
export function placementUnavailable(): string | undefined {
  if (unavailable !== null) return unavailable
  if (platform() !== 'linux') unavailable = `CPU affinity needs Linux (this is ${platform()})`
  else if (cpus().length < 2) unavailable = 'one core: nothing to give the executor alone'
  else {
    const r = spawnSync('taskset', ['--version'], { encoding: 'utf8', timeout: 5_000 })
    unavailable = r.status === 0 ? undefined : 'util-linux `taskset` is not installed'
  }
  return unavailable
}

/**
 * `taskset -a -p -c <list> <pid>`: every thread of `pid` on `cores`. False if it failed, or if
 * `pid` is gone: with `-a`, taskset exits 0 for a process that does not exist, so its report of
 * the main thread's new list is what says it did the work.
 */
export function setAffinity(pid: number, cores: readonly number[]): boolean {
  const r = spawnSync('taskset', ['-a', '-p', '-c', cores.join(','), String(pid)], {
    encoding: 'utf8',
    timeout: 5_000,
    env: { ...process.env, LC_ALL: 'C' }, // its report in English whatever the locale
  })
  return r.status === 0 && r.stdout.includes(`pid ${pid}'s new affinity list`)
}

/** The pid of the enclave process of `instance`'s executor on `devnet`. */
export async function executorEnclavePid(
  devnet: Devnet,
  client: PoseClient,
  instance: bigint,
): Promise<number> {
  const info = await readInstance(client.publicClient, client.manager, instance)
  const pid = devnet.enclavePid(operatorIndex(devnet, info.operators[info.executorSlot] ?? ''))
  if (!pid) throw new Error(`placement: no enclave process for instance ${instance}'s executor`)
  return pid
}

/**
 * Gives the executor enclave `executorPid` core 0 alone and puts every other process of
 * `devnet`, and this one (the SDK clients), on the other cores. Returns what undoes it (every
 * process back on every core; later calls do nothing): call it before this process starts
 * anything that must not inherit the narrower set.
 */
export function placeExecutor(devnet: Devnet, executorPid: number): () => void {
  const reason = placementUnavailable()
  if (reason) throw new Error(`placement: ${reason}`)
  const all = cpus().map((_, i) => i)
  const rest = all.slice(1)
  const pids = devnetPids(devnet)
  const others = [...pids.anvil, ...pids.operators, ...pids.enclaves, process.pid].filter(
    (p) => p !== executorPid,
  )
  const touched: number[] = []
  // Once only: a second call finds nothing left to undo.
  const undo = () => {
    for (const p of touched.splice(0)) setAffinity(p, all)
  }
  for (const [pid, cores] of [
    [executorPid, [0]] as const,
    ...others.map((p) => [p, rest] as const),
  ]) {
    touched.push(pid)
    if (!setAffinity(pid, cores)) {
      undo()
      throw new Error(`placement: could not set the CPU affinity of process ${pid}`)
    }
  }
  return undo
}
