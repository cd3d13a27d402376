/** The simulator's convergence check at the end of a scenario. */
import { waitFor } from '../e2e/helpers.ts'

/** What the check reads of the instance and its members. */
export type Members = {
  /** The instance's phase on-chain. */
  phase: () => Promise<string>
  /** The state digest each live member serves (throws if one does not serve it). */
  digests: () => Promise<Array<{ slot: number; seq: string; digest: string }>>
}

/**
 * Waits up to `timeoutMs` until the instance is active and every live member holds the same
 * state. A member that is restarting or catching up may not serve its digest yet, and a read
 * can fail while the chain reorganises: both mean "not yet", with the reason kept. Throws
 * `members did not converge (<last reason>)` at the end of the wait.
 */
export async function converge(members: Members, timeoutMs: number): Promise<void> {
  let last = ''
  try {
    await waitFor(
      'members to agree',
      async () => {
        try {
          const phase = await members.phase()
          if (phase !== 'Active') {
            last = `phase ${phase}`
            return false
          }
          const ds = await members.digests()
          last = ds.map((d) => `${d.slot}:${d.seq}:${d.digest.slice(0, 10)}`).join(' ')
          return ds.length > 0 && new Set(ds.map((d) => `${d.seq}:${d.digest}`)).size === 1
        } catch (e) {
          last = (e as Error).message.split('\n')[0]!.slice(0, 300)
          return false
        }
      },
      timeoutMs,
    )
  } catch {
    throw new Error(`members did not converge (${last})`)
  }
}
