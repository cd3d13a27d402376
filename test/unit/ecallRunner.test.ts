/**
 * The enclave process's ecall runner (src/enclave/ecallRunner.ts) over a real executor of the
 * in-process harness: an ecall that sends a peer message (an update, an acknowledgement) or
 * answers requests has its response sent before the ecalls queued behind it run, so receipts
 * reach the clients while the executor goes on with the next run of transactions.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { ecallRunner } from '../../src/enclave/ecallRunner.ts'
import {
  bytesToHex,
  type EcallResponse,
  type EnclaveOutput,
  LIMITS,
  packRequests,
  unpackResponses,
} from '../../src/protocol/index.ts'
import { waitFor } from '../e2e/helpers.ts'
import { type Node, setupActive, transferBox } from './harness.ts'

const isUpdate = (o: EnclaveOutput): o is Extract<EnclaveOutput, { type: 'send' }> =>
  o.type === 'send' && o.envelope.kind === 'update'

test('answers, updates and acknowledgements leave before the ecalls queued behind them run', {
  timeout: 60_000,
}, async () => {
  const { nodes, instance, exec, creatorKey, contractEncryptionKey } = await setupActive()
  const [, w1, w2] = nodes as [Node, Node, Node]
  const target = { instance, contractEncryptionKey }
  /** A runner over `node`'s enclave and the messages it sent back. */
  const runnerOf = (node: Node) => {
    const messages: EcallResponse[][] = []
    // Unpacked as the host does (protocol/ecallWire.ts).
    const run = ecallRunner(node.enclave, (msg) => {
      const responses: EcallResponse[] = []
      unpackResponses(msg, (r) => responses.push(r))
      messages.push(responses)
    })
    const next = async (count: number): Promise<EcallResponse[][]> => {
      await waitFor(`${count} messages`, async () => messages.length >= count, 10_000)
      return messages.splice(0, count)
    }
    return { run, next }
  }
  const executor = runnerOf(exec)
  const recipient = new Uint8Array(20).fill(7)
  let nextId = 1
  const txs = (from: number, count: number) =>
    Array.from({ length: count }, (_, i) => ({
      id: nextId++,
      method: 'tx' as const,
      params: {
        requestId: `t${from + i}`,
        instance,
        box: transferBox(target, creatorKey, BigInt(from + i), recipient).box,
      },
    }))
  const peer = (envelope: unknown) => ({
    id: nextId++,
    method: 'peer' as const,
    params: { envelope },
  })
  const to =
    (node: Node) =>
    (o: EnclaveOutput): o is Extract<EnclaveOutput, { type: 'send' }> =>
      o.type === 'send' && bytesToHex(o.to) === bytesToHex(node.signer)
  const n = LIMITS.groupCommitTxs

  // Two runs' worth of transactions in one message, as the host packs them: each run's update
  // leaves with its run.
  executor.run({ batch: packRequests(txs(0, 2 * n)) })
  const [first, second] = (await executor.next(2)) as [EcallResponse[], EcallResponse[]]
  assert.equal(first.length, n)
  assert.equal(second.length, n)
  const updates = [first, second].map((m) => m.flatMap((r) => r.outputs).filter(isUpdate))
  for (const u of updates) assert.equal(u.length, nodes.length - 1, 'an update to each watchdog')

  // A watchdog given both updates in one message acknowledges the first before it takes the
  // second.
  const watchdog = runnerOf(w1)
  watchdog.run({ batch: updates.map((u) => peer(u.find(to(w1))!.envelope)) })
  const acked = await watchdog.next(2)
  const acksIn = (m: EcallResponse[]) => m.flatMap((r) => r.outputs).filter(to(exec))
  assert.deepEqual(
    acked.map((m) => [m.length, acksIn(m).length]),
    [
      [1, 1],
      [1, 1],
    ],
  )
  // The other watchdog acknowledges the first update too.
  const other = await w2.enclave.call('peer', { envelope: updates[0]!.find(to(w2))!.envelope })
  const acks = [...acksIn(acked[0]!), ...other.outputs.filter(to(exec))].map((o) =>
    peer(o.envelope),
  )
  assert.equal(acks.length, nodes.length - 1)

  // The acknowledgements and a further run of transactions in one message: the first run's
  // answers leave before the transactions behind them run.
  executor.run({ batch: packRequests([...txs(2 * n, n), ...acks]) })
  const [answered, later] = (await executor.next(2)) as [EcallResponse[], EcallResponse[]]
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
