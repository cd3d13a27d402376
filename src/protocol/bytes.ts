/**
 * Byte and hex helpers for the protocol. Small, dependency-light and strict: every input is
 * asserted, in the manner of noble's `abytes` ("expected 32 bytes, got 31").
 */
import { ProtocolError } from './errors.ts'

export type Hex = `0x${string}`

const HEX_RE = /^0x(?:[0-9a-fA-F]{2})*$/

export function isHex(value: unknown): value is Hex {
  return typeof value === 'string' && HEX_RE.test(value)
}

/*
 * Hex without a Buffer over the input: for a typed array of up to 64 bytes V8 keeps the bytes
 * in its heap, and `bytes.buffer` (which `Buffer.from(buffer, offset, length)` reads) moves them
 * into a backing store of their own: an allocation outside the heap, registered with the
 * garbage collector, that costs more than the conversion (≈ 390 against ≈ 120 ns for a fresh
 * 32-byte hash, bench/README.md). Inputs up to `KEPT_HEX_BYTES` are written as character
 * codes into one buffer kept between calls and read back as one latin1 string.
 */
const HEX_DIGITS = '0123456789abcdef'
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1
/** The two characters of each byte as one 16-bit unit, laid out in memory as they are read. */
const HEX_PAIRS = new Uint16Array(256)
for (let i = 0; i < 256; i++) {
  const hi = HEX_DIGITS.charCodeAt(i >> 4)
  const lo = HEX_DIGITS.charCodeAt(i & 15)
  HEX_PAIRS[i] = LITTLE_ENDIAN ? hi | (lo << 8) : (hi << 8) | lo
}
const HEX_PREFIX_PAIR = LITTLE_ENDIAN ? 0x7830 : 0x3078 // '0x'
const KEPT_HEX_BYTES = 128
const hexChars = Buffer.allocUnsafeSlow(2 + 2 * KEPT_HEX_BYTES)
const hexPairs = new Uint16Array(hexChars.buffer, hexChars.byteOffset, hexChars.length >> 1)

/** Lowercase hex of `bytes`, without a prefix (`0x` prepended when `prefixed`). */
function toHex(bytes: Uint8Array, prefixed: boolean): string {
  const n = bytes.length
  if (n > KEPT_HEX_BYTES) {
    const digits = Buffer.from(bytes.buffer, bytes.byteOffset, n).toString('hex')
    return prefixed ? `0x${digits}` : digits
  }
  let at = 0
  if (prefixed) hexPairs[at++] = HEX_PREFIX_PAIR
  for (let i = 0; i < n; i++) hexPairs[at++] = HEX_PAIRS[bytes[i]!]!
  return hexChars.toString('latin1', 0, 2 * at)
}

export function bytesToHex(bytes: Uint8Array): Hex {
  return toHex(bytes, true) as Hex
}

/** Lowercase hex without the `0x` prefix (map keys, file names). */
export function bytesToUnprefixedHex(bytes: Uint8Array): string {
  return toHex(bytes, false)
}

/** The value of each hex digit's character code below 128; -1 for any other character. */
const HEX_VALUES = new Int8Array(128).fill(-1)
for (let i = 0; i < 16; i++) {
  HEX_VALUES[HEX_DIGITS.charCodeAt(i)] = i
  HEX_VALUES[HEX_DIGITS.toUpperCase().charCodeAt(i)] = i
}

/**
 * Parses 0x-prefixed, even-length hex (either case). `field` names the input in the error.
 * One pass that checks and decodes each pair of digits: no pattern match, no intermediate
 * Buffer and copy.
 */
export function hexToBytes(hex: string, field = 'hex', length?: number): Uint8Array {
  const chars = typeof hex === 'string' ? hex.length : 1
  if ((chars & 1) !== 0 || hex.charCodeAt(0) !== 48 || hex.charCodeAt(1) !== 120)
    throw new ProtocolError('MALFORMED', `${field}: expected 0x-prefixed hex`)
  const bytes = new Uint8Array((chars - 2) >> 1)
  for (let i = 0, j = 2; j < chars; i++, j += 2) {
    const a = hex.charCodeAt(j)
    const b = hex.charCodeAt(j + 1)
    const hi = a < 128 ? HEX_VALUES[a]! : -1
    const lo = b < 128 ? HEX_VALUES[b]! : -1
    if ((hi | lo) < 0) throw new ProtocolError('MALFORMED', `${field}: expected 0x-prefixed hex`)
    bytes[i] = (hi << 4) | lo
  }
  if (length !== undefined && bytes.length !== length) {
    throw new ProtocolError('MALFORMED', `${field}: expected ${length} bytes, got ${bytes.length}`)
  }
  return bytes
}

export function assertBytes(value: unknown, field: string, length?: number): Uint8Array {
  if (!(value instanceof Uint8Array)) {
    throw new ProtocolError('MALFORMED', `${field}: expected Uint8Array, got ${typeof value}`)
  }
  if (length !== undefined && value.length !== length) {
    throw new ProtocolError('MALFORMED', `${field}: expected ${length} bytes, got ${value.length}`)
  }
  return value
}

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  let total = 0
  for (const p of parts) total += p.length
  const out = new Uint8Array(total)
  let offset = 0
  for (const p of parts) {
    out.set(p, offset)
    offset += p.length
  }
  return out
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  let diff = 0
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!
  return diff === 0
}

/** Lexicographic order of byte strings (negative, zero or positive, like `localeCompare`). */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!
  return a.length - b.length
}

const encoder = new TextEncoder()
export const utf8 = (s: string): Uint8Array => encoder.encode(s)

const MAX_U256 = (1n << 256n) - 1n
const MASK_64 = (1n << 64n) - 1n

/** The largest value of a uintN: `bits` 64 and 256 without arithmetic (the usual cases). */
const maxUint = (bits: number): bigint =>
  bits === 256 ? MAX_U256 : bits === 64 ? MASK_64 : (1n << BigInt(bits)) - 1n

/** Writes `value` as a 32-byte big-endian word at `offset` of `view`, whose word is zero. */
export function setUintWord(
  view: DataView,
  offset: number,
  value: bigint,
  field = 'value',
  bits = 256,
): void {
  if (value < 0n || value > maxUint(bits)) {
    throw new ProtocolError('OUT_OF_RANGE', `${field}: ${value} does not fit in uint${bits}`)
  }
  if (value === 0n) return
  if (value <= MASK_64) {
    // Most words are small (nonces, sequence numbers, ids, gas): one 64-bit write.
    view.setBigUint64(offset + 24, value)
    return
  }
  view.setBigUint64(offset, value >> 192n)
  view.setBigUint64(offset + 8, (value >> 128n) & MASK_64)
  view.setBigUint64(offset + 16, (value >> 64n) & MASK_64)
  view.setBigUint64(offset + 24, value & MASK_64)
}

const MASK_32 = 0xffff_ffffn

/** A 32-byte big-endian word, as in the ABI encoding of uintN. */
export function uintToWord(value: bigint, field = 'value', bits = 256): Uint8Array {
  const out = new Uint8Array(32)
  if (bits >= 32 && value >= 0n && value <= MASK_32) {
    // Small words (the EVM's MSTORE of offsets, lengths and flags) without a DataView.
    const n = Number(value)
    out[28] = n >>> 24
    out[29] = (n >>> 16) & 0xff
    out[30] = (n >>> 8) & 0xff
    out[31] = n & 0xff
    return out
  }
  // Through the kept word: a DataView over `out` would move its bytes out of V8's heap.
  out.set(uintToKeptWord(value, field, bits))
  return out
}

/** A word kept for conversions between bigints and 32-byte words (see `toHex`). */
const wordScratch = new Uint8Array(32)
const wordScratchView = new DataView(wordScratch.buffer)

/**
 * `uintToWord` into a word kept between calls, without allocating: valid only until the next
 * conversion in this module. For a caller that copies the word at once (the EVM's MSTORE hands
 * it to `Memory.write`) or cuts a copy out of it.
 */
export function uintToKeptWord(value: bigint, field = 'value', bits = 256): Uint8Array {
  wordScratch.fill(0)
  setUintWord(wordScratchView, 0, value, field, bits)
  return wordScratch
}

/**
 * ABI words written in place into one buffer of a known size: a hash over many words then
 * costs one allocation instead of one per word plus their concatenation.
 */
export class WordWriter {
  readonly bytes: Uint8Array
  private readonly view: DataView
  private at = 0
  private end: number

  /** A writer of a new buffer of `size` bytes, or over `buffer` from its start (see `reset`). */
  constructor(sizeOrBuffer: number | Uint8Array) {
    this.bytes = typeof sizeOrBuffer === 'number' ? new Uint8Array(sizeOrBuffer) : sizeOrBuffer
    this.view = new DataView(this.bytes.buffer, this.bytes.byteOffset, this.bytes.byteLength)
    this.end = this.bytes.length
  }

  /** Starts again at the buffer's start, for `size` bytes, zeroed (`address` relies on it). */
  reset(size: number): this {
    if (size > this.bytes.length)
      throw new ProtocolError('INTERNAL', `word writer: ${size} bytes do not fit`)
    this.bytes.fill(0, 0, size)
    this.at = 0
    this.end = size
    return this
  }

  /** Bytes as they are (a word already encoded, a fixed prefix). */
  raw(b: Uint8Array): this {
    this.bytes.set(b, this.at)
    this.at += b.length
    return this
  }

  /** A 32-byte word (a hash); MALFORMED names `field` when it has another length. */
  word(word: Uint8Array, field = 'word'): this {
    return this.raw(assertBytes(word, field, 32))
  }

  /** A uintN word; OUT_OF_RANGE names `field` when `value` does not fit. */
  uint(value: bigint, field = 'value', bits = 256): this {
    setUintWord(this.view, this.at, value, field, bits)
    this.at += 32
    return this
  }

  /** A 20-byte address as a word. */
  address(address: Uint8Array, field = 'address'): this {
    this.bytes.set(assertBytes(address, field, 20), this.at + 12)
    this.at += 32
    return this
  }

  /**
   * The bytes written, once exactly `size` of them: the buffer itself, or a view of its start
   * for a writer that was `reset` to fewer bytes (valid until it is reset again).
   */
  finish(): Uint8Array {
    if (this.at !== this.end) {
      throw new ProtocolError('INTERNAL', `word writer: ${this.at} of ${this.end} bytes written`)
    }
    return this.end === this.bytes.length ? this.bytes : this.bytes.subarray(0, this.end)
  }
}

/** A big-endian unsigned integer of any length (up to 32 bytes in four 64-bit reads). */
export function wordToUint(word: Uint8Array): bigint {
  if (word.length <= 32) {
    if (word.length === 32) wordScratch.set(word)
    else {
      wordScratch.fill(0)
      wordScratch.set(word, 32 - word.length)
    }
    const v = wordScratchView
    return (
      (v.getBigUint64(0) << 192n) |
      (v.getBigUint64(8) << 128n) |
      (v.getBigUint64(16) << 64n) |
      v.getBigUint64(24)
    )
  }
  let v = 0n
  for (const b of word) v = (v << 8n) | BigInt(b)
  return v
}

/** An address (20 bytes) left-padded to a 32-byte ABI word. */
export function addressToWord(address: Uint8Array): Uint8Array {
  assertBytes(address, 'address', 20)
  const out = new Uint8Array(32)
  out.set(address, 12)
  return out
}

/** Parses a decimal or 0x-hex string as an unsigned integer of at most `bits` bits. */
export function parseUint(value: string, field: string, bits = 256): bigint {
  if (typeof value !== 'string' || !/^(?:0|[1-9][0-9]{0,77}|0x[0-9a-fA-F]{1,64})$/.test(value)) {
    throw new ProtocolError('MALFORMED', `${field}: expected an unsigned integer string`)
  }
  const v = BigInt(value)
  if (v >= 1n << BigInt(bits)) {
    throw new ProtocolError('OUT_OF_RANGE', `${field}: ${value} does not fit in uint${bits}`)
  }
  return v
}

/*
 * Short random strings (nonces, prevRandao, ids) are cut from a 4 KiB buffer that the CSPRNG
 * fills, each byte handed out once and wiped from the buffer: one call into the CSPRNG costs
 * about 5.5 µs here, a cut 0.2 µs, and every transaction draws several nonces.
 */
const RANDOM_POOL_BYTES = 4096
let randomPool = new Uint8Array(0)
let randomPoolOffset = 0

export function randomBytes(length: number): Uint8Array {
  if (length > RANDOM_POOL_BYTES / 8)
    return globalThis.crypto.getRandomValues(new Uint8Array(length))
  if (randomPoolOffset + length > randomPool.length) {
    randomPool = globalThis.crypto.getRandomValues(new Uint8Array(RANDOM_POOL_BYTES))
    randomPoolOffset = 0
  }
  const end = randomPoolOffset + length
  const out = randomPool.slice(randomPoolOffset, end)
  randomPool.fill(0, randomPoolOffset, end)
  randomPoolOffset = end
  return out
}
