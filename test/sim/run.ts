/**
 * The fault-injection simulator: `npm run sim -- --seeds N` runs N seeded scenarios
 * (test/sim/scenario.ts; docs/simulator.md) and prints a summary; `--seed S` replays one.
 * `--jobs J` runs up to J scenarios at once, each on its own devnet (a scenario spends most of
 * its time waiting on faults and timeouts and uses about 0.8 of a core, so two share a 2-core
 * machine well); the default is one per core, at most 4.
 * Exits 1 if any invariant was violated. The last line is
 * `sim: <S> scenarios, <F> faults, <R> receipts, <V> violations`, F counting injected faults
 * only (test/sim/checks.ts, `isInjectedFault`): restarts the simulator made, faults it skipped
 * and steps of the end are listed apart.
 */
import { existsSync, readFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { failedScenario } from './failure.ts'
import { onInterrupt, runSeeds } from './interrupt.ts'
import { runScenario, type ScenarioResult, stopRunningScenarios } from './scenario.ts'

const { values } = parseArgs({
  options: {
    seeds: { type: 'string', default: '1' },
    seed: { type: 'string' },
    from: { type: 'string', default: '1' },
    txs: { type: 'string', default: '30' },
    jobs: { type: 'string', default: String(Math.min(4, Math.max(1, availableParallelism()))) },
    verbose: { type: 'boolean', default: false },
  },
})

const count = (v: string, what: string, min: number) => {
  const n = Number(v)
  if (!Number.isInteger(n) || n < min) {
    console.error(`sim: --${what} must be an integer ≥ ${min}, got ${JSON.stringify(v)}`)
    process.exit(2)
  }
  return n
}
const txs = count(values.txs, 'txs', 1)
const seeds = values.seed
  ? [count(values.seed, 'seed', 0)]
  : Array.from(
      { length: count(values.seeds, 'seeds', 1) },
      (_, i) => count(values.from, 'from', 0) + i,
    )

/** How many of a failed scenario's last timeline lines the run prints. */
const TIMELINE_TAIL = 60

const jobs = Math.min(count(values.jobs, 'jobs', 1), seeds.length)

const interruption = onInterrupt(stopRunningScenarios)
const results = await runSeeds(seeds, jobs, runOne, () => interruption.interrupted)
results.sort((a, b) => a.seed - b.seed)

async function runOne(seed: number): Promise<ScenarioResult> {
  const r = await runScenario({
    seed,
    txsPerUser: txs,
    ...(values.verbose
      ? { log: (l: string) => console.error(jobs > 1 ? `[${seed}] ${l}` : l) }
      : {}),
  }).catch((e: unknown) => failedScenario(seed, e))
  const list = (counts: Record<string, number>) =>
    Object.entries(counts)
      .map(([k, n]) => `${k} ${n}`)
      .join(', ')
  const other = list(r.other)
  console.log(
    `seed ${seed}: s=${r.watchdogs}, ${r.receipts} receipts, ${r.checks} checks, max latency ${(r.maxLatencyMs / 1000).toFixed(1)} s, ${(r.durationMs / 1000).toFixed(1)} s; faults: ${list(r.faults) || 'none'}${other ? `; not faults: ${other}` : ''}`,
  )
  for (const v of r.violations) console.log(`  VIOLATION: ${v}`)
  if (r.violations.length > 0) console.log(`  replay: npm run sim -- --seed ${seed} --txs ${txs}`)
  if (r.logsDir) console.log(`  logs: ${r.logsDir} (operator logs, timeline.log)`)
  if (r.violations.length > 0 && r.logsDir) printTimeline(join(r.logsDir, 'timeline.log'))
  return r
}

/**
 * The end of a failed scenario's timeline, so that a run whose directory is gone by the time
 * anyone looks (a CI machine) still shows what happened.
 */
function printTimeline(path: string): void {
  if (!existsSync(path)) return
  const lines = readFileSync(path, 'utf8').split('\n').filter(Boolean)
  const shown = lines.slice(-TIMELINE_TAIL)
  console.log(`  timeline (${shown.length} of ${lines.length} lines):`)
  for (const l of shown) console.log(`    ${l.slice(0, 400)}`)
}

const sumUp = (pick: (r: ScenarioResult) => Record<string, number>) => {
  const totals = new Map<string, number>()
  for (const r of results)
    for (const [k, n] of Object.entries(pick(r))) totals.set(k, (totals.get(k) ?? 0) + n)
  return [...totals].sort()
}
const totals = sumUp((r) => r.faults)
console.log(`\n${'fault class'.padEnd(32)} injected`)
for (const [k, n] of totals) console.log(`${k.padEnd(32)} ${String(n).padStart(8)}`)
const others = sumUp((r) => r.other)
if (others.length > 0) console.log(`\n${'not faults (restarts, skipped)'.padEnd(32)}    count`)
for (const [k, n] of others) console.log(`${k.padEnd(32)} ${String(n).padStart(8)}`)
const faults = totals.reduce((a, [, n]) => a + n, 0)
const receipts = results.reduce((a, r) => a + r.receipts, 0)
const checks = results.reduce((a, r) => a + r.checks, 0)
const violations = results.reduce((a, r) => a + r.violations.length, 0)
console.log(`\n${'invariant checks'.padEnd(32)} ${String(checks).padStart(8)}`)
console.log(
  `sim: ${results.length} scenarios, ${faults} faults, ${receipts} receipts, ${violations} violations`,
)
process.exit(violations > 0 ? 1 : 0)
