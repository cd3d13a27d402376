/**
 * The ecall/ocall interface between a TEE host and its enclave process (SPEC §2). Requests are
 * sent over Node's IPC channel with structured-clone serialisation, so bytes and bigints travel
 * natively. The enclave validates every request against these schemas: the host is untrusted.
 */
import { z } from 'zod'
import type { ErrorObject } from './errors.ts'
import { LIMITS } from './limits.ts'
import type { PeerEnvelopeWire } from './messages.ts'

const bytes = (length?: number, max = 64 * 1024 * 1024) =>
  z
    .instanceof(Uint8Array)
    .refine((b) => (length === undefined ? b.length <= max : b.length === length), {
      message: length === undefined ? `expected at most ${max} bytes` : `expected ${length} bytes`,
    })
const u64 = z
  .bigint()
  .min(0n)
  .max((1n << 64n) - 1n)
const u256 = z
  .bigint()
  .min(0n)
  .max((1n << 256n) - 1n)
const requestId = z.string().min(1).max(128)

export const chainEventSchema = z.strictObject({
  instance: u256,
  index: u64,
  kind: z.number().int().min(0).max(255),
  data: bytes(undefined, 1024 * 1024),
  hash: bytes(32),
})
export type ChainEvent = {
  instance: bigint
  index: bigint
  kind: number
  data: Uint8Array
  hash: Uint8Array
}

export const ecallSchemas = {
  init: z.strictObject({
    platformSecret: bytes(32),
    measurement: bytes(32),
    chainId: u64,
    manager: bytes(20),
    operator: bytes(20),
    sealedIdentity: bytes().optional(),
  }),
  restore: z.strictObject({
    instance: u256,
    blobs: z.array(bytes()).max(1_000_000),
  }),
  chain: z.strictObject({
    blockNumber: u64,
    timestamp: u64,
    events: z.array(chainEventSchema).max(10_000),
  }),
  deploy: z.strictObject({ instance: u256, box: bytes(undefined, 1024 * 1024) }),
  tx: z.strictObject({ requestId, instance: u256, box: bytes(undefined, 128 * 1024) }),
  view: z.strictObject({ requestId, instance: u256, box: bytes(undefined, 128 * 1024) }),
  peer: z.strictObject({ envelope: z.unknown() }),
  tick: z.strictObject({ now: z.number().int().min(0) }),
  digest: z.strictObject({ instance: u256 }),
  status: z.strictObject({}),
} as const

export type EcallName = keyof typeof ecallSchemas
export type EcallParams<N extends EcallName> = z.infer<(typeof ecallSchemas)[N]>

export type InitResult = {
  signer: Uint8Array
  encryptionKey: Uint8Array
  sealedIdentity: Uint8Array
  /** Report data for attestation: binds measurement, keys, chain, manager and operator. */
  reportHash: Uint8Array
  insecure: true
}
export type DeployResult = { contractEncryptionKey: Uint8Array; genesisDigest: Uint8Array }
export type DigestResult = {
  role: 'executor' | 'watchdog' | 'none'
  seq: bigint
  digest: Uint8Array
}
export type InstanceStatus = {
  instance: bigint
  role: 'executor' | 'watchdog' | 'none'
  phase: number
  seq: bigint
  eventIndex: bigint
  queued: number
  inFlight: number
}
export type StatusResult = { signer: Uint8Array; instances: InstanceStatus[] }

export type EcallResults = {
  init: InitResult
  /** `records`: how many of the blobs it restored from (those after them did not open). */
  restore: { seq: bigint; records: number }
  chain: Record<string, never>
  deploy: DeployResult
  tx: Record<string, never>
  view: Record<string, never>
  peer: Record<string, never>
  tick: Record<string, never>
  digest: DigestResult
  status: StatusResult
}

/** What an enclave asks its host to do (ocalls), returned with every ecall's result. */
export type EnclaveOutput =
  | { type: 'send'; to: Uint8Array; envelope: PeerEnvelopeWire }
  | { type: 'seal'; instance: bigint; mode: 'snapshot' | 'append'; blob: Uint8Array }
  | { type: 'answer'; requestId: string; sealed?: Uint8Array; error?: ErrorObject }
  | {
      type: 'activate'
      instance: bigint
      contractEncryptionKey: Uint8Array
      genesisDigest: Uint8Array
      ackedMask: bigint
      eventIndex: bigint
      signature: Uint8Array
    }
  | { type: 'challengeWatchdogs'; instance: bigint; memberMask: bigint; payload: Uint8Array }
  | {
      type: 'respondWatchdog'
      instance: bigint
      slot: number
      eventIndex: bigint
      signature: Uint8Array
    }
  | {
      type: 'respondExecutor'
      instance: bigint
      response: Uint8Array
      eventIndex: bigint
      signature: Uint8Array
    }
  | {
      type: 'terminate'
      instance: bigint
      root: Uint8Array
      /** This page's index among `pages` (PoseManager.FinalBalances). */
      page: number
      pages: number
      accounts: Uint8Array[]
      cumulatives: bigint[]
      eventIndex: bigint
      signature: Uint8Array
    }
  | {
      type: 'log'
      level: 'debug' | 'info' | 'warn'
      message: string
      fields: Record<string, string | number | boolean>
    }

export type EcallRequest = { id: number; method: EcallName; params: unknown }
export type EcallResponse =
  | { id: number; ok: true; result: unknown; outputs: EnclaveOutput[] }
  | { id: number; ok: false; error: ErrorObject; outputs: EnclaveOutput[] }
/**
 * Several ecalls (or their responses) in one message over the channel: each side sends
 * whatever it queued during one turn of its event loop together, so a busy channel costs one
 * write and one wake-up per turn instead of one per ecall. Ecalls still run one after another,
 * in the order of the batch.
 */
export type EcallBatch<T> = { batch: T[] }

/**
 * One side's sender on the ecall channel: items queued during one turn of the event loop go
 * out at its end, one alone or several as an `EcallBatch` of at most `maxEcallBatch`. `send`
 * may throw when a message cannot be serialised (nothing is written then): that message is
 * sent item by item, and an item that cannot go even alone is handed to `unsendable`, so one
 * bad item never holds up the rest of its turn.
 */
export function turnBatcher<T>(
  send: (msg: T | EcallBatch<T>, items: T[]) => void,
  unsendable: (item: T, err: Error) => void,
): (item: T) => void {
  let queued: T[] = []
  const sendPart = (part: T[]): void => {
    try {
      send(part.length === 1 ? part[0]! : { batch: part }, part)
    } catch (e) {
      if (part.length > 1) for (const item of part) sendPart([item])
      else unsendable(part[0]!, e as Error)
    }
  }
  const flush = (): void => {
    const all = queued
    queued = []
    for (let i = 0; i < all.length; i += LIMITS.maxEcallBatch)
      sendPart(all.slice(i, i + LIMITS.maxEcallBatch))
  }
  return (item) => {
    if (queued.push(item) === 1) setImmediate(flush)
  }
}
