/**
 * Section `floor`: the least CPU one PrivateToken transfer can cost through any implementation of
 * the protocol on this machine, from the primitives it cannot skip, each measured here in one
 * process: the EVM transfer itself (the bare-EVM figure), the user's box and, once per box session,
 * the user's Session signature and its recovery (decision 0014), the enclave opening the box, the
 * receipt's share of one signature per batch (decision 0015) and its sealed answer, the client
 * opening and checking it (the receipt's proof, and the root's signer once per release), one
 * request and answer over the users' WebSocket API (server and SDK side, as many in flight as
 * the workload keeps), and for s = 2, in updates of `LIMITS.groupCommitTxs` transfers (the
 * batches a saturated executor makes), the replication SPEC §6 prescribes: the executor takes
 * the transfer's write set, encrypts the update under the state key, hashes it into its log and
 * tags it for each watchdog under their pair key (decision 0020; taking the write set out of the
 * EVM is not counted: ours also updates the state digest there); each watchdog checks the tag,
 * decrypts, hashes, applies the write set, seals it and tags its ack. Summed and spread
 * over every core, it bounds full-protocol throughput from above: a target above that bound is out
 * of reach on this hardware whatever the code does.
 *
 * A second, higher floor adds what SPEC §2's architecture makes every transfer pay on top: the
 * ecall round trip from operator to enclave process over Node's IPC channel (as many requests in
 * flight as on the users' API, each end sending one message per event-loop turn as the operator
 * and the enclave do), and for every watchdog and batch the update and ack over a peer WebSocket
 * plus the ecalls that deliver them (measured with both ends of each channel, binary payloads,
 * no protocol logic).
 */
import { fork } from 'node:child_process'
import { once } from 'node:events'
import { createServer } from 'node:http'
import { cpus } from 'node:os'
import WebSocket, { WebSocketServer } from 'ws'
import { socketRequest } from '../../src/client/socketTransport.ts'
import { ApiSockets } from '../../src/operator/apiSocket.ts'
import {
  aeadOpen,
  aeadSeal,
  BOX_CONTEXT,
  BOX_SESSION_LIMITS,
  BoxSessions,
  boxOpen,
  bytesToHex,
  concatBytes,
  decodeWriteSet,
  type EcallRequest,
  type EcallResponse,
  encodeSignedTx,
  encodeWriteSet,
  generateSecretKey,
  generateX25519KeyPair,
  hashTx,
  INSTANCE_ADDRESS,
  instanceAad,
  keccak256,
  LIMITS,
  openAnswer,
  packRequests,
  pairTag,
  pairTagValid,
  randomBytes,
  receiptNode,
  recoverAddress,
  sealAnswer,
  secretKeyToAddress,
  signDigest,
  turnBatcher,
  unpackResponses,
  utf8,
} from '../../src/protocol/index.ts'
import { bareEvmInChild } from '../lib/bareEvm.ts'
import { onCleanup, printTable, progress, type Row, round, within } from '../lib/common.ts'
import { BLOCK, fundedTokenWorld, transferCalldata } from '../lib/world.ts'

/** Longest wait for a channel to open or for one measured loop on it; a lost message fails the step. */
const CHANNEL_WAIT_MS = 60_000

export type FloorConfig = { iterations: number; bareTxs: number; channelRequests: number }

export type FloorResult = {
  cores: number
  bareEvmTps: number
  /** Microseconds of CPU per primitive, and how often a transfer needs it. */
  primitives: Array<{ name: string; side: string; us: number; perTx: number }>
  floorUsPerTx: number
  /** cores × 10⁶ / floor: the most transfers per second any implementation could reach. */
  ceilingTps: number
  serverFloorUsPerTx: number
  serverCeilingTps: number
  /** The architecture's channels (SPEC §2), per primitive and per transfer. */
  architecture: Array<{ name: string; us: number; perTx: number }>
  /** floor + architecture: the least CPU per transfer for an operator/enclave-process design. */
  archFloorUsPerTx: number
  archCeilingTps: number
  /** The benchmark issue's target: half the bare-EVM rate. */
  targetTps: number
}

const S = 2
/**
 * Transfers per update and per release: the group commit's cap, which every batch of a saturated
 * s = 2 devnet reaches (bench/README.md, "2026-12-05, before midnight"). 8 until 2026-12-06,
 * when batches were smaller: that charged each transfer 16 times the per-update work.
 */
const BATCH = LIMITS.groupCommitTxs

/**
 * Calls (or round trips) run before each measured loop: as many as it measures, at least 1,000.
 * V8 reaches its steady code for this work after hundreds to thousands of calls; 50 measured
 * the API round trip at ≈ 33–38 µs that a warm loop runs at ≈ 4 (bench/README.md,
 * 2026-12-06, late morning).
 */
const warmCalls = (n: number): number => Math.max(1_000, n)

/** CPU microseconds per call of `f` (user + system time of this process), after a warm-up. */
function cpuUs(n: number, f: (i: number) => void): number {
  for (let i = 0; i < warmCalls(n); i++) f(i)
  const c0 = process.cpuUsage()
  for (let i = 0; i < n; i++) f(i)
  const c = process.cpuUsage(c0)
  return (c.user + c.system) / n
}

/** CPU microseconds of this process per awaited call of `f`, after a warm-up. */
async function cpuUsAsync(n: number, f: () => Promise<unknown>): Promise<number> {
  for (let i = 0; i < warmCalls(n); i++) await f()
  const c0 = process.cpuUsage()
  for (let i = 0; i < n; i++) await f()
  const c = process.cpuUsage(c0)
  return (c.user + c.system) / n
}

/** `count` calls of `one` by `callers` callers, each awaiting its call before its next. */
async function inFlight(
  count: number,
  callers: number,
  one: () => Promise<unknown>,
): Promise<void> {
  await Promise.all(
    Array.from({ length: callers }, async (_, k) => {
      for (let i = k; i < count; i += callers) await one()
    }),
  )
}

async function apiRoundTripUs(n: number): Promise<number> {
  const answer = new Uint8Array(ANSWER).fill(0xab)
  const sockets = new ApiSockets(async () => answer)
  const server = createServer((_req, res) => res.writeHead(404).end())
  server.on('upgrade', (req, socket, head) => sockets.handleUpgrade(req, socket, head))
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
  const endpoint = `http://127.0.0.1:${(server.address() as { port: number }).port}`
  const box = new Uint8Array(TX_BOX).fill(0xcd)
  // The SDK's transport, with as many requests in flight as the throughput workload's clients.
  const one = () => socketRequest(endpoint, 'tx', 1n, box, CHANNEL_WAIT_MS)
  try {
    await within(
      inFlight(warmCalls(n), API_IN_FLIGHT, one),
      CHANNEL_WAIT_MS,
      'WebSocket API answers (warm-up)',
    )
    const c0 = process.cpuUsage()
    await within(inFlight(n, API_IN_FLIGHT, one), CHANNEL_WAIT_MS, 'WebSocket API answers')
    const c = process.cpuUsage(c0)
    return (c.user + c.system) / n
  } finally {
    await sockets.close()
    server.closeAllConnections()
    await new Promise<void>((r) => server.close(() => r()))
  }
}

/** Sizes of the messages on the architecture's channels (bytes; an update's is measured). */
const TX_BOX = 420
const ANSWER = 300
/** Requests in flight on the users' API, as the throughput workload's 64 clients keep them. */
const API_IN_FLIGHT = 64
/** An update's envelope around its sealed payload: header, signature, framing. */
const UPDATE_FRAMING = 256
const ACK = 160

/**
 * CPU µs of both ends per ecall-shaped round trip to a child process over Node's IPC channel
 * with structured-clone serialization, as the operator talks to its enclave process: `callers`
 * callers each awaiting its answer, each end sending what one event-loop turn produced as one
 * message, packed as the system packs it (protocol/ecallWire.ts); a call ends when its answer
 * output arrives.
 */
export async function ipcRoundTripUs(
  n: number,
  requestBytes: number,
  answerBytes: number,
  callers = 1,
): Promise<number> {
  const child = fork(new URL('../lib/ipcEcho.ts', import.meta.url), [String(answerBytes)], {
    serialization: 'advanced',
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    execArgv: ['--import', 'tsx'],
  })
  const removeCleanup = onCleanup(async () => void child.kill('SIGKILL'))
  // A child that exits fails the call waiting on it (and every later one) at once.
  let gone: Error | undefined
  const pending = new Map<string, { resolve: () => void; reject: (e: Error) => void }>()
  child.once('exit', (code, signal) => {
    gone = new Error(`floor: IPC echo child exited (${signal ?? code})`)
    for (const p of pending.values()) p.reject(gone)
    pending.clear()
  })
  try {
    await within(once(child, 'message'), CHANNEL_WAIT_MS, 'the IPC echo child to start')
    const settle = (r: EcallResponse) => {
      // The child's CPU report comes on the same channel.
      if (!Array.isArray(r.outputs)) return
      for (const o of r.outputs) {
        if (o.type !== 'answer') continue
        pending.get(o.requestId)?.resolve()
        pending.delete(o.requestId)
      }
    }
    child.on('message', (m: unknown) => unpackResponses(m, settle))
    // The operator's side of the channel: the ecalls of one event-loop turn go as one message.
    const enqueue = turnBatcher<EcallRequest>(
      (msg, part) => child.send(part.length === 1 ? msg : { batch: packRequests(part) }),
      (item, e) => {
        const requestId = (item.params as { requestId: string }).requestId
        pending.get(requestId)?.reject(e)
        pending.delete(requestId)
      },
    )
    let next = 1
    const box = new Uint8Array(requestBytes).fill(7)
    const call = () =>
      new Promise<void>((resolve, reject) => {
        if (gone) return reject(gone)
        const id = next++
        const requestId = String(id)
        pending.set(requestId, { resolve, reject })
        enqueue({ id, method: 'tx', params: { requestId, instance: 1n, box } })
      })
    const calls = (count: number) => inFlight(count, callers, call)
    const childCpu = async () => {
      const reply = once(child, 'message') as Promise<[{ cpu: NodeJS.CpuUsage }]>
      child.send('cpu')
      const [{ cpu }] = await within(reply, CHANNEL_WAIT_MS, "the IPC echo child's CPU time")
      return cpu.user + cpu.system
    }
    // Bounded per loop, not per call: a timer per call would add its own cost to the figure.
    await within(calls(warmCalls(n)), CHANNEL_WAIT_MS, 'IPC echoes (warm-up)')
    const k0 = await childCpu()
    const c0 = process.cpuUsage()
    await within(calls(n), CHANNEL_WAIT_MS, 'IPC echoes')
    const c = process.cpuUsage(c0)
    return (c.user + c.system) / n + ((await childCpu()) - k0) / n
  } finally {
    child.kill('SIGKILL')
    removeCleanup()
  }
}

/** CPU µs of both ends per update/ack exchange over one loopback WebSocket (binary frames). */
async function wsExchangeUs(n: number, updateBytes: number, ackBytes: number): Promise<number> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 })
  await once(wss, 'listening')
  const ack = Buffer.alloc(ackBytes, 9)
  wss.on('connection', (peer) => peer.on('message', () => peer.send(ack)))
  const ws = new WebSocket(`ws://127.0.0.1:${(wss.address() as { port: number }).port}`)
  try {
    await within(once(ws, 'open'), CHANNEL_WAIT_MS, 'the WebSocket to open')
    const update = Buffer.alloc(updateBytes, 5)
    let answered: () => void = () => {}
    let failed: (e: Error) => void = () => {}
    ws.on('message', () => answered())
    ws.once('close', () => failed(new Error('floor: the WebSocket closed mid-exchange')))
    const one = () =>
      new Promise<void>((resolve, reject) => {
        answered = resolve
        failed = reject
        ws.send(update)
      })
    return await within(cpuUsAsync(n, one), CHANNEL_WAIT_MS, 'WebSocket acks')
  } finally {
    ws.terminate()
    await new Promise<void>((r) => wss.close(() => r()))
  }
}

/**
 * One update of `BATCH` transfers as SPEC §6 has it: the batch's write set and its transaction
 * digests, nothing else (no results, no framing beyond the write set's own encoding).
 */
async function batchUpdate(): Promise<Uint8Array> {
  const { world, users } = await fundedTokenWorld()
  for (let k = 0; k < BATCH; k++) {
    const from = users[k % users.length]!
    world.setNonce(from, world.getNonce(from) + 1n)
    const r = await world.call({
      from,
      to: INSTANCE_ADDRESS,
      value: 0n,
      data: transferCalldata(users[(k + 1) % users.length]!, 1n),
      gasLimit: 200_000n,
      block: BLOCK,
    })
    if (r.status !== 'success') throw new Error(`floor: batch transfer ${k}: ${r.status}`)
  }
  const digests = Array.from({ length: BATCH }, () => randomBytes(32))
  return concatBytes(encodeWriteSet(world.takeWriteSet()), ...digests)
}

/**
 * CPU µs per update of the replication work between signatures (SPEC §6 steps 3–4): the
 * executor encrypts the update under the state key and hashes it into its log; a watchdog
 * decrypts it, hashes it, applies its write set to a plain map (the least any state store
 * does) and seals it for its host.
 */
async function replicationUs(
  n: number,
): Promise<{ executor: number; watchdog: number; bytes: number }> {
  const plain = await batchUpdate()
  const wsBytes = plain.subarray(0, plain.length - 32 * BATCH)
  const stateKey = randomBytes(32)
  const sealingKey = randomBytes(32)
  const aad = utf8('POSE-UPDATE-v1')
  const sealed = aeadSeal(stateKey, plain, aad)
  const executor = cpuUs(n, () => {
    aeadSeal(stateKey, plain, aad)
    keccak256(plain)
  })
  const store = new Map<string, Uint8Array>()
  const watchdog = cpuUs(n, () => {
    const opened = aeadOpen(stateKey, sealed, aad)
    keccak256(opened)
    for (const a of decodeWriteSet(wsBytes).accounts) {
      const account = bytesToHex(a.address)
      store.set(account, a.address)
      for (const [slot, value] of a.storage) store.set(account + bytesToHex(slot), value)
    }
    aeadSeal(sealingKey, opened, aad)
  })
  return { executor, watchdog, bytes: plain.length }
}

export async function benchFloor(cfg: FloorConfig): Promise<FloorResult> {
  const cores = cpus().length
  progress(`floor: bare EVM, ${cfg.bareTxs} transfers`)
  const bare = await bareEvmInChild(cfg.bareTxs)
  const n = cfg.iterations
  progress(`floor: primitives, ${n} each`)
  const domain = { chainId: 31337n, manager: new Uint8Array(20).fill(0x42) }
  const userKey = generateSecretKey()
  const contract = generateX25519KeyPair()
  const tx = {
    instance: 1n,
    from: secretKeyToAddress(userKey),
    nonce: 0n,
    to: INSTANCE_ADDRESS,
    value: 0n,
    data: randomBytes(68),
    gasLimit: 200_000n,
  }
  const digest = hashTx(domain, tx)
  const signature = signDigest(digest, userKey)
  const plaintext = encodeSignedTx({ ...tx, signature, session: { validUntil: 1n << 40n } })
  const sessions = new BoxSessions()
  const boxes = Array.from({ length: 64 }, () =>
    sessions.seal({
      recipientPublicKey: contract.publicKey,
      plaintext,
      context: BOX_CONTEXT.tx,
      aad: instanceAad(1n),
    }),
  )
  const answer = randomBytes(260)
  const responseKey = boxes[0]!.responseKey
  const sealedAnswer = sealAnswer(responseKey, answer)
  const sign = cpuUs(n, () => signDigest(digest, userKey))
  const recover = cpuUs(n, () => recoverAddress(digest, signature))
  const sibling = keccak256(digest)
  const pair = randomBytes(32)
  const pairTagOfDigest = pairTag(pair, digest)
  const replication = await replicationUs(n)
  const primitives: FloorResult['primitives'] = [
    { name: 'EVM transfer (bare EVM)', side: 'enclave', us: 1e6 / bare.tps, perTx: 1 },
    {
      name: 'EIP-712 digest of the tx',
      side: 'client',
      us: cpuUs(n, () => hashTx(domain, tx)),
      perTx: 1,
    },
    {
      // Decision 0014: the user signs one Session message per box session, not each tx; a
      // session holds up to BOX_SESSION_LIMITS.maxBoxes transactions.
      name: 'sign the Session authorisation (once per box session)',
      side: 'client',
      us: sign,
      perTx: 1 / BOX_SESSION_LIMITS.maxBoxes,
    },
    {
      // The SDK's box session (decision 0012): HKDF and AES-GCM per box, its one x25519 key
      // exchange spread over up to 65,536 boxes.
      name: 'seal the box (session key: HKDF + AES-GCM)',
      side: 'client',
      us: cpuUs(n, () =>
        sessions.seal({
          recipientPublicKey: contract.publicKey,
          plaintext,
          context: BOX_CONTEXT.tx,
          aad: instanceAad(1n),
        }),
      ),
      perTx: 1,
    },
    {
      name: 'open the box (shared secret of the session remembered)',
      side: 'enclave',
      us: cpuUs(n, (i) =>
        boxOpen({
          recipientSecretKey: contract.secretKey,
          recipientPublicKey: contract.publicKey,
          box: boxes[i % boxes.length]!.box,
          context: BOX_CONTEXT.tx,
          aad: instanceAad(1n),
        }),
      ),
      perTx: 1,
    },
    {
      name: 'recover the Session signer (once per box session)',
      side: 'enclave',
      us: recover,
      perTx: 1 / BOX_SESSION_LIMITS.maxBoxes,
    },
    {
      // Decision 0015: the receipts released together share one signature over their tree.
      name: `sign the receipts' tree root (batch ${BATCH})`,
      side: 'enclave',
      us: sign,
      perTx: 1 / BATCH,
    },
    {
      name: 'seal the answer (AES-GCM)',
      side: 'enclave',
      us: cpuUs(n, () => sealAnswer(responseKey, answer)),
      perTx: 1,
    },
    {
      name: 'open the answer',
      side: 'client',
      us: cpuUs(n, () => openAnswer(responseKey, sealedAnswer)),
      perTx: 1,
    },
    {
      // The SDK's check (decision 0015): the receipt's proof up to its tree's root...
      name: `verify the receipt: its proof to the root (batch ${BATCH}: ${Math.log2(BATCH)} node hashes)`,
      side: 'client',
      us: cpuUs(n, () => {
        let node = digest
        for (let k = 0; k < Math.log2(BATCH); k++) node = receiptNode(node, sibling)
        return node
      }),
      perTx: 1,
    },
    {
      // ...and the root's signer, recovered once per release (the SDK remembers it).
      name: `verify the receipt: the root's signer (once per release of ${BATCH})`,
      side: 'client',
      us: recover,
      perTx: 1 / BATCH,
    },
    {
      // Decision 0020: an update to each watchdog and each ack carry an HMAC under the pair
      // key of their two enclaves, over the envelope's digest.
      name: `replication: tag update + ack (pair key; s = ${S}, batch ${BATCH})`,
      side: 'enclave',
      us: cpuUs(n, () => pairTag(pair, digest)),
      perTx: (2 * S) / BATCH,
    },
    {
      name: `replication: check update + ack tags (s = ${S}, batch ${BATCH})`,
      side: 'enclave',
      us: cpuUs(n, () => pairTagValid(pair, digest, pairTagOfDigest)),
      perTx: (2 * S) / BATCH,
    },
    {
      name: `replication: executor encrypts and hashes the update (${replication.bytes} B, batch ${BATCH})`,
      side: 'enclave',
      us: replication.executor,
      perTx: 1 / BATCH,
    },
    {
      name: `replication: watchdog decrypts, hashes, applies and seals it (s = ${S}, batch ${BATCH})`,
      side: 'enclave',
      us: replication.watchdog,
      perTx: S / BATCH,
    },
  ]
  progress(`floor: API round trips, ${cfg.channelRequests}`)
  primitives.push({
    name: `API round trip: box in, sealed answer out (WebSocket API, server + SDK; ${API_IN_FLIGHT} in flight)`,
    side: 'transport',
    us: await apiRoundTripUs(cfg.channelRequests),
    perTx: 1,
  })
  progress(`floor: architecture channels (IPC to a child process, peer WebSocket)`)
  const update = replication.bytes + UPDATE_FRAMING
  // A transfer pays S / BATCH of each exchange per batch: fewer of them are measured.
  const perBatch = Math.max(1_000, Math.ceil(cfg.channelRequests / 5))
  const architecture: FloorResult['architecture'] = [
    {
      name: `ecall round trip: tx box in, sealed answer out (IPC, ecalls of a turn batched; ${API_IN_FLIGHT} in flight)`,
      us: await ipcRoundTripUs(cfg.channelRequests, TX_BOX, ANSWER, API_IN_FLIGHT),
      perTx: 1,
    },
    {
      name: `peer link: update to a watchdog, ack back (WebSocket; s = ${S}, batch ${BATCH})`,
      us: await wsExchangeUs(perBatch, update, ACK),
      perTx: S / BATCH,
    },
    {
      name: `ecall round trip: update into a watchdog (IPC; s = ${S}, batch ${BATCH})`,
      us: await ipcRoundTripUs(perBatch, update, ACK),
      perTx: S / BATCH,
    },
    {
      name: `ecall round trip: ack into the executor (IPC; s = ${S}, batch ${BATCH})`,
      us: await ipcRoundTripUs(perBatch, ACK, 64),
      perTx: S / BATCH,
    },
  ]
  const sum = (xs: Array<{ us: number; perTx: number }>) =>
    xs.reduce((a, p) => a + p.us * p.perTx, 0)
  const floorUsPerTx = sum(primitives)
  const serverFloorUsPerTx = sum(primitives.filter((p) => p.side !== 'client'))
  const archFloorUsPerTx = floorUsPerTx + sum(architecture)
  return {
    cores,
    bareEvmTps: bare.tps,
    primitives: primitives.map((p) => ({ ...p, us: round(p.us, 1), perTx: round(p.perTx, 2) })),
    floorUsPerTx: round(floorUsPerTx, 1),
    ceilingTps: round((cores * 1e6) / floorUsPerTx, 0),
    serverFloorUsPerTx: round(serverFloorUsPerTx, 1),
    serverCeilingTps: round((cores * 1e6) / serverFloorUsPerTx, 0),
    architecture: architecture.map((p) => ({ ...p, us: round(p.us, 1), perTx: round(p.perTx, 2) })),
    archFloorUsPerTx: round(archFloorUsPerTx, 1),
    archCeilingTps: round((cores * 1e6) / archFloorUsPerTx, 0),
    targetTps: round(bare.tps / 2, 0),
  }
}

export function printFloor(r: FloorResult): void {
  const rows: Row[] = [
    ...r.primitives,
    ...r.architecture.map((p) => ({ ...p, side: 'architecture' })),
  ].map((p) => ({
    primitive: p.name,
    side: p.side,
    cpu_us: p.us,
    per_tx: p.perTx,
    us_per_tx: round(p.us * p.perTx, 1),
  }))
  printTable('Least CPU per transfer through the protocol (unavoidable primitives)', rows, [
    `floor ${r.floorUsPerTx} µs per transfer → at most ${r.ceilingTps} tx/s on ${r.cores} cores (${r.serverCeilingTps} tx/s if clients ran elsewhere: ${r.serverFloorUsPerTx} µs).`,
    `with the architecture's channels (operator ⇄ enclave process IPC, peer WebSocket): ${r.archFloorUsPerTx} µs → at most ${r.archCeilingTps} tx/s.`,
    `target (50 % of bare EVM ${round(r.bareEvmTps, 0)} tx/s): ${r.targetTps} tx/s → ${r.ceilingTps >= r.targetTps ? 'within' : 'ABOVE'} the ceiling.`,
    'Not counted: taking the write set out of the EVM, the executor sealing its own log, state digests, results for re-issue, JSON framing and validation, scheduling.',
  ])
}
