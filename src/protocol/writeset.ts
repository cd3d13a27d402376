/**
 * The replicated unit of state change (SPEC §6.3): the accounts, code and storage slots a batch
 * changed. A compact, canonical binary codec: accounts sorted by address, slots by key, no
 * duplicates, no trailing bytes, so `encode(decode(x))` equals `x` for every accepted `x`.
 *
 * Layout (big-endian): version u8 = 1 | accounts u32 | account* | deleted u32 | address*;
 * account = address[20] nonce u64 balance[32] flags u8 (bit 0: code follows)
 *           [codeLength u32 code] slots u32 (key[32] value[32])*.
 */
import { uintToWord, wordToUint } from './bytes.ts'
import { ProtocolError } from './errors.ts'

export type AccountWrite = {
  address: Uint8Array
  nonce: bigint
  balance: bigint
  /** Present only when the code changed. */
  code?: Uint8Array
  /** 32-byte keys and values; an all-zero value deletes the slot. */
  storage: Array<[slot: Uint8Array, value: Uint8Array]>
}

export type WriteSet = { accounts: AccountWrite[]; deleted: Uint8Array[] }

export type WriteSetLimits = { maxBytes?: number; maxAccounts?: number; maxSlots?: number }

const VERSION = 1
/** A write set's bytes besides its accounts' and deleted addresses': version and two counts. */
export const WRITE_SET_FRAME_BYTES = 1 + 4 + 4
const MAX_U64 = (1n << 64n) - 1n
const MAX_U256 = (1n << 256n) - 1n

export class WriteSetDecodeError extends ProtocolError {
  override name = 'WriteSetDecodeError'
  constructor(message: string) {
    super('MALFORMED', `writeSet: ${message}`)
  }
}

function compare(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!
  return a.length - b.length
}

/** Sorts accounts, slots and deleted addresses into canonical order (in place) and returns ws. */
export function canonicalizeWriteSet(ws: WriteSet): WriteSet {
  ws.accounts.sort((x, y) => compare(x.address, y.address))
  for (const a of ws.accounts) a.storage.sort((x, y) => compare(x[0], y[0]))
  ws.deleted.sort(compare)
  return ws
}

export function encodeWriteSet(ws: WriteSet): Uint8Array {
  let size = WRITE_SET_FRAME_BYTES + ws.deleted.length * 20
  for (const a of ws.accounts)
    size += 20 + 8 + 32 + 1 + (a.code ? 4 + a.code.length : 0) + 4 + a.storage.length * 64
  const out = new Uint8Array(size)
  const view = new DataView(out.buffer)
  let o = 0
  out[o++] = VERSION
  view.setUint32(o, ws.accounts.length)
  o += 4
  let prev: Uint8Array | undefined
  for (const a of ws.accounts) {
    if (a.address.length !== 20) throw new WriteSetDecodeError('account address must be 20 bytes')
    if (prev && compare(prev, a.address) >= 0)
      throw new WriteSetDecodeError('accounts not in canonical order')
    prev = a.address
    if (a.nonce < 0n || a.nonce > MAX_U64)
      throw new WriteSetDecodeError(`nonce ${a.nonce} out of range`)
    if (a.balance < 0n || a.balance > MAX_U256)
      throw new WriteSetDecodeError(`balance ${a.balance} out of range`)
    out.set(a.address, o)
    o += 20
    view.setBigUint64(o, a.nonce)
    o += 8
    out.set(uintToWord(a.balance), o)
    o += 32
    out[o++] = a.code ? 1 : 0
    if (a.code) {
      view.setUint32(o, a.code.length)
      o += 4
      out.set(a.code, o)
      o += a.code.length
    }
    view.setUint32(o, a.storage.length)
    o += 4
    let prevSlot: Uint8Array | undefined
    for (const [k, v] of a.storage) {
      if (k.length !== 32 || v.length !== 32)
        throw new WriteSetDecodeError('slot keys and values must be 32 bytes')
      if (prevSlot && compare(prevSlot, k) >= 0)
        throw new WriteSetDecodeError('slots not in canonical order')
      prevSlot = k
      out.set(k, o)
      out.set(v, o + 32)
      o += 64
    }
  }
  view.setUint32(o, ws.deleted.length)
  o += 4
  let prevDel: Uint8Array | undefined
  for (const d of ws.deleted) {
    if (d.length !== 20) throw new WriteSetDecodeError('deleted address must be 20 bytes')
    if (prevDel && compare(prevDel, d) >= 0)
      throw new WriteSetDecodeError('deleted addresses not in canonical order')
    prevDel = d
    out.set(d, o)
    o += 20
  }
  return out
}

export function decodeWriteSet(bytes: Uint8Array, limits: WriteSetLimits = {}): WriteSet {
  const maxBytes = limits.maxBytes ?? 64 * 1024 * 1024
  const maxAccounts = limits.maxAccounts ?? 1_000_000
  const maxSlots = limits.maxSlots ?? 10_000_000
  if (!(bytes instanceof Uint8Array)) throw new WriteSetDecodeError('expected bytes')
  if (bytes.length > maxBytes)
    throw new WriteSetDecodeError(`${bytes.length} bytes exceeds ${maxBytes}`)
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  let o = 0
  const need = (n: number, what: string) => {
    if (o + n > bytes.length)
      throw new WriteSetDecodeError(`truncated at offset ${o} reading ${what}`)
  }
  need(1, 'version')
  if (bytes[o++] !== VERSION) throw new WriteSetDecodeError(`unknown version ${bytes[0]}`)
  need(4, 'account count')
  const count = view.getUint32(o)
  o += 4
  if (count > maxAccounts) throw new WriteSetDecodeError(`${count} accounts exceeds ${maxAccounts}`)
  const accounts: AccountWrite[] = []
  let slots = 0
  let prev: Uint8Array | undefined
  for (let i = 0; i < count; i++) {
    need(20 + 8 + 32 + 1, `account ${i}`)
    const address = bytes.slice(o, o + 20)
    o += 20
    if (prev && compare(prev, address) >= 0)
      throw new WriteSetDecodeError(`account ${i} out of canonical order`)
    prev = address
    const nonce = view.getBigUint64(o)
    o += 8
    const balance = wordToUint(bytes.subarray(o, o + 32))
    o += 32
    const flags = bytes[o++]!
    if (flags > 1) throw new WriteSetDecodeError(`account ${i}: unknown flags ${flags}`)
    const a: AccountWrite = { address, nonce, balance, storage: [] }
    if (flags === 1) {
      need(4, `account ${i} code length`)
      const len = view.getUint32(o)
      o += 4
      need(len, `account ${i} code`)
      a.code = bytes.slice(o, o + len)
      o += len
    }
    need(4, `account ${i} slot count`)
    const n = view.getUint32(o)
    o += 4
    slots += n
    if (slots > maxSlots) throw new WriteSetDecodeError(`more than ${maxSlots} slots`)
    need(n * 64, `account ${i} slots`)
    let prevSlot: Uint8Array | undefined
    for (let j = 0; j < n; j++) {
      const k = bytes.slice(o, o + 32)
      if (prevSlot && compare(prevSlot, k) >= 0)
        throw new WriteSetDecodeError(`account ${i} slot ${j} out of canonical order`)
      prevSlot = k
      a.storage.push([k, bytes.slice(o + 32, o + 64)])
      o += 64
    }
    accounts.push(a)
  }
  need(4, 'deleted count')
  const dn = view.getUint32(o)
  o += 4
  if (dn > maxAccounts)
    throw new WriteSetDecodeError(`${dn} deleted accounts exceeds ${maxAccounts}`)
  need(dn * 20, 'deleted addresses')
  const deleted: Uint8Array[] = []
  let prevDel: Uint8Array | undefined
  for (let i = 0; i < dn; i++) {
    const d = bytes.slice(o, o + 20)
    if (prevDel && compare(prevDel, d) >= 0)
      throw new WriteSetDecodeError(`deleted ${i} out of canonical order`)
    prevDel = d
    deleted.push(d)
    o += 20
  }
  if (o !== bytes.length) throw new WriteSetDecodeError(`${bytes.length - o} trailing bytes`)
  return { accounts, deleted }
}
