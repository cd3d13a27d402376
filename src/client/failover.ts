/**
 * Requests to the executor that survive a change of executor (SPEC §6.8): when the executor
 * does not answer, the client follows the manager to the next one and resends the same box
 * (idempotent: a transaction by its nonce, a view call trivially).
 */
import type { Hex } from 'viem'
import { bytesToHex } from '../protocol/index.ts'
import { challengeExecutor } from './actions/challengeExecutor.ts'
import { getInstance } from './actions/getInstance.ts'
import type { PoseClientBase } from './createPoseClient.ts'
import { PoseRequestError } from './errors.ts'
import { postWhenReady } from './transport.ts'

/** Codes meaning the executor did not answer; the request may be retried elsewhere. */
const EXECUTOR_DOWN = new Set(['UNAVAILABLE', 'TIMEOUT', 'WRONG_ROLE'])
/** Consecutive failed attempts before an auto-challenging client challenges on-chain. */
const CHALLENGE_AFTER_FAILURES = 3

/**
 * Sends an encrypted request to the executor. If the executor does not answer, it follows the
 * manager to the next executor (SPEC §6.8) and resubmits the same box, which is idempotent by
 * nonce; with `autoChallenge`, it also challenges the silent executor on-chain once.
 */
export async function requestWithFailover<T>(
  client: PoseClientBase,
  instance: bigint,
  kind: 'tx' | 'view',
  box: Uint8Array,
  open: (sealed: Hex) => Promise<T>,
): Promise<T> {
  const deadline = Date.now() + client.failover.timeoutMs
  let challenged = false
  // One lost connection is not a silent executor: challenge after a request timed out at the
  // operator or after a few failed attempts.
  let failures = 0
  let info = await getInstance(client, { instance })
  for (;;) {
    if (!info.executorEndpoint) {
      // Frozen (every member gone) or terminated: nobody can serve the request.
      throw new PoseRequestError(`Instance ${instance} has no executor (phase ${info.phaseName})`, {
        code: 'WRONG_PHASE',
        details: 'A frozen instance serves nothing; a terminated one pays final balances on-chain.',
      })
    }
    try {
      const { sealed } = await postWhenReady<{ sealed: Hex }>(
        `${info.executorEndpoint}/v1/instances/${instance}/${kind}`,
        { box: bytesToHex(box) },
      )
      // A sealed rejection can also say the executor changed (WRONG_ROLE): fail over then too.
      return await open(sealed)
    } catch (e) {
      if (!(e instanceof PoseRequestError) || !EXECUTOR_DOWN.has(e.code) || Date.now() > deadline)
        throw e
      failures++
      const silent = e.code === 'TIMEOUT' || failures >= CHALLENGE_AFTER_FAILURES
      if (client.failover.autoChallenge && !challenged && silent) {
        challenged = true
        await challengeExecutor(client, { instance, payload: box }).catch(() => undefined)
      }
      await new Promise((r) => setTimeout(r, client.pollingIntervalMs))
      info = await getInstance(client, { instance, refresh: true })
    }
  }
}
