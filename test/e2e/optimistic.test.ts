/**
 * End to end on real processes: anvil, 4 operator processes, 4 enclave processes, loopback.
 * The optimistic path (SPEC §6): deploy with s = 2, >= 200 transactions from 3 users, verified
 * receipts, equal state digests on every member after each batch, signed view calls, a watchdog
 * restarted from its data directory, and bad input at the RPC and peer boundaries.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { type Address, encodeFunctionData } from 'viem'
import WebSocket from 'ws'
import { privateTokenAbi, privateTokenBytecode } from '../../examples/contracts.generated.ts'
import { readContractEncryptionKey, readInstance, readOperator } from '../../src/chain/manager.ts'
import { openReceipt } from '../../src/client/actions/sendTransaction.ts'
import { ContractRevertError, type PoseClient, PoseRequestError } from '../../src/client/index.ts'
import { type Devnet, startDevnet } from '../../src/devnet/devnet.ts'
import {
  BOX_CONTEXT,
  boxSeal,
  bytesToHex,
  decodeReceipt,
  encodeReceipt,
  encodeSignedTx,
  envelopeToWire,
  generateSecretKey,
  hashTx,
  hexToBytes,
  INSTANCE_ADDRESS,
  instanceAad,
  secretKeyToAddress,
  signDigest,
  signEnvelope,
  utf8,
  verifyReceiptSignature,
} from '../../src/protocol/index.ts'
import { killMember, memberDigests, userClients } from './helpers.ts'

let devnet: Devnet
let clients: PoseClient[]
let instance: bigint
const expected = new Map<string, bigint>()

const digests = () => memberDigests(devnet, clients[0]!, instance)

async function assertDigestsEqual(label: string): Promise<string> {
  const ds = await digests()
  const distinct = new Set(ds.map((d) => `${d.seq}/${d.digest}`))
  assert.equal(distinct.size, 1, `${label}: members disagree: ${JSON.stringify(ds)}`)
  assert.deepEqual(ds.map((d) => d.role).sort(), ['executor', 'watchdog', 'watchdog'])
  return ds[0]!.seq
}

async function transfer(from: PoseClient, to: PoseClient, amount: bigint) {
  const r = await from.writeContract({
    instance,
    abi: privateTokenAbi,
    functionName: 'transfer',
    args: [to.account.address, amount],
  })
  assert.equal(r.status, 'success')
  expected.set(from.account.address, expected.get(from.account.address)! - amount)
  expected.set(to.account.address, expected.get(to.account.address)! + amount)
  return r
}

describe('optimistic path on a 4-operator devnet', { timeout: 300_000 }, () => {
  before(async () => {
    devnet = await startDevnet({ operators: 4, users: 3 })
    clients = await userClients(devnet)
  })
  after(async () => {
    await devnet?.stop()
  })

  test('deploy an instance with s = 2 from Foundry output with constructor arguments (another user draws its pool first)', async () => {
    const [alice, bob] = clients as [PoseClient, PoseClient]
    // Anyone may draw a pool: bob's draw lands just before alice's, which then reverts, and
    // alice's deploy goes on.
    const write = alice.sender.write.bind(alice.sender)
    let raced = 0
    alice.sender.write = (async (req: Parameters<typeof write>[0]) => {
      if (req.functionName === 'drawPool' && raced++ === 0) await bob.sender.write(req)
      return write(req)
    }) as typeof write
    const r = await alice.deployContract({
      abi: privateTokenAbi,
      bytecode: privateTokenBytecode,
      args: [1_000_000n],
      watchdogCount: 2,
    })
    alice.sender.write = write
    assert.equal(raced, 1, 'alice tried to draw the pool after bob')
    instance = r.instance
    const info = await readInstance(alice.publicClient, devnet.manager, instance)
    assert.equal(info.phaseName, 'Active')
    assert.equal(info.signers.length, 3)
    assert.equal(new Set(info.operators).size, 3, 'pool members are distinct operators')
    // The manager does not store the contract encryption key: every user reads the one the
    // executor enclave returned at deployment from the Activated event.
    for (const c of clients) {
      const { contractEncryptionKey } = await c.getInstance({ instance, refresh: true })
      assert.equal(contractEncryptionKey, r.contractEncryptionKey, 'key from the Activated event')
    }
    assert.equal(
      await readContractEncryptionKey(alice.publicClient, devnet.manager, instance + 1n),
      undefined,
      'no key for an instance that does not exist',
    )
    for (const c of clients) expected.set(c.account.address, 0n)
    expected.set(alice.account.address, 1_000_000n)
    await assertDigestsEqual('genesis')
  })

  test('200+ transactions from 3 users: receipts verify, digests equal after each batch', async () => {
    const [alice, bob, carol] = clients as [PoseClient, PoseClient, PoseClient]
    await transfer(alice, bob, 50_000n)
    await transfer(alice, carol, 50_000n)
    const info = await readInstance(alice.publicClient, devnet.manager, instance)
    const members = new Set(info.signers.map((s) => s.toLowerCase()))
    let receipts = 0
    let lastSeq = -1n
    for (let round = 0; round < 10; round++) {
      const results = await Promise.all(
        clients.map(async (c, ci) => {
          const out = []
          for (let k = 0; k < 7; k++) {
            const to = clients[(ci + 1 + ((round + k) % 2)) % 3]!
            out.push(await transfer(c, to, BigInt(1 + ((round * 7 + k) % 13))))
          }
          return out
        }),
      )
      for (const r of results.flat()) {
        // Independently re-verify each receipt: signature, executor membership, content.
        const decoded = decodeReceipt(
          encodeReceipt({
            instance: r.instance,
            txHash: hexToBytes(r.txHash),
            from: hexToBytes(r.from),
            nonce: r.nonce,
            seq: r.seq,
            status: r.status,
            gasUsed: r.gasUsed,
            returnData: hexToBytes(r.returnData),
            logs: r.logs.map((l) => ({
              address: hexToBytes(l.address),
              topics: l.topics.map((t) => hexToBytes(t)),
              data: hexToBytes(l.data),
            })),
            executor: hexToBytes(r.executor),
            proof: r.proof.map((node) => hexToBytes(node)),
            signature: hexToBytes(r.signature),
          }),
        )
        verifyReceiptSignature(decoded, alice.domain)
        assert.ok(members.has(r.executor.toLowerCase()))
        assert.equal(r.logs.length, 1, 'a Transfer event')
        receipts++
      }
      const seq = BigInt(await assertDigestsEqual(`round ${round}`))
      assert.ok(seq > lastSeq)
      lastSeq = seq
    }
    assert.ok(receipts >= 210, `${receipts} receipts`)
  })

  test('signed view calls return only what the contract lets each user see', async () => {
    let total = 0n
    for (const c of clients) {
      const own = await c.readContract({
        instance,
        abi: privateTokenAbi,
        functionName: 'balanceOf',
        args: [c.account.address],
      })
      assert.equal(own, expected.get(c.account.address))
      total += own
      const other = clients.find((x) => x !== c)!
      await assert.rejects(
        c.readContract({
          instance,
          abi: privateTokenAbi,
          functionName: 'balanceOf',
          args: [other.account.address],
        }),
        (e: unknown) =>
          e instanceof ContractRevertError && e.errorName === 'PrivateToken_NotYourBalance',
      )
    }
    assert.equal(total, 1_000_000n)
  })

  test('a watchdog killed (operator and enclave) and restarted from its data directory resumes acking', async () => {
    const [alice, bob] = clients as [PoseClient, PoseClient]
    const info = await readInstance(alice.publicClient, devnet.manager, instance)
    const watchdogOperator = info.operators[(info.executorSlot + 1) % info.operators.length]!
    const idx = devnet.operators.findIndex((o) => o.address === watchdogOperator)
    const seqBefore = BigInt(await assertDigestsEqual('before kill'))
    await killMember(devnet, watchdogOperator)
    // A transaction sent while the watchdog is down gets no receipt until it acks again.
    const pending = transfer(alice, bob, 7n)
    const early = await Promise.race([
      pending.then(() => 'receipt'),
      new Promise((r) => setTimeout(() => r('waiting'), 1500)),
    ])
    assert.equal(early, 'waiting', 'no receipt may be released before every watchdog acked')
    await devnet.startOperator(idx)
    await pending
    for (let i = 0; i < 5; i++) await transfer(bob, alice, 3n)
    const seqAfter = BigInt(await assertDigestsEqual('after restart'))
    assert.ok(seqAfter > seqBefore)
  })

  test('bad input at the RPC boundary gets typed errors and nothing is lost', async () => {
    const [alice, bob] = clients as [PoseClient, PoseClient]
    const info = await alice.getInstance({ instance, refresh: true })
    const url = `${info.executorEndpoint}/v1/instances/${instance}/tx`
    const post = async (body: string, path = url) => {
      const res = await fetch(path, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
      })
      return {
        status: res.status,
        body: (await res.json()) as { error?: { code: string; message: string } },
      }
    }
    const cases: Array<[string, string, string, string?]> = [
      ['not JSON', '{', 'MALFORMED'],
      ['no box', '{}', 'MALFORMED'],
      ['box not hex', '{"box":"zz"}', 'MALFORMED'],
      ['box too short', '{"box":"0x00"}', 'DECRYPTION_FAILED'],
      [
        'random box',
        JSON.stringify({ box: bytesToHex(new Uint8Array(200).fill(3)) }),
        'DECRYPTION_FAILED',
      ],
      ['oversized box', JSON.stringify({ box: `0x${'00'.repeat(200_000)}` }), 'OVERSIZED'],
      [
        'bad instance id',
        '{"box":"0x00"}',
        'MALFORMED',
        `${info.executorEndpoint}/v1/instances/abc/tx`,
      ],
      [
        'unknown instance',
        JSON.stringify({ box: bytesToHex(new Uint8Array(100)) }),
        'UNKNOWN_INSTANCE',
        `${info.executorEndpoint}/v1/instances/999/tx`,
      ],
    ]
    for (const [name, body, code, path] of cases) {
      const r = await post(body, path)
      assert.equal(r.body.error?.code, code, `${name}: ${JSON.stringify(r.body)}`)
      assert.ok(r.status >= 400 && r.status < 500, `${name}: status ${r.status}`)
    }
    // A body over the HTTP limit is cut off (413 or a closed connection); the node stays up.
    const huge = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: `{"box":"0x${'00'.repeat(3_000_000)}"}`,
    }).then(
      (res) => res.status,
      () => 'closed',
    )
    assert.ok(huge === 413 || huge === 'closed', `huge body: ${huge}`)

    // A tx naming alice but signed by someone else; a tampered ciphertext; a box for another instance.
    const cek = hexToBytes(info.contractEncryptionKey, 'cek', 32)
    const forger = generateSecretKey()
    const tx = {
      instance,
      from: hexToBytes(alice.account.address),
      nonce: 0n,
      to: INSTANCE_ADDRESS,
      value: 0n,
      data: new Uint8Array(),
      gasLimit: 100_000n,
    }
    const forged = signDigest(hashTx(alice.domain, tx), forger)
    const seal = (plaintext: Uint8Array, inst = instance) =>
      boxSeal({
        recipientPublicKey: cek,
        plaintext,
        context: BOX_CONTEXT.tx,
        aad: instanceAad(inst),
      })
    const sendBox = (box: Uint8Array) =>
      fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ box: bytesToHex(box) }),
      })
    // Rejections after decryption are sealed to the sender: open them with the response key.
    const rejectedCode = async (plaintext: Uint8Array) => {
      const { box, responseKey } = seal(plaintext)
      const res = await sendBox(box)
      const body = (await res.json()) as { sealed?: `0x${string}`; error?: { code: string } }
      if (body.error) return body.error.code
      try {
        await openReceipt(alice, {
          instance,
          txHash: new Uint8Array(32),
          sealed: body.sealed!,
          responseKey,
        })
        return 'accepted'
      } catch (e) {
        return e instanceof PoseRequestError ? e.code : String(e)
      }
    }
    assert.equal(await rejectedCode(encodeSignedTx({ ...tx, signature: forged })), 'BAD_SIGNATURE')
    assert.equal(await rejectedCode(utf8('{"instance":"1"}')), 'MALFORMED')
    const wrongInstance = seal(encodeSignedTx({ ...tx, signature: forged }), instance + 1n)
    assert.equal(
      ((await (await sendBox(wrongInstance.box)).json()) as { error: { code: string } }).error.code,
      'DECRYPTION_FAILED',
    )
    const { box } = seal(encodeSignedTx({ ...tx, signature: forged }))
    box[box.length - 5]! ^= 0x40
    assert.equal(
      ((await (await sendBox(box)).json()) as { error: { code: string } }).error.code,
      'DECRYPTION_FAILED',
    )

    // Replayed nonce: an old nonce with a new tx is refused; the same signed tx resubmitted is idempotent.
    const aliceKey = devnet.userKeys[0]!
    const old = { ...tx, nonce: 0n, data: encodeFunctionDataBytes(bob.account.address, 1n) }
    const oldSig = signDigest(hashTx(alice.domain, old), hexToBytes(aliceKey))
    assert.equal(await rejectedCode(encodeSignedTx({ ...old, signature: oldSig })), 'REPLAYED')

    // The same signed tx resubmitted is answered with the same receipt and executed once.
    const { getNonce } = await import('../../src/client/actions/getNonce.ts')
    const nonce = await getNonce(alice, { instance })
    const fresh = { ...tx, nonce, data: encodeFunctionDataBytes(bob.account.address, 4n) }
    const freshSig = signDigest(hashTx(alice.domain, fresh), hexToBytes(aliceKey))
    const { box: freshBox, responseKey } = seal(encodeSignedTx({ ...fresh, signature: freshSig }))
    const answers = []
    for (let i = 0; i < 2; i++) {
      const body = (await (await sendBox(freshBox)).json()) as { sealed: `0x${string}` }
      answers.push(
        await openReceipt(alice, {
          instance,
          txHash: hashTx(alice.domain, fresh),
          sealed: body.sealed,
          responseKey,
        }),
      )
    }
    assert.equal(answers[0]!.status, 'success')
    assert.deepEqual(answers[1], answers[0])
    expected.set(alice.account.address, expected.get(alice.account.address)! - 4n)
    expected.set(bob.account.address, expected.get(bob.account.address)! + 4n)
    alice.state.nonces.set(instance.toString(), nonce + 1n)

    // After all of it the executor still serves, and the state is intact.
    await transfer(alice, bob, 1n)
    const own = await bob.readContract({
      instance,
      abi: privateTokenAbi,
      functionName: 'balanceOf',
      args: [bob.account.address],
    })
    assert.equal(own, expected.get(bob.account.address))
    await assertDigestsEqual('after bad input')
  })

  test('the README quickstart example runs as written', async () => {
    const { quickstart } = await import('../../examples/quickstart.ts')
    const r = await quickstart(
      devnet.rpcUrl,
      devnet.manager,
      devnet.userKeys[2]!,
      clients[0]!.account.address,
    )
    assert.equal(r.status, 'success')
    assert.equal(r.mine, 990n)
    assert.ok(r.instance > instance)
  })

  test('bad input at the peer boundary is refused and the pool keeps working', async () => {
    const [alice, bob] = clients as [PoseClient, PoseClient]
    const info = await readInstance(alice.publicClient, devnet.manager, instance)
    const watchdogOp = await readOperator(alice.publicClient, devnet.manager, info.operators[1]!)
    const ws = new WebSocket(`${watchdogOp.endpoint.replace('http', 'ws')}/v1/peer`)
    await new Promise((r, j) => {
      ws.once('open', r)
      ws.once('error', j)
    })
    const intruder = generateSecretKey()
    const forgedUpdate = signEnvelope(
      {
        kind: 'update',
        instance,
        from: secretKeyToAddress(intruder),
        to: hexToBytes(info.signers[1]!),
        body: utf8('{"seq":"999"}'),
      },
      intruder,
    )
    // Claims to come from the executor but is signed by the intruder.
    const impersonation = {
      ...envelopeToWire(forgedUpdate),
      from: info.signers[info.executorSlot]!.toLowerCase(),
    }
    const frames = [
      'not json',
      '{}',
      JSON.stringify({ envelope: 42 }),
      JSON.stringify({ envelope: { kind: 'update' } }),
      JSON.stringify({ envelope: envelopeToWire(forgedUpdate) }),
      JSON.stringify({ envelope: impersonation }),
      `{"envelope":${'['.repeat(10000)}${']'.repeat(10000)}}`,
    ]
    for (const f of frames) ws.send(f)
    ws.send(Buffer.from([1, 2, 3]))
    await new Promise((r) => setTimeout(r, 300))
    ws.terminate()
    await transfer(alice, bob, 2n)
    await assertDigestsEqual('after peer garbage')
  })
})

function encodeFunctionDataBytes(to: Address, amount: bigint): Uint8Array {
  return hexToBytes(
    encodeFunctionData({ abi: privateTokenAbi, functionName: 'transfer', args: [to, amount] }),
  )
}
