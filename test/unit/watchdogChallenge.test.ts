/**
 * Regression (simulator, partition of a watchdog): a watchdog that no peer message reaches
 * answered the executor's on-chain watchdog challenge without holding the update it named, so
 * the challenge ended in its favour and the executor still had no ack: receipts stalled until
 * users challenged the executor and it was replaced. Now the challenge carries the update signed
 * by the executor; the watchdog applies it before answering, and the executor counts the
 * on-chain answer as the ack.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { encodeAbiParameters } from 'viem'
import {
  bytesToHex,
  decodeAnswer,
  decodeUpdateBody,
  type EnclaveOutput,
  EventKind,
  encodeChallengeUpdate,
  LIMITS,
  openAnswer,
  ProtocolError,
  randomBytes,
  SYSTEM_NONCE_SELECTOR,
  uintToWord,
  utf8,
} from '../../src/protocol/index.ts'
import {
  answerOf,
  BALANCE_SELECTOR,
  challengedData,
  depositData,
  digestOf,
  executorChallengedData,
  hexb,
  memberRemovedData,
  type Node,
  pump,
  restartNode,
  sendTransfers,
  sentTo,
  setupActive,
  systemView,
  systemViewBox,
  transferBox,
} from './harness.ts'

const ACK_TIMEOUT_MS = 5_000

/** The data of a `WatchdogResponded` event. */
const respondedData = (slot: number) => hexb(encodeAbiParameters([{ type: 'uint8' }], [slot]))
const answersChallenge = (outs: EnclaveOutput[]) => outs.some((o) => o.type === 'respondWatchdog')
type Active = Awaited<ReturnType<typeof setupActive>>

/** Feeds one manager event (the next of `s`'s chain) to each of `nodes`; their outputs. */
async function feedAll(s: Active, nodes: Node[], kind: number, data: Uint8Array) {
  const e = s.ev(kind, data)
  const outs: EnclaveOutput[][] = []
  for (const n of nodes)
    outs.push(
      (await n.enclave.call('chain', { blockNumber: 20n, timestamp: 1100n, events: [e] })).outputs,
    )
  return { event: e, outs }
}

/**
 * The executor (n0) is removed and n1 takes over; nothing of n1 reaches n2 (its handover
 * included). n1 executes a transfer with `nonce` and, after the ack timeout, challenges n2
 * on-chain; the challenge event reaches n1. Returns n2's outputs for that event.
 */
async function takeoverChallengesN2(s: Active, nonce: bigint, advance: (ms: number) => number) {
  const [n0, n1, n2] = s.nodes as [Node, Node, Node]
  const target = { instance: s.instance, contractEncryptionKey: s.contractEncryptionKey }
  await feedAll(s, s.nodes, EventKind.MemberRemoved, memberRemovedData(0n, n0.signer, 1n))
  const box = transferBox(target, s.creatorKey, nonce, randomBytes(20)).box
  await n1.enclave.call('tx', { requestId: 'c', instance: s.instance, box })
  const ticked = await n1.enclave.call('tick', { now: advance(ACK_TIMEOUT_MS + 1_000) })
  const challenge = ticked.outputs.find((o) => o.type === 'challengeWatchdogs')
  assert.ok(challenge && challenge.type === 'challengeWatchdogs', 'n1 challenges')
  assert.equal(challenge.memberMask, 4n, 'n2 (slot 2) only')
  const { outs } = await feedAll(
    s,
    [n1, n2],
    EventKind.WatchdogsChallenged,
    challengedData(4, challenge.payload),
  )
  return outs[1]!
}

async function partitioned() {
  let clock = 1_000_000
  const s = await setupActive(() => clock)
  const [exec, w1] = s.nodes as [Node, Node, Node]
  const notTo = (n: Node) => (o: EnclaveOutput) => !sentTo(n)(o)
  const target = { instance: s.instance, contractEncryptionKey: s.contractEncryptionKey }
  // Two updates (a, then b) reach the executor and watchdog 2; nothing reaches watchdog 1.
  const heldFromW1: EnclaveOutput[] = []
  for (const [id, nonce] of [
    ['a', 0n],
    ['b', 1n],
  ] as const) {
    const r = await exec.enclave.call('tx', {
      requestId: id,
      instance: s.instance,
      box: transferBox(target, s.creatorKey, nonce, randomBytes(20)).box,
    })
    await pump(s.nodes, r.outputs.filter(notTo(w1)), s.answers)
    heldFromW1.push(...r.outputs.filter((o) => !notTo(w1)(o)))
  }
  assert.equal(s.answers.size, 0, 'no receipt while watchdog 1 has not acked')
  clock += ACK_TIMEOUT_MS + 1_000
  const ticked = await exec.enclave.call('tick', { now: clock })
  heldFromW1.push(...ticked.outputs.filter((o) => !notTo(w1)(o)))
  const challenge = ticked.outputs.find((o) => o.type === 'challengeWatchdogs')
  assert.ok(challenge && challenge.type === 'challengeWatchdogs', 'the executor challenges')
  assert.equal(challenge.memberMask, 2n, 'only watchdog 1 (slot 1) is late')
  /** Delivers one manager event to every node; returns each node's outputs. */
  const deliver = (kind: number, data: Uint8Array) => feedAll(s, s.nodes, kind, data)
  const challenged = (payload: Uint8Array) => challengedData(2, payload)
  const responded = respondedData(1)
  return {
    ...s,
    exec,
    w1,
    challenge,
    deliver,
    challenged,
    responded,
    digestOf: (n: Node) => digestOf(n, s.instance),
    notTo,
    heldFromW1,
    tick: (n: Node) => {
      clock += 500
      return n.enclave.call('tick', { now: clock })
    },
  }
}

test('a watchdog cut off from the executor applies the update the challenge carries, answers, and the executor releases on that answer', async () => {
  const p = await partitioned()
  assert.equal((await p.digestOf(p.w1)).seq, 0n)
  const c = await p.deliver(EventKind.WatchdogsChallenged, p.challenged(p.challenge.payload))
  const answer = c.outs[1]!.find((o) => o.type === 'respondWatchdog')
  assert.ok(answer && answer.type === 'respondWatchdog', 'watchdog 1 answers on-chain')
  assert.equal(answer.slot, 1)
  assert.equal(answer.eventIndex, c.event.index, 'the answer names the challenge event')
  assert.equal((await p.digestOf(p.w1)).seq, 1n, 'it holds the challenged update (the oldest)')

  const r = await p.deliver(EventKind.WatchdogResponded, p.responded)
  await pump(p.nodes, r.outs[0]!.filter(p.notTo(p.w1)), p.answers)
  assert.ok(p.answers.has('a'), 'the on-chain answer counts as the ack of update 1')
  assert.ok(!p.answers.has('b'), 'update 2 still waits for its ack')
})

test('an answer to a challenge whose payload the operator replaced is not counted as an ack', async () => {
  const p = await partitioned()
  const forged = p.challenge.payload.slice()
  forged[forged.length - 1]! ^= 1
  const c = await p.deliver(EventKind.WatchdogsChallenged, p.challenged(forged))
  // The watchdog still proves it is alive (the payload is not the executor's update) ...
  assert.ok(c.outs[1]!.some((o) => o.type === 'respondWatchdog'))
  assert.equal((await p.digestOf(p.w1)).seq, 0n, 'nothing applied from a forged payload')
  // ... but that proves nothing about the update: no receipt is released.
  const r = await p.deliver(EventKind.WatchdogResponded, p.responded)
  await pump(p.nodes, r.outs[0]!.filter(p.notTo(p.w1)), p.answers)
  assert.equal(p.answers.size, 0)
})

test('a watchdog challenged with an update it cannot apply yet answers on a later tick, once it holds the updates before it', async () => {
  const p = await partitioned()
  // The updates held back from watchdog 1, by sequence number (re-sends included). While
  // update 1 is in flight the executor starts update 2 only for a full batch: send one.
  const held = new Map<bigint, EnclaveOutput & { type: 'send' }>()
  const target = { instance: p.instance, contractEncryptionKey: p.contractEncryptionKey }
  for (let nonce = 2n; nonce < 2n + BigInt(LIMITS.pipelineMinBatchTxs); nonce++) {
    const r = await p.exec.enclave.call('tx', {
      requestId: `c${nonce}`,
      instance: p.instance,
      box: transferBox(target, p.creatorKey, nonce, randomBytes(20)).box,
    })
    await pump(p.nodes, r.outputs.filter(p.notTo(p.w1)), p.answers)
    p.heldFromW1.push(...r.outputs.filter((o) => !p.notTo(p.w1)(o)))
  }
  for (const o of p.heldFromW1)
    if (o.type === 'send' && o.envelope.kind === 'update')
      held.set(decodeUpdateBody(hexb(o.envelope.body as `0x${string}`)).seq, o)
  const [a, b] = [held.get(1n), held.get(2n)]
  assert.ok(a && b, 'updates 1 and 2 were held back from watchdog 1')
  // A challenge naming update 2, signed by the executor, while watchdog 1 holds neither. The
  // updates travel under pair tags (decision 0020); the executor signs one only for a challenge,
  // and this is the envelope it would sign for update 2's.
  type ExecutorInternals = {
    log: Map<bigint, unknown>
    updateEnvelope(entry: unknown): { body: Uint8Array; signature: Uint8Array }
  }
  const executor = (
    p.exec.enclave as unknown as { instances: Map<bigint, ExecutorInternals> }
  ).instances.get(p.instance)!
  const signed = executor.updateEnvelope(executor.log.get(2n))
  assert.equal(bytesToHex(signed.body), b.envelope.body, 'the body that travelled')
  const payload = encodeChallengeUpdate({ body: signed.body, signature: signed.signature })
  const answers = (outs: EnclaveOutput[]) => outs.filter((o) => o.type === 'respondWatchdog')
  const c = await p.deliver(EventKind.WatchdogsChallenged, p.challenged(payload))
  assert.equal(answers(c.outs[1]!).length, 0, 'update 1 is missing: no answer')
  for (let i = 0; i < 3; i++)
    assert.equal(answers((await p.tick(p.w1)).outputs).length, 0, `tick ${i}: still missing`)
  // Update 1 arrives; watchdog 1 applies it, then update 2, which the challenge carried.
  await pump(p.nodes, [a], p.answers)
  assert.ok((await p.digestOf(p.w1)).seq >= 2n, 'it holds update 2')
  const [r] = answers((await p.tick(p.w1)).outputs)
  assert.ok(r && r.type === 'respondWatchdog', 'it answers on its next tick')
  assert.equal(r.eventIndex, c.event.index)
  assert.equal(answers((await p.tick(p.w1)).outputs).length, 0, 'once per challenge')
})

test('an executor restarted after it sealed a challenge but before its answer left answers on its next tick (simulator seed 197)', async () => {
  let clock = 1_000_000
  const s = await setupActive(() => clock)
  const [exec] = s.nodes as [Node, Node, Node]
  const payload = utf8('are you there?')
  const challenge = s.ev(EventKind.ExecutorChallenged, executorChallengedData(payload))
  const feed = { blockNumber: 20n, timestamp: 1100n, events: [challenge] }
  const answered = (outs: EnclaveOutput[]) => outs.filter((o) => o.type === 'respondExecutor')
  const first = await exec.enclave.call('chain', feed)
  assert.equal(answered(first.outputs).length, 1, 'the executor answers the challenge')
  // The host crashed after sealing the challenge's view and before submitting the answer.
  const restarted = await restartNode(exec, s.instance, () => clock)
  const again = await restarted.enclave.call('chain', feed)
  assert.equal(answered(again.outputs).length, 0, 'a re-fed event the view holds changes nothing')
  clock += 500
  const ticked = await restarted.enclave.call('tick', { now: clock })
  const [r] = answered(ticked.outputs)
  assert.ok(r && r.type === 'respondExecutor', 'the restarted executor answers on its tick')
  assert.equal(r.eventIndex, challenge.index)
  // Once per challenge: the next tick does not answer again.
  clock += 500
  assert.equal(answered((await restarted.enclave.call('tick', { now: clock })).outputs).length, 0)
})

test("an executor challenged with a view call's box answers the view on-chain, sealed to its caller; other payloads get a liveness answer", async () => {
  const s = await setupActive()
  const [exec] = s.nodes as [Node, Node, Node]
  const target = { instance: s.instance, contractEncryptionKey: s.contractEncryptionKey }
  await sendTransfers(s.nodes, exec, target, s.creatorKey, [0n, 1n], randomBytes(20), s.answers)
  const challenge = (payload: Uint8Array, block: bigint) =>
    exec.enclave.call('chain', {
      blockNumber: block,
      timestamp: 1000n + block,
      events: [s.ev(EventKind.ExecutorChallenged, executorChallengedData(payload))],
    })
  const responses = (outs: EnclaveOutput[]) =>
    outs.flatMap((o) => (o.type === 'respondExecutor' ? [o.response] : []))

  // The user's nonce view (a partitioned client challenges with the box it could not deliver).
  const view = systemViewBox(target, s.creatorKey, SYSTEM_NONCE_SELECTOR)
  const [sealed] = responses((await challenge(view.box, 20n)).outputs)
  assert.ok(sealed, 'the executor answers the challenge')
  const answer = decodeAnswer(openAnswer(view.responseKey, sealed))
  assert.equal(answer.kind, 'view')
  assert.equal(answer.kind === 'view' && bytesToHex(answer.returnData), bytesToHex(uintToWord(2n)))

  // The challenge is answered; a later one whose payload is no box gets the liveness answer.
  await exec.enclave.call('chain', {
    blockNumber: 21n,
    timestamp: 1021n,
    events: [s.ev(EventKind.ExecutorResponded, new Uint8Array())],
  })
  const [alive] = responses((await challenge(utf8('are you there?'), 22n)).outputs)
  assert.ok(alive, 'the executor answers the second challenge')
  assert.equal(bytesToHex(alive.subarray(0, 13)), bytesToHex(utf8('POSE-ALIVE-v1')))
})

test("on-chain answers to a restarted executor's watchdog challenge do not confirm its restored state (simulator seed 157)", async () => {
  let clock = 1_000_000
  const s = await setupActive(() => clock)
  const [exec, w1, w2] = s.nodes as [Node, Node, Node]
  const target = { instance: s.instance, contractEncryptionKey: s.contractEncryptionKey }
  const recipient = randomBytes(20)
  await sendTransfers(s.nodes, exec, target, s.creatorKey, [0n, 1n], recipient, s.answers)
  const stale = [...exec.sealed.get(s.instance)!]
  await sendTransfers(s.nodes, exec, target, s.creatorKey, [2n, 3n, 4n], recipient, s.answers)
  assert.ok(s.answers.has('t4'), 'receipts up to nonce 4 were released')

  // The host restarts the executor from the copy two updates old; its peer links are down, so
  // the watchdogs' acks of the updates it offers again (which would show them ahead) are lost.
  const r0 = await restartNode(exec, s.instance, () => clock, stale)
  const nodes = [r0, w1, w2]
  clock += ACK_TIMEOUT_MS + 1_000
  const ticked = await r0.enclave.call('tick', { now: clock })
  const challenge = ticked.outputs.find((o) => o.type === 'challengeWatchdogs')
  assert.ok(challenge && challenge.type === 'challengeWatchdogs', 'it challenges its watchdogs')
  assert.equal(challenge.memberMask, 6n)
  // Both watchdogs hold the update it names (seq 1) and answer on-chain.
  const feed = async (kind: number, data: Uint8Array) => (await feedAll(s, nodes, kind, data)).outs
  const challenged = await feed(EventKind.WatchdogsChallenged, challengedData(6, challenge.payload))
  for (const i of [1, 2]) assert.ok(answersChallenge(challenged[i]!), `watchdog ${i} answers`)
  for (const slot of [1, 2]) await feed(EventKind.WatchdogResponded, respondedData(slot))
  // Another event: the executor re-checks its pool (it did serve again here, from seq 2).
  await feed(EventKind.Deposit, depositData(s.creator, 1n))

  // The answers prove the watchdogs hold update 1, not that they hold nothing beyond seq 2:
  // the executor still answers nothing from its stale state.
  const nonceView = systemViewBox(target, s.creatorKey, SYSTEM_NONCE_SELECTOR)
  await assert.rejects(
    r0.enclave.call('view', { requestId: 'nonce', instance: s.instance, box: nonceView.box }),
    (e: unknown) => e instanceof ProtocolError && e.code === 'UNAVAILABLE',
  )
  const next = transferBox(target, s.creatorKey, 5n, recipient)
  const held = await r0.enclave.call('tx', { requestId: 'n5', instance: s.instance, box: next.box })
  assert.equal(
    held.outputs.some((o) => o.type === 'send'),
    false,
    'nothing executed on the stale state',
  )
  clock += 15_000
  const later = await r0.enclave.call('tick', { now: clock })
  assert.equal(
    later.outputs.some((o) => o.type === 'answer'),
    false,
    'no BAD_NONCE from the stale state',
  )
  assert.equal((await digestOf(r0, s.instance)).seq, 2n)

  // Once the links are back, the watchdogs' acks show them ahead: it takes the pool's state
  // (five transfers), then credits the deposit.
  await pump(nodes, later.outputs, s.answers, [], true)
  clock += 2_000
  await pump(nodes, (await r0.enclave.call('tick', { now: clock })).outputs, s.answers, [], true)
  const [d0, d1] = [await digestOf(r0, s.instance), await digestOf(w1, s.instance)]
  assert.equal(d0.seq, 6n)
  assert.deepEqual(d0.digest, d1.digest)
  const again = await r0.enclave.call('tx', {
    requestId: 'n5-again',
    instance: s.instance,
    box: next.box,
  })
  await pump(nodes, again.outputs, s.answers, [], true)
  const receipt = answerOf(s.answers, 'n5-again', next.responseKey)
  assert.equal(receipt.kind === 'receipt' && receipt.receipt.nonce, 5n)
})

test("a watchdog still on the previous executor's log does not answer the new executor's challenge for an update it lacks", async () => {
  let clock = 1_000_000
  const s = await setupActive(() => clock)
  const [n0, n1, n2] = s.nodes as [Node, Node, Node]
  const target = { instance: s.instance, contractEncryptionKey: s.contractEncryptionKey }
  const recipient = randomBytes(20)
  const seqOf = async (n: Node) => (await digestOf(n, s.instance)).seq
  // Update 1 reaches everyone; the old executor's update 2 only n2, so it is never released.
  await sendTransfers(s.nodes, n0, target, s.creatorKey, [0n], recipient, s.answers)
  const b = await n0.enclave.call('tx', {
    requestId: 'b',
    instance: s.instance,
    box: transferBox(target, s.creatorKey, 1n, recipient).box,
  })
  await pump(
    s.nodes,
    b.outputs.filter((o) => !sentTo(n1)(o)),
    s.answers,
  )
  assert.equal(await seqOf(n2), 2n)

  // n1 takes over at seq 1 and executes its own update 2. n2 holds a seq 2, but the old
  // executor's: answering would count as holding n1's update 2, and n1 would release a
  // receipt that n2, promoted next, would roll back.
  const first = await takeoverChallengesN2(s, 1n, (ms) => (clock += ms))
  assert.equal(await seqOf(n1), 2n)
  assert.equal(answersChallenge(first), false, 'no answer while it follows the old log')
  clock += 500
  assert.equal(answersChallenge((await n2.enclave.call('tick', { now: clock })).outputs), false)

  // Once n1's handover reaches it, n2 follows n1's log and answers on its next tick.
  clock += 2_000
  const resent = (await n1.enclave.call('tick', { now: clock })).outputs.filter(sentTo(n2))
  await pump(s.nodes, resent, s.answers, [], true)
  const [d1, d2] = [await digestOf(n1, s.instance), await digestOf(n2, s.instance)]
  assert.equal(d2.seq, 2n)
  assert.deepEqual(d2.digest, d1.digest)
  clock += 500
  const answered = await n2.enclave.call('tick', { now: clock })
  assert.ok(answersChallenge(answered.outputs), 'it answers now')
})

test("a watchdog the new executor's handover missed answers its challenge once the update applies on its log", async () => {
  let clock = 1_000_000
  const s = await setupActive(() => clock)
  const [n0, n1, n2] = s.nodes as [Node, Node, Node]
  const target = { instance: s.instance, contractEncryptionKey: s.contractEncryptionKey }
  await sendTransfers(s.nodes, n0, target, s.creatorKey, [0n], randomBytes(20), s.answers)
  // n1 takes over at seq 1, where n2 is too; its update 2 follows the log they share, so n2
  // applies it from the challenge and answers.
  const out = await takeoverChallengesN2(s, 1n, (ms) => (clock += ms))
  assert.ok(answersChallenge(out), 'n2 answers')
  assert.deepEqual((await digestOf(n2, s.instance)).digest, (await digestOf(n1, s.instance)).digest)
})

test("a watchdog whose host keeps a deposit from it is challenged once the deposit waited a minute; its answer's view lets the executor credit it (decision 0025)", async () => {
  let clock = 6_000_000
  const s = await setupActive(() => clock)
  const [n0, n1, n2] = s.nodes as [Node, Node, Node]
  const target = { instance: s.instance, contractEncryptionKey: s.contractEncryptionKey }
  const deposit = s.ev(EventKind.Deposit, depositData(s.creator, 9n))
  // n2's host withholds the deposit; the executor and n1 see it.
  for (const n of [n0, n1]) {
    const r = await n.enclave.call('chain', {
      blockNumber: 20n,
      timestamp: 1100n,
      events: [deposit],
    })
    await pump(s.nodes, r.outputs, s.answers, [], true)
  }
  const tick = async (ms: number) => {
    clock += ms
    const r = await n0.enclave.call('tick', { now: clock })
    await pump(s.nodes, r.outputs, s.answers, [], true)
    return r.outputs
  }
  let outs = await tick(30_000)
  assert.ok(!outs.some((o) => o.type === 'challengeWatchdogs'), 'not before a minute')
  outs = await tick(31_000)
  const challenge = outs.find((o) => o.type === 'challengeWatchdogs')
  assert.ok(
    challenge && challenge.type === 'challengeWatchdogs',
    'the lagging watchdog is challenged',
  )
  assert.equal(challenge.memberMask, 4n, 'n2 (slot 2) only')
  assert.equal(bytesToHex(challenge.payload.subarray(0, 12)), bytesToHex(utf8('POSE-VIEW-v1')))
  // The challenge lands on-chain; n2 must see the chain up to it to answer.
  const challenged = s.ev(EventKind.WatchdogsChallenged, challengedData(4, challenge.payload))
  const n2outs = (
    await n2.enclave.call('chain', {
      blockNumber: 21n,
      timestamp: 1160n,
      events: [deposit, challenged],
    })
  ).outputs
  assert.ok(answersChallenge(n2outs), 'n2 answers')
  for (const n of [n0, n1]) {
    const r = await n.enclave.call('chain', {
      blockNumber: 21n,
      timestamp: 1160n,
      events: [challenged],
    })
    await pump(s.nodes, r.outputs, s.answers, [], true)
  }
  await pump(s.nodes, n2outs, s.answers, [], true)
  await tick(1_500)
  const balance = await systemView(s.nodes, n0, target, s.creatorKey, BALANCE_SELECTOR, s.answers)
  assert.equal(BigInt(bytesToHex(balance)), 9n, 'credited once every view agrees')
  const ds = await Promise.all(s.nodes.map((n) => digestOf(n, s.instance)))
  assert.equal(new Set(ds.map((d) => `${d.seq}:${bytesToHex(d.digest)}`)).size, 1)
})

test("a watchdog that holds another update at the challenged seq (replayed from before the executor's restart) does not answer, so the executor releases nothing the pool lacks", async () => {
  const clock = { now: 7_000_000 }
  const s = await setupActive(() => clock.now)
  // The executor's update 2 reaches nobody; restarted from the copy before it, it confirms its
  // pool (both at seq 1) and serves; then the host replays the old update to n1, which takes it.
  const r0 = await replayedToN1(s, clock, [1n])
  assert.equal((await digestOf(s.nodes[1]!, s.instance)).seq, 2n)
  // The executor runs another transaction as update 2; n1's ack names the other update and
  // does not count, so after the ack timeout the executor challenges n1 with its update 2.
  const nodes = [r0, s.nodes[1]!, s.nodes[2]!]
  const answered = await challengeN1WithNewUpdate2(s, nodes, (ms) => (clock.now += ms))
  assert.equal(answersChallenge(answered), false, 'n1 does not answer for an update it lacks')
})

/**
 * Transfer 0 done; the executor then runs the transfers `nonces`, one update each, which reach
 * nobody (the host keeps the copies addressed to n1); it restarts from its copy before them and
 * confirms its pool, and the host replays the kept updates to n1. Returns the restarted executor.
 */
async function replayedToN1(s: Active, clock: { now: number }, nonces: bigint[]): Promise<Node> {
  const [n0, n1, n2] = s.nodes as [Node, Node, Node]
  const target = { instance: s.instance, contractEncryptionKey: s.contractEncryptionKey }
  const recipient = randomBytes(20)
  await sendTransfers(s.nodes, n0, target, s.creatorKey, [0n], recipient, s.answers)
  const stale = [...n0.sealed.get(s.instance)!]
  const outs: EnclaveOutput[] = []
  for (const nonce of nonces) {
    const box = transferBox(target, s.creatorKey, nonce, recipient).box
    outs.push(
      ...(await n0.enclave.call('tx', { requestId: `old${nonce}`, instance: s.instance, box }))
        .outputs,
    )
  }
  clock.now += 100
  outs.push(...(await n0.enclave.call('tick', { now: clock.now })).outputs)
  const toN1 = outs.filter(
    (o) =>
      o.type === 'send' &&
      o.envelope.kind === 'update' &&
      o.envelope.to.toLowerCase() === bytesToHex(n1.signer),
  )
  assert.equal(toN1.length, nonces.length)
  const r0 = await restartNode(n0, s.instance, () => clock.now, stale)
  clock.now += 1_500
  await pump(
    [r0, n1, n2],
    (await r0.enclave.call('tick', { now: clock.now })).outputs,
    s.answers,
    [],
    true,
  )
  for (const o of toN1)
    if (o.type === 'send') await n1.enclave.call('peer', { envelope: o.envelope })
  return r0
}

/**
 * The restarted executor `nodes[0]` runs a transfer as its update 2, which n1 (`nodes[1]`, holding
 * another update 2) does not ack (`lost`: messages the network loses); after the ack timeout it
 * challenges n1 on-chain. Returns n1's outputs for the challenge's event.
 */
async function challengeN1WithNewUpdate2(
  s: Active,
  nodes: Node[],
  advance: (ms: number) => number,
  lost?: (o: EnclaveOutput) => boolean,
): Promise<EnclaveOutput[]> {
  const r0 = nodes[0]!
  const target = { instance: s.instance, contractEncryptionKey: s.contractEncryptionKey }
  const fresh = transferBox(target, s.creatorKey, 1n, randomBytes(20))
  await pump(
    nodes,
    (await r0.enclave.call('tx', { requestId: 'new', instance: s.instance, box: fresh.box }))
      .outputs,
    s.answers,
    [],
    true,
    lost,
  )
  assert.equal(s.answers.has('new'), false, 'not released: n1 holds another update 2')
  const ticked = await r0.enclave.call('tick', { now: advance(ACK_TIMEOUT_MS + 1_000) })
  const challenge = ticked.outputs.find((o) => o.type === 'challengeWatchdogs')
  assert.ok(challenge && challenge.type === 'challengeWatchdogs')
  assert.equal(challenge.memberMask, 2n, 'n1 (slot 1)')
  const { outs } = await feedAll(
    s,
    nodes,
    EventKind.WatchdogsChallenged,
    challengedData(2, challenge.payload),
  )
  return outs[1]!
}

test('a watchdog restored from a snapshot still knows the updates it held before it, and stays silent to another update at one of their seqs', async () => {
  const limits = LIMITS as { snapshotEveryUpdates: number; pipelineMinBatchTxs: number }
  const saved = { ...limits }
  // A snapshot after every update (the watchdog's restart below reads no log record), and an
  // update per transaction while others are in flight.
  limits.snapshotEveryUpdates = 1
  limits.pipelineMinBatchTxs = 1
  try {
    const clock = { now: 8_000_000 }
    const s = await setupActive(() => clock.now)
    const [n1, n2] = [s.nodes[1]!, s.nodes[2]!]
    // Two updates reach nobody; the executor restarts from the copy before them and confirms
    // its pool; the host replays the old updates to n1, which then restarts from its snapshot
    // at seq 3. n1's host drops what n1 says over the peer link (an ack ahead of the executor
    // would have it take n1's state) and answers on-chain only.
    const r0 = await replayedToN1(s, clock, [1n, 2n])
    assert.equal((await digestOf(n1, s.instance)).seq, 3n)
    const r1 = await restartNode(n1, s.instance, () => clock.now)
    assert.equal((await digestOf(r1, s.instance)).seq, 3n)
    const nodes = [r0, r1, n2]
    const fromR1 = (o: EnclaveOutput) =>
      o.type === 'send' && o.envelope.from.toLowerCase() === bytesToHex(r1.signer)
    // The executor's own update 2 is another one than n1 held there: after the ack timeout it
    // challenges n1 with it, and n1 does not answer.
    const answered = await challengeN1WithNewUpdate2(s, nodes, (ms) => (clock.now += ms), fromR1)
    assert.equal(answersChallenge(answered), false, 'n1 does not answer for an update it lacks')
  } finally {
    limits.snapshotEveryUpdates = saved.snapshotEveryUpdates
    limits.pipelineMinBatchTxs = saved.pipelineMinBatchTxs
  }
})
