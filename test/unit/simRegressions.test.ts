import assert from 'node:assert/strict'
import { EventEmitter } from 'node:events'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { PoseRequestError } from '../../src/client/index.ts'
import { anvilRpc, startAnvil } from '../../src/devnet/anvil.ts'
import { seededRandom } from '../../src/operator/faults.ts'
import { waitFor } from '../e2e/helpers.ts'
import { ANSWER_GRACE_MS, chainController, type OpenChallenges } from '../sim/deadlines.ts'
import { failedScenario, stoppedShort } from '../sim/failure.ts'
import { Devnets, onInterrupt, runSeeds } from '../sim/interrupt.ts'
import { BlockClock } from '../sim/mining.ts'
import { operatorUrls, startFaultyProxy } from '../sim/proxy.ts'
import { type Rpc, reorgChain } from '../sim/reorg.ts'
import {
  crashMarker,
  endState,
  Lock,
  type Watched,
  waitForRecovery,
  watchCrashes,
} from '../sim/restart.ts'
import { converge } from '../sim/settle.ts'
import { Stages } from '../sim/stages.ts'
import { endedMeanwhile } from '../sim/termination.ts'

const tick = () => new Promise((r) => setImmediate(r))

/**
 * Runs the chain controller on a virtual wall clock against a chain with one executor challenge
 * open (deadline 1,060 s, block time 1,000 s). `script` runs after every controller round with
 * the virtual time in ms; the run ends at 60 s of it. Returns the virtual times at which a
 * deadline passed.
 */
async function controlled(
  script: (t: number, w: { restarting: { count: number }; info: OpenChallenges }) => void = () =>
    undefined,
  stages = new Stages(),
): Promise<number[]> {
  let t = 0
  let time = 1_000n
  const passedAt: number[] = []
  const restarting = { count: 0 }
  const info: OpenChallenges = {
    phaseName: 'ExecutorChallenged',
    challengeDeadline: 1_060n,
    watchdogMask: 0,
    watchdogDeadline: 0n,
  }
  await chainController(
    {
      read: async () => ({ ...info }),
      timestamp: async () => time,
      advance: async (seconds) => {
        time += BigInt(seconds)
      },
    },
    {
      stages,
      restarting,
      passed: () => passedAt.push(t),
      clock: {
        now: () => t,
        sleep: async (ms) => {
          t += ms
          script(t, { restarting, info })
          if (t >= 60_000) stages.enter('ended')
          await tick()
        },
      },
    },
  )
  return passedAt
}

/** A stand-in devnet whose operator 0 crashed at the named point 'before-seal'. */
function crashedAtNamedPoint(): Watched & { started: number; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'pose-sim-regressions-'))
  writeFileSync(crashMarker(dir), 'before-seal')
  const op: Watched['operators'][number] = {
    dataDir: dir,
    process: { exitCode: null, signalCode: 'SIGKILL' },
  }
  const devnet = {
    dir,
    started: 0,
    operators: [op],
    killEnclave: () => true,
    killOperator: async () => {
      op.process = undefined
    },
    startOperator: async () => {
      op.process = { exitCode: null, signalCode: null }
      devnet.started++
    },
  }
  return devnet
}

/** Runs the crash watcher over `devnet` while `f` runs; returns the crashes and violations. */
async function watching(
  devnet: Watched & { dir: string },
  stages: Stages,
  lock: Lock,
  f: () => Promise<void>,
  held?: ReadonlySet<number>,
): Promise<{ crashes: string[]; violations: string[] }> {
  const crashes: string[] = []
  const violations: string[] = []
  const watcher = watchCrashes(devnet, {
    stages,
    lock,
    ...(held ? { held } : {}),
    crashed: (point) => crashes.push(point),
    check: (ok, what) => {
      if (!ok) violations.push(what)
    },
    log: () => undefined,
  })
  try {
    await f()
  } finally {
    stages.enter('ended')
    await watcher
    rmSync(devnet.dir, { recursive: true, force: true })
  }
  return { crashes, violations }
}

describe('simulator regressions', () => {
  it('an open challenge gets time for an honest answer before Δ passes', async () => {
    // The member answers 5 s after the challenge opened; passing Δ as soon as the challenge
    // was seen timed the honest member out first.
    const answered = await controlled((t, { info }) => {
      if (t >= 5_000) info.phaseName = 'Active'
    })
    assert.deepEqual(answered, [], 'a deadline passed (ms) before the member answered at 5 s')
    // A challenge nobody answers has its deadline passed once the grace is over.
    const [passed, ...more] = await controlled()
    assert.ok(passed !== undefined && passed >= ANSWER_GRACE_MS, `passed at ${passed} ms`)
    assert.deepEqual(more, [])
  })

  it('seed 1: challenge deadlines still pass while the pool settles after the workload', async () => {
    // The workload is done and the pool settles with a challenge still open: its deadline
    // passes after the grace, not a real-time Δ later.
    const stages = new Stages()
    stages.enter('settling')
    const [passed, ...more] = await controlled(undefined, stages)
    assert.ok(passed !== undefined, 'no deadline passed while the pool settled')
    assert.ok(passed < 2 * ANSWER_GRACE_MS, `passed at ${passed} ms`)
    assert.deepEqual(more, [])
  })

  it('seed 37: no deadline passes while an honest executor restarts', async () => {
    // The challenged executor crashed at a named point 1 s after the challenge opened and is
    // up again at 30 s.
    const upAt = 30_000
    const [passed, ...more] = await controlled((t, { restarting }) => {
      restarting.count = t >= 1_000 && t < upAt ? 1 : 0
    })
    assert.ok(passed !== undefined, 'the deadline passes once the executor is up')
    assert.ok(passed >= upAt, `a deadline passed at ${passed} ms, while the executor restarted`)
    // Once up, the executor has the grace again (counted from the controller's last round
    // before, one 300 ms round earlier at most).
    assert.ok(passed >= upAt + ANSWER_GRACE_MS - 300, `passed ${passed - upAt} ms after it was up`)
    assert.deepEqual(more, [])
  })

  it('seed 42: an operator that crashes at a named point during the set-up is restarted at once', async () => {
    const devnet = crashedAtNamedPoint()
    const stages = new Stages() // the instance is being set up
    const { crashes, violations } = await watching(devnet, stages, new Lock(), () =>
      waitFor('the crashed operator to be restarted', async () => devnet.started === 1, 5_000),
    )
    assert.deepEqual(crashes, ['before-seal'])
    assert.deepEqual(violations, [])
  })

  it('an operator the scenario holds is counted as crashed at its named point and left down for the scenario to restart', async () => {
    const devnet = crashedAtNamedPoint()
    const stages = new Stages()
    stages.enter('terminating')
    const { crashes, violations } = await watching(
      devnet,
      stages,
      new Lock(),
      () => waitFor('the crash to be counted', async () => !devnet.operators[0]!.process, 5_000),
      new Set([0]),
    )
    assert.deepEqual(crashes, ['before-seal'])
    assert.deepEqual(violations, [])
    assert.equal(devnet.started, 0, 'left down')
  })

  it('seed 1722: an operator that crashes at a named point after the crash watcher stopped is a crash, not a death nobody explains', () => {
    const devnet = crashedAtNamedPoint()
    try {
      assert.deepEqual(endState(devnet.operators[0]!), { at: 'before-seal' })
      rmSync(crashMarker(devnet.dir))
      assert.equal(endState(devnet.operators[0]!), 'died')
      devnet.operators[0]!.process = { exitCode: null, signalCode: null }
      assert.equal(endState(devnet.operators[0]!), 'running')
    } finally {
      rmSync(devnet.dir, { recursive: true, force: true })
    }
  })

  it("seed 1737: a view refused because the instance terminated while it was pending is the SDK's answer, not a failure", () => {
    const refused = new PoseRequestError('Instance 1 has no executor (phase Terminated)', {
      code: 'WRONG_PHASE',
    })
    assert.equal(endedMeanwhile(refused, 'Terminated'), true)
    // Anything else still fails the request: a refusal while the instance lives, another code,
    // another error.
    assert.equal(endedMeanwhile(refused, 'Active'), false)
    assert.equal(
      endedMeanwhile(new PoseRequestError('timed out', { code: 'TIMEOUT' }), 'Terminated'),
      false,
    )
    assert.equal(endedMeanwhile(new Error('WRONG_PHASE'), 'Terminated'), false)
  })

  it('seed 62: a fault waiting for the pool to recover does not hold back crash restarts', async () => {
    const devnet = crashedAtNamedPoint()
    const stages = new Stages()
    stages.enter('workload')
    const lock = new Lock()
    // The fault schedule holds the lock while it injects a member fault, which first waits for
    // the pool to recover; the pool recovers once the crashed executor is back.
    await lock.take()
    const { crashes, violations } = await watching(devnet, stages, lock, async () => {
      await waitForRecovery(lock, async () => devnet.started === 1, 5_000)
      assert.ok(lock.held, 'the fault holds the lock again once the pool has recovered')
    })
    assert.deepEqual(crashes, ['before-seal'])
    assert.deepEqual(violations, [])
  })

  it('seeds 14, 17, 18, 23, 28, 31, 37: the convergence check waits out a restarting member or a failed read and names why', async () => {
    const agreed = [
      { slot: 0, seq: '42', digest: '0x7f3a9c0d11' },
      { slot: 1, seq: '42', digest: '0x7f3a9c0d11' },
    ]
    const restarting = new Error(
      'slot 1 (http://127.0.0.1:4001) gave no digest: HTTP 503 restarting',
    )
    // A failed chain read, then a member still restarting, then agreement.
    let looks = 0
    await converge(
      {
        phase: async () => {
          if (++looks === 1) throw new Error('HTTP request failed')
          return 'Active'
        },
        digests: async () => {
          if (looks === 2) throw restarting
          return agreed
        },
      },
      5_000,
    )
    assert.equal(looks, 3)
    // A member that never comes back: the report names it.
    await assert.rejects(
      converge(
        {
          phase: async () => 'Active',
          digests: async () => {
            throw restarting
          },
        },
        300,
      ),
      { message: `members did not converge (${restarting.message})` },
    )
  })

  it('seed 27: a reorganisation carries the transactions of a block mined while it read its range', async () => {
    // Blocks 1–10 carry one transaction each; block 11 is mined while block 10 is read.
    const blocks = Array.from({ length: 11 }, (_, n) => (n === 0 ? [] : [`0x${n}`]))
    const reorgs: unknown[][] = []
    const rpc: Rpc = async (method, params) => {
      if (method === 'eth_blockNumber') return `0x${(blocks.length - 1).toString(16)}`
      if (method === 'eth_getBlockByNumber') {
        const n = Number(params[0])
        if (n === 10 && blocks.length === 11) blocks.push(['0x11'])
        return { transactions: blocks[n]!.map((hash) => ({ hash, from: `sender of ${hash}` })) }
      }
      if (method === 'eth_getRawTransactionByHash') return `raw ${params[0]}`
      if (method === 'anvil_reorg') return reorgs.push(params)
      throw new Error(`unexpected ${method}`)
    }
    const r = await reorgChain(rpc, 2, seededRandom(27))
    // The last two blocks when the chain is reorganised are 10 and 11.
    assert.equal(reorgs.length, 1)
    const [depth, pairs] = reorgs[0] as [number, Array<[string, number]>]
    assert.equal(depth, 2)
    assert.deepEqual(pairs.map(([raw]) => raw).sort(), ['raw 0x10', 'raw 0x11'])
    assert.deepEqual(r, { depth: 2, moved: 2 })
  })

  it('seed 196: a transaction sent while the chain is reorganised is mined, not replaced unread', {
    timeout: 60_000,
  }, async () => {
    // The devnet's anvil (automine and a block a second). A transaction arrives after the
    // reorganisation read the blocks it replaces and before it replaces them: mined at once,
    // it would land in a block replaced unread and be lost (a user's withdraw never mined).
    const anvil = await startAnvil({ blockTime: 1 })
    const blocks = new BlockClock((method, params) => anvilRpc(anvil.url, method, params))
    try {
      await blocks.start()
      const [a, b] = (await anvilRpc(anvil.url, 'eth_accounts')) as string[]
      const send = (from: string) =>
        anvilRpc(anvil.url, 'eth_sendTransaction', [
          { from, to: from, value: '0x1' },
        ]) as Promise<string>
      const receipt = (hash: string) => anvilRpc(anvil.url, 'eth_getTransactionReceipt', [hash])
      const head = async () => Number(await anvilRpc(anvil.url, 'eth_blockNumber'))
      // Blocks keep coming without transactions (confirmations and time progress).
      const first = await head()
      await waitFor('a block from the block clock', async () => (await head()) > first, 10_000)
      await anvilRpc(anvil.url, 'anvil_mine', ['0x4'])
      // The block clock keeps automine on. (Anvil mines an automined transaction right after
      // answering eth_sendTransaction, so its receipt may lag the hash by a moment.)
      assert.equal(await anvilRpc(anvil.url, 'anvil_getAutomine'), true, 'automine stays on')
      const moved = await send(a!)
      await waitFor('the first transaction mined', async () => !!(await receipt(moved)), 10_000)
      let late = ''
      const racing: Rpc = async (method, params) => {
        if (method === 'anvil_reorg') late = await send(b!)
        return anvilRpc(anvil.url, method, params)
      }
      await blocks.paused(() => reorgChain(racing, 2, seededRandom(196)))
      assert.ok(late, 'the transaction was sent inside the window')
      for (const hash of [moved, late])
        await waitFor(`transaction ${hash} mined`, async () => !!(await receipt(hash)), 10_000)
    } finally {
      blocks.stop()
      await anvil.stop()
    }
  })

  it('seed 34: a restarted operator is probed directly, not through its proxy cut by a partition', async () => {
    const operator = createServer((req, res) => {
      res.writeHead(req.url === '/v1/health' ? 200 : 404).end('{"ok":true}')
    })
    await new Promise<void>((r) => operator.listen(0, '127.0.0.1', () => r()))
    const port = (operator.address() as { port: number }).port
    // The operator is partitioned: its proxy cuts every connection.
    const proxy = await startFaultyProxy({
      targetPort: port,
      seed: 34,
      faults: { cut: 0, delay: 0, maxDelayMs: 0 },
      count: () => undefined,
      blocked: () => true,
    })
    // The devnet's health probe while an operator starts: one request, given up after a while.
    const probe = (base: string) =>
      fetch(`${base}/v1/health`, { signal: AbortSignal.timeout(1_000) }).then(
        (res) => res.status,
        () => 'no answer',
      )
    try {
      const urls = operatorUrls(0, port, proxy.port)
      assert.equal(await probe(urls.publicUrl), 'no answer')
      assert.equal(await probe(urls.healthUrl), 200)
    } finally {
      await proxy.close()
      operator.closeAllConnections()
      await new Promise((r) => operator.close(r))
    }
  })

  it('seed 30: a scenario that stops short keeps its logs and the run names them', () => {
    const cause = new Error("timed out waiting for user 2's deposit credit (balance 0 of 1000)")
    const r = failedScenario(30, stoppedShort(cause, '/tmp/pose-sim-30-x'))
    assert.deepEqual(r.violations, [`scenario failed: ${cause.message}`])
    assert.equal(r.logsDir, '/tmp/pose-sim-30-x')
    // A start-up failure quotes an operator's log tail: its first and last lines are kept.
    const tail = stoppedShort(new Error('operator 3 exited (1)\n  at boot\nEADDRINUSE'), '/d')
    assert.deepEqual(failedScenario(7, tail).violations, [
      'scenario failed: operator 3 exited (1) … EADDRINUSE',
    ])
    // An error from outside a scenario names no logs.
    assert.equal(failedScenario(8, new Error('no anvil')).logsDir, undefined)
  })

  it('a repeated SIGINT or SIGTERM does not cut the devnet clean-up short', async () => {
    const signals = new EventEmitter()
    let stops = 0
    let stopped: () => void = () => undefined
    const exits: number[] = []
    onInterrupt(
      () => {
        stops++
        return new Promise<void>((r) => {
          stopped = r
        })
      },
      {
        signals,
        exit: (code) => exits.push(code),
        log: () => undefined,
      },
    )
    signals.emit('SIGINT')
    // A second signal follows (tsx forwards the one it got), or a SIGTERM. Without a handler
    // for it, Node's default action ends the process at once, before the clean-up is done.
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      assert.equal(signals.listenerCount(signal), 1, `a second ${signal} has its handler`)
      signals.emit(signal)
    }
    await tick()
    assert.equal(stops, 1)
    assert.deepEqual(exits, [])
    stopped()
    await tick()
    assert.deepEqual(exits, [130])
  })

  it('an interrupted run starts no further scenario', async () => {
    let interrupted = false
    const started: number[] = []
    const results = await runSeeds(
      [1, 2, 3, 4, 5],
      2,
      async (seed) => {
        started.push(seed)
        await tick()
        if (seed === 1) interrupted = true
        await tick()
        return seed
      },
      () => interrupted,
    )
    assert.deepEqual(started, [1, 2])
    assert.deepEqual(results.sort(), [1, 2])
  })

  it('an interrupted run also stops devnets still starting', async () => {
    const devnets = new Devnets<{ stop: () => Promise<void> }>()
    let stops = 0
    const devnet = {
      stop: async () => {
        stops++
      },
    }
    let up: (d: typeof devnet) => void = () => undefined
    const start = devnets.add(
      new Promise<typeof devnet>((r) => {
        up = r
      }),
    )
    // Interrupted while the devnet's processes start; it is stopped as soon as it is up.
    const stopping = devnets.stopAll()
    up(devnet)
    await stopping
    assert.equal(stops, 1)
    assert.equal(await start, devnet)
  })
})
