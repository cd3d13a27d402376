/**
 * Section `profile`: the enclave side of the protocol in one process, without HTTP, IPC or
 * peer sockets: an executor and two watchdogs (s = 2) as `Enclave` objects wired by the unit
 * tests' harness (test/unit/harness.ts), fed with signed, boxed transfers prepared up front.
 * Gives the throughput ceiling of the enclave logic on one core, and a CPU profile (V8
 * sampling profiler through node:inspector) of where that time goes.
 */
import { writeFileSync } from 'node:fs'
import { Session } from 'node:inspector/promises'
import { type EnclaveOutput, randomBytes } from '../../src/protocol/index.ts'
import { pump, setupActive, transferBox } from '../../test/unit/harness.ts'
import { printTable, progress, type Row, round } from '../lib/common.ts'

export type ProfileConfig = { txs: number; batch: number }

export type ProfileResult = {
  sequentialTps: number
  batchedTps: number
  batch: number
  /** Share of profiled CPU time by code area (percent). */
  byArea: Record<string, number>
  /** Hottest functions by self time. */
  top: Array<{ fn: string; where: string; selfPct: number }>
  /** Hottest (function ← our nearest callers) paths by self time. */
  paths: Array<{ path: string; selfPct: number }>
}

type ProfileNode = {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
  children?: number[]
}
type CpuProfile = { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] }

function area(url: string, fn: string): string {
  if (fn === '(garbage collector)') return 'GC'
  if (fn === '(program)' || fn === '(idle)') return 'V8 / idle'
  if (fn.startsWith('Secp256k1Addon') || url.includes('/secp256k1/'))
    return 'secp256k1 (native addon)'
  if (url.includes('/@noble/')) return '@noble (hashes, curves)'
  if (url.includes('/@ethereumjs/')) return '@ethereumjs (EVM)'
  if (url.includes('/zod/')) return 'zod (ecall validation)'
  if (url.includes('/viem/') || url.includes('/ox/') || url.includes('/abitype/'))
    return 'viem (tx preparation)'
  if (url.includes('/src/enclave/')) return 'src/enclave'
  if (url.includes('/src/protocol/')) return 'src/protocol'
  if (url.startsWith('node:') || url === '') return 'node built-ins (crypto, buffers)'
  if (url.includes('/node_modules/'))
    return `other npm (${url.split('/node_modules/').at(-1)?.split('/')[0]})`
  return 'other'
}

export async function benchProfile(cfg: ProfileConfig): Promise<ProfileResult> {
  const run = async (n: number, batch: number, profile: boolean) => {
    const { nodes, instance, creatorKey, exec, contractEncryptionKey } = await setupActive()
    const recipient = randomBytes(20)
    // Signing and encryption are the client's work: prepared before the clock starts.
    const boxes = Array.from(
      { length: n },
      (_, k) =>
        transferBox({ instance, contractEncryptionKey }, creatorKey, BigInt(k), recipient).box,
    )
    const answers = new Map<string, Uint8Array>()
    const session = new Session()
    if (profile) {
      session.connect()
      await session.post('Profiler.enable')
      await session.post('Profiler.setSamplingInterval', { interval: 200 })
      await session.post('Profiler.start')
    }
    const t0 = performance.now()
    for (let k = 0; k < n; k += batch) {
      const outputs: EnclaveOutput[] = []
      for (let j = k; j < Math.min(n, k + batch); j++) {
        const r = await exec.enclave.call('tx', { requestId: `r${j}`, instance, box: boxes[j]! })
        outputs.push(...r.outputs)
      }
      await pump(nodes, outputs, answers)
      // Later acks release more receipts; keep ticking until every answer of the batch is out.
      for (let guard = 0; answers.size < Math.min(n, k + batch) && guard < 100; guard++) {
        const r = await exec.enclave.call('tick', { now: Date.now() })
        await pump(nodes, r.outputs, answers)
      }
    }
    const seconds = (performance.now() - t0) / 1000
    if (answers.size !== n) throw new Error(`profile: ${answers.size} of ${n} answers`)
    let prof: CpuProfile | undefined
    if (profile) {
      prof = ((await session.post('Profiler.stop')) as { profile: CpuProfile }).profile
      session.disconnect()
      // For Chrome DevTools or speedscope: BENCH_CPUPROFILE=/path/to/file.cpuprofile
      if (process.env.BENCH_CPUPROFILE)
        writeFileSync(process.env.BENCH_CPUPROFILE, JSON.stringify(prof))
    }
    return { tps: n / seconds, prof }
  }

  progress(`profile: ${cfg.txs} transfers through executor + 2 watchdogs in-process, one by one`)
  const seq = await run(cfg.txs, 1, false)
  progress(`profile: ${round(seq.tps, 0)} tx/s; batches of ${cfg.batch}, profiled`)
  const batched = await run(cfg.txs, cfg.batch, true)

  const prof = batched.prof!
  const nodesById = new Map(prof.nodes.map((n) => [n.id, n]))
  const parent = new Map<number, number>()
  for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  const ancestors = (id: number) => {
    const out: ProfileNode[] = []
    for (let p = parent.get(id); p !== undefined; p = parent.get(p)) out.push(nodesById.get(p)!)
    return out
  }
  const byNode = new Map<number, number>()
  for (const [i, id] of prof.samples.entries())
    byNode.set(id, (byNode.get(id) ?? 0) + (prof.timeDeltas[i] ?? 0))
  // The profiler's own work (serialising the profile through the inspector) is not the enclave's.
  for (const id of [...byNode.keys()]) {
    if (ancestors(id).some((a) => a.callFrame.url === 'node:inspector')) byNode.delete(id)
  }
  const total = [...byNode.values()].reduce((a, b) => a + b, 0)
  const byFn = new Map<string, { fn: string; where: string; t: number }>()
  const byArea = new Map<string, number>()
  const byPath = new Map<string, number>()
  const nameOf = (n: ProfileNode) => n.callFrame.functionName || '(anonymous)'
  for (const node of prof.nodes) {
    const t = byNode.get(node.id) ?? 0
    if (t === 0) continue
    const { url, lineNumber } = node.callFrame
    const fn = nameOf(node)
    const short = url.replace(/^file:\/\//, '').replace(/^.*\/(node_modules|src|test)\//, '$1/')
    const key = `${fn}@${short}:${lineNumber + 1}`
    const cur = byFn.get(key) ?? { fn, where: `${short}:${lineNumber + 1}`, t: 0 }
    cur.t += t
    byFn.set(key, cur)
    const a = area(url, fn)
    byArea.set(a, (byArea.get(a) ?? 0) + t)
    // Which of our functions lead there: the two nearest callers in src/.
    const ours = ancestors(node.id)
      .filter((x) => x.callFrame.url.includes('/src/'))
      .slice(0, 2)
      .map(nameOf)
    const path = [url.includes('/src/') ? fn : `${fn} (${a})`, ...ours].join(' ← ')
    byPath.set(path, (byPath.get(path) ?? 0) + t)
  }
  const pct = (t: number) => round((100 * t) / total, 1)
  const top = [...byFn.values()]
    .sort((a, b) => b.t - a.t)
    .slice(0, 15)
    .map((x) => ({ fn: x.fn, where: x.where, selfPct: pct(x.t) }))
  const areas = Object.fromEntries(
    [...byArea.entries()].sort((a, b) => b[1] - a[1]).map(([k, v]) => [k, pct(v)]),
  )
  const paths = [...byPath.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 12)
    .map(([path, t]) => ({ path, selfPct: pct(t) }))
  const result: ProfileResult = {
    sequentialTps: round(seq.tps, 0),
    batchedTps: round(batched.tps, 0),
    batch: cfg.batch,
    byArea: areas,
    top,
    paths,
  }
  printTable(
    'Enclave logic in-process (executor + 2 watchdogs, one core, no HTTP/IPC/sockets)',
    [
      { mode: 'one tx at a time', tps: result.sequentialTps },
      { mode: `batches of ${cfg.batch} (profiled)`, tps: result.batchedTps },
    ],
    [
      'client-side signing and encryption prepared in advance; the profiler slows the second row a little.',
    ],
  )
  const areaRows: Row[] = Object.entries(areas).map(([k, v]) => ({ area: k, cpu_pct: v }))
  printTable('CPU by code area (profiled run)', areaRows)
  printTable(
    'Hottest functions by self time (profiled run)',
    top.map((t) => ({ function: t.fn, where: t.where, self_pct: t.selfPct })),
  )
  printTable(
    'Hot paths: function ← nearest callers in src/ (profiled run)',
    paths.map((p) => ({ path: p.path, self_pct: p.selfPct })),
  )
  return result
}
