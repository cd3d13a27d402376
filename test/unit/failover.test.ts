/**
 * The SDK's reading of the executor's on-chain answers after it challenged (src/client/failover.ts).
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { Hex } from 'viem'
import { openReceipt } from '../../src/client/actions/sendTransaction.ts'
import { PoseRequestError } from '../../src/client/errors.ts'
import { firstFinalAnswer } from '../../src/client/failover.ts'
import {
  aeadSeal,
  bytesToHex,
  type ErrorCode,
  encodeAnswer,
  utf8,
} from '../../src/protocol/index.ts'

const responseKey = new Uint8Array(32).fill(7)
const otherKey = new Uint8Array(32).fill(9)
const txHash = new Uint8Array(32).fill(1)

function sealedRejection(key: Uint8Array, code: ErrorCode, message: string): Hex {
  const answer = encodeAnswer({ kind: 'rejected', error: { name: 'ProtocolError', code, message } })
  return bytesToHex(aeadSeal(key, answer, utf8('POSE-ANSWER-v1')))
}

/** The SDK's own opening of a sealed answer; rejections and foreign answers need no client. */
const open = (sealed: Hex) =>
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
  const found = await firstFinalAnswer([resubmit, '0x01'], async (s) => {
    if (s === resubmit) return open(s)
    return 'receipt'
  })
  assert.deepEqual(found, { value: 'receipt' })
})
