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

test('receipt digest equals abi.encode of its words built with viem', () => {
  // Built independently of src/protocol: each word with viem's encoders, then
  // keccak256(abi.encode("POSE-RECEIPT-v1", ...words)) as decision 0015 and SPEC §4 define it.
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
  assert.equal(bytesToHex(receiptDigest(r, { chainId, manager })), expected)
  assert.throws(
    () => receiptDigest({ ...r, nonce: 1n << 64n }, { chainId, manager }),
    (e: unknown) =>
      e instanceof ProtocolError && e.code === 'OUT_OF_RANGE' && /nonce/.test(e.message),
  )
  assert.throws(
    () => receiptDigest({ ...r, txHash: r.txHash.subarray(1) }, { chainId, manager }),
    (e: unknown) =>
      e instanceof ProtocolError && e.code === 'MALFORMED' && /txHash/.test(e.message),
  )
})
