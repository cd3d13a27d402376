/** keccak256 and the ABI-shaped hashes shared with the manager contract (SPEC §3, §4). */
import { keccak_256 } from '@noble/hashes/sha3.js'
import { createKeccak, type IHasher } from 'hash-wasm'
import { addressToWord, assertBytes, concatBytes, uintToWord, utf8, WordWriter } from './bytes.ts'

/**
 * keccak256 in WebAssembly (hash-wasm): 7–10 × faster than the JS implementation on these
 * machines (0.65 vs 4.5 µs for 64 bytes, 19 vs 184 µs for 8 KiB). Where WebAssembly is not
 * available the JS one (@noble/hashes) is used; both agree (test/unit/hash.test.ts).
 */
const wasmKeccak: IHasher | undefined = await createKeccak(256).catch(() => undefined)

export function keccak256(data: Uint8Array): Uint8Array {
  if (!wasmKeccak) return keccak_256(data)
  wasmKeccak.init()
  wasmKeccak.update(data)
  return wasmKeccak.digest('binary')
}

/** The JS implementation, kept as the reference the fast one is checked against. */
export const keccak256Js: (data: Uint8Array) => Uint8Array = keccak_256

/** ABI encoding of a dynamic `string` placed as the first argument of `abi.encode(...)`. */
function encodeLeadingString(
  s: string,
  staticWords: number,
): { head: Uint8Array; tail: Uint8Array } {
  const bytes = utf8(s)
  const padded = new Uint8Array(Math.ceil(bytes.length / 32) * 32)
  padded.set(bytes)
  return {
    head: uintToWord(BigInt(32 * (staticWords + 1))),
    tail: concatBytes(uintToWord(BigInt(bytes.length)), padded),
  }
}

/**
 * Each tag's encoding by word count; tags are the protocol's constants, so this stays small.
 * Found by the tag itself (a literal, whose hash V8 keeps) and then the count, without building
 * a key string per hash.
 */
const tagEncodings = new Map<string, Map<number, { head: Uint8Array; tail: Uint8Array }>>()
let tagEncodingCount = 0
const MAX_TAG_ENCODINGS = 256

function tagEncoding(tag: string, count: number): { head: Uint8Array; tail: Uint8Array } {
  let byCount = tagEncodings.get(tag)
  let enc = byCount?.get(count)
  if (!enc) {
    enc = encodeLeadingString(tag, count)
    if (tagEncodingCount < MAX_TAG_ENCODINGS) {
      if (!byCount) {
        byCount = new Map()
        tagEncodings.set(tag, byCount)
      }
      byCount.set(count, enc)
      tagEncodingCount++
    }
  }
  return enc
}

/** `keccak256(abi.encode(tag, ...words))` for a string tag followed by static 32-byte words. */
export function hashTagged(tag: string, words: Uint8Array[]): Uint8Array {
  let size = 0
  for (const word of words) size += word.length
  return hashTaggedWords(tag, words.length, size, (w) => {
    for (const word of words) w.raw(word)
  })
}

/**
 * `hashTagged` with its `count` words written in place by `write` (`WordWriter.uint`,
 * `.address`, `.word`) instead of passed as one array each.
 */
export function hashTaggedWith(
  tag: string,
  count: number,
  write: (w: WordWriter) => void,
): Uint8Array {
  return hashTaggedWords(tag, count, 32 * count, write)
}

/**
 * One writer over a buffer kept between calls: a typed array above 64 bytes gets a backing store
 * of its own (1–3.5 µs on these machines, more than the hash), and most tagged hashes are a few
 * hundred bytes. A hash computed inside another's `write` gets a buffer of its own.
 */
const SCRATCH_BYTES = 2048
const scratch = new WordWriter(SCRATCH_BYTES)
let scratchInUse = false

/**
 * keccak256 of `size` bytes that `write` fills (`WordWriter.raw`, `.word`, `.uint`, `.address`),
 * written into the kept buffer when it is free and large enough.
 */
export function keccakWritten(size: number, write: (w: WordWriter) => void): Uint8Array {
  if (scratchInUse || size > SCRATCH_BYTES) {
    const w = new WordWriter(size)
    write(w)
    return keccak256(w.finish())
  }
  scratchInUse = true
  try {
    write(scratch.reset(size))
    return keccak256(scratch.finish())
  } finally {
    scratchInUse = false
  }
}

/** The tag's encoding around `size` bytes of `count` words that `write` fills, hashed. */
function hashTaggedWords(
  tag: string,
  count: number,
  size: number,
  write: (w: WordWriter) => void,
): Uint8Array {
  const { head, tail } = tagEncoding(tag, count)
  return keccakWritten(head.length + size + tail.length, (w) => {
    write(w.raw(head))
    w.raw(tail)
  })
}

/**
 * Attestation report hash bound by attestation evidence (SPEC §3):
 * `keccak256(abi.encode("POSE-ATTEST-v1", chainId, manager, measurement, signer, encryptionKey, operator))`.
 */
export function attestationReportHash(p: {
  chainId: bigint
  manager: Uint8Array
  measurement: Uint8Array
  signer: Uint8Array
  encryptionKey: Uint8Array
  operator: Uint8Array
}): Uint8Array {
  return hashTagged('POSE-ATTEST-v1', [
    uintToWord(p.chainId),
    addressToWord(p.manager),
    assertBytes(p.measurement, 'measurement', 32),
    addressToWord(p.signer),
    assertBytes(p.encryptionKey, 'encryptionKey', 32),
    addressToWord(p.operator),
  ])
}

/** The digest the executor enclave signs to activate an instance (SPEC §4). */
export function activationDigest(p: {
  chainId: bigint
  manager: Uint8Array
  instance: bigint
  contractEncryptionKey: Uint8Array
  genesisDigest: Uint8Array
  ackedMask: bigint
  eventIndex: bigint
  eventHash: Uint8Array
}): Uint8Array {
  return hashTagged('POSE-ACTIVATE-v1', [
    uintToWord(p.chainId),
    addressToWord(p.manager),
    uintToWord(p.instance),
    assertBytes(p.contractEncryptionKey, 'contractEncryptionKey', 32),
    assertBytes(p.genesisDigest, 'genesisDigest', 32),
    uintToWord(p.ackedMask),
    uintToWord(p.eventIndex, 'eventIndex', 64),
    assertBytes(p.eventHash, 'eventHash', 32),
  ])
}

/** One step of the per-instance running event hash (SPEC §4). */
export function nextEventHash(p: {
  prevHash: Uint8Array
  instance: bigint
  index: bigint
  kind: number
  data: Uint8Array
}): Uint8Array {
  return keccak256(
    concatBytes(
      assertBytes(p.prevHash, 'prevHash', 32),
      uintToWord(p.instance),
      uintToWord(p.index, 'index', 64),
      uintToWord(BigInt(p.kind), 'kind', 8),
      keccak256(p.data),
    ),
  )
}
