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
  type EnclaveOutput,
  EventKind,
  randomBytes,
  utf8,
} from '../../src/protocol/index.ts'
import { hexb, type Node, pump, restartNode, setupActive, transferBox } from './harness.ts'

const ACK_TIMEOUT_MS = 5_000

async function partitioned() {
  let clock = 1_000_000
  const s = await setupActive(() => clock)
  const [exec, w1] = s.nodes as [Node, Node, Node]
  const notTo = (n: Node) => (o: EnclaveOutput) =>
    !(o.type === 'send' && bytesToHex(o.to) === bytesToHex(n.signer))
  const target = { instance: s.instance, contractEncryptionKey: s.contractEncryptionKey }
  // Two updates (a, then b) reach the executor and watchdog 2; nothing reaches watchdog 1.
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
  }
  assert.equal(s.answers.size, 0, 'no receipt while watchdog 1 has not acked')
  clock += ACK_TIMEOUT_MS + 1_000
  const ticked = await exec.enclave.call('tick', { now: clock })
  const challenge = ticked.outputs.find((o) => o.type === 'challengeWatchdogs')
  assert.ok(challenge && challenge.type === 'challengeWatchdogs', 'the executor challenges')
  assert.equal(challenge.memberMask, 2n, 'only watchdog 1 (slot 1) is late')
  const digestOf = async (n: Node) =>
    (await n.enclave.call('digest', { instance: s.instance })).result as { seq: bigint }
  /** Delivers one manager event to every node; returns each node's outputs. */
  const deliver = async (kind: number, data: Uint8Array) => {
    const e = s.ev(kind, data)
    const outs: EnclaveOutput[][] = []
    for (const n of s.nodes)
      outs.push(
        (await n.enclave.call('chain', { blockNumber: 20n, timestamp: 1100n, events: [e] }))
          .outputs,
      )
    return { event: e, outs }
  }
  const challenged = (payload: Uint8Array) =>
    hexb(encodeAbiParameters([{ type: 'uint16' }, { type: 'bytes' }], [2, bytesToHex(payload)]))
  const responded = hexb(encodeAbiParameters([{ type: 'uint8' }], [1]))
  return { ...s, exec, w1, challenge, deliver, challenged, responded, digestOf, notTo }
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

test('an executor restarted after it sealed a challenge but before its answer left answers on its next tick (simulator seed 197)', async () => {
  let clock = 1_000_000
  const s = await setupActive(() => clock)
  const [exec] = s.nodes as [Node, Node, Node]
  const payload = utf8('are you there?')
  const challenge = s.ev(
    EventKind.ExecutorChallenged,
    hexb(
      encodeAbiParameters(
        [{ type: 'address' }, { type: 'bytes' }],
        [bytesToHex(randomBytes(20)), bytesToHex(payload)],
      ),
    ),
  )
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
