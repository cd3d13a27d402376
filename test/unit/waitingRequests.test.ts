/**
 * The operator's waiting requests (`src/operator/waiting.ts`): answered, refused and timed-out
 * requests, one timer for all of them, and a stop that fails whatever still waits.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { WaitingRequests } from '../../src/operator/waiting.ts'
import { ProtocolError } from '../../src/protocol/index.ts'

const codeOf = (p: Promise<unknown>) =>
  p.then(
    () => 'answered',
    (e: unknown) => (e instanceof ProtocolError ? e.code : String(e)),
  )

test('a request gets its own answer or refusal; an unknown id is refused without effect', async () => {
  const w = new WaitingRequests(60_000)
  const a = w.wait('a', 'tx')
  const b = w.wait('b', 'view')
  assert.equal(w.size, 2)
  assert.equal(w.resolve('a', Uint8Array.of(7)), true)
  assert.equal(w.resolve('a', Uint8Array.of(8)), false, 'answered once')
  assert.equal(w.reject('nobody', new Error('x')), false)
  assert.equal(w.reject('b', new ProtocolError('BAD_NONCE', 'used')), true)
  assert.deepEqual(await a, Uint8Array.of(7))
  assert.equal(await codeOf(b), 'BAD_NONCE')
  assert.equal(w.size, 0)
})

test('requests time out in order, each at its own deadline', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] })
  let now = 0
  const w = new WaitingRequests(1_000, () => now)
  const outcomes: string[] = []
  const track = (id: string, p: Promise<unknown>) =>
    void codeOf(p).then((c) => outcomes.push(`${id} ${c}`))
  track('a', w.wait('a', 'tx'))
  now = 400
  track('b', w.wait('b', 'tx'))
  now = 700
  track('c', w.wait('c', 'view'))
  w.resolve('b', Uint8Array.of(1)) // answered before its deadline: never times out
  now = 1_000
  t.mock.timers.tick(1_000)
  await new Promise((r) => setImmediate(r))
  assert.deepEqual(outcomes, ['b answered', 'a TIMEOUT'])
  now = 1_699
  t.mock.timers.tick(699)
  await new Promise((r) => setImmediate(r))
  assert.deepEqual(outcomes, ['b answered', 'a TIMEOUT'], 'c not before its deadline')
  now = 1_700
  t.mock.timers.tick(1)
  await new Promise((r) => setImmediate(r))
  assert.deepEqual(outcomes, ['b answered', 'a TIMEOUT', 'c TIMEOUT'])
  assert.equal(w.size, 0)
})

test('the timeout names the request and says the tx may still run', async () => {
  const w = new WaitingRequests(5)
  await assert.rejects(w.wait('x', 'tx'), (e: unknown) => {
    assert.ok(e instanceof ProtocolError)
    assert.equal(e.code, 'TIMEOUT')
    assert.match(e.message, /^tx: no answer from the enclave in time; the tx may still be executed/)
    return true
  })
})

test('close fails every waiting request and refuses new ones', async () => {
  const w = new WaitingRequests(60_000)
  const pending = [w.wait('a', 'tx'), w.wait('b', 'tx')]
  w.close(new ProtocolError('UNAVAILABLE', 'operator node is stopping'))
  assert.deepEqual(await Promise.all(pending.map(codeOf)), ['UNAVAILABLE', 'UNAVAILABLE'])
  assert.equal(await codeOf(w.wait('c', 'tx')), 'UNAVAILABLE')
  assert.equal(w.size, 0)
})
