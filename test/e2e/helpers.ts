/** Shared steps of the end-to-end tests: clients, member digests, crashes and anvil's clock. */
import type { Address } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { readInstance, readOperator } from '../../src/chain/manager.ts'
import {
  type CreatePoseClientParameters,
  createPoseClient,
  type PoseClient,
} from '../../src/client/index.ts'
import { anvilRpc } from '../../src/devnet/anvil.ts'
import { DEFAULT_MANAGER_PARAMS } from '../../src/devnet/deploy.ts'
import type { Devnet } from '../../src/devnet/devnet.ts'

/**
 * Polls `check` until it holds; throws naming `what` after `timeoutMs`. A check that throws
 * counts as "not yet" (a member that has not seen its refill yet answers UNKNOWN_INSTANCE);
 * the last such error is part of the timeout's message.
 */
export async function waitFor(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  for (;;) {
    try {
      if (await check()) return
    } catch (e) {
      last = e
    }
    if (Date.now() > deadline) {
      const why =
        last === undefined
          ? ''
          : `; last error: ${last instanceof Error ? last.message : String(last)}`
      throw new Error(`timed out waiting for ${what}${why}`)
    }
    await new Promise((r) => setTimeout(r, 100))
  }
}

/** One SDK client per devnet user key. */
export function userClients(
  devnet: Devnet,
  extra: Partial<Omit<CreatePoseClientParameters, 'rpcUrl' | 'manager' | 'account'>> = {},
): Promise<PoseClient[]> {
  return Promise.all(
    devnet.userKeys.map((k) =>
      createPoseClient({
        rpcUrl: devnet.rpcUrl,
        manager: devnet.manager,
        account: privateKeyToAccount(k),
        pollingIntervalMs: 100,
        ...extra,
      }),
    ),
  )
}

export type MemberDigest = { slot: number; role: string; seq: string; digest: string }

/**
 * The role, seq and keyed state digest each live member of `instance` reports; each answer
 * bounded by `timeoutMs` when given. Throws if a member does not serve them.
 */
export async function memberDigests(
  devnet: Devnet,
  client: PoseClient,
  instance: bigint,
  timeoutMs?: number,
): Promise<MemberDigest[]> {
  const info = await readInstance(client.publicClient, devnet.manager, instance)
  const out: MemberDigest[] = []
  for (const [slot, op] of info.operators.entries()) {
    if (/^0x0{40}$/.test(op)) continue
    const { endpoint } = await readOperator(client.publicClient, devnet.manager, op)
    const res = await fetch(
      `${endpoint}/v1/instances/${instance}/digest`,
      timeoutMs === undefined ? {} : { signal: AbortSignal.timeout(timeoutMs) },
    )
    const body = await res.text()
    const d = (res.ok ? JSON.parse(body) : undefined) as Omit<MemberDigest, 'slot'> | undefined
    if (typeof d?.digest !== 'string' || typeof d.seq !== 'string' || typeof d.role !== 'string')
      throw new Error(
        `slot ${slot} (${endpoint}) gave no digest: HTTP ${res.status} ${body.slice(0, 200)}`,
      )
    out.push({ slot, ...d })
  }
  return out
}

/** SIGKILLs the enclave and the operator process of `operator`. */
export async function killMember(devnet: Devnet, operator: Address): Promise<void> {
  const idx = devnet.operators.findIndex((o) => o.address === operator)
  if (idx < 0) throw new Error(`${operator} is not a devnet operator`)
  devnet.killEnclave(idx)
  await devnet.killOperator(idx, 'SIGKILL')
}

/** Moves anvil's clock past the challenge timeout Δ and mines a block. */
export async function passDelta(devnet: Devnet): Promise<void> {
  await anvilRpc(devnet.rpcUrl, 'evm_increaseTime', [Number(DEFAULT_MANAGER_PARAMS.delta) + 1])
  await anvilRpc(devnet.rpcUrl, 'evm_mine', [])
}
