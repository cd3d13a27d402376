/**
 * The floor section's ecall channel (bench/sections/floor.ts, bench/lib/ipcEcho.ts): the echo
 * child answers as the enclave does, one message per event-loop turn, packed as the channel
 * carries it, and the round trip is measured with requests in flight.
 */
import assert from 'node:assert/strict'
import { fork } from 'node:child_process'
import { once } from 'node:events'
import { test } from 'node:test'
import { ipcRoundTripUs } from '../../bench/sections/floor.ts'
import {
  type EcallRequest,
  type EcallResponse,
  packRequests,
  unpackResponses,
} from '../../src/protocol/index.ts'

test('the IPC echo child answers single ecalls and runs as the enclave does, a turn at a time, and reports its CPU', {
  timeout: 20_000,
}, async () => {
  const child = fork(new URL('../../bench/lib/ipcEcho.ts', import.meta.url), ['5'], {
    serialization: 'advanced',
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    execArgv: ['--import', 'tsx'],
  })
  try {
    await once(child, 'message') // ready
    const ecall = (id: number): EcallRequest => ({
      id,
      method: 'tx',
      params: { requestId: `r${id}`, instance: 1n, box: new Uint8Array(8) },
    })
    /** The next message's responses, unpacked as the host does. */
    const next = async () => {
      const [msg] = await once(child, 'message')
      const out: EcallResponse[] = []
      unpackResponses(msg, (r) => out.push(r))
      return out
    }
    const answered = (rs: EcallResponse[]) =>
      rs
        .flatMap((r) => r.outputs)
        .map((o) => (o.type === 'answer' ? [o.requestId, o.sealed?.length] : []))

    let reply = next()
    child.send(ecall(1))
    let rs = await reply
    assert.deepEqual(
      rs.map((r) => r.id),
      [1, 0],
      'its own response, then the one with the answer',
    )
    assert.deepEqual(answered(rs), [['r1', 5]])

    reply = next()
    const packed = packRequests([ecall(2), ecall(3), ecall(4)])
    assert.equal(packed.length, 1, 'the three go as one run')
    child.send({ batch: packed })
    rs = await reply
    assert.deepEqual(
      rs.map((r) => r.id),
      [2, 3, 4, 0],
      'the answers of one turn go as one message',
    )
    assert.deepEqual(answered(rs), [
      ['r2', 5],
      ['r3', 5],
      ['r4', 5],
    ])

    const cpu = once(child, 'message') as Promise<[{ cpu: NodeJS.CpuUsage }]>
    child.send('cpu')
    const [{ cpu: usage }] = await cpu
    assert.ok(usage.user > 0)
  } finally {
    child.kill('SIGKILL')
  }
})

test('the ecall round trip is measured with requests in flight, both ends counted', {
  timeout: 60_000,
}, async () => {
  for (const inFlight of [1, 16]) {
    const us = await ipcRoundTripUs(256, 420, 300, inFlight)
    assert.ok(Number.isFinite(us) && us > 0, `${inFlight} in flight: ${us} µs`)
  }
})
