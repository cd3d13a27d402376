/**
 * A sealed log whose tail does not open (a power loss can leave zeros or old blocks where the
 * file system had recorded a longer file): the instance is restored from the records before
 * it, as from an older copy, instead of not at all.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { type EnclaveOutput, ProtocolError, randomBytes } from '../../src/protocol/index.ts'
import {
  answerOf,
  digestOf,
  type Node,
  newNode,
  pump,
  sendTransfers,
  setupActive,
  trackSeals,
  transferBox,
} from './harness.ts'

/** `n` restarted from `blobs`: the new node and what its restore ecall put out. */
async function restoreFrom(n: Node, instance: bigint, now: () => number, blobs: Uint8Array[]) {
  const r = await newNode(n.platformSecret, n.sealedIdentity, now)
  const { outputs, result } = (await r.enclave.call('restore', { instance, blobs })) as {
    outputs: EnclaveOutput[]
    result: { seq: bigint; records: number }
  }
  r.sealed.set(instance, [...blobs])
  return { node: trackSeals(r), outputs, records: result.records }
}

const warnings = (outputs: EnclaveOutput[]) =>
  outputs
    .filter((o) => o.type === 'log' && o.level === 'warn')
    .map((o) => o.type === 'log' && o.message)

test('records that do not open end a restored copy where they start; a copy with none that opens is refused', async () => {
  let clock = 3_000_000
  const now = () => clock
  const { nodes, instance, creatorKey, contractEncryptionKey, answers } = await setupActive(now)
  const [n0, n1, n2] = nodes as [Node, Node, Node]
  const target = { instance, contractEncryptionKey }
  const recipient = randomBytes(20)
  await sendTransfers(nodes, n0, target, creatorKey, [0n, 1n], recipient, answers)
  const atTwo = n1.sealed.get(instance)!.length
  await sendTransfers(nodes, n0, target, creatorKey, [2n], recipient, answers)
  const watchdog = [...n1.sealed.get(instance)!]
  assert.ok(watchdog.length > atTwo, 'the last transfer appended a record')

  // A zero-filled tail and garbage after the watchdog's records.
  const tail = await restoreFrom(n1, instance, now, [
    ...watchdog,
    new Uint8Array(0),
    randomBytes(300),
  ])
  assert.equal((await digestOf(tail.node, instance)).seq, 3n)
  assert.equal(tail.records, watchdog.length, 'the records it restored from, for its host to keep')
  assert.deepEqual(warnings(tail.outputs), [
    'A sealed record does not open; restored from the records before it',
  ])
  // A record in the middle that does not open: the copy ends before it (later ones are not
  // applied on top of a gap).
  const middle = [...watchdog.slice(0, atTwo), randomBytes(64), ...watchdog.slice(atTwo)]
  const cut = await restoreFrom(n1, instance, now, middle)
  assert.equal((await digestOf(cut.node, instance)).seq, 2n)
  assert.equal(cut.records, atTwo)

  // Nothing that opens: refused, as before.
  await assert.rejects(
    newNode(n1.platformSecret, n1.sealedIdentity, now).then((r) =>
      r.enclave.call('restore', { instance, blobs: [randomBytes(300), ...watchdog] }),
    ),
    (e: unknown) => e instanceof ProtocolError && e.code === 'DECRYPTION_FAILED',
  )

  // The executor restored over a torn tail waits for its pool and serves again.
  const exec = await restoreFrom(n0, instance, now, [
    ...n0.sealed.get(instance)!,
    new Uint8Array(0),
  ])
  const e = exec.node
  const box = transferBox(target, creatorKey, 3n, recipient)
  const sent = await e.enclave.call('tx', { requestId: 'x3', instance, box: box.box })
  await pump([e, n1, n2], sent.outputs, answers, [], true)
  for (let i = 0; i < 10 && !answers.has('x3'); i++) {
    clock += 1_500
    const t = await e.enclave.call('tick', { now: clock })
    await pump([e, n1, n2], t.outputs, answers, [], true)
  }
  const a = answerOf(answers, 'x3', box.responseKey)
  assert.equal(a.kind, 'receipt')
  assert.equal(a.kind === 'receipt' && a.receipt.seq, 4n)
})
