/**
 * The chain clock transactions run at (decision 0032): block number and time come from each
 * member's operator, so the executor runs at no later clock than every watchdog's acks report,
 * a promoted member at no earlier one than its predecessor's last update, and an idle watchdog
 * reports a newer clock on its own. In process:
 * three enclaves wired by the harness, a contract that returns and stores `block.timestamp`
 * and `block.number`.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  EventKind,
  generateSecretKey,
  INSTANCE_ADDRESS,
  secretKeyToAddress,
  type Tx,
  wordToUint,
} from '../../src/protocol/index.ts'
import {
  answerOf,
  executorChallengedData,
  memberRemovedData,
  type Node,
  pump,
  sentTo,
  setupActive,
  txBox,
  viewBox,
} from './harness.ts'

/**
 * Init code of a contract whose every call stores `block.timestamp` in slot 0 and
 * `block.number` in slot 1 and returns both: runtime `TIMESTAMP PUSH0 SSTORE NUMBER PUSH1 1
 * SSTORE TIMESTAMP PUSH0 MSTORE NUMBER PUSH1 32 MSTORE PUSH1 64 PUSH0 RETURN`, copied out by
 * `PUSH1 18 PUSH1 10 PUSH0 CODECOPY PUSH1 18 PUSH0 RETURN`.
 */
const CLOCK_INIT = Uint8Array.from(
  // 10 bytes of init code, then the 18 of the runtime.
  Buffer.from('6012600a5f3960125ff3425f5543600155425f524360205260405ff3', 'hex'),
)

type Setup = Awaited<ReturnType<typeof setupActive>>

const clockOf = (returnData: Uint8Array) => ({
  timestamp: wordToUint(returnData.subarray(0, 32)),
  number: wordToUint(returnData.subarray(32, 64)),
})

/** A call of the clock contract by a fresh account, through `exec`; returns what it saw. */
async function callClock(s: Setup, exec: Node, id: string, lost = (_: unknown) => false) {
  const key = generateSecretKey()
  const tx: Tx = {
    instance: s.instance,
    from: secretKeyToAddress(key),
    nonce: 0n,
    to: INSTANCE_ADDRESS,
    value: 0n,
    data: new Uint8Array(),
    gasLimit: 100_000n,
  }
  const { box, responseKey } = txBox(s, tx, key)
  const r = await exec.enclave.call('tx', { requestId: id, instance: s.instance, box })
  await pump(s.nodes, r.outputs, s.answers, [], true, lost)
  return { responseKey, receipt: () => answerOf(s.answers, id, responseKey) }
}

async function clockOfCall(s: Setup, exec: Node, id: string) {
  const a = (await callClock(s, exec, id)).receipt()
  assert.equal(a.kind, 'receipt')
  if (a.kind !== 'receipt') throw new Error('unreachable')
  assert.equal(a.receipt.status, 'success')
  return clockOf(a.receipt.returnData)
}

/** A signed view call of the clock contract by a fresh account, boxed to the contract's key. */
const clockViewBox = (s: Setup) =>
  viewBox(s, generateSecretKey(), INSTANCE_ADDRESS, new Uint8Array())

/** A view call of the clock contract through `exec`; returns what it saw. */
async function clockOfView(s: Setup, exec: Node, id: string) {
  const { box, responseKey } = clockViewBox(s)
  const r = await exec.enclave.call('view', { requestId: id, instance: s.instance, box })
  await pump(s.nodes, r.outputs, s.answers)
  const a = answerOf(s.answers, id, responseKey)
  assert.equal(a.kind, 'view')
  return clockOf(a.kind === 'view' ? a.returnData : new Uint8Array(64))
}

/** Feeds `n` a chain head with no events (its operator's word). */
const feedHead = (n: Node, blockNumber: bigint, timestamp: bigint) =>
  n.enclave.call('chain', { blockNumber, timestamp, events: [] })

/** Ticks each of `ns` at `now`, routing their outputs. */
async function tickAll(s: Setup, ns: Node[], now: number) {
  for (const n of ns) {
    const t = await n.enclave.call('tick', { now })
    await pump(s.nodes, t.outputs, s.answers, [], true)
  }
}

/**
 * Removes the executor n0 (slot 0): n1 is promoted while its host feeds the removal at a head far
 * ahead (9000 at 888,888) and n2's at 30/1100. Returns the filter that loses everything sent to
 * n2 (the handover included) until the test stops applying it.
 */
async function promoteN1(s: Setup) {
  const [n0, n1, n2] = s.nodes as [Node, Node, Node]
  const removed = s.ev(EventKind.MemberRemoved, memberRemovedData(0n, n0.signer, 1n))
  const lost = (o: unknown) => sentTo(n2)(o as never)
  for (const [n, blockNumber, timestamp] of [
    [n1, 9_000n, 888_888n],
    [n2, 30n, 1100n],
  ] as const) {
    const c = await n.enclave.call('chain', { blockNumber, timestamp, events: [removed] })
    await pump(s.nodes, c.outputs, s.answers, [], true, lost)
  }
  return lost
}

/** Ticks `exec` (everything delivered) until request `id`'s receipt came; returns its clock. */
async function clockOfReceipt(
  s: Setup,
  exec: Node,
  clock: { now: number },
  id: string,
  call: Awaited<ReturnType<typeof callClock>>,
) {
  for (let i = 0; i < 3 && !s.answers.has(id); i++) {
    clock.now += 1_500
    await tickAll(s, [exec], clock.now)
  }
  const a = call.receipt()
  assert.equal(a.kind, 'receipt')
  return clockOf(a.kind === 'receipt' ? a.receipt.returnData : new Uint8Array(64))
}

test("an executor's host that pushes its clock ahead moves transactions and views only as far as every watchdog's operator reports", async () => {
  const clock = { now: 5_000_000 }
  const s = await setupActive(() => clock.now, { initCode: CLOCK_INIT })
  const [n0, n1, n2] = s.nodes as [Node, Node, Node]
  // Every operator fed block 11 at 1001 (setupActive) after the watchdogs acked genesis at
  // 10/1000: until they report more, transactions run there.
  assert.deepEqual(await clockOfCall(s, n0, 'a'), { timestamp: 1000n, number: 10n })
  clock.now += 1_000
  await tickAll(s, [n1, n2], clock.now)
  assert.deepEqual(await clockOfCall(s, n0, 'b'), { timestamp: 1001n, number: 11n })
  // The executor's host feeds a head far ahead; the watchdogs' operators are at 12/1013.
  await feedHead(n0, 5_000n, 999_999n)
  for (const n of [n1, n2]) await feedHead(n, 12n, 1013n)
  assert.deepEqual(await clockOfCall(s, n0, 'c'), { timestamp: 1001n, number: 11n })
  clock.now += 1_000
  await tickAll(s, [n1, n2], clock.now)
  assert.deepEqual(await clockOfCall(s, n0, 'd'), { timestamp: 1013n, number: 12n })
  assert.deepEqual(await clockOfView(s, n0, 'v1'), { timestamp: 1013n, number: 12n })
  // Idle watchdogs report a newer clock on their own, once a second at most: each at its own.
  await feedHead(n1, 20n, 1100n)
  await feedHead(n2, 15n, 1050n)
  clock.now += 500
  await tickAll(s, [n1, n2], clock.now)
  assert.deepEqual(await clockOfView(s, n0, 'v2'), { timestamp: 1013n, number: 12n })
  clock.now += 1_000
  await tickAll(s, [n1, n2], clock.now)
  // The lower of the two reports (n2's), not the executor's host's word.
  assert.deepEqual(await clockOfCall(s, n0, 'e'), { timestamp: 1050n, number: 15n })
  // The lower report moves on: the clock follows it, still below n1's.
  await feedHead(n2, 16n, 1060n)
  clock.now += 1_000
  await tickAll(s, [n2], clock.now)
  assert.deepEqual(await clockOfCall(s, n0, 'f'), { timestamp: 1060n, number: 16n })
})

test("a member promoted while its host pushes its clock ahead runs at its predecessor's last clock until a watchdog reports", async () => {
  const clock = { now: 6_000_000 }
  const s = await setupActive(() => clock.now, { initCode: CLOCK_INIT })
  const [n0, n1] = s.nodes as [Node, Node]
  // The watchdogs acked genesis at 10/1000, and have reported nothing newer.
  assert.deepEqual(await clockOfCall(s, n0, 'a'), { timestamp: 1000n, number: 10n })
  // n0 is removed; n1's host feeds the removal at a head far ahead, n2's at 30/1100. The
  // handover to n2 is lost for now.
  const lost = await promoteN1(s)
  // Run before n2 reports anything to n1: at the last update's clock.
  const early = await callClock(s, n1, 'early', lost)
  // The handover and the update reach n2 (sent again), which acks them at its clock.
  assert.deepEqual(await clockOfReceipt(s, n1, clock, 'early', early), {
    timestamp: 1000n,
    number: 10n,
  })
  // n2's acks now report 30/1100: the next transaction runs there, not at n1's host's word.
  assert.deepEqual(await clockOfCall(s, n1, 'later'), { timestamp: 1100n, number: 30n })
})

test('a member promoted before any transaction ran (no clock yet) runs nothing until a watchdog reports, however far ahead its host pushes its clock', async () => {
  const clock = { now: 7_000_000 }
  const s = await setupActive(() => clock.now, { initCode: CLOCK_INIT })
  const n1 = s.nodes[1]!
  const lost = await promoteN1(s)
  // A view is refused as not ready (the SDK asks again).
  const { box, responseKey } = clockViewBox(s)
  const v = await n1.enclave.call('view', { requestId: 'v', instance: s.instance, box })
  await pump(s.nodes, v.outputs, s.answers, [], true, lost)
  const refused = answerOf(s.answers, 'v', responseKey)
  assert.equal(refused.kind === 'rejected' && refused.error.code, 'NOT_READY')
  // The same view as a challenge on-chain gets the liveness answer (a sealed NOT_READY would
  // read as the view's final answer), so its caller asks again.
  const challenge = s.ev(EventKind.ExecutorChallenged, executorChallengedData(box))
  const c = await n1.enclave.call('chain', {
    blockNumber: 31n,
    timestamp: 1110n,
    events: [challenge],
  })
  await pump(s.nodes, c.outputs, s.answers, [], true, lost)
  const answers = c.outputs.flatMap((o) => (o.type === 'respondExecutor' ? [o.response] : []))
  assert.equal(answers.length, 1)
  assert.equal(new TextDecoder().decode(answers[0]!.subarray(0, 13)), 'POSE-ALIVE-v1')
  // A transaction comes later than ackTimeoutMs after the view: the view started no wait, so it
  // waits for the reports too.
  clock.now += 6_000
  const early = await callClock(s, n1, 'early', lost)
  assert.ok(!s.answers.has('early'))
  // The handover reaches n2, whose ack reports 30/1100: the transaction runs there.
  assert.deepEqual(await clockOfReceipt(s, n1, clock, 'early', early), {
    timestamp: 1100n,
    number: 30n,
  })
})

test('a member promoted before any transaction ran, with a watchdog silent to its handover, runs the waiting transaction after ackTimeoutMs without that bound and gets the watchdog challenged', async () => {
  const clock = { now: 8_000_000 }
  const s = await setupActive(() => clock.now, { initCode: CLOCK_INIT })
  const [n0, n1, n2] = s.nodes as [Node, Node, Node]
  const removed = s.ev(EventKind.MemberRemoved, memberRemovedData(0n, n0.signer, 1n))
  const down = (o: unknown) => sentTo(n2)(o as never)
  for (const n of [n1, n2]) {
    const c = await n.enclave.call('chain', {
      blockNumber: 30n,
      timestamp: 1100n,
      events: [removed],
    })
    await pump(s.nodes, c.outputs, s.answers, [], true, down)
  }
  const waiting = await callClock(s, n1, 'waiting', down)
  // n2 never answers: after ackTimeoutMs the transaction runs without its bound (n1's own
  // clock, 30/1100, as with no watchdog), and its late ack gets it challenged on-chain.
  const challenges: bigint[] = []
  for (let i = 0; i < 6 && challenges.length === 0; i++) {
    clock.now += 6_000
    const t = await n1.enclave.call('tick', { now: clock.now })
    for (const o of t.outputs) if (o.type === 'challengeWatchdogs') challenges.push(o.memberMask)
    await pump(s.nodes, t.outputs, s.answers, [], true, down)
  }
  assert.deepEqual(challenges, [1n << 2n], 'n2 is challenged on-chain')
  // n2 is removed: the receipt is released.
  const gone = s.ev(EventKind.MemberRemoved, memberRemovedData(2n, n2.signer, 1n))
  const g = await n1.enclave.call('chain', { blockNumber: 40n, timestamp: 1200n, events: [gone] })
  await pump(s.nodes, g.outputs, s.answers, [], true, down)
  const a = waiting.receipt()
  assert.equal(a.kind, 'receipt')
  assert.deepEqual(clockOf(a.kind === 'receipt' ? a.receipt.returnData : new Uint8Array(64)), {
    timestamp: 1100n,
    number: 30n,
  })
})

test('a clock run without a silent watchdog after the wait is not kept as the floor: the executor does not go back before it, and a member promoted after it is bounded again', async () => {
  const clock = { now: 9_000_000 }
  const s = await setupActive(() => clock.now, { initCode: CLOCK_INIT })
  const [, n1, n2] = s.nodes as [Node, Node, Node]
  await promoteN1(s)
  // n2 takes the handover and the updates, but its acks are lost: after ackTimeoutMs the
  // transaction runs at n1's host's word, and its update reaches n2.
  const lost = (o: unknown) => sentTo(n1)(o as never)
  const x = await callClock(s, n1, 'x', lost)
  for (let i = 0; i < 4; i++) {
    clock.now += 2_000
    const t = await n1.enclave.call('tick', { now: clock.now })
    await pump(s.nodes, t.outputs, s.answers, [], true, lost)
  }
  // n2's acks get through again (at 30/1100): the receipt shows the clock the host chose.
  assert.deepEqual(await clockOfReceipt(s, n1, clock, 'x', x), {
    timestamp: 888_888n,
    number: 9_000n,
  })
  // The next transaction, bounded by n2's report (30/1100), does not go back: n1 waits for time
  // to catch up. But the clock it ran at was kept out of the floor its updates carry.
  assert.deepEqual(await clockOfCall(s, n1, 'y'), { timestamp: 888_888n, number: 9_000n })
  // n1 is removed and n2 promoted: the updates it applied carried no floor from the host's clock.
  const gone = s.ev(EventKind.MemberRemoved, memberRemovedData(1n, n1.signer, 1n))
  const g = await n2.enclave.call('chain', { blockNumber: 40n, timestamp: 1200n, events: [gone] })
  await pump(s.nodes, g.outputs, s.answers)
  assert.deepEqual(await clockOfCall(s, n2, 'z'), { timestamp: 1200n, number: 40n })
})
