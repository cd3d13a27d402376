/** Typed reads of the PoseManager (SPEC §4) with plain TypeScript results. */
import {
  type Address,
  type Chain,
  getAbiItem,
  type Hex,
  type PublicClient,
  type Transport,
} from 'viem'
import {
  bytesToHex,
  decodeActivated,
  EventKind,
  hexToBytes,
  PHASE_NAMES,
  type Phase,
} from '../protocol/index.ts'
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

/** Per client, per manager address (one address may name different managers on two chains). */
const deploymentBlocks = new WeakMap<object, Map<string, Promise<bigint>>>()

/**
 * The block `manager` was created in (its `deploymentBlock`), where searches of its logs start:
 * nodes of public chains refuse or time out log searches from genesis. Read once per client and
 * manager; a failed read is not kept, so the next call asks again.
 */
export function readDeploymentBlock(
  client: PublicClient<Transport, Chain>,
  manager: Address,
): Promise<bigint> {
  let byManager = deploymentBlocks.get(client)
  if (!byManager) {
    byManager = new Map()
    deploymentBlocks.set(client, byManager)
  }
  const key = manager.toLowerCase()
  let block = byManager.get(key)
  if (!block) {
    const cache = byManager
    block = (
      client.readContract({
        address: manager,
        abi: poseManagerAbi,
        functionName: 'deploymentBlock',
      }) as Promise<bigint>
    ).then(
      (b) => BigInt(b),
      (e: unknown) => {
        cache.delete(key)
        throw e
      },
    )
    byManager.set(key, block)
  }
  return block
}

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

const instanceEvent = getAbiItem({ abi: poseManagerAbi, name: 'InstanceEvent' })

/**
 * The data of instance `id`'s first `InstanceEvent` of `kind`, or undefined if it has none,
 * searched from `fromBlock` (default: the manager's deployment block).
 */
export async function readInstanceEventData(
  client: PublicClient<Transport, Chain>,
  manager: Address,
  id: bigint,
  kind: EventKind,
  opts: { fromBlock?: bigint } = {},
): Promise<Hex | undefined> {
  const logs = await client.getLogs({
    address: manager,
    event: instanceEvent,
    args: { id },
    fromBlock: opts.fromBlock ?? (await readDeploymentBlock(client, manager)),
    toBlock: 'latest',
  })
  return logs.find((l) => Number(l.args.kind) === kind && l.args.data)?.args.data
}

const finalBalancesPage = getAbiItem({ abi: poseManagerAbi, name: 'FinalBalancesPage' })

/**
 * The data of every `FinalBalancesPage` event of instance `id` (the pages of its final balances
 * but the last one in, which is in its `Terminated` event), by page.
 */
export async function readFinalBalancesPages(
  client: PublicClient<Transport, Chain>,
  manager: Address,
  id: bigint,
  opts: { fromBlock?: bigint } = {},
): Promise<Map<bigint, Hex>> {
  const logs = await client.getLogs({
    address: manager,
    event: finalBalancesPage,
    args: { id },
    fromBlock: opts.fromBlock ?? (await readDeploymentBlock(client, manager)),
    toBlock: 'latest',
  })
  const pages = new Map<bigint, Hex>()
  for (const l of logs)
    if (l.args.page !== undefined && l.args.data) pages.set(l.args.page, l.args.data)
  return pages
}

/**
 * The contract encryption key of instance `id`, which users encrypt transactions to, or
 * undefined before its activation. The manager does not store it (docs/decisions/0005): it is
 * in the instance's `Activated` event, whose data the executor enclave signed and the running
 * hash binds.
 */
export async function readContractEncryptionKey(
  client: PublicClient<Transport, Chain>,
  manager: Address,
  id: bigint,
  opts: { fromBlock?: bigint } = {},
): Promise<Hex | undefined> {
  return (await readActivation(client, manager, id, opts))?.contractEncryptionKey
}

/**
 * What instance `id`'s executor enclave signed when it activated the instance (its `Activated`
 * event): the contract encryption key and the genesis state's digest; undefined before.
 */
export async function readActivation(
  client: PublicClient<Transport, Chain>,
  manager: Address,
  id: bigint,
  opts: { fromBlock?: bigint } = {},
): Promise<{ contractEncryptionKey: Hex; genesisDigest: Hex } | undefined> {
  const data = await readInstanceEventData(client, manager, id, EventKind.Activated, opts)
  if (!data) return undefined
  const a = decodeActivated(hexToBytes(data, 'Activated data'))
  return {
    contractEncryptionKey: bytesToHex(a.contractEncryptionKey),
    genesisDigest: bytesToHex(a.genesisDigest),
  }
}

/** What the manager stores of an operator: everything but its endpoint and measurement. */
export type OperatorRecord = Omit<OperatorInfo, 'endpoint' | 'measurement'>

/** Reads `operator`'s stored record (one call; no log search). */
export async function readOperatorRecord(
  client: PublicClient<Transport, Chain>,
  manager: Address,
  operator: Address,
): Promise<OperatorRecord> {
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
    stake: BigInt(r.stake as bigint),
    registered: Boolean(r.registered),
    exiting: Boolean(r.exiting),
    memberships: Number(r.memberships),
    exitRequestedAt: BigInt(r.exitRequestedAt as bigint),
  }
}

/**
 * Reads `operator` from the manager with its endpoint and enclave measurement. Those are not in
 * the manager's storage (docs/decisions/0009): they come from the operator's latest
 * `OperatorRegistered` log and any later `EndpointChanged`, searched from `fromBlock` (default:
 * the manager's deployment block). Callers that need neither use `readOperatorRecord`.
 */
export async function readOperator(
  client: PublicClient<Transport, Chain>,
  manager: Address,
  operator: Address,
  opts: { fromBlock?: bigint } = {},
): Promise<OperatorInfo> {
  const [record, announced] = await Promise.all([
    readOperatorRecord(client, manager, operator),
    readAnnouncement(client, manager, operator, opts.fromBlock),
  ])
  return { ...record, ...announced }
}

const operatorRegistered = getAbiItem({ abi: poseManagerAbi, name: 'OperatorRegistered' })
const endpointChanged = getAbiItem({ abi: poseManagerAbi, name: 'EndpointChanged' })
const ZERO_HASH = `0x${'0'.repeat(64)}` as Hex

type LogAt = { blockNumber: bigint | null; logIndex: number | null }
const after = (a: LogAt, b: LogAt) =>
  (a.blockNumber ?? 0n) > (b.blockNumber ?? 0n) ||
  (a.blockNumber === b.blockNumber && (a.logIndex ?? 0) > (b.logIndex ?? 0))

/**
 * The endpoint and measurement `operator` announced: its latest registration, with the endpoint
 * of any `EndpointChanged` after it, searched from `from` (default: the manager's deployment
 * block). Empty endpoint and zero measurement if it never registered.
 */
async function readAnnouncement(
  client: PublicClient<Transport, Chain>,
  manager: Address,
  operator: Address,
  from: bigint | undefined,
): Promise<{ endpoint: string; measurement: Hex }> {
  const fromBlock = from ?? (await readDeploymentBlock(client, manager))
  const [registrations, changes] = await Promise.all([
    client.getLogs({
      address: manager,
      event: operatorRegistered,
      args: { operator },
      fromBlock,
      toBlock: 'latest',
    }),
    client.getLogs({
      address: manager,
      event: endpointChanged,
      args: { operator },
      fromBlock,
      toBlock: 'latest',
    }),
  ])
  const reg = registrations.reduce<(typeof registrations)[number] | undefined>(
    (best, l) => (!best || after(l, best) ? l : best),
    undefined,
  )
  if (!reg) return { endpoint: '', measurement: ZERO_HASH }
  let endpoint = reg.args.endpoint ?? ''
  let latest: LogAt = reg
  for (const c of changes) {
    if (after(c, latest)) {
      latest = c
      endpoint = c.args.endpoint ?? endpoint
    }
  }
  return { endpoint, measurement: reg.args.measurement ?? ZERO_HASH }
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
