/**
 * Known-answer vectors shared with Solidity (contracts/test/Vectors.t.sol): the JSON was made
 * with viem, and our own TypeScript implementation must reproduce every value.
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import {
  activationDigest,
  attestationReportHash,
  bytesToHex,
  hashTx,
  hashViewCall,
  hexToBytes,
  nextEventHash,
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
