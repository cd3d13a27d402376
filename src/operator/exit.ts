/**
 * Leaving the pool (SPEC §4): `requestExit` stops new draws, `leave` hands over every
 * membership (an executor's longest-serving watchdog takes over), and `withdrawStake` pays the
 * stake back once no membership is left and the exit delay has passed.
 */
import { type Address, type Hex, zeroAddress } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { createChainClients } from '../chain/clients.ts'
import { poseManagerAbi, readInstance, readOperatorRecord } from '../chain/manager.ts'
import { type ClaimResult, claimPayout } from '../chain/payouts.ts'
import { TxSender } from '../chain/sender.ts'
import { Phase } from '../protocol/index.ts'

export type ExitOptions = {
  rpcUrl: string
  manager: Address
  privateKey: Hex
  log?: (line: string) => void
  /**
   * Leave also instances of which the operator is the last live member while they hold coins:
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
 * except (unless `force`) one it is the last live member of while it holds coins: nobody would
 * take over, and the instance would freeze with its users' coins. Such an instance is `kept`;
 * once a refill drew another member (any operator's node refills an empty slot within about a
 * minute) or it terminated, running the exit again leaves it.
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
    const alone = info.operators.every((op) => op === account.address || op === zeroAddress)
    if (alone && LIVE_PHASES.has(info.phase) && !o.force) {
      const [deposited, withdrawn] = (await chain.publicClient.readContract({
        address: o.manager,
        abi: poseManagerAbi,
        functionName: 'balanceOfInstance',
        args: [id],
      })) as readonly [bigint, bigint]
      if (deposited > withdrawn) {
        kept.push(id)
        log(
          `kept instance ${id}: the last live member of an instance holding ${deposited - withdrawn} wei; leaving would freeze it with its coins${info.operators.length > 1 ? ' (run the exit again once a refill drew another member)' : ' (a pool of one: only its termination releases it)'}; --force leaves anyway`,
        )
        continue
      }
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
