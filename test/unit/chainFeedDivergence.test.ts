/**
 * The chain feed when an event does not fit the view it is fed to: an event that differs from
 * the one applied at its index (a reorganisation deeper than the confirmations, or a forged
 * feed) is refused and the instance's view diverges, never kept in silence; one instance's
 * refusal does not stop the others, in the enclave's `chain` ecall nor in the watcher; an event
 * missing from the endpoint's logs makes the watcher read that instance's events again by
 * themselves (its id's topic, from its last accepted event), with pauses of a few seconds, for as
 * long as it lasts and without moving the cursor back, while the rest go on; an event that does
 * not extend the running hash is read again once, then that instance's events are withheld for a
 * short while.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { encodeAbiParameters, encodeEventTopics, type Hex, toHex } from 'viem'
import { poseManagerAbi } from '../../src/chain/abi.generated.ts'
import * as watcherModule from '../../src/chain/watcher.ts'
import {
  type ChainBatch,
  ManagerWatcher,
  type RefusalReport,
  type WatcherOptions,
} from '../../src/chain/watcher.ts'
import { ChainView } from '../../src/enclave/chainView.ts'
import type { Enclave } from '../../src/enclave/enclave.ts'
import {
  bytesToHex,
  type ChainEvent,
  type EnclaveOutput,
  EventKind,
  hexToBytes,
  nextEventHash,
  ProtocolError,
  randomBytes,
} from '../../src/protocol/index.ts'
import { EnclaveCallError } from '../../src/tee/enclaveHost.ts'
import { depositData, eventChain, newNode, restartNode, setupActive } from './harness.ts'

const CREATED = new Uint8Array(96)
const deposit = (amount: bigint) => depositData(new Uint8Array(20).fill(7), amount)

/** The refusal an ecall failed with: its code, and the instance and event it names. */
function refusal(e: unknown): { code: string; message: string; details: string } {
  assert.ok(e instanceof ProtocolError, `a ProtocolError, not ${e}`)
  return { code: e.code, message: e.shortMessage, details: e.details ?? '' }
}

async function chainCall(enclave: Enclave, events: ChainEvent[], blockNumber = 20n) {
  return enclave.call('chain', { blockNumber, timestamp: 1_000n + blockNumber, events })
}

describe('chain view: an event at an index already applied', () => {
  test('the same event is skipped; a different one is refused, naming instance and index, and the view diverges for good', () => {
    const ev = eventChain(9n)
    const e1 = ev(EventKind.Created, CREATED)
    const e2 = ev(EventKind.Deposit, deposit(1n))
    const e3 = ev(EventKind.Deposit, deposit(2n))
    const e4 = ev(EventKind.Deposit, deposit(3n))
    const fork = eventChain(9n)
    fork(EventKind.Created, CREATED)
    const f2 = fork(EventKind.Deposit, deposit(5n))

    const view = new ChainView(9n)
    for (const e of [e1, e2, e3]) assert.equal(view.apply(e), true)
    assert.equal(view.apply(e2), false, 'a replay of the applied event is skipped')
    assert.equal(view.apply(e3), false, 'also at the latest index')

    assert.throws(
      () => view.apply(f2),
      (e: unknown) => {
        const r = e as ProtocolError & { instance?: bigint; index?: bigint; halted?: boolean }
        assert.ok(r instanceof ProtocolError)
        assert.equal(r.code, 'STALE_EVENT')
        assert.equal(r.instance, 9n)
        assert.equal(r.index, 2n)
        assert.equal(r.halted, true)
        assert.match(r.shortMessage, /instance 9: event 2 differs from the event applied/)
        return true
      },
      'a different event at an applied index is refused',
    )
    assert.equal(view.index, 3n, 'nothing of it applied')
    assert.equal(view.diverged, 2n)
    assert.equal(view.deposits.length, 2)
    // The next event of the applied history is not taken either: the feed showed another one.
    assert.throws(
      () => view.apply(e4),
      (e: unknown) =>
        e instanceof ProtocolError &&
        e.code === 'STALE_EVENT' &&
        /diverged from this view at event 2/.test(e.shortMessage),
    )
    assert.equal(view.index, 3n)
    // Sealed and restored, the view still takes nothing.
    const restored = ChainView.fromJSON(view.toJSON())
    assert.equal(restored.diverged, 2n)
    assert.throws(() => restored.apply(e4), ProtocolError)
    assert.equal(restored.apply(e3), false, 'a replay of its latest event is still skipped')
  })

  test('the running hash applied with other contents is refused, without diverging', () => {
    const ev = eventChain(4n)
    const e1 = ev(EventKind.Created, CREATED)
    const e2 = ev(EventKind.Deposit, deposit(1n))
    const view = new ChainView(4n)
    view.apply(e1)
    view.apply(e2)
    assert.throws(
      () => view.apply({ ...e2, data: deposit(1_000n) }),
      (e: unknown) => e instanceof ProtocolError && e.code === 'STALE_EVENT',
    )
    assert.equal(view.diverged, undefined, 'the chain history is still the one applied')
    assert.equal(view.apply(ev(EventKind.Deposit, deposit(2n))), true)
    assert.throws(
      () => view.apply({ ...e1, index: 0n }),
      (e: unknown) => e instanceof ProtocolError && e.code === 'MALFORMED',
    )
    // Unchanged views seal as before: no `diverged` key.
    assert.equal('diverged' in (view.toJSON() as object), false)
  })
})

describe('enclave chain ecall: refusals per instance', () => {
  test('a replaced deposit at an applied index fails the ecall naming instance and index; the member stops acting for the instance, also after a restart', async () => {
    const { nodes, instance, ev } = await setupActive()
    const [n0] = nodes
    const n = n0!
    const dep = ev(EventKind.Deposit, deposit(10n))
    for (const m of nodes) await chainCall(m.enclave, [dep], 12n)
    // The chain as it became after a reorganisation deeper than the confirmations: the same
    // first three events, then another deposit at index 4.
    const fork = eventChain(instance)
    for (const e of ev.history().slice(0, 3)) fork(e.kind, e.data)
    const replaced = fork(EventKind.Deposit, deposit(99n))
    const next = fork(EventKind.Deposit, deposit(1n))
    assert.equal(replaced.index, dep.index)

    const err = await chainCall(n.enclave, [replaced, next], 13n).then(
      () => assert.fail('the replaced deposit was kept in silence'),
      (e: unknown) => refusal(e),
    )
    assert.equal(err.code, 'STALE_EVENT')
    assert.match(err.message, /instance 1: event 4 differs from the event applied at that index/)
    assert.match(err.details, /^refused instance=1 event=4 code=STALE_EVENT halted=1: /m)

    // Its enclave acts no more for the instance: no transaction, no peer message, no tick work.
    await assert.rejects(
      n.enclave.call('tx', { requestId: 'x', instance, box: randomBytes(200) }),
      (e: unknown) =>
        e instanceof ProtocolError &&
        e.code === 'STALE_EVENT' &&
        /diverged .* at event 4/.test(e.shortMessage),
    )
    const ticked = await n.enclave.call('tick', { now: Date.now() + 3_600_000 })
    assert.deepEqual(
      ticked.outputs.filter((o: EnclaveOutput) => o.type !== 'seal'),
      [],
      'a tick does nothing for it',
    )
    // The divergence was sealed: restarted from its sealed records, it still does not act.
    const r = await restartNode(n, instance)
    await assert.rejects(
      r.enclave.call('tx', { requestId: 'y', instance, box: randomBytes(200) }),
      (e: unknown) => e instanceof ProtocolError && e.code === 'STALE_EVENT',
    )
  })

  test("one instance's refused event does not stop the others in the same batch", async () => {
    const { nodes, instance, ev } = await setupActive()
    const n = nodes[0]!
    const other = eventChain(7n)
    other(EventKind.Created, CREATED)
    const second = other(EventKind.Deposit, deposit(3n))
    const dep = ev(EventKind.Deposit, deposit(10n))
    // Instance 7's first event never came (a log the endpoint left out): its second comes
    // before instance 1's deposit in the batch.
    const err = await chainCall(n.enclave, [second, dep], 12n).then(
      () => assert.fail('an event out of order was taken'),
      (e: unknown) => refusal(e),
    )
    const status = (await n.enclave.call('status', {})).result as {
      instances: Array<{ instance: bigint; eventIndex: bigint }>
    }
    assert.equal(
      status.instances.find((i) => i.instance === instance)?.eventIndex,
      dep.index,
      "instance 1's deposit was applied",
    )
    assert.equal(err.code, 'OUT_OF_ORDER')
    assert.match(err.details, /^refused instance=7 event=2 code=OUT_OF_ORDER halted=0: /m)
    // Instance 7 is not stopped: once its first event comes, it follows.
    await chainCall(n.enclave, [...other.history(), dep], 13n)
  })

  test('the refusal crosses the enclave host as code, message and details the watcher reads', async () => {
    const feedRefusals = (
      watcherModule as { feedRefusals?: (e: unknown) => { refused: unknown[]; unlisted: number } }
    ).feedRefusals
    assert.equal(typeof feedRefusals, 'function', 'the watcher reads refusals')
    const n = await newNode()
    const events: ChainEvent[] = []
    for (let id = 1n; id <= 15n; id++) {
      const c = eventChain(id)
      c(EventKind.Created, CREATED)
      events.push(c(EventKind.Deposit, deposit(id)))
    }
    const e = await chainCall(n.enclave, events).then(
      () => assert.fail('events out of order were taken'),
      (x: unknown) => x,
    )
    // As the host receives it: the error object, rebuilt, inside an EnclaveCallError.
    const wire = ProtocolError.fromObject((e as ProtocolError).toObject())
    const host = new EnclaveCallError('chain', wire, [])
    const { refused, unlisted } = feedRefusals!(host)
    assert.equal(refused.length, 12)
    assert.equal(unlisted, 3)
    assert.deepEqual(refused[0], {
      instance: 1n,
      index: 2n,
      code: 'OUT_OF_ORDER',
      halted: false,
      reason: 'instance 1: first event fed is 2, expected 1',
    })
    assert.deepEqual(feedRefusals!(new ProtocolError('UNAVAILABLE', 'enclave gone')), {
      refused: [],
      unlisted: 0,
    })
  })
})

type ForkName = 'a' | 'b'
type Placed = { block: bigint; event: ChainEvent }

/** An `eth_getLogs` request: its blocks, and the instance id its topic asks for, if any. */
type LogRequest = { fromBlock: bigint; toBlock: bigint; id?: bigint }

/**
 * A fake public client over a chain whose blocks up to `common` are shared by forks `a` and
 * `b`; `state.fork` says which one it serves, and `state.omit` which logs its `eth_getLogs`
 * leaves out (as an endpoint that answers incompletely). A request for one instance's
 * `InstanceEvent`s (`args.id`) gets only that instance's; each request is kept in `requests`.
 */
function chainClient(state: {
  height: bigint
  common: bigint
  fork: ForkName
  events: Record<ForkName, Placed[]>
  omit: (p: Placed) => boolean
  requests?: LogRequest[]
}) {
  const hashOf = (f: ForkName, n: bigint): Hex =>
    `0x${(n <= state.common ? 'c' : f).repeat(2)}${n.toString(16).padStart(62, '0')}`
  const block = (n: bigint) => ({
    number: n,
    hash: hashOf(state.fork, n),
    parentHash: n === 0n ? toHex(0, { size: 32 }) : hashOf(state.fork, n - 1n),
    timestamp: 1_000n + n,
  })
  return {
    chain: { id: 31337 },
    getBlock: async (a: { blockTag?: 'latest'; blockNumber?: bigint }) =>
      block(a.blockTag === 'latest' ? state.height : a.blockNumber!),
    getLogs: async (a: { fromBlock: bigint; toBlock: bigint; args?: { id?: bigint } }) => {
      const id = a.args?.id
      state.requests?.push({
        fromBlock: a.fromBlock,
        toBlock: a.toBlock,
        ...(id === undefined ? {} : { id }),
      })
      return state.events[state.fork]
        .filter(
          (p) =>
            p.block >= a.fromBlock &&
            p.block <= a.toBlock &&
            (id === undefined || p.event.instance === id) &&
            !state.omit(p),
        )
        .map((p) => ({
          blockNumber: p.block,
          blockHash: hashOf(state.fork, p.block),
          topics: encodeEventTopics({
            abi: poseManagerAbi,
            eventName: 'InstanceEvent',
            args: { id: p.event.instance, index: p.event.index },
          }),
          data: encodeAbiParameters(
            [{ type: 'uint8' }, { type: 'bytes' }, { type: 'bytes32' }],
            [p.event.kind, bytesToHex(p.event.data), bytesToHex(p.event.hash)],
          ),
        }))
    },
  }
}

/** A watcher over `client` that feeds `enclave` as the operator does, on a clock of its own. */
function feedingWatcher(client: unknown, enclave: Enclave, more: Partial<WatcherOptions> = {}) {
  const clock = { ms: 1_000_000 }
  const reports: Array<
    RefusalReport & { attempt?: number; withheldEvents?: number; fromBlock?: bigint }
  > = []
  const errors: unknown[] = []
  /** The batches offered, in order. */
  const batches: ChainBatch[] = []
  const w = new ManagerWatcher({
    client: client as never,
    manager: `0x${'42'.repeat(20)}`,
    maxRange: 2n,
    refusalBackoffMs: 1_000,
    now: () => clock.ms,
    onBatch: async (b: ChainBatch) => {
      batches.push(b)
      await enclave.call('chain', {
        blockNumber: b.blockNumber,
        timestamp: b.timestamp,
        events: b.instanceEvents,
      })
    },
    onRefused: (r) => reports.push(r),
    onError: (e) => errors.push(e),
    ...more,
  })
  /** Polls (errors count, as the watcher's loop reports them) with the clock moved on past any pause. */
  const poll = async (times = 1) => {
    for (let k = 0; k < times; k++) {
      clock.ms += 60_000
      await w.poll().catch((e) => errors.push(e))
    }
  }
  return { w, clock, reports, errors, poll, batches }
}

/** The index of the last event `enclave`'s view of `instance` applied (0 before any). */
function viewAt(enclave: Enclave, instance: bigint): bigint {
  const views = (enclave as unknown as { views: Map<bigint, { index: bigint }> }).views
  return views.get(instance)?.index ?? 0n
}

/** Whether `enclave`'s view of an instance is at `e.index - 1`: `e` is taken as the next event. */
async function takesNext(enclave: Enclave, e: ChainEvent): Promise<boolean> {
  return chainCall(enclave, [e], 100n).then(
    () => true,
    () => false,
  )
}

describe('watcher feeding an enclave', () => {
  test('an event left out by the endpoint: the instance is read again from its last accepted event, and nothing stalls', async () => {
    const n = await newNode()
    const a = eventChain(1n)
    const b = eventChain(2n)
    const [a1, a2, a3] = [
      a(EventKind.Created, CREATED),
      a(EventKind.Deposit, deposit(1n)),
      a(EventKind.Deposit, deposit(2n)),
    ]
    const [b1, b2] = [b(EventKind.Created, CREATED), b(EventKind.Deposit, deposit(3n))]
    const events: Placed[] = [
      { block: 1n, event: a1 },
      { block: 2n, event: b1 },
      { block: 3n, event: a2 },
      { block: 5n, event: a3 },
      { block: 6n, event: b2 },
    ]
    // The first answer covering block 3 leaves instance 1's second event out.
    let leftOut = 0
    const state = {
      height: 8n,
      common: 8n,
      fork: 'a' as ForkName,
      events: { a: events, b: events },
      omit: (p: Placed) => p.event === a2 && leftOut++ === 0,
    }
    const { w, reports, errors, poll } = feedingWatcher(chainClient(state), n.enclave)
    await poll(5)
    assert.equal(w.nextBlock, 9n, 'the watcher went past the gap')
    assert.deepEqual(errors, [], 'no range failed as a whole')
    assert.deepEqual(
      reports.map((r) => [r.action, r.instance, r.index, r.code, r.fromBlock, r.attempt]),
      [['reread', 1n, 3n, 'OUT_OF_ORDER', 1n, 1]],
      'read again once, from the block of instance 1’s first event',
    )
    assert.ok(await takesNext(n.enclave, a(EventKind.Deposit, deposit(4n))), 'instance 1 is level')
    assert.ok(await takesNext(n.enclave, b(EventKind.Deposit, deposit(5n))), 'instance 2 is level')
  })

  test('an event the endpoint leaves out for a while (a lagging backend): that instance alone is read again, with pauses of at most 5 s, never withheld; the others go on; it catches up within seconds once the endpoint has the event', async () => {
    const n = await newNode()
    const a = eventChain(1n)
    const b = eventChain(2n)
    const [a1, a2, a3] = [
      a(EventKind.Created, CREATED),
      a(EventKind.Deposit, deposit(1n)),
      a(EventKind.Deposit, deposit(2n)),
    ]
    const events: Placed[] = [
      { block: 1n, event: a1 },
      { block: 2n, event: b(EventKind.Created, CREATED) },
      { block: 3n, event: a2 },
      { block: 5n, event: a3 },
    ]
    let lagging = true
    const requests: LogRequest[] = []
    const state = {
      height: 6n,
      common: 1_000n,
      fork: 'a' as ForkName,
      events: { a: events, b: events },
      omit: (p: Placed) => p.event === a2 && lagging,
      requests,
    }
    const { w, clock, reports, errors } = feedingWatcher(chainClient(state), n.enclave)
    await w.poll()
    assert.equal(w.nextBlock, 7n)
    assert.equal(viewAt(n.enclave, 1n), 1n, 'instance 1 waits for its second event')
    assert.equal(viewAt(n.enclave, 2n), 1n)
    // 40 s of the endpoint lagging, a block a second and a deposit of instance 2 every other one:
    // each is taken at the poll that reads its block, and the cursor never moves back.
    const rereadAt: number[] = []
    for (let s = 1; s <= 40; s++) {
      clock.ms += 1_000
      state.height++
      if (s % 2 === 0)
        events.push({ block: state.height, event: b(EventKind.Deposit, deposit(1n)) })
      const before = requests.length
      await w.poll()
      if (requests.slice(before).some((r) => r.id === 1n && r.fromBlock === 1n)) rereadAt.push(s)
      assert.equal(w.nextBlock, state.height + 1n, `second ${s}: the cursor follows the head`)
      assert.equal(
        viewAt(n.enclave, 2n),
        b.history().at(-1)!.index,
        `second ${s}: instance 2 took its events`,
      )
    }
    assert.equal(viewAt(n.enclave, 1n), 1n)
    assert.ok(rereadAt.length >= 9, `read again ${rereadAt.length} times in 40 s`)
    for (let k = 1; k < rereadAt.length; k++)
      assert.ok(rereadAt[k]! - rereadAt[k - 1]! <= 5, `pauses of at most 5 s: ${rereadAt}`)
    assert.ok(
      requests.every((r) => r.id === undefined || r.id === 1n),
      'only instance 1 is read by itself',
    )
    assert.deepEqual(
      reports.map((r) => [r.action, r.instance, r.index, r.code, r.fromBlock, r.attempt]),
      [
        ['reread', 1n, 3n, 'OUT_OF_ORDER', 1n, 1],
        ['reread', 1n, 3n, 'OUT_OF_ORDER', 1n, 2],
        ['reread', 1n, 3n, 'OUT_OF_ORDER', 1n, 3],
      ],
      'never withheld; the first readings again are reported, then only every 12th',
    )
    assert.deepEqual(errors, [])

    // The backend caught up: instance 1 is level within the longest pause.
    lagging = false
    let caughtUpAfter: number | undefined
    for (let s = 1; s <= 6 && caughtUpAfter === undefined; s++) {
      clock.ms += 1_000
      await w.poll()
      if (viewAt(n.enclave, 1n) === a3.index) caughtUpAfter = s
    }
    assert.ok(caughtUpAfter !== undefined, 'instance 1 caught up within 6 s')
    // From then on its events come with the ranges.
    state.height++
    events.push({ block: state.height, event: a(EventKind.Deposit, deposit(3n)) })
    clock.ms += 1_000
    await w.poll()
    assert.equal(viewAt(n.enclave, 1n), 4n)
    assert.ok(
      reports.every((r) => r.action === 'reread'),
      'never withheld',
    )
  })

  test("a refused instance whose last accepted event is far back is read again by itself, on its id's topic: the cursor does not move back and no other instance's event is offered again", async () => {
    const n = await newNode()
    const a = eventChain(1n)
    const b = eventChain(2n)
    const a1 = a(EventKind.Created, CREATED)
    const events: Placed[] = [
      { block: 1n, event: a1 },
      { block: 2n, event: b(EventKind.Created, CREATED) },
    ]
    // Instance 1 quiet for 400 blocks while instance 2 is busy.
    for (let block = 5n; block <= 400n; block += 5n)
      events.push({ block, event: b(EventKind.Deposit, deposit(block)) })
    const a2 = a(EventKind.Deposit, deposit(1n))
    const a3 = a(EventKind.Deposit, deposit(2n))
    events.push({ block: 401n, event: a2 }, { block: 403n, event: a3 })
    // The first two answers that cover block 401 leave instance 1's event out.
    let leftOut = 0
    const requests: LogRequest[] = []
    const state = {
      height: 400n,
      common: 10_000n,
      fork: 'a' as ForkName,
      events: { a: events, b: events },
      omit: (p: Placed) => p.event === a2 && leftOut++ < 2,
      requests,
    }
    const { w, clock, reports, errors, batches } = feedingWatcher(chainClient(state), n.enclave, {
      maxRange: 10n,
    })
    await w.poll()
    assert.equal(w.nextBlock, 401n)
    state.height = 410n
    const cursors: bigint[] = []
    /** Per poll, the requests that read instance 1 by itself. */
    const rereadsPerPoll: number[] = []
    for (let s = 0; s < 10; s++) {
      const before = requests.length
      await w.poll()
      rereadsPerPoll.push(requests.slice(before).filter((r) => r.id !== undefined).length)
      cursors.push(w.nextBlock)
      clock.ms += 1_000
      state.height++
      if (s === 2) events.push({ block: state.height, event: b(EventKind.Deposit, deposit(1n)) })
    }
    assert.deepEqual(errors, [])
    assert.equal(viewAt(n.enclave, 1n), a3.index, 'instance 1 caught up')
    assert.equal(viewAt(n.enclave, 2n), b.history().at(-1)!.index, 'instance 2 is level')
    assert.deepEqual(
      cursors,
      cursors.map((_, k) => 411n + BigInt(k)),
      'the cursor only went forwards',
    )
    // Every block was read once for all instances: the ranges follow each other.
    const ranges = requests.filter((r) => r.id === undefined)
    for (let k = 1; k < ranges.length; k++)
      assert.equal(ranges[k]!.fromBlock, ranges[k - 1]!.toBlock + 1n, 'no range read twice')
    // Instance 1 alone was read again from its last accepted event, twice, in ranges of 10 and
    // at most 32 of them a poll (a reading of its 41 ranges takes two polls).
    const rereads = requests.filter((r) => r.id !== undefined)
    assert.ok(rereads.every((r) => r.id === 1n && r.toBlock - r.fromBlock < 10n))
    assert.equal(rereads.filter((r) => r.fromBlock === 1n).length, 2)
    assert.equal(Math.max(...rereadsPerPoll), 32, `${rereadsPerPoll}`)
    assert.deepEqual(
      reports.map((r) => [r.action, r.instance, r.index, r.code, r.fromBlock, r.attempt]),
      [
        ['reread', 1n, 3n, 'OUT_OF_ORDER', 1n, 1],
        ['reread', 1n, 3n, 'OUT_OF_ORDER', 1n, 2],
      ],
    )
    // No event of instance 2 was offered twice.
    const offered = batches.flatMap((x) => x.instanceEvents).filter((e) => e.instance === 2n)
    assert.equal(offered.length, b.history().length)
    assert.equal(new Set(offered.map((e) => e.index)).size, offered.length)
  })

  test('a request that fails while an instance is read again is reported; the instance is read again after a pause, and the others go on', async () => {
    const n = await newNode()
    const a = eventChain(1n)
    const b = eventChain(2n)
    const a1 = a(EventKind.Created, CREATED)
    const a2 = a(EventKind.Deposit, deposit(1n))
    const a3 = a(EventKind.Deposit, deposit(2n))
    const events: Placed[] = [
      { block: 1n, event: a1 },
      { block: 2n, event: b(EventKind.Created, CREATED) },
      { block: 3n, event: a2 },
      { block: 5n, event: a3 },
    ]
    let leftOut = 0
    const state = {
      height: 6n,
      common: 1_000n,
      fork: 'a' as ForkName,
      events: { a: events, b: events },
      omit: (p: Placed) => p.event === a2 && leftOut++ === 0,
    }
    const client = chainClient(state)
    let failures = 1
    const failing = {
      ...client,
      getLogs: async (q: { fromBlock: bigint; toBlock: bigint; args?: { id?: bigint } }) => {
        if (q.args?.id !== undefined && failures-- > 0) throw new Error('endpoint unavailable')
        return client.getLogs(q)
      },
    }
    const { w, clock, errors } = feedingWatcher(failing, n.enclave)
    await w.poll()
    clock.ms += 1_000
    state.height++
    events.push({ block: state.height, event: b(EventKind.Deposit, deposit(3n)) })
    await w.poll()
    assert.deepEqual(
      errors.map((e) => (e as Error).message),
      ['endpoint unavailable'],
    )
    assert.equal(viewAt(n.enclave, 2n), 2n, 'instance 2 went on')
    assert.equal(viewAt(n.enclave, 1n), 1n)
    clock.ms += 1_000
    await w.poll()
    assert.equal(viewAt(n.enclave, 1n), 3n, 'read again after the pause, and level')
  })

  test('an event that does not extend the running hash is read again once; refused again, its instance is withheld for 30 s (not longer), reported, then read again, and catches up', async () => {
    const n = await newNode()
    const a = eventChain(1n)
    const b = eventChain(2n)
    const a1 = a(EventKind.Created, CREATED)
    const a2 = a(EventKind.Deposit, deposit(1n))
    // A garbled answer: the deposit's amount is not the one its hash commits to.
    const garbled: Placed = { block: 3n, event: { ...a2, data: deposit(1_000n) } }
    const events: Placed[] = [
      { block: 1n, event: a1 },
      { block: 2n, event: b(EventKind.Created, CREATED) },
      garbled,
      { block: 4n, event: b(EventKind.Deposit, deposit(2n)) },
    ]
    const state = {
      height: 4n,
      common: 1_000n,
      fork: 'a' as ForkName,
      events: { a: events, b: events },
      omit: () => false,
    }
    const { w, clock, reports } = feedingWatcher(chainClient(state), n.enclave)
    await w.poll()
    clock.ms += 1_000
    await w.poll()
    assert.deepEqual(
      reports.map((r) => [r.action, r.instance, r.index, r.code, r.halted, r.attempt]),
      [
        ['reread', 1n, 2n, 'STALE_EVENT', false, 1],
        ['withheld', 1n, 2n, 'STALE_EVENT', false, undefined],
      ],
      'read again once, then withheld',
    )
    assert.equal(viewAt(n.enclave, 2n), 2n, 'instance 2 went on')
    // Its events are withheld from the batches (and each such batch reported) for 30 s.
    state.height = 6n
    events.push({ block: 5n, event: a(EventKind.Deposit, deposit(2n)) })
    clock.ms += 1_000
    await w.poll()
    assert.equal(reports.at(-1)?.action, 'withheld')
    assert.equal(reports.at(-1)?.withheldEvents, 1)
    // The endpoint answers right again; 30 s after the withholding, instance 1 catches up.
    events[events.indexOf(garbled)] = { block: 3n, event: a2 }
    clock.ms += 28_000
    await w.poll()
    assert.equal(viewAt(n.enclave, 1n), 1n, 'still withheld 29 s after')
    clock.ms += 1_000
    await w.poll()
    assert.equal(viewAt(n.enclave, 1n), 3n, 'read again and level')
    assert.equal(w.nextBlock, 7n)
  })

  test('a reorganisation deeper than the confirmations: the differing event is refused and its instance withheld for good; the other instances go on', async () => {
    const n = await newNode()
    const a = eventChain(1n)
    const b = eventChain(2n)
    const a1 = a(EventKind.Created, CREATED)
    const a2 = a(EventKind.Deposit, deposit(1n))
    const a3 = a(EventKind.Deposit, deposit(2n))
    const b1 = b(EventKind.Created, CREATED)
    const b2 = b(EventKind.Deposit, deposit(3n))
    const b3 = b(EventKind.Deposit, deposit(4n))
    // Fork b replaces instance 1's deposits from block 3 on (and adds a fourth event).
    const f = eventChain(1n)
    f(EventKind.Created, CREATED)
    const f2 = f(EventKind.Deposit, deposit(100n))
    const f3 = f(EventKind.Deposit, deposit(200n))
    const f4 = f(EventKind.Deposit, deposit(300n))
    const state = {
      height: 8n,
      common: 2n,
      fork: 'a' as ForkName,
      events: {
        a: [
          { block: 1n, event: a1 },
          { block: 2n, event: b1 },
          { block: 3n, event: a2 },
          { block: 5n, event: a3 },
          { block: 6n, event: b2 },
        ],
        b: [
          { block: 1n, event: a1 },
          { block: 2n, event: b1 },
          { block: 3n, event: f2 },
          { block: 4n, event: f3 },
          { block: 6n, event: b2 },
          { block: 7n, event: f4 },
          { block: 8n, event: b3 },
        ],
      },
      omit: () => false,
    }
    const { w, reports, errors, poll } = feedingWatcher(chainClient(state), n.enclave)
    await poll(1)
    assert.equal(w.nextBlock, 9n)
    state.fork = 'b'
    await poll(3)
    assert.equal(w.nextBlock, 9n, 'the feed did not stall')
    assert.deepEqual(errors, [], 'no range failed as a whole')
    assert.equal(w.reorgs, 1)
    assert.deepEqual(
      reports.map((r) => [r.action, r.instance, r.index, r.code, r.halted, r.withheldEvents]),
      [
        ['withheld', 1n, 2n, 'STALE_EVENT', true, 0],
        ['withheld', 1n, 2n, 'STALE_EVENT', true, 1],
        ['withheld', 1n, 2n, 'STALE_EVENT', true, 1],
      ],
      'refused at its first differing event, then withheld from each batch that had its events',
    )
    assert.ok(
      await takesNext(n.enclave, b(EventKind.Deposit, deposit(5n))),
      'instance 2 took every event of the new fork',
    )
    assert.equal(b3.index, 3n)
    assert.equal(
      await takesNext(n.enclave, a(EventKind.Deposit, deposit(9n))),
      false,
      'instance 1 takes no further event',
    )
  })
})

test('a Refilled refused for a slot outside the pool changes no slot of the view (a review: the state was then boxed to a key the host chose)', async () => {
  const { instance, ev, exec } = await setupActive()
  const attacker = randomBytes(20)
  const attackerKey = randomBytes(32)
  // Slot 1 is a live watchdog's; slot 9 is outside the pool of three.
  const data = hexToBytes(
    encodeAbiParameters(
      [{ type: 'uint8[]' }, { type: 'address[]' }, { type: 'bytes32[]' }],
      [
        [1, 9],
        [toHex(attacker), toHex(attacker)],
        [toHex(attackerKey), toHex(attackerKey)],
      ],
    ),
  )
  const last = ev.history().at(-1)!
  const index = last.index + 1n
  const kind = EventKind.Refilled
  const hash = nextEventHash({ prevHash: last.hash, instance, index, kind, data })
  const at = { blockNumber: 12n, timestamp: 1002n }
  await assert.rejects(
    exec.enclave.call('chain', { ...at, events: [{ instance, index, kind, data, hash }] }),
    /slot outside the pool/,
  )
  const view = (exec.enclave as unknown as { views: Map<bigint, ChainView> }).views.get(instance)!
  assert.notDeepEqual(view.signers[1], attacker, 'the first slot was written before the refusal')
  // The genuine next event applies, and nothing is sent to the key the host chose.
  const genuine = ev(EventKind.Deposit, depositData(new Uint8Array(20).fill(7), 1n))
  const r = await exec.enclave.call('chain', {
    blockNumber: 13n,
    timestamp: 1003n,
    events: [genuine],
  })
  assert.deepEqual(view.hash, genuine.hash)
  assert.ok(
    !r.outputs.some((o) => o.type === 'send' && toHex(o.to) === toHex(attacker)),
    'the whole state went to the host',
  )
})
