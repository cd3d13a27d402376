/**
 * Enclave identity and sealing (SPEC §3). The signing key (secp256k1) and encryption key
 * (x25519) are generated inside the enclave and leave it only sealed: AES-256-GCM under a key
 * derived from the platform secret and the measurement, so a different enclave build cannot
 * unseal them.
 */

import { z } from 'zod'
import {
  aeadOpen,
  aeadSeal,
  concatBytes,
  decodeJson,
  encodeJson,
  generateSecretKey,
  generateX25519KeyPair,
  hex,
  hkdf,
  ProtocolError,
  secretKeyToAddress,
  unhex,
  utf8,
  x25519PublicKey,
} from '../protocol/index.ts'

export type Identity = {
  signingKey: Uint8Array
  signer: Uint8Array
  encryptionSecretKey: Uint8Array
  encryptionKey: Uint8Array
}

const identitySchema = z.strictObject({
  version: z.literal(1),
  signingKey: z.string(),
  encryptionSecretKey: z.string(),
})

export function createSealer(platformSecret: Uint8Array, measurement: Uint8Array) {
  const sealingKey = hkdf(concatBytes(platformSecret), measurement, 'POSE-SEAL-v1')
  return {
    seal(label: string, data: Uint8Array): Uint8Array {
      return aeadSeal(sealingKey, data, utf8(`POSE-SEAL-v1/${label}`))
    },
    unseal(label: string, blob: Uint8Array): Uint8Array {
      try {
        return aeadOpen(sealingKey, blob, utf8(`POSE-SEAL-v1/${label}`))
      } catch (cause) {
        throw new ProtocolError(
          'DECRYPTION_FAILED',
          `sealed ${label}: cannot unseal (other platform, other measurement, or tampered)`,
          { cause },
        )
      }
    },
  }
}
export type Sealer = ReturnType<typeof createSealer>

export function generateIdentity(): Identity {
  const signingKey = generateSecretKey()
  const enc = generateX25519KeyPair()
  return {
    signingKey,
    signer: secretKeyToAddress(signingKey),
    encryptionSecretKey: enc.secretKey,
    encryptionKey: enc.publicKey,
  }
}

export function sealIdentity(sealer: Sealer, id: Identity): Uint8Array {
  return sealer.seal(
    'identity',
    encodeJson({
      version: 1,
      signingKey: hex(id.signingKey),
      encryptionSecretKey: hex(id.encryptionSecretKey),
    }),
  )
}

export function unsealIdentity(sealer: Sealer, blob: Uint8Array): Identity {
  const w = decodeJson(sealer.unseal('identity', blob), identitySchema, 'identity', 4096)
  const signingKey = unhex(w.signingKey, 'identity.signingKey', 32)
  const encryptionSecretKey = unhex(w.encryptionSecretKey, 'identity.encryptionSecretKey', 32)
  return {
    signingKey,
    signer: secretKeyToAddress(signingKey),
    encryptionSecretKey,
    encryptionKey: x25519PublicKey(encryptionSecretKey),
  }
}
