/**
 * The operator node's handling of its enclave's outputs (src/operator/node.ts), driven directly:
 * a sealed record that cannot be persisted stops the node, and nothing the enclave says after it
 * leaves (a later ack or answer could rest on that record).
 */
import assert from 'node:assert/strict'
import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { test } from 'node:test'
import pino from 'pino'
import { getAddress } from 'viem'
import { ChainTxError } from '../../src/chain/sender.ts'
import { CrashPoints } from '../../src/operator/faults.ts'
import { OperatorNode, type OperatorOptions } from '../../src/operator/node.ts'
import { type EnclaveOutput, EventKind, Phase, ProtocolError } from '../../src/protocol/index.ts'
import { EnclaveCallError } from '../../src/tee/enclaveHost.ts'

/** The node's private parts this test drives. */
type Internals = {
  store: {
    append: (instance: bigint, blob: Uint8Array) => void
    writeSnapshot: (instance: bigint, blob: Uint8Array) => void
    instances: () => bigint[]
    blobs: (instance: bigint) => Uint8Array[]
  }
  host: {
    ecall: (method: string, params: { instance: bigint }) => Promise<unknown>
    stop: () => Promise<void>
  }
  handleOutputs: (outputs: EnclaveOutput[]) => void
  restoreInstances: () => Promise<void>
  sender: { write: (p: { functionName: string; args: unknown[] }) => Promise<unknown> }
  chain: { publicClient: unknown }
  signer: string
  duties: () => Promise<void>
  markForDuties: (id: bigint) => void
  resendUnsent: () => void
}

/** Resolves once `done()` holds, polling every few milliseconds (at most two seconds). */
async function until(done: () => boolean): Promise<void> {
  for (let i = 0; i < 400 && !done(); i++) await new Promise((r) => setTimeout(r, 5))
  assert.ok(done(), 'condition reached')
}

const log = (message: string): EnclaveOutput => ({
  type: 'log',
  level: 'info',
  message,
  fields: {},
})

/** A node on `dir` whose log lines are collected in `lines`; nothing started. */
function nodeOn(dir: string, lines: LogLine[], more: Partial<OperatorOptions> = {}) {
  const logger = pino(
    new Writable({
      write(chunk, _enc, done) {
        for (const l of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(l))
        done()
      },
    }),
  )
  return new OperatorNode({
    rpcUrl: 'http://127.0.0.1:1',
    manager: '0x0000000000000000000000000000000000000001',
    privateKey: `0x${'11'.repeat(32)}`,
    devAuthorityKey: `0x${'22'.repeat(32)}`,
    dataDir: dir,
    logger,
    ...more,
  })
}

/** A line the node logged. */
type LogLine = { level: number; msg: string; [field: string]: unknown }

/**
 * Runs `f` with a node on a fresh data directory (its log lines in `lines`), then stops the
 * node and removes the directory.
 */
async function withNode(
  f: (node: OperatorNode, o: { dir: string; lines: LogLine[] }) => Promise<void>,
  more: Partial<OperatorOptions> = {},
): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'pose-node-'))
  const lines: LogLine[] = []
  const node = nodeOn(dir, lines, more)
  try {
    await f(node, { dir, lines })
  } finally {
    await node.stop().finally(() => rmSync(dir, { recursive: true, force: true }))
  }
}

test('an instance whose sealed state cannot be restored is logged and its files moved aside; the others are restored', () =>
  withNode(async (node, { dir, lines }) => {
    const n = node as unknown as Internals
    for (const id of [1n, 2n, 3n]) n.store.append(id, Uint8Array.of(Number(id)))
    const restored: bigint[] = []
    n.host = {
      ecall: async (method, params) => {
        assert.equal(method, 'restore')
        if (params.instance === 2n)
          throw new EnclaveCallError(
            'restore',
            new ProtocolError('OUT_OF_ORDER', 'update 5 after 7'),
            [],
          )
        restored.push(params.instance)
        return { result: { seq: 1n }, outputs: [] }
      },
      stop: async () => undefined,
    }
    await n.restoreInstances()
    assert.deepEqual(restored, [1n, 3n])
    const failed = lines.filter((l) => l.level === 50)
    assert.equal(failed.length, 1)
    assert.equal(failed[0]!.instance, '2')
    assert.match(failed[0]!.msg, /not restored/)
    // Kept, out of the way of the fresh state the enclave may seal for the instance.
    const aside = readdirSync(join(dir, 'instances')).filter((f) => f.startsWith('2.'))
    assert.equal(aside.length, 1)
    assert.equal(failed[0]!.filesMovedTo, join(dir, 'instances', aside[0]!))
    assert.deepEqual(n.store.instances(), [1n, 3n])
    assert.deepEqual(n.store.blobs(2n), [])
  }))

test('an enclave that dies while instances are restored fails the start and moves no sealed files', () =>
  withNode(async (node, { dir }) => {
    const n = node as unknown as Internals
    for (const id of [1n, 2n, 3n]) n.store.append(id, Uint8Array.of(Number(id)))
    let calls = 0
    n.host = {
      ecall: async () => {
        calls++
        // What EnclaveHost says once its child exited: no verdict on the records.
        throw new ProtocolError('UNAVAILABLE', 'enclave process exited (code null, signal SIGKILL)')
      },
      stop: async () => undefined,
    }
    await assert.rejects(
      n.restoreInstances(),
      (e: unknown) =>
        e instanceof ProtocolError && e.code === 'UNAVAILABLE' && /files are kept/.test(e.message),
    )
    assert.equal(calls, 1, 'no further instance is tried')
    assert.deepEqual(n.store.instances(), [1n, 2n, 3n])
    assert.ok(!readdirSync(join(dir, 'instances')).some((f) => f.includes('unrestorable')))
  }))

test('an instance whose files cannot be read, or that the enclave fails on without judging its records, keeps its files', () =>
  withNode(async (node, { lines }) => {
    const n = node as unknown as Internals
    for (const id of [1n, 2n, 3n]) n.store.append(id, Uint8Array.of(Number(id)))
    const blobs = n.store.blobs.bind(n.store)
    n.store.blobs = (id) => {
      if (id === 1n) throw new Error('EIO: i/o error, read')
      return blobs(id)
    }
    const restored: bigint[] = []
    n.host = {
      ecall: async (_method, params) => {
        if (params.instance === 2n)
          throw new EnclaveCallError('restore', new ProtocolError('INTERNAL', 'out of memory'), [])
        restored.push(params.instance)
        return { result: { seq: 1n }, outputs: [] }
      },
      stop: async () => undefined,
    }
    await n.restoreInstances()
    assert.deepEqual(restored, [3n])
    const failed = lines.filter((l) => l.level === 50)
    assert.deepEqual(
      failed.map((l) => [l.instance, l.filesMovedTo]),
      [
        ['1', undefined],
        ['2', undefined],
      ],
    )
    assert.ok(failed.every((l) => /kept for the next start/.test(l.msg)))
    n.store.blobs = blobs
    assert.deepEqual(n.store.instances(), [1n, 2n, 3n])
    assert.equal(n.store.blobs(2n).length, 1)
  }))

test('records its enclave could not open are cut off the log, so that records appended later are restored next time', () =>
  withNode(async (node, { lines }) => {
    const n = node as unknown as Internals
    n.store.writeSnapshot(5n, Uint8Array.of(0))
    for (const b of [1, 2, 3]) n.store.append(5n, Uint8Array.of(b))
    n.host = {
      // The enclave opened the snapshot and the first record only (a power loss's tail).
      ecall: async () => ({ result: { seq: 1n, records: 2 }, outputs: [] }),
      stop: async () => undefined,
    }
    await n.restoreInstances()
    assert.deepEqual(n.store.blobs(5n), [Uint8Array.of(0), Uint8Array.of(1)])
    n.store.append(5n, Uint8Array.of(9))
    assert.deepEqual(n.store.blobs(5n), [Uint8Array.of(0), Uint8Array.of(1), Uint8Array.of(9)])
    assert.ok(lines.some((l) => /did not open were cut off/.test(l.msg)))
  }))

test('a node stopped while it restores (its enclave exited) fails the start there', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pose-node-'))
  const node = nodeOn(dir, [])
  const exitCode = process.exitCode
  try {
    const n = node as unknown as Internals
    for (const id of [1n, 2n]) n.store.append(id, Uint8Array.of(Number(id)))
    n.host = {
      ecall: async () => {
        // The enclave's exit handler stops the node while this ecall is out, and the ecall
        // fails as the enclave refusing it would.
        await node.stop()
        throw new EnclaveCallError('restore', new ProtocolError('MALFORMED', 'cut short'), [])
      },
      stop: async () => undefined,
    }
    await assert.rejects(
      n.restoreInstances(),
      (e: unknown) => e instanceof ProtocolError && e.code === 'UNAVAILABLE',
    )
    assert.deepEqual(n.store.instances(), [1n, 2n], 'nothing moved aside by a stopping node')
  } finally {
    process.exitCode = exitCode
    rmSync(dir, { recursive: true, force: true })
  }
})

test('a sealed record that cannot be persisted stops the node, and no later output of its enclave leaves it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pose-node-'))
  const lines: Array<{ level: number; msg: string }> = []
  const node = nodeOn(dir, lines)
  const exitCode = process.exitCode
  try {
    const n = node as unknown as Internals
    const append = n.store.append.bind(n.store)
    n.store.append = () => {
      throw new Error('ENOSPC: no space left on device, write')
    }
    const seal: EnclaveOutput = {
      type: 'seal',
      instance: 7n,
      mode: 'append',
      blob: Uint8Array.of(1),
    }
    n.handleOutputs([log('before the record')])
    assert.throws(() => n.handleOutputs([seal, log('after the record')]), /ENOSPC/)
    // The disk is writable again; the enclave (which applied the update) says more: nothing of
    // it leaves, the node is stopping.
    n.store.append = append
    n.handleOutputs([log('a later ecall'), seal])
    const messages = lines.map((l) => l.msg)
    assert.ok(messages.includes('before the record'))
    assert.ok(!messages.includes('after the record'))
    assert.ok(!messages.includes('a later ecall'))
    const fatal = lines.find((l) => l.level === 50 && /could not be persisted/.test(l.msg))
    assert.ok(fatal, 'the failure is logged as an error')
    assert.equal(process.exitCode, 1)
  } finally {
    process.exitCode = exitCode
    await node.stop().finally(() => rmSync(dir, { recursive: true, force: true }))
  }
})

test("an enclave's on-chain call the endpoint never took in all its attempts is sent again from the duty loop", () =>
  withNode(
    async (node) => {
      const n = node as unknown as Internals
      const sent: Array<{ functionName: string; args: unknown[] }> = []
      let up = false
      n.sender = {
        write: async (p) => {
          sent.push(p)
          if (!up) throw new ChainTxError(p.functionName, 'fetch failed')
          return {}
        },
      }
      const answer: EnclaveOutput = {
        type: 'respondExecutor',
        instance: 4n,
        response: Uint8Array.of(1, 2),
        eventIndex: 9n,
        signature: new Uint8Array(65),
      }
      n.handleOutputs([answer])
      await until(() => sent.length === 2)
      await new Promise((r) => setTimeout(r, 20))
      assert.equal(sent.length, 2, 'its attempts are spent')
      // The endpoint is back: the duty loop sends the same call again, once.
      up = true
      n.resendUnsent()
      n.resendUnsent()
      await until(() => sent.length === 3)
      assert.deepEqual(sent[2], sent[0])
      n.resendUnsent()
      await new Promise((r) => setTimeout(r, 20))
      assert.equal(sent.length, 3, 'taken: not sent again')
    },
    { submitAttempts: 2, submitBackoffMs: 1 },
  ))

/**
 * A chain whose instance 4 is active with the pool `signers` (a zero address is an empty slot),
 * its refill scheduled for `refillBlock` (the head is at 50); `reads` counts its reads.
 */
function poolChain(signers: string[], reads: { n: number } = { n: 0 }, refillBlock = 0n) {
  return {
    publicClient: {
      getBlock: async () => ({ timestamp: 1_000n }),
      getBlockNumber: async () => 50n,
      readContract: async () => {
        reads.n++
        return {
          phase: Phase.Active,
          watchdogCount: signers.length - 1,
          drawBlock: 1n,
          executorSlot: 0,
          eventIndex: 7n,
          eventHash: `0x${'00'.repeat(32)}`,
          signers,
          operators: [],
          challenger: `0x${'00'.repeat(20)}`,
          challengeDeadline: 0n,
          watchdogMask: 0,
          respondedMask: 0,
          watchdogDeadline: 0n,
          refillBlock,
        }
      },
    },
  }
}

test('a node refills an active pool it is no member of once a slot stayed empty for a while (its members do not), and forgets a full one', () =>
  withNode(
    async (node) => {
      const n = node as unknown as Internals & { strangerRefillAt: Map<bigint, number> }
      n.signer = `0x${'ab'.repeat(20)}`
      const calls: string[] = []
      n.sender = {
        write: async (p) => {
          calls.push(p.functionName)
          return {}
        },
      }
      const executor = `0x${'cd'.repeat(20)}`
      const zero = `0x${'00'.repeat(20)}`
      n.chain = poolChain([executor, zero, zero])
      n.markForDuties(4n)
      await n.duties()
      assert.deepEqual(calls, [], 'its members get the time to refill it first')
      const at = n.strangerRefillAt.get(4n)
      assert.ok(at !== undefined && at >= Date.now() + 60_000 && at <= Date.now() + 90_000)
      // The safety net reads it again; once the wait is over, the node refills it, but not
      // while its enclave's own calls (answers to challenges) are being sent, and one such pool
      // per round: its calls go one at a time.
      const inFlight = node as unknown as { enclaveCallsInFlight: number }
      n.strangerRefillAt.set(4n, Date.now() - 1)
      n.strangerRefillAt.set(5n, Date.now() - 1)
      inFlight.enclaveCallsInFlight = 1
      n.markForDuties(4n)
      n.markForDuties(5n)
      await n.duties()
      assert.deepEqual(calls, [], 'an answer of its enclave is on its way')
      inFlight.enclaveCallsInFlight = 0
      n.markForDuties(4n)
      n.markForDuties(5n)
      await n.duties()
      assert.deepEqual(calls, ['refill'], 'one pool per round')
      n.markForDuties(5n)
      await n.duties()
      assert.deepEqual(calls, ['refill', 'refill'])
      calls.length = 1
      // Refilled (full again): forgotten, and never refilled by this node.
      n.chain = poolChain([executor, `0x${'11'.repeat(20)}`, `0x${'22'.repeat(20)}`])
      n.markForDuties(4n)
      await n.duties()
      assert.equal(n.strangerRefillAt.has(4n), false)
      assert.equal((node as unknown as { known: Set<bigint> }).known.has(4n), false)
      assert.deepEqual(calls, ['refill'])
    },
    { strangerRefillMs: 60_000 },
  ))

test('a pool whose refill finds nobody to draw is not refilled again until an operator registers', () =>
  withNode(async (node) => {
    const n = node as unknown as Internals
    const me = `0x${'ab'.repeat(20)}`
    n.signer = me
    const calls: string[] = []
    n.sender = {
      write: async (p) => {
        calls.push(p.functionName)
        throw new ChainTxError(p.functionName, 'PoseManager_NothingToDraw(4)', { reverted: true })
      },
    }
    const reads = { n: 0 }
    n.chain = poolChain([me, `0x${'cd'.repeat(20)}`, `0x${'00'.repeat(20)}`], reads, 40n)
    n.markForDuties(4n)
    await n.duties()
    assert.deepEqual(calls, ['refill'])
    // Marked again (any event, or the safety net): read, but no refill is sent.
    for (let i = 0; i < 3; i++) {
      n.markForDuties(4n)
      await n.duties()
    }
    assert.deepEqual(calls, ['refill'])
    assert.equal(reads.n, 4)
    // An operator registers: the pool is tried again.
    await (node as unknown as { deliverBatch: (b: unknown) => Promise<void> })
      .deliverBatch({
        blockNumber: 60n,
        timestamp: 1_010n,
        instanceEvents: [],
        operatorEvents: [
          {
            operator: `0x${'ef'.repeat(20)}`,
            enclaveSigner: `0x${'12'.repeat(20)}`,
            endpoint: 'http://127.0.0.1:9',
          },
        ],
      })
      .catch(() => undefined)
    await n.duties()
    assert.deepEqual(calls, ['refill', 'refill'])
    // A member removed may be drawn again: its removal makes the pool be tried anew as well.
    await n.duties()
    assert.deepEqual(calls, ['refill', 'refill'], 'nobody again')
    await (node as unknown as { onChainBatch: (b: unknown) => Promise<void> })
      .onChainBatch({
        blockNumber: 61n,
        timestamp: 1_020n,
        instanceEvents: [
          { instance: 4n, index: 8n, kind: EventKind.MemberRemoved, data: new Uint8Array() },
        ],
        operatorEvents: [],
      })
      .catch(() => undefined)
    await n.duties()
    assert.deepEqual(calls, ['refill', 'refill', 'refill'])
  }))

test('an operator that withdrew its stake is forgotten, and the link to its endpoint closed', () =>
  withNode(async (node) => {
    const n = node as unknown as {
      endpoints: Map<string, string>
      signerToOperator: Map<string, string>
      peers:
        | { retainEndpoints: (e: Iterable<string>) => void; close: () => Promise<void> }
        | undefined
      deliverBatch: (b: unknown) => Promise<void>
    }
    const retained: string[][] = []
    n.peers = { retainEndpoints: (e) => retained.push([...e]), close: async () => {} }
    const a = getAddress(`0x${'a1'.repeat(20)}`)
    const b = getAddress(`0x${'b2'.repeat(20)}`)
    const batch = (operatorEvents: unknown[]) =>
      n
        .deliverBatch({ blockNumber: 5n, timestamp: 1_000n, instanceEvents: [], operatorEvents })
        .catch(() => undefined)
    await batch([
      { operator: a, enclaveSigner: `0x${'c3'.repeat(20)}`, endpoint: 'http://127.0.0.1:7001' },
      { operator: b, enclaveSigner: `0x${'d4'.repeat(20)}`, endpoint: 'http://127.0.0.1:7002' },
    ])
    assert.deepEqual(retained.at(-1), ['http://127.0.0.1:7001', 'http://127.0.0.1:7002'])
    await batch([{ operator: a, left: true }])
    assert.deepEqual(retained.at(-1), ['http://127.0.0.1:7002'], "a's link closes")
    assert.ok(!n.endpoints.has(a))
    assert.deepEqual([...n.signerToOperator.values()], [b])
    // Registered again (a new enclave): known again.
    await batch([
      { operator: a, enclaveSigner: `0x${'e5'.repeat(20)}`, endpoint: 'http://127.0.0.1:7003' },
    ])
    assert.deepEqual(retained.at(-1), ['http://127.0.0.1:7002', 'http://127.0.0.1:7003'])
  }))

test("the simulator's final-page crash point fires only once the manager took a page, not on a page it refused", () =>
  withNode(async (node) => {
    const n = node as unknown as Internals & { crashPoints: CrashPoints | undefined }
    const crashed: string[] = []
    n.crashPoints = new CrashPoints(
      { seed: 1, probability: 1, points: ['final-page'], after: 0 },
      (point) => crashed.push(point),
    )
    const sent: bigint[] = []
    n.sender = {
      write: async (p) => {
        const eventIndex = p.args[2] as bigint
        sent.push(eventIndex)
        // Signed before a deposit the manager has since recorded: refused.
        if (eventIndex === 5n)
          throw new ChainTxError('terminate', 'PoseManager_StaleEventIndex(5)', { reverted: true })
        return {}
      },
    }
    const page = (eventIndex: bigint): EnclaveOutput => ({
      type: 'terminate',
      instance: 9n,
      root: new Uint8Array(32),
      page: 0,
      pages: 2,
      accounts: [new Uint8Array(20).fill(1)],
      cumulatives: [1n],
      eventIndex,
      signature: new Uint8Array(65),
    })
    n.handleOutputs([page(5n)])
    await until(() => sent.length === 1)
    await new Promise((r) => setTimeout(r, 20))
    assert.deepEqual(crashed, [], 'a refused page: no crash')
    n.handleOutputs([page(6n)])
    await until(() => crashed.length === 1)
    assert.deepEqual(sent, [5n, 6n])
    assert.deepEqual(crashed, ['final-page'])
  }))

test('pages of final balances go one at a time per instance, the newest of each, and one sent without a receipt is looked up before it goes again', () =>
  withNode(async (node) => {
    const n = node as unknown as Omit<Internals, 'sender'> & {
      sender: {
        write: (p: { functionName: string; args: unknown[] }) => Promise<unknown>
        settle: (functionName: string, hash: string) => Promise<unknown>
      }
    }
    const sent: Array<{ page: bigint; eventIndex: bigint }> = []
    const settled: string[] = []
    let release: (() => void) | undefined
    let failNext = false
    n.sender = {
      write: async (p) => {
        const b = p.args[1] as { page: bigint }
        sent.push({ page: b.page, eventIndex: p.args[2] as bigint })
        if (failNext) {
          failNext = false
          throw new ChainTxError('terminate', 'timeout', { hash: `0x${'ab'.repeat(32)}` })
        }
        await new Promise<void>((r) => {
          release = r
        })
        return {}
      },
      settle: async (_f, hash) => {
        settled.push(hash)
        return 'dropped'
      },
    }
    const page = (p: number, eventIndex: bigint): EnclaveOutput => ({
      type: 'terminate',
      instance: 9n,
      root: new Uint8Array(32),
      page: p,
      pages: 3,
      accounts: [new Uint8Array(20).fill(p + 1)],
      cumulatives: [1n],
      eventIndex,
      signature: new Uint8Array(65),
    })
    n.handleOutputs([page(0, 5n), page(1, 5n), page(2, 5n)])
    await until(() => sent.length === 1)
    await new Promise((r) => setTimeout(r, 20))
    assert.equal(sent.length, 1, 'one page on its way at a time')
    // Published again at a later event: the newest of each page waits.
    n.handleOutputs([page(0, 6n), page(1, 6n), page(2, 6n)])
    failNext = true
    release!()
    // Page 0 (the newest) goes next: sent, but no receipt came.
    await until(() => sent.length === 3)
    assert.deepEqual(
      sent.map((s) => [s.page, s.eventIndex]),
      [
        [0n, 5n],
        [0n, 6n],
        [1n, 6n],
      ],
    )
    release!()
    await until(() => sent.length === 4)
    assert.deepEqual(sent[3], { page: 2n, eventIndex: 6n })
    // Page 0 again (its sent hash is looked up first).
    n.handleOutputs([page(0, 6n)])
    release!()
    await until(() => settled.length === 1 && sent.length === 5)
    assert.deepEqual(settled, [`0x${'ab'.repeat(32)}`])
    release!()
  }))

test('a second stop waits for the first to end (a signal while a failed start is being stopped)', () =>
  withNode(async (node, { lines }) => {
    let firstDone = false
    const first = node.stop().then(() => {
      firstDone = true
    })
    await node.stop()
    assert.ok(firstDone, 'the second stop ended before the first')
    await first
    assert.equal(lines.filter((l) => l.msg === 'Operator node stopped').length, 1)
  }))
