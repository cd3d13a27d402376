/**
 * The SDK's reading of the executor's on-chain answers after it challenged, and the watch of a
 * pending request's host (src/client/failover.ts).
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { openReceipt } from '../../src/client/actions/sendTransaction.ts'
import { PoseRequestError } from '../../src/client/errors.ts'
import {
  challengeOutcome,
  firstFinalAnswer,
  hostWatchPending,
  whileHostAnswers,
} from '../../src/client/failover.ts'
import {
  concatBytes,
  type ErrorCode,
  encodeAnswer,
  RESPONSE_KEY_BYTES,
  sealAnswer,
  utf8,
} from '../../src/protocol/index.ts'

const responseKey = new Uint8Array(RESPONSE_KEY_BYTES).fill(7)
const otherKey = new Uint8Array(RESPONSE_KEY_BYTES).fill(9)
const txHash = new Uint8Array(32).fill(1)

function sealedRejection(key: Uint8Array, code: ErrorCode, message: string): Uint8Array {
  const answer = encodeAnswer({ kind: 'rejected', error: { name: 'ProtocolError', code, message } })
  return sealAnswer(key, answer)
}

/** The SDK's own opening of a sealed answer; rejections and foreign answers need no client. */
const open = (sealed: Uint8Array) =>
  openReceipt({} as never, { instance: 1n, txHash, sealed, responseKey }).then(() => 'receipt')

test('an on-chain answer that says to resubmit is not the final answer (simulator seed 50)', async () => {
  // Seed 50: the executor, restarted from a stale sealed copy, answered a user's challenge and
  // then resynchronised from a watchdog, abandoning the challenged transaction with
  // UNAVAILABLE "resubmit". That answer landed on-chain; the SDK threw it at the user, who
  // moved on to the next nonce, which then waited for the abandoned one forever.
  const answers = [
    sealedRejection(otherKey, 'BAD_NONCE', "another user's answer"),
    sealedRejection(
      responseKey,
      'UNAVAILABLE',
      'instance 1: the executor resynchronised; resubmit',
    ),
  ]
  assert.deepEqual(await firstFinalAnswer(answers, open), { resubmit: true })
  assert.equal(await firstFinalAnswer(answers.slice(0, 1), open), undefined)
})

test('a final rejection on-chain is thrown; a receipt is returned', async () => {
  const resubmit = sealedRejection(responseKey, 'UNAVAILABLE', 'resubmit')
  await assert.rejects(
    firstFinalAnswer([resubmit, sealedRejection(responseKey, 'BAD_NONCE', 'nonce used')], open),
    (e: unknown) => e instanceof PoseRequestError && e.code === 'BAD_NONCE',
  )
  const found = await firstFinalAnswer([resubmit, Uint8Array.of(1)], async (s) => {
    if (s === resubmit) return open(s)
    return 'receipt'
  })
  assert.deepEqual(found, { value: 'receipt' })
})

test("a challenge closed without this request's answer lets the client challenge again (simulator seed 110)", async () => {
  // Seed 110: a user's view call could not reach the executor, so the SDK challenged with the
  // view's box. The executor answered with its liveness answer (a view box is not a
  // transaction) and crashed right after; the SDK kept waiting for an answer of its own on-chain
  // and never challenged again, and the view failed after 90 s.
  const alive = concatBytes(utf8('POSE-ALIVE-v1'), new Uint8Array(32), new Uint8Array(32).fill(3))
  assert.deepEqual(await challengeOutcome([alive], open), { again: true })
  // Told to resubmit: the same.
  const resubmit = sealedRejection(responseKey, 'UNAVAILABLE', 'resubmit')
  assert.deepEqual(await challengeOutcome([resubmit], open), { again: true })
  // Not answered yet: keep waiting.
  assert.equal(await challengeOutcome([], open), undefined)
  // Its own receipt after the liveness answer of an earlier challenge is still found.
  const found = await challengeOutcome([alive, Uint8Array.of(1)], async (s) => {
    if (s === alive) return open(s)
    return 'receipt'
  })
  assert.deepEqual(found, { value: 'receipt' })
})

test("a host's watch lets go of each request's answer once it settled, while others wait on it", async () => {
  // One request never settles, so the watch of its host stays up (as under steady load).
  const endpoint = 'http://127.0.0.1:9' // never probed: the checks would start in ten minutes
  const probeMs = 600_000
  let release!: (v: string) => void
  const stuck = whileHostAnswers(new Promise<string>((r) => (release = r)), endpoint, probeMs)
  try {
    setFlagsFromString('--expose-gc')
    const gc = runInNewContext('gc') as () => void
    const answers: WeakRef<object>[] = []
    for (let i = 0; i < 200; i++) {
      const answer = { i }
      answers.push(new WeakRef(answer))
      assert.equal(await whileHostAnswers(Promise.resolve(answer), endpoint, probeMs), answer)
    }
    await assert.rejects(
      whileHostAnswers(Promise.reject(new Error('refused')), endpoint, probeMs),
      /refused/,
    )
    assert.equal(hostWatchPending(endpoint, probeMs), 1, 'only the stuck request is counted')
    for (let k = 0; k < 3; k++) {
      await new Promise((r) => setImmediate(r))
      gc()
    }
    // The last answer may still sit in a register or a settled promise of this function.
    const kept = answers.filter((a) => a.deref() !== undefined).length
    assert.ok(kept <= 1, `answers still reachable after their requests settled: ${kept} of 200`)
  } finally {
    release('done')
  }
  assert.equal(await stuck, 'done')
  assert.equal(hostWatchPending(endpoint, probeMs), 0, 'the watch went idle')
})
