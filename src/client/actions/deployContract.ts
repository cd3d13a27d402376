import {
  type Abi,
  type ContractConstructorArgs,
  decodeEventLog,
  encodeDeployData,
  type Hash,
  type Hex,
} from 'viem'
import { poseManagerAbi, readActivation, readOperatorRecord } from '../../chain/manager.ts'
import {
  BOX_CONTEXT,
  boxSeal,
  bytesToHex,
  EventKind,
  encodeDeployRequest,
  hexToBytes,
  initCommitment,
  instanceAad,
  Phase,
} from '../../protocol/index.ts'
import type { PoseClientBase } from '../createPoseClient.ts'
import { DeployContractError, PoseError } from '../errors.ts'
import { postWhenReady, RETRY_UNAVAILABLE } from '../transport.ts'
import { getInstance } from './getInstance.ts'

export type DeployContractParameters<abi extends Abi = Abi> = {
  abi: abi
  /** Creation bytecode, e.g. `bytecode.object` of a Foundry artifact or `evm.bytecode.object` of solc. */
  bytecode: Hex
  args?: ContractConstructorArgs<abi>
  /** Number of watchdogs `s` (the pool has s + 1 enclaves from distinct operators). */
  watchdogCount: number
  /** Called with a short description of each step (creation, pool draw, genesis, activation). */
  onProgress?: (step: string) => void
  timeoutMs?: number
}

export type DeployContractReturnType = {
  instance: bigint
  contractEncryptionKey: Hex
  genesisDigest: Hex
  createTxHash: Hash
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/**
 * Creates an instance on the manager, lets the chain draw its pool, sends the code and
 * constructor arguments to the executor enclave (encrypted to its key) and waits until the
 * instance is active.
 *
 * @example
 * ```ts
 * const { instance } = await deployContract(client, { abi, bytecode, args: [1_000_000n], watchdogCount: 2 })
 * ```
 */
export async function deployContract<const abi extends Abi>(
  client: PoseClientBase,
  p: DeployContractParameters<abi>,
): Promise<DeployContractReturnType> {
  const progress = p.onProgress ?? (() => undefined)
  const deadline = Date.now() + (p.timeoutMs ?? 120_000)
  const initCode = hexToBytes(
    encodeDeployData({ abi: p.abi, bytecode: p.bytecode, args: p.args } as never),
    'initCode',
  )
  const fee = (await client.publicClient.readContract({
    address: client.manager,
    abi: poseManagerAbi,
    functionName: 'creationFee',
  })) as bigint

  progress('creating instance on-chain')
  const { hash, receipt } = await client.sender.write({
    address: client.manager,
    abi: poseManagerAbi,
    functionName: 'createContract',
    args: [p.watchdogCount, bytesToHex(initCommitment(initCode))],
    value: fee,
  })
  let instance: bigint | undefined
  for (const log of receipt.logs) {
    try {
      const ev = decodeEventLog({ abi: poseManagerAbi, data: log.data, topics: log.topics }) as {
        eventName: string
        args: Record<string, unknown>
      }
      if (ev.eventName === 'InstanceEvent' && Number(ev.args.kind) === EventKind.Created)
        instance = ev.args.id as bigint
    } catch {}
  }
  if (instance === undefined)
    throw new PoseError('createContract succeeded but emitted no Created event')
  try {
    return await activate(client, instance, initCode, deadline, progress, {
      hash,
      blockNumber: receipt.blockNumber,
    })
  } catch (e) {
    // Past its creation, a deploy's failure names the instance (its fee is paid).
    throw new DeployContractError(instance, hash, e)
  }
}

/** Draws the pool of the created `instance`, sends it the code and waits for its activation. */
async function activate(
  client: PoseClientBase,
  instance: bigint,
  initCode: Uint8Array,
  deadline: number,
  progress: (step: string) => void,
  created: { hash: Hex; blockNumber: bigint },
): Promise<DeployContractReturnType> {
  progress(`instance ${instance}: waiting for a later block to draw the pool`)
  for (;;) {
    const info = await getInstance(client, { instance, refresh: true })
    if (info.phase !== Phase.Drawing) break
    const head = await client.publicClient.getBlockNumber({ cacheTime: 0 })
    if (head > info.drawBlock) {
      try {
        await client.sender.write({
          address: client.manager,
          abi: poseManagerAbi,
          functionName: 'drawPool',
          args: [instance],
        })
      } catch (e) {
        // Anyone may draw the pool: a draw by someone else landing first makes this one
        // revert, and the instance goes on as if this one had drawn it.
        const now = await getInstance(client, { instance, refresh: true })
        if (now.phase === Phase.Drawing) throw e
      }
      continue
    }
    if (Date.now() > deadline)
      throw new PoseError(`no block after ${info.drawBlock} was mined in time to draw its pool`)
    await sleep(client.pollingIntervalMs)
  }

  const info = await getInstance(client, { instance, refresh: true })
  progress(
    `instance ${instance}: pool drawn (${info.signers.length} enclaves); sending code to the executor`,
  )
  const executorOperator = info.operators[info.executorSlot]!
  const execKey = (await readOperatorRecord(client.publicClient, client.manager, executorOperator))
    .encryptionKey
  const { box } = boxSeal({
    recipientPublicKey: hexToBytes(execKey, 'encryptionKey', 32),
    plaintext: encodeDeployRequest({ instance, initCode }),
    context: BOX_CONTEXT.deploy,
    aad: instanceAad(instance),
  })
  // The executor's operator may not have seen the pool draw yet, or the connection dropped: a
  // repeated deploy answers with the same genesis, so it is retried until the deadline.
  // Its answer (the genesis it made) only says the executor took the code: what is returned
  // below is what its enclave signed on-chain, which its host cannot change.
  await postWhenReady<unknown>(
    `${info.executorEndpoint}/v1/instances/${instance}/deploy`,
    { box: bytesToHex(box) },
    {
      waitMs: Math.max(0, deadline - Date.now()),
      retry: RETRY_UNAVAILABLE,
      timeoutMs: client.failover.requestTimeoutMs,
    },
  )

  progress(`instance ${instance}: genesis sent to watchdogs; waiting for activation`)
  for (;;) {
    const now = await getInstance(client, { instance, refresh: true })
    if (now.phase === Phase.Active) break
    // Its executor left before activating it: nobody else holds the genesis (the manager
    // credits the creation fee back to the creator, to `claim`).
    if (now.phase === Phase.Frozen)
      throw new PoseError(
        'it was frozen before activation (its executor left the pool); create it again',
      )
    if (Date.now() > deadline)
      throw new PoseError(`it was not activated in time (phase ${now.phaseName})`)
    await sleep(client.pollingIntervalMs)
  }
  const activation = await readActivation(client.publicClient, client.manager, instance, {
    fromBlock: created.blockNumber,
  })
  if (!activation) throw new PoseError('it is active but its activation was not found')
  progress(`instance ${instance}: active`)
  return {
    instance,
    createTxHash: created.hash,
    contractEncryptionKey: activation.contractEncryptionKey,
    genesisDigest: activation.genesisDigest,
  }
}
