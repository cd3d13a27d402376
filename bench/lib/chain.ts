/**
 * Chain-side measurements: gas of every manager transaction found in the devnet's blocks, and
 * a poller that timestamps an instance's on-chain transitions (for recovery breakdowns).
 */
import { type Address, decodeFunctionData, type Hex } from 'viem'
import { createChainClients } from '../../src/chain/clients.ts'
import { poseManagerAbi, readInstance } from '../../src/chain/manager.ts'
import { TxSender } from '../../src/chain/sender.ts'
import { type PoseClient, privateKeyToPoseAccount } from '../../src/client/index.ts'
import type { Devnet } from '../../src/devnet/devnet.ts'

export type GasSample = {
  fn: string
  gas: number
  block: number
  ok: boolean
  /** Logs the transaction emitted (e.g. a refill that only schedules its draw emits none). */
  logs: number
  /** Bytes of the call's `payload` argument (the challenges carry one, encrypted). */
  payloadBytes?: number
  /** What the scenario was doing when it was mined (set by the caller). */
  phase?: string
}

/** Every transaction sent to `manager` in blocks [fromBlock, head], decoded, with its gas. */
export async function managerGas(
  client: PoseClient,
  manager: Address,
  fromBlock = 0n,
): Promise<GasSample[]> {
  const pc = client.publicClient
  const head = await pc.getBlockNumber({ cacheTime: 0 })
  const out: GasSample[] = []
  const lower = manager.toLowerCase()
  for (let n = fromBlock; n <= head; n++) {
    const block = await pc.getBlock({ blockNumber: n, includeTransactions: true })
    for (const tx of block.transactions) {
      if (tx.to?.toLowerCase() !== lower) continue
      let fn = 'unknown'
      let payloadBytes: number | undefined
      try {
        const call = decodeFunctionData({ abi: poseManagerAbi, data: tx.input as Hex })
        fn = call.functionName
        const inputs = poseManagerAbi.find((x) => x.type === 'function' && x.name === fn)
        const at =
          inputs && 'inputs' in inputs ? inputs.inputs.findIndex((i) => i.name === 'payload') : -1
        const payload = at >= 0 ? call.args?.[at] : undefined
        if (typeof payload === 'string') payloadBytes = (payload.length - 2) / 2
      } catch {}
      const r = await pc.getTransactionReceipt({ hash: tx.hash })
      out.push({
        fn,
        gas: Number(r.gasUsed),
        block: Number(n),
        ok: r.status === 'success',
        logs: r.logs.length,
        ...(payloadBytes !== undefined ? { payloadBytes } : {}),
      })
    }
  }
  return out
}

export type Transition = {
  at: number
  phase: string
  executorSlot: number
  watchdogMask: number
  live: number
}

/**
 * Polls the instance every `intervalMs` and records each change of phase, executor, watchdog
 * mask or number of live members, with `performance.now()` timestamps.
 */
export function watchInstance(client: PoseClient, instance: bigint, intervalMs = 50) {
  const transitions: Transition[] = []
  let stopped = false
  const loop = (async () => {
    while (!stopped) {
      try {
        const i = await readInstance(client.publicClient, client.manager, instance)
        const t: Transition = {
          at: performance.now(),
          phase: i.phaseName,
          executorSlot: i.executorSlot,
          watchdogMask: i.watchdogMask,
          live: i.operators.filter((o) => !/^0x0{40}$/.test(o)).length,
        }
        const last = transitions.at(-1)
        if (
          !last ||
          last.phase !== t.phase ||
          last.executorSlot !== t.executorSlot ||
          last.watchdogMask !== t.watchdogMask ||
          last.live !== t.live
        )
          transitions.push(t)
      } catch {}
      await new Promise((r) => setTimeout(r, intervalMs))
    }
  })()
  return {
    transitions,
    /** First time `pred` held at or after `since`. */
    firstAfter: (since: number, pred: (t: Transition) => boolean) =>
      transitions.find((t) => t.at >= since && pred(t))?.at,
    stop: async () => {
      stopped = true
      await loop
    },
  }
}

/** Sends manager transactions from a devnet operator's key (as its owner would). */
export async function operatorSender(devnet: Devnet, key: Hex): Promise<TxSender> {
  const chain = await createChainClients({
    rpcUrl: devnet.rpcUrl,
    account: privateKeyToPoseAccount(key),
    pollingIntervalMs: 50,
  })
  return new TxSender(chain.publicClient, chain.walletClient!)
}
