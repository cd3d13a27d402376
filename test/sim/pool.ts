/** An instance's pool as the simulator sees it: each live member's slot and operator index. */
import { readInstance } from '../../src/chain/manager.ts'
import type { PoseClient } from '../../src/client/index.ts'
import type { Devnet } from '../../src/devnet/devnet.ts'
import { type MemberDigest, memberDigests } from '../e2e/helpers.ts'

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
export type MemberState = MemberDigest

/** The role, seq and state digest each live member serves, each answer bounded by `HTTP_TIMEOUT_MS`. */
export const memberStates = (devnet: Devnet, client: PoseClient, instance: bigint) =>
  memberDigests(devnet, client, instance, HTTP_TIMEOUT_MS)
