/**
 * secp256k1 signatures over raw 32-byte digests, in Ethereum's `r || s || v` (v = 27/28) form,
 * checked on-chain with `ecrecover`. Signing and recovery sit on every transaction's critical
 * path, so both use the native `secp256k1` addon (libsecp256k1, RFC 6979 nonces, low s) when
 * it is installed and noble otherwise; a unit test proves both give identical signatures and
 * signers.
 */
import { createRequire } from 'node:module'
import { secp256k1 } from '@noble/curves/secp256k1.js'
import { assertBytes } from './bytes.ts'
import { ProtocolError } from './errors.ts'
import { keccak256 } from './hash.ts'

type NativeSecp = {
  ecdsaRecover(sig: Uint8Array, recid: number, msg32: Uint8Array, compressed?: boolean): Uint8Array
  ecdsaSign(msg32: Uint8Array, seckey: Uint8Array): { signature: Uint8Array; recid: number }
}

function loadNative(): NativeSecp | undefined {
  if (process.env.POSE_SECP256K1 === 'noble') return undefined
  try {
    const require = createRequire(import.meta.url)
    return require('secp256k1/bindings') as NativeSecp
  } catch {
    return undefined
  }
}

const native = loadNative()

/** Which implementation `recoverAddress` uses: `native` or `noble`. */
export const secp256k1Backend: 'native' | 'noble' = native ? 'native' : 'noble'

const HALF_N = secp256k1.Point.CURVE().n >> 1n

export function generateSecretKey(): Uint8Array {
  return secp256k1.utils.randomSecretKey()
}

export function publicKeyToAddress(uncompressed: Uint8Array): Uint8Array {
  return keccak256(uncompressed.subarray(1)).subarray(12)
}

export function secretKeyToAddress(secretKey: Uint8Array): Uint8Array {
  return publicKeyToAddress(secp256k1.getPublicKey(assertBytes(secretKey, 'secretKey', 32), false))
}

/** Signs a 32-byte digest; returns 65 bytes `r || s || v` with v in {27, 28} and low s. */
export function signDigest(
  digest: Uint8Array,
  secretKey: Uint8Array,
  backend: 'native' | 'noble' = secp256k1Backend,
): Uint8Array {
  assertBytes(digest, 'digest', 32)
  const out = new Uint8Array(65)
  if (backend === 'native' && native) {
    const { signature, recid } = native.ecdsaSign(digest, assertBytes(secretKey, 'secretKey', 32))
    out.set(signature, 0)
    out[64] = recid + 27
    return out
  }
  const rec = secp256k1.sign(digest, secretKey, { prehash: false, format: 'recovered' })
  out.set(rec.subarray(1, 65), 0)
  out[64] = rec[0]! + 27
  return out
}

function parseSignature(signature: Uint8Array): { compact: Uint8Array; recovery: number } {
  if (!(signature instanceof Uint8Array) || signature.length !== 65) {
    throw new ProtocolError('BAD_SIGNATURE', 'signature: expected 65 bytes r || s || v')
  }
  const v = signature[64]!
  const recovery = v >= 27 ? v - 27 : v
  if (recovery !== 0 && recovery !== 1) {
    throw new ProtocolError('BAD_SIGNATURE', `signature: invalid v ${v}`)
  }
  let s = 0n
  for (const b of signature.subarray(32, 64)) s = (s << 8n) | BigInt(b)
  // Same rule as OpenZeppelin's ECDSA.recover: high-s signatures are malleable copies.
  if (s > HALF_N || s === 0n) throw new ProtocolError('BAD_SIGNATURE', 'signature: s out of range')
  return { compact: signature.subarray(0, 64), recovery }
}

function recoverWithNoble(digest: Uint8Array, compact: Uint8Array, recovery: number): Uint8Array {
  const rec = new Uint8Array(65)
  rec[0] = recovery
  rec.set(compact, 1)
  const compressed = secp256k1.recoverPublicKey(rec, digest, { prehash: false })
  return secp256k1.Point.fromBytes(compressed).toBytes(false)
}

/** Recovers the signer address of a digest; throws BAD_SIGNATURE when none can be recovered. */
export function recoverAddress(
  digest: Uint8Array,
  signature: Uint8Array,
  backend: 'native' | 'noble' = secp256k1Backend,
): Uint8Array {
  assertBytes(digest, 'digest', 32)
  const { compact, recovery } = parseSignature(signature)
  try {
    const pub =
      backend === 'native' && native
        ? native.ecdsaRecover(compact, recovery, digest, false)
        : recoverWithNoble(digest, compact, recovery)
    return publicKeyToAddress(pub)
  } catch (cause) {
    throw new ProtocolError('BAD_SIGNATURE', 'signature: no public key can be recovered', { cause })
  }
}
