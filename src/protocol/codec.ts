/**
 * JSON codecs for everything that crosses a boundary (client ↔ enclave, enclave ↔ enclave).
 * Bytes travel as 0x-hex and integers as decimal strings; every decoder checks size first, then
 * shape (zod, strict objects: unknown fields are rejected), then ranges, and throws a
 * ProtocolError naming the field.
 */
import { z } from 'zod'
import { bytesToHex, type Hex, hexToBytes, parseUint, utf8 } from './bytes.ts'
import { ProtocolError } from './errors.ts'

const HEX = /^0x(?:[0-9a-fA-F]{2})*$/
export const hexSchema = z.string().regex(HEX, 'expected 0x-prefixed even-length hex')
export const fixedHex = (bytes: number) =>
  z.string().regex(new RegExp(`^0x[0-9a-fA-F]{${bytes * 2}}$`), `expected ${bytes} bytes of hex`)
/** A decimal unsigned integer of at most 78 digits, without leading zeros. */
export const DECIMAL_UINT = /^(?:0|[1-9][0-9]{0,77})$/
export const uintSchema = z.string().regex(DECIMAL_UINT, 'expected a decimal integer')
export const addressSchema = fixedHex(20)
export const bytes32Schema = fixedHex(32)
export const signatureSchema = fixedHex(65)

const UTF8 = new TextDecoder('utf-8', { fatal: true })

/** Parses UTF-8 JSON of at most `maxBytes` and validates it against `schema`. */
export function decodeJson<T>(
  bytes: Uint8Array,
  schema: z.ZodType<T>,
  what: string,
  maxBytes: number,
): T {
  if (!(bytes instanceof Uint8Array))
    throw new ProtocolError('MALFORMED', `${what}: expected bytes`)
  if (bytes.length > maxBytes) {
    throw new ProtocolError(
      'OVERSIZED',
      `${what}: ${bytes.length} bytes exceeds the limit of ${maxBytes}`,
    )
  }
  let text: string
  let parsed: unknown
  try {
    text = UTF8.decode(bytes)
    parsed = JSON.parse(text)
  } catch {
    throw new ProtocolError('MALFORMED', `${what}: not valid UTF-8 JSON`)
  }
  if (nestingDepth(text) > MAX_JSON_DEPTH) {
    throw new ProtocolError(
      'MALFORMED',
      `${what}: JSON nested deeper than ${MAX_JSON_DEPTH} levels`,
    )
  }
  return validate(parsed, schema, what)
}

/** No message of the protocol nests deeper; deeper input is hostile (stack exhaustion). */
export const MAX_JSON_DEPTH = 16

/** Bracket depth of JSON text, counted without parsing it (strings skipped). */
export function nestingDepth(text: string): number {
  let depth = 0
  let max = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 0x5c) i++
      else if (c === 0x22) inString = false
    } else if (c === 0x22) inString = true
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > max) max = depth
    } else if (c === 0x7d || c === 0x5d) depth--
  }
  return max
}

export function validate<T>(value: unknown, schema: z.ZodType<T>, what: string): T {
  let r: ReturnType<typeof schema.safeParse>
  try {
    r = schema.safeParse(value)
  } catch {
    throw new ProtocolError('MALFORMED', `${what}: input too deeply nested or cyclic`)
  }
  if (!r.success) {
    const issue = r.error.issues[0]
    const path = issue?.path.length ? issue.path.join('.') : '(root)'
    throw new ProtocolError('MALFORMED', `${what}.${path}: ${issue?.message ?? 'invalid'}`)
  }
  return r.data
}

export function encodeJson(value: unknown): Uint8Array {
  return utf8(JSON.stringify(value))
}

export const hex = bytesToHex
export const unhex = (h: string, field: string, length?: number) => hexToBytes(h, field, length)
export const uint = (s: string, field: string, bits = 256) => parseUint(s, field, bits)
export const dec = (v: bigint): string => v.toString(10)
export type { Hex }
