/**
 * Session-authorised transactions (docs/decisions/0014): a user signs one `Session` message for
 * a box session's ephemeral key, and the executor accepts the transactions in that session's
 * boxes as the user's. Each refusal names what was wrong; a refused request changes nothing.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import {
  BoxSessions,
  bytesToHex,
  generateSecretKey,
  hashTx,
  randomBytes,
  signDigest,
} from '../../src/protocol/index.ts'
import {
  answerOf,
  CHAIN_ID,
  MANAGER,
  pump,
  sessionTransferBox,
  setupActive,
  transferBox,
} from './harness.ts'

const FAR = 1n << 60n

describe('session-authorised transactions', () => {
  test('one Session signature authorises every transaction of a box session, and only that session', async () => {
    const { nodes, instance, creatorKey, exec, contractEncryptionKey, answers } =
      await setupActive()
    const target = { instance, contractEncryptionKey }
    const recipient = randomBytes(20)
    const digest = async () =>
      bytesToHex(
        ((await exec.enclave.call('digest', { instance })).result as { digest: Uint8Array }).digest,
      )
    const send = async (id: string, sealed: { box: Uint8Array; responseKey: Uint8Array }) => {
      const r = await exec.enclave.call('tx', { requestId: id, instance, box: sealed.box })
      await pump(nodes, r.outputs, answers)
      return answerOf(answers, id, sealed.responseKey)
    }
    const sessions = new BoxSessions()
    const first = sessionTransferBox(target, creatorKey, 0n, recipient, {
      sessions,
      validUntil: FAR,
    })
    const a0 = await send('s0', first)
    assert.equal(a0.kind === 'receipt' && a0.receipt.status, 'success')
    // The second box of the session carries the same authorisation: accepted without a new one.
    const soon = 5000n
    const second = sessionTransferBox(target, creatorKey, 1n, recipient, {
      sessions,
      validUntil: soon,
    })
    const a1 = await send('s1', second)
    assert.equal(a1.kind === 'receipt' && a1.receipt.status, 'success')
    const before = await digest()

    const refused = async (
      id: string,
      sealed: { box: Uint8Array; responseKey: Uint8Array },
      code: string,
      message: RegExp,
    ) => {
      const a = await send(id, sealed)
      assert.equal(a.kind, 'rejected', id)
      if (a.kind !== 'rejected') return
      assert.equal(a.error.code, code, `${id}: ${a.error.message}`)
      assert.match(a.error.message, message, id)
    }
    // The same session with a signature that is not the one it was authorised with.
    await refused(
      'bogus-signature',
      sessionTransferBox(target, creatorKey, 2n, recipient, {
        sessions,
        validUntil: FAR,
        signature: signDigest(randomBytes(32), creatorKey),
      }),
      'BAD_SIGNATURE',
      /did not authorise this box's session key/,
    )
    // An authorisation of another session's key, carried in this session's box.
    await refused(
      'other-box-key',
      sessionTransferBox(target, creatorKey, 2n, recipient, {
        sessions: new BoxSessions(),
        validUntil: FAR,
        authBoxKey: sessions.session(contractEncryptionKey).publicKey,
      }),
      'BAD_SIGNATURE',
      /did not authorise/,
    )
    // Signed by someone else than `from`.
    await refused(
      'other-signer',
      sessionTransferBox(target, creatorKey, 2n, recipient, {
        sessions: new BoxSessions(),
        validUntil: FAR,
        authKey: generateSecretKey(),
      }),
      'BAD_SIGNATURE',
      /did not authorise/,
    )
    // Past its validity on the enclave's chain clock.
    await refused(
      'expired',
      sessionTransferBox(target, creatorKey, 2n, recipient, {
        sessions: new BoxSessions(),
        validUntil: 1n,
      }),
      'EXPIRED',
      /validUntil: 1 is in the past/,
    )
    assert.equal(await digest(), before, 'no refused request changed the state')

    // The same transaction as nonce 1, signed itself: the same hash, so the same receipt.
    const again = transferBox(target, creatorKey, 1n, recipient)
    const a2 = await send('s1-again', again)
    assert.ok(a1.kind === 'receipt' && a2.kind === 'receipt')
    assert.equal(bytesToHex(a2.receipt.txHash), bytesToHex(a1.receipt.txHash))
    assert.equal(a2.receipt.seq, a1.receipt.seq)
    const tx1 = sessionTransferBox(target, creatorKey, 1n, recipient, {
      sessions,
      validUntil: FAR,
    }).tx
    assert.equal(
      bytesToHex(hashTx({ chainId: CHAIN_ID, manager: MANAGER }, tx1)),
      bytesToHex(a1.receipt.txHash),
    )
    assert.equal(await digest(), before)

    // Past `soon` on the enclave's chain clock, the same box still gets its receipt; a new
    // transaction under that authorisation is refused.
    await exec.enclave.call('chain', { blockNumber: 12n, timestamp: soon + 1n, events: [] })
    const a3 = await send('s1-late', second)
    assert.ok(a3.kind === 'receipt', 'the receipt it has')
    assert.equal(bytesToHex(a3.receipt.txHash), bytesToHex(a1.receipt.txHash))
    await refused(
      'late-new',
      sessionTransferBox(target, creatorKey, 2n, recipient, { sessions, validUntil: soon }),
      'EXPIRED',
      /validUntil: 5000 is in the past/,
    )
    assert.equal(await digest(), before)
  })
})
