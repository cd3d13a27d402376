/**
 * Writes test/vectors/hashes.json: fixed inputs and the expected hashes, computed with viem
 * (an ABI and EIP-712 implementation independent of ours). Both the Foundry test
 * contracts/test/Vectors.t.sol and test/unit/vectors.test.ts check against this file.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { encodeAbiParameters, hashTypedData, keccak256 } from 'viem'
import { poseTypes } from '../src/protocol/typedData.ts'

const chainId = 31337n
const manager = '0x5FbDB2315678afecb367f032d93F642f64180aa3'
const domain = { name: 'POSE', version: '1', chainId, verifyingContract: manager } as const
const attest = {
  measurement: '0x1111111111111111111111111111111111111111111111111111111111111111',
  signer: '0x2222222222222222222222222222222222222222',
  encryptionKey: '0x3333333333333333333333333333333333333333333333333333333333333333',
  operator: '0x4444444444444444444444444444444444444444',
} as const
const activation = {
  instance: 7n,
  contractEncryptionKey: '0x5555555555555555555555555555555555555555555555555555555555555555',
  genesisDigest: '0x6666666666666666666666666666666666666666666666666666666666666666',
  ackedMask: 5n,
  eventIndex: 3n,
  eventHash: '0x7777777777777777777777777777777777777777777777777777777777777777',
} as const
const step = {
  prevHash: '0x8888888888888888888888888888888888888888888888888888888888888888',
  instance: 7n,
  index: 4n,
  kind: 2,
  data: '0xdeadbeef',
} as const
const tx = {
  instance: 7n,
  from: '0x9999999999999999999999999999999999999999',
  nonce: 42n,
  to: '0x000000000000000000000000000000000000c0de',
  value: 1000000000000000000n,
  data: '0xa9059cbb',
  gasLimit: 1000000n,
} as const
const view = {
  instance: 7n,
  from: tx.from,
  to: tx.to,
  data: '0x70a08231',
  expiry: 1700000000n,
} as const

const out = {
  chainId: chainId.toString(),
  manager,
  attestation: {
    ...attest,
    expected: keccak256(
      encodeAbiParameters(
        [
          { type: 'string' },
          { type: 'uint256' },
          { type: 'address' },
          { type: 'bytes32' },
          { type: 'address' },
          { type: 'bytes32' },
          { type: 'address' },
        ],
        [
          'POSE-ATTEST-v1',
          chainId,
          manager,
          attest.measurement,
          attest.signer,
          attest.encryptionKey,
          attest.operator,
        ],
      ),
    ),
  },
  activation: {
    ...activation,
    instance: '7',
    ackedMask: '5',
    eventIndex: '3',
    expected: keccak256(
      encodeAbiParameters(
        [
          { type: 'string' },
          { type: 'uint256' },
          { type: 'address' },
          { type: 'uint256' },
          { type: 'bytes32' },
          { type: 'bytes32' },
          { type: 'uint256' },
          { type: 'uint64' },
          { type: 'bytes32' },
        ],
        [
          'POSE-ACTIVATE-v1',
          chainId,
          manager,
          activation.instance,
          activation.contractEncryptionKey,
          activation.genesisDigest,
          activation.ackedMask,
          activation.eventIndex,
          activation.eventHash,
        ],
      ),
    ),
  },
  eventHashStep: {
    ...step,
    instance: '7',
    index: '4',
    expected: keccak256(
      encodeAbiParameters(
        [
          { type: 'bytes32' },
          { type: 'uint256' },
          { type: 'uint64' },
          { type: 'uint8' },
          { type: 'bytes32' },
        ],
        [step.prevHash, step.instance, step.index, step.kind, keccak256(step.data)],
      ),
    ),
  },
  tx: {
    ...tx,
    instance: '7',
    nonce: '42',
    value: tx.value.toString(),
    gasLimit: '1000000',
    expected: hashTypedData({ domain, types: poseTypes, primaryType: 'Tx', message: tx }),
  },
  view: {
    ...view,
    instance: '7',
    expiry: '1700000000',
    expected: hashTypedData({ domain, types: poseTypes, primaryType: 'View', message: view }),
  },
}
writeFileSync(
  join(import.meta.dirname, '..', 'test', 'vectors', 'hashes.json'),
  `${JSON.stringify(out, null, 2)}\n`,
)
console.log(
  JSON.stringify(
    {
      attestation: out.attestation.expected,
      activation: out.activation.expected,
      step: out.eventHashStep.expected,
      tx: out.tx.expected,
      view: out.view.expected,
    },
    null,
    2,
  ),
)
