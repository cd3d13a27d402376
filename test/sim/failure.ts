/**
 * A scenario that stopped short (a step timed out, a process would not start): the error it
 * throws names the logs it kept, and the run reports it as one violation with those logs.
 */
import type { ScenarioResult } from './scenario.ts'

const LOGS_LINE = /^logs: (.+)$/

/** The error a scenario that stopped short throws: its cause, then its logs' directory. */
export function stoppedShort(e: unknown, dir: string): Error {
  return new Error(`${e instanceof Error ? e.message : String(e)}\nlogs: ${dir}`)
}

/** The result the run reports for a scenario that threw `e`. */
export function failedScenario(seed: number, e: unknown): ScenarioResult {
  const lines = (e instanceof Error ? e.message : String(e)).split('\n')
  const logs = LOGS_LINE.exec(lines.at(-1) ?? '')?.[1]
  const message = (logs ? lines.slice(0, -1) : lines).join('\n')
  return {
    seed,
    watchdogs: 0,
    receipts: 0,
    faults: {},
    other: {},
    checks: 1,
    violations: [`scenario failed: ${firstAndLast(message)}`],
    maxLatencyMs: 0,
    durationMs: 0,
    ...(logs ? { logsDir: logs } : {}),
  }
}

/** An error's first line and, for a long one (an operator log tail), its last line too. */
function firstAndLast(message: string): string {
  const lines = message.split('\n').filter((l) => l.trim() !== '')
  return lines.length > 1 ? `${lines[0]} … ${lines.at(-1)!.slice(0, 500)}` : (lines[0] ?? '')
}
