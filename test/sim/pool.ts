/** An instance's pool as the simulator sees it: each live member's slot and operator index. */
import { readInstance, readOperator } from '../../src/chain/manager.ts'
import type { PoseClient } from '../../src/client/index.ts'
import type { Devnet } from '../../src/devnet/devnet.ts'

export type Member = { slot: number; i: number }

/** How long the simulator waits for one answer of an operator's HTTP API. */
export const HTTP_TIMEOUT_MS = 10_000

/** The instance's state on-chain and its live members (the executor, the watchdogs). */
export async function poolMembers(devnet: Devnet, client: PoseClient, instance: bigint) {
  const info = await readInstance(client.publicClient, devnet.manager, instance)
  const live: Member[] = info.operators
    .map((op, slot) => ({ slot, i: devnet.operators.findIndex((o) => o.address === op) }))
    .filter((m) => m.i >= 0)
  return {
    info,
    live,
    executor: live.find((m) => m.slot === info.executorSlot),
    watchdogs: live.filter((m) => m.slot !== info.executorSlot),
  }
}

/** A live member's state as its enclave reports it. */
export type MemberState = { slot: number; role: string; seq: string; digest: string }

/**
 * The role, seq and state digest each live member serves, by slot (as test/e2e's
 * `memberDigests`, with each answer bounded by `HTTP_TIMEOUT_MS`): throws if one does not
 * serve them.
 */
export async function memberStates(
  devnet: Devnet,
  client: PoseClient,
  instance: bigint,
): Promise<MemberState[]> {
  const info = await readInstance(client.publicClient, devnet.manager, instance)
  const out: MemberState[] = []
  for (const [slot, op] of info.operators.entries()) {
    if (/^0x0{40}$/.test(op)) continue
    const { endpoint } = await readOperator(client.publicClient, devnet.manager, op)
    const res = await fetch(`${endpoint}/v1/instances/${instance}/digest`, {
      signal: AbortSignal.timeout(HTTP_TIMEOUT_MS),
    })
    const body = await res.text()
    const d = (res.ok ? JSON.parse(body) : undefined) as Omit<MemberState, 'slot'> | undefined
    if (typeof d?.digest !== 'string' || typeof d.seq !== 'string' || typeof d.role !== 'string')
      throw new Error(
        `slot ${slot} (${endpoint}) gave no digest: HTTP ${res.status} ${body.slice(0, 200)}`,
      )
    out.push({ slot, role: d.role, seq: d.seq, digest: d.digest })
  }
  return out
}
