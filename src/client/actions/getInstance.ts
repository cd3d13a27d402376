import type { Address, Hex } from 'viem'
import {
  type InstanceInfo,
  readContractEncryptionKey,
  readInstance,
  readOperator,
} from '../../chain/manager.ts'
import { Phase } from '../../protocol/index.ts'
import type { PoseClientBase } from '../createPoseClient.ts'
import { PoseError } from '../errors.ts'

export type GetInstanceParameters = { instance: bigint; refresh?: boolean }

export type GetInstanceReturnType = InstanceInfo & {
  /** Endpoint of the executor's operator, where transactions go. */
  executorEndpoint: string
  /** Enclave signer of the executor. */
  executor: Address
  /**
   * x25519 public key users encrypt transactions to (zero before activation), from the
   * instance's `Activated` event; read once per client, as it never changes.
   */
  contractEncryptionKey: Hex
  /** Every enclave that is a member now; receipts must be signed by one of them. */
  memberSigners: Set<string>
}

const NO_KEY: Hex = `0x${'0'.repeat(64)}`
/** A contract key of zeros: the instance has none yet. */
export const ZERO_KEY = /^0x0{64}$/

/** Whether the instance has passed activation (so its `Activated` event exists, unless it froze first). */
const activated = (info: InstanceInfo) =>
  info.phase !== Phase.None && info.phase !== Phase.Drawing && info.phase !== Phase.Creating

/**
 * Reads an instance from the manager, with the endpoint of its executor.
 *
 * @example
 * ```ts
 * const info = await getInstance(client, { instance: 1n })
 * console.log(info.phaseName, info.signers)
 * ```
 */
export async function getInstance(
  client: PoseClientBase,
  p: GetInstanceParameters,
): Promise<GetInstanceReturnType> {
  if (!p.refresh) {
    const active = cachedActiveInstance(client, p.instance)
    if (active) return active
  }
  const key = p.instance.toString()
  const cached = client.state.instances.get(key)
  const info = await readInstance(client.publicClient, client.manager, p.instance)
  if (info.phase === Phase.None) {
    throw new PoseError(`Instance ${p.instance} does not exist on manager ${client.manager}`, {
      details: 'Check the instance id and the manager address.',
    })
  }
  const executorOperator = info.operators[info.executorSlot]
  const executor = info.signers[info.executorSlot]
  const [executorEndpoint, contractEncryptionKey] = await Promise.all([
    executorOperator && executor && !/^0x0{40}$/.test(executor)
      ? readOperator(client.publicClient, client.manager, executorOperator).then((o) => o.endpoint)
      : '',
    cached && !ZERO_KEY.test(cached.contractEncryptionKey)
      ? cached.contractEncryptionKey
      : activated(info)
        ? readContractEncryptionKey(client.publicClient, client.manager, p.instance).then(
            (k) => k ?? NO_KEY,
          )
        : NO_KEY,
  ])
  // The fields are added to the object `readInstance` made, not spread into a new one: spread
  // copies got hidden classes of their own in a process with hundreds of clients, and reads of
  // a cached result missed their inline caches (bench/README.md, 2026-12-06).
  const result = info as GetInstanceReturnType
  result.executorEndpoint = executorEndpoint
  result.contractEncryptionKey = contractEncryptionKey
  result.executor = executor ?? '0x0000000000000000000000000000000000000000'
  result.memberSigners = new Set(
    info.signers.filter((s) => !/^0x0{40}$/.test(s)).map((s) => s.toLowerCase()),
  )
  client.state.instances.set(key, result)
  return result
}

/**
 * What `getInstance` answers without reading the chain (an active instance it read before), or
 * undefined: the transaction path asks this first, without a promise per call.
 */
export function cachedActiveInstance(
  client: PoseClientBase,
  instance: bigint,
): GetInstanceReturnType | undefined {
  const cached = client.state.instances.get(instance.toString())
  return cached?.phase === Phase.Active ? cached : undefined
}
