/** Fixed addresses and event kinds shared by the manager, the enclave and the SDK. */
import { hexToBytes } from './bytes.ts'

/** The address at which every instance's contract lives inside its world (SPEC §5). */
export const INSTANCE_ADDRESS_HEX = '0x000000000000000000000000000000000000c0de' as const
export const INSTANCE_ADDRESS = hexToBytes(INSTANCE_ADDRESS_HEX)

/** The reserved system address (SPEC §5): nonce queries now; withdraw/terminate later. */
export const SYSTEM_ADDRESS_HEX = '0x0000000000000000000000000000000000005053' as const
export const SYSTEM_ADDRESS = hexToBytes(SYSTEM_ADDRESS_HEX)

/** `nonce()` on the system address, answered by a signed view call: the caller's next nonce. */
export const SYSTEM_NONCE_SELECTOR = hexToBytes('0xaffed0e0')

/**
 * `withdrawAuthorisation()` on the system address, answered by a signed view call:
 * `abi.encode(uint256 cumulative, uint64 eventIndex, bytes signature)` for the caller, over
 * released state only, ready for the manager's `withdraw`.
 */
export const SYSTEM_AUTHORISATION_SELECTOR = hexToBytes('0x62e5fcf9')

/** `withdraw()` on the system address: burns the coins sent with it, for a claim on-chain. */
export const SYSTEM_WITHDRAW_SELECTOR = hexToBytes('0x3ccfd60b')

/** Storage slots of PoseSystem: `withdrawn` (0), `lastCreditedEvent` (1), `terminated` (2). */
export const SYSTEM_WITHDRAWN_SLOT = 0n
export const SYSTEM_LAST_CREDITED_SLOT = 1n
export const SYSTEM_TERMINATED_SLOT = 2n

/** Kinds of the manager's running-hash events; same order as `EventKind` in PoseTypes.sol. */
export const EventKind = {
  None: 0,
  Created: 1,
  PoolDrawn: 2,
  Activated: 3,
  MemberRemoved: 4,
  Deposit: 5,
  Withdrawal: 6,
  ExecutorChallenged: 7,
  ExecutorResponded: 8,
  ExecutorTimedOut: 9,
  WatchdogsChallenged: 10,
  WatchdogResponded: 11,
  WatchdogChallengeFinalized: 12,
  Refilled: 13,
  Terminated: 14,
} as const
export type EventKind = (typeof EventKind)[keyof typeof EventKind]

/** Instance phases; same order as `Phase` in PoseTypes.sol. */
export const Phase = {
  None: 0,
  Drawing: 1,
  Creating: 2,
  Active: 3,
  ExecutorChallenged: 4,
  WatchdogsChallenged: 5,
  Frozen: 6,
  Terminated: 7,
} as const
export type Phase = (typeof Phase)[keyof typeof Phase]
export const PHASE_NAMES = Object.keys(Phase) as (keyof typeof Phase)[]
