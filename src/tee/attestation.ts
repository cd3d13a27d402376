/**
 * Attestation backends (SPEC §3). The dev backend is INSECURE: a dev authority key, standing in
 * for a hardware vendor, signs the enclave's report hash. It proves nothing about hardware and
 * says so wherever it is used. Real backends (SGX DCAP, TDX, Nitro) implement the same interface.
 */
import { encodeAbiParameters, type Hex } from 'viem'
import { bytesToHex, signDigest } from '../protocol/index.ts'

export interface AttestationBackend {
  readonly kind: string
  readonly insecure: boolean
  /** Produces evidence for the manager's verifier, binding `reportHash` to `measurement`. */
  evidence(p: { reportHash: Uint8Array; measurement: Uint8Array }): Promise<Hex>
}

export const DEV_TEE_WARNING =
  'SIMULATED TEE (dev attestation): enclave isolation and attestation are NOT secure; use only for development.'

export function createDevAttestationBackend(authorityKey: Uint8Array): AttestationBackend {
  return {
    kind: 'dev',
    insecure: true,
    async evidence({ reportHash, measurement }) {
      const signature = signDigest(reportHash, authorityKey)
      return encodeAbiParameters(
        [{ type: 'bytes32' }, { type: 'bytes' }],
        [bytesToHex(measurement), bytesToHex(signature)],
      )
    },
  }
}
