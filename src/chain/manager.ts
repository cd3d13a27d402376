/** Typed reads of the PoseManager (SPEC §4) with plain TypeScript results. */
import type { Address, Chain, Hex, PublicClient, Transport } from 'viem'
import { PHASE_NAMES, type Phase } from '../protocol/index.ts'
import { poseManagerAbi } from './abi.generated.ts'

export { poseManagerAbi }

export type InstanceInfo = {
  id: bigint
  phase: Phase
  phaseName: string
  watchdogCount: number
  /** The block whose hash draws the pool; 0 once the pool is drawn. */
  drawBlock: bigint
  executorSlot: number
  contractEncryptionKey: Hex
  eventIndex: bigint
  eventHash: Hex
  signers: Address[]
  operators: Address[]
  /** Who challenged the executor and until when it may answer; zero unless `ExecutorChallenged`. */
  challenger: Address
  challengeDeadline: bigint
  watchdogMask: number
  respondedMask: number
  watchdogDeadline: bigint
  refillBlock: bigint
}

export type OperatorInfo = {
  operator: Address
  enclaveSigner: Address
  encryptionKey: Hex
  measurement: Hex
  endpoint: string
  stake: bigint
  registered: boolean
  exiting: boolean
  memberships: number
  exitRequestedAt: bigint
}

const ZERO = '0x0000000000000000000000000000000000000000'

export async function readInstance(
  client: PublicClient<Transport, Chain>,
  manager: Address,
  id: bigint,
): Promise<InstanceInfo> {
  const r = (await client.readContract({
    address: manager,
    abi: poseManagerAbi,
    functionName: 'getInstance',
    args: [id],
  })) as Record<string, unknown>
  const phase = Number(r.phase) as Phase
  return {
    id,
    phase,
    phaseName: PHASE_NAMES[phase] ?? `Unknown(${phase})`,
    watchdogCount: Number(r.watchdogCount),
    drawBlock: BigInt(r.drawBlock as bigint),
    executorSlot: Number(r.executorSlot),
    contractEncryptionKey: r.contractEncryptionKey as Hex,
    eventIndex: BigInt(r.eventIndex as bigint),
    eventHash: r.eventHash as Hex,
    signers: [...(r.signers as Address[])],
    operators: [...(r.operators as Address[])],
    challenger: r.challenger as Address,
    challengeDeadline: BigInt(r.challengeDeadline as bigint),
    watchdogMask: Number(r.watchdogMask),
    respondedMask: Number(r.respondedMask),
    watchdogDeadline: BigInt(r.watchdogDeadline as bigint),
    refillBlock: BigInt(r.refillBlock as bigint),
  }
}

export async function readOperator(
  client: PublicClient<Transport, Chain>,
  manager: Address,
  operator: Address,
): Promise<OperatorInfo> {
  const r = (await client.readContract({
    address: manager,
    abi: poseManagerAbi,
    functionName: 'getOperator',
    args: [operator],
  })) as Record<string, unknown>
  return {
    operator,
    enclaveSigner: r.enclaveSigner as Address,
    encryptionKey: r.encryptionKey as Hex,
    measurement: r.measurement as Hex,
    endpoint: r.endpoint as string,
    stake: BigInt(r.stake as bigint),
    registered: Boolean(r.registered),
    exiting: Boolean(r.exiting),
    memberships: Number(r.memberships),
    exitRequestedAt: BigInt(r.exitRequestedAt as bigint),
  }
}

/**
 * Whether the enclave `signer` was a member of `instance` and left it (removed, replaced or
 * exited): its receipts and authorisations from its time as a member stay valid.
 */
export async function readFormerMember(
  client: PublicClient<Transport, Chain>,
  manager: Address,
  instance: bigint,
  signer: Address,
): Promise<boolean> {
  return (await client.readContract({
    address: manager,
    abi: poseManagerAbi,
    functionName: 'formerMember',
    args: [instance, signer],
  })) as boolean
}

/** The operator running the enclave `signer`, or undefined. */
export async function readOperatorOfSigner(
  client: PublicClient<Transport, Chain>,
  manager: Address,
  signer: Address,
): Promise<OperatorInfo | undefined> {
  const op = (await client.readContract({
    address: manager,
    abi: poseManagerAbi,
    functionName: 'operatorOfSigner',
    args: [signer],
  })) as Address
  if (op === ZERO) return undefined
  return readOperator(client, manager, op)
}
