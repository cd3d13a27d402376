/**
 * Known-answer vectors shared with Solidity (contracts/test/Vectors.t.sol): the JSON was made
 * with viem, and our own TypeScript implementation must reproduce every value.
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import * as viem from 'viem'
import {
  activationDigest,
  attestationReportHash,
  bytesToHex,
  hashTx,
  hashViewCall,
  hexToBytes,
  nextEventHash,
  ProtocolError,
  receiptDigest,
  receiptDigestTagged,
} from '../../src/protocol/index.ts'

const v = JSON.parse(
  readFileSync(join(import.meta.dirname, '..', 'vectors', 'hashes.json'), 'utf8'),
)
const b = (h: string) => hexToBytes(h)
const chainId = BigInt(v.chainId)
const manager = b(v.manager)

test('attestation report hash', () => {
  const a = v.attestation
  assert.equal(
    bytesToHex(
      attestationReportHash({
        chainId,
        manager,
        measurement: b(a.measurement),
        signer: b(a.signer),
        encryptionKey: b(a.encryptionKey),
        operator: b(a.operator),
      }),
    ),
    a.expected,
  )
})

test('activation digest', () => {
  const a = v.activation
  const h = activationDigest({
    chainId,
    manager,
    instance: BigInt(a.instance),
    contractEncryptionKey: b(a.contractEncryptionKey),
    genesisDigest: b(a.genesisDigest),
    ackedMask: BigInt(a.ackedMask),
    eventIndex: BigInt(a.eventIndex),
    eventHash: b(a.eventHash),
  })
  assert.equal(bytesToHex(h), a.expected)
})

test('running event hash step', () => {
  const s = v.eventHashStep
  assert.equal(
    bytesToHex(
      nextEventHash({
        prevHash: b(s.prevHash),
        instance: BigInt(s.instance),
        index: BigInt(s.index),
        kind: s.kind,
        data: b(s.data),
      }),
    ),
    s.expected,
  )
})

test('EIP-712 Tx and View digests', () => {
  const t = v.tx
  const tx = {
    instance: BigInt(t.instance),
    from: b(t.from),
    nonce: BigInt(t.nonce),
    to: b(t.to),
    value: BigInt(t.value),
    data: b(t.data),
    gasLimit: BigInt(t.gasLimit),
  }
  assert.equal(bytesToHex(hashTx({ chainId, manager }, tx)), t.expected)
  const w = v.view
  const view = {
    instance: BigInt(w.instance),
    from: b(w.from),
    to: b(w.to),
    data: b(w.data),
    expiry: BigInt(w.expiry),
  }
  assert.equal(bytesToHex(hashViewCall({ chainId, manager }, view)), w.expected)
})

test('receipt digests equal their preimages built with viem', () => {
  // Built independently of src/protocol: each word with viem's encoders, then
  // keccak256(abi.encode("POSE-RECEIPT-v1", ...words)) as decision 0015 defines the digest of
  // versions 1 to 3, and the one-pass preimage of decision 0017.
  const logs = [
    { address: b(`0x${'11'.repeat(20)}`), topics: [b(`0x${'a1'.repeat(32)}`)], data: b('0x') },
    {
      address: b(`0x${'22'.repeat(20)}`),
      topics: [b(`0x${'b1'.repeat(32)}`), b(`0x${'b2'.repeat(32)}`), b(`0x${'b3'.repeat(32)}`)],
      data: b(`0x${'c4'.repeat(70)}`),
    },
  ]
  const r = {
    instance: (1n << 200n) + 7n,
    txHash: b(`0x${'5e'.repeat(32)}`),
    from: b(`0x${'33'.repeat(20)}`),
    nonce: (1n << 64n) - 1n,
    seq: 42n,
    status: 'revert' as const,
    gasUsed: (1n << 70n) + 3n,
    returnData: b(`0x${'0d'.repeat(36)}`),
    logs,
    executor: b(`0x${'44'.repeat(20)}`),
  }
  const word = (x: bigint) => viem.numberToHex(x, { size: 32 })
  const addr = (a: Uint8Array) => viem.padHex(viem.bytesToHex(a), { size: 32 })
  const logsHash = viem.keccak256(
    viem.concatHex(
      logs.flatMap((l) => [
        addr(l.address),
        word(BigInt(l.topics.length)),
        ...l.topics.map((t) => viem.bytesToHex(t)),
        viem.keccak256(l.data),
      ]),
    ),
  )
  const words = [
    word(chainId),
    addr(manager),
    word(r.instance),
    viem.bytesToHex(r.txHash),
    addr(r.from),
    word(r.nonce),
    word(r.seq),
    word(1n),
    word(r.gasUsed),
    viem.keccak256(r.returnData),
    logsHash,
    addr(r.executor),
  ]
  const expected = viem.keccak256(
    viem.encodeAbiParameters(
      [{ type: 'string' }, ...words.map(() => ({ type: 'bytes32' }))],
      ['POSE-RECEIPT-v1', ...words],
    ),
  )
  assert.equal(bytesToHex(receiptDigestTagged(r, { chainId, manager })), expected)
  // The one-pass digest: gasUsed is a u64 there, as in the binary result (the tagged digest
  // took a word), so the reference uses one that fits.
  const fits = { ...r, gasUsed: (1n << 64n) - 3n }
  const u = (x: bigint | number, size: number) => viem.numberToHex(x, { size })
  const hexOf = (a: Uint8Array) => viem.bytesToHex(a)
  const onePass = (x: typeof fits) =>
    viem.keccak256(
      viem.concatHex([
        '0x02',
        u(chainId, 32),
        hexOf(manager),
        u(x.instance, 32),
        u(x.seq, 8),
        hexOf(x.executor),
        hexOf(x.txHash),
        hexOf(x.from),
        u(x.nonce, 8),
        u(1, 1),
        u(x.gasUsed, 8),
        u(x.returnData.length, 4),
        hexOf(x.returnData),
        u(x.logs.length, 4),
        ...x.logs.flatMap((l) => [
          hexOf(l.address),
          u(l.topics.length, 1),
          ...l.topics.map(hexOf),
          u(l.data.length, 4),
          hexOf(l.data),
        ]),
      ]),
    )
  const digest = (x: typeof fits) => bytesToHex(receiptDigest(x, { chainId, manager }))
  assert.equal(digest(fits), onePass(fits))
  // Past the kept writer's 1 KiB: the same preimage in a writer of its own.
  const long = { ...fits, returnData: new Uint8Array(3000).fill(0xab) }
  assert.equal(digest(long), onePass(long))
  // The kept writer is clean for the next digest: small numbers after large ones.
  const small = { ...fits, instance: 5n, seq: 1n, nonce: 0n, gasUsed: 21_000n, logs: [] }
  assert.equal(digest(small), onePass(small))
  assert.equal(digest(fits), onePass(fits))
  const refused = (code: string, field: RegExp) => (e: unknown) =>
    e instanceof ProtocolError && e.code === code && field.test(e.message)
  assert.throws(() => receiptDigest(r, { chainId, manager }), refused('MALFORMED', /gasUsed/))
  assert.throws(
    () => receiptDigestTagged({ ...r, nonce: 1n << 64n }, { chainId, manager }),
    refused('OUT_OF_RANGE', /nonce/),
  )
  for (const hash of [receiptDigest, receiptDigestTagged])
    assert.throws(
      () => hash({ ...fits, txHash: fits.txHash.subarray(1) }, { chainId, manager }),
      refused('MALFORMED', /txHash/),
      hash.name,
    )
})
