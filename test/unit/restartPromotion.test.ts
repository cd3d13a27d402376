/**
 * Restarts from copies the pool must check first. A promoted member restarted before its
 * handover was sealed: `updateRole` seals the promotion's view record before `handOver` seals
 * the state it hands to the pool, so a crash between the two, or a host that serves an older
 * watchdog copy with that record, restores an executor holding a copy of its predecessor's log.
 * It must be checked against the pool and handed over (decision 0007), not resumed as its own
 * log. And an executor restarted from a copy of its own log that diverged from the one its pool
 * released sends that copy to no watchdog that follows it until the pool confirmed it. And an
 * executor restarted before it sent a newcomer the state is not held up by it.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { type EnclaveOutput, EventKind, LIMITS, randomBytes } from '../../src/protocol/index.ts'
import {
  answerOf,
  challengedData,
  digestOf,
  memberRemovedData,
  type Node,
  newNode,
  pump,
  refilledData,
  restartNode,
  sendTransfers,
  sentTo,
  setupActive,
  trackSeals,
  transferBox,
} from './harness.ts'

type Seal = Extract<EnclaveOutput, { type: 'seal' }>

/** Ticks `exec` `rounds` times 1.5 s apart, routing everything among `nodes` unless `lost`. */
async function ticks(
  nodes: Node[],
  exec: Node,
  clock: { now: number },
  answers: Map<string, Uint8Array>,
  rounds: number,
  lost?: (o: EnclaveOutput) => boolean,
) {
  for (let i = 0; i < rounds; i++) {
    clock.now += 1_500
    const t = await exec.enclave.call('tick', { now: clock.now })
    await pump(nodes, t.outputs, answers, [], true, lost)
  }
}

/** An active instance on three enclaves (n0 executor) with transfers 0 and 1 done; a clock. */
async function twoTransfersDone() {
  const clock = { now: 3_000_000 }
  const s = await setupActive(() => clock.now)
  const [n0, n1, n2] = s.nodes as [Node, Node, Node]
  const target = { instance: s.instance, contractEncryptionKey: s.contractEncryptionKey }
  const recipient = randomBytes(20)
  await sendTransfers(s.nodes, n0, target, s.creatorKey, [0n, 1n], recipient, s.answers)
  return { ...s, clock, n0, n1, n2, target, recipient }
}

type Pool = Awaited<ReturnType<typeof twoTransfersDone>>

/**
 * A transfer of `nonce` to `to` sent through the executor `nodes[0]` (request `id`), ticked
 * among `nodes` until answered, at most `rounds` ticks: its answer, or undefined.
 */
async function transferUntilAnswered(
  s: Pool,
  nodes: Node[],
  nonce: bigint,
  id: string,
  rounds = 5,
  to: Uint8Array = randomBytes(20),
) {
  const exec = nodes[0]!
  const box = transferBox(s.target, s.creatorKey, nonce, to)
  const sent = await exec.enclave.call('tx', { requestId: id, instance: s.instance, box: box.box })
  await pump(nodes, sent.outputs, s.answers, [], true)
  for (let i = 0; i < rounds && !s.answers.has(id); i++)
    await ticks(nodes, exec, s.clock, s.answers, 1)
  return s.answers.has(id) ? answerOf(s.answers, id, box.responseKey) : undefined
}

/**
 * n0 is removed and n1 promoted (n2 sees the removal too); returns the promotion's view record,
 * the first record n1 seals for it, before its handover's snapshot.
 */
async function promoteN1(s: Pool): Promise<Uint8Array> {
  const removed = s.ev(EventKind.MemberRemoved, memberRemovedData(0n, s.n0.signer, 1n))
  await s.n2.enclave.call('chain', { blockNumber: 20n, timestamp: 1010n, events: [removed] })
  const takeover = await s.n1.enclave.call('chain', {
    blockNumber: 20n,
    timestamp: 1010n,
    events: [removed],
  })
  return takeover.outputs.filter((o): o is Seal => o.type === 'seal')[0]!.blob
}

test('a host serving an older watchdog copy with the promotion record cannot roll the pool back', async () => {
  const s = await twoTransfersDone()
  const { nodes, instance, creatorKey, answers, clock, n0, n1, n2, target, recipient } = s
  const stale = [...n1.sealed.get(instance)!]
  await sendTransfers(nodes, n0, target, creatorKey, [2n, 3n, 4n], recipient, answers)
  assert.ok(answers.has('t4'))
  assert.equal((await digestOf(n2, instance)).seq, 5n, 'the pool released seq 5')

  // The executor is removed; n1 is promoted. Its host keeps only the promotion's view record
  // (sealed first) and drops the handover, then restarts it from the older copy plus that record.
  const viewRecord = await promoteN1(s)
  const r1 = await restartNode(n1, instance, () => clock.now, [...stale, viewRecord])
  assert.equal((await digestOf(r1, instance)).seq, 2n)

  // First its host lets nothing reach it and drops its probes; then the network delivers all.
  const toR1 = sentTo(r1)
  await ticks(
    [r1, n2],
    r1,
    clock,
    answers,
    1,
    (o) => toR1(o) || (o.type === 'send' && o.envelope.kind === 'sync'),
  )
  assert.equal((await digestOf(n2, instance)).seq, 5n, 'the watchdog keeps what was released')
  await ticks([r1, n2], r1, clock, answers, 4)
  assert.equal((await digestOf(n2, instance)).seq, 5n, 'the watchdog keeps what was released')
  assert.equal((await digestOf(r1, instance)).seq, 5n, 'the promoted member caught up first')

  // A transaction reusing a released nonce gets no receipt; the next nonce runs after seq 5.
  const replay = await transferUntilAnswered(s, [r1, n2], 2n, 'x2', 2)
  assert.notEqual(replay?.kind, 'receipt')
  const a5 = await transferUntilAnswered(s, [r1, n2], 5n, 'x5', 3)
  assert.equal(a5?.kind, 'receipt')
  assert.equal(a5?.kind === 'receipt' && a5.receipt.seq, 6n)
})

test('a crash between the promotion record and the handover, then a restart from an older copy, still serves', async () => {
  const s = await twoTransfersDone()
  const { instance, creatorKey, answers, clock, n1, n2, target, recipient } = s
  const before = [...n1.sealed.get(instance)!]
  // The operator dies after storing the promotion's view record, before the handover's snapshot.
  const viewRecord = await promoteN1(s)
  const r1 = await restartNode(n1, instance, () => clock.now, [...before, viewRecord])
  r1.sealed.set(instance, [...before, viewRecord])
  trackSeals(r1)
  await ticks([r1, n2], r1, clock, answers, 3)
  await sendTransfers([r1, n2], r1, target, creatorKey, [2n], recipient, answers)
  const older = [...r1.sealed.get(instance)!]
  await sendTransfers([r1, n2], r1, target, creatorKey, [3n], recipient, answers)
  assert.ok(answers.has('t3'))

  // Later a power loss takes its last append: it restarts behind its watchdog, takes the
  // watchdog's newer state (which it handed over itself) and serves again.
  const r2 = await restartNode(r1, instance, () => clock.now, older)
  assert.equal((await digestOf(r2, instance)).seq, 3n)
  for (let i = 0; i < 20 && (await digestOf(r2, instance)).seq < 4n; i++)
    await ticks([r2, n2], r2, clock, answers, 1)
  assert.equal(
    (await digestOf(r2, instance)).seq,
    4n,
    'the restarted executor took the newer state',
  )
  const a = await transferUntilAnswered(s, [r2, n2], 4n, 'x4', 5, recipient)
  assert.equal(a?.kind, 'receipt')
  assert.equal(a?.kind === 'receipt' && a.receipt.seq, 5n)
  assert.equal((await digestOf(n2, instance)).seq, 5n)
})

test('an executor restarted from a copy of its own log that diverged from the released one does not hand it to its watchdogs', async () => {
  const s = await twoTransfersDone()
  const { instance, creatorKey, answers, clock, n0, n1, n2, target, recipient } = s
  const older = [...n0.sealed.get(instance)!]
  // Nonce 2 runs as update 3 and the next batch (a full one, as one runs while another is in
  // flight) as update 4; its host drops every message about them.
  const batch = BigInt(LIMITS.pipelineMinBatchTxs)
  for (let nonce = 2n; nonce < 3n + batch; nonce++) {
    const box = transferBox(target, creatorKey, nonce, recipient).box
    await n0.enclave.call('tx', { requestId: `a${nonce}`, instance, box })
  }
  clock.now += 100
  await n0.enclave.call('tick', { now: clock.now })
  const diverged = [...n0.sealed.get(instance)!]
  assert.equal((await digestOf(n0, instance)).seq, 4n)
  assert.equal((await digestOf(n2, instance)).seq, 2n, 'the watchdogs never saw them')

  // Restarted from the older copy, the executor runs another nonce 2 as update 3, released.
  const r0 = trackSeals(await restartNode(n0, instance, () => clock.now, older))
  await ticks([r0, n1, n2], r0, clock, answers, 3)
  const c = await transferUntilAnswered(s, [r0, n1, n2], 2n, 'c2')
  assert.equal(c?.kind, 'receipt', 'update 3 released')
  const released = await digestOf(n2, instance)

  // The same host restarts it from the diverged copy (seq 4, its own log): the watchdogs keep
  // the released update 3, and nothing runs on the diverged copy.
  const r0b = await restartNode(r0, instance, () => clock.now, diverged)
  await ticks([r0b, n1, n2], r0b, clock, answers, 4)
  for (const w of [n1, n2]) {
    const d = await digestOf(w, instance)
    assert.equal(d.seq, 3n, 'the watchdog keeps the released update 3')
    assert.deepEqual(d.digest, released.digest)
  }
  const d = await transferUntilAnswered(s, [r0b, n1, n2], 4n, 'd4')
  assert.notEqual(d?.kind, 'receipt', 'no receipt on the diverged copy')

  // Nor does it challenge its watchdogs on-chain with the diverged updates, which they hold
  // others at and so cannot answer (they would be removed and slashed, and the diverged copy
  // served): restarted once more from it, with its host dropping what the watchdogs send it,
  // its on-chain challenges carry only its probe, which a live watchdog answers.
  const r0c = await restartNode(r0b, instance, () => clock.now, diverged)
  const toR0c = sentTo(r0c)
  const challenges: Uint8Array[] = []
  for (let i = 0; i < 12; i++) {
    clock.now += 1_500
    const t = await r0c.enclave.call('tick', { now: clock.now })
    for (const o of t.outputs) if (o.type === 'challengeWatchdogs') challenges.push(o.payload)
    await pump([r0c, n1, n2], t.outputs, answers, [], true, toR0c)
  }
  assert.ok(challenges.length > 0, 'the silent pool is challenged')
  for (const payload of challenges)
    assert.equal(new TextDecoder().decode(payload.slice(0, 13)), 'POSE-PROBE-v1')
})

test('a promoted member whose handover reached its watchdog but whose sealed handover was lost serves again after a restart', async () => {
  const s = await twoTransfersDone()
  const { instance, answers, clock, n1, n2, recipient } = s
  const before = [...n1.sealed.get(instance)!]
  const viewRecord = await promoteN1(s)
  // The handover reached n2 (it follows n1 now); its snapshot never reached n1's disk.
  await ticks([n1, n2], n1, clock, answers, 1)
  const r1 = await restartNode(n1, instance, () => clock.now, [...before, viewRecord])
  await ticks([r1, n2], r1, clock, answers, 3)
  const a = await transferUntilAnswered(s, [r1, n2], 2n, 'x2', 5, recipient)
  assert.equal(a?.kind, 'receipt')
  assert.equal(a?.kind === 'receipt' && a.receipt.seq, 3n)
  assert.equal((await digestOf(n2, instance)).seq, 3n)
})

/**
 * n2 is removed and n3 drawn into its slot; whatever n0 sends n3 is lost, then n0 crashes and
 * restarts (simulator seed 2: the newcomer, silent to the restarted executor's probe, was
 * challenged on-chain with it, could not answer without a state, and was removed and slashed).
 */
async function restartBeforeNewcomerGotState() {
  const s = await twoTransfersDone()
  const n3 = await newcomerWithoutState(s)
  assert.equal((await digestOf(n3, s.instance)).seq, 0n, 'the newcomer holds nothing')
  const r0 = await restartNode(s.n0, s.instance, () => s.clock.now)
  return { ...s, n3, r0, pool: [r0, s.n1, n3] }
}

/** n2 is removed and a new node drawn into its slot; whatever n0 sends the newcomer is lost. */
async function newcomerWithoutState(s: Pool): Promise<Node> {
  const { ev, answers, clock, n0, n1, n2 } = s
  const n3 = await newNode(undefined, undefined, () => clock.now)
  const removed = ev(EventKind.MemberRemoved, memberRemovedData(2n, n2.signer, 2n))
  const refilled = ev(EventKind.Refilled, refilledData(2, n3))
  const outs: EnclaveOutput[] = []
  for (const n of [n0, n1, n2, n3]) {
    const events = n === n3 ? ev.history() : [removed, refilled]
    const at = { blockNumber: 30n, timestamp: 1100n }
    outs.push(...(await n.enclave.call('chain', { ...at, events })).outputs)
  }
  await pump([n0, n1, n2, n3], outs, answers, [], true, sentTo(n3))
  return n3
}

/** Ticks the restarted executor `rounds` times 1.5 s apart; the challenges it sends on-chain. */
async function tickRestarted(
  p: Awaited<ReturnType<typeof restartBeforeNewcomerGotState>>,
  rounds: number,
  lost?: (o: EnclaveOutput) => boolean,
) {
  const challenges: Extract<EnclaveOutput, { type: 'challengeWatchdogs' }>[] = []
  for (let i = 0; i < rounds; i++) {
    p.clock.now += 1_500
    const t = await p.r0.enclave.call('tick', { now: p.clock.now })
    for (const o of t.outputs) if (o.type === 'challengeWatchdogs') challenges.push(o)
    await pump(p.pool, t.outputs, p.answers, [], true, lost)
  }
  return challenges
}

test('an executor restarted before it sent a newcomer the state serves without challenging it, and the newcomer gets the state', async () => {
  const p = await restartBeforeNewcomerGotState()
  assert.deepEqual(await tickRestarted(p, 8), [], 'nobody is challenged on-chain')
  const a = await transferUntilAnswered(p, p.pool, 2n, 'r2')
  assert.equal(a?.kind, 'receipt', 'the restarted executor serves')
  const [d1, d3] = [await digestOf(p.n1, p.instance), await digestOf(p.n3, p.instance)]
  assert.equal(d3.seq, 3n, 'the newcomer got the state and the update')
  assert.deepEqual(d3.digest, d1.digest)
})

test("a newcomer that holds no state answers a restarted executor's probe challenge on-chain", async () => {
  const p = await restartBeforeNewcomerGotState()
  // The newcomer's answers to the probe are lost: the executor challenges it with its probe.
  const challenges = await tickRestarted(p, 8, (o) => o.type === 'send' && sentTo(p.r0)(o))
  const probe = challenges.find((c) => (c.memberMask & 4n) !== 0n)
  assert.ok(probe, 'the silent newcomer is challenged')
  const mask = Number(probe.memberMask)
  const e = p.ev(EventKind.WatchdogsChallenged, challengedData(mask, probe.payload))
  const at = { blockNumber: 40n, timestamp: 1200n }
  const outs = (await p.n3.enclave.call('chain', { ...at, events: [e] })).outputs
  assert.ok(
    outs.some((o) => o.type === 'respondWatchdog' && o.slot === 2),
    'the newcomer answers: it is alive, and the probe is no update it would acknowledge',
  )
})

test('a member promoted from a stale copy whose only other watchdog is a newcomer holding nothing serves nothing', async () => {
  const s = await twoTransfersDone()
  const { nodes, instance, ev, creatorKey, answers, clock, n0, n1, n2, target, recipient } = s
  const stale = [...n1.sealed.get(instance)!]
  await sendTransfers(nodes, n0, target, creatorKey, [2n, 3n, 4n], recipient, answers)
  assert.equal((await digestOf(n2, instance)).seq, 5n, 'the pool released seq 5')
  // n2 is removed and n3 drawn; nothing n0 sends n3 arrives. Then n0 is removed and n1
  // promoted, and n1's host restarts it from its older copy with the promotion's view record.
  const n3 = await newcomerWithoutState(s)
  const gone = ev(EventKind.MemberRemoved, memberRemovedData(0n, n0.signer, 2n))
  const at = { blockNumber: 40n, timestamp: 1200n }
  await n3.enclave.call('chain', { ...at, events: [gone] })
  const takeover = await n1.enclave.call('chain', { ...at, events: [gone] })
  const viewRecord = takeover.outputs.filter((o): o is Seal => o.type === 'seal')[0]!.blob
  const r1 = await restartNode(n1, instance, () => clock.now, [...stale, viewRecord])
  assert.equal((await digestOf(r1, instance)).seq, 2n)
  // The newcomer holds nothing, which says nothing of what was released: nonce 2, receipted at
  // seq 3, gets no second receipt (decision 0007: a copy nobody confirms is not served).
  await ticks([r1, n3], r1, clock, answers, 3)
  const again = await transferUntilAnswered(s, [r1, n3], 2n, 'again2')
  assert.notEqual(again?.kind, 'receipt', 'a released nonce receipted again')
})
