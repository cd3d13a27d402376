/**
 * Leaving the pool (SPEC §4): `requestExit` stops new draws, `leave` hands over every
 * membership (an executor's longest-serving watchdog takes over), and `withdrawStake` pays the
 * stake back once no membership is left and the exit delay has passed.
 */
import { type Address, type Hex, zeroAddress } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { createChainClients } from '../chain/clients.ts'
import {
  type InstanceInfo,
  poseManagerAbi,
  readInstance,
  readOperator,
  readOperatorRecord,
} from '../chain/manager.ts'
import { type ClaimResult, claimPayout } from '../chain/payouts.ts'
import { TxSender } from '../chain/sender.ts'
import { Phase } from '../protocol/index.ts'

export type ExitOptions = {
  rpcUrl: string
  manager: Address
  privateKey: Hex
  log?: (line: string) => void
  /**
   * Leave also instances `keepReason` keeps (holding coins, nobody left able to serve them):
   * each freezes with its coins (only withdrawals already authorised are then paid).
   */
  force?: boolean
}

/** Phases in which an instance serves (a member's departure hands its role over). */
const LIVE_PHASES = new Set<number>([
  Phase.Active,
  Phase.ExecutorChallenged,
  Phase.WatchdogsChallenged,
])

async function connect(o: ExitOptions) {
  const account = privateKeyToAccount(o.privateKey)
  const chain = await createChainClients({ rpcUrl: o.rpcUrl, account, pollingIntervalMs: 100 })
  return { account, chain, sender: new TxSender(chain.publicClient, chain.walletClient!) }
}

/**
 * Requests exit (if not yet requested) and leaves every instance the operator is a member of,
 * except (unless `force`) one whose departure would leave nobody able to serve it while it holds
 * coins (`keepReason`): it would freeze with its users' coins. Such an instance is `kept`; once
 * a refill drew another member and that member holds the state, or the instance terminated,
 * running the exit again leaves it.
 */
export async function exitPool(
  o: ExitOptions,
): Promise<{ left: bigint[]; kept: bigint[]; readyAt: bigint }> {
  const log = o.log ?? (() => undefined)
  const { account, chain, sender } = await connect(o)
  const me = await readOperatorRecord(chain.publicClient, o.manager, account.address)
  if (!me.registered)
    throw new Error(`operator ${account.address} is not registered on ${o.manager}`)
  if (!me.exiting) {
    await sender.write({ address: o.manager, abi: poseManagerAbi, functionName: 'requestExit' })
    log('exit requested: no longer drawn into new pools')
  }
  const count = (await chain.publicClient.readContract({
    address: o.manager,
    abi: poseManagerAbi,
    functionName: 'instanceCount',
  })) as bigint
  const left: bigint[] = []
  const kept: bigint[] = []
  for (let id = 1n; id <= count; id++) {
    const info = await readInstance(chain.publicClient, o.manager, id)
    if (!info.operators.includes(account.address)) continue
    const why = o.force
      ? undefined
      : await keepReason(info, account.address, {
          coins: async () => {
            const [deposited, withdrawn] = (await chain.publicClient.readContract({
              address: o.manager,
              abi: poseManagerAbi,
              functionName: 'balanceOfInstance',
              args: [id],
            })) as readonly [bigint, bigint]
            return deposited - withdrawn
          },
          holdsState: async (op) => {
            const { endpoint } = await readOperator(chain.publicClient, o.manager, op)
            return memberHoldsState(endpoint, id)
          },
        })
    if (why) {
      kept.push(id)
      log(`kept instance ${id}: ${why}; --force leaves anyway`)
      continue
    }
    await sender.write({
      address: o.manager,
      abi: poseManagerAbi,
      functionName: 'leave',
      args: [id],
    })
    left.push(id)
    log(
      `left instance ${id} (${info.operators[info.executorSlot] === account.address ? 'executor: handed over' : 'watchdog'})`,
    )
  }
  const after = await readOperatorRecord(chain.publicClient, o.manager, account.address)
  const delay = (await chain.publicClient.readContract({
    address: o.manager,
    abi: poseManagerAbi,
    functionName: 'exitDelay',
  })) as bigint
  return { left, kept, readyAt: after.exitRequestedAt + delay }
}

/** What `keepReason` reads: the coins an instance holds, and whether a member holds its state. */
export type KeepReads = {
  coins: () => Promise<bigint>
  holdsState: (operator: Address) => Promise<boolean>
}

/**
 * Why `me` should not leave the instance `info` yet (undefined: it may). In a live phase, while
 * the instance holds coins, its departure must leave a member that can serve: another live
 * member, and, when `me` is the executor (a member takes over), every other member holding the
 * state (a newcomer whose state has not arrived cannot serve, and the executor's enclave drops
 * its own when it leaves). Otherwise the instance freezes with its users' coins.
 */
export async function keepReason(
  info: InstanceInfo,
  me: Address,
  reads: KeepReads,
): Promise<string | undefined> {
  if (!LIVE_PHASES.has(info.phase)) return undefined
  const others = info.operators.filter((op) => op !== me && op !== zeroAddress)
  const coins = await reads.coins()
  if (coins <= 0n) return undefined
  const holding = `an instance holding ${coins} wei; leaving would freeze it with its coins`
  if (others.length === 0)
    return info.operators.length > 1
      ? `the last live member of ${holding} (run the exit again once a refill drew another member and handed it the state)`
      : `the only member of ${holding} (a pool of one: only its termination releases it)`
  if (info.operators[info.executorSlot] !== me) return undefined
  for (const op of others) {
    const holds = await reads.holdsState(op).catch(() => false)
    if (!holds)
      return `its executor, and member ${op} does not show the state yet (its endpoint does not answer it holds one), in ${holding} if that member took over (run the exit again later)`
  }
  return undefined
}

/** How long the exit waits for a member's endpoint to say whether it holds an instance's state. */
const DIGEST_TIMEOUT_MS = 5_000

/** Whether the member at `endpoint` says it holds a state of `instance` (a non-zero digest). */
async function memberHoldsState(endpoint: string, instance: bigint): Promise<boolean> {
  const res = await fetch(`${endpoint}/v1/instances/${instance}/digest`, {
    signal: AbortSignal.timeout(DIGEST_TIMEOUT_MS),
  })
  if (!res.ok) return false
  const body = (await res.json()) as { digest?: unknown }
  return (
    typeof body.digest === 'string' &&
    /^0x[0-9a-f]{64}$/i.test(body.digest) &&
    !/^0x0{64}$/.test(body.digest)
  )
}

/**
 * Claims what the manager credited the operator's account: the challenge fees its executor
 * earned by answering (a watchdog's slash rewards nobody: decision 0034).
 */
export async function claimOperatorPayout(o: ExitOptions): Promise<ClaimResult> {
  const { chain, sender } = await connect(o)
  return claimPayout(chain.publicClient, sender, o.manager)
}

/** Withdraws the stake after the exit delay; returns the amount paid. */
export async function withdrawStake(o: ExitOptions): Promise<bigint> {
  const { account, chain, sender } = await connect(o)
  const me = await readOperatorRecord(chain.publicClient, o.manager, account.address)
  await sender.write({ address: o.manager, abi: poseManagerAbi, functionName: 'withdrawStake' })
  return me.stake
}
