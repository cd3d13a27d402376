/**
 * A viem account for a private key whose signatures come from libsecp256k1 (the native
 * `secp256k1` addon) instead of viem's pure-JS noble code: the same RFC 6979 signatures, byte
 * for byte, at a fraction of the CPU. Every POSE request carries one EIP-712 signature, so a
 * busy client spends a large share of its time signing; on-chain transactions (deposits,
 * withdrawals, challenges) sign faster too. Where the addon is not installed, `signDigest` falls
 * back to noble and the account behaves exactly like `privateKeyToAccount`.
 */
import {
  type Hex,
  hashMessage,
  hashTypedData,
  keccak256,
  type PrivateKeyAccount,
  parseSignature,
  serializeTransaction,
} from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { bytesToHex, hexToBytes, signDigest } from '../protocol/index.ts'

/** `privateKeyToAccount` with native signing; a drop-in `account` for `createPoseClient`. */
export function privateKeyToPoseAccount(privateKey: Hex): PrivateKeyAccount {
  const base = privateKeyToAccount(privateKey)
  const secretKey = hexToBytes(privateKey, 'privateKey', 32)
  const sign = (hash: Hex): Hex => bytesToHex(signDigest(hexToBytes(hash, 'hash', 32), secretKey))
  return {
    ...base,
    async sign({ hash }) {
      return sign(hash)
    },
    async signMessage({ message }) {
      return sign(hashMessage(message))
    },
    async signTypedData(typedData) {
      return sign(hashTypedData(typedData))
    },
    async signTransaction(transaction, options) {
      const serializer = options?.serializer ?? serializeTransaction
      // As viem signs: blob sidecars are not part of the signed payload.
      const signable =
        transaction.type === 'eip4844' ? { ...transaction, sidecars: false } : transaction
      const signature = parseSignature(sign(keccak256(await serializer(signable))))
      return serializer(transaction, signature)
    },
  } as PrivateKeyAccount
}
