/**
 * An in-memory EVM state manager with an undo log (SPEC §5). Checkpoints record the journal
 * length; revert replays undo entries back to it, so a checkpoint costs O(1) whatever the state
 * size (the stock SimpleStateManager copies its maps on every checkpoint and slows down as state
 * grows). It also records what changed since the last `takeChanges()` and the value each changed
 * key had then, which is what write sets and the incremental digest are built from.
 */
import type { AccountFields, StateManagerInterface } from '@ethereumjs/common'
import { Account, type Address, KECCAK256_NULL } from '@ethereumjs/util'
import { bytesToUnprefixedHex, keccak256 } from '../../protocol/index.ts'

export type AccountState = { nonce: bigint; balance: bigint; codeHash: Uint8Array }

/**
 * `noted`: what the write added to the change set (ACCOUNT_NOTED, ITEM_NOTED: the slot, or the
 * account's place among changed codes), which a revert takes out again; `bytes`: what it added
 * to `changeBytes` besides those.
 */
type Undo =
  | { t: 'account'; key: string; prev: AccountState | undefined; noted: number }
  | { t: 'code'; key: string; prev: Uint8Array | undefined; noted: number; bytes: number }
  | { t: 'slot'; key: string; slot: string; prev: Uint8Array | undefined; noted: number }
  | {
      t: 'storage'
      key: string
      prev: Map<string, Uint8Array> | undefined
      noted: number
      slots: string[]
    }

const ACCOUNT_NOTED = 1
const ITEM_NOTED = 2

const EMPTY = new Uint8Array(0)

/** The index of the first non-zero byte of `v` (its length if all are zero). */
function firstNonZero(v: Uint8Array): number {
  let i = 0
  while (i < v.length && v[i] === 0) i++
  return i
}

/** Strips leading zero bytes: the EVM's shortest form of a storage value. */
export function stripZeros(v: Uint8Array): Uint8Array {
  const i = firstNonZero(v)
  return i === 0 ? v : v.subarray(i)
}

const hexOf = bytesToUnprefixedHex

/**
 * An account's bytes in an encoded write set without its code and slots (address, nonce,
 * balance, flags, slot count), or a deleted address (20). See src/protocol/writeset.ts.
 */
const WRITE_SET_ACCOUNT_BYTES = 20 + 8 + 32 + 1 + 4
/** A slot's bytes in an encoded write set: its key and value. */
const WRITE_SET_SLOT_BYTES = 64

export type Changes = {
  /** Accounts whose fields, code or storage changed, with their state at the last take. */
  accounts: Map<string, AccountState | undefined>
  code: Set<string>
  /** Changed slots per account, with their value (shortest form) at the last take. */
  slots: Map<string, Map<string, Uint8Array>>
}

export type JournaledStateManagerOptions = {
  /**
   * `getStorage` returns a non-zero value as a 32-byte word (default: its shortest form, as the
   * package's state managers do). The EVM pads what it reads to 32 bytes through
   * `@ethereumjs/util`'s `setLengthLeft`, which builds the padded copy by spreading both arrays
   * into an array literal (≈ 1 µs a value); a word already 32 bytes long is returned as it is.
   */
  paddedStorage?: boolean
}

/** `v` (at most 32 bytes) left-padded to a 32-byte word; `v` itself if it is one. */
export function pad32(v: Uint8Array): Uint8Array {
  if (v.length === 32) return v
  const out = new Uint8Array(32)
  out.set(v, 32 - v.length)
  return out
}

/**
 * Account states are values: the manager and its callers replace a stored `AccountState`, never
 * change its fields, so the change set and the undo log keep the stored objects themselves.
 */
export class JournaledStateManager implements StateManagerInterface {
  /** Keys are lowercase hex addresses without 0x. */
  readonly accounts = new Map<string, AccountState>()
  readonly code = new Map<string, Uint8Array>()
  readonly storage = new Map<string, Map<string, Uint8Array>>()

  private journal: Undo[] = []
  private checkpoints: number[] = []
  private changes: Changes = { accounts: new Map(), code: new Set(), slots: new Map() }
  /**
   * A bound on the bytes the change set adds to an encoded write set (src/protocol/writeset.ts):
   * each account's fields and counts, each slot's key and value, each code written (counted at
   * every write). Keys a revert or a later write set back stay counted, so it never falls short.
   */
  changeBytes = 0
  /** The journal's first entry whose `noted` refers to the current change set. */
  private notedFrom = 0
  private original = new Map<string, Uint8Array>()
  private readonly paddedStorage: boolean

  constructor(opts: JournaledStateManagerOptions = {}) {
    this.paddedStorage = opts.paddedStorage === true
  }

  originalStorageCache = {
    get: async (address: Address, key: Uint8Array): Promise<Uint8Array> => {
      const k = `${hexOf(address.bytes)}:${hexOf(key)}`
      let v = this.original.get(k)
      if (v === undefined) {
        v = await this.getStorage(address, key)
        this.original.set(k, v)
      }
      return v
    },
    clear: (): void => this.original.clear(),
  }

  // ---------------------------------------------------------------- plain, synchronous access

  getAccountState(key: string): AccountState | undefined {
    return this.accounts.get(key)
  }

  /** Adds `key` to the change set unless it is there: ACCOUNT_NOTED if it was added. */
  private noteAccount(key: string): number {
    if (this.changes.accounts.has(key)) return 0
    this.changes.accounts.set(key, this.accounts.get(key))
    this.changeBytes += WRITE_SET_ACCOUNT_BYTES
    return ACCOUNT_NOTED
  }

  setAccountState(key: string, next: AccountState | undefined): void {
    const noted = this.noteAccount(key)
    const prev = this.accounts.get(key)
    if (this.checkpoints.length > 0) this.journal.push({ t: 'account', key, prev, noted })
    // A copy of the caller's object, field by field (a spread costs microseconds on Node 20).
    if (next)
      this.accounts.set(key, { nonce: next.nonce, balance: next.balance, codeHash: next.codeHash })
    else this.accounts.delete(key)
  }

  setCode(key: string, code: Uint8Array): void {
    let noted = this.noteAccount(key)
    if (!this.changes.code.has(key)) {
      this.changes.code.add(key)
      noted |= ITEM_NOTED
    }
    const bytes = 4 + code.length
    this.changeBytes += bytes
    if (this.checkpoints.length > 0)
      this.journal.push({ t: 'code', key, prev: this.code.get(key), noted, bytes })
    if (code.length === 0) this.code.delete(key)
    else this.code.set(key, code)
  }

  getSlot(key: string, slot: string): Uint8Array {
    return this.storage.get(key)?.get(slot) ?? EMPTY
  }

  /** The change set's slots of `key`, made if it has none. */
  private changedSlots(key: string): Map<string, Uint8Array> {
    let changed = this.changes.slots.get(key)
    if (!changed) {
      changed = new Map()
      this.changes.slots.set(key, changed)
    }
    return changed
  }

  setSlot(key: string, slot: string, value: Uint8Array): void {
    const first = firstNonZero(value)
    let m = this.storage.get(key)
    const prev = m?.get(slot)
    let noted = this.noteAccount(key)
    const changed = this.changedSlots(key)
    if (!changed.has(slot)) {
      changed.set(slot, prev ?? EMPTY)
      this.changeBytes += WRITE_SET_SLOT_BYTES
      noted |= ITEM_NOTED
    }
    if (this.checkpoints.length > 0) this.journal.push({ t: 'slot', key, slot, prev, noted })
    if (first === value.length) {
      m?.delete(slot)
      if (m && m.size === 0) this.storage.delete(key)
    } else {
      if (!m) {
        m = new Map()
        this.storage.set(key, m)
      }
      // The shortest form, copied: the state keeps no view of its caller's array.
      m.set(slot, value.slice(first))
    }
  }

  clearSlots(key: string): void {
    const m = this.storage.get(key)
    if (!m) return
    const noted = this.noteAccount(key)
    const changed = this.changedSlots(key)
    const slots: string[] = []
    for (const [slot, v] of m) {
      if (changed.has(slot)) continue
      changed.set(slot, v)
      slots.push(slot)
    }
    this.changeBytes += slots.length * WRITE_SET_SLOT_BYTES
    if (this.checkpoints.length > 0) this.journal.push({ t: 'storage', key, prev: m, noted, slots })
    this.storage.delete(key)
  }

  /**
   * Takes out of the change set what an undone write added to it (`u.noted`), unless the change
   * set was taken since (the journal's entries below `notedFrom` belong to an earlier one).
   */
  private unnote(u: Undo, at: number): void {
    if (at < this.notedFrom) return
    if (u.t === 'code') {
      this.changeBytes -= u.bytes
      if (u.noted & ITEM_NOTED) this.changes.code.delete(u.key)
    } else if (u.t === 'slot' && u.noted & ITEM_NOTED) {
      this.changes.slots.get(u.key)?.delete(u.slot)
      this.changeBytes -= WRITE_SET_SLOT_BYTES
    } else if (u.t === 'storage' && u.slots.length > 0) {
      const changed = this.changes.slots.get(u.key)
      for (const slot of u.slots) changed?.delete(slot)
      this.changeBytes -= u.slots.length * WRITE_SET_SLOT_BYTES
    }
    if (u.t !== 'account' && this.changes.slots.get(u.key)?.size === 0)
      this.changes.slots.delete(u.key)
    if (u.noted & ACCOUNT_NOTED) {
      this.changes.accounts.delete(u.key)
      this.changeBytes -= WRITE_SET_ACCOUNT_BYTES
    }
  }

  /** Returns what changed since the last call, and starts a new change set. */
  takeChanges(): Changes {
    const c = this.changes
    this.changes = { accounts: new Map(), code: new Set(), slots: new Map() }
    this.changeBytes = 0
    this.notedFrom = this.journal.length
    return c
  }

  // ---------------------------------------------------------------- StateManagerInterface

  async getAccount(address: Address): Promise<Account | undefined> {
    const a = this.accounts.get(hexOf(address.bytes))
    if (!a) return undefined
    return new Account(a.nonce, a.balance, undefined, a.codeHash)
  }

  async putAccount(address: Address, account?: Account): Promise<void> {
    const key = hexOf(address.bytes)
    if (!account) return this.setAccountState(key, undefined)
    this.setAccountState(key, {
      nonce: account.nonce,
      balance: account.balance,
      codeHash: account.codeHash,
    })
  }

  async deleteAccount(address: Address): Promise<void> {
    const key = hexOf(address.bytes)
    this.setAccountState(key, undefined)
    if (this.code.has(key)) this.setCode(key, EMPTY)
    this.clearSlots(key)
  }

  async modifyAccountFields(address: Address, fields: AccountFields): Promise<void> {
    const key = hexOf(address.bytes)
    const cur = this.accounts.get(key) ?? { nonce: 0n, balance: 0n, codeHash: KECCAK256_NULL }
    this.setAccountState(key, {
      nonce: fields.nonce ?? cur.nonce,
      balance: fields.balance ?? cur.balance,
      codeHash: fields.codeHash ?? cur.codeHash,
    })
  }

  async putCode(address: Address, value: Uint8Array): Promise<void> {
    const key = hexOf(address.bytes)
    this.setCode(key, value.slice())
    const cur = this.accounts.get(key) ?? { nonce: 0n, balance: 0n, codeHash: KECCAK256_NULL }
    this.setAccountState(key, {
      ...cur,
      codeHash: value.length === 0 ? KECCAK256_NULL : keccak256(value),
    })
  }

  async getCode(address: Address): Promise<Uint8Array> {
    return this.code.get(hexOf(address.bytes)) ?? EMPTY
  }

  async getCodeSize(address: Address): Promise<number> {
    return (await this.getCode(address)).length
  }

  async getStorage(address: Address, key: Uint8Array): Promise<Uint8Array> {
    const v = this.getSlot(hexOf(address.bytes), hexOf(key))
    return this.paddedStorage && v.length > 0 ? pad32(v) : v
  }

  async putStorage(address: Address, key: Uint8Array, value: Uint8Array): Promise<void> {
    this.setSlot(hexOf(address.bytes), hexOf(key), value)
  }

  async clearStorage(address: Address): Promise<void> {
    this.clearSlots(hexOf(address.bytes))
  }

  async checkpoint(): Promise<void> {
    this.checkpointNow()
  }

  async commit(): Promise<void> {
    this.commitNow()
  }

  async revert(): Promise<void> {
    this.revertNow()
  }

  /** Checkpoints open (a caller's way back to where it started: `revertTo`). */
  get depth(): number {
    return this.checkpoints.length
  }

  /** Reverts every checkpoint opened since `depth` was read. */
  revertTo(depth: number): void {
    while (this.checkpoints.length > depth) this.revertNow()
  }

  /** `checkpoint`, for synchronous callers (the interface's methods are async). */
  checkpointNow(): void {
    this.checkpoints.push(this.journal.length)
  }

  /** `commit`, for synchronous callers. */
  commitNow(): void {
    this.checkpoints.pop()
    if (this.checkpoints.length === 0) {
      this.journal.length = 0
      this.notedFrom = 0
    }
  }

  /**
   * `revert`, for synchronous callers. Keys the undone writes added to the change set leave it
   * again (with their bytes in `changeBytes`): they hold the values they had at the last take.
   */
  revertNow(): void {
    const to = this.checkpoints.pop() ?? 0
    while (this.journal.length > to) {
      const u = this.journal.pop()!
      this.unnote(u, this.journal.length)
      switch (u.t) {
        case 'account':
          if (u.prev) this.accounts.set(u.key, u.prev)
          else this.accounts.delete(u.key)
          break
        case 'code':
          if (u.prev) this.code.set(u.key, u.prev)
          else this.code.delete(u.key)
          break
        case 'slot': {
          let m = this.storage.get(u.key)
          if (u.prev) {
            if (!m) {
              m = new Map()
              this.storage.set(u.key, m)
            }
            m.set(u.slot, u.prev)
          } else {
            m?.delete(u.slot)
            if (m && m.size === 0) this.storage.delete(u.key)
          }
          break
        }
        case 'storage':
          if (u.prev) this.storage.set(u.key, u.prev)
          else this.storage.delete(u.key)
          break
      }
    }
    if (this.notedFrom > this.journal.length) this.notedFrom = this.journal.length
  }

  async getStateRoot(): Promise<Uint8Array> {
    throw new Error('state roots are not used in POSE worlds')
  }
  async setStateRoot(): Promise<void> {
    throw new Error('state roots are not used in POSE worlds')
  }
  async hasStateRoot(): Promise<boolean> {
    return false
  }
  clearCaches(): void {}
  shallowCopy(): StateManagerInterface {
    throw new Error('shallowCopy is not supported by the journaled state manager')
  }
}
