/**
 * The benchmark's placement of a devnet's processes (bench/lib/placement.ts): the executor's
 * enclave alone on core 0, every other process (this one included) on the other cores, and
 * everything back on every core afterwards. Real processes and real CPU affinity; skipped where
 * the machine cannot set it (not Linux, one core, no `taskset`).
 */
import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { readdirSync, readFileSync } from 'node:fs'
import { cpus } from 'node:os'
import { after, describe, test } from 'node:test'
import { placeExecutor, placementUnavailable, setAffinity } from '../../bench/lib/placement.ts'
import type { Devnet } from '../../src/devnet/devnet.ts'

/** The cores each thread of `pid` may run on (`Cpus_allowed_list`). */
function allowed(pid: number): number[][] {
  return readdirSync(`/proc/${pid}/task`).map((tid) => {
    const status = readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8')
    const cores: number[] = []
    for (const part of /^Cpus_allowed_list:\s*(\S+)$/m.exec(status)![1]!.split(',')) {
      const [a, b] = part.split('-').map(Number) as [number, number?]
      for (let c = a; c <= (b ?? a); c++) cores.push(c)
    }
    return cores
  })
}

/** Every thread of `pid` may run on exactly `cores`. */
function assertOn(pid: number, cores: number[], what: string) {
  const threads = allowed(pid)
  assert.ok(threads.length > 0, what)
  for (const t of threads) assert.deepEqual(t, cores, what)
}

const reason = placementUnavailable()
const all = cpus().map((_, i) => i)

describe('placement', { skip: reason }, () => {
  const children: ChildProcess[] = []
  const sleeper = async () => {
    // A bounded child: it exits by itself after 60 s even if the test dies first.
    const c = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60_000)'], { stdio: 'ignore' })
    children.push(c)
    await once(c, 'spawn')
    return c.pid!
  }
  after(() => {
    for (const c of children) c.kill('SIGKILL')
    setAffinity(process.pid, all)
  })

  test('setAffinity narrows and widens every thread of a process', async () => {
    const pid = await sleeper()
    assertOn(pid, all, 'at start')
    assert.equal(setAffinity(pid, [0]), true)
    assertOn(pid, [0], 'narrowed')
    assert.equal(setAffinity(pid, all), true)
    assertOn(pid, all, 'widened')
    assert.equal(setAffinity(2 ** 22 + 7, [0]), false, 'no such process')
  })

  test('the executor alone on core 0, the rest (this process too) elsewhere, then undone', async () => {
    const [anvil, operator, executor, watchdog] = [
      await sleeper(),
      await sleeper(),
      await sleeper(),
      await sleeper(),
    ]
    const enclaves = [executor, watchdog]
    const devnet = {
      anvil: { process: { pid: anvil } },
      operators: [{ process: { pid: operator } }, { process: undefined }],
      enclavePid: (i: number) => enclaves[i],
    } as unknown as Devnet
    const rest = all.slice(1)
    const undo = placeExecutor(devnet, executor)
    try {
      assertOn(executor, [0], 'the executor')
      for (const pid of [anvil, operator, watchdog, process.pid]) assertOn(pid, rest, `pid ${pid}`)
    } finally {
      undo()
    }
    for (const pid of [anvil, operator, executor, watchdog, process.pid])
      assertOn(pid, all, `pid ${pid} after undo`)
    setAffinity(executor, [0])
    undo() // a second call undoes nothing more
    assertOn(executor, [0], 'left as set after the undo')
  })
})
