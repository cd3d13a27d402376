import { decodeAbiParameters, type Hash, type Hex } from 'viem'
import { poseManagerAbi, readInstance } from '../../chain/manager.ts'
import { ChainTxError } from '../../chain/sender.ts'
import {
  bytesToHex,
  Phase,
  SYSTEM_ADDRESS_HEX,
  SYSTEM_AUTHORISATION_SELECTOR,
} from '../../protocol/index.ts'
import type { PoseClientBase } from '../createPoseClient.ts'
import { PoseError, PoseRequestError } from '../errors.ts'
import { signedView } from './getNonce.ts'
import { sendTransaction } from './sendTransaction.ts'
import { withdrawFinal } from './withdrawFinal.ts'

export type WithdrawAuthorisation = { cumulative: bigint; eventIndex: bigint; signature: Hex }

export type WithdrawParameters = {
  instance: bigint
  /** Coins to take out of the world first (sent to the system contract); omit to only claim. */
  amount?: bigint
  /** Submit the authorisation on-chain (default true); false returns it for someone else. */
  submit?: boolean
}

export type WithdrawReturnType = WithdrawAuthorisation & { hash?: Hash; amount?: bigint }

/**
 * The caller's signed, cumulative withdrawal authorisation (over released state only).
 *
 * @example
 * ```ts
 * const auth = await getWithdrawAuthorisation(client, { instance })
 * ```
 */
export async function getWithdrawAuthorisation(
  client: PoseClientBase,
  p: { instance: bigint },
): Promise<WithdrawAuthorisation> {
  // Members authorise released state only; while an update is being replicated they answer
  // NOT_READY, which clears within an ack round trip (or a watchdog challenge).
  const deadline = Date.now() + client.failover.timeoutMs
  let r: Awaited<ReturnType<typeof signedView>>
  for (;;) {
    try {
      r = await signedView(client, {
        instance: p.instance,
        to: SYSTEM_ADDRESS_HEX,
        data: bytesToHex(SYSTEM_AUTHORISATION_SELECTOR),
      })
      break
    } catch (e) {
      if (!(e instanceof PoseRequestError) || e.code !== 'NOT_READY' || Date.now() > deadline)
        throw e
      await new Promise((res) => setTimeout(res, client.pollingIntervalMs))
    }
  }
  if (r.status !== 'success') throw new PoseError(`withdrawal authorisation failed (${r.status})`)
  const [cumulative, eventIndex, signature] = decodeAbiParameters(
    [{ type: 'uint256' }, { type: 'uint64' }, { type: 'bytes' }],
    r.returnData,
  )
  return { cumulative, eventIndex, signature }
}

/**
 * Withdraws coins: burns `amount` in the world (a transaction to the system contract), asks a
 * member enclave for the cumulative authorisation and submits it to the manager, which pays
 * the difference to what was already withdrawn. Once the instance terminated, withdraws the
 * caller's final balance instead (`withdrawFinal`; `amount` must then be omitted).
 *
 * @example
 * ```ts
 * await withdraw(client, { instance, amount: parseEther('0.5') })
 * ```
 */
export async function withdraw(
  client: PoseClientBase,
  p: WithdrawParameters,
): Promise<WithdrawReturnType> {
  if (p.amount !== undefined && (typeof p.amount !== 'bigint' || p.amount < 0n))
    throw new PoseError(`withdraw: amount ${p.amount} is not a non-negative bigint`, {
      code: 'OUT_OF_RANGE',
      details: 'Give the coins to take out of the world (0 or omitted only claims).',
    })
  const { phase } = await readInstance(client.publicClient, client.manager, p.instance)
  if (phase === Phase.Terminated) {
    if (p.amount !== undefined && p.amount > 0n)
      throw new PoseError(
        `Instance ${p.instance} terminated: its final balances are withdrawn whole`,
        {
          details: 'Omit `amount`; the whole final balance is paid.',
        },
      )
    if (p.submit === false)
      throw new PoseError(
        `Instance ${p.instance} terminated: there is no authorisation to hand over`,
        {
          details: 'Anyone can submit withdrawFinal with the proof from getFinalBalances.',
        },
      )
    const r = await withdrawFinal(client, { instance: p.instance })
    return {
      cumulative: r.cumulative,
      eventIndex: 0n,
      signature: '0x',
      hash: r.hash,
      amount: r.amount,
    }
  }
  if (p.amount !== undefined && p.amount > 0n) {
    const r = await sendTransaction(client, {
      instance: p.instance,
      to: SYSTEM_ADDRESS_HEX,
      value: p.amount,
      data: '0x3ccfd60b', // withdraw()
      gasLimit: 100_000n,
    })
    if (r.status !== 'success')
      throw new PoseError(`withdraw(${p.amount}) failed in the world (${r.status})`)
  }
  // A stale authorisation is asked for again until the failover's deadline: the executor's chain
  // view runs its operator's confirmations behind, so a burst of events may keep naming events
  // the manager's history has left until the burst is that deep.
  const deadline = Date.now() + client.failover.timeoutMs
  for (let attempt = 1; ; attempt++) {
    if (attempt > 1) await new Promise((r) => setTimeout(r, client.pollingIntervalMs))
    const auth = await getWithdrawAuthorisation(client, { instance: p.instance })
    if (p.submit === false) return auth
    try {
      const { hash } = await client.sender.write({
        address: client.manager,
        abi: poseManagerAbi,
        functionName: 'withdraw',
        args: [
          p.instance,
          client.account.address,
          auth.cumulative,
          auth.eventIndex,
          auth.signature,
        ],
      })
      return { ...auth, hash }
    } catch (e) {
      // The authorisation names an event the manager's 32-event history no longer holds (a
      // busy instance, or deposits landing meanwhile): a fresh one names a later event.
      // Named in the simulation's revert, or in the account of a mined one's.
      const stale = e instanceof ChainTxError && /PoseManager_StaleEventIndex/.test(e.reason)
      if (!stale || Date.now() > deadline) throw e
    }
  }
}
