/**
 * The operator node (SPEC §2, §7): wires the enclave host, the chain watcher, the transaction
 * sender, the user API and peer messaging. Modules start in order and stop in reverse order
 * (Lodestar's pattern). A restarted node resumes from its data directory without manual steps.
 */
import { randomUUID } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { join, resolve } from 'node:path'
import pino, { type Logger } from 'pino'
import { type Address, getAddress, type Hash, type Hex } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { type ChainClients, createChainClients } from '../chain/clients.ts'
import {
  poseManagerAbi,
  readDeploymentBlock,
  readInstance,
  readOperator,
} from '../chain/manager.ts'
import { ChainTxError, redactUrls, TxSender, writeWithRetry } from '../chain/sender.ts'
import { type ChainBatch, ManagerWatcher } from '../chain/watcher.ts'
import {
  API_SOCKET_PATH,
  bytesToHex,
  type EcallName,
  type EnclaveOutput,
  EventKind,
  hexToBytes,
  isProtocolError,
  Phase,
  ProtocolError,
  toProtocolError,
} from '../protocol/index.ts'
import {
  type AttestationBackend,
  createDevAttestationBackend,
  DEV_TEE_WARNING,
} from '../tee/attestation.ts'
import { type EcallReturn, EnclaveCallError, EnclaveHost } from '../tee/enclaveHost.ts'
import { DEFAULT_BUNDLE_PATH, measureBundle } from '../tee/measurement.ts'
import { createApi } from './api.ts'
import { ApiSockets } from './apiSocket.ts'
import { ChainFaults, CrashPoints, LinkFaults } from './faults.ts'
import { PeerNetwork } from './peers.ts'
import { SealedStore } from './store.ts'
import { WaitingRequests } from './waiting.ts'

export type OperatorOptions = {
  rpcUrl: string
  /**
   * A WebSocket endpoint of the same chain: the chain feed polls when it announces a new head
   * (and every 2 s as a safety net) instead of every `pollIntervalMs`, which it falls back to
   * while the subscription is down.
   */
  rpcWsUrl?: string
  manager: Address
  /** The operator's account key (pays stake and gas). */
  privateKey: Hex
  dataDir: string
  host?: string
  port?: number
  /** The URL peers and users reach this node at; defaults to http://host:port. */
  publicUrl?: string
  /** Stake sent with registration; defaults to the manager's minimum. */
  stake?: bigint
  /**
   * Blocks an event's block must have on top of it before the enclave sees the event. Set it
   * at least as deep as the chain can reorganise: an applied event (a deposit credited) cannot
   * be taken back. Default: 0 on a local dev chain (id 31337), else 64 (two Ethereum epochs,
   * finality).
   */
  confirmations?: number
  /**
   * Starts the node even though the manager's Δ is too short for a challenge to reach the
   * enclave through `confirmations` blocks and be answered in time (see `checkDelta`): the
   * node's members would be slashed on every challenge. Without it such a start fails with
   * `UnsafeDeltaError`.
   */
  allowShortDelta?: boolean
  /** Local address outbound peer connections are made from (multi-homed hosts). */
  peerSourceAddress?: string
  /** Dev attestation authority key (simulated TEE). */
  devAuthorityKey: Hex
  bundlePath?: string
  pollIntervalMs?: number
  tickIntervalMs?: number
  /** How often on-chain duties (timeouts, finalisation, refill) are checked. */
  dutyIntervalMs?: number
  /** Attempts and first wait of an enclave's on-chain call while the endpoint fails. */
  submitAttempts?: number
  submitBackoffMs?: number
  /**
   * How long an active pool this node is no member of keeps an empty slot before the node
   * refills it (plus up to half as much again, drawn per pool, so that operators do not race).
   */
  strangerRefillMs?: number
  requestTimeoutMs?: number
  logger?: Logger
}

/** anvil's and Hardhat's chain id: a local chain that does not reorganise. */
const DEV_CHAIN_ID = 31337
/**
 * How often an enclave's on-chain call is sent when the endpoint fails, and the waits between
 * attempts (1 s, doubling up to 30 s): about 10 minutes in all, to ride out an endpoint's outage
 * within a production Δ. A call whose deadline passed meanwhile reverts, which ends them.
 */
const SUBMIT_ATTEMPTS = 25
const SUBMIT_BACKOFF_MS = 1_000
const SUBMIT_MAX_BACKOFF_MS = 30_000
/**
 * How long an instance whose refill found nobody to draw is left alone, unless an operator
 * registers meanwhile (each try costs an estimate at the endpoint, not a transaction).
 */
const NO_DRAW_RETRY_MS = 5 * 60_000
/**
 * Members' nodes refill a pool's empty slots at once; any other node does it once a slot has
 * stayed empty this long, so that a pool whose members do not (an executor left alone by a host
 * that keeps its slots empty, and with them its clock and its state in one hand) is refilled.
 */
const STRANGER_REFILL_MS = 60_000
/** Errors that say an instance's sealed records are unusable (the enclave's or the store's). */
const REFUSED_RECORDS: ReadonlySet<string> = new Set([
  'MALFORMED',
  'OUT_OF_ORDER',
  'COMMITMENT_MISMATCH',
  'DECRYPTION_FAILED',
  'OVERSIZED',
  'UNKNOWN_INSTANCE',
])
const isUnavailable = (e: unknown) => isProtocolError(e) && e.code === 'UNAVAILABLE'

/**
 * A chain error as logged: its first line, without the request's URL, which may carry an RPC
 * provider's key in its path (viem's messages name it).
 */
function chainErrorText(e: unknown): string {
  const text = e instanceof Error ? e.message : String(e)
  return redactUrls(text.split('\n')[0]!.slice(0, 500))
}

/** Peer messages an operator hands its enclave at once; more are dropped (the enclaves resend). */
const MAX_PEER_ECALLS = 4096

/** The confirmations a node waits for unless told otherwise (see `OperatorOptions`). */
export function defaultConfirmations(chainId: number): number {
  return chainId === DEV_CHAIN_ID ? 0 : 64
}

/** Blocks back from the head over which the start-up measures the chain's block interval. */
export const DELTA_CHECK_SAMPLE_BLOCKS = 256
/**
 * What an answer needs once the enclave has seen its challenge: the answer's inclusion (in
 * block intervals) and its way from the enclave to the endpoint (seconds, on top of the chain
 * feed's poll interval).
 */
export const ANSWER_MARGIN_BLOCKS = 2
export const ANSWER_MARGIN_S = 2
/**
 * The cushion left to answer in once a challenge reached the enclave, on top of the margin's
 * need: a third of Δ, at most `MAX_ANSWER_CUSHION_S` (room for an endpoint's retries and a
 * congested block or two; a longer Δ needs no more than that).
 */
export const MIN_ANSWER_SHARE = 1 / 3
export const MAX_ANSWER_CUSHION_S = 30

/**
 * The chain's block interval in seconds from the timestamps of a few blocks (`block` numbers,
 * any order; the node reads the head, the block `DELTA_CHECK_SAMPLE_BLOCKS` back and the one
 * halfway): the mean over each stretch between two of them, and the shortest of those. One
 * long gap (a stalled sequencer, a dev chain's clock moved on with `evm_increaseTime`) lies in
 * one stretch and is passed over; a chain slower throughout is measured as it is. Timestamps
 * are whole seconds, so each stretch is taken a second longer than its timestamps show, which
 * errs long and makes a degenerate sample sensible: blocks sharing one timestamp (anvil's
 * automine, a burst) give a second over the blocks, never zero, and fewer than two distinct
 * blocks (a chain with only its genesis block) give one second.
 */
export function blockIntervalOf(
  points: ReadonlyArray<{ block: number; timestamp: number }>,
): number {
  const byBlock = [...new Map(points.map((p) => [p.block, p.timestamp])).entries()].sort(
    (a, b) => a[0] - b[0],
  )
  let interval = Number.POSITIVE_INFINITY
  for (let k = 1; k < byBlock.length; k++) {
    const [b0, t0] = byBlock[k - 1]!
    const [b1, t1] = byBlock[k]!
    interval = Math.min(interval, (Math.max(0, t1 - t0) + 1) / (b1 - b0))
  }
  return Number.isFinite(interval) ? interval : 1
}

export type DeltaCheck = {
  /** The manager's Δ in seconds. */
  deltaS: number
  confirmations: number
  /** The chain's block interval in seconds, as measured (`blockIntervalOf`). */
  blockIntervalS: number
  /** Seconds from a challenge's block until the enclave sees it: confirmations × interval. */
  reachS: number
  /** Seconds an answer needs once the enclave saw the challenge (sending, mining). */
  marginS: number
  /** Δ − reachS: the time left to answer in once the enclave saw the challenge. */
  answerWindowS: number
  /** The answer window must be at least this long: the margin, and a third of Δ up to 30 s. */
  neededS: number
  safe: boolean
  /** The most confirmations this Δ is safe with at this interval; -1 if not even 0 is. */
  maxSafeConfirmations: number
  /** The shortest Δ that is safe with these confirmations at this interval, in seconds. */
  minSafeDeltaS: number
}

/**
 * Whether a member that sees the chain `confirmations` blocks behind has time to answer a
 * challenge within the manager's Δ (SPEC §7). A challenge reaches the enclave once its block
 * is `confirmations` deep (confirmations × block interval after it), and the answer must then be
 * sent and mined (`marginS`) before Δ has passed since the challenge's block. Safe when the
 * window left after the reach holds the margin and a cushion of a third of Δ, at most
 * `MAX_ANSWER_CUSHION_S` (for an endpoint's retries and a congested block or two).
 */
export function checkDelta(p: {
  deltaS: number
  confirmations: number
  blockIntervalS: number
  /** How late the chain feed may read a block (its poll interval), in seconds. */
  feedLagS?: number
}): DeltaCheck {
  if (!(p.blockIntervalS > 0) || !Number.isFinite(p.blockIntervalS))
    throw new RangeError(`block interval must be a positive number, got ${p.blockIntervalS}`)
  const reachS = p.confirmations * p.blockIntervalS
  const marginS = ANSWER_MARGIN_BLOCKS * p.blockIntervalS + ANSWER_MARGIN_S + (p.feedLagS ?? 0)
  const cushion = (deltaS: number) => Math.min(deltaS * MIN_ANSWER_SHARE, MAX_ANSWER_CUSHION_S)
  const neededS = Math.max(marginS, cushion(p.deltaS))
  const answerWindowS = p.deltaS - reachS
  const room = p.deltaS - neededS
  // The shortest Δ whose window holds the cushion: a third of it while that stays under the
  // cap (Δ ≤ 3 × cap, reach ≤ 2 × cap), else the cap.
  const cap = MAX_ANSWER_CUSHION_S
  const cushionedS = reachS <= 2 * cap ? reachS / (1 - MIN_ANSWER_SHARE) : reachS + cap
  return {
    deltaS: p.deltaS,
    confirmations: p.confirmations,
    blockIntervalS: p.blockIntervalS,
    reachS,
    marginS,
    answerWindowS,
    neededS,
    safe: answerWindowS >= neededS,
    maxSafeConfirmations: room < 0 ? -1 : Math.floor(room / p.blockIntervalS + 1e-9),
    minSafeDeltaS: Math.ceil(Math.max(reachS + marginS, cushionedS) - 1e-9),
  }
}

const seconds = (s: number) => `${Number.isInteger(s) ? s : s.toFixed(2)} s`

/**
 * The node refuses to start: the manager's Δ is too short for a challenge to reach its enclave
 * through `confirmations` blocks and be answered in time, so every challenge of one of its
 * members would end in a slash. `--allow-short-delta` starts it anyway.
 */
export class UnsafeDeltaError extends Error {
  override name = 'UnsafeDeltaError'
  readonly code = 'UNSAFE_DELTA'
  readonly shortMessage: string
  readonly details: string

  constructor(readonly check: DeltaCheck) {
    const c = check
    const shortMessage = `the manager's Δ of ${seconds(c.deltaS)} is too short for ${c.confirmations} confirmations at a block interval of ${seconds(c.blockIntervalS)}: a challenge reaches this node's enclave ${seconds(c.reachS)} after its block, ${c.answerWindowS < 0 ? `${seconds(-c.answerWindowS)} after its deadline` : `which leaves ${seconds(c.answerWindowS)} to answer`}, and an answer needs ${seconds(c.neededS)} (${seconds(c.marginS)} to be sent and mined, and a cushion of a third of Δ, at most ${MAX_ANSWER_CUSHION_S} s)`
    const fix =
      c.maxSafeConfirmations >= 0
        ? `At most ${c.maxSafeConfirmations} confirmations are safe with this Δ (pass --confirmations ${c.maxSafeConfirmations} or fewer, if the chain reorganises no deeper than that)`
        : `No number of confirmations is safe with this Δ at this block interval`
    const details = `${fix}, or use a manager whose Δ is at least ${seconds(c.minSafeDeltaS)}. Otherwise every challenge of one of this node's members ends with the member removed and its operator slashed. Pass --allow-short-delta to start anyway.`
    super(`${shortMessage}\n\nDetails: ${details}`)
    this.shortMessage = shortMessage
    this.details = details
  }
}

export class OperatorNode {
  readonly log: Logger
  private host: EnclaveHost | undefined
  private chain: ChainClients | undefined
  private sender: TxSender | undefined
  private watcher: ManagerWatcher | undefined
  private peers: PeerNetwork | undefined
  /** Simulator only: crashes this node at named points (POSE_CRASH_POINTS). */
  private crashPoints: CrashPoints | undefined
  /**
   * Tests only (`POSE_WITHHOLD_PAGES=1`): a host that drops its enclave's pages of final
   * balances and still sends everything else, challenge answers included.
   */
  private readonly withholdPages = process.env.POSE_WITHHOLD_PAGES === '1'
  /** Peer messages handed to the enclave and not yet answered; those dropped past the cap. */
  private peerEcalls = 0
  private peerDropped = 0
  /** Rejected peer frames since the last warning, and when it was written. */
  private peerRejects = 0
  private peerRejectLoggedAt = 0
  /** Simulator only: lags, reorders and replays the chain feed (POSE_CHAIN_FAULTS). */
  private chainFaults = ChainFaults.fromEnv(process.env.POSE_CHAIN_FAULTS)
  private hiddenBatch: ChainBatch | undefined
  private lastBatch: ChainBatch | undefined
  private api: ReturnType<typeof createApi> | undefined
  private apiSockets: ApiSockets | undefined
  private store: SealedStore
  private attestation: AttestationBackend
  private endpoints = new Map<string, string>()
  private signerToOperator = new Map<string, string>()
  private readonly waiting: WaitingRequests
  private tickTimer: NodeJS.Timeout | undefined
  private ticking = false
  private dutyBusy = false
  private dutyTimer: NodeJS.Timeout | undefined
  /**
   * Instances this node has seen, and the ones its duty check reads: an instance enters the
   * check on every `InstanceEvent` (the manager's only transition log, so every change of phase,
   * deadline or membership) and leaves it once a read finds nothing this node could be due to do
   * (no pending challenge, no empty slot, or not a member). A quiet pool costs no chain reads.
   */
  private known = new Set<bigint>()
  /** Instances whose last refill found nobody to draw, and when (see NO_DRAW_RETRY_MS). */
  private noDraw = new Map<bigint, number>()
  /** Pools this node is no member of, seen with an empty slot: when it may refill them. */
  private strangerRefillAt = new Map<bigint, number>()
  /** The enclave's on-chain calls (challenge answers) being sent: other pools' refills wait. */
  private enclaveCallsInFlight = 0
  /**
   * The enclave's on-chain calls the endpoint never took in all their attempts, by instance and
   * function (the latest of each): sent again from the duty loop until taken or refused. The
   * enclave emits each once (an answer to a challenge), and an outage longer than the attempts
   * would otherwise cost its member the stake.
   */
  private unsent = new Map<
    string,
    { functionName: string; args: unknown[]; instance: bigint; sent: Hash | undefined }
  >()
  /** The newest of each page of final balances the enclave published, by instance and page. */
  private readonly pagesWaiting = new Map<
    bigint,
    Map<number, Extract<EnclaveOutput, { type: 'terminate' }>>
  >()
  /** Instances one of whose pages is on its way (`sendNextPage`). */
  private readonly pageOnItsWay = new Set<bigint>()
  /** Pages sent without a receipt, by instance and page: looked up before they go again. */
  private readonly pagesSent = new Map<string, Hash>()
  private dutyCheck = new Map<bigint, number>()
  private dutyRounds = 0
  private dutyReads = 0
  private stopped = false
  /** Aborted by `stop()`: waits between attempts of on-chain calls end at once. */
  private readonly stopping = new AbortController()
  /**
   * A sealed record failed to persist: the enclave holds state this node's disk does not, so
   * nothing more the enclave says leaves the node (a later ack or answer could rest on that
   * record), and the node stops.
   */
  private sealFailed = false
  signer: Address | undefined
  encryptionKey: Hex | undefined
  measurement: Hex | undefined
  url: string | undefined

  constructor(private readonly opts: OperatorOptions) {
    this.log = opts.logger ?? pino({ name: 'pose-operator' })
    this.store = new SealedStore(opts.dataDir)
    this.waiting = new WaitingRequests(opts.requestTimeoutMs ?? 30_000)
    this.attestation = createDevAttestationBackend(
      hexToBytes(opts.devAuthorityKey, 'devAuthorityKey', 32),
    )
  }

  get address(): Address {
    return privateKeyToAccount(this.opts.privateKey).address
  }

  async start(): Promise<void> {
    const o = this.opts
    this.log.warn(DEV_TEE_WARNING)
    const account = privateKeyToAccount(o.privateKey)
    this.chain = await createChainClients({ rpcUrl: o.rpcUrl, account, pollingIntervalMs: 100 })
    this.sender = new TxSender(this.chain.publicClient, this.chain.walletClient!)
    const confirmations = o.confirmations ?? defaultConfirmations(this.chain.chain.id)
    const pollIntervalMs = o.pollIntervalMs ?? 200

    // 0. Δ against the confirmation window, before anything is started or registered
    await this.checkChallengeWindow(confirmations, pollIntervalMs)
    this.assertStarting('checking the challenge window')

    // 1. enclave
    const bundlePath = o.bundlePath ?? DEFAULT_BUNDLE_PATH
    const measurement = measureBundle(bundlePath)
    this.measurement = bytesToHex(measurement)
    this.host = new EnclaveHost({
      bundlePath,
      label: resolve(o.dataDir),
      onExit: (code, signal) => {
        this.log.error({ code, signal }, 'Enclave process exited; stopping the operator node')
        process.exitCode = 1
        void this.stop()
      },
      onSlowEcall: (method, waitedMs, pending) =>
        this.log.warn(
          { method, waitedMs, pending },
          'An ecall is still unanswered by the enclave (it may be hung)',
        ),
      onHung: (method, waitedMs) =>
        this.log.error(
          { method, waitedMs },
          'An ecall went unanswered too long: the enclave is hung; killing its process',
        ),
    })
    await this.host.start()
    if (this.host.pid) writeFileSync(join(o.dataDir, 'enclave.pid'), String(this.host.pid))
    const sealedIdentity = this.store.readIdentity()
    const init = await this.ecall('init', {
      platformSecret: this.store.platformSecret(),
      measurement,
      chainId: BigInt(this.chain.chain.id),
      manager: hexToBytes(o.manager, 'manager', 20),
      operator: hexToBytes(account.address, 'operator', 20),
      ...(sealedIdentity ? { sealedIdentity } : {}),
    })
    this.store.writeIdentity(init.result.sealedIdentity)
    this.signer = getAddress(bytesToHex(init.result.signer))
    this.encryptionKey = bytesToHex(init.result.encryptionKey)
    this.log.info(
      { signer: this.signer, measurement: this.measurement, resumed: Boolean(sealedIdentity) },
      'Enclave ready',
    )

    await this.restoreInstances()
    this.assertStarting('restoring its instances')

    // 2. API and peers
    this.crashPoints = CrashPoints.fromEnv(process.env.POSE_CRASH_POINTS, (point) => {
      writeFileSync(join(o.dataDir, 'crash-point'), point)
      process.kill(process.pid, 'SIGKILL')
    })
    if (this.crashPoints)
      this.log.warn({ config: this.crashPoints.config }, 'Crashing at named points (simulator)')
    if (this.withholdPages) this.log.warn('Withholding final balances (fault injection)')
    const faults = LinkFaults.fromEnv(process.env.POSE_LINK_FAULTS)
    if (faults)
      this.log.warn({ config: faults.config }, 'Injecting faults on peer links (simulator)')
    this.peers = new PeerNetwork(
      (envelope) => void this.onPeerEnvelope(envelope),
      (reason) => this.peerRejected(reason),
      {
        faults,
        sourceAddress: o.peerSourceAddress,
        onUnusableEndpoint: (endpoint, reason) =>
          this.log.warn(
            { endpoint, reason },
            'Peer endpoint unusable; its messages are dropped for a minute (the enclaves resend)',
          ),
      },
    )
    this.api = createApi({
      internalError: (e) => this.internalError(e),
      info: () => ({
        operator: account.address,
        signer: this.signer,
        encryptionKey: this.encryptionKey,
        measurement: this.measurement,
        chainId: this.chain!.chain.id,
        manager: o.manager,
        tee: 'simulated (dev attestation, INSECURE)',
      }),
      deploy: async (instance, box) => (await this.ecall('deploy', { instance, box })).result,
      request: (kind, instance, box) => this.request(kind, instance, box),
      digest: async (instance) => (await this.ecall('digest', { instance })).result,
      ...(faults || this.chainFaults
        ? {
            faults: () => ({
              ...faults?.counts,
              ...Object.fromEntries(
                Object.entries(this.chainFaults?.counts ?? {}).map(([k, v]) => [`chain-${k}`, v]),
              ),
            }),
          }
        : {}),
      status: async () => {
        const s = (await this.ecall('status', {})).result
        return {
          signer: this.signer,
          instances: s.instances.map((i) => ({
            ...i,
            instance: i.instance.toString(),
            seq: i.seq.toString(),
            eventIndex: i.eventIndex.toString(),
          })),
          duties: {
            rounds: this.dutyRounds,
            reads: this.dutyReads,
            checking: [...this.dutyCheck.keys()].map(String),
          },
          peers: { pending: this.peerEcalls, dropped: this.peerDropped },
        }
      },
    })
    const sockets = new ApiSockets(
      (kind, instance, box) => this.request(kind, instance, box),
      (e) => this.internalError(e),
    )
    this.apiSockets = sockets
    this.api.server.on('upgrade', (req, socket, head) => {
      const path = req.url?.split('?')[0]
      if (path === API_SOCKET_PATH) sockets.handleUpgrade(req, socket, head)
      else this.peers!.handleUpgrade(req, socket, head)
    })
    await this.api.listen({ host: o.host ?? '127.0.0.1', port: o.port ?? 0 })
    this.assertStarting('opening its API')
    const addr = this.api.server.address() as AddressInfo
    // Registered on-chain and joined with `/v1/...` paths by users and peers: no trailing slash.
    this.url =
      o.publicUrl?.replace(/\/+$/, '') ??
      `http://${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}`

    // 3. registration
    await this.ensureRegistered(init.result.reportHash, measurement)
    this.assertStarting('registering')

    // 4. chain feed and timers (the manager has no logs before the block it was created in)
    this.watcher = new ManagerWatcher({
      client: this.chain.publicClient,
      manager: o.manager,
      fromBlock: await readDeploymentBlock(this.chain.publicClient, o.manager),
      pollIntervalMs,
      ...(o.rpcWsUrl
        ? {
            headsUrl: o.rpcWsUrl,
            onHeads: (live: boolean, reason?: string) =>
              live
                ? this.log.info({ url: redactUrls(o.rpcWsUrl!) }, 'Chain feed follows new heads')
                : this.log.warn(
                    { url: redactUrls(o.rpcWsUrl!), reason: redactUrls(reason ?? '') },
                    `No head subscription; polling the chain every ${pollIntervalMs} ms`,
                  ),
          }
        : {}),
      confirmations: BigInt(confirmations),
      onBatch: (b) => this.onChainBatch(b),
      onReorg: (r) =>
        this.log.error(
          { code: 'CHAIN_REORG', depth: r.depth, block: r.block.toString() },
          'The chain reorganised below the confirmation depth; its new blocks are read again, and events that differ from those already applied are refused (raise --confirmations)',
        ),
      onRefused: (r) =>
        this.log.error(
          {
            code: 'CHAIN_FEED_REFUSED',
            instance: r.instance.toString(),
            event: r.index.toString(),
            reason: r.code,
            halted: r.halted,
            ...(r.action === 'reread'
              ? { action: r.action, fromBlock: r.fromBlock.toString(), attempt: r.attempt }
              : { action: r.action, withheldEvents: r.withheldEvents }),
          },
          r.halted
            ? 'The enclave refused an event that differs from the one it applied (a reorganisation deeper than --confirmations, or a forged feed); it no longer acts for this instance, and its pool will replace it'
            : `The enclave refused an event of one instance (${r.reason}); ${r.action === 'reread' ? 'reading its events again' : 'its events are withheld, the other instances go on'}`,
        ),
      onError: (e) =>
        this.log.warn({ err: toProtocolError(e).shortMessage }, 'Chain feed failed; retrying'),
    })
    await this.watcher.poll()
    // Stopped during the first poll: start nothing that `stop()` has already passed.
    if (this.stopped) return
    this.watcher.start()
    this.tickTimer = setInterval(() => void this.tick(), o.tickIntervalMs ?? 200)
    this.dutyTimer = setInterval(() => void this.duties(), o.dutyIntervalMs ?? 500)
    this.log.info({ url: this.url, operator: account.address }, 'Operator node started')
  }

  /**
   * Refuses a start whose members could not answer a challenge within the manager's Δ: Δ is
   * read, and the chain's block interval measured from the head, the block
   * `DELTA_CHECK_SAMPLE_BLOCKS` before it and the one halfway (four reads in two round trips).
   * With `allowShortDelta` the node starts anyway, and says so loudly.
   */
  private async checkChallengeWindow(confirmations: number, pollIntervalMs: number): Promise<void> {
    const client = this.chain!.publicClient
    const [delta, head] = await Promise.all([
      client.readContract({
        address: this.opts.manager,
        abi: poseManagerAbi,
        functionName: 'delta',
      }) as Promise<bigint>,
      client.getBlock({ blockTag: 'latest' }),
    ])
    const span = BigInt(DELTA_CHECK_SAMPLE_BLOCKS)
    const back = head.number < span ? head.number : span
    const earlier = await Promise.all(
      [back, back / 2n]
        .filter((n) => n > 0n)
        .map((n) => client.getBlock({ blockNumber: head.number - n })),
    )
    const check = checkDelta({
      deltaS: Number(delta),
      confirmations,
      blockIntervalS: blockIntervalOf(
        [head, ...earlier].map((b) => ({
          block: Number(b.number),
          timestamp: Number(b.timestamp),
        })),
      ),
      feedLagS: pollIntervalMs / 1000,
    })
    const fields = {
      deltaS: check.deltaS,
      confirmations,
      blockIntervalS: Number(check.blockIntervalS.toFixed(3)),
      reachS: Number(check.reachS.toFixed(1)),
      answerWindowS: Number(check.answerWindowS.toFixed(1)),
      neededS: Number(check.neededS.toFixed(1)),
    }
    if (check.safe) {
      this.log.info(fields, 'Challenge window checked: Δ leaves time to answer a challenge')
      return
    }
    const e = new UnsafeDeltaError(check)
    // The dev chain's clock is moved on by tests and demos (its sampled interval with it), and
    // nothing of value is at stake there: it warns.
    const dev = this.chain!.chain.id === DEV_CHAIN_ID
    if (!this.opts.allowShortDelta && !dev) throw e
    this.log.warn(
      {
        code: e.code,
        ...fields,
        maxSafeConfirmations: check.maxSafeConfirmations,
        minSafeDeltaS: check.minSafeDeltaS,
      },
      `UNSAFE, STARTED ANYWAY (${dev ? 'the dev chain' : '--allow-short-delta'}): ${e.shortMessage}. This node's members will likely be slashed on every challenge.`,
    )
  }

  /**
   * Fails the start once the node was stopped (its enclave exited, a seal failed, a signal):
   * `stop()` closes only what exists when it runs, so nothing is opened after it.
   */
  private assertStarting(step: string): void {
    if (this.stopped) throw new ProtocolError('UNAVAILABLE', `operator node stopped while ${step}`)
  }

  private async ensureRegistered(reportHash: Uint8Array, measurement: Uint8Array): Promise<void> {
    const o = this.opts
    const current = await readOperator(this.chain!.publicClient, o.manager, this.address)
    if (current.registered) {
      if (getAddress(current.enclaveSigner) !== this.signer) {
        throw new ProtocolError(
          'WRONG_ROLE',
          `operator ${this.address} is registered with enclave ${current.enclaveSigner}, but this data directory holds enclave ${this.signer}`,
          {
            details:
              'Start the node with the data directory it registered with, or use another operator account.',
          },
        )
      }
      if (current.endpoint !== this.url) {
        await this.sender!.write({
          address: o.manager,
          abi: poseManagerAbi,
          functionName: 'setEndpoint',
          args: [this.url],
        })
        this.log.info({ url: this.url }, 'Endpoint updated on-chain')
      }
      return
    }
    const evidence = await this.attestation.evidence({ reportHash, measurement })
    const stake =
      o.stake ??
      ((await this.chain!.publicClient.readContract({
        address: o.manager,
        abi: poseManagerAbi,
        functionName: 'minStake',
      })) as bigint)
    await this.sender!.write({
      address: o.manager,
      abi: poseManagerAbi,
      functionName: 'register',
      args: [this.signer, this.encryptionKey, this.url, evidence],
      value: stake,
    })
    this.log.info({ signer: this.signer, stake: stake.toString() }, 'Enclave registered on-chain')
  }

  async ecall<N extends EcallName>(method: N, params: unknown): Promise<EcallReturn<N>> {
    if (!this.host) throw new ProtocolError('UNAVAILABLE', 'enclave not started')
    try {
      const r = await this.host.ecall(method, params)
      this.handleOutputs(r.outputs)
      return r
    } catch (e) {
      if (e instanceof EnclaveCallError) this.handleOutputs(e.outputs)
      throw e
    }
  }

  private handleOutputs(outputs: EnclaveOutput[]): void {
    if (this.sealFailed) return
    for (const o of outputs) {
      try {
        this.handleOutput(o)
      } catch (e) {
        // A record not persisted stops what follows it, and everything after: a later ack
        // would claim it was (an enclave acks a resent update it already applied at once).
        if (o.type === 'seal') {
          this.onSealFailure(o.instance, e)
          throw e
        }
        // Anything else fails alone: the outputs after it (answers, sends) still go.
        this.log.error(
          { output: o.type, err: toProtocolError(e).shortMessage },
          'Enclave output not handled',
        )
      }
    }
  }

  /**
   * Hands the enclave each instance's sealed state. One whose records the enclave refuses is
   * logged and left: this node then serves that instance no more (its enclave holds no state
   * for it, so it answers nothing there and its pool challenges and replaces it), and its other
   * instances are served as before. Its files are moved aside for the operator to look at.
   * Only the enclave's verdict on the records moves them: when the enclave process is gone (or
   * the node stopping) the start fails with every file in place, and an instance whose files
   * could not be read, or that the enclave failed on for another reason, keeps its files for
   * the next start.
   */
  private async restoreInstances(): Promise<void> {
    for (const id of this.store.instances()) {
      const instance = id.toString()
      try {
        const blobs = this.store.blobs(id)
        if (blobs.length === 0) continue
        const r = await this.ecall('restore', { instance: id, blobs })
        this.log.info(
          { instance, seq: r.result.seq.toString(), records: r.result.records },
          'Instance restored from sealed state',
        )
        if (r.result.records < blobs.length) {
          // Records its enclave could not open (a power loss's tail): cut off, or every record
          // appended after them would be left out of the next restore too.
          this.store.keepBlobs(id, r.result.records)
          this.log.warn(
            { instance, dropped: blobs.length - r.result.records },
            'Sealed records that did not open were cut off the log',
          )
        }
      } catch (e) {
        if (this.stopped || (!(e instanceof EnclaveCallError) && isUnavailable(e)))
          throw new ProtocolError(
            'UNAVAILABLE',
            `restoring instance ${instance}: ${toProtocolError(e).shortMessage}; its sealed files are kept`,
          )
        let aside: string | undefined
        if (isProtocolError(e) && REFUSED_RECORDS.has(e.code)) {
          try {
            aside = this.store.setAside(id)
          } catch {
            // Left where they are: a restart tries them again.
          }
        }
        this.log.error(
          {
            instance,
            err: toProtocolError(e).shortMessage,
            ...(aside ? { filesMovedTo: aside } : {}),
          },
          aside
            ? 'Instance not restored from its sealed state: this node no longer serves it (its pool will replace it)'
            : 'Instance not restored from its sealed state; its files are kept for the next start (until then its pool may replace this node)',
        )
      }
    }
  }

  private onSealFailure(instance: bigint, e: unknown): void {
    this.sealFailed = true
    this.log.error(
      { instance: instance.toString(), err: toProtocolError(e).shortMessage },
      'A sealed record could not be persisted; stopping the operator node (its enclave holds state its disk does not; restart it once the disk is writable)',
    )
    process.exitCode = 1
    void this.stop()
  }

  private handleOutput(o: EnclaveOutput): void {
    switch (o.type) {
      case 'seal':
        this.crashPoints?.reach('before-seal')
        // Persisted before any later output (an ack) leaves this node.
        if (o.mode === 'snapshot') this.store.writeSnapshot(o.instance, o.blob)
        else this.store.append(o.instance, o.blob)
        this.crashPoints?.reach('after-seal')
        break
      case 'send': {
        if (o.envelope.kind === 'genesis') this.crashPoints?.reach('handover')
        const to = getAddress(bytesToHex(o.to))
        const endpoint = this.endpointOf(to)
        if (endpoint) this.peers?.send(endpoint, o.envelope)
        else
          this.log.warn(
            { to },
            'No endpoint known for peer enclave; message dropped (the enclave resends)',
          )
        break
      }
      case 'answer':
        if (o.sealed) this.waiting.resolve(o.requestId, o.sealed)
        else this.waiting.reject(o.requestId, ProtocolError.fromObject(o.error))
        break
      case 'activate':
        void this.submit(
          'activate',
          [
            o.instance,
            bytesToHex(o.contractEncryptionKey),
            bytesToHex(o.genesisDigest),
            o.ackedMask,
            o.eventIndex,
            bytesToHex(o.signature),
          ],
          o.instance,
          true,
        )
        break
      case 'challengeWatchdogs':
        void this.submit(
          'challengeWatchdogs',
          [o.instance, o.memberMask, bytesToHex(o.payload)],
          o.instance,
          true,
        )
        break
      case 'respondWatchdog':
        void this.submit(
          'respondWatchdog',
          [o.instance, o.slot, o.eventIndex, bytesToHex(o.signature)],
          o.instance,
          true,
        )
        break
      case 'respondExecutor':
        this.crashPoints?.reach('challenge-response')
        void this.submit(
          'respondExecutor',
          [o.instance, bytesToHex(o.response), o.eventIndex, bytesToHex(o.signature)],
          o.instance,
          true,
        )
        break
      case 'terminate': {
        if (this.withholdPages) break
        // The enclave publishes every page again until the chain shows the termination: the
        // newest of each page waits here, and one page per instance is on its way at a time.
        let waiting = this.pagesWaiting.get(o.instance)
        if (!waiting) {
          waiting = new Map()
          this.pagesWaiting.set(o.instance, waiting)
        }
        waiting.set(o.page, o)
        this.sendNextPage(o.instance)
        break
      }
      case 'log':
        this.log[o.level](o.fields, o.message)
        break
    }
  }

  /**
   * Submits a manager call on behalf of the enclave or the duty bot; failures are logged and
   * returned (undefined: taken). The enclave emits each of its calls once (an answer to a
   * challenge, say), so those are sent again after an endpoint's failure (`retry`), also past
   * their attempts (`unsent`); the duty bot checks again on its own.
   */
  private async submit(
    functionName: string,
    args: unknown[],
    instance: bigint,
    retry = false,
    sent?: Hash,
  ): Promise<unknown> {
    const call = { instance: instance.toString(), call: functionName }
    if (retry) this.enclaveCallsInFlight++
    try {
      await writeWithRetry(
        () =>
          this.sender!.write({
            address: this.opts.manager,
            abi: poseManagerAbi,
            functionName,
            args,
          }),
        {
          settle: (hash) => this.sender!.settle(functionName, hash),
          sent,
          attempts: retry ? (this.opts.submitAttempts ?? SUBMIT_ATTEMPTS) : 1,
          backoffMs: this.opts.submitBackoffMs ?? SUBMIT_BACKOFF_MS,
          maxBackoffMs: SUBMIT_MAX_BACKOFF_MS,
          signal: this.stopping.signal,
          onRetry: (e, attempt) =>
            this.log.warn(
              { ...call, attempt, err: chainErrorText(e) },
              'On-chain call failed at the endpoint; sending it again',
            ),
        },
      )
      this.log.info(call, 'Submitted on-chain')
      return undefined
    } catch (e) {
      // A revert is the manager's answer (another member was first, a deadline passed); an
      // enclave's call that the endpoint never took is worth an operator's attention.
      const reverted = e instanceof ChainTxError && e.reverted
      const level = reverted ? 'debug' : retry ? 'error' : 'warn'
      this.log[level]({ ...call, err: chainErrorText(e) }, 'On-chain call not accepted')
      if (retry && !reverted && !this.stopped) {
        const hash = e instanceof ChainTxError ? e.hash : undefined
        this.unsent.set(`${instance}:${functionName}`, { functionName, args, instance, sent: hash })
        this.log.warn(
          call,
          'The call is sent again from the duty loop until the manager takes or refuses it',
        )
      }
      return e
    } finally {
      if (retry) this.enclaveCallsInFlight--
    }
  }

  /**
   * Sends the lowest waiting page of `instance`'s final balances unless one is on its way: the
   * calls of an operator go one at a time, so a burst of pages would hold up its answers to
   * challenges. A page sent without a receipt is looked up (its hash) before it goes again.
   */
  private sendNextPage(instance: bigint): void {
    if (this.pageOnItsWay.has(instance)) return
    const waiting = this.pagesWaiting.get(instance)
    if (!waiting || waiting.size === 0) {
      this.pagesWaiting.delete(instance)
      return
    }
    const o = waiting.get(Math.min(...waiting.keys()))!
    waiting.delete(o.page)
    const key = `${instance}:terminate:${o.page}`
    this.pageOnItsWay.add(instance)
    void this.submit(
      'terminate',
      [
        o.instance,
        {
          root: bytesToHex(o.root),
          page: BigInt(o.page),
          pages: BigInt(o.pages),
          accounts: o.accounts.map((a) => getAddress(bytesToHex(a))),
          cumulatives: o.cumulatives,
        },
        o.eventIndex,
        bytesToHex(o.signature),
      ],
      instance,
      false,
      this.pagesSent.get(key),
    )
      .then((e) => {
        if (e instanceof ChainTxError && e.hash !== undefined && !e.reverted)
          this.pagesSent.set(key, e.hash)
        else this.pagesSent.delete(key)
        // Simulator only: a page is in, the next is not sent yet.
        if (e === undefined) this.crashPoints?.reach('final-page')
      })
      .finally(() => {
        this.pageOnItsWay.delete(instance)
        if (!this.stopped) this.sendNextPage(instance)
      })
  }

  /** Sends the enclave's calls that the endpoint never took again (see `unsent`). */
  private resendUnsent(): void {
    for (const [key, c] of [...this.unsent]) {
      this.unsent.delete(key)
      void this.submit(c.functionName, c.args, c.instance, true, c.sent)
    }
  }

  /** Marks an instance for the duty check; the count tells a read that raced an event. */
  private markForDuties(id: bigint): void {
    this.known.add(id)
    this.dutyCheck.set(id, (this.dutyCheck.get(id) ?? 0) + 1)
  }

  /**
   * Operators' duties (SPEC §7): for instances this enclave is a member of, time out a silent
   * executor, finalize watchdog challenges and refill empty slots once they are due; for any
   * other active instance, refill a slot that stayed empty `strangerRefillMs`.
   */
  private async duties(): Promise<void> {
    if (this.dutyBusy || this.stopped) return
    this.resendUnsent()
    // Every 60 rounds (30 s by default) every known instance is read again, as a safety net.
    if (++this.dutyRounds % 60 === 0) for (const id of this.known) this.markForDuties(id)
    if (this.dutyCheck.size === 0) return
    this.dutyBusy = true
    try {
      const client = this.chain!.publicClient
      const now = (await client.getBlock({ blockTag: 'latest' })).timestamp
      // This node's calls go one at a time: at most one refill of a pool it is no member of per
      // round, and none while its enclave's answers are on their way, so that refilling others'
      // pools never holds up an answer to a challenge against its own enclave.
      let strangerRefills = 0
      for (const [id, mark] of [...this.dutyCheck]) {
        const info = await readInstance(client, this.opts.manager, id)
        this.dutyReads++
        const quiet = () => {
          if (this.dutyCheck.get(id) === mark) this.dutyCheck.delete(id)
        }
        const drawn = this.noDraw.get(id)
        if (drawn !== undefined && Date.now() - drawn >= NO_DRAW_RETRY_MS) this.noDraw.delete(id)
        const emptySlot =
          info.phase === Phase.Active &&
          info.signers.some((s) => /^0x0{40}$/.test(s)) &&
          !this.noDraw.has(id)
        if (!info.signers.some((s) => s === this.signer)) {
          // Not a member: it becomes one only by a draw, whose event marks it again. A pool
          // with an empty slot stays known (the safety net reads it again) until it is refilled.
          if (!emptySlot) {
            if (!this.noDraw.has(id)) {
              this.known.delete(id)
              this.strangerRefillAt.delete(id)
            }
            quiet()
            continue
          }
          let at = this.strangerRefillAt.get(id)
          if (at === undefined) {
            const wait = this.opts.strangerRefillMs ?? STRANGER_REFILL_MS
            at = Date.now() + wait + Math.floor(Math.random() * (wait / 2))
            this.strangerRefillAt.set(id, at)
          }
          if (Date.now() >= at && strangerRefills === 0 && this.enclaveCallsInFlight === 0) {
            strangerRefills++
            await this.refill(id, info.refillBlock, quiet)
          } else quiet()
          continue
        }
        this.strangerRefillAt.delete(id)
        if (info.phase === Phase.ExecutorChallenged && now > info.challengeDeadline) {
          await this.submit('executorTimeout', [id], id)
        } else if (info.watchdogMask !== 0 && now > info.watchdogDeadline) {
          await this.submit('finalizeWatchdogChallenge', [id], id)
        } else if (emptySlot) {
          await this.refill(id, info.refillBlock, quiet)
        }
        // Nothing pending: no deadline can fall due and no slot is empty until the next event.
        if (info.phase !== Phase.ExecutorChallenged && info.watchdogMask === 0 && !emptySlot)
          quiet()
      }
    } catch (e) {
      this.log.warn({ err: toProtocolError(e).shortMessage }, 'Duty check failed')
    } finally {
      this.dutyBusy = false
    }
  }

  /** Schedules or performs the draw for a pool's empty slots, once its scheduled block passed. */
  private async refill(id: bigint, refillBlock: bigint, quiet: () => void): Promise<void> {
    const head = await this.chain!.publicClient.getBlockNumber({ cacheTime: 0 })
    if (refillBlock !== 0n && head <= refillBlock) return
    const e = await this.submit('refill', [id], id)
    if (e instanceof ChainTxError && e.reverted && /NothingToDraw/.test(e.reason)) {
      // Every eligible operator is a member: nothing to do until one registers.
      this.noDraw.set(id, Date.now())
      quiet()
    }
  }

  private endpointOf(signer: Address): string | undefined {
    const op = this.signerToOperator.get(signer)
    return op ? this.endpoints.get(op) : undefined
  }

  private async onChainBatch(b: ChainBatch): Promise<void> {
    // From the chain as it is, before any simulated feed fault: duties read the chain directly.
    for (const e of b.instanceEvents) {
      this.markForDuties(e.instance)
      // A removed member may be drawn again: a pool that found nobody to draw is tried anew.
      if (e.kind === EventKind.MemberRemoved) this.noDraw.delete(e.instance)
    }
    if (this.chainFaults) return this.onChainBatchFaulty(b, this.chainFaults)
    await this.deliverBatch(b)
  }

  /** The simulator's malicious feed: held back, hidden until the next batch, replayed. */
  private async onChainBatchFaulty(b: ChainBatch, f: ChainFaults): Promise<void> {
    const d = f.decide()
    if (d.holdMs > 0) await new Promise((r) => setTimeout(r, d.holdMs))
    if (d.reorder && !this.hiddenBatch) {
      this.hiddenBatch = b
      return
    }
    const hidden = this.hiddenBatch
    this.hiddenBatch = undefined
    if (hidden) {
      // The newer batch first: the enclave refuses what does not extend its running hash.
      await this.deliverBatch(b).catch(() => undefined)
      try {
        await this.deliverBatch(hidden)
      } catch (e) {
        this.hiddenBatch = hidden
        throw e
      }
    }
    await this.deliverBatch(b)
    if (d.replay && this.lastBatch) await this.deliverBatch(this.lastBatch).catch(() => undefined)
    this.lastBatch = b
  }

  private async deliverBatch(b: ChainBatch): Promise<void> {
    for (const e of b.operatorEvents) {
      const op = getAddress(e.operator)
      if (e.left) {
        // Gone: no pool holds it, and no peer message goes to it any more.
        this.endpoints.delete(op)
        for (const [signer, owner] of this.signerToOperator)
          if (owner === op) this.signerToOperator.delete(signer)
        continue
      }
      this.endpoints.set(op, e.endpoint)
      if (e.enclaveSigner) {
        this.signerToOperator.set(getAddress(e.enclaveSigner), op)
        // A new operator can be drawn into the pools that found nobody.
        for (const id of this.noDraw.keys()) this.markForDuties(id)
        this.noDraw.clear()
      }
    }
    // Links to endpoints no operator uses any more (changed, or its operator gone) are closed.
    if (b.operatorEvents.length > 0) this.peers?.retainEndpoints(this.endpoints.values())
    const CHUNK = 5000
    for (let i = 0; i === 0 || i < b.instanceEvents.length; i += CHUNK) {
      await this.ecall('chain', {
        blockNumber: b.blockNumber,
        timestamp: b.timestamp,
        events: b.instanceEvents.slice(i, i + CHUNK),
      })
    }
  }

  private async onPeerEnvelope(envelope: unknown): Promise<void> {
    // Peers' messages waiting for the enclave are bounded: past it they are dropped, and the
    // enclaves resend what was lost (a flood from one peer cannot queue ecalls without end).
    if (this.peerEcalls >= MAX_PEER_ECALLS) {
      this.peerDropped++
      return
    }
    this.peerEcalls++
    try {
      await this.ecall('peer', { envelope })
    } catch (e) {
      const err = toProtocolError(e)
      if (err.code !== 'NOT_READY')
        this.log.debug({ code: err.code, err: err.shortMessage }, 'Peer message refused by enclave')
    } finally {
      this.peerEcalls--
    }
  }

  /** A host-side error behind a client's bare INTERNAL answer: its details go to the log. */
  private internalError(e: unknown): void {
    this.log.error({ err: toProtocolError(e).shortMessage }, 'Request failed inside the operator')
  }

  /** A rejected peer frame, logged at most once every 10 s with how many came since. */
  private peerRejected(reason: string): void {
    this.peerRejects++
    const now = Date.now()
    if (now - this.peerRejectLoggedAt < 10_000) return
    this.peerRejectLoggedAt = now
    this.log.warn({ reason, since: this.peerRejects }, 'Peer frame rejected')
    this.peerRejects = 0
  }

  private async tick(): Promise<void> {
    if (this.ticking || this.stopped) return
    this.ticking = true
    try {
      await this.ecall('tick', { now: Date.now() })
    } catch (e) {
      this.log.warn({ err: toProtocolError(e).shortMessage }, 'Enclave tick failed')
    } finally {
      this.ticking = false
    }
  }

  /** Passes a client's box to the enclave and waits for its sealed answer. */
  private request(kind: 'tx' | 'view', instance: bigint, box: Uint8Array): Promise<Uint8Array> {
    const requestId = randomUUID()
    const answered = this.waiting.wait(requestId, kind)
    // The answer comes as an output; a refused ecall fails the request with its error.
    this.ecall(kind, { requestId, instance, box }).catch((e) => this.waiting.reject(requestId, e))
    return answered
  }

  /**
   * Stops the node. Every call returns the same stop: a second caller (a signal while a failed
   * start is being stopped) waits for it to end rather than finding it begun and returning.
   */
  stop(): Promise<void> {
    this.stopDone ??= this.stopOnce()
    return this.stopDone
  }

  private stopDone: Promise<void> | undefined

  private async stopOnce(): Promise<void> {
    this.stopped = true
    this.stopping.abort()
    if (this.tickTimer) clearInterval(this.tickTimer)
    if (this.dutyTimer) clearInterval(this.dutyTimer)
    await this.watcher?.stop()
    this.waiting.close(new ProtocolError('UNAVAILABLE', 'operator node is stopping'))
    await this.peers?.close()
    await this.apiSockets?.close()
    await this.api?.close()
    await this.host?.stop()
    this.store.close()
    this.log.info('Operator node stopped')
  }
}
