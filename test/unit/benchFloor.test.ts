/**
 * The floor section's ecall channel (bench/sections/floor.ts, bench/lib/ipcEcho.mjs): the echo
 * child answers as the enclave does, one message per event-loop turn, and the round trip is
 * measured with requests in flight.
 */
import assert from 'node:assert/strict'
import { fork } from 'node:child_process'
import { once } from 'node:events'
import { test } from 'node:test'
import { ipcRoundTripUs } from '../../bench/sections/floor.ts'

type Answer = { id: number; ok: boolean; outputs: Array<{ requestId: number; sealed: Uint8Array }> }

test('the IPC echo child answers single ecalls and batches, a turn at a time, and reports its CPU', {
  timeout: 20_000,
}, async () => {
  const child = fork(new URL('../../bench/lib/ipcEcho.mjs', import.meta.url), [], {
    serialization: 'advanced',
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    execArgv: [],
  })
  try {
    await once(child, 'message') // ready
    const ecall = (id: number, answerBytes: number) => ({
      id,
      method: 'tx',
      params: { requestId: id, instance: '1', box: new Uint8Array(8), answerBytes },
    })
    const next = () => once(child, 'message') as Promise<[Answer | { batch: Answer[] }]>

    let reply = next()
    child.send(ecall(1, 5))
    const [one] = await reply
    assert.ok(!('batch' in one), 'one ecall, one answer')
    assert.equal(one.id, 1)
    assert.equal(one.outputs[0]?.sealed.length, 5)

    reply = next()
    child.send({ batch: [ecall(2, 1), ecall(3, 2), ecall(4, 3)] })
    const [many] = await reply
    assert.ok('batch' in many, 'the answers of one turn go as one message')
    assert.deepEqual(
      many.batch.map((a) => [a.id, a.outputs[0]?.requestId, a.outputs[0]?.sealed.length]),
      [
        [2, 2, 1],
        [3, 3, 2],
        [4, 4, 3],
      ],
    )

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
