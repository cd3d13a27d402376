/**
 * Requests to the executor that survive a change of executor (SPEC §6.8): when the executor
 * does not answer, the client follows the manager to the next one and resends the same box
 * (idempotent: a transaction by its nonce, a view call trivially).
 */
import { decodeAbiParameters, getAbiItem } from 'viem'
import { poseManagerAbi } from '../chain/manager.ts'
import { EventKind, hexToBytes, Phase, ProtocolError } from '../protocol/index.ts'
import { submitChallenge } from './actions/challengeExecutor.ts'
import { cachedActiveInstance, getInstance } from './actions/getInstance.ts'
import type { PoseClientBase } from './createPoseClient.ts'
import { PoseRequestError } from './errors.ts'
import { getJson, requestSealed } from './transport.ts'

/** Codes meaning the executor did not answer; the request may be retried elsewhere. */
const EXECUTOR_DOWN = new Set(['UNAVAILABLE', 'TIMEOUT', 'WRONG_ROLE'])
/** Consecutive failed attempts before an auto-challenging client challenges on-chain. */
const CHALLENGE_AFTER_FAILURES = 3

const instanceEvent = getAbiItem({ abi: poseManagerAbi, name: 'InstanceEvent' })

/** Where a log sits in the chain. */
type LogPosition = { blockNumber: bigint; logIndex: number }

/**
 * The executor's on-chain answers (`respondExecutor`) after `after` (the client's challenge): an
 * executor that users cannot reach but the chain can answers a challenge whose payload is a
 * request box with the sealed answer to it, so the client reads its answer there.
 */
async function onChainAnswers(
  client: PoseClientBase,
  instance: bigint,
  after: LogPosition,
): Promise<Uint8Array[]> {
  const logs = await client.publicClient.getLogs({
    address: client.manager,
    event: instanceEvent,
    args: { id: instance },
    fromBlock: after.blockNumber,
    toBlock: 'latest',
  })
  return logs
    .filter(
      (l) =>
        (l.blockNumber! > after.blockNumber || (l.logIndex ?? 0) > after.logIndex) &&
        Number(l.args.kind) === EventKind.ExecutorResponded &&
        l.args.data,
    )
    .map((l) => hexToBytes(decodeAbiParameters([{ type: 'bytes' }], l.args.data!)[0], 'answer'))
}

/**
 * The first of the executor's on-chain answers that is this request's final answer: its
 * receipt, or a rejection (thrown). Answers to other users' challenges do not open with this
 * request's key and are skipped; so is a rejection that says to resubmit (an executor that
 * resynchronised while the challenge was open abandons the request with `UNAVAILABLE`):
 * `{ resubmit: true }` then says the request must be sent again.
 */
export async function firstFinalAnswer<T>(
  answers: readonly Uint8Array[],
  open: (sealed: Uint8Array) => Promise<T>,
): Promise<{ value: T } | { resubmit: true } | undefined> {
  let resubmit = false
  for (const sealed of answers) {
    try {
      return { value: await open(sealed) }
    } catch (err) {
      if (err instanceof ProtocolError && err.code === 'DECRYPTION_FAILED') continue
      if (!(err instanceof PoseRequestError && EXECUTOR_DOWN.has(err.code))) throw err
      resubmit = true
    }
  }
  return resubmit ? { resubmit } : undefined
}

/**
 * What the executor's on-chain answers since this client's challenge say about its request.
 * Challenges are open one at a time and a promoted executor inherits the open one, so the first
 * answer after the challenge answers it. A receipt or final rejection is returned (or thrown).
 * An answer that is not this request's final answer — a rejection that says to resubmit, or the
 * liveness answer an executor gives a payload that is not a request box (or a view call's box
 * while it confirms its state after a restart) — closed the challenge: `{ again: true }`, the
 * client may challenge again if it still cannot reach the executor (simulator seed 110: a
 * view's challenge was answered by an executor that crashed right after, and the client never
 * challenged again). No answer yet: undefined.
 */
export async function challengeOutcome<T>(
  answers: readonly Uint8Array[],
  open: (sealed: Uint8Array) => Promise<T>,
): Promise<{ value: T } | { again: true } | undefined> {
  const found = await firstFinalAnswer(answers, open)
  if (found && 'value' in found) return found
  return found || answers.length > 0 ? { again: true } : undefined
}

/**
 * Whether the executor's watchdog round is open now, before its deadline. Read after an
 * unanswered request, which may have waited since before the round opened. Past the deadline
 * the executor should have removed the silent watchdogs and answered; a challenge then gets Δ
 * from now (decision 0006), so a round its executor never closes does not shield it.
 */
async function inWatchdogRound(client: PoseClientBase, instance: bigint): Promise<boolean> {
  try {
    const info = await getInstance(client, { instance, refresh: true })
    if (info.phase !== Phase.WatchdogsChallenged) return false
    const head = await client.publicClient.getBlock()
    return head.timestamp <= info.watchdogDeadline
  } catch {
    return false
  }
}

const sameAddress = (a: string, b: string) => a.toLowerCase() === b.toLowerCase()

/** Health checks in a row a host must leave unanswered to count as hung. */
const HUNG_AFTER_MISSES = 2

/**
 * Watches the hosts of pending requests. A host that is stopped, frozen or wedged still has its
 * connections accepted by the kernel, so a request alone would only fail after
 * `requestTimeoutMs` (35 s by default, which a busy enclave may need). Its operator answers
 * `/v1/health` without the enclave, so a health check left unanswered (or refused) for
 * `probeMs`, twice in a row, says the host itself is gone: `hung` then rejects with TIMEOUT, as
 * an unanswered request does. A host whose operator answers keeps its requests waiting.
 *
 * One watch per host and check length, shared by every request pending there: checks start
 * `probeMs` after a request finds none running and follow each other every `probeMs` while
 * answered, at once after a miss, until no request waits. However many requests a process has
 * pending on one host (hundreds, for a service acting for many users), the host gets one check
 * at a time, and each request costs an entry in a set instead of timers of its own. A request
 * that joins while checks are already missing fails with the others: at most 3 × `probeMs`
 * after it was sent.
 *
 * The watch holds each pending request's rejection and lets go of it when the request settles.
 * (It once raced every request against one promise of its own that only a hung host settles: a
 * pending promise keeps every reaction added to it, so under steady load, when the watch never
 * went idle, it kept every answer its requests ever got.)
 */
class HostWatch {
  /** The rejections of the requests pending on this host. */
  private readonly waiters = new Set<(e: PoseRequestError) => void>()
  private misses = 0
  private timer: NodeJS.Timeout | undefined
  private probing = false

  constructor(
    private readonly endpoint: string,
    private readonly probeMs: number,
    private readonly onIdle: (w: HostWatch) => void,
  ) {}

  /** Requests pending on this host (tests). */
  get pending(): number {
    return this.waiters.size
  }

  /**
   * Counts a pending request: `fail` is called if its host is found hung meanwhile. Returns
   * what the request calls once it settled.
   */
  join(fail: (e: PoseRequestError) => void): () => void {
    this.waiters.add(fail)
    if (this.timer === undefined && !this.probing) this.schedule(this.probeMs)
    return () => this.leave(fail)
  }

  private leave(fail: (e: PoseRequestError) => void): void {
    // Failed with the others already, or left before.
    if (!this.waiters.delete(fail) || this.waiters.size > 0) return
    clearTimeout(this.timer)
    this.timer = undefined
    this.misses = 0
    if (!this.probing) this.onIdle(this)
  }

  private schedule(ms: number): void {
    this.timer = setTimeout(() => void this.probe(), ms)
  }

  private async probe(): Promise<void> {
    this.timer = undefined
    if (this.waiters.size === 0) return
    this.probing = true
    try {
      await getJson(`${this.endpoint}/v1/health`, this.probeMs)
      this.misses = 0
    } catch (e) {
      const answered = e instanceof PoseRequestError && !EXECUTOR_DOWN.has(e.code)
      this.misses = answered ? 0 : this.misses + 1
    } finally {
      this.probing = false
    }
    if (this.misses >= HUNG_AFTER_MISSES) {
      const error = new PoseRequestError(
        `Operator at ${this.endpoint} left ${this.misses} health checks unanswered for ${this.probeMs} ms each while a request was pending`,
        { code: 'TIMEOUT', details: 'its host is stopped, frozen or cut off' },
      )
      const failed = [...this.waiters]
      this.waiters.clear()
      for (const fail of failed) fail(error)
    }
    // Also after failing them all: the watch goes idle with its count of misses reset.
    if (this.waiters.size === 0) {
      this.misses = 0
      this.onIdle(this)
      return
    }
    // After a miss the next check follows at once: a hung host is found 3 × probeMs after the
    // first request that found no check running was sent.
    this.schedule(this.misses > 0 ? 0 : this.probeMs)
  }
}

const hostWatches = new Map<string, HostWatch>()

/** The watch of `endpoint`'s host with checks of `probeMs`, made when none is running. */
function hostWatch(endpoint: string, probeMs: number): HostWatch {
  const key = `${probeMs} ${endpoint}`
  let w = hostWatches.get(key)
  if (!w) {
    w = new HostWatch(endpoint, probeMs, (idle) => {
      if (hostWatches.get(key) === idle) hostWatches.delete(key)
    })
    hostWatches.set(key, w)
  }
  return w
}

/**
 * Settles as `pending`, the request sent to `endpoint`, or rejects with TIMEOUT once the host's
 * watch (checks of `probeMs`) finds it hung. A request abandoned so may still settle later;
 * nobody awaits it then.
 */
export function whileHostAnswers<T>(
  pending: Promise<T>,
  endpoint: string,
  probeMs: number,
): Promise<T> {
  const watch = hostWatch(endpoint, probeMs)
  return new Promise<T>((resolve, reject) => {
    const leave = watch.join(reject)
    pending.then(
      (v) => {
        leave()
        resolve(v)
      },
      (e) => {
        leave()
        reject(e)
      },
    )
  })
}

/** Requests pending on the watch of `endpoint`'s host with checks of `probeMs` (tests). */
export function hostWatchPending(endpoint: string, probeMs: number): number {
  return hostWatches.get(`${probeMs} ${endpoint}`)?.pending ?? 0
}

/**
 * Errors `requestWithFailover` threw once an attempt of the same request went unanswered (that
 * one included): that attempt may have been executed, whatever the last one was told.
 */
const afterUnanswered = new WeakSet<object>()

/**
 * Whether a request that failed with `e` (from `requestWithFailover`) may still have been
 * executed: an attempt of it went unanswered, however the request ended then (a refusal, the
 * deadline, an instance left without executor, a chain read that kept failing). A transaction
 * refused on its first answer was not.
 */
export function mayHaveBeenExecuted(e: unknown): boolean {
  return typeof e === 'object' && e !== null && afterUnanswered.has(e)
}

/**
 * An answer that cannot be opened or read (garbage from the executor's host: the enclave's own
 * answers always open) as what it means for the request: no answer, UNAVAILABLE, so the
 * failover sends it again and an auto-challenging client challenges the executor, whose enclave
 * then answers on-chain past its host. Other errors are returned as they are.
 */
function unreadableAnswer(e: unknown, endpoint: string): unknown {
  if (!(e instanceof ProtocolError) || (e.code !== 'DECRYPTION_FAILED' && e.code !== 'MALFORMED'))
    return e
  return new PoseRequestError(`Operator at ${endpoint} sent an answer that cannot be opened`, {
    code: 'UNAVAILABLE',
    details: e.shortMessage,
    cause: e,
  })
}

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
  open: (sealed: Uint8Array) => Promise<T>,
): Promise<T> {
  const deadline = Date.now() + client.failover.timeoutMs
  /** Set once this client's challenge landed: answers on-chain are read from there on. */
  let challengedAt: LogPosition | undefined
  // One lost connection is not a silent executor: challenge after a request went unanswered
  // (the operator's own TIMEOUT, or no answer within `requestTimeoutMs`) or after a few failed
  // attempts.
  let failures = 0
  /** The executor endpoint that left a request unanswered (TIMEOUT), and that error. */
  let silent: { endpoint: string; error: PoseRequestError } | undefined
  /** An attempt went unanswered (or its answer was lost): it may have been executed. */
  let unanswered = false
  // An active instance read before is taken as it is, without a promise (as `getInstance`
  // would answer it).
  let info = cachedActiveInstance(client, instance) ?? (await getInstance(client, { instance }))
  for (let first = true; ; first = false) {
    try {
      if (!first) {
        await new Promise((r) => setTimeout(r, client.pollingIntervalMs))
        try {
          info = await getInstance(client, { instance, refresh: true })
        } catch (e) {
          // The chain's endpoint failed a read: it is asked again until the deadline.
          if (Date.now() > deadline) throw e
          continue
        }
      }
      if (challengedAt !== undefined) {
        const answers = await onChainAnswers(client, instance, challengedAt).catch(() => [])
        const outcome = await challengeOutcome(answers, open)
        if (outcome && 'value' in outcome) return outcome.value
        // The challenge closed without this request's answer: a client that still cannot reach
        // the executor may challenge again.
        if (outcome) {
          challengedAt = undefined
          failures = 0
        }
      }
      if (!info.executorEndpoint) {
        // Frozen (every member gone) or terminated: nobody can serve the request.
        throw new PoseRequestError(
          `Instance ${instance} has no executor (phase ${info.phaseName})`,
          {
            code: 'WRONG_PHASE',
            details:
              'A frozen instance serves nothing; a terminated one pays final balances on-chain.',
          },
        )
      }
      if (silent?.endpoint === info.executorEndpoint && info.phaseName === 'ExecutorChallenged') {
        // A challenge (this client's or another's) is open against the executor that left this
        // request unanswered: sending it there again would wait out another request timeout.
        // The challenge ends on-chain, with an answer (read above when it is this client's) or
        // with a new executor.
        if (Date.now() > deadline) throw silent.error
        continue
      }
      try {
        const pending = requestSealed(info.executorEndpoint, kind, instance, box, {
          transport: client.failover.apiTransport,
          timeoutMs: client.failover.requestTimeoutMs,
        })
        const sealed = await (client.failover.hostProbeMs > 0
          ? whileHostAnswers(pending, info.executorEndpoint, client.failover.hostProbeMs)
          : pending)
        // A sealed rejection can also say the executor changed (WRONG_ROLE): fail over then too.
        return await open(sealed)
      } catch (caught) {
        const e = unreadableAnswer(caught, info.executorEndpoint)
        // A transaction's refusal that its enclave did not seal may be its host's invention (the
        // enclave may have run it): it counts as no answer, and the same box goes again until
        // the enclave's own verdict or receipt comes (or its on-chain answer to a challenge).
        const down =
          e instanceof PoseRequestError &&
          (EXECUTOR_DOWN.has(e.code) || (kind === 'tx' && e.origin === 'host'))
        if (down) unanswered = true
        if (!down || Date.now() > deadline) throw e
        if (kind === 'tx' && e.code === 'TIMEOUT' && (await inWatchdogRound(client, instance))) {
          // The executor has challenged its watchdogs on-chain: it is live, and holds receipts
          // until the silent watchdog answers or is removed. The chain bounds that wait (Δ), so
          // the transaction is sent again (idempotent) instead of paying to challenge a live
          // executor. (A view waits for no watchdog: left unanswered, it counts as silence.)
          continue
        }
        failures++
        if (e.code === 'TIMEOUT') silent = { endpoint: info.executorEndpoint, error: e }
        const unresponsive = e.code === 'TIMEOUT' || failures >= CHALLENGE_AFTER_FAILURES
        if (client.failover.autoChallenge && challengedAt === undefined && unresponsive) {
          // Another user's open challenge makes this one revert: it is tried again later.
          await submitChallenge(client, { instance, payload: box }).then(
            ({ receipt }) => {
              const own = receipt.logs.filter((l) => sameAddress(l.address, client.manager))
              challengedAt = {
                blockNumber: receipt.blockNumber,
                logIndex: Math.max(-1, ...own.map((l) => l.logIndex ?? -1)),
              }
            },
            () => undefined,
          )
        }
      }
    } catch (e) {
      // Whatever ends the request once an attempt went unanswered (a refusal, the deadline
      // during a challenge, an instance that lost its executor, a chain read that kept
      // failing, an on-chain answer's rejection): that attempt may have been executed.
      if (unanswered && typeof e === 'object' && e !== null) afterUnanswered.add(e)
      throw e
    }
  }
}
