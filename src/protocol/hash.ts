/** keccak256 and the ABI-shaped hashes shared with the manager contract (SPEC §3, §4). */
import { keccak_256 } from '@noble/hashes/sha3.js'
import { createKeccak, type IHasher } from 'hash-wasm'
import {
  addressToWord,
  assertBytes,
  concatBytes,
  equalBytes,
  uintToWord,
  utf8,
  WordWriter,
} from './bytes.ts'

/**
 * hash-wasm's keccak hasher, and its module called directly where that works: the module's
 * `Hash_Calculate` hashes what its buffer holds in one call, where the hasher's `init`, `update`
 * and `digest` make three and check their arguments (0.60 against 0.74 µs for 32 or 64 bytes on
 * these machines). The package does not hand out its module's instance, so it is taken from
 * `WebAssembly.instantiate` while `createKeccak` runs, and used only if it exports what is
 * called here and its hashes equal the JS implementation's around the rate (136 bytes).
 */
async function keccakModule(): Promise<KeccakModule> {
  const wasm = (globalThis as unknown as { WebAssembly?: Wasm }).WebAssembly
  if (!wasm) return { hasher: await createKeccak(256), direct: undefined }
  const instantiate = wasm.instantiate
  const seen: WasmInstance[] = []
  wasm.instantiate = (...args) =>
    instantiate.apply(wasm, args).then((r) => {
      seen.push(r instanceof wasm.Instance ? r : (r as { instance: WasmInstance }).instance)
      return r
    })
  let hasher: IHasher
  try {
    hasher = await createKeccak(256)
  } finally {
    wasm.instantiate = instantiate
  }
  for (const instance of seen) {
    try {
      const direct = directKeccak(wasm, instance)
      if (direct && DIRECT_CHECKS.every((n) => sameHash(direct, n))) return { hasher, direct }
    } catch {
      // Not the module looked for: the hasher is used as it is.
    }
  }
  return { hasher, direct: undefined }
}

/** The hasher, and the module's direct call when it passed the check. */
type KeccakModule = { hasher: IHasher; direct: ((data: Uint8Array) => Uint8Array) | undefined }

/** The parts of the WebAssembly API used here (not in the project's type libraries). */
type WasmInstance = { exports: Record<string, unknown> }
type WasmMemory = { buffer: ArrayBuffer }
type Wasm = {
  instantiate: (...args: unknown[]) => Promise<unknown>
  Instance: abstract new (...args: never[]) => WasmInstance
  Memory: abstract new (...args: never[]) => WasmMemory
}

/** The most bytes the module's buffer takes in one call (hash-wasm's `MAX_HEAP`). */
const DIRECT_MAX_BYTES = 16 * 1024
/** Input lengths a module is checked at: empty, one byte, around one and two blocks. */
const DIRECT_CHECKS = [0, 1, 32, 135, 136, 137, 271, 272, 273, 1000]

function directKeccak(
  wasm: Wasm,
  instance: WasmInstance,
): ((data: Uint8Array) => Uint8Array) | undefined {
  const { memory, Hash_GetBuffer, Hash_Calculate } = instance.exports
  if (
    !(memory instanceof wasm.Memory) ||
    typeof Hash_GetBuffer !== 'function' ||
    typeof Hash_Calculate !== 'function'
  )
    return undefined
  const at = () => new Uint8Array(memory.buffer, Hash_GetBuffer(), DIRECT_MAX_BYTES)
  let buffer = at()
  return (data) => {
    // A grown memory detaches the view (the keccak module never grows its memory).
    if (buffer.byteLength === 0) buffer = at()
    buffer.set(data)
    Hash_Calculate(data.length, 256, 0x01)
    return buffer.slice(0, 32)
  }
}

function sameHash(f: (data: Uint8Array) => Uint8Array, length: number): boolean {
  const data = new Uint8Array(length)
  for (let i = 0; i < length; i++) data[i] = (i * 131 + 7) & 0xff
  return equalBytes(f(data), keccak_256(data))
}

/**
 * keccak256 in WebAssembly (hash-wasm): 7–10 × faster than the JS implementation on these
 * machines (0.65 vs 4.5 µs for 64 bytes, 19 vs 184 µs for 8 KiB). Where WebAssembly is not
 * available the JS one (@noble/hashes) is used; both agree (test/unit/hash.test.ts).
 */
const wasmKeccak: KeccakModule | undefined = await keccakModule().catch(() => undefined)

/** Which implementation `keccak256` runs: the module called directly, the hasher, or JS. */
export function keccakImplementation(): 'wasm-direct' | 'wasm' | 'js' {
  return !wasmKeccak ? 'js' : wasmKeccak.direct ? 'wasm-direct' : 'wasm'
}

export function keccak256(data: Uint8Array): Uint8Array {
  if (!wasmKeccak) return keccak_256(data)
  if (wasmKeccak.direct && data.length <= DIRECT_MAX_BYTES) return wasmKeccak.direct(data)
  const { hasher } = wasmKeccak
  hasher.init()
  hasher.update(data)
  return hasher.digest('binary')
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
