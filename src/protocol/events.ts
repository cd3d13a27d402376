/**
 * Decoders for the `data` of the manager's running-hash events (SPEC §4). The data is
 * `abi.encode(...)` of the fields named in PoseManager; each decoder checks the exact length.
 */
import { wordToUint } from './bytes.ts'
import { EventKind } from './constants.ts'
import { ProtocolError } from './errors.ts'
import { type FinalBalance, MAX_FINAL_ACCOUNTS } from './finalBalances.ts'

function word(data: Uint8Array, i: number, what: string): Uint8Array {
  const w = data.subarray(i * 32, i * 32 + 32)
  if (w.length !== 32) throw new ProtocolError('MALFORMED', `${what}: data too short`)
  return w
}

function wordToAddress(w: Uint8Array, what: string): Uint8Array {
  for (let i = 0; i < 12; i++) {
    if (w[i] !== 0)
      throw new ProtocolError('MALFORMED', `${what}: address word has dirty high bytes`)
  }
  return w.slice(12)
}

function smallUint(w: Uint8Array, what: string, max: bigint): number {
  const v = wordToUint(w)
  if (v > max) throw new ProtocolError('MALFORMED', `${what}: ${v} exceeds ${max}`)
  return Number(v)
}

/** Decodes a dynamic array of static words whose head offset sits at word `slot`. */
function wordArray(data: Uint8Array, slot: number, what: string, max: number): Uint8Array[] {
  const offset = smallUint(word(data, slot, what), `${what} offset`, BigInt(data.length))
  if (offset % 32 !== 0) throw new ProtocolError('MALFORMED', `${what}: unaligned offset`)
  const base = offset / 32
  const length = smallUint(word(data, base, what), `${what} length`, BigInt(max))
  const out: Uint8Array[] = []
  for (let i = 0; i < length; i++) out.push(word(data, base + 1 + i, what))
  return out
}

export type CreatedEvent = {
  creator: Uint8Array
  watchdogCount: number
  initCommitment: Uint8Array
}
export type PoolDrawnEvent = { signers: Uint8Array[]; encryptionKeys: Uint8Array[] }
export type ActivatedEvent = {
  contractEncryptionKey: Uint8Array
  genesisDigest: Uint8Array
  ackedMask: bigint
}
export type MemberRemovedEvent = { slot: number; signer: Uint8Array; reason: number }

export function decodeCreated(data: Uint8Array): CreatedEvent {
  if (data.length !== 96) throw new ProtocolError('MALFORMED', 'Created: expected 96 bytes of data')
  return {
    creator: wordToAddress(word(data, 0, 'Created'), 'Created.creator'),
    watchdogCount: smallUint(word(data, 1, 'Created'), 'Created.watchdogCount', 255n),
    initCommitment: word(data, 2, 'Created').slice(),
  }
}

export function decodePoolDrawn(data: Uint8Array): PoolDrawnEvent {
  const signers = wordArray(data, 0, 'PoolDrawn.signers', 16).map((w) =>
    wordToAddress(w, 'PoolDrawn.signers'),
  )
  const encryptionKeys = wordArray(data, 1, 'PoolDrawn.encryptionKeys', 16).map((w) => w.slice())
  if (signers.length !== encryptionKeys.length || signers.length === 0) {
    throw new ProtocolError('MALFORMED', 'PoolDrawn: signers and keys differ in length')
  }
  return { signers, encryptionKeys }
}

export function decodeActivated(data: Uint8Array): ActivatedEvent {
  if (data.length !== 96)
    throw new ProtocolError('MALFORMED', 'Activated: expected 96 bytes of data')
  return {
    contractEncryptionKey: word(data, 0, 'Activated').slice(),
    genesisDigest: word(data, 1, 'Activated').slice(),
    ackedMask: wordToUint(word(data, 2, 'Activated')),
  }
}

export function decodeMemberRemoved(data: Uint8Array): MemberRemovedEvent {
  if (data.length !== 96)
    throw new ProtocolError('MALFORMED', 'MemberRemoved: expected 96 bytes of data')
  return {
    slot: smallUint(word(data, 0, 'MemberRemoved'), 'MemberRemoved.slot', 15n),
    signer: wordToAddress(word(data, 1, 'MemberRemoved'), 'MemberRemoved.signer'),
    reason: smallUint(word(data, 2, 'MemberRemoved'), 'MemberRemoved.reason', 255n),
  }
}

export const isKnownEventKind = (k: number): boolean =>
  k >= EventKind.Created && k <= EventKind.Terminated

export type RefilledEvent = { slots: number[]; signers: Uint8Array[]; encryptionKeys: Uint8Array[] }
export type WatchdogsChallengedEvent = { mask: number; payload: Uint8Array }
export type ExecutorChallengedEvent = { challenger: Uint8Array; payload: Uint8Array }

export function decodeRefilled(data: Uint8Array): RefilledEvent {
  const slots = wordArray(data, 0, 'Refilled.slots', 16).map((w) =>
    smallUint(w, 'Refilled.slots', 15n),
  )
  const signers = wordArray(data, 1, 'Refilled.signers', 16).map((w) =>
    wordToAddress(w, 'Refilled.signers'),
  )
  const encryptionKeys = wordArray(data, 2, 'Refilled.encryptionKeys', 16).map((w) => w.slice())
  if (slots.length !== signers.length || slots.length !== encryptionKeys.length) {
    throw new ProtocolError('MALFORMED', 'Refilled: arrays differ in length')
  }
  return { slots, signers, encryptionKeys }
}

export type TerminatedEvent = { root: Uint8Array; balances: FinalBalance[] }

/**
 * `abi.encode(root, accounts, cumulatives)`: a page of final balances, in the signed order (the
 * `Terminated` event's, or `what`: a `FinalBalancesPage` event's).
 */
export function decodeTerminated(data: Uint8Array, what = 'Terminated'): TerminatedEvent {
  const root = word(data, 0, what).slice()
  const accounts = wordArray(data, 1, `${what}.accounts`, MAX_FINAL_ACCOUNTS).map((w) =>
    wordToAddress(w, `${what}.accounts`),
  )
  const amounts = wordArray(data, 2, `${what}.cumulatives`, MAX_FINAL_ACCOUNTS).map(wordToUint)
  if (accounts.length !== amounts.length)
    throw new ProtocolError('MALFORMED', `${what}: arrays differ in length`)
  return { root, balances: accounts.map((account, i) => ({ account, cumulative: amounts[i]! })) }
}

/** Decodes dynamic `bytes` whose head offset sits at word `slot`. */
function dynamicBytes(data: Uint8Array, slot: number, what: string): Uint8Array {
  const offset = smallUint(word(data, slot, what), `${what} offset`, BigInt(data.length))
  const length = smallUint(word(data, offset / 32, what), `${what} length`, BigInt(data.length))
  const start = offset + 32
  if (start + length > data.length) throw new ProtocolError('MALFORMED', `${what}: data too short`)
  return data.slice(start, start + length)
}

export function decodeWatchdogsChallenged(data: Uint8Array): WatchdogsChallengedEvent {
  return {
    mask: smallUint(word(data, 0, 'WatchdogsChallenged'), 'WatchdogsChallenged.mask', 0xffffn),
    payload: dynamicBytes(data, 1, 'WatchdogsChallenged.payload'),
  }
}

export function decodeExecutorChallenged(data: Uint8Array): ExecutorChallengedEvent {
  return {
    challenger: wordToAddress(word(data, 0, 'ExecutorChallenged'), 'ExecutorChallenged.challenger'),
    payload: dynamicBytes(data, 1, 'ExecutorChallenged.payload'),
  }
}

export function decodeWatchdogChallengeFinalized(data: Uint8Array): { silent: number } {
  if (data.length !== 32)
    throw new ProtocolError('MALFORMED', 'WatchdogChallengeFinalized: expected 32 bytes')
  return { silent: smallUint(word(data, 0, 'WatchdogChallengeFinalized'), 'silent', 0xffffn) }
}

export function decodeWatchdogResponded(data: Uint8Array): { slot: number } {
  if (data.length !== 32)
    throw new ProtocolError('MALFORMED', 'WatchdogResponded: expected 32 bytes')
  return { slot: smallUint(word(data, 0, 'WatchdogResponded'), 'WatchdogResponded.slot', 15n) }
}

export type DepositEvent = { from: Uint8Array; amount: bigint }

export function decodeDeposit(data: Uint8Array): DepositEvent {
  if (data.length !== 64) throw new ProtocolError('MALFORMED', 'Deposit: expected 64 bytes of data')
  return {
    from: wordToAddress(word(data, 0, 'Deposit'), 'Deposit.from'),
    amount: wordToUint(word(data, 1, 'Deposit')),
  }
}
