/**
 * The enclave in-process: three Enclave objects wired by hand play executor and watchdogs, with
 * chain events built like the manager builds them. Covers genesis, replication, receipts,
 * restore from sealed blobs, and every ecall's rejection of hostile input.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import { decodeAbiParameters, encodeAbiParameters } from 'viem'
import { Enclave } from '../../src/enclave/enclave.ts'
import { createSealer } from '../../src/enclave/identity.ts'
import { OutcomeCache } from '../../src/enclave/instance.ts'
import {
  aeadOpen,
  BOX_CONTEXT,
  BROADCAST,
  boxSeal,
  bytesToHex,
  type ChainEvent,
  decodeAnswer,
  decodeSealedUpdate,
  decodeUpdateBody,
  type EnclaveOutput,
  EventKind,
  encodeFinalPage,
  encodeSignedTx,
  envelopeFromWire,
  envelopeToWire,
  executedBytes,
  finalBalancesRoot,
  generateSecretKey,
  hashTx,
  hexToBytes,
  instanceAad,
  keccak256,
  LIMITS,
  MAX_FINAL_ACCOUNTS,
  openAnswer,
  ProtocolError,
  randomBytes,
  recoverAddress,
  SEALED_UPDATE_TAG,
  SYSTEM_ADDRESS,
  SYSTEM_AUTHORISATION_SELECTOR,
  SYSTEM_NONCE_SELECTOR,
  SYSTEM_TERMINATED_SLOT,
  SYSTEM_WITHDRAW_SELECTOR,
  secretKeyToAddress,
  signDigest,
  signEnvelope,
  systemWithdrawnSlot,
  type Tx,
  terminateDigest,
  UPDATE_PAYLOAD_FRAME_BYTES,
  unpackUpdatePayload,
  utf8,
  verifyReceiptSignature,
  WRITE_SET_FRAME_BYTES,
  withdrawDigest,
} from '../../src/protocol/index.ts'

import {
  answerOf,
  BALANCE_SELECTOR,
  CHAIN_ID,
  depositData,
  digestOf as digestOfNode,
  eventChain,
  executorChallengedData,
  feedChain,
  hexb,
  MANAGER,
  MEASUREMENT,
  memberRemovedData,
  type Node,
  newNode,
  pump,
  refilledData,
  restartNode,
  sendTransfer,
  sendTransfers,
  sentTo,
  setupActive,
  systemView,
  systemViewBox,
  tickUntil,
  transferBox,
  transferTx,
  txBox,
} from './harness.ts'

/** How many deposits `n`'s chain view of `instance` keeps (not known credited by every member). */
const depositsKept = (n: Node, instance: bigint) =>
  (n.enclave as unknown as { views: Map<bigint, { deposits: unknown[] }> }).views.get(instance)!
    .deposits.length

/** A deposit of `amount` from `from`, fed to every node; the executor's ticks credit it. */
async function creditedDeposit(
  s: Awaited<ReturnType<typeof setupActive>>,
  from: Uint8Array,
  amount: bigint,
  advance: () => number,
): Promise<void> {
  const [exec] = s.nodes as [Node]
  await feedChain(s.nodes, s.nodes, [s.ev(EventKind.Deposit, depositData(from, amount))], s.answers)
  await tickUntil(s.nodes, exec, s.answers, advance, () => false, 2)
}

type TestWorld = {
  setStorageWord: (a: Uint8Array, slot: bigint, v: bigint) => void
  getBalance: (a: Uint8Array) => bigint
  getStorageWord: (a: Uint8Array, slot: bigint) => bigint
  credit: (a: Uint8Array, amount: bigint) => void
}

/** The EVM world of `n`'s copy of `instance`. */
const worldOf = (n: Node, instance: bigint) =>
  (n.enclave as unknown as { instances: Map<bigint, { world: TestWorld }> }).instances.get(
    instance,
  )!.world

/** Ends the contract in `n`'s world as `PoseSystem.terminate()` does (the flag it sets). */
const terminateInWorld = (n: Node, instance: bigint) =>
  worldOf(n, instance).setStorageWord(SYSTEM_ADDRESS, SYSTEM_TERMINATED_SLOT, 1n)

/** The `terminate` calls (pages of final balances) among an enclave's outputs. */
const pagesOf = (outputs: EnclaveOutput[]) => outputs.filter((o) => o.type === 'terminate')

/**
 * Sends `tx` as a `tx` ecall to `exec`, routes what follows among the setup's nodes and
 * returns its answer.
 */
async function sendTx(
  s: Awaited<ReturnType<typeof setupActive>>,
  exec: Node,
  id: string,
  tx: Tx,
  key: Uint8Array,
) {
  const sealed = txBox(s, tx, key)
  const r = await exec.enclave.call('tx', { requestId: id, instance: s.instance, box: sealed.box })
  await pump(s.nodes, r.outputs, s.answers)
  return answerOf(s.answers, id, sealed.responseKey)
}

/** A withdrawal of `value` in the world (`withdraw()` on the system address). */
const systemWithdraw = (instance: bigint, from: Uint8Array, nonce: bigint, value: bigint): Tx => ({
  instance,
  from,
  nonce,
  to: SYSTEM_ADDRESS,
  value,
  data: SYSTEM_WITHDRAW_SELECTOR,
  gasLimit: 100_000n,
})

/**
 * The executor n0 fails and n1 is promoted, sealing its state whole as it hands it over to n2;
 * then n1 restarts from that snapshot (nothing unreleased behind it). Returns the restarted n1.
 */
async function promoteAndRestart(
  s: Awaited<ReturnType<typeof setupActive>>,
  advance: () => number,
  now: () => number,
): Promise<Node> {
  const [n0, n1, n2] = s.nodes as [Node, Node, Node]
  const removed = s.ev(EventKind.MemberRemoved, memberRemovedData(0n, n0.signer, 1n))
  await feedChain(s.nodes, [n1, n2], [removed], s.answers, { blockNumber: 30n, timestamp: 1100n })
  await tickUntil(s.nodes, n1, s.answers, advance, () => false, 2)
  return restartNode(n1, s.instance, now)
}

/** The answers among an enclave's outputs (its peer messages left undelivered: links down). */
const answersOnly = (outputs: EnclaveOutput[]) => outputs.filter((o) => o.type === 'answer')

/**
 * An active instance and PrivateToken transfers from its creator, numbered by request id:
 * `submit` sends the next one as a `tx` ecall (`more`: ecalls are queued behind it), `updates`
 * counts the update messages among outputs, `seqOf` is the seq of a request's receipt.
 */
async function transfers() {
  const setup = await setupActive()
  const { instance, creatorKey, exec, contractEncryptionKey, answers } = setup
  const recipient = randomBytes(20)
  const keys = new Map<string, Uint8Array>()
  let nonce = 0n
  const submit = async (id: string, more = false) => {
    const sealed = transferBox({ instance, contractEncryptionKey }, creatorKey, nonce++, recipient)
    keys.set(id, sealed.responseKey)
    return (await exec.enclave.call('tx', { requestId: id, instance, box: sealed.box }, more))
      .outputs
  }
  const updates = (outs: EnclaveOutput[]) =>
    outs.filter((o) => o.type === 'send' && o.envelope.kind === 'update').length
  const seqOf = (id: string) => {
    const a = answerOf(answers, id, keys.get(id)!)
    assert.equal(a.kind, 'receipt', id)
    return a.kind === 'receipt' ? a.receipt.seq : -1n
  }
  return { ...setup, keys, submit, updates, seqOf }
}

/** Matches a ProtocolError with `code` (for `assert.rejects`). */
const isCode = (code: string) => (e: unknown) => e instanceof ProtocolError && e.code === code

describe('enclave roles in-process', () => {
  test('genesis, replication of 60 txs, receipts only after acks, restore from sealed state', async () => {
    const { nodes, instance, ev, creator, creatorKey, exec, contractEncryptionKey, answers } =
      await setupActive()
    const domain = { chainId: CHAIN_ID, manager: MANAGER }
    const recipient = randomBytes(20)
    const keys = new Map<string, Uint8Array>()
    for (let nonce = 0n; nonce < 60n; nonce++) {
      const sealed = transferBox({ instance, contractEncryptionKey }, creatorKey, nonce, recipient)
      keys.set(`r${nonce}`, sealed.responseKey)
      const r = await exec.enclave.call('tx', { requestId: `r${nonce}`, instance, box: sealed.box })
      // The executor holds the receipt until the watchdogs acked.
      assert.equal(r.outputs.filter((o) => o.type === 'answer').length, 0)
      await pump(nodes, r.outputs, answers)
    }
    assert.equal(answers.size, 60)
    for (const [id, sealed] of answers) {
      const a = decodeAnswer(openAnswer(keys.get(id)!, sealed))
      assert.equal(a.kind, 'receipt')
      if (a.kind === 'receipt') assert.equal(a.receipt.status, 'success')
    }
    const ds = await Promise.all(
      nodes.map(
        async (n) =>
          (await n.enclave.call('digest', { instance })).result as {
            seq: bigint
            digest: Uint8Array
          },
      ),
    )
    assert.equal(new Set(ds.map((d) => `${d.seq}:${bytesToHex(d.digest)}`)).size, 1)

    // A watchdog restarted from its sealed identity and blobs holds the same state.
    const w = nodes[1]!
    const restarted = await newNode(w.platformSecret, w.sealedIdentity)
    assert.deepEqual(restarted.signer, w.signer)
    await restarted.enclave.call('restore', { instance, blobs: w.sealed.get(instance)! })
    const rd = (await restarted.enclave.call('digest', { instance })).result as {
      seq: bigint
      digest: Uint8Array
    }
    assert.equal(rd.seq, ds[0]!.seq)
    assert.deepEqual(rd.digest, ds[0]!.digest)

    // Its sealed updates are binary with deflated payloads; the JSON records sealed before
    // (payload as plain hex) restore to the same state.
    const sealer = createSealer(w.platformSecret, MEASUREMENT)
    const label = `instance/${instance}`
    let binary = 0
    const legacy = w.sealed.get(instance)!.map((blob) => {
      const bytes = sealer.unseal(label, blob)
      if (bytes[0] !== SEALED_UPDATE_TAG) return blob
      binary++
      const { body, from } = decodeSealedUpdate(bytes)
      const record = {
        kind: 'update',
        seq: String(body.seq),
        prevHash: bytesToHex(body.prevHash),
        eventIndex: String(body.eventIndex),
        digest: bytesToHex(body.digest),
        payload: bytesToHex(unpackUpdatePayload(body.payload)),
        ...(from ? { from: bytesToHex(from) } : {}),
      }
      return sealer.seal(label, utf8(JSON.stringify(record)))
    })
    assert.ok(binary >= 2, `${binary} sealed updates`)
    const fromLegacy = await newNode(w.platformSecret, w.sealedIdentity)
    await fromLegacy.enclave.call('restore', { instance, blobs: legacy })
    assert.deepEqual((await fromLegacy.enclave.call('digest', { instance })).result, {
      role: 'watchdog',
      seq: rd.seq,
      digest: rd.digest,
    })

    // Coins: a deposit seen on-chain is credited once by the executor and replicated; a
    // replayed deposit event credits nothing more.
    const deposit = ev(EventKind.Deposit, depositData(creator, 10n ** 18n))
    for (const n of nodes) {
      const r = await n.enclave.call('chain', {
        blockNumber: 12n,
        timestamp: 1002n,
        events: [deposit],
      })
      await pump(nodes, r.outputs, answers)
    }
    for (const n of nodes)
      await n.enclave.call('chain', { blockNumber: 12n, timestamp: 1002n, events: [deposit] })
    const afterDeposit = await Promise.all(
      nodes.map(
        async (n) =>
          (await n.enclave.call('digest', { instance })).result as {
            seq: bigint
            digest: Uint8Array
          },
      ),
    )
    assert.equal(new Set(afterDeposit.map((d) => `${d.seq}:${bytesToHex(d.digest)}`)).size, 1)
    assert.equal(afterDeposit[0]!.seq, ds[0]!.seq + 1n, 'one replicated update carries the credit')

    // The creator withdraws 0.4 ETH through the system contract and gets an authorisation.
    const wtx = {
      instance,
      from: creator,
      nonce: 60n,
      to: SYSTEM_ADDRESS,
      value: 4n * 10n ** 17n,
      data: hexb('0x3ccfd60b'),
      gasLimit: 100_000n,
    }
    const wsealed = boxSeal({
      recipientPublicKey: contractEncryptionKey,
      plaintext: encodeSignedTx({ ...wtx, signature: signDigest(hashTx(domain, wtx), creatorKey) }),
      context: BOX_CONTEXT.tx,
      aad: instanceAad(instance),
    })
    await pump(
      nodes,
      (await exec.enclave.call('tx', { requestId: 'w', instance, box: wsealed.box })).outputs,
      answers,
    )
    const wanswer = answerOf(answers, 'w', wsealed.responseKey)
    assert.equal(wanswer.kind === 'receipt' && wanswer.receipt.status, 'success')
    const authorisation = await systemView(
      nodes,
      exec,
      { instance, contractEncryptionKey },
      creatorKey,
      SYSTEM_AUTHORISATION_SELECTOR,
      answers,
    )
    const [cumulative, eventIndex, authSig] = decodeAbiParameters(
      [{ type: 'uint256' }, { type: 'uint64' }, { type: 'bytes' }],
      bytesToHex(authorisation),
    )
    assert.equal(cumulative, 4n * 10n ** 17n)
    assert.equal(eventIndex, deposit.index)
    const digest = withdrawDigest({
      chainId: CHAIN_ID,
      manager: MANAGER,
      instance,
      recipient: creator,
      cumulative,
      eventIndex,
      eventHash: deposit.hash,
    })
    assert.deepEqual(recoverAddress(digest, hexb(authSig)), exec.signer)
  })

  test('group commit: while an update is in flight, fewer than a batch wait and go as one update', async () => {
    const { nodes, answers, exec, keys, submit, updates, seqOf } = await transfers()

    // A lone transaction goes at once: one update to each of the two watchdogs.
    const held = await submit('a0')
    assert.equal(updates(held), 2)
    // While it is in flight, three more wait (no update leaves the executor)...
    for (const id of ['a1', 'a2', 'a3']) assert.equal(updates(await submit(id)), 0, id)
    // ...and go as one update once the first is acknowledged.
    await pump(nodes, held, answers)
    assert.equal(seqOf('a1'), seqOf('a0') + 1n)
    assert.equal(seqOf('a2'), seqOf('a1'))
    assert.equal(seqOf('a3'), seqOf('a1'))
    // Released together, signed together: one signature over their tree's root (0015).
    const released = ['a1', 'a2', 'a3'].map((id) => {
      const a = answerOf(answers, id, keys.get(id)!)
      assert.ok(a.kind === 'receipt')
      return a.receipt
    })
    assert.equal(new Set(released.map((r) => bytesToHex(r.signature))).size, 1)
    for (const r of released) {
      assert.ok((r.proof?.length ?? 0) > 0, 'a proof each')
      assert.deepEqual(
        verifyReceiptSignature(r, { chainId: CHAIN_ID, manager: MANAGER }),
        exec.signer,
      )
    }

    // A full batch's worth of queued transactions does not wait: it is pipelined.
    const inFlight = await submit('b0')
    assert.equal(updates(inFlight), 2)
    const later: EnclaveOutput[] = []
    const batch = Array.from({ length: LIMITS.pipelineMinBatchTxs }, (_, i) => `b${i + 1}`)
    for (const [i, id] of batch.entries()) {
      const outs = await submit(id)
      assert.equal(updates(outs), i === batch.length - 1 ? 2 : 0, id)
      later.push(...outs)
    }
    await pump(nodes, [...inFlight, ...later], answers)
    for (const id of batch) assert.equal(seqOf(id), seqOf('b0') + 1n, id)
    assert.equal(answers.size, 4 + 1 + batch.length)
  })

  test('group commit: consecutive tx ecalls with more queued behind them go as one update', async () => {
    const { nodes, instance, exec, answers, submit, updates, seqOf } = await transfers()

    // Nothing in flight, yet the first three wait for the end of the run: the last one (no
    // more queued) sends one update, to each of the two watchdogs, holding all four.
    for (const id of ['a0', 'a1', 'a2']) assert.equal(updates(await submit(id, true)), 0, id)
    const last = await submit('a3', false)
    assert.equal(updates(last), 2)
    await pump(nodes, last, answers)
    for (const id of ['a1', 'a2', 'a3']) assert.equal(seqOf(id), seqOf('a0'), id)

    // The outputs of an ecall refused for its junk box.
    const refusedJunk = (method: 'tx' | 'view', more: boolean) =>
      exec.enclave.call(method, { requestId: 'junk', instance, box: new Uint8Array(8) }, more).then(
        () => assert.fail(`a junk ${method} box is refused`),
        (e: { outputs: EnclaveOutput[] }) => e.outputs,
      )

    // Any other kind of ecall ends the run before it runs: it sees every queued transaction
    // executed (here a refused ecall, which must not lose them either).
    for (const id of ['b0', 'b1']) assert.equal(updates(await submit(id, true)), 0, id)
    const refused = await refusedJunk('view', true)
    assert.equal(updates(refused), 2)
    await pump(nodes, refused, answers)
    assert.equal(seqOf('b0'), seqOf('a0') + 1n)
    assert.equal(seqOf('b1'), seqOf('b0'))

    // A refused tx ecall that ends the run still executes the run's queued transactions.
    assert.equal(updates(await submit('c0', true)), 0)
    const junk = await refusedJunk('tx', false)
    assert.equal(updates(junk), 2)
    await pump(nodes, junk, answers)
    assert.equal(seqOf('c0'), seqOf('b0') + 1n)
    assert.equal(answers.size, 7)

    // A run ends once groupCommitTxs transactions wait, even with more ecalls queued.
    const run = Array.from({ length: LIMITS.groupCommitTxs }, (_, i) => `d${i}`)
    const sent: EnclaveOutput[] = []
    for (const [i, id] of run.entries()) {
      const outs = await submit(id, true)
      assert.equal(updates(outs), i === run.length - 1 ? 2 : 0, id)
      sent.push(...outs)
    }
    await pump(nodes, sent, answers)
    for (const id of run) assert.equal(seqOf(id), seqOf('c0') + 1n, id)
  })

  test('a batch whose update has no room for its next transaction leaves it and the rest, in order, to the next; alone, it ends as an error', async () => {
    const { nodes, answers, submit, updates, seqOf, keys } = await transfers()
    const first = await submit('f0')
    await pump(nodes, first, answers)
    const receiptOf = (id: string) => {
      const a = answerOf(answers, id, keys.get(id)!)
      assert.equal(a.kind, 'receipt', id)
      return a.kind === 'receipt' ? a.receipt : assert.fail(id)
    }
    // A transfer's outcome, and its first write set: the sender, the token and two slots.
    const outcome = executedBytes(receiptOf('f0'))
    const frames = UPDATE_PAYLOAD_FRAME_BYTES + WRITE_SET_FRAME_BYTES
    const limits = LIMITS as { maxUpdatePayloadBytes: number }
    const budget = limits.maxUpdatePayloadBytes
    try {
      // Room for one transfer, not two: one per update, in the order sent.
      limits.maxUpdatePayloadBytes = frames + 2 * 65 + 2 * 64 + outcome + outcome / 2
      const sent: EnclaveOutput[] = []
      const ids = ['e0', 'e1', 'e2', 'e3']
      for (const [i, id] of ids.entries()) sent.push(...(await submit(id, i < ids.length - 1)))
      assert.equal(updates(sent), 2, 'one update (to two watchdogs) for the first transaction')
      await pump(nodes, sent, answers)
      const seqs = ids.map(seqOf)
      assert.deepEqual(
        seqs,
        seqs.map((_, i) => seqs[0]! + BigInt(i)),
        'each in its own update, in the order sent',
      )
      for (const id of ids) assert.equal(receiptOf(id).status, 'success', id)
      // No room for one alone: it ends as an error, keeps nothing but its nonce, and the
      // transfers after it run.
      limits.maxUpdatePayloadBytes = frames + outcome
      await pump(nodes, await submit('g0'), answers)
      const g0 = receiptOf('g0')
      assert.equal(g0.status, 'error')
      assert.ok(g0.gasUsed > 0n, 'the gas it burned counts')
      assert.deepEqual(g0.logs, [], 'no Transfer happened')
      limits.maxUpdatePayloadBytes = budget
      await pump(nodes, await submit('g1'), answers)
      assert.equal(receiptOf('g1').status, 'success')
      assert.equal(receiptOf('g1').nonce, g0.nonce + 1n)
    } finally {
      limits.maxUpdatePayloadBytes = budget
    }
  })

  test('every update fits in a watchdog challenge: a transaction whose outcome passes that room alone ends as an error', async () => {
    const s = await setupActive()
    const { nodes, instance, exec, answers } = s
    const world = (
      exec.enclave as unknown as {
        instances: Map<bigint, { world: { installCode: (a: Uint8Array, c: Uint8Array) => void } }>
      }
    ).instances.get(instance)!.world
    // Returns its call data twice over: 64 KiB apart, beyond DEFLATE's window, it does not
    // compress. (Replicated with the first update.)
    const echo = new Uint8Array(20).fill(0xe2)
    world.installCode(
      echo,
      Uint8Array.from([
        0x36, 0x5f, 0x5f, 0x37, 0x36, 0x5f, 0x36, 0x37, 0x36, 0x80, 0x01, 0x5f, 0xf3,
      ]),
    )
    const key = generateSecretKey()
    const from = secretKeyToAddress(key)
    const send = async (id: string, nonce: bigint, bytes: number) => {
      const tx: Tx = {
        instance,
        from,
        nonce,
        to: echo,
        value: 0n,
        data: randomBytes(bytes),
        gasLimit: 3_000_000n, // 61 KiB of calldata take ≈ 1 M of intrinsic gas
      }
      const sealed = txBox(s, tx, key)
      const r = await exec.enclave.call('tx', { requestId: id, instance, box: sealed.box })
      const bodies = r.outputs.flatMap((o) =>
        o.type === 'send' && o.envelope.kind === 'update' ? [hexToBytes(o.envelope.body)] : [],
      )
      await pump(nodes, r.outputs, answers)
      const a = answerOf(answers, id, sealed.responseKey)
      return { receipt: a.kind === 'receipt' ? a.receipt : assert.fail(id), bodies }
    }
    const fits = await send('fits', 0n, 61 * 1024)
    assert.equal(fits.receipt.status, 'success')
    assert.equal(fits.receipt.returnData.length, 122 * 1024)
    assert.ok(fits.bodies.length > 0)
    for (const body of fits.bodies) {
      // A challenge carries the executor's signature and the update's body.
      assert.ok(body.length > 122 * 1024, 'it did not compress')
      assert.ok(65 + body.length <= LIMITS.maxChallengePayloadBytes, `${body.length} bytes`)
    }
    const over = await send('over', 1n, LIMITS.maxTxDataBytes)
    assert.equal(over.receipt.status, 'error')
    assert.equal(over.receipt.returnData.length, 0)
    for (const body of over.bodies) assert.ok(body.length < 1024)
    // The pool agrees on the state after both.
    const ds = await Promise.all(nodes.map((n) => digestOfNode(n, instance)))
    assert.equal(new Set(ds.map((d) => bytesToHex(d.digest))).size, 1)
  })

  test('deposits the chain reports at once are credited over as many updates as they need', async () => {
    let clock = 4_900_000
    const s = await setupActive(() => clock)
    const { nodes, instance, answers, exec } = s
    const limits = LIMITS as { maxUpdatePayloadBytes: number }
    const budget = limits.maxUpdatePayloadBytes
    const world = (
      exec.enclave as unknown as {
        instances: Map<bigint, { world: { getBalance: (a: Uint8Array) => bigint } }>
      }
    ).instances.get(instance)!.world
    const users = Array.from({ length: 12 }, () => randomBytes(20))
    try {
      // Half an update holds three deposits' accounts, give or take.
      limits.maxUpdatePayloadBytes = UPDATE_PAYLOAD_FRAME_BYTES + WRITE_SET_FRAME_BYTES + 6 * 65
      const seq = async () => (await digestOfNode(exec, instance)).seq
      const before = await seq()
      const events = users.map((u, i) => s.ev(EventKind.Deposit, depositData(u, BigInt(i + 1))))
      await feedChain(nodes, nodes, events, answers)
      await tickUntil(
        nodes,
        exec,
        answers,
        () => (clock += 1_500),
        () => users.every((u, i) => world.getBalance(u) === BigInt(i + 1)),
        40,
      )
      for (const [i, u] of users.entries()) assert.equal(world.getBalance(u), BigInt(i + 1))
      const used = (await seq()) - before
      assert.ok(used >= 3n && used <= 6n, `${used} updates`)
      // Every member holds every credit.
      const ds = await Promise.all(nodes.map((n) => digestOfNode(n, instance)))
      assert.equal(new Set(ds.map((d) => bytesToHex(d.digest))).size, 1)
    } finally {
      limits.maxUpdatePayloadBytes = budget
    }
  })

  test('copies of a pending request wait for its answer up to a bound; beyond it the oldest copy is answered UNAVAILABLE', async () => {
    const { nodes, instance, creatorKey, exec, contractEncryptionKey, answers } =
      await setupActive()
    const target = { instance, contractEncryptionKey }
    const recipient = randomBytes(20)
    const keys = new Map<string, Uint8Array>()
    const submit = async (id: string, nonce: bigint) => {
      const sealed = transferBox(target, creatorKey, nonce, recipient)
      keys.set(id, sealed.responseKey)
      return (await exec.enclave.call('tx', { requestId: id, instance, box: sealed.box })).outputs
    }
    // Nonce 1 waits for nonce 0; ten copies of it arrive meanwhile (a client resending).
    const early: EnclaveOutput[] = []
    for (let i = 0; i < 10; i++) early.push(...(await submit(`c${i}`, 1n)))
    await pump(nodes, early, answers)
    assert.deepEqual([...answers.keys()].sort(), ['c0', 'c1'], 'the two oldest copies answered')
    for (const id of ['c0', 'c1']) {
      const a = answerOf(answers, id, keys.get(id)!)
      assert.equal(a.kind === 'rejected' && a.error.code, 'UNAVAILABLE', id)
    }
    // The eight that still wait get the receipt once nonce 0 lets the transaction run.
    await pump(nodes, await submit('n0', 0n), answers)
    const receipts = Array.from({ length: 8 }, (_, i) =>
      answerOf(answers, `c${i + 2}`, keys.get(`c${i + 2}`)!),
    )
    for (const a of receipts) assert.equal(a.kind, 'receipt')
    const hashes = new Set(
      receipts.map((a) => (a.kind === 'receipt' ? bytesToHex(a.receipt.txHash) : '')),
    )
    assert.equal(hashes.size, 1, 'every copy got the same receipt')
  })

  test('an update goes to each watchdog under its pair key, which serves no other member; only updates and acks are tagged, only updates go to every member', async () => {
    const { nodes, instance, creatorKey, exec, contractEncryptionKey, answers } =
      await setupActive()
    const [, w1, w2] = nodes as [Node, Node, Node]
    const outs = await sendTransfer(
      exec,
      { instance, contractEncryptionKey },
      creatorKey,
      0n,
      randomBytes(20),
      'u0',
    )
    const sends = outs.filter((o) => o.type === 'send' && o.envelope.kind === 'update')
    assert.equal(sends.length, 2)
    const [a, b] = sends as Array<Extract<EnclaveOutput, { type: 'send' }>>
    // Routed to each watchdog, addressed to it, under a tag of its own (decision 0020).
    assert.deepEqual(
      new Set([bytesToHex(a!.to), bytesToHex(b!.to)]),
      new Set([bytesToHex(w1.signer), bytesToHex(w2.signer)]),
    )
    for (const o of [a!, b!]) {
      assert.equal(o.envelope.to, bytesToHex(o.to))
      assert.equal(envelopeFromWire(o.envelope).signature.length, 32)
    }
    assert.notEqual(a!.envelope.signature, b!.envelope.signature)
    assert.equal(a!.envelope.body, b!.envelope.body)
    const [toW1, toW2] = bytesToHex(a!.to) === bytesToHex(w1.signer) ? [a!, b!] : [b!, a!]
    const update = envelopeFromWire(toW1.envelope)

    // w1's update does not serve w2: not as it is (addressed to w1), nor readdressed (w1's tag).
    await assert.rejects(w2.enclave.call('peer', { envelope: toW1.envelope }), isCode('MALFORMED'))
    await assert.rejects(
      w2.enclave.call('peer', { envelope: envelopeToWire({ ...update, to: w2.signer }) }),
      isCode('BAD_SIGNATURE'),
    )
    // A changed body or another instance's number breaks the tag.
    const body = Uint8Array.from(update.body)
    body[body.length - 1]! ^= 1
    await assert.rejects(
      w1.enclave.call('peer', { envelope: envelopeToWire({ ...update, body }) }),
      isCode('BAD_SIGNATURE'),
    )
    // Genesis and sync messages must be signed; a tag on one is refused before any key is used.
    for (const kind of ['genesis', 'sync'] as const)
      await assert.rejects(
        w1.enclave.call('peer', { envelope: envelopeToWire({ ...update, kind }) }),
        isCode('MALFORMED'),
      )
    // A tag from an enclave that is not a member.
    const stranger = { ...update, kind: 'ack' as const, from: randomBytes(20), to: exec.signer }
    await assert.rejects(
      exec.enclave.call('peer', { envelope: envelopeToWire(stranger) }),
      isCode('WRONG_ROLE'),
    )

    // Each watchdog acks under its pair key with the executor.
    const acks: EnclaveOutput[] = []
    for (const [w, o] of [
      [w1, toW1],
      [w2, toW2],
    ] as const)
      acks.push(...(await w.enclave.call('peer', { envelope: o.envelope })).outputs)
    const ack = acks.find((o) => o.type === 'send' && o.envelope.kind === 'ack')
    assert.ok(ack && ack.type === 'send')
    const env = envelopeFromWire(ack.envelope)
    assert.equal(env.signature.length, 32)
    assert.deepEqual(env.to, exec.signer)
    // An ack addressed to every member is refused: only updates are broadcast. (Signed by
    // another key: the address check comes first, so a wrong code shows it missing.)
    const forged = signEnvelope({ ...env, to: BROADCAST }, generateSecretKey())
    await assert.rejects(
      exec.enclave.call('peer', { envelope: envelopeToWire(forged) }),
      isCode('MALFORMED'),
    )
    // A tagged update to every member is refused too: a broadcast carries a signature.
    await assert.rejects(
      w1.enclave.call('peer', { envelope: envelopeToWire({ ...update, to: BROADCAST }) }),
      isCode('MALFORMED'),
    )
    // The acks release the receipt.
    await pump(nodes, acks, answers)
    assert.ok(answers.has('u0'))
  })

  test('a watchdog takes nothing of an update whose state digest is not the one it reaches, and the right one after', async () => {
    const { nodes, instance, creatorKey, exec, contractEncryptionKey, answers } =
      await setupActive()
    const w1 = nodes[1]!
    const outs = await sendTransfer(
      exec,
      { instance, contractEncryptionKey },
      creatorKey,
      0n,
      randomBytes(20),
      'd0',
    )
    const send = outs.find((o) => o.type === 'send' && o.envelope.kind === 'update')
    assert.ok(send && send.type === 'send')
    const body = decodeUpdateBody(envelopeFromWire(send.envelope).body)
    // No ecall can carry a wrong digest under the executor's signature and the state key, so
    // the watchdog's instance is driven directly with the update's body and plain payload.
    type WatchdogInternals = {
      seq: bigint
      world: { digest(): Uint8Array }
      replicated: Map<string, unknown>
      stateKey: Uint8Array
      payloadAad(seq: bigint, prevHash: Uint8Array): Uint8Array
      applyPlainUpdate(body: unknown, plain: Uint8Array): void
    }
    const inst = (
      w1.enclave as unknown as { instances: Map<bigint, WatchdogInternals> }
    ).instances.get(instance)!
    const plain = unpackUpdatePayload(
      aeadOpen(inst.stateKey, body.payload, inst.payloadAad(body.seq, body.prevHash)),
    )
    const seq = inst.seq
    const digest = inst.world.digest()
    const cached = inst.replicated.size
    const wrong = body.digest.slice()
    wrong[0]! ^= 1
    assert.throws(
      () => inst.applyPlainUpdate({ ...body, digest: wrong }, plain),
      (e: unknown) =>
        e instanceof ProtocolError &&
        e.code === 'INTERNAL' &&
        e.message === `update ${body.seq}: state digest differs from the executor's`,
    )
    assert.equal(inst.seq, seq, 'the update is not taken')
    assert.deepEqual(inst.world.digest(), digest, 'the state is as it was')
    assert.equal(inst.replicated.size, cached, 'no outcome of it is kept')
    // The executor's own update then goes through, and releases the receipt.
    await pump(nodes, outs, answers)
    assert.ok(answers.has('d0'))
    assert.equal(inst.seq, seq + 1n)
    assert.equal(inst.replicated.size, cached + 1)
    assert.deepEqual(inst.world.digest(), body.digest)
  })

  test('a promoted watchdog behind another one: its log wins, and a replayed genesis cannot roll back', async () => {
    let clock = 1_000_000
    const { nodes, instance, ev, creatorKey, contractEncryptionKey, answers } = await setupActive(
      () => clock,
    )
    const [n0, n1, n2] = nodes as [Node, Node, Node]
    const target = { instance, contractEncryptionKey }
    const recipient = randomBytes(20)
    const digestOf = (n: Node) => digestOfNode(n, instance)

    // Update 1 reaches everyone; update 2 reaches only n2 (n1 misses it), so it is not released.
    await pump(nodes, await sendTransfer(n0, target, creatorKey, 0n, recipient, 'a'), answers)
    assert.ok(answers.has('a'))
    const r2 = await n0.enclave.call('tx', {
      requestId: 'b',
      instance,
      box: transferBox(target, creatorKey, 1n, recipient).box,
    })
    await pump(
      nodes,
      r2.outputs.filter((o) => !sentTo(n1)(o)),
      answers,
    )
    assert.ok(!answers.has('b'), 'no receipt before every watchdog acknowledged')
    assert.equal((await digestOf(n2)).seq, 2n)
    assert.equal((await digestOf(n1)).seq, 1n)

    // The executor is removed; n1 (longest serving) takes over at seq 1. n2 has not seen the
    // event yet, so it refuses n1's first genesis; n1 then executes a different update 2.
    const removed = ev(EventKind.MemberRemoved, memberRemovedData(0n, n0.signer, 1n))
    const chain = (n: Node) =>
      n.enclave.call('chain', { blockNumber: 20n, timestamp: 1010n, events: [removed] })
    await chain(n0)
    const takeover = await chain(n1)
    const firstGenesis = takeover.outputs.find(sentTo(n2))
    assert.ok(firstGenesis && firstGenesis.type === 'send')
    await assert.rejects(
      n2.enclave.call('peer', { envelope: firstGenesis.envelope }),
      isCode('WRONG_ROLE'),
    )
    const r3 = await n1.enclave.call('tx', {
      requestId: 'c',
      instance,
      box: transferBox(target, creatorKey, 1n, recipient).box,
    })
    assert.equal((await digestOf(n1)).seq, 2n)
    await chain(n2)
    for (const o of r3.outputs.filter(sentTo(n2)))
      if (o.type === 'send')
        await n2.enclave.call('peer', { envelope: o.envelope }).catch(() => undefined)
    assert.ok(!answers.has('c'))

    // n2 holds a different update 2; the resent genesis (same seq, other hash) replaces it.
    clock += 2_000
    await pump(nodes, (await n1.enclave.call('tick', { now: clock })).outputs, answers)
    assert.ok(answers.has('c'), 'n1 released its update once n2 followed it')
    const [d1, d2] = [await digestOf(n1), await digestOf(n2)]
    assert.equal(d2.seq, 2n)
    assert.deepEqual(d2.digest, d1.digest)

    // More updates, then the first genesis (seq 1) replayed: refused, nothing rolls back.
    for (const nonce of [2n, 3n])
      await pump(
        nodes,
        (
          await n1.enclave.call('tx', {
            requestId: `d${nonce}`,
            instance,
            box: transferBox(target, creatorKey, nonce, recipient).box,
          })
        ).outputs,
        answers,
      )
    const before = await digestOf(n2)
    assert.equal(before.seq, 4n)
    await assert.rejects(
      n2.enclave.call('peer', { envelope: firstGenesis.envelope }),
      isCode('OUT_OF_ORDER'),
    )
    assert.deepEqual(await digestOf(n2), before)
    assert.deepEqual((await digestOf(n1)).digest, before.digest)
  })

  test('a removed executor answers a transaction sent to it WRONG_ROLE, so its client follows the manager at once instead of waiting for it to catch up', async () => {
    const { nodes, instance, ev, creatorKey, contractEncryptionKey } = await setupActive()
    const n0 = nodes[0]!
    const removed = ev(EventKind.MemberRemoved, memberRemovedData(0n, n0.signer, 1n))
    await n0.enclave.call('chain', { blockNumber: 20n, timestamp: 1010n, events: [removed] })
    const target = { instance, contractEncryptionKey }
    const box = transferBox(target, creatorKey, 0n, randomBytes(20)).box
    // Its keys went with its state: NOT_READY here kept clients retrying it for 10 s.
    await assert.rejects(
      n0.enclave.call('tx', { requestId: 'late', instance, box }),
      isCode('WRONG_ROLE'),
    )
  })

  test("a promoted executor re-issues a receipt only once every watchdog holds its handover (the old executor's unreleased update)", async () => {
    let clock = 4_000_000
    const { nodes, instance, ev, creatorKey, contractEncryptionKey, answers } = await setupActive(
      () => clock,
    )
    const [n0, n1, n2] = nodes as [Node, Node, Node]
    const target = { instance, contractEncryptionKey }
    const recipient = randomBytes(20)
    const digestOf = (n: Node) => digestOfNode(n, instance)
    await pump(nodes, await sendTransfer(n0, target, creatorKey, 0n, recipient, 'a'), answers)
    // Update 2 reaches n1 only: never released, and its sender's request dies with n0.
    const unreleased = transferBox(target, creatorKey, 1n, recipient)
    const r2 = await n0.enclave.call('tx', { requestId: 'b', instance, box: unreleased.box })
    await pump(nodes, r2.outputs.filter(sentTo(n1)), answers)
    assert.ok(!answers.has('b'))
    assert.equal((await digestOf(n1)).seq, 2n)
    assert.equal((await digestOf(n2)).seq, 1n)

    // n0 is removed; n1 takes over at seq 2. Its handover to n2 is lost for now.
    const removed = ev(EventKind.MemberRemoved, memberRemovedData(0n, n0.signer, 1n))
    const chain = (n: Node) =>
      n.enclave.call('chain', { blockNumber: 20n, timestamp: 1010n, events: [removed] })
    await chain(n0)
    await chain(n1)
    await chain(n2)
    // The user resubmits to the new executor: it holds the outcome, n2 does not, so a receipt
    // now would be rolled back if n1 failed and n2 were promoted.
    const again = await n1.enclave.call('tx', {
      requestId: 'b-again',
      instance,
      box: unreleased.box,
    })
    assert.equal(
      again.outputs.filter((o) => o.type === 'answer').length,
      0,
      'a receipt for an update a watchdog does not hold',
    )
    // The handover is resent and acknowledged: the receipt follows, at the update's seq.
    clock += 2_000
    await pump(nodes, (await n1.enclave.call('tick', { now: clock })).outputs, answers, [], true)
    const b = answerOf(answers, 'b-again', unreleased.responseKey)
    assert.ok(b.kind === 'receipt')
    assert.equal(b.receipt.nonce, 1n)
    assert.equal(b.receipt.seq, 2n)
    const [d1, d2] = [await digestOf(n1), await digestOf(n2)]
    assert.equal(d2.seq, 2n)
    assert.deepEqual(d2.digest, d1.digest)
  })

  test('an executor that crashed after sealing an update gives no receipt for it before every watchdog holds it (simulator seed 34)', async () => {
    let clock = 3_000_000
    const { nodes, instance, creatorKey, contractEncryptionKey, answers } = await setupActive(
      () => clock,
    )
    const [n0, n1, n2] = nodes as [Node, Node, Node]
    const target = { instance, contractEncryptionKey }
    const recipient = randomBytes(20)
    const first = transferBox(target, creatorKey, 0n, recipient)
    await pump(
      nodes,
      (await n0.enclave.call('tx', { requestId: 'a0', instance, box: first.box })).outputs,
      answers,
    )
    // The executor executes and seals the next update, then dies before it leaves the node.
    const lost = transferBox(target, creatorKey, 1n, recipient)
    const dropped = await n0.enclave.call('tx', { requestId: 'a1', instance, box: lost.box })
    assert.ok(dropped.outputs.some((o) => o.type === 'send' && o.envelope.kind === 'update'))
    const r0 = await restartNode(n0, instance, () => clock)
    const after = [r0, n1, n2]
    // The user resubmits the same transaction: the restarted executor holds its outcome but no
    // watchdog does, so no receipt yet (one now would be lost if this executor were replaced).
    const resubmitted = await r0.enclave.call('tx', {
      requestId: 'a1-again',
      instance,
      box: lost.box,
    })
    assert.equal(
      resubmitted.outputs.filter((o) => o.type === 'answer').length,
      0,
      'a receipt for an update no watchdog holds',
    )
    for (const w of [n1, n2])
      assert.equal(
        ((await w.enclave.call('digest', { instance })).result as { seq: bigint }).seq,
        1n,
      )
    // Once the re-offered update is acknowledged by both watchdogs, the receipt is released.
    clock += 2_000
    await pump(after, (await r0.enclave.call('tick', { now: clock })).outputs, answers, [], true)
    const a = answerOf(answers, 'a1-again', lost.responseKey)
    assert.equal(a.kind === 'receipt' && a.receipt.nonce, 1n)
    for (const w of [n1, n2])
      assert.equal(
        ((await w.enclave.call('digest', { instance })).result as { seq: bigint }).seq,
        2n,
      )
  })

  test("an executor restarted from a stale copy of its sealed state recovers the pool's state before executing", async () => {
    let clock = 2_000_000
    const { nodes, instance, creatorKey, contractEncryptionKey, answers } = await setupActive(
      () => clock,
    )
    const [n0, n1, n2] = nodes as [Node, Node, Node]
    const target = { instance, contractEncryptionKey }
    const recipient = randomBytes(20)
    const send = async (exec: Node, all: Node[], id: string, nonce: bigint) => {
      const sealed = transferBox(target, creatorKey, nonce, recipient)
      const r = await exec.enclave.call('tx', { requestId: id, instance, box: sealed.box })
      await pump(all, r.outputs, answers, [], true)
      return sealed
    }
    const digestOf = (n: Node) => digestOfNode(n, instance)
    for (const nonce of [0n, 1n, 2n]) await send(n0, nodes, `a${nonce}`, nonce)
    const stale = [...n0.sealed.get(instance)!]
    let last = transferBox(target, creatorKey, 0n, recipient)
    for (const nonce of [3n, 4n, 5n]) last = await send(n0, nodes, `b${nonce}`, nonce)
    const pool = await digestOf(n1)
    assert.equal(pool.seq, 6n)

    // The host restarts the executor from the copy taken three updates ago.
    const r0 = await restartNode(n0, instance, () => clock, stale)
    assert.equal((await digestOf(r0)).seq, 3n)
    const after = [r0, n1, n2]
    // A transaction arriving now waits: nothing executes before the pool answered.
    const waiting = await send(r0, after, 'c', 6n)
    assert.equal((await digestOf(r0)).seq, 3n, 'nothing executed on the stale state')
    clock += 2_000
    await pump(after, (await r0.enclave.call('tick', { now: clock })).outputs, answers, [], true)
    // The executor took the pool's state back; the waiting request is told to resubmit.
    const recovered = await digestOf(r0)
    assert.equal(recovered.seq, 6n)
    assert.deepEqual(recovered.digest, pool.digest)
    const c = answerOf(answers, 'c', waiting.responseKey)
    assert.equal(c.kind === 'rejected' && c.error.code, 'UNAVAILABLE')
    // A transaction the stale copy never saw is resubmitted: its receipt, not REPLAYED.
    await pump(
      after,
      (await r0.enclave.call('tx', { requestId: 'b5-again', instance, box: last.box })).outputs,
      answers,
      [],
      true,
    )
    const b5 = answerOf(answers, 'b5-again', last.responseKey)
    assert.equal(b5.kind === 'receipt' && b5.receipt.nonce, 5n)
    // Resubmitted, it executes at the right place and everyone agrees.
    const again = await r0.enclave.call('tx', { requestId: 'c2', instance, box: waiting.box })
    await pump(after, again.outputs, answers, [], true)
    const a = answerOf(answers, 'c2', waiting.responseKey)
    assert.equal(a.kind === 'receipt' && a.receipt.nonce, 6n)
    const final = await Promise.all(after.map(digestOf))
    assert.equal(new Set(final.map((d) => `${d.seq}:${bytesToHex(d.digest)}`)).size, 1)
    assert.equal(final[0]!.seq, 7n)
  })

  test('an executor restarted from a stale copy answers nothing final from it before its watchdogs confirmed its state (simulator seed 144)', async () => {
    let clock = 2_500_000
    const { nodes, instance, ev, creatorKey, contractEncryptionKey, answers } = await setupActive(
      () => clock,
    )
    const [n0, n1, n2] = nodes as [Node, Node, Node]
    const target = { instance, contractEncryptionKey }
    const recipient = randomBytes(20)
    await sendTransfers(nodes, n0, target, creatorKey, [0n, 1n], recipient, answers)
    const stale = [...n0.sealed.get(instance)!]
    await sendTransfers(nodes, n0, target, creatorKey, [2n, 3n, 4n], recipient, answers)

    // Restarted from the copy two updates behind, its pool not heard from yet (links down).
    const r0 = await restartNode(n0, instance, () => clock, stale)
    // The user's next nonce is 5; the stale state says 2, so nonce 5 waits for 2, 3 and 4.
    const next = transferBox(target, creatorKey, 5n, recipient)
    const r = await r0.enclave.call('tx', { requestId: 'n5', instance, box: next.box })
    await pump([], answersOnly(r.outputs), answers)
    // Past the wait for earlier nonces: no BAD_NONCE ("waited too long"), the user's nonce is
    // fine; the stale executor just cannot tell yet.
    clock += 15_000
    await pump([], answersOnly((await r0.enclave.call('tick', { now: clock })).outputs), answers)
    assert.equal(answers.has('n5'), false, 'no final answer from the stale state')
    // Nor does it tell the user a nonce from that state (it would be 2, already spent).
    const vbox = systemViewBox(target, creatorKey, SYSTEM_NONCE_SELECTOR).box
    await assert.rejects(
      r0.enclave.call('view', { requestId: 'nonce', instance, box: vbox }),
      (e: unknown) => e instanceof ProtocolError && e.code === 'UNAVAILABLE',
    )
    // Challenged on-chain with that view's box, it gives the liveness answer, which tells the
    // caller to ask again, not a sealed rejection the caller would take as the view's answer
    // (simulator seed 164: a withdrawal failed with "confirming its state").
    const challenged = await r0.enclave.call('chain', {
      blockNumber: 30n,
      timestamp: 1030n,
      events: [ev(EventKind.ExecutorChallenged, executorChallengedData(vbox))],
    })
    const [alive] = challenged.outputs.flatMap((o) =>
      o.type === 'respondExecutor' ? [o.response] : [],
    )
    assert.ok(alive, 'it answers the challenge')
    assert.equal(bytesToHex(alive.subarray(0, 13)), bytesToHex(utf8('POSE-ALIVE-v1')))
    // Once the links are back it takes the pool's state and tells the waiting user to resubmit.
    clock += 2_000
    await pump(
      [r0, n1, n2],
      (await r0.enclave.call('tick', { now: clock })).outputs,
      answers,
      [],
      true,
    )
    assert.equal((await digestOfNode(r0, instance)).seq, 5n)
    const n5 = answerOf(answers, 'n5', next.responseKey)
    assert.equal(n5.kind === 'rejected' && n5.error.code, 'UNAVAILABLE')
    const again = await r0.enclave.call('tx', { requestId: 'n5-again', instance, box: next.box })
    await pump([r0, n1, n2], again.outputs, answers, [], true)
    const receipt = answerOf(answers, 'n5-again', next.responseKey)
    assert.equal(receipt.kind === 'receipt' && receipt.receipt.nonce, 5n)
  })

  test("acks made before an executor's restart, replayed by its host, do not end its wait on a stale copy; its probe's answers do", async () => {
    let clock = 2_700_000
    const { nodes, instance, creatorKey, contractEncryptionKey, answers } = await setupActive(
      () => clock,
    )
    const [n0, n1, n2] = nodes as [Node, Node, Node]
    const target = { instance, contractEncryptionKey }
    const recipient = randomBytes(20)
    await sendTransfers(nodes, n0, target, creatorKey, [0n], recipient, answers)
    // The host records the watchdogs' acks of the next update on their way to the executor.
    const acks: EnclaveOutput[] = []
    const queue = await sendTransfer(n0, target, creatorKey, 1n, recipient, 't1')
    while (queue.length > 0) {
      const o = queue.shift()!
      if (o.type !== 'send') continue
      if (o.envelope.kind === 'ack') acks.push(o)
      const to = nodes.find((n) => bytesToHex(n.signer) === bytesToHex(o.to))!
      queue.push(...(await to.enclave.call('peer', { envelope: o.envelope })).outputs)
    }
    assert.equal(acks.length, 2, 'one ack from each watchdog')
    const stale = [...n0.sealed.get(instance)!]
    await sendTransfers(nodes, n0, target, creatorKey, [2n, 3n], recipient, answers)
    const pool = await digestOfNode(n1, instance)

    // Restarted from the copy of that moment, it is fed those acks again; the watchdogs' own
    // answers (they hold two updates more) are dropped.
    const r0 = await restartNode(n0, instance, () => clock, stale)
    for (const o of acks)
      if (o.type === 'send') await r0.enclave.call('peer', { envelope: o.envelope })
    const vbox = systemViewBox(target, creatorKey, SYSTEM_NONCE_SELECTOR).box
    await assert.rejects(
      r0.enclave.call('view', { requestId: 'nonce', instance, box: vbox }),
      (e: unknown) => e instanceof ProtocolError && e.code === 'UNAVAILABLE',
      'still confirming its state: the replayed acks prove nothing about now',
    )
    // Its probe reaches the watchdogs: their answers show the pool ahead, and it takes the
    // pool's state back before it serves.
    await tickUntil(
      [r0, n1, n2],
      r0,
      answers,
      () => (clock += 1_500),
      () => false,
      3,
    )
    const recovered = await digestOfNode(r0, instance)
    assert.equal(recovered.seq, pool.seq)
    assert.deepEqual(recovered.digest, pool.digest)
    const next = transferBox(target, creatorKey, 4n, recipient)
    await pump(
      [r0, n1, n2],
      (await r0.enclave.call('tx', { requestId: 't4', instance, box: next.box })).outputs,
      answers,
      [],
      true,
    )
    const t4 = answerOf(answers, 't4', next.responseKey)
    assert.equal(t4.kind === 'receipt' && t4.receipt.nonce, 4n)
  })

  test('an executor restarted from a sealed snapshot with no update after it asks its watchdogs to confirm its state', async () => {
    let clock = 2_500_000
    const { nodes, instance, creatorKey, contractEncryptionKey, answers } = await setupActive(
      () => clock,
    )
    const [n0, n1, n2] = nodes as [Node, Node, Node]
    const target = { instance, contractEncryptionKey }
    const recipient = randomBytes(20)
    // The executor's sealed copy is a snapshot with no update after it (as right after genesis,
    // a handover or a state pull): it has no update to offer its watchdogs again, and they
    // only acknowledge what they are sent.
    const r0 = await restartNode(n0, instance, () => clock)
    const first = transferBox(target, creatorKey, 0n, recipient)
    const r = await r0.enclave.call('tx', { requestId: 't0', instance, box: first.box })
    await pump([r0, n1, n2], r.outputs, answers, [], true)
    await tickUntil(
      [r0, n1, n2],
      r0,
      answers,
      () => (clock += 1_500),
      () => answers.has('t0'),
    )
    const a = answerOf(answers, 't0', first.responseKey)
    assert.equal(a.kind === 'receipt' && a.receipt.nonce, 0n, 'served once its watchdogs confirmed')
  })

  test('a restarted executor credits a deposit its sealed view holds and its sealed state lacks (simulator seed 30)', async () => {
    let clock = 2_600_000
    const { nodes, instance, ev, creator, creatorKey, contractEncryptionKey, answers } =
      await setupActive(() => clock)
    const [n0, n1, n2] = nodes as [Node, Node, Node]
    const amount = 10n ** 18n
    const deposit = ev(EventKind.Deposit, depositData(creator, amount))
    const before = [...n0.sealed.get(instance)!]
    // The watchdogs see it first and report their views to the executor (decision 0025).
    await feedChain(nodes, [n1, n2], [deposit], answers)
    // The executor seals its view with the deposit, credits it and seals the update carrying
    // the credit; its host dies after writing the first blob, before the second and before the
    // update leaves. No later chain event comes to make it credit the deposit again.
    const r = await n0.enclave.call('chain', {
      blockNumber: 12n,
      timestamp: 1002n,
      events: [deposit],
    })
    const seals = r.outputs.filter((o) => o.type === 'seal')
    assert.deepEqual(
      seals.map((o) => o.mode),
      ['append', 'append'],
      'the view, then the update carrying the credit',
    )
    assert.ok(r.outputs.some((o) => o.type === 'send' && o.envelope.kind === 'update'))
    const r0 = await restartNode(n0, instance, () => clock, [...before, seals[0]!.blob])
    const after = [r0, n1, n2]
    await tickUntil(
      after,
      r0,
      answers,
      () => (clock += 1_500),
      () => false,
      4,
    )
    const target = { instance, contractEncryptionKey }
    const balance = await systemView(after, r0, target, creatorKey, BALANCE_SELECTOR, answers)
    assert.equal(BigInt(bytesToHex(balance)), amount, 'the deposit is credited once')
    const ds = await Promise.all(after.map((n) => digestOfNode(n, instance)))
    assert.equal(new Set(ds.map((d) => `${d.seq}:${bytesToHex(d.digest)}`)).size, 1)
  })

  test("a deposit the executor's host made up is never credited: no watchdog's view agrees with the executor's", async () => {
    let clock = 2_650_000
    const { nodes, instance, ev, creator, creatorKey, contractEncryptionKey, answers } =
      await setupActive(() => clock)
    const [n0, n1, n2] = nodes as [Node, Node, Node]
    const target = { instance, contractEncryptionKey }
    // The executor's host forks the manager's event chain: the same history, then a deposit that
    // was never made, hashed as the manager would hash it.
    const fork = eventChain(instance)
    for (const e of ev.history()) fork(e.kind, e.data)
    const madeUp = fork(EventKind.Deposit, depositData(creator, 10n ** 21n))
    const r = await n0.enclave.call('chain', {
      blockNumber: 12n,
      timestamp: 1002n,
      events: [madeUp],
    })
    await pump(nodes, r.outputs, answers, [], true)
    // The watchdogs' hosts feed the real chain, where that index is another, real deposit.
    const real = ev(EventKind.Deposit, depositData(randomBytes(20), 5n))
    await feedChain(nodes, [n1, n2], [real], answers)
    await tickUntil(
      nodes,
      n0,
      answers,
      () => (clock += 1_500),
      () => false,
      4,
    )
    const balance = await systemView(nodes, n0, target, creatorKey, BALANCE_SELECTOR, answers)
    assert.equal(BigInt(bytesToHex(balance)), 0n, 'nothing credited')
    const ds = await Promise.all(nodes.map((n) => digestOfNode(n, instance)))
    assert.equal(new Set(ds.map((d) => `${d.seq}:${bytesToHex(d.digest)}`)).size, 1)
    assert.equal(ds[0]!.seq, 0n, 'no update carries a credit')
  })

  test("deposits are credited while the watchdogs' views run far ahead of the executor's: its probe names the event to compare", async () => {
    let clock = 2_660_000
    const { nodes, instance, ev, creator, creatorKey, contractEncryptionKey, answers } =
      await setupActive(() => clock)
    const [n0, n1, n2] = nodes as [Node, Node, Node]
    const target = { instance, contractEncryptionKey }
    const deposits = Array.from({ length: 20 }, (_, i) =>
      ev(EventKind.Deposit, depositData(creator, BigInt(i + 1))),
    )
    // The watchdogs' operators confirm fewer blocks: they see twenty deposits, one chain batch
    // each, and report every view to the executor, which has seen none of them.
    for (const d of deposits)
      for (const w of [n1, n2]) {
        const seen = await w.enclave.call('chain', {
          blockNumber: 12n,
          timestamp: 1002n,
          events: [d],
        })
        await pump(nodes, seen.outputs, answers, [], true)
      }
    // The executor sees the first two.
    const r = await n0.enclave.call('chain', {
      blockNumber: 12n,
      timestamp: 1002n,
      events: deposits.slice(0, 2),
    })
    await pump(nodes, r.outputs, answers, [], true)
    await tickUntil(
      nodes,
      n0,
      answers,
      () => (clock += 1_500),
      () => false,
      2,
    )
    const balance = await systemView(nodes, n0, target, creatorKey, BALANCE_SELECTOR, answers)
    assert.equal(BigInt(bytesToHex(balance)), 3n, 'the two deposits the executor saw')
  })

  test('a deposit seen while a restarted executor waits for its pool is credited on the state it takes back from the pool', async () => {
    let clock = 2_700_000
    const { nodes, instance, ev, creator, creatorKey, contractEncryptionKey, answers } =
      await setupActive(() => clock)
    const [n0, n1, n2] = nodes as [Node, Node, Node]
    const target = { instance, contractEncryptionKey }
    const recipient = randomBytes(20)
    await sendTransfers(nodes, n0, target, creatorKey, [0n, 1n], recipient, answers)
    const stale = [...n0.sealed.get(instance)!]
    await sendTransfers(nodes, n0, target, creatorKey, [2n, 3n], recipient, answers)
    const pool = await digestOfNode(n1, instance)
    // Restarted from the older copy, the executor waits for its pool; a deposit comes meanwhile.
    const r0 = await restartNode(n0, instance, () => clock, stale)
    const after = [r0, n1, n2]
    const amount = 3n * 10n ** 17n
    const deposit = ev(EventKind.Deposit, depositData(creator, amount))
    await feedChain(after, after, [deposit], answers)
    await tickUntil(
      after,
      r0,
      answers,
      () => (clock += 1_500),
      () => false,
      4,
    )
    const ds = await Promise.all(after.map((n) => digestOfNode(n, instance)))
    assert.equal(new Set(ds.map((d) => `${d.seq}:${bytesToHex(d.digest)}`)).size, 1)
    assert.ok(ds[0]!.seq > pool.seq, 'the credit went out on the state taken back from the pool')
    const balance = await systemView(after, r0, target, creatorKey, BALANCE_SELECTOR, answers)
    assert.equal(BigInt(bytesToHex(balance)), amount)
  })

  test('a watchdog restarted from a stale copy and then promoted rolls no released receipt back', async () => {
    let clock = 3_000_000
    const { nodes, instance, ev, creatorKey, contractEncryptionKey, answers } = await setupActive(
      () => clock,
    )
    const [n0, n1, n2] = nodes as [Node, Node, Node]
    const target = { instance, contractEncryptionKey }
    const recipient = randomBytes(20)
    await sendTransfers(nodes, n0, target, creatorKey, [0n, 1n], recipient, answers)
    const stale = [...n1.sealed.get(instance)!]
    await sendTransfers(nodes, n0, target, creatorKey, [2n, 3n, 4n], recipient, answers)
    assert.ok(answers.has('t4'), 'update 5 released: every watchdog holds it')
    const held = await digestOfNode(n2, instance)
    assert.equal(held.seq, 5n)

    // n1's host serves it the copy from before updates 3–5; then the executor is removed and
    // n1, the longest-serving member, is promoted.
    const r1 = await restartNode(n1, instance, () => clock, stale)
    const removed = ev(EventKind.MemberRemoved, memberRemovedData(0n, n0.signer, 1n))
    const chain = (n: Node) =>
      n.enclave.call('chain', { blockNumber: 20n, timestamp: 1010n, events: [removed] })
    await chain(n2)
    const takeover = await chain(r1)
    await pump([r1, n2], takeover.outputs, answers, [], true)
    await tickUntil(
      [r1, n2],
      r1,
      answers,
      () => (clock += 1_500),
      () => false,
      4,
    )
    const [d1, d2] = [await digestOfNode(r1, instance), await digestOfNode(n2, instance)]
    assert.equal(d2.seq >= held.seq, true, `n2 rolled back to seq ${d2.seq}`)
    assert.equal(d1.seq, held.seq, 'the promoted executor took the rest of the log from n2')
    assert.deepEqual(d1.digest, held.digest)
    // It serves on from there: the user's next nonce is 5.
    const next = await r1.enclave.call('tx', {
      requestId: 't5',
      instance,
      box: transferBox(target, creatorKey, 5n, recipient).box,
    })
    await pump([r1, n2], next.outputs, answers, [], true)
    assert.ok(answers.has('t5'), 'a receipt for the next nonce')
    assert.equal((await digestOfNode(n2, instance)).seq, held.seq + 1n)
  })

  test('a watchdog restarted from a stale copy gets the whole state from its executor, since the updates it lacks left the log', async () => {
    let clock = 3_200_000
    const { nodes, instance, creatorKey, contractEncryptionKey, answers } = await setupActive(
      () => clock,
    )
    const [n0, n1, n2] = nodes as [Node, Node, Node]
    const target = { instance, contractEncryptionKey }
    const recipient = randomBytes(20)
    await sendTransfers(nodes, n0, target, creatorKey, [0n, 1n], recipient, answers)
    const stale = [...n1.sealed.get(instance)!]
    await sendTransfers(nodes, n0, target, creatorKey, [2n, 3n, 4n], recipient, answers)
    const r1 = await restartNode(n1, instance, () => clock, stale)
    assert.equal((await digestOfNode(r1, instance)).seq, 2n)
    // The next update reaches it; it asks for updates 3–5, released and gone from the log.
    await pump(
      [n0, r1, n2],
      await sendTransfer(n0, target, creatorKey, 5n, recipient, 't5'),
      answers,
      [],
      true,
    )
    await tickUntil(
      [n0, r1, n2],
      n0,
      answers,
      () => (clock += 1_500),
      () => answers.has('t5'),
    )
    assert.ok(answers.has('t5'), 'released once the restarted watchdog caught up')
    assert.deepEqual(
      (await digestOfNode(r1, instance)).digest,
      (await digestOfNode(n0, instance)).digest,
    )
  })

  test('a watchdog restarted from its latest copy and then promoted serves once another watchdog confirms it', async () => {
    let clock = 3_500_000
    const { nodes, instance, ev, creatorKey, contractEncryptionKey, answers } = await setupActive(
      () => clock,
    )
    const [n0, n1, n2] = nodes as [Node, Node, Node]
    const target = { instance, contractEncryptionKey }
    const recipient = randomBytes(20)
    await sendTransfers(nodes, n0, target, creatorKey, [0n, 1n], recipient, answers)
    const r1 = await restartNode(n1, instance, () => clock)
    const removed = ev(EventKind.MemberRemoved, memberRemovedData(0n, n0.signer, 1n))
    const chain = (n: Node) =>
      n.enclave.call('chain', { blockNumber: 20n, timestamp: 1010n, events: [removed] })
    // The promoted copy asks first: nothing is served before a watchdog answered.
    const takeover = await chain(r1)
    const t2 = transferBox(target, creatorKey, 2n, recipient)
    const waiting = await r1.enclave.call('tx', { requestId: 't2', instance, box: t2.box })
    await pump([r1], waiting.outputs, answers, [], true)
    assert.equal(answers.has('t2'), false, 'nothing served before the pool answered')
    await chain(n2)
    await pump([r1, n2], takeover.outputs, answers, [], true)
    await tickUntil(
      [r1, n2],
      r1,
      answers,
      () => (clock += 1_500),
      () => answers.has('t2'),
    )
    const a = answerOf(answers, 't2', t2.responseKey)
    assert.equal(a.kind === 'receipt' && a.receipt.nonce, 2n)
    assert.deepEqual(
      (await digestOfNode(n2, instance)).digest,
      (await digestOfNode(r1, instance)).digest,
    )
  })

  test('a restarted executor whose silent watchdogs are removed serves again without them (simulator seed 159, second run)', async () => {
    let clock = 2_700_000
    const { nodes, instance, ev, creatorKey, contractEncryptionKey, answers } = await setupActive(
      () => clock,
    )
    const n0 = nodes[0]!
    const target = { instance, contractEncryptionKey }
    const recipient = randomBytes(20)
    await pump(nodes, await sendTransfer(n0, target, creatorKey, 0n, recipient, 't0'), answers)
    // The executor restarts while both watchdogs are down: it waits for them to confirm.
    const r0 = await restartNode(n0, instance, () => clock)
    const next = transferBox(target, creatorKey, 1n, recipient)
    await pump(
      [],
      answersOnly(
        (await r0.enclave.call('tx', { requestId: 'n1', instance, box: next.box })).outputs,
      ),
      answers,
    )
    clock += 2_000
    await pump([], answersOnly((await r0.enclave.call('tick', { now: clock })).outputs), answers)
    assert.equal(answers.has('n1'), false, 'waits for the watchdogs')
    // Their challenge times out and both are removed: nobody is left to wait for.
    const removed = [1n, 2n].map((slot) =>
      ev(EventKind.MemberRemoved, memberRemovedData(slot, nodes[Number(slot)]!.signer, 2n)),
    )
    const r = await r0.enclave.call('chain', {
      blockNumber: 30n,
      timestamp: 1020n,
      events: removed,
    })
    await pump([], answersOnly(r.outputs), answers)
    assert.ok(answers.has('n1'), 'served once its silent watchdogs were removed')
    const receipt = answerOf(answers, 'n1', next.responseKey)
    assert.equal(receipt.kind === 'receipt' && receipt.receipt.nonce, 1n)
  })

  test('sealed logs are compacted into snapshots; a member restarts from them with its receipts', async () => {
    let clock = 3_000_000
    const { nodes, instance, creatorKey, contractEncryptionKey, answers } = await setupActive(
      () => clock,
    )
    const [n0, n1] = nodes as [Node, Node, Node]
    const target = { instance, contractEncryptionKey }
    const recipient = randomBytes(20)
    const total = LIMITS.snapshotEveryUpdates + 20
    let last = transferBox(target, creatorKey, 0n, recipient)
    for (let nonce = 0n; nonce < BigInt(total); nonce++) {
      last = transferBox(target, creatorKey, nonce, recipient)
      const r = await n0.enclave.call('tx', { requestId: `t${nonce}`, instance, box: last.box })
      await pump(nodes, r.outputs, answers)
    }
    const digestOf = (n: Node) => digestOfNode(n, instance)
    const head = await digestOf(n1)
    assert.equal(head.seq, BigInt(total))
    // Each member keeps one snapshot and the updates after it, not every update.
    for (const n of [n0, n1]) assert.ok(n.sealed.get(instance)!.length <= 1 + 20 + 4)
    // Both restart from their compacted logs; the executor still re-issues a receipt.
    const r1 = await restartNode(n1, instance, () => clock)
    assert.deepEqual(await digestOf(r1), head)
    const r0 = await restartNode(n0, instance, () => clock)
    const after = [r0, r1, nodes[2]!]
    clock += 2_000
    await pump(after, (await r0.enclave.call('tick', { now: clock })).outputs, answers, [], true)
    const again = await r0.enclave.call('tx', { requestId: 'again', instance, box: last.box })
    await pump(after, again.outputs, answers, [], true)
    const a = answerOf(answers, 'again', last.responseKey)
    assert.equal(a.kind === 'receipt' && a.receipt.nonce, BigInt(total - 1))
  })

  test("a refilled member's view forgets the deposits the state it receives has credited", async () => {
    let clock = 4_200_000
    const { nodes, instance, ev, creator, answers } = await setupActive(() => clock)
    const [n0, n1, n2] = nodes as [Node, Node, Node]
    const deposit = ev(EventKind.Deposit, depositData(creator, 7n))
    await feedChain(nodes, nodes, [deposit], answers, { blockNumber: 20n, timestamp: 1050n })
    assert.equal((await digestOfNode(n1, instance)).seq, 1n, 'credited and replicated')
    const n3 = await newNode(undefined, undefined, () => clock)
    const removed = ev(EventKind.MemberRemoved, memberRemovedData(2n, n2.signer, 2n))
    const refilled = ev(EventKind.Refilled, refilledData(2, n3))
    const all = [n0, n1, n2, n3]
    const outs: EnclaveOutput[] = []
    for (const n of all) {
      // n3 reads the whole history, the deposit included.
      const events = n === n3 ? ev.history() : [removed, refilled]
      outs.push(
        ...(await n.enclave.call('chain', { blockNumber: 30n, timestamp: 1100n, events })).outputs,
      )
    }
    await pump(all, outs, answers, [], true)
    await tickUntil(
      all,
      n0,
      answers,
      () => (clock += 1_500),
      () => false,
      2,
    )
    const d3 = await digestOfNode(n3, instance)
    assert.equal(d3.seq, 1n, 'the newcomer holds the state')
    assert.equal(depositsKept(n3, instance), 0, 'the credited deposit is forgotten')
  })

  test('a deposit credited by an update not yet released survives two failures (the member that applied it keeps it in its view)', async () => {
    let clock = 4_400_000
    const { nodes, instance, ev, creator, creatorKey, contractEncryptionKey, answers } =
      await setupActive(() => clock)
    const [n0, n1, n2] = nodes as [Node, Node, Node]
    const target = { instance, contractEncryptionKey }
    const toN1 = sentTo(n1)
    // A deposit; its crediting update reaches n2 but never n1: it is not released.
    const amount = 7n
    const deposit = ev(EventKind.Deposit, depositData(creator, amount))
    for (const n of nodes) {
      const r = await n.enclave.call('chain', {
        blockNumber: 20n,
        timestamp: 1050n,
        events: [deposit],
      })
      await pump(nodes, r.outputs, answers, [], true, toN1)
    }
    for (let i = 0; i < 2; i++) {
      clock += 1_500
      const r = await n0.enclave.call('tick', { now: clock })
      await pump(nodes, r.outputs, answers, [], true, toN1)
    }
    assert.equal((await digestOfNode(n2, instance)).seq, 1n, 'n2 applied the credit')
    assert.equal((await digestOfNode(n1, instance)).seq, 0n, 'n1 never got it')
    assert.equal(depositsKept(n2, instance), 1, 'n2 keeps the deposit: not released')
    // The executor fails; n1 (longest serving) is promoted and hands its state (without the
    // credit) to n2. n1's messages after that are lost: it fails before crediting the deposit.
    const removed0 = ev(EventKind.MemberRemoved, memberRemovedData(0n, n0.signer, 1n))
    const survivors = [n1, n2]
    const outs: EnclaveOutput[] = []
    for (const n of survivors) {
      outs.push(
        ...(
          await n.enclave.call('chain', { blockNumber: 30n, timestamp: 1100n, events: [removed0] })
        ).outputs,
      )
    }
    await pump(survivors, outs, answers, [], true, toN1)
    assert.equal((await digestOfNode(n2, instance)).seq, 0n, "n2 took n1's state")
    // n1 fails too; n2 is promoted alone, and credits the deposit.
    const removed1 = ev(EventKind.MemberRemoved, memberRemovedData(1n, n1.signer, 1n))
    await feedChain([n2], [n2], [removed1], answers, { blockNumber: 40n, timestamp: 1200n })
    await tickUntil(
      [n2],
      n2,
      answers,
      () => (clock += 1_500),
      () => false,
      3,
    )
    assert.equal((await digestOfNode(n2, instance)).role, 'executor')
    const balance = await systemView([n2], n2, target, creatorKey, BALANCE_SELECTOR, answers)
    assert.equal(BigInt(bytesToHex(balance)), amount, 'the deposit is credited once')
  })

  test('a watchdog forgets a credited deposit once the executor is maxInFlightUpdates updates further', async () => {
    let clock = 4_600_000
    const s = await setupActive(() => clock)
    const { nodes, instance, creator, creatorKey, contractEncryptionKey, answers } = s
    const [n0, n1] = nodes as [Node, Node, Node]
    const target = { instance, contractEncryptionKey }
    const kept = () => depositsKept(n1, instance)
    await creditedDeposit(s, creator, 5n, () => (clock += 1_500))
    assert.equal((await digestOfNode(n1, instance)).seq, 1n, 'update 1 credits the deposit')
    const nonces = Array.from({ length: LIMITS.maxInFlightUpdates }, (_, i) => BigInt(i))
    await sendTransfers(
      nodes,
      n0,
      target,
      creatorKey,
      nonces.slice(0, -1),
      randomBytes(20),
      answers,
    )
    assert.equal(kept(), 1, 'kept while the executor may not yet know every watchdog holds it')
    await sendTransfers(nodes, n0, target, creatorKey, nonces.slice(-1), randomBytes(20), answers)
    assert.equal((await digestOfNode(n1, instance)).seq, BigInt(LIMITS.maxInFlightUpdates) + 1n)
    assert.equal(kept(), 0, 'forgotten: the executor started this update with update 1 held by all')
  })

  test("after an executor's restart a watchdog forgets no deposit by the updates the restarted executor counts as released", async () => {
    let clock = 4_700_000
    const s = await setupActive(() => clock)
    const { nodes, instance, creator, creatorKey, contractEncryptionKey, answers } = s
    const [n0, n1, n2] = nodes as [Node, Node, Node]
    const target = { instance, contractEncryptionKey }
    const recipient = randomBytes(20)
    const kept = () => depositsKept(n1, instance)
    await creditedDeposit(s, creator, 5n, () => (clock += 1_500))
    await sendTransfers(nodes, n0, target, creatorKey, [0n, 1n], recipient, answers)
    assert.equal((await digestOfNode(n1, instance)).seq, 3n, 'update 1 credits the deposit')
    // Restarted, the executor counts its log (to seq 3) as released once its pool answered its
    // probe, whatever each watchdog holds: updates 4 and 5 say nothing about update 1.
    const r0 = await restartNode(n0, instance, () => clock)
    const after = [r0, n1, n2]
    await tickUntil(
      after,
      r0,
      answers,
      () => (clock += 1_500),
      () => false,
      3,
    )
    await sendTransfers(after, r0, target, creatorKey, [2n, 3n], recipient, answers)
    assert.equal((await digestOfNode(n1, instance)).seq, 5n)
    assert.equal(kept(), 1, 'kept: the probe named seq 3 as released without acks')
    const further = Array.from({ length: LIMITS.maxInFlightUpdates - 1 }, (_, i) => BigInt(i + 4))
    await sendTransfers(after, r0, target, creatorKey, further, recipient, answers)
    assert.equal(kept(), 0, 'forgotten once an update past the restart is held by all')
  })

  test('final balances name every account without code that holds coins or withdrew some in the world, and no other', async () => {
    const { nodes, instance } = await setupActive()
    type Inst = {
      world: {
        setStorageWord: (a: Uint8Array, slot: bigint, v: bigint) => void
        setNonce: (a: Uint8Array, n: bigint) => void
        credit: (a: Uint8Array, amount: bigint) => void
      }
      finalBalances: () => Array<{ account: Uint8Array; cumulative: bigint }>
    }
    const inst = (nodes[0]!.enclave as unknown as { instances: Map<bigint, Inst> }).instances.get(
      instance,
    )!
    // Burned all it held (its claim on-chain not made yet), holds and burned some, only holds,
    // and only sent transactions.
    const [burnedAll, both, holds, idle] = [1, 2, 3, 4].map((i) =>
      new Uint8Array(20).fill(0xe0 + i),
    )
    inst.world.setNonce(burnedAll!, 1n)
    inst.world.setStorageWord(SYSTEM_ADDRESS, systemWithdrawnSlot(burnedAll!), 7n)
    inst.world.credit(both!, 2n)
    inst.world.setStorageWord(SYSTEM_ADDRESS, systemWithdrawnSlot(both!), 5n)
    inst.world.credit(holds!, 3n)
    inst.world.setNonce(idle!, 4n)
    const listed = new Map(
      inst.finalBalances().map((b) => [bytesToHex(b.account), b.cumulative] as const),
    )
    assert.equal(listed.get(bytesToHex(burnedAll!)), 7n, 'an account that burned everything')
    assert.equal(listed.get(bytesToHex(both!)), 7n)
    assert.equal(listed.get(bytesToHex(holds!)), 3n)
    assert.ok(!listed.has(bytesToHex(idle!)), 'an account with nothing is not listed')
  })

  test('after the contract terminated in the world, a withdrawal is served only while the final balances cannot be published, also to a sender whose queued transaction was dropped', async () => {
    let clock = 4_800_000
    const s = await setupActive(() => clock)
    const { nodes, instance, answers } = s
    const [n0] = nodes as [Node]
    const userKey = generateSecretKey()
    const user = secretKeyToAddress(userKey)
    await creditedDeposit(s, user, 10n, () => (clock += 1_500))
    const world = worldOf(n0, instance)
    const send = (id: string, tx: Tx, key: Uint8Array) => sendTx(s, n0, id, tx, key)
    const withdraw = (nonce: bigint) => systemWithdraw(instance, user, nonce, 4n)
    // The user's transfer is queued; before it runs, the contract calls PoseSystem.terminate()
    // (the flag it sets): the transfer is dropped when its batch runs.
    const queued = txBox(s, transferTx(s, userKey, 0n, randomBytes(20)), userKey)
    await n0.enclave.call('tx', { requestId: 'queued', instance, box: queued.box }, true)
    terminateInWorld(n0, instance)
    clock += 10
    await pump(nodes, (await n0.enclave.call('tick', { now: clock })).outputs, answers)
    const dropped = answerOf(answers, 'queued', queued.responseKey)
    assert.equal(dropped.kind === 'rejected' && dropped.error.code, 'WRONG_PHASE')
    // The final balances can be published: nothing runs, a withdrawal neither (it would keep
    // the executor from publishing).
    const early = await send('early', withdraw(0n), userKey)
    assert.equal(early.kind === 'rejected' && early.error.code, 'WRONG_PHASE')
    // Dust over more accounts than final balances may list (lowered here from 131,072): they
    // never can be. A withdrawal is the way out, with the nonce the dropped transfer did not use.
    const limits = LIMITS as { maxFinalAccounts: number }
    const most = limits.maxFinalAccounts
    limits.maxFinalAccounts = 64
    let withdrawal: ReturnType<typeof answerOf>
    try {
      for (let i = 0; i <= 64; i++) world.credit(randomBytes(20), 1n)
      // (Replicated with the next update: a deposit's credit makes one.)
      await creditedDeposit(s, randomBytes(20), 1n, () => (clock += 1_500))
      withdrawal = await send('withdraw', withdraw(0n), userKey)
    } finally {
      limits.maxFinalAccounts = most
    }
    assert.equal(
      withdrawal.kind === 'receipt' && withdrawal.receipt.status,
      'success',
      JSON.stringify(withdrawal, (_k, v) => (typeof v === 'bigint' ? String(v) : v)),
    )
    assert.equal(world.getBalance(user), 6n)
    assert.equal(world.getStorageWord(SYSTEM_ADDRESS, systemWithdrawnSlot(user)), 4n)
    const transfer = await send('transfer', transferTx(s, userKey, 1n, randomBytes(20)), userKey)
    assert.equal(transfer.kind === 'rejected' && transfer.error.code, 'WRONG_PHASE')
  })

  test('final balances of more accounts than a page lists go in pages: one root over all, each page signed at the latest event, the same on every member', async () => {
    let clock = 5_200_000
    const s = await setupActive(() => clock)
    const { nodes, instance } = s
    const [n0, n1] = nodes as [Node, Node]
    type Inst = {
      world: {
        setStorageWord: (a: Uint8Array, slot: bigint, v: bigint) => void
        credit: (a: Uint8Array, amount: bigint) => void
      }
      finalBalances: () => Array<{ account: Uint8Array; cumulative: bigint }>
    }
    const inst = (n: Node) =>
      (n.enclave as unknown as { instances: Map<bigint, Inst> }).instances.get(instance)!
    for (let i = 0; i < MAX_FINAL_ACCOUNTS + 5; i++)
      inst(n0).world.credit(randomBytes(20), BigInt(i + 1))
    // (Replicated with the next update: a deposit's credit makes one.)
    await creditedDeposit(s, randomBytes(20), 1n, () => (clock += 1_500))
    inst(n0).world.setStorageWord(SYSTEM_ADDRESS, SYSTEM_TERMINATED_SLOT, 1n)
    clock += 10
    const outs = (await n0.enclave.call('tick', { now: clock })).outputs
    const pages = outs.flatMap((o) => (o.type === 'terminate' ? [o] : []))
    const all = inst(n0).finalBalances()
    assert.ok(all.length > MAX_FINAL_ACCOUNTS, `${all.length} accounts`)
    assert.deepEqual(
      pages.map((p) => [p.page, p.pages, p.accounts.length]),
      [
        [0, 2, MAX_FINAL_ACCOUNTS],
        [1, 2, all.length - MAX_FINAL_ACCOUNTS],
      ],
    )
    const root = finalBalancesRoot(all)
    const latest = (
      n0.enclave as unknown as { views: Map<bigint, { index: bigint; hash: Uint8Array }> }
    ).views.get(instance)!
    for (const p of pages) {
      assert.deepEqual(p.root, root, 'one root over every page')
      const balances = p.accounts.map((account, i) => ({ account, cumulative: p.cumulatives[i]! }))
      const digest = terminateDigest({
        chainId: CHAIN_ID,
        manager: MANAGER,
        instance,
        root,
        page: p.page,
        pages: p.pages,
        pageHash: keccak256(encodeFinalPage(root, balances)),
        eventIndex: p.eventIndex,
        eventHash: latest.hash,
      })
      assert.equal(p.eventIndex, latest.index, 'at the latest event')
      assert.deepEqual(recoverAddress(digest, p.signature), n0.signer, `page ${p.page}`)
    }
    assert.deepEqual(
      pages.flatMap((p) => p.accounts),
      all.map((b) => b.account),
      'every account once, in order',
    )
    // A watchdog holds the same state: promoted, it would publish the same pages.
    assert.deepEqual(finalBalancesRoot(inst(n1).finalBalances()), root)
    // Within the retry interval nothing is sent again; after it, every page.
    const soon = (await n0.enclave.call('tick', { now: clock + 1_000 })).outputs
    assert.equal(soon.filter((o) => o.type === 'terminate').length, 0)
    const later = (await n0.enclave.call('tick', { now: clock + 6_000 })).outputs
    assert.equal(later.filter((o) => o.type === 'terminate').length, 2)
  })

  test('a promoted member publishes the final balances once a watchdog that never acknowledges its handover is challenged and removed (the deposits it keeps are credited)', async () => {
    let clock = 5_400_000
    const s = await setupActive(() => clock)
    const { nodes, instance, ev, answers } = s
    const [n0, n1, n2] = nodes as [Node, Node, Node]
    // The contract ends in the update that credits a deposit: n1 keeps the deposit in its view
    // (its executor may not know yet that every watchdog holds the credit).
    terminateInWorld(n0, instance)
    await creditedDeposit(s, randomBytes(20), 5n, () => (clock += 1_500))
    assert.equal((await digestOfNode(n1, instance)).seq, 1n)
    assert.equal(depositsKept(n1, instance), 1)
    // n0 fails and n1 is promoted; n2 is silent from then on (its operator down).
    const removed = ev(EventKind.MemberRemoved, memberRemovedData(0n, n0.signer, 1n))
    const silent = sentTo(n2)
    const r = await n1.enclave.call('chain', {
      blockNumber: 30n,
      timestamp: 1100n,
      events: [removed],
    })
    await pump(nodes, r.outputs, answers, [], true, silent)
    const pages: EnclaveOutput[] = [...pagesOf(r.outputs)]
    const challenges: EnclaveOutput[] = []
    for (let i = 0; i < 3; i++) {
      clock += 6_000
      const t = await n1.enclave.call('tick', { now: clock })
      pages.push(...pagesOf(t.outputs))
      challenges.push(...t.outputs.filter((o) => o.type === 'challengeWatchdogs'))
      await pump(nodes, t.outputs, answers, [], true, silent)
    }
    assert.equal((await digestOfNode(n1, instance)).role, 'executor')
    // Nothing is published while n2 may lack the state: promoted, it would publish others.
    assert.equal(pages.length, 0, 'no page while a watchdog may not hold the state')
    // An update for n2 to acknowledge, then, late, an on-chain challenge of its slot.
    assert.deepEqual(
      challenges.map((c) => c.type === 'challengeWatchdogs' && c.memberMask),
      [1n << 2n],
      'the silent watchdog is challenged',
    )
    assert.equal(depositsKept(n1, instance), 1, 'still kept: n2 never acknowledged the handover')
    const gone = ev(EventKind.MemberRemoved, memberRemovedData(2n, n2.signer, 1n))
    const g = await n1.enclave.call('chain', { blockNumber: 40n, timestamp: 1200n, events: [gone] })
    pages.push(...pagesOf(g.outputs))
    for (let i = 0; i < 2 && pages.length === 0; i++) {
      clock += 6_000
      pages.push(...pagesOf((await n1.enclave.call('tick', { now: clock })).outputs))
    }
    assert.ok(pages.length > 0, 'the promoted member publishes the final balances')
  })

  test("a restarted executor publishes the final balances only once its pool confirmed its copy's state", async () => {
    let clock = 5_600_000
    const s = await setupActive(() => clock)
    const { nodes, instance, answers } = s
    const [n0, , n2] = nodes as [Node, Node, Node]
    terminateInWorld(n0, instance)
    await creditedDeposit(s, randomBytes(20), 5n, () => (clock += 1_500))
    // Restarted from that copy, which its host may have served in place of a later one: it
    // holds the termination and nothing unreleased, but the pool may hold more (a deposit's
    // credit).
    const r1 = await promoteAndRestart(
      s,
      () => (clock += 1_500),
      () => clock,
    )
    const after = [n0, r1, n2]
    clock += 6_000
    const unconfirmed = await r1.enclave.call('tick', { now: clock })
    assert.equal(pagesOf(unconfirmed.outputs).length, 0, 'nothing from an unconfirmed copy')
    // Its probe is answered: the pool holds the same state.
    await pump(after, unconfirmed.outputs, answers, [], true)
    clock += 6_000
    const confirmed = await r1.enclave.call('tick', { now: clock })
    assert.ok(pagesOf(confirmed.outputs).length > 0, 'published once the pool confirmed it')
  })

  test('a restarted executor with nothing unreleased challenges a watchdog silent to its probe on-chain, and serves once that watchdog is removed', async () => {
    let clock = 5_700_000
    const s = await setupActive(() => clock)
    const { nodes, instance, ev, answers, creatorKey, contractEncryptionKey } = s
    const [n0, , n2] = nodes as [Node, Node, Node]
    const target = { instance, contractEncryptionKey }
    await pump(
      nodes,
      await sendTransfer(n0, target, creatorKey, 0n, randomBytes(20), 't0'),
      answers,
    )
    // n1 restarts from its handover's snapshot while n2 is down for good.
    const r1 = await promoteAndRestart(
      s,
      () => (clock += 1_500),
      () => clock,
    )
    const after = [n0, r1, n2]
    const silent = sentTo(n2)
    const challenges = async (advance: number) => {
      clock += advance
      const t = await r1.enclave.call('tick', { now: clock })
      await pump(after, t.outputs, answers, [], true, silent)
      return t.outputs.flatMap((o) => (o.type === 'challengeWatchdogs' ? [o] : []))
    }
    assert.equal((await challenges(1_000)).length, 0, 'not before the ack timeout')
    const [c] = await challenges(5_000)
    assert.equal(c?.memberMask, 1n << 2n, "n2's slot, and only it")
    assert.ok(c && new TextDecoder().decode(c.payload.slice(0, 13)) === 'POSE-PROBE-v1')
    assert.equal((await challenges(1_000)).length, 0, 'once per ack timeout')
    // The challenge goes unanswered and n2 is removed: n1 serves without it.
    const removed2 = ev(EventKind.MemberRemoved, memberRemovedData(2n, n2.signer, 1n))
    await feedChain(after, [r1], [removed2], answers, { blockNumber: 40n, timestamp: 1200n })
    const sent = transferBox(target, creatorKey, 1n, randomBytes(20))
    const r = await r1.enclave.call('tx', { requestId: 't1', instance, box: sent.box })
    await pump(after, r.outputs, answers, [], true, silent)
    await tickUntil(
      after,
      r1,
      answers,
      () => (clock += 1_500),
      () => answers.has('t1'),
      3,
    )
    const a = answerOf(answers, 't1', sent.responseKey)
    assert.equal(a.kind === 'receipt' && a.receipt.status, 'success')
  })

  test('once the contract terminated, the executor answers a challenge only by publishing the final balances (a host that withholds them is timed out)', async () => {
    let clock = 5_750_000
    const s = await setupActive(() => clock)
    const { nodes, instance, ev, answers, creatorKey, contractEncryptionKey } = s
    const [n0] = nodes as [Node]
    terminateInWorld(n0, instance)
    await creditedDeposit(s, randomBytes(20), 5n, () => (clock += 1_500))
    // A user challenges the executor with a transaction box (it found no executor to ask).
    const { box } = transferBox(
      { instance, contractEncryptionKey },
      creatorKey,
      0n,
      randomBytes(20),
    )
    const challenge = ev(EventKind.ExecutorChallenged, executorChallengedData(box))
    const outs: EnclaveOutput[] = []
    for (const n of nodes) {
      const r = await n.enclave.call('chain', {
        blockNumber: 30n,
        timestamp: 1100n,
        events: [challenge],
      })
      outs.push(...r.outputs)
      await pump(nodes, r.outputs, answers, [], true)
    }
    clock += 6_000
    outs.push(...(await n0.enclave.call('tick', { now: clock })).outputs)
    assert.equal(
      outs.filter((o) => o.type === 'respondExecutor').length,
      0,
      'no answer its host could send while withholding the pages',
    )
    const pages = pagesOf(outs)
    assert.ok(pages.length > 0, 'the pages, which answer the challenge on-chain')
    assert.ok(
      pages.every((p) => p.type === 'terminate' && p.eventIndex === challenge.index),
      'signed at the challenge, the latest event',
    )
  })

  test("once the contract terminated, an executor whose pages a user's claim after the challenge voided answers the challenge as ever; an event its host's operator can make alone does not count", async () => {
    let clock = 5_760_000
    const s = await setupActive(() => clock)
    const { nodes, instance, ev, answers } = s
    const [n0] = nodes as [Node]
    terminateInWorld(n0, instance)
    await creditedDeposit(s, randomBytes(20), 5n, () => (clock += 1_500))
    const challenge = ev(EventKind.ExecutorChallenged, executorChallengedData(new Uint8Array()))
    const feed = async (events: ChainEvent[], blockNumber: bigint) => {
      const outs: EnclaveOutput[] = []
      for (const n of nodes) {
        const r = await n.enclave.call('chain', { blockNumber, timestamp: 1100n, events })
        if (n === n0) outs.push(...r.outputs)
        await pump(nodes, r.outputs, answers, [], true)
      }
      return outs
    }
    const outs = await feed([challenge], 30n)
    clock += 6_000
    outs.push(...(await n0.enclave.call('tick', { now: clock })).outputs)
    assert.ok(pagesOf(outs).length > 0, 'pages signed at the challenge')
    assert.equal(outs.filter((o) => o.type === 'respondExecutor').length, 0)
    // The executor's operator challenges the watchdogs before the pages land (it may, while
    // its executor is challenged): the pages fail, but that is no user's doing: no answer.
    const own = await feed(
      [
        ev(
          EventKind.WatchdogsChallenged,
          hexb(encodeAbiParameters([{ type: 'uint16' }, { type: 'bytes' }], [2, '0xab'])),
        ),
      ],
      31n,
    )
    assert.equal(own.filter((o) => o.type === 'respondExecutor').length, 0, 'no answer')
    // A user's claim (an authorisation signed before the end) lands before the pages: the
    // manager refuses them (not the latest event), and the executor answers as ever.
    const claim = hexb(
      encodeAbiParameters(
        [{ type: 'address' }, { type: 'uint256' }, { type: 'uint256' }],
        [bytesToHex(randomBytes(20)), 1n, 1n],
      ),
    )
    const late = await feed([ev(EventKind.Withdrawal, claim)], 32n)
    const answersNow = late.filter((o) => o.type === 'respondExecutor')
    assert.equal(answersNow.length, 1, 'the executor answers the challenge as ever')
  })

  test('a withdrawal before the end, among more accounts than final balances may list, does not keep them from being published once fewer remain', async () => {
    let clock = 5_800_000
    const s = await setupActive(() => clock)
    const [n0] = s.nodes as [Node]
    const userKey = generateSecretKey()
    const user = secretKeyToAddress(userKey)
    await creditedDeposit(s, user, 10n, () => (clock += 1_500))
    const limits = LIMITS as { maxFinalAccounts: number }
    const most = limits.maxFinalAccounts
    limits.maxFinalAccounts = 64
    try {
      for (let i = 0; i <= 64; i++) worldOf(n0, s.instance).credit(randomBytes(20), 1n)
      await creditedDeposit(s, randomBytes(20), 1n, () => (clock += 1_500))
      const w = await sendTx(s, n0, 'withdraw', systemWithdraw(s.instance, user, 0n, 4n), userKey)
      assert.equal(w.kind === 'receipt' && w.receipt.status, 'success')
    } finally {
      limits.maxFinalAccounts = most
    }
    // The limit back at 131,072 stands for the count falling under it before the end (accounts
    // spending everything they hold): the contract ends, and its final balances go out.
    terminateInWorld(n0, s.instance)
    await creditedDeposit(s, randomBytes(20), 1n, () => (clock += 1_500))
    clock += 6_000
    const t = await n0.enclave.call('tick', { now: clock })
    assert.ok(pagesOf(t.outputs).length > 0, 'the final balances are published')
  })

  test('receipts and outcomes are kept within a byte budget, and a whole state carries at most its share of them', async () => {
    const cache = new OutcomeCache<{ answer: Uint8Array }>((v) => v.answer.length, 1_000)
    for (let i = 0; i < 5; i++) cache.put(`k${i}`, { answer: new Uint8Array(300) })
    assert.deepEqual([...cache.keys()], ['k2', 'k3', 'k4'], 'the oldest go first')
    assert.equal(cache.heldBytes, 900)
    cache.put('big', { answer: new Uint8Array(2_000) })
    assert.deepEqual([...cache.keys()], ['big'], 'the newest stays, whatever its size')
    cache.delete('big')
    cache.put('k5', { answer: new Uint8Array(10) })
    assert.equal(cache.heldBytes, 10)
    cache.clear()
    assert.equal(cache.heldBytes, 0)

    const { nodes, instance, creatorKey, contractEncryptionKey, answers } = await setupActive()
    const [n0] = nodes as [Node]
    const inst = (
      n0.enclave as unknown as {
        instances: Map<
          bigint,
          {
            world: { installCode: (a: Uint8Array, code: Uint8Array) => void }
            recentResults: (from: bigint) => Array<{ result: { returnData: Uint8Array } }>
          }
        >
      }
    ).instances.get(instance)!
    // A contract that returns 120 KiB of zeros (an update holds 127 KiB, decision 0028): 20
    // outcomes are 2.3 MiB.
    const big = new Uint8Array(20).fill(0xb1)
    inst.world.installCode(big, Uint8Array.from([0x62, 0x01, 0xe0, 0x00, 0x5f, 0xf3]))
    const creator = secretKeyToAddress(creatorKey)
    for (let nonce = 0n; nonce < 20n; nonce++) {
      const tx: Tx = {
        instance,
        from: creator,
        nonce,
        to: big,
        value: 0n,
        data: new Uint8Array(),
        gasLimit: 5_000_000n,
      }
      const sealed = txBox({ instance, contractEncryptionKey }, tx, creatorKey)
      const r = await n0.enclave.call('tx', { requestId: `big${nonce}`, instance, box: sealed.box })
      await pump(nodes, r.outputs, answers)
      const a = answerOf(answers, `big${nonce}`, sealed.responseKey)
      assert.equal(a.kind === 'receipt' && a.receipt.returnData.length, 120 * 1024)
    }
    const recent = inst.recentResults(0n)
    const carried = recent.reduce((n, r) => n + r.result.returnData.length, 0)
    assert.ok(recent.length >= 1 && recent.length < 20, `the newest only (${recent.length})`)
    assert.ok(carried <= 2 * 1024 * 1024, `${carried} bytes of outcomes carried`)
  })

  test('a transaction sent to a member that is not the executor is refused sealed, so its client can trust the refusal', async () => {
    const { nodes, instance, creatorKey, contractEncryptionKey } = await setupActive()
    const [, n1] = nodes as [Node, Node]
    const sealed = transferBox({ instance, contractEncryptionKey }, creatorKey, 0n, randomBytes(20))
    const r = await n1.enclave.call('tx', { requestId: 'w', instance, box: sealed.box })
    const out = r.outputs.find((o) => o.type === 'answer')
    assert.ok(out?.type === 'answer' && out.sealed, 'an answer sealed to the client')
    const a = decodeAnswer(openAnswer(sealed.responseKey, out.sealed))
    assert.equal(a.kind === 'rejected' && a.error.code, 'WRONG_ROLE')
  })

  test('a refilled member counts for every release at once, so a later promotion rolls nothing back', async () => {
    let clock = 4_000_000
    const { nodes, instance, ev, creatorKey, contractEncryptionKey, answers } = await setupActive(
      () => clock,
    )
    const [n0, n1, n2] = nodes as [Node, Node, Node]
    const target = { instance, contractEncryptionKey }
    const recipient = randomBytes(20)
    // Watchdog n2 is removed; n3 is drawn into its slot.
    const n3 = await newNode(undefined, undefined, () => clock)
    const removed = ev(EventKind.MemberRemoved, memberRemovedData(2n, n2.signer, 2n))
    const refilled = ev(EventKind.Refilled, refilledData(2, n3))
    const all = [n0, n1, n2, n3]
    const outs: EnclaveOutput[] = []
    for (const n of all) {
      // n3 learns the instance from the start of its event feed.
      const events = n === n3 ? ev.history() : [removed, refilled]
      outs.push(
        ...(await n.enclave.call('chain', { blockNumber: 30n, timestamp: 1100n, events })).outputs,
      )
    }
    const toN3 = sentTo(n3)
    // The genesis for n3 is held back: a transaction acknowledged by n1 alone is not released.
    const sealed = transferBox(target, creatorKey, 0n, recipient)
    const r = await n0.enclave.call('tx', { requestId: 'x', instance, box: sealed.box })
    const held = [...outs, ...r.outputs].filter(toN3)
    await pump(
      all,
      [...outs, ...r.outputs].filter((o) => !toN3(o)),
      answers,
      [],
      true,
    )
    assert.ok(!answers.has('x'), 'no receipt before the new member holds the update')
    // Once n3 has the state and acknowledged, the receipt is released.
    await pump(all, held, answers, [], true)
    clock += 2_000
    await pump(all, (await n0.enclave.call('tick', { now: clock })).outputs, answers, [], true)
    assert.ok(answers.has('x'))
    const d = await Promise.all(
      [n0, n1, n3].map(async (n) => {
        const x = (await n.enclave.call('digest', { instance })).result as {
          seq: bigint
          digest: Uint8Array
        }
        return `${x.seq}:${bytesToHex(x.digest)}`
      }),
    )
    assert.equal(new Set(d).size, 1)
  })

  test('a member removed and drawn again by a refill starts from the executor state, not its old copy (simulator seed 15)', async () => {
    const clock = 5_000_000
    const { nodes, instance, ev, creatorKey, contractEncryptionKey, answers } = await setupActive(
      () => clock,
    )
    const [n0, n1, n2] = nodes as [Node, Node, Node]
    const target = { instance, contractEncryptionKey }
    const recipient = randomBytes(20)
    const digestOf = (n: Node) => digestOfNode(n, instance)
    const removal = (slot: bigint, n: Node) =>
      ev(EventKind.MemberRemoved, memberRemovedData(slot, n.signer, 2n))
    const feed = async (events: ReturnType<typeof ev>[], to: Node[]) => {
      const outs: EnclaveOutput[] = []
      for (const n of to)
        outs.push(
          ...(await n.enclave.call('chain', { blockNumber: 40n, timestamp: 1200n, events }))
            .outputs,
        )
      return outs
    }
    await pump(nodes, await sendTransfer(n0, target, creatorKey, 0n, recipient, 'a'), answers)
    assert.equal((await digestOf(n2)).seq, 1n)
    // Watchdog n2 is removed (it was down); n1 alone acknowledges the next update, released.
    await pump(nodes, await feed([removal(2n, n2)], nodes), answers, [], true)
    await pump(
      [n0, n1],
      await sendTransfer(n0, target, creatorKey, 1n, recipient, 'b'),
      answers,
      [],
      true,
    )
    assert.ok(answers.has('b'))
    assert.equal((await digestOf(n1)).seq, 2n)
    // The refill draws n2 again; the executor's full state for it is lost on the way.
    const refilled = ev(EventKind.Refilled, refilledData(2, n2))
    await feed([refilled], nodes)
    const back = await digestOf(n2)
    assert.equal(back.role, 'watchdog')
    assert.equal(back.seq, 0n, 'the old copy (seq 1) is gone')
    // Executor and n1 fail; n2 is promoted. It holds nothing, so it serves nothing rather
    // than an old state without the released transfer b.
    await feed([removal(1n, n1), removal(0n, n0)], [n2])
    const promoted = await digestOf(n2)
    assert.equal(promoted.role, 'executor')
    assert.equal(promoted.seq, 0n)
    await assert.rejects(
      n2.enclave.call('tx', {
        requestId: 'c',
        instance,
        box: transferBox(target, creatorKey, 1n, recipient).box,
      }),
      (e: unknown) => e instanceof ProtocolError && e.code === 'NOT_READY',
    )
    // Its sealed blobs hold no old state either: a restart does not bring it back.
    const r2 = await restartNode(n2, instance, () => clock)
    assert.equal((await digestOf(r2)).seq, 0n)
  })

  test('a member removed and drawn again in one chain batch gets the full state and counts for releases again', async () => {
    let clock = 5_500_000
    const { nodes, instance, ev, creatorKey, contractEncryptionKey, answers } = await setupActive(
      () => clock,
    )
    const [n0, n1, n2] = nodes as [Node, Node, Node]
    const target = { instance, contractEncryptionKey }
    const recipient = randomBytes(20)
    // The host keeps n2's ack of the first update, to replay it later.
    const queue = await sendTransfer(n0, target, creatorKey, 0n, recipient, 'a')
    let oldAck: EnclaveOutput | undefined
    while (queue.length > 0) {
      const o = queue.shift()!
      if (o.type === 'answer' && o.sealed) answers.set(o.requestId, o.sealed)
      if (o.type !== 'send') continue
      if (o.envelope.kind === 'ack' && o.envelope.from.toLowerCase() === bytesToHex(n2.signer))
        oldAck = o
      const to = nodes.find((n) => bytesToHex(n.signer) === bytesToHex(o.to))!
      queue.push(...(await to.enclave.call('peer', { envelope: o.envelope })).outputs)
    }
    assert.ok(oldAck, "n2's ack of update 1")
    assert.equal((await digestOfNode(n2, instance)).seq, 1n)
    // The executor's host holds back n2's removal until the refill that draws it again, and
    // feeds both at once.
    const events = [
      ev(EventKind.MemberRemoved, memberRemovedData(2n, n2.signer, 2n)),
      ev(EventKind.Refilled, refilledData(2, n2)),
    ]
    const outs: EnclaveOutput[] = []
    for (const n of nodes)
      outs.push(
        ...(await n.enclave.call('chain', { blockNumber: 40n, timestamp: 1200n, events })).outputs,
      )
    // It drops the state the executor sends n2 and replays n2's old ack: from before the
    // removal, it must not count, or the executor would never send the state again.
    if (oldAck?.type === 'send') await n0.enclave.call('peer', { envelope: oldAck.envelope })
    await pump(
      nodes,
      outs.filter((o) => !(o.type === 'send' && o.envelope.kind === 'genesis')),
      answers,
      [],
      true,
    )
    await pump(
      nodes,
      await sendTransfer(n0, target, creatorKey, 1n, recipient, 'b'),
      answers,
      [],
      true,
    )
    await tickUntil(
      nodes,
      n0,
      answers,
      () => (clock += 1_500),
      () => answers.has('b'),
    )
    assert.ok(answers.has('b'), 'released once the re-drawn member holds the state')
    const d1 = await digestOfNode(n1, instance)
    const d2 = await digestOfNode(n2, instance)
    assert.equal(d2.seq, d1.seq)
    assert.deepEqual(d2.digest, d1.digest)
  })

  test('ecalls reject hostile input with typed errors', async () => {
    const fresh = new Enclave()
    await assert.rejects(
      fresh.call('status', {}),
      (e: unknown) => e instanceof ProtocolError && e.code === 'NOT_READY',
    )
    const n = await newNode()
    await assert.rejects(n.enclave.call('nope', {}), isCode('MALFORMED'))
    await assert.rejects(n.enclave.call('__proto__', {}), isCode('MALFORMED'))
    await assert.rejects(
      n.enclave.call('init', {
        platformSecret: new Uint8Array(32),
        measurement: MEASUREMENT,
        chainId: 1n,
        manager: MANAGER,
        operator: MANAGER,
      }),
      isCode('WRONG_PHASE'),
    )
    await assert.rejects(
      n.enclave.call('tx', { requestId: 'x', instance: 5n, box: new Uint8Array(10) }),
      isCode('UNKNOWN_INSTANCE'),
    )
    await assert.rejects(
      n.enclave.call('tx', { requestId: 'x', instance: -1n, box: new Uint8Array(10) }),
      isCode('MALFORMED'),
    )
    await assert.rejects(
      n.enclave.call('tx', { requestId: 'x', instance: 1n, box: new Uint8Array(200_000) }),
      isCode('MALFORMED'),
    )
    await assert.rejects(
      n.enclave.call('restore', { instance: 1n, blobs: [randomBytes(100)] }),
      isCode('DECRYPTION_FAILED'),
    )
    const ev = eventChain(1n)
    const created = ev(EventKind.Created, new Uint8Array(96))
    await assert.rejects(
      n.enclave.call('chain', {
        blockNumber: 1n,
        timestamp: 1n,
        events: [{ ...created, index: 2n }],
      }),
      isCode('OUT_OF_ORDER'),
    )
    await assert.rejects(
      n.enclave.call('chain', {
        blockNumber: 1n,
        timestamp: 1n,
        events: [{ ...created, hash: new Uint8Array(32) }],
      }),
      isCode('STALE_EVENT'),
    )
    await n.enclave.call('chain', { blockNumber: 1n, timestamp: 1n, events: [created] })
    await n.enclave.call('chain', { blockNumber: 1n, timestamp: 1n, events: [created] }) // a replay is ignored
    const badPool = ev(EventKind.PoolDrawn, new Uint8Array(5))
    await assert.rejects(
      n.enclave.call('chain', { blockNumber: 2n, timestamp: 2n, events: [badPool] }),
      isCode('MALFORMED'),
    )
    await assert.rejects(n.enclave.call('peer', { envelope: { kind: 'ack' } }), isCode('MALFORMED'))
    // A sealed identity opens only on its platform under its measurement (O3): another build on
    // the same platform, or the same build on another platform, cannot unseal it.
    for (const [platformSecret, measurement] of [
      [n.platformSecret, new Uint8Array(32).fill(0x12)],
      [randomBytes(32), MEASUREMENT],
    ] as const) {
      await assert.rejects(
        new Enclave().call('init', {
          platformSecret,
          measurement,
          chainId: CHAIN_ID,
          manager: MANAGER,
          operator: MANAGER,
          sealedIdentity: n.sealedIdentity,
        }),
        isCode('DECRYPTION_FAILED'),
      )
    }
    const same = (await new Enclave().call('init', {
      platformSecret: n.platformSecret,
      measurement: MEASUREMENT,
      chainId: CHAIN_ID,
      manager: MANAGER,
      operator: new Uint8Array(20).fill(1),
      sealedIdentity: n.sealedIdentity,
    })) as { result: { signer: Uint8Array } }
    assert.deepEqual(same.result.signer, n.signer)
    // Random parameters for every method never escape as anything but a ProtocolError.
    const methods = [
      'init',
      'restore',
      'chain',
      'deploy',
      'tx',
      'view',
      'peer',
      'tick',
      'digest',
      'status',
      'constructor',
      'toString',
    ]
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...methods),
        fc.anything({ withBigInt: true, withTypedArray: true }),
        async (m, p) => {
          try {
            await n.enclave.call(m, p)
          } catch (e) {
            assert.ok(e instanceof ProtocolError, `${m}: ${e}`)
          }
        },
      ),
      { numRuns: 400 },
    )
  })
})
