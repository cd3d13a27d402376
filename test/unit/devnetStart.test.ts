/**
 * A process that dies while it starts is reported at once, with its log: a restarted operator
 * that crashed at a named point during start-up (killed by SIGKILL, so no exit code) used to be
 * polled for the whole 60 s and reported as "did not start" (simulator seed 42). A pid read
 * from a pid file is killed only if it is still that operator's enclave (simulator seed 37).
 * Anvil and operators die with the process that started them, however it exits, and an
 * interrupted run stops them even when its launcher is signalled too. Starting an
 * operator that runs, or twice at once, keeps one process (simulator seed 83).
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import {
  createWriteStream,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, test } from 'node:test'
import { anvilRpc, startAnvil } from '../../src/devnet/anvil.ts'
import { killIfEnclaveOf, startDevnet, waitForStart } from '../../src/devnet/devnet.ts'
import { REPO_ROOT as REPO } from '../../src/tee/measurement.ts'

const dir = mkdtempSync(join(tmpdir(), 'pose-devnet-start-'))
after(() => rmSync(dir, { recursive: true, force: true }))

function start(name: string, script: string) {
  const logPath = join(dir, `${name}.log`)
  const out = createWriteStream(logPath, { flags: 'a' })
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'] })
  child.stdout.pipe(out, { end: false })
  child.stderr.pipe(out, { end: false })
  child.once('close', () => out.end())
  return { child, out, logPath, what: name }
}

test('a process killed by a signal while it starts fails the wait at once, with its log', async () => {
  const p = start(
    'killed',
    "console.log('restoring sealed state'); setTimeout(() => process.kill(process.pid, 'SIGKILL'), 200)",
  )
  const t0 = Date.now()
  await assert.rejects(
    waitForStart({ ...p, ready: async () => 'not registered', timeoutMs: 30_000 }),
    (e: Error) => {
      assert.match(e.message, /killed was killed by SIGKILL while starting/)
      assert.match(e.message, /restoring sealed state/)
      return true
    },
  )
  assert.ok(Date.now() - t0 < 10_000, `took ${Date.now() - t0} ms`)
})

test('a process that exits while it starts fails the wait with its exit code', async () => {
  const p = start('exits', "console.error('EADDRINUSE'); process.exit(3)")
  await assert.rejects(
    waitForStart({ ...p, ready: async () => 'not registered', timeoutMs: 30_000 }),
    /exits exited with code 3 while starting[\s\S]*EADDRINUSE/,
  )
})

test('a process that stays up but never gets ready times out naming what it waited for', async () => {
  const p = start('slow', 'setTimeout(() => {}, 20_000)')
  try {
    await assert.rejects(
      waitForStart({
        ...p,
        ready: async () => 'registered, endpoint not answering',
        timeoutMs: 500,
      }),
      /slow did not start within 0.5 s \(registered, endpoint not answering\)/,
    )
  } finally {
    p.child.kill('SIGKILL')
  }
})

test('the wait ends as soon as the process is ready', async () => {
  const p = start('ready', 'setTimeout(() => {}, 20_000)')
  let polls = 0
  try {
    await waitForStart({ ...p, ready: async () => (++polls >= 3 ? true : 'starting') })
    assert.equal(polls, 3)
  } finally {
    p.child.kill('SIGKILL')
  }
})

test('a pid from a pid file is killed only while it is the enclave of that data directory', async () => {
  const mine = join(dir, 'operator-10')
  const theirs = join(dir, 'operator-1')
  // Stands in for an enclave process: the operator passes its data directory as the argument.
  const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30_000)', mine], {
    stdio: 'ignore',
  })
  const exited = new Promise<NodeJS.Signals | null>((r) => child.once('exit', (_c, sig) => r(sig)))
  await new Promise((r) => child.once('spawn', r))
  const pid = child.pid!
  // Another operator's data directory (even one whose path is a prefix of it): left alone.
  assert.equal(killIfEnclaveOf(pid, theirs), false)
  assert.equal(child.exitCode, null)
  assert.equal(killIfEnclaveOf(pid, mine), true)
  assert.equal(await exited, 'SIGKILL')
  // Gone: nothing to kill, no error.
  assert.equal(killIfEnclaveOf(pid, mine), false)
})

/** Whether `pid` is a live process (not gone, not a zombie waiting to be reaped). */
function running(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'))
  } catch {
    return false
  }
}

test('anvil started by a process that dies of an uncaught error does not outlive it', async () => {
  // A simulator run piped into a command that quit died of EPIPE and left its devnets running.
  const script = join(dir, 'orphan.mts')
  writeFileSync(
    script,
    `import { startAnvil } from ${JSON.stringify(join(REPO, 'src', 'devnet', 'anvil.ts'))}
import { readFileSync } from 'node:fs'
const anvil = await startAnvil()
const args = readFileSync(\`/proc/\${anvil.process.pid}/cmdline\`, 'utf8').split('\\0')
console.log(anvil.process.pid, args[args.indexOf('--cache-path') + 1])
setTimeout(() => { throw new Error('write EPIPE') }, 50)
`,
  )
  const child = spawn(process.execPath, ['--import', 'tsx', script], {
    cwd: REPO,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  child.stdout.on('data', (d) => {
    out += d
  })
  const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)))
  assert.notEqual(code, 0, 'the parent died of its error')
  const [pidText, cache = ''] = out.trim().split(' ')
  const pid = Number(pidText)
  assert.ok(Number.isInteger(pid) && pid > 0, `anvil's pid printed: ${out}`)
  assert.ok(cache?.startsWith(join(tmpdir(), 'pose-anvil-')), `its cache path printed: ${out}`)
  const deadline = Date.now() + 5_000
  while (running(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
  assert.equal(running(pid), false, `anvil ${pid} still runs after its parent died`)
  assert.equal(existsSync(cache), false, `its state cache directory ${cache} went with it`)
})

test('anvil keeps the states it moves out of memory in a directory of its own, removed when it stops', async () => {
  const anvil = await startAnvil()
  let stopped = false
  try {
    const cache = cachePathOf(anvil.process.pid)
    assert.ok(cache.startsWith(join(tmpdir(), 'pose-anvil-')), `cache path ${cache}`)
    // Enough blocks for anvil to move states out of memory (≈ 1,000 per call on this version).
    for (let i = 0; i < 3; i++) await anvilRpc(anvil.url, 'anvil_mine', ['0x3e8'])
    assert.ok(readdirSync(cache).length > 0, 'states were written to the cache directory')
    await anvil.stop()
    stopped = true
    assert.equal(existsSync(cache), false, `${cache} left behind`)
  } finally {
    if (!stopped) await anvil.stop()
  }
})

/** The state cache directory of the anvil `pid` (its `--cache-path`, set by `startAnvil`). */
function cachePathOf(pid: number | undefined): string {
  const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')
  return args[args.indexOf('--cache-path') + 1] ?? ''
}

/** Live processes whose command line has `arg` as one of its words (what `pkill -f` finds). */
function processesWith(arg: string): number[] {
  return readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p) && running(Number(p)) && Number(p) !== process.pid)
    .filter((p) => {
      try {
        return readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0').includes(arg)
      } catch {
        return false
      }
    })
    .map(Number)
}

test('a run started the way `npm run sim` starts it stops its anvil on SIGINT to the run and its launcher while its event loop is busy', async () => {
  // `pkill -INT -f test/sim/run.ts` signalled the run and the `tsx` CLI that launched it. tsx
  // relays the signal and SIGKILLs a child that does not report it within 30 ms, which a loaded
  // run does not: its clean-up never ran and its anvil outlived it. The long-running npm
  // scripts (sim, bench, start, pose) now run `node --import tsx` with no launcher between.
  const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as {
    scripts: Record<string, string>
  }
  const runner = pkg.scripts.sim!.split(' test/sim/run.ts')[0]!
  // Node flags may come first (the benchmark's load generator has some).
  const direct = new RegExp(`${runner.replace(/^node /, 'node (--\\S+ )*')} `)
  for (const name of ['bench', 'start', 'pose'])
    assert.match(pkg.scripts[name]!, direct, `${name} runs like sim: ${runner}`)
  const script = join(dir, 'interruptible.mts')
  writeFileSync(
    script,
    `import { startAnvil } from ${JSON.stringify(join(REPO, 'src', 'devnet', 'anvil.ts'))}
import { onInterrupt } from ${JSON.stringify(join(REPO, 'test', 'sim', 'interrupt.ts'))}
const anvil = await startAnvil()
onInterrupt(() => anvil.stop())
console.log(anvil.process.pid)
// A loaded run: its event loop is busy most of the time, here for 300 ms after each line.
setInterval(() => { console.log('busy'); const t = Date.now(); while (Date.now() - t < 300) {} }, 350)
`,
  )
  const child = spawn('sh', ['-c', `exec ${runner} ${script}`], {
    cwd: REPO,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  child.stdout.on('data', (d) => {
    out += d
  })
  await waitForLine(() => out, 'busy')
  const pid = Number(out.split('\n')[0])
  // Signalled as the run starts a busy stretch (its stdout is a pipe: written synchronously).
  for (const p of processesWith(script)) process.kill(p, 'SIGINT')
  await new Promise((r) => child.once('exit', r))
  const deadline = Date.now() + 10_000
  while ((processesWith(script).length > 0 || running(pid)) && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 50))
  const outlived = running(pid)
  if (outlived) process.kill(pid, 'SIGKILL')
  assert.deepEqual(processesWith(script), [], 'the run exited')
  assert.equal(outlived, false, `anvil ${pid} outlived the interrupted run`)
})

/** Waits (at most 20 s) until `out()` holds the line `line`; polls every 2 ms. */
async function waitForLine(out: () => string, line: string): Promise<void> {
  const deadline = Date.now() + 20_000
  while (!out().includes(`\n${line}\n`)) {
    if (Date.now() > deadline) throw new Error(`the run printed no ${line} line within 20 s`)
    await new Promise((r) => setTimeout(r, 2))
  }
}

test('an operator started while it runs or twice at once is one process (simulator seed 83)', async () => {
  // Seed 83: the simulator restarted an operator that another of its tasks had already brought
  // back; the second process found the port taken and exited, the devnet tracked only that
  // one, and the first ran on after the scenario ended.
  const devnet = await startDevnet({ operators: 1, users: 0, dir: join(dir, 'devnet') })
  try {
    const op = devnet.operators[0]!
    const first = op.process!.pid!
    await Promise.all([devnet.startOperator(0), devnet.startOperator(0)])
    assert.equal(op.process!.pid, first, 'a running operator is left alone')
    await devnet.killOperator(0, 'SIGKILL')
    assert.equal(running(first), false)
    await Promise.all([devnet.startOperator(0), devnet.startOperator(0)])
    const second = op.process!.pid!
    assert.notEqual(second, first)
    const operatorsOfDir = readdirSync('/proc')
      .filter((p) => /^\d+$/.test(p) && running(Number(p)))
      .filter((p) => {
        try {
          const argv = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0')
          return argv.includes('operator') && argv.includes(op.dataDir)
        } catch {
          return false
        }
      })
    assert.deepEqual(operatorsOfDir, [String(second)], 'one operator process for the data dir')
  } finally {
    await devnet.stop()
  }
})
