/**
 * The executor's duties around a change of executor or a restart, in process (three enclaves
 * wired by the harness): what leaves the enclave as coins waits for every watchdog to hold the
 * whole state, a watchdog silent to a handover is challenged, a restarted executor does not
 * wait for a watchdog that left, and on-chain challenges and answers that never showed on the
 * chain are sent again.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { decodeAbiParameters } from 'viem'
import {
  bytesToHex,
  type EnclaveOutput,
  EventKind,
  generateSecretKey,
  randomBytes,
  SYSTEM_ADDRESS,
  SYSTEM_AUTHORISATION_SELECTOR,
  SYSTEM_WITHDRAW_SELECTOR,
  secretKeyToAddress,
  type Tx,
} from '../../src/protocol/index.ts'
import {
  answerOf,
  depositData,
  digestOf,
  executorChallengedData,
  feedChain,
  memberRemovedData,
  type Node,
  pump,
  restartNode,
  sendTransfers,
  sentTo,
  setupActive,
  systemViewBox,
  tickUntil,
  transferBox,
  txBox,
} from './harness.ts'

const lostTo = (n: Node) => (o: EnclaveOutput) => o.type === 'send' && sentTo(n)(o)

/** Sends `box` to the executor `exec` as request `id`; its update reaches `only` alone. */
async function updateReachingOnly(
  s: Awaited<ReturnType<typeof setupActive>>,
  exec: Node,
  only: Node,
  id: string,
  box: Uint8Array,
): Promise<void> {
  const r = await exec.enclave.call('tx', { requestId: id, instance: s.instance, box })
  await pump(s.nodes, r.outputs.filter(sentTo(only)), s.answers)
}

/** Ticks `n` `rounds` times, `stepMs` apart, routing its outputs; returns them all. */
async function ticks(
  nodes: Node[],
  n: Node,
  answers: Map<string, Uint8Array>,
  clock: { now: number },
  rounds: number,
  stepMs: number,
  lost: (o: EnclaveOutput) => boolean = () => false,
): Promise<EnclaveOutput[]> {
  const outs: EnclaveOutput[] = []
  for (let i = 0; i < rounds; i++) {
    clock.now += stepMs
    const t = await n.enclave.call('tick', { now: clock.now })
    outs.push(...t.outputs)
    await pump(nodes, t.outputs, answers, [], true, lost)
  }
  return outs
}

test("a promoted executor signs a withdrawal's authorisation only once every watchdog holds its handover", async () => {
  const clock = { now: 9_000_000 }
  const s = await setupActive(() => clock.now)
  const { nodes, instance, ev, answers, contractEncryptionKey } = s
  const [n0, n1, n2] = nodes as [Node, Node, Node]
  const target = { instance, contractEncryptionKey }
  const userKey = generateSecretKey()
  const user = secretKeyToAddress(userKey)
  await feedChain(nodes, nodes, [ev(EventKind.Deposit, depositData(user, 10n))], answers)
  await tickUntil(
    nodes,
    n0,
    answers,
    () => (clock.now += 1_500),
    () => false,
    2,
  )
  // The user withdraws 10 in the world; the update reaches n1 only, then n0 fails.
  const withdrawal: Tx = {
    instance,
    from: user,
    nonce: 0n,
    to: SYSTEM_ADDRESS,
    value: 10n,
    data: SYSTEM_WITHDRAW_SELECTOR,
    gasLimit: 100_000n,
  }
  await updateReachingOnly(s, n0, n1, 'w', txBox(target, withdrawal, userKey).box)
  assert.ok(!answers.has('w'), 'no receipt: n2 lacks the update')
  // n0 removed, n1 promoted; its handover to n2 is lost.
  const removed = ev(EventKind.MemberRemoved, memberRemovedData(0n, n0.signer, 1n))
  for (const n of [n1, n2]) {
    const c = await n.enclave.call('chain', {
      blockNumber: 30n,
      timestamp: 1100n,
      events: [removed],
    })
    await pump(nodes, c.outputs, answers, [], true, lostTo(n2))
  }
  assert.equal((await digestOf(n1, instance)).role, 'executor')
  const authorise = async (id: string) => {
    const v = systemViewBox(target, userKey, SYSTEM_AUTHORISATION_SELECTOR)
    const q = await n1.enclave.call('view', { requestId: id, instance, box: v.box })
    await pump(nodes, q.outputs, answers, [], true, lostTo(n2))
    return answerOf(answers, id, v.responseKey)
  }
  // Promoted now, n2 would continue from a state without the withdrawal: no authorisation.
  const early = await authorise('auth-early')
  assert.equal(early.kind === 'rejected' && early.error.code, 'NOT_READY')
  // The handover reaches n2 (sent again), which acknowledges it: the withdrawal is signed.
  await ticks(nodes, n1, answers, clock, 2, 3_000)
  assert.equal((await digestOf(n2, instance)).seq, (await digestOf(n1, instance)).seq)
  const later = await authorise('auth-later')
  assert.equal(later.kind, 'view')
  const [cumulative] = decodeAbiParameters(
    [{ type: 'uint256' }, { type: 'uint64' }, { type: 'bytes' }],
    bytesToHex(later.kind === 'view' ? later.returnData : new Uint8Array()),
  )
  assert.equal(cumulative, 10n)
})

test('a promoted executor challenges a watchdog silent to its handover, and answers a challenge once that watchdog is removed', async () => {
  const clock = { now: 9_200_000 }
  const s = await setupActive(() => clock.now)
  const { nodes, instance, ev, answers, contractEncryptionKey, creatorKey } = s
  const [n0, n1, n2] = nodes as [Node, Node, Node]
  const target = { instance, contractEncryptionKey }
  const recipient = randomBytes(20)
  await sendTransfers(nodes, n0, target, creatorKey, [0n], recipient, answers)
  // An update only n1 receives; n0 then fails, n1 is promoted, n2 is down from then on.
  const unreleased = transferBox(target, creatorKey, 1n, recipient)
  await updateReachingOnly(s, n0, n1, 'b', unreleased.box)
  const down = lostTo(n2)
  const removed = ev(EventKind.MemberRemoved, memberRemovedData(0n, n0.signer, 1n))
  const c = await n1.enclave.call('chain', {
    blockNumber: 30n,
    timestamp: 1100n,
    events: [removed],
  })
  await pump(nodes, c.outputs, answers, [], true, down)
  // The user sends it again and, unanswered, challenges the executor with the same box.
  await n1.enclave.call('tx', { requestId: 'b-again', instance, box: unreleased.box })
  const challenge = ev(EventKind.ExecutorChallenged, executorChallengedData(unreleased.box))
  const cc = await n1.enclave.call('chain', {
    blockNumber: 31n,
    timestamp: 1110n,
    events: [challenge],
  })
  const outs = [...cc.outputs, ...(await ticks(nodes, n1, answers, clock, 4, 6_000, down))]
  const challenges = outs.flatMap((o) => (o.type === 'challengeWatchdogs' ? [o] : []))
  assert.deepEqual(
    challenges.map((o) => o.memberMask),
    [1n << 2n],
    'n2 is challenged on-chain',
  )
  assert.equal(outs.filter((o) => o.type === 'respondExecutor').length, 0)
  // n2 cannot answer and is removed: the receipt is released, and the challenge answered.
  const gone = ev(EventKind.MemberRemoved, memberRemovedData(2n, n2.signer, 1n))
  const g = await n1.enclave.call('chain', { blockNumber: 40n, timestamp: 1200n, events: [gone] })
  await pump(nodes, g.outputs, answers, [], true, down)
  assert.equal(g.outputs.filter((o) => o.type === 'respondExecutor').length, 1)
  const a = answerOf(answers, 'b-again', unreleased.responseKey)
  assert.equal(a.kind === 'receipt' && a.receipt.status, 'success')
})

test('a restarted executor fetching a newer state from a watchdog that then leaves the pool serves once the others confirmed its copy', async () => {
  const clock = { now: 9_100_000 }
  const s = await setupActive(() => clock.now)
  const { nodes, instance, ev, answers, contractEncryptionKey, creatorKey } = s
  const [n0, n1, n2] = nodes as [Node, Node, Node]
  const target = { instance, contractEncryptionKey }
  const recipient = randomBytes(20)
  await sendTransfers(nodes, n0, target, creatorKey, [0n, 1n], recipient, answers)
  const stale = [...n0.sealed.get(instance)!]
  // Update 3 reaches n1 only (never released); the executor's host then serves the copy before it.
  await updateReachingOnly(s, n0, n1, 'u3', transferBox(target, creatorKey, 2n, recipient).box)
  assert.equal((await digestOf(n1, instance)).seq, 3n)
  assert.equal((await digestOf(n2, instance)).seq, 2n)
  const r0 = await restartNode(n0, instance, () => clock.now, stale)
  const after = [r0, n1, n2]
  // n1 answers the probe (ahead: the executor fetches its state), then dies before sending it.
  let syncsToN1 = 0
  const lost = (o: EnclaveOutput) => {
    if (o.type !== 'send') return false
    if (sentTo(n1)(o)) return o.envelope.kind === 'sync' ? ++syncsToN1 > 1 : true
    return sentTo(r0)(o) && o.envelope.kind === 'genesis'
  }
  clock.now += 1_500
  await pump(
    after,
    (await r0.enclave.call('tick', { now: clock.now })).outputs,
    answers,
    [],
    true,
    lost,
  )
  const dead = lostTo(n1)
  const removed = ev(EventKind.MemberRemoved, memberRemovedData(1n, n1.signer, 1n))
  for (const n of [r0, n2]) {
    const c = await n.enclave.call('chain', {
      blockNumber: 40n,
      timestamp: 1200n,
      events: [removed],
    })
    await pump(after, c.outputs, answers, [], true, dead)
  }
  // Only n2 is left, which confirmed the copy: the executor serves.
  const t = transferBox(target, creatorKey, 2n, recipient)
  const q = await r0.enclave.call('tx', { requestId: 'late', instance, box: t.box })
  await pump(after, q.outputs, answers, [], true, dead)
  await ticks(after, r0, answers, clock, 3, 6_000, dead)
  const a = answerOf(answers, 'late', t.responseKey)
  assert.equal(a.kind === 'receipt' && a.receipt.status, 'success')
})

test('a watchdog challenge that never shows on the chain is sent again, and so is an answer to an executor challenge', async () => {
  const clock = { now: 9_300_000 }
  const s = await setupActive(() => clock.now)
  const { nodes, instance, ev, answers, contractEncryptionKey, creatorKey } = s
  const [n0, , n2] = nodes as [Node, Node, Node]
  const target = { instance, contractEncryptionKey }
  const down = lostTo(n2)
  const t = transferBox(target, creatorKey, 0n, randomBytes(20))
  const r = await n0.enclave.call('tx', { requestId: 't', instance, box: t.box })
  await pump(nodes, r.outputs, answers, [], true, down)
  const challengesIn = async (rounds: number, stepMs: number) =>
    (await ticks(nodes, n0, answers, clock, rounds, stepMs, down)).filter(
      (o) => o.type === 'challengeWatchdogs',
    ).length
  assert.equal(await challengesIn(2, 6_000), 1, 'n2 late to acknowledge: challenged')
  // The call never lands (reverted, or its block reorganised away): nothing for a while…
  assert.equal(await challengesIn(2, 6_000), 0)
  // …then the challenge goes again.
  assert.equal(await challengesIn(3, 6_000), 1, 'sent again')
  // An executor challenge's answer that never shows on the chain goes again too.
  const challenge = ev(EventKind.ExecutorChallenged, executorChallengedData(new Uint8Array()))
  const c = await n0.enclave.call('chain', {
    blockNumber: 30n,
    timestamp: 1100n,
    events: [challenge],
  })
  assert.equal(c.outputs.filter((o) => o.type === 'respondExecutor').length, 1)
  const respondsIn = async (rounds: number, stepMs: number) => {
    let n = 0
    for (let i = 0; i < rounds; i++) {
      clock.now += stepMs
      const out = await n0.enclave.call('tick', { now: clock.now })
      n += out.outputs.filter((o) => o.type === 'respondExecutor').length
    }
    return n
  }
  assert.equal(await respondsIn(2, 5_000), 0, 'not at once')
  assert.equal(await respondsIn(1, 10_000), 1, 'again, the challenge still open in the view')
})

test("a watchdog following a new executor keeps only that executor's outcomes: none from another executor's log, whatever its seq", async () => {
  const clock = { now: 9_400_000 }
  const s = await setupActive(() => clock.now)
  const { nodes, instance, ev, answers, contractEncryptionKey, creatorKey } = s
  const [n0, n1, n2] = nodes as [Node, Node, Node]
  const target = { instance, contractEncryptionKey }
  await sendTransfers(nodes, n0, target, creatorKey, [0n, 1n], randomBytes(20), answers)
  type Outcomes = { replicated: Map<string, { seq: bigint; bytes: Uint8Array }> }
  const outcomes = (n: Node) =>
    (n.enclave as unknown as { instances: Map<bigint, Outcomes> }).instances.get(instance)!
      .replicated
  // An outcome n2 holds at a seq below where n1 takes over, from a log n1 never followed (as
  // after a handover n2 missed): it must not survive n1's handover.
  const [someKey, some] = [...outcomes(n2).entries()][0]!
  assert.ok(some.seq <= (await digestOf(n1, instance)).seq)
  const foreign = bytesToHex(randomBytes(32))
  outcomes(n2).set(foreign, { seq: some.seq, bytes: some.bytes })
  const removed = ev(EventKind.MemberRemoved, memberRemovedData(0n, n0.signer, 1n))
  for (const n of [n1, n2]) {
    const c = await n.enclave.call('chain', {
      blockNumber: 30n,
      timestamp: 1100n,
      events: [removed],
    })
    await pump(nodes, c.outputs, answers, [], true)
  }
  await ticks(nodes, n1, answers, clock, 2, 3_000)
  assert.equal((await digestOf(n1, instance)).role, 'executor')
  assert.equal((await digestOf(n2, instance)).seq, (await digestOf(n1, instance)).seq)
  assert.ok(!outcomes(n2).has(foreign), 'an outcome the new executor never had is dropped')
  assert.ok(outcomes(n2).has(someKey), "the new executor's own outcomes are kept")
})
