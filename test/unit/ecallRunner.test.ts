/**
 * The enclave process's ecall runner (src/enclave/ecallRunner.ts) over a real executor of the
 * in-process harness: an ecall that sends an update or answers requests has its response sent
 * before the ecalls queued behind it run, so receipts reach the clients while the executor
 * goes on with the next run of transactions.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { ecallRunner } from '../../src/enclave/ecallRunner.ts'
import {
  bytesToHex,
  type EcallResponse,
  type EnclaveOutput,
  LIMITS,
} from '../../src/protocol/index.ts'
import { setupActive, transferBox } from './harness.ts'

const isUpdate = (o: EnclaveOutput): o is Extract<EnclaveOutput, { type: 'send' }> =>
  o.type === 'send' && o.envelope.kind === 'update'

test('answers and updates leave before the ecalls queued behind them run', {
  timeout: 60_000,
}, async () => {
  const { nodes, instance, exec, creatorKey, contractEncryptionKey } = await setupActive()
  const target = { instance, contractEncryptionKey }
  const messages: EcallResponse[][] = []
  const run = ecallRunner(exec.enclave, (msg) => {
    messages.push('batch' in msg ? msg.batch : [msg])
  })
  const messagesUntil = async (count: number): Promise<EcallResponse[][]> => {
    for (let i = 0; i < 1000 && messages.length < count; i++)
      await new Promise((r) => setTimeout(r, 10))
    assert.ok(messages.length >= count, `expected ${count} messages, got ${messages.length}`)
    return messages.splice(0, count)
  }
  const recipient = new Uint8Array(20).fill(7)
  let nextId = 1
  const txs = (from: number, count: number) =>
    Array.from({ length: count }, (_, i) => ({
      id: nextId++,
      method: 'tx',
      params: {
        requestId: `t${from + i}`,
        instance,
        box: transferBox(target, creatorKey, BigInt(from + i), recipient).box,
      },
    }))
  const n = LIMITS.groupCommitTxs

  // Two runs' worth of transactions in one message: each run's update leaves with its run.
  run({ batch: txs(0, 2 * n) })
  const [first, second] = (await messagesUntil(2)) as [EcallResponse[], EcallResponse[]]
  assert.equal(first.length, n)
  assert.equal(second.length, n)
  const update = first.flatMap((r) => r.outputs).filter(isUpdate)
  assert.equal(update.length, nodes.length - 1, 'the first update, to each watchdog')
  assert.equal(second.flatMap((r) => r.outputs).filter(isUpdate).length, nodes.length - 1)

  // The watchdogs acknowledge the first update.
  const acks: unknown[] = []
  for (const o of update) {
    const to = nodes.find((x) => bytesToHex(x.signer) === bytesToHex(o.to))!
    const r = await to.enclave.call('peer', { envelope: o.envelope })
    for (const a of r.outputs)
      if (a.type === 'send' && bytesToHex(a.to) === bytesToHex(exec.signer))
        acks.push({ id: nextId++, method: 'peer', params: { envelope: a.envelope } })
  }
  assert.equal(acks.length, nodes.length - 1)

  // The acknowledgements and a further run of transactions in one message: the first run's
  // answers leave before the transactions behind them run.
  run({ batch: [...txs(2 * n, n), ...acks] })
  const [answered, later] = (await messagesUntil(2)) as [EcallResponse[], EcallResponse[]]
  const ackIds = acks.map((a) => (a as { id: number }).id)
  assert.deepEqual(
    answered.map((r) => r.id),
    ackIds,
    'the message with the answers holds the acknowledgements alone',
  )
  const answers = answered.flatMap((r) => r.outputs).filter((o) => o.type === 'answer')
  assert.deepEqual(
    answers.map((o) => o.requestId).sort(),
    Array.from({ length: n }, (_, i) => `t${i}`).sort(),
  )
  assert.ok(answers.every((o) => o.sealed && !o.error))
  assert.equal(later.length, n, 'the third run follows in a message of its own')
  assert.ok(later.every((r) => r.ok && !ackIds.includes(r.id)))
  assert.equal(later.flatMap((r) => r.outputs).filter(isUpdate).length, nodes.length - 1)
})
