/**
 * A devnet start that fails after anvil is up stops anvil and keeps its directory (the logs its
 * error points to); an aborted start (an interrupted `pose devnet`) removes it; a missing enclave
 * bundle fails before anything starts. A SIGINT or SIGTERM handler stays in place for the whole
 * run, so a second signal cannot cut the stop short. Anvil stands in here: no process starts,
 * except for the missing anvil binary, which must fail with a message rather than an unhandled
 * 'error' event.
 */
import assert from 'node:assert/strict'
import type { ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, test } from 'node:test'
import { type Anvil, freePort, startAnvil } from '../../src/devnet/anvil.ts'
import { latencyLine } from '../../src/devnet/demo.ts'
import { DevnetStartError, startDevnet } from '../../src/devnet/devnet.ts'
import { type Interruptible, onInterrupt } from '../../src/devnet/interrupt.ts'

/** Any file serves as the enclave bundle here: nothing runs it. */
const bundlePath = import.meta.filename
const scratch = mkdtempSync(join(tmpdir(), 'pose-devnet-cleanup-'))
after(() => rmSync(scratch, { recursive: true, force: true }))

/**
 * An anvil that is not there: its URL is a reserved loopback port nobody listens on, so the
 * first step after it (funding the deployer) fails at once, as a dead endpoint would.
 */
async function fakeAnvil(): Promise<{ anvil: Anvil; stops: () => number }> {
  const port = await freePort()
  let stops = 0
  const anvil: Anvil = {
    url: `http://127.0.0.1:${port}`,
    port,
    process: { pid: undefined } as unknown as ChildProcess,
    stop: async () => {
      stops++
    },
  }
  return { anvil, stops: () => stops }
}

const devnetDirs = () =>
  new Set(readdirSync(tmpdir()).filter((d) => d.startsWith('pose-devnet-') && d.length <= 18))

test('a start that fails after anvil is up stops anvil and keeps its directory, naming it', async () => {
  const { anvil, stops } = await fakeAnvil()
  const before = devnetDirs()
  let kept = ''
  await assert.rejects(
    startDevnet({ operators: 1, users: 0 }, { startAnvil: async () => anvil, bundlePath }),
    (e: unknown) => {
      assert.ok(e instanceof DevnetStartError, String(e))
      kept = e.dir
      assert.match(e.message, /^the devnet did not start \(its data and logs are kept in \S+\): /)
      assert.ok(e.message.includes(e.dir))
      return true
    },
  )
  try {
    assert.equal(stops(), 1, 'anvil was stopped')
    assert.ok(kept.startsWith(join(tmpdir(), 'pose-devnet-')), kept)
    assert.ok(existsSync(kept), 'the directory was kept')
    assert.ok(!before.has(kept.slice(tmpdir().length + 1)))
  } finally {
    rmSync(kept, { recursive: true, force: true })
  }
})

test('an aborted start stops anvil and removes its temporary directory', async () => {
  const { anvil, stops } = await fakeAnvil()
  const abort = new AbortController()
  const before = devnetDirs()
  // The devnet's directory exists by the time anvil starts (other runs may make theirs too).
  let made: string[] = []
  await assert.rejects(
    startDevnet(
      { operators: 1, users: 0, signal: abort.signal },
      {
        bundlePath,
        startAnvil: async () => {
          made = [...devnetDirs()].filter((d) => !before.has(d))
          // Interrupted while anvil was starting.
          abort.abort(new Error('interrupted'))
          return anvil
        },
      },
    ),
    /^Error: interrupted$/,
  )
  assert.equal(stops(), 1)
  assert.ok(made.length >= 1, 'its directory was made')
  for (const d of made) assert.equal(existsSync(join(tmpdir(), d)), false, `${d} left behind`)
})

test('a missing enclave bundle fails before anything starts, saying to build', async () => {
  let started = 0
  await assert.rejects(
    startDevnet(
      { operators: 1, users: 0 },
      {
        bundlePath: join(scratch, 'enclave.mjs'),
        startAnvil: async () => {
          started++
          return (await fakeAnvil()).anvil
        },
      },
    ),
    /enclave bundle .*enclave\.mjs is missing: run `npm run build` first/,
  )
  assert.equal(started, 0)
})

test('an anvil binary that cannot be run fails the start with a message, not an unhandled error', async () => {
  const before = new Set(readdirSync(tmpdir()).filter((d) => d.startsWith('pose-anvil-')))
  await assert.rejects(
    startAnvil({ binary: join(scratch, 'no-anvil') }),
    /^Error: anvil could not be started: spawn \S+no-anvil ENOENT/,
  )
  const left = readdirSync(tmpdir()).filter((d) => d.startsWith('pose-anvil-') && !before.has(d))
  assert.deepEqual(left, [], 'its cache directory was removed')
})

/** Signals delivered by hand, an exit recorded, log lines kept. */
function standIn() {
  const listeners = new Map<string, (() => void)[]>()
  const exits: number[] = []
  const lines: string[] = []
  const via: Interruptible = {
    signals: {
      on: (signal, listener) => listeners.set(signal, [...(listeners.get(signal) ?? []), listener]),
    },
    exit: (code) => exits.push(code),
    log: (line) => lines.push(line),
  }
  const send = (signal: 'SIGINT' | 'SIGTERM') => {
    for (const l of listeners.get(signal) ?? []) l()
  }
  return { via, send, exits, lines }
}

const settle = () => new Promise((r) => setTimeout(r, 20))

test('SIGINT and SIGTERM: the first runs the stop and exits 130, later ones wait for it', async () => {
  const s = standIn()
  let stops = 0
  let finish: () => void = () => undefined
  const state = onInterrupt(
    () => {
      stops++
      return new Promise<void>((r) => {
        finish = r
      })
    },
    { via: s.via, message: (signal) => `${signal}: stopping the devnet` },
  )
  assert.equal(state.interrupted, false)
  s.send('SIGTERM')
  s.send('SIGINT')
  s.send('SIGINT')
  await settle()
  assert.equal(state.interrupted, true)
  assert.equal(stops, 1, 'one stop')
  assert.deepEqual(s.exits, [], 'no exit before the stop is done')
  finish()
  await settle()
  assert.deepEqual(s.exits, [130])
  assert.equal(s.lines[0], 'SIGTERM: stopping the devnet')
  assert.equal(s.lines.filter((l) => /already stopping/.test(l)).length, 2)
})

test('a stop that fails exits 1 with its message; a clean one exits with the code asked for', async () => {
  const failing = standIn()
  onInterrupt(async () => Promise.reject(new Error('operator 2 did not exit')), {
    via: failing.via,
    exitCode: 0,
  })
  failing.send('SIGTERM')
  await settle()
  assert.deepEqual(failing.exits, [1])
  assert.ok(
    failing.lines.includes('stopping failed: operator 2 did not exit'),
    failing.lines.join(),
  )

  const clean = standIn()
  onInterrupt(async () => undefined, { via: clean.via, exitCode: 0 })
  clean.send('SIGINT')
  await settle()
  assert.deepEqual(clean.exits, [0])
})

test('the demo with no transactions says so instead of printing NaN latencies', () => {
  assert.equal(latencyLine([], 0), '   no transactions (--txs 0)')
  const line = latencyLine([3, 1, 2], 0.5)
  assert.match(line, /3 receipts in 0\.50 s \(6 tx\/s\); latency p50 2\.0 ms, p99 3\.0 ms/)
  assert.doesNotMatch(line, /NaN/)
})
