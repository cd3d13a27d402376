/**
 * SDK faults found by the fault-injection simulator, replayed against the real SDK actions
 * (src/client/). The far side is faked: the manager is an object that answers the SDK's reads
 * and records its transactions instead of mining them; the executor is the harness's enclave
 * behind the operator's HTTP API (src/operator/api.ts) on a loopback port, whose connections
 * can be cut after the enclave answered, as the simulator's proxy cuts them.
 */
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { createServer as createHttpServer } from 'node:http'
import { createServer, type Socket } from 'node:net'
import { describe, test } from 'node:test'
import {
  type Address,
  encodeAbiParameters,
  encodeEventTopics,
  encodeFunctionData,
  type Hex,
} from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { anvil } from 'viem/chains'
import { privateTokenAbi, privateTokenBytecode } from '../../examples/contracts.generated.ts'
import { poseManagerAbi } from '../../src/chain/manager.ts'
import { ChainTxError } from '../../src/chain/sender.ts'
import { deployContract } from '../../src/client/actions/deployContract.ts'
import { deposit } from '../../src/client/actions/deposit.ts'
import { getNonce } from '../../src/client/actions/getNonce.ts'
import { getReceipt } from '../../src/client/actions/getReceipt.ts'
import { sendTransaction } from '../../src/client/actions/sendTransaction.ts'
import { withdraw } from '../../src/client/actions/withdraw.ts'
import { writeContract } from '../../src/client/actions/writeContract.ts'
import { newClientState, type PoseClientBase } from '../../src/client/createPoseClient.ts'
import {
  ContractRevertError,
  DeployContractError,
  PoseError,
  PoseRequestError,
  TransactionUnconfirmedError,
} from '../../src/client/errors.ts'
import { type ApiBackend, createApi } from '../../src/operator/api.ts'
import {
  BoxSessions,
  bytesToHex,
  type EnclaveOutput,
  type ErrorCode,
  EventKind,
  encodeAnswer,
  equalBytes,
  generateSecretKey,
  Phase,
  ProtocolError,
  recoverAddress,
  sealAnswer,
  withdrawDigest,
} from '../../src/protocol/index.ts'
import {
  CHAIN_ID,
  digestOf,
  hexb,
  MANAGER,
  MEASUREMENT,
  pump,
  sendTransfer,
  setupActive,
} from './harness.ts'

type Setup = Awaited<ReturnType<typeof setupActive>>

const ZERO_ADDRESS: Address = '0x0000000000000000000000000000000000000000'
const ZERO_WORD: Hex = `0x${'00'.repeat(32)}`

/** The manager as the SDK sees it: the harness's instance, and the transactions sent to it. */
type FakeManager = {
  phase: Phase
  /** Until when the executor's watchdog round runs (chain time; the fake head is at 1001). */
  watchdogDeadline?: bigint
  contractEncryptionKey: Hex
  /** The genesis digest in the instance's Activated event (zero unless set). */
  genesisDigest?: Hex
  /** The executor's operator endpoint. */
  endpoint: string
  /** No member left (a frozen or terminated instance): the manager names no executor. */
  executorGone?: boolean
  /** Reads of the instance that fail (the chain's endpoint down) before they answer again. */
  failReads?: number
  writes: Array<{ functionName: string; args: readonly unknown[] }>
  /** Called with each transaction as it is sent; an error it returns fails the write. */
  // biome-ignore lint/suspicious/noConfusingVoidType: most callbacks only observe the write
  onWrite?: (functionName: string) => Error | undefined | void
}

/**
 * A client of `setup`'s creator whose chain is `manager`: reads answer from it, writes are
 * recorded there (a `createContract` receipt carries the instance's `Created` event).
 */
function sdkClient(
  setup: Setup,
  manager: FakeManager,
  opts: { autoChallenge?: boolean; requestTimeoutMs?: number; hostProbeMs?: number } = {},
): PoseClientBase {
  const { exec } = setup
  const operators = setup.nodes.map((_, i) => `0x${(i + 1).toString(16).padStart(40, '0')}`)
  const readContract = async ({ functionName }: { functionName: string }) => {
    if (functionName === 'getInstance' && manager.failReads) {
      manager.failReads--
      throw new Error('fetch failed: the chain endpoint is down')
    }
    if (functionName === 'getInstance')
      return {
        phase: manager.phase,
        watchdogCount: setup.nodes.length - 1,
        drawBlock: 10n,
        executorSlot: 0,
        eventIndex: 3n,
        eventHash: ZERO_WORD,
        signers: setup.nodes.map((n) =>
          manager.executorGone ? ZERO_ADDRESS : bytesToHex(n.signer),
        ),
        operators,
        challenger: ZERO_ADDRESS,
        challengeDeadline: 0n,
        watchdogMask: 0,
        respondedMask: 0,
        watchdogDeadline: manager.watchdogDeadline ?? 0n,
        refillBlock: 0n,
      }
    if (functionName === 'getOperator')
      return {
        enclaveSigner: bytesToHex(exec.signer),
        encryptionKey: bytesToHex(exec.encryptionKey),
        stake: 0n,
        registered: true,
        exiting: false,
        memberships: 1,
        exitRequestedAt: 0n,
      }
    return 0n // creationFee, challengeFee
  }
  const created = {
    topics: encodeEventTopics({
      abi: poseManagerAbi,
      eventName: 'InstanceEvent',
      args: { id: setup.instance, index: 1n },
    }),
    data: encodeAbiParameters(
      [{ type: 'uint8' }, { type: 'bytes' }, { type: 'bytes32' }],
      [EventKind.Created, '0x', ZERO_WORD],
    ),
  }
  const sender = {
    write: async (call: { functionName: string; args: readonly unknown[] }) => {
      manager.writes.push({ functionName: call.functionName, args: call.args })
      const failed = manager.onWrite?.(call.functionName)
      if (failed) throw failed
      const logs = call.functionName === 'createContract' ? [created] : []
      return { hash: ZERO_WORD, receipt: { logs } }
    },
  }
  return {
    chain: anvil,
    publicClient: {
      readContract,
      // The head the harness's enclaves last saw (view expiries are counted from it).
      getBlock: async () => ({ timestamp: 1001n }),
      getBlockNumber: async () => 12n,
      // The manager stores no endpoint and no contract encryption key: they are in the
      // operator's registration log and the instance's Activated event.
      getLogs: async ({ event }: { event?: { name: string } }) =>
        event?.name === 'OperatorRegistered'
          ? [
              {
                args: { endpoint: manager.endpoint, measurement: bytesToHex(MEASUREMENT) },
                blockNumber: 1n,
                logIndex: 0,
              },
            ]
          : event?.name === 'InstanceEvent' && manager.contractEncryptionKey !== ZERO_WORD
            ? [
                {
                  args: {
                    id: setup.instance,
                    index: 3n,
                    kind: EventKind.Activated,
                    data: encodeAbiParameters(
                      [{ type: 'bytes32' }, { type: 'bytes32' }, { type: 'uint256' }],
                      [manager.contractEncryptionKey, manager.genesisDigest ?? ZERO_WORD, 1n],
                    ),
                  },
                  blockNumber: 2n,
                  logIndex: 0,
                },
              ]
            : [],
    } as never,
    account: privateKeyToAccount(bytesToHex(setup.creatorKey)),
    manager: bytesToHex(MANAGER),
    domain: { chainId: CHAIN_ID, manager: MANAGER },
    sender: sender as never,
    pollingIntervalMs: 10,
    failover: {
      autoChallenge: opts.autoChallenge ?? false,
      timeoutMs: 3_000,
      requestTimeoutMs: opts.requestTimeoutMs ?? 3_000,
      hostProbeMs: opts.hostProbeMs ?? 0,
      // These tests cut HTTP connections at chosen points (test/unit/apiSocket.test.ts covers
      // the WebSocket API).
      apiTransport: 'http',
    },
    state: newClientState(),
    sessionAuth: true,
  }
}

/**
 * Passes requests to the harness's executor enclave and returns its sealed answer, as the
 * operator node does; `answered(kind)` runs after each answer, before it is sent.
 */
function executorBackend(
  setup: Setup,
  answered: (kind: 'tx' | 'view') => Promise<void> = async () => undefined,
): ApiBackend {
  let requests = 0
  return {
    info: () => ({}),
    deploy: async () => {
      throw new ProtocolError('WRONG_PHASE', 'deploy: not served here')
    },
    request: async (kind, instance, box) => {
      const requestId = `r${++requests}`
      const { outputs } = await setup.exec.enclave.call(kind, { requestId, instance, box })
      const answer = outputs.find((o) => o.type === 'answer' && o.requestId === requestId)
      assert.ok(answer?.type === 'answer' && answer.sealed, `${kind}: the enclave answered`)
      await answered(kind)
      return answer.sealed
    },
    digest: (instance) => digestOf(setup.exec, instance),
    status: async () => ({}),
  }
}

/** A client of `setup`'s creator on `manager` whose next nonce in the instance is `nonce`. */
function clientAt(setup: Setup, manager: FakeManager, nonce: bigint) {
  const client = sdkClient(setup, manager)
  const key = setup.instance.toString()
  client.state.nonces.set(key, nonce)
  return { client, key }
}

/**
 * `backend` behind the operator's HTTP API on a loopback port; a request for which `cut(path)`
 * holds loses its connection after the backend answered, before the answer is sent.
 */
async function serve(backend: ApiBackend, cut: (path: string) => boolean = () => false) {
  const app = createApi(backend)
  app.addHook('onSend', async (req, _reply, payload) => {
    if (cut(req.url)) req.raw.socket.destroy()
    return payload
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as { port: number }
  return { endpoint: `http://127.0.0.1:${port}`, close: () => app.close() }
}

/** True the first time a path ending in `/${kind}` is seen, false after. */
function firstOf(kind: string): (path: string) => boolean {
  let cut = false
  return (path) => {
    if (cut || !path.endsWith(`/${kind}`)) return false
    cut = true
    return true
  }
}

test('a withdrawal authorisation answered NOT_READY while an update replicates is asked again (simulator, commit 635a1c5)', {
  timeout: 5_000,
}, async () => {
  const setup = await setupActive()
  const { nodes, instance, exec, ev } = setup
  // Another user's transfer was executed and its update has not reached the watchdogs: the
  // executor authorises no withdrawal (NOT_READY) until their acks release it.
  let replicating: EnclaveOutput[] | undefined = await sendTransfer(
    exec,
    setup,
    generateSecretKey(),
    0n,
    new Uint8Array(20).fill(5),
    'transfer',
  )
  const answered: string[] = []
  const operator = await serve(
    executorBackend(setup, async (kind) => {
      answered.push(kind)
      // The acks arrive once the first answer is on its way.
      if (replicating) await pump(nodes, replicating, setup.answers)
      replicating = undefined
    }),
  )
  try {
    const manager: FakeManager = {
      phase: Phase.Active,
      contractEncryptionKey: bytesToHex(setup.contractEncryptionKey),
      endpoint: operator.endpoint,
      writes: [],
    }
    const client = sdkClient(setup, manager)
    const auth = await withdraw(client, { instance })
    assert.deepEqual(answered, ['view', 'view'], 'asked once more after NOT_READY')
    assert.equal(auth.cumulative, 0n)
    assert.equal(auth.eventIndex, 3n)
    const digest = withdrawDigest({
      chainId: CHAIN_ID,
      manager: MANAGER,
      instance,
      recipient: setup.creator,
      cumulative: 0n,
      eventIndex: 3n,
      eventHash: ev.history().at(-1)!.hash,
    })
    assert.deepEqual(recoverAddress(digest, hexb(auth.signature)), exec.signer, 'by the executor')
    assert.deepEqual(manager.writes, [
      {
        functionName: 'withdraw',
        args: [instance, client.account.address, 0n, 3n, auth.signature],
      },
    ])
  } finally {
    await operator.close()
  }
})

test('a withdrawal whose authorisation the manager finds too old (32 events later) is authorised again and sent again until the deadline', {
  timeout: 10_000,
}, async () => {
  const setup = await setupActive()
  const asked: string[] = []
  const operator = await serve(executorBackend(setup, async (kind) => void asked.push(kind)))
  try {
    // A burst of events keeps the first authorisations stale (five: more than a fixed count of
    // attempts would allow); the last refusal is a mined transaction's, named inside its account.
    let stale = 5
    const manager: FakeManager = {
      phase: Phase.Active,
      contractEncryptionKey: bytesToHex(setup.contractEncryptionKey),
      endpoint: operator.endpoint,
      writes: [],
      onWrite: (functionName) =>
        functionName === 'withdraw' && stale-- > 0
          ? new ChainTxError(
              'withdraw',
              stale === 0
                ? 'transaction 0x12 reverted in block 9 (gas 30000 of 90000; replayed before its block: passes; after it: PoseManager_StaleEventIndex(1, 3, 40))'
                : 'PoseManager_StaleEventIndex(1, 3, 40)',
              { reverted: true },
            )
          : undefined,
    }
    const client = sdkClient(setup, manager)
    const auth = await withdraw(client, { instance: setup.instance })
    assert.deepEqual(asked, Array(6).fill('view'), 'a fresh authorisation each time')
    assert.equal(manager.writes.length, 6, 'sent again')
    assert.ok(auth.hash)
    // Any other refusal is final.
    manager.onWrite = () =>
      new ChainTxError('withdraw', 'PoseManager_Insolvent(1, 5, 0)', { reverted: true })
    await assert.rejects(withdraw(client, { instance: setup.instance }), /Insolvent/)
    assert.equal(manager.writes.length, 7)
    // Stale for longer than the failover's deadline: the refusal is returned.
    manager.onWrite = () =>
      new ChainTxError('withdraw', 'PoseManager_StaleEventIndex(1, 3, 40)', { reverted: true })
    await assert.rejects(withdraw(client, { instance: setup.instance }), /StaleEventIndex/)
  } finally {
    await operator.close()
  }
})

test('a deploy whose connection is cut is sent again, and an auto-challenging client does not challenge the executor after one lost connection (simulator, commit b16a9af)', {
  timeout: 5_000,
}, async () => {
  const setup = await setupActive()
  const { instance, exec } = setup
  const { digest: genesisDigest } = await digestOf(exec, instance)
  const manager: FakeManager = {
    phase: Phase.Creating,
    contractEncryptionKey: ZERO_WORD,
    endpoint: '',
    writes: [],
  }
  const deploys: bigint[] = []
  const cutDeploy = firstOf('deploy')
  const cutView = firstOf('view')
  const answered: string[] = []
  const operator = await serve(
    {
      ...executorBackend(setup, async (kind) => {
        answered.push(kind)
      }),
      // A repeated deploy answers with the genesis of the first; the watchdogs' acks activate
      // the instance on-chain.
      deploy: async (id) => {
        deploys.push(id)
        manager.phase = Phase.Active
        manager.contractEncryptionKey = bytesToHex(setup.contractEncryptionKey)
        manager.genesisDigest = bytesToHex(genesisDigest)
        return { contractEncryptionKey: setup.contractEncryptionKey, genesisDigest }
      },
    },
    (path) => cutDeploy(path) || cutView(path),
  )
  manager.endpoint = operator.endpoint
  try {
    const client = sdkClient(setup, manager, { autoChallenge: true })
    const deployed = await deployContract(client, {
      abi: privateTokenAbi,
      bytecode: privateTokenBytecode,
      args: [1000n],
      watchdogCount: 2,
      timeoutMs: 3_000,
    })
    assert.deepEqual(deploys, [instance, instance], 'the deploy was sent again after the cut')
    assert.equal(deployed.instance, instance)
    assert.equal(deployed.contractEncryptionKey, bytesToHex(setup.contractEncryptionKey))
    assert.equal(deployed.genesisDigest, bytesToHex(genesisDigest))

    // A view whose first answer is lost with its connection: one lost connection is not a
    // silent executor, so the view is sent again and nothing is challenged.
    assert.equal(await getNonce(client, { instance }), 0n)
    assert.deepEqual(answered, ['view', 'view'], 'the view was sent again after the cut')
    assert.deepEqual(
      manager.writes.map((w) => w.functionName),
      ['createContract'],
      'no challengeExecutor after one lost connection',
    )
  } finally {
    await operator.close()
  }
})

test("a deploy returns the instance, key and genesis the chain holds, whatever the executor's host answers", {
  timeout: 5_000,
}, async () => {
  const setup = await setupActive()
  const { instance } = setup
  const manager: FakeManager = {
    phase: Phase.Creating,
    contractEncryptionKey: ZERO_WORD,
    endpoint: '',
    writes: [],
  }
  const chainKey = bytesToHex(setup.contractEncryptionKey)
  const chainGenesis: Hex = `0x${'5a'.repeat(32)}`
  // A host that answers the deploy with claims of its own; the instance is activated on-chain
  // with the enclave's key and genesis.
  const host = createHttpServer((req, res) => {
    req.resume()
    req.on('end', () => {
      manager.phase = Phase.Active
      manager.contractEncryptionKey = chainKey
      manager.genesisDigest = chainGenesis
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(
        JSON.stringify({
          instance: '999',
          createTxHash: `0x${'ee'.repeat(32)}`,
          contractEncryptionKey: `0x${'bb'.repeat(32)}`,
          genesisDigest: `0x${'cc'.repeat(32)}`,
        }),
      )
    })
  })
  host.listen(0, '127.0.0.1')
  await once(host, 'listening')
  manager.endpoint = `http://127.0.0.1:${(host.address() as { port: number }).port}`
  try {
    const deployed = await deployContract(sdkClient(setup, manager), {
      abi: privateTokenAbi,
      bytecode: privateTokenBytecode,
      args: [1000n],
      watchdogCount: 2,
      timeoutMs: 3_000,
    })
    assert.deepEqual(deployed, {
      instance,
      createTxHash: ZERO_WORD,
      contractEncryptionKey: chainKey,
      genesisDigest: chainGenesis,
    })
  } finally {
    host.close()
  }
})

test('a deploy that fails after its instance was created names the instance', {
  timeout: 10_000,
}, async () => {
  const setup = await setupActive()
  const manager: FakeManager = {
    phase: Phase.Creating,
    contractEncryptionKey: ZERO_WORD,
    // The executor's operator is unreachable: nothing listens there.
    endpoint: 'http://127.0.0.1:1',
    writes: [],
  }
  const e = await deployContract(sdkClient(setup, manager), {
    abi: privateTokenAbi,
    bytecode: privateTokenBytecode,
    args: [1000n],
    watchdogCount: 2,
    timeoutMs: 500,
  }).then(
    () => assert.fail('the deploy resolved'),
    (e: unknown) => e,
  )
  assert.ok(e instanceof DeployContractError, String(e))
  assert.equal(e.instance, setup.instance)
  assert.equal(e.createTxHash, ZERO_WORD)
  assert.ok(
    e.shortMessage.startsWith(
      `Instance ${setup.instance} was created (transaction ${ZERO_WORD}) but not deployed: `,
    ),
    e.shortMessage,
  )
  assert.ok(e.cause instanceof PoseError, 'the failure itself is its cause')
  assert.equal(e.code, e.cause.code)
  assert.deepEqual(
    manager.writes.map((w) => w.functionName),
    ['createContract'],
  )
  // The executor takes the code and leaves the pool before activating it: the same, with what
  // to do.
  const host = createHttpServer((req, res) => {
    req.resume()
    req.on('end', () => {
      manager.phase = Phase.Frozen
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end('{}')
    })
  })
  host.listen(0, '127.0.0.1')
  await once(host, 'listening')
  manager.endpoint = `http://127.0.0.1:${(host.address() as { port: number }).port}`
  const frozen = await deployContract(sdkClient(setup, manager), {
    abi: privateTokenAbi,
    bytecode: privateTokenBytecode,
    args: [1000n],
    watchdogCount: 2,
    timeoutMs: 2_000,
  })
    .then(
      () => assert.fail('the deploy resolved'),
      (e: unknown) => e,
    )
    .finally(() => host.close())
  assert.ok(frozen instanceof DeployContractError, String(frozen))
  assert.match(
    frozen.shortMessage,
    new RegExp(`^Instance ${setup.instance} was created .* create it again$`),
  )
})

/** A host that accepts connections and never answers (a withholding or stopped operator). */
/**
 * A host that accepts connections and answers nothing, or (`answerHealth`) answers only its
 * operator's `/v1/health`, as an operator whose enclave holds every request would.
 */
async function silentHost(onAccept?: (accepted: number) => void, answerHealth = false) {
  const sockets = new Set<Socket>()
  const host = { accepted: 0, healthAnswered: 0 }
  const server = createServer((s) => {
    host.accepted++
    onAccept?.(host.accepted)
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
    if (!answerHealth) return
    s.on('data', (chunk) => {
      if (!chunk.toString('latin1').startsWith('GET /v1/health ')) return
      host.healthAnswered++
      const body = '{"ok":true}'
      s.write(
        `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\nconnection: keep-alive\r\n\r\n${body}`,
      )
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
  const { port } = server.address() as { port: number }
  return Object.assign(host, {
    endpoint: `http://127.0.0.1:${port}`,
    close: async () => {
      for (const s of sockets) s.destroy()
      await new Promise<void>((r) => server.close(() => r()))
    },
  })
}

/**
 * An auto-challenging client's request (a transfer, or a view) to an executor whose host never
 * answers, with the instance in `phase` (`onAccept` may change it as connections arrive). A
 * challenge moves the fake manager to `ExecutorChallenged`; nobody answers it. Returns the
 * connections the host had accepted when each challenge was sent, and the request's time to fail.
 */
async function askSilentHost(
  kind: 'tx' | 'view',
  phase: Pick<FakeManager, 'phase' | 'watchdogDeadline'>,
  onAccept?: (accepted: number, manager: FakeManager) => void,
  opts: {
    requestTimeoutMs?: number
    hostProbeMs?: number
    answerHealth?: boolean
    /** Requests sent at once by the same client (views only). */
    concurrent?: number
  } = {},
) {
  const setup = await setupActive()
  const manager: FakeManager = {
    ...phase,
    contractEncryptionKey: bytesToHex(setup.contractEncryptionKey),
    endpoint: '',
    writes: [],
  }
  const host = await silentHost((accepted) => onAccept?.(accepted, manager), opts.answerHealth)
  manager.endpoint = host.endpoint
  const challengedAfter: number[] = []
  /** Milliseconds from the request to each challenge. */
  const challengedAtMs: number[] = []
  let t0 = performance.now()
  manager.onWrite = (fn) => {
    if (fn !== 'challengeExecutor') return
    challengedAfter.push(host.accepted)
    challengedAtMs.push(performance.now() - t0)
    manager.phase = Phase.ExecutorChallenged
  }
  try {
    const client = sdkClient(setup, manager, {
      autoChallenge: true,
      requestTimeoutMs: opts.requestTimeoutMs ?? 200,
      hostProbeMs: opts.hostProbeMs ?? 0,
    })
    t0 = performance.now()
    client.state.nonces.set(setup.instance.toString(), 0n)
    const errors = await Promise.all(
      Array.from({ length: opts.concurrent ?? 1 }, () =>
        (kind === 'tx'
          ? sendTransaction(client, { instance: setup.instance, data: '0x' })
          : getNonce(client, { instance: setup.instance })
        ).catch((e: unknown) => e),
      ),
    )
    for (const e of errors.slice(1))
      assert.ok(e instanceof PoseRequestError && e.code === 'TIMEOUT', String(e))
    const err = errors[0]
    // Nobody answers, on- or off-chain: the request gives up after the failover deadline.
    assert.ok(err instanceof PoseRequestError, String(err))
    assert.equal(err.code, 'TIMEOUT')
    if (kind === 'tx') {
      // Its attempt went unanswered (it may have run): the transaction is unconfirmed, however
      // the wait ended (during the challenge, past the deadline, or at its first attempt).
      assert.ok(err instanceof TransactionUnconfirmedError, `unconfirmed: ${err}`)
      assert.equal(client.state.sent.size, 1, 'kept for getReceipt')
      assert.equal(client.state.nonces.get(setup.instance.toString()), 1n, 'its nonce stays taken')
    }
    assert.deepEqual(
      manager.writes.map((w) => w.functionName),
      challengedAfter.map(() => 'challengeExecutor'),
    )
    return {
      challengedAfter,
      challengedAtMs,
      accepted: host.accepted,
      healthAnswered: host.healthAnswered,
      ms: performance.now() - t0,
      message: err.message,
    }
  } finally {
    await host.close()
  }
}

// Each test waits out real request and failover timers on hosts of its own: they run together.
describe('an auto-challenging client and a silent executor', { concurrency: true }, () => {
  test('an auto-challenging client challenges an executor whose host accepts requests and never answers after the first unanswered one, then waits for the challenge on-chain', {
    timeout: 10_000,
  }, async () => {
    const r = await askSilentHost('view', { phase: Phase.Active })
    // The deadline is a 3 s timer, and libuv starts timers from the time its loop last read the
    // clock: on a loaded machine it fires a few milliseconds short of 3 s by performance.now().
    assert.ok(r.ms >= 2_950, `gave up after the failover deadline (${r.ms.toFixed(1)} ms)`)
    // Challenged once, right after the first unanswered request (before, an unanswered request
    // counted as one lost connection of three).
    assert.deepEqual(r.challengedAfter, [1], 'challenged after the first request')
    // While the challenge is open the client waits for its outcome on-chain instead of sending
    // the request to the silent host again (each try would wait out the request timeout).
    assert.equal(r.accepted, 1, 'no request to the challenged host while its challenge is open')
  })

  test('an auto-challenging client does not challenge an executor that leaves a transaction unanswered while its watchdog round is open on-chain, and challenges once the round is over and the executor still does not answer', {
    timeout: 10_000,
  }, async () => {
    // The executor holds receipts while it waits for a silent watchdog: requests go unanswered
    // until the round closes (here, while the third request waits; the fake head is at 1001).
    const r = await askSilentHost(
      'tx',
      { phase: Phase.WatchdogsChallenged, watchdogDeadline: 1001n },
      (n, m) => {
        if (n === 3) m.phase = Phase.Active
      },
    )
    // Requests unanswered during the round were sent again, unchallenged; the first one
    // unanswered after it (the round closed while it waited) led to the challenge.
    assert.deepEqual(r.challengedAfter, [3], 'challenged after the round closed')
    assert.equal(r.accepted, 3, 'no request to the challenged host while its challenge is open')
  })

  test('an auto-challenging client challenges an executor whose watchdog round is past its deadline and still open', {
    timeout: 10_000,
  }, async () => {
    // An executor that never closes its round is not shielded by it: the chain's head (1001) is
    // past the round's deadline, so the first unanswered request leads to the challenge.
    const r = await askSilentHost('tx', {
      phase: Phase.WatchdogsChallenged,
      watchdogDeadline: 1000n,
    })
    assert.deepEqual(r.challengedAfter, [1])
  })

  test('an auto-challenging client challenges an executor that leaves a view unanswered during its watchdog round', {
    timeout: 10_000,
  }, async () => {
    // A view waits for no watchdog: the executor answers it at once whatever its round.
    const r = await askSilentHost('view', {
      phase: Phase.WatchdogsChallenged,
      watchdogDeadline: 1001n,
    })
    assert.deepEqual(r.challengedAfter, [1])
  })

  test('an auto-challenging client challenges an executor whose host leaves two health checks unanswered, without waiting out the request timeout', {
    timeout: 10_000,
  }, async () => {
    // A stopped or frozen host: the kernel accepts connections, nothing answers. The request may
    // wait a minute; the operator's health check answers without the enclave, so two of them
    // left unanswered (100 ms each) say the host is gone.
    const r = await askSilentHost('tx', { phase: Phase.Active }, undefined, {
      requestTimeoutMs: 60_000,
      hostProbeMs: 100,
    })
    assert.deepEqual(r.challengedAfter, [3], 'challenged after the request and two health checks')
    assert.ok(r.challengedAtMs[0]! < 30_000, `challenged by the checks (${r.challengedAtMs[0]} ms)`)
    assert.match(r.message, /left 2 health checks unanswered for 100 ms each/)
  })

  test('an executor whose operator answers its health checks keeps the request waiting until the request timeout', {
    timeout: 10_000,
  }, async () => {
    // A busy enclave behind a live operator: the request is not given up before
    // `requestTimeoutMs`, however many checks pass meanwhile.
    const r = await askSilentHost('tx', { phase: Phase.Active }, undefined, {
      requestTimeoutMs: 1_000,
      hostProbeMs: 100,
      answerHealth: true,
    })
    assert.ok(r.healthAnswered >= 3, `health checks answered: ${r.healthAnswered}`)
    assert.equal(r.challengedAtMs.length, 1)
    assert.ok(
      r.challengedAtMs[0]! >= 1_000,
      `challenged after the request timed out (${r.challengedAtMs[0]} ms)`,
    )
    assert.match(r.message, /did not answer within 1000 ms/)
  })

  test('a transaction whose first attempt is left unanswered past the failover deadline is unconfirmed', {
    timeout: 10_000,
  }, async () => {
    // The request timeout outlasts the failover's 3 s: the first attempt ends the request. It
    // reached the host, whose enclave may have run it.
    const r = await askSilentHost('tx', { phase: Phase.Active }, undefined, {
      requestTimeoutMs: 3_200,
    })
    assert.equal(r.accepted, 1)
    assert.deepEqual(r.challengedAfter, [], 'no time left to challenge')
  })

  test('requests pending together on one host share its health checks', {
    timeout: 10_000,
  }, async () => {
    // Sixteen views wait on a live operator whose enclave never answers: one check per 100 ms
    // for all of them (about ten before the requests time out), not one per request.
    const r = await askSilentHost('view', { phase: Phase.Active }, undefined, {
      requestTimeoutMs: 1_000,
      hostProbeMs: 100,
      answerHealth: true,
      concurrent: 16,
    })
    assert.ok(r.healthAnswered >= 3, `health checks answered: ${r.healthAnswered}`)
    assert.ok(r.healthAnswered <= 20, `one check at a time for all: ${r.healthAnswered}`)
  })
})

test("a transaction whose session authorisation expired on the enclave's chain clock is sent again signed itself, and the next session is authorised anew", {
  timeout: 10_000,
}, async () => {
  const setup = await setupActive()
  const { nodes, instance, exec } = setup
  let requests = 0
  const backend: ApiBackend = {
    ...executorBackend(setup),
    request: async (kind, inst, box) => {
      const requestId = `s${++requests}`
      const { outputs } = await exec.enclave.call(kind, { requestId, instance: inst, box })
      await pump(nodes, outputs, setup.answers)
      const sealed = setup.answers.get(requestId)
      assert.ok(sealed, `${kind}: the enclave answered`)
      return sealed
    },
  }
  const operator = await serve(backend)
  try {
    const manager: FakeManager = {
      phase: Phase.Active,
      contractEncryptionKey: bytesToHex(setup.contractEncryptionKey),
      endpoint: operator.endpoint,
      writes: [],
    }
    const client = sdkClient(setup, manager)
    client.boxSessions = new BoxSessions()
    let head = 1001n
    ;(client.publicClient as { getBlock: unknown }).getBlock = async () => ({ timestamp: head })
    let signatures = 0
    const sign = client.account.sign!.bind(client.account)
    client.account.sign = (p) => {
      signatures++
      return sign(p)
    }
    const transfer = async () => {
      const before = signatures
      const r = await sendTransaction(client, {
        instance,
        data: encodeFunctionData({
          abi: privateTokenAbi,
          functionName: 'transfer',
          args: [ZERO_ADDRESS, 1n],
        }),
      })
      assert.equal(r.status, 'success')
      return signatures - before
    }
    // The nonce view is signed; the first transfer signs the session's authorisation.
    assert.equal(await transfer(), 2, 'nonce view + Session')
    assert.equal(await transfer(), 0, 'the session is authorised already')
    // The enclave's chain clock passes validUntil (1001 + 3600).
    await exec.enclave.call('chain', { blockNumber: 12n, timestamp: 1001n + 3601n, events: [] })
    assert.equal(await transfer(), 1, 'EXPIRED, then the transaction signed itself')
    head = 1001n + 3601n
    assert.equal(await transfer(), 1, 'a new authorisation from the new head')
    assert.equal(await transfer(), 0)
  } finally {
    await operator.close()
  }
})

/**
 * The harness's executor behind the operator's API with its watchdogs pumped, so that receipts
 * are released; a request waits for its answer (one held behind a nonce gap gets it when the
 * gap is filled). `refuse(n)` refuses the n-th request (from 1) before the enclave sees it.
 */
async function pumpedOperator(
  setup: Setup,
  refuse: (n: number) => boolean = () => false,
  cut?: (path: string) => boolean,
  /** Requests the host passes to its enclave and then answers with a refusal of its own. */
  lie: (kind: 'tx' | 'view') => boolean = () => false,
) {
  return hookedOperator(
    setup,
    async (n) => {
      if (refuse(n)) throw new ProtocolError('OUT_OF_RANGE', `request ${n}: refused by the test`)
      return undefined
    },
    cut,
    (kind, n) => {
      if (lie(kind)) throw new ProtocolError('OUT_OF_RANGE', `request ${n}: refused (a lie)`)
    },
  )
}

const transferData = encodeFunctionData({
  abi: privateTokenAbi,
  functionName: 'transfer',
  args: [ZERO_ADDRESS, 1n],
})

test('a transaction refused by the SDK itself takes no nonce', { timeout: 5_000 }, async () => {
  const setup = await setupActive()
  const { operator, manager } = await pumpedOperator(setup)
  try {
    const { client, key } = clientAt(setup, manager, 5n)
    const refusals: Array<[Parameters<typeof sendTransaction>[1], string]> = [
      [{ instance: setup.instance, to: '0x12' }, 'MALFORMED'],
      [{ instance: setup.instance, value: -1n }, 'OUT_OF_RANGE'],
      [{ instance: setup.instance, gasLimit: 1n << 64n }, 'OUT_OF_RANGE'],
      // Below its intrinsic gas (21,000 and 4 per zero byte of data), which the enclave refuses.
      [{ instance: setup.instance, data: '0x0000', gasLimit: 21_007n }, 'OUT_OF_RANGE'],
      [{ instance: setup.instance, data: `0x${'00'.repeat(64 * 1024 + 1)}` }, 'OVERSIZED'],
    ]
    for (const [params, code] of refusals) {
      await assert.rejects(sendTransaction(client, params), (e: unknown) => {
        assert.ok(e instanceof ProtocolError, String(e))
        assert.equal(e.code, code)
        return true
      })
      assert.equal(client.state.nonces.get(key), 5n, `${code}: the nonce is still free`)
    }
    assert.equal(client.state.sent.size, 0)
  } finally {
    await operator.close()
  }
})

test('concurrent first transactions of an account take nonces in turn; one the enclave refuses gives its nonce back, and the next transaction fills the gap', {
  timeout: 10_000,
}, async () => {
  const setup = await setupActive()
  const { operator, manager } = await pumpedOperator(setup)
  try {
    const client = sdkClient(setup, manager)
    const key = setup.instance.toString()
    // Both ask the enclave for the account's nonce (0); they must not both send it. One asks
    // for more gas than the enclave gives a transaction, which it refuses (sealed, its verdict):
    // that leaves a gap the other may wait behind (a nonce ahead of the enclave's), and a
    // transaction sent once it is refused takes the refused nonce and fills the gap.
    let c: Promise<Awaited<ReturnType<typeof sendTransaction>>> | undefined
    const send = (gasLimit?: bigint) =>
      sendTransaction(client, {
        instance: setup.instance,
        data: transferData,
        ...(gasLimit ? { gasLimit } : {}),
      }).catch((e) => {
        c ??= sendTransaction(client, { instance: setup.instance, data: transferData })
        throw e
      })
    const [a, b] = await Promise.allSettled([send(40_000_000n), send()])
    assert.ok(c, 'one was refused')
    assert.equal((await c).status, 'success')
    const outcomes = [a, b].map((r) =>
      r.status === 'fulfilled' ? r.value.status : (r.reason as PoseRequestError).code,
    )
    assert.deepEqual(outcomes.sort(), ['OUT_OF_RANGE', 'success'])
    assert.equal(client.state.nonces.get(key), 2n, 'nonces 0 and 1 used, in some order')
    assert.equal(client.state.freeNonces.size, 0)
    assert.equal(client.state.sent.size, 0, 'the refused transaction is not kept')
  } finally {
    await operator.close()
  }
})

test('an answer that cannot be opened counts as no answer: the request fails over, and an auto-challenging client challenges the executor', {
  timeout: 10_000,
}, async () => {
  const setup = await setupActive()
  let requests = 0
  const operator = await serve({
    ...executorBackend(setup),
    request: async () => {
      requests++
      return crypto.getRandomValues(new Uint8Array(120)) // garbage where a sealed answer goes
    },
  })
  const manager: FakeManager = {
    phase: Phase.Active,
    contractEncryptionKey: bytesToHex(setup.contractEncryptionKey),
    endpoint: operator.endpoint,
    writes: [],
    onWrite: (fn) => {
      if (fn === 'challengeExecutor') manager.phase = Phase.ExecutorChallenged
    },
  }
  try {
    const client = sdkClient(setup, manager, { autoChallenge: true })
    const e = await getNonce(client, { instance: setup.instance }).then(
      () => assert.fail('expected a rejection'),
      (err: unknown) => err,
    )
    assert.ok(e instanceof PoseRequestError, String(e))
    assert.equal(e.code, 'UNAVAILABLE')
    assert.match(e.message, /an answer that cannot be opened/)
    assert.ok(requests >= 3, `sent again (${requests} requests)`)
    assert.deepEqual(
      manager.writes.map((w) => w.functionName),
      ['challengeExecutor'],
      'the executor is challenged once, so that its enclave answers on-chain',
    )
  } finally {
    await operator.close()
  }
})

test("a refusal by the executor's host after an attempt whose answer was lost is not final: the same box goes again and its receipt comes", {
  timeout: 10_000,
}, async () => {
  const setup = await setupActive()
  // The first attempt is executed and its answer lost with its connection; the host refuses the
  // second on its own word (its enclave never saw it).
  const { operator, manager } = await pumpedOperator(setup, (n) => n === 2, firstOf('tx'))
  try {
    const { client, key } = clientAt(setup, manager, 0n)
    const r = await sendTransaction(client, { instance: setup.instance, data: transferData })
    assert.equal(r.status, 'success')
    assert.equal(r.nonce, 0n, 'the executed attempt')
    assert.equal(client.state.nonces.get(key), 1n)
    assert.equal(client.state.freeNonces.size, 0)
    assert.equal(client.state.sent.size, 0)
  } finally {
    await operator.close()
  }
})

test('a host that runs a transaction and answers a refusal of its own cannot make its sender give the nonce to another transaction', {
  timeout: 15_000,
}, async () => {
  const setup = await setupActive()
  // Every transaction request goes to the enclave (which executes it); until `honest`, the
  // host answers each with a refusal it made up.
  let honest = false
  let txs = 0
  const { operator, manager } = await pumpedOperator(
    setup,
    () => false,
    undefined,
    (kind) => kind === 'tx' && ++txs > 0 && !honest,
  )
  try {
    const { client, key } = clientAt(setup, manager, 0n)
    const e = await sendTransaction(client, { instance: setup.instance, data: transferData }).then(
      () => assert.fail('expected the transaction to stay unconfirmed'),
      (err: unknown) => err,
    )
    assert.ok(e instanceof TransactionUnconfirmedError, String(e))
    assert.equal(e.code, 'OUT_OF_RANGE')
    assert.equal(e.nonce, 0n)
    assert.ok(txs >= 2, `the same box was sent again (${txs} times)`)
    assert.equal(client.state.nonces.get(key), 1n, 'nonce 0 stays taken')
    assert.equal(client.state.freeNonces.size, 0)
    // Once an answer comes through, the transaction's receipt is its first execution's.
    honest = true
    const r = await getReceipt(client, { txHash: e.txHash })
    assert.equal(r.status, 'success')
    assert.equal(r.nonce, 0n)
    assert.equal(client.state.sent.size, 0)
    const next = await sendTransaction(client, { instance: setup.instance, data: transferData })
    assert.equal(next.nonce, 1n, 'executed once: the next transaction takes nonce 1')
  } finally {
    await operator.close()
  }
})

test('a transaction whose answer was lost and whose receipt the executor no longer holds (REPLAYED) is unconfirmed, not refused', {
  timeout: 10_000,
}, async () => {
  const setup = await setupActive()
  // The first attempt is executed and its answer lost; then the executor's caches of receipts
  // move on (thousands of later ones), so the resent box finds only a used nonce.
  const { operator, manager } = await pumpedOperator(setup, () => false, firstOf('tx'))
  const forget = () => {
    const inst = (
      setup.exec.enclave as unknown as {
        instances: Map<bigint, { receipts: Map<string, unknown>; replicated: Map<string, unknown> }>
      }
    ).instances.get(setup.instance)!
    inst.receipts.clear()
    inst.replicated.clear()
  }
  try {
    const { client, key } = clientAt(setup, manager, 0n)
    const sending = sendTransaction(client, { instance: setup.instance, data: transferData })
    // The executor answers the first attempt before its connection is cut.
    for (let i = 0; i < 200 && (await digestOf(setup.exec, setup.instance)).seq === 0n; i++)
      await new Promise((r) => setTimeout(r, 5))
    forget()
    const e = await sending.then(
      () => assert.fail('expected the transaction to stay unconfirmed'),
      (err: unknown) => err,
    )
    assert.ok(e instanceof TransactionUnconfirmedError, String(e))
    assert.equal(e.code, 'REPLAYED')
    assert.equal(client.state.sent.size, 1, 'kept for getReceipt')
    assert.equal(client.state.nonces.has(key), false, "the account's nonce is asked again")
  } finally {
    await operator.close()
  }
})

/**
 * The harness's executor behind the operator's API with its watchdogs pumped (receipts are
 * released; a request waits for its answer), with a hook that runs before each request (`n` from
 * 1) reaches the enclave: `before` may answer the request itself (a sealed answer) instead.
 */
async function hookedOperator(
  setup: Setup,
  before: (n: number, kind: 'tx' | 'view', box: Uint8Array) => Promise<Uint8Array | undefined>,
  cut?: (path: string) => boolean,
  /** Runs once the enclave answered, before the answer leaves (it may throw a host's refusal). */
  after: (kind: 'tx' | 'view', n: number) => void = () => undefined,
) {
  const { nodes, exec } = setup
  let requests = 0
  const operator = await serve(
    {
      ...executorBackend(setup),
      request: async (kind, inst, box) => {
        const n = ++requests
        const own = await before(n, kind, box)
        if (own) return own
        const requestId = `h${n}`
        const { outputs } = await exec.enclave.call(kind, { requestId, instance: inst, box })
        await pump(nodes, outputs, setup.answers)
        for (let i = 0; i < 500 && !setup.answers.has(requestId); i++)
          await new Promise((r) => setTimeout(r, 10))
        const sealed = setup.answers.get(requestId)
        assert.ok(sealed, `${kind} ${n}: the enclave answered`)
        after(kind, n)
        return sealed
      },
    },
    cut,
  )
  const manager: FakeManager = {
    phase: Phase.Active,
    contractEncryptionKey: bytesToHex(setup.contractEncryptionKey),
    endpoint: operator.endpoint,
    writes: [],
  }
  return { operator, manager }
}

/** Makes the executor forget the receipts it keeps for resent transactions (as thousands of later ones would). */
function forgetReceipts(setup: Setup): void {
  const inst = (
    setup.exec.enclave as unknown as {
      instances: Map<bigint, { receipts: Map<string, unknown>; replicated: Map<string, unknown> }>
    }
  ).instances.get(setup.instance)!
  inst.receipts.clear()
  inst.replicated.clear()
}

/** The sealed refusal an enclave gives a request whose response key is `responseKey`. */
function sealedRefusal(responseKey: Uint8Array, code: ErrorCode, message: string): Uint8Array {
  return sealAnswer(
    responseKey,
    encodeAnswer({ kind: 'rejected', error: { name: 'ProtocolError', code, message } }),
  )
}

/** The response key of the box this client sent (as kept for `getReceipt`). */
function responseKeyOf(client: PoseClientBase, box: Uint8Array): Uint8Array {
  for (const s of client.state.sent.values()) if (equalBytes(s.box, box)) return s.responseKey
  assert.fail('a box this client sent')
}

/** Another transfer than A (the same one with nonce 0 would be A itself, by hash). */
const otherTransfer = (instance: bigint) =>
  ({ instance, data: transferData, value: 0n, gasLimit: 999_999n }) as const

/** The rejection `p` ends in (the test fails if it resolves). */
const rejectionOf = (p: Promise<unknown>) =>
  p.then(
    () => assert.fail('expected a rejection'),
    (e: unknown) => e,
  )

/**
 * Ticks the executor's enclave past the 10 s a transaction waits for the nonces before it (so
 * that it refuses such a transaction BAD_NONCE) until `done`, at most 200 rounds.
 */
async function tickPastNonceWait(setup: Setup, done: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !done(); i++) {
    const { outputs } = await setup.exec.enclave.call('tick', { now: Date.now() + 11_000 })
    await pump(setup.nodes, outputs, setup.answers, [], true)
    await new Promise((r) => setTimeout(r, 10))
  }
}

test('a transaction held for an earlier nonce and then refused BAD_NONCE is unconfirmed: its box runs once the nonce before it did', {
  timeout: 15_000,
}, async () => {
  const setup = await setupActive()
  const { instance } = setup
  const { operator, manager } = await hookedOperator(setup, async () => undefined)
  try {
    const client = sdkClient(setup, manager)
    const key = instance.toString()
    // Nonce 0 is taken by a transaction that has not reached the enclave (its host withholds
    // it): this one, nonce 1, waits for it.
    client.state.nonces.set(key, 1n)
    const sending = rejectionOf(sendTransaction(client, { instance, data: transferData }))
    let settled = false
    void sending.finally(() => {
      settled = true
    })
    await tickPastNonceWait(setup, () => settled)
    const e = await sending
    assert.ok(e instanceof TransactionUnconfirmedError, String(e))
    assert.equal(e.code, 'BAD_NONCE')
    assert.equal(e.nonce, 1n)
    assert.equal(client.state.sent.size, 1, 'kept for getReceipt')
    assert.equal(client.state.nonces.has(key), false, "the account's nonce is asked again")
    // The host delivers nonce 0 (here, the client's next transaction, which asks the enclave
    // for its nonce) and then the refused box, which it kept: it runs.
    const next = await sendTransaction(client, { instance, data: transferData })
    assert.equal(next.nonce, 0n)
    const r = await getReceipt(client, { txHash: e.txHash })
    assert.equal(r.status, 'success')
    assert.equal(r.nonce, 1n, 'the transaction told BAD_NONCE ran')
    assert.equal(client.state.sent.size, 0)
  } finally {
    await operator.close()
  }
})

test("a nonce asked of the enclave again is not given to a new transaction while the account's transaction with that nonce is still being sent", {
  timeout: 15_000,
}, async () => {
  const setup = await setupActive()
  const { instance } = setup
  // The host withholds A (nonce 0) until `release`; B (nonce 1) waits behind it in the enclave
  // and is refused BAD_NONCE, so the client asks the enclave for the account's nonce again: 0,
  // which A still holds. C, sent then, must not take it, or A, delivered later, finds its nonce
  // used (REPLAYED) and never runs.
  let aBox: Uint8Array | undefined
  let release: () => void = () => undefined
  const released = new Promise<void>((r) => {
    release = r
  })
  let reachedC: () => void = () => undefined
  const cReached = new Promise<void>((r) => {
    reachedC = r
  })
  let cSent = false
  const { operator, manager } = await hookedOperator(setup, async (_n, kind, box) => {
    if (kind !== 'tx') return undefined
    aBox ??= box
    if (equalBytes(box, aBox)) await released
    else if (cSent) reachedC()
    return undefined
  })
  try {
    const { client, key } = clientAt(setup, manager, 0n)
    const a = sendTransaction(client, { instance, data: transferData })
    for (let i = 0; i < 100 && !aBox; i++) await new Promise((r) => setTimeout(r, 5))
    assert.ok(aBox, 'A reached its host')
    const b = rejectionOf(sendTransaction(client, { instance, data: transferData }))
    let settled = false
    void b.finally(() => {
      settled = true
    })
    await tickPastNonceWait(setup, () => settled)
    const eb = await b
    assert.ok(eb instanceof TransactionUnconfirmedError && eb.code === 'BAD_NONCE', String(eb))
    assert.equal(client.state.nonces.has(key), false, "the account's nonce is asked again")
    cSent = true
    const c = sendTransaction(client, otherTransfer(instance))
    await cReached
    release()
    const [ra, rc] = await Promise.all([a, c])
    assert.equal(ra.status, 'success')
    assert.equal(ra.nonce, 0n, 'A ran with its nonce')
    // C skipped nonce 0, which A held; nonce 1 is B's, whose box its host may still hold: B
    // went again first and ran, and C took the next.
    const rb = await getReceipt(client, { txHash: eb.txHash })
    assert.equal(rb.status, 'success')
    assert.equal(rb.nonce, 1n, 'B ran with its nonce, before C')
    assert.equal(rc.status, 'success')
    assert.equal(rc.nonce, 2n, 'C took the nonce after the ones A and B held')
    assert.equal(await getNonce(client, { instance }), 3n, 'all three ran')
    assert.equal(client.state.sent.size, 0)
  } finally {
    await operator.close()
  }
})

test('a transaction its host ran and then resent until the enclave forgot its receipt, answered REPLAYED on its first answer, is unconfirmed', {
  timeout: 10_000,
}, async () => {
  const setup = await setupActive()
  const { nodes, exec, instance } = setup
  // The host passes the box to its enclave, which runs it; it withholds the answer, waits until
  // the enclave's kept receipts moved past the transaction and passes the same box again: the
  // client's first answer is the enclave's sealed REPLAYED.
  const { operator, manager } = await hookedOperator(setup, async (n, kind, box) => {
    if (kind !== 'tx' || n !== 1) return undefined
    const { outputs } = await exec.enclave.call('tx', { requestId: 'ran', instance, box })
    await pump(nodes, outputs, setup.answers)
    assert.ok(setup.answers.has('ran'), 'the enclave ran it')
    forgetReceipts(setup)
    return undefined
  })
  try {
    const { client, key } = clientAt(setup, manager, 0n)
    const e = await rejectionOf(sendTransaction(client, { instance, data: transferData }))
    assert.equal((await digestOf(exec, instance)).seq, 1n, 'the transaction ran')
    assert.ok(e instanceof TransactionUnconfirmedError, String(e))
    assert.equal(e.code, 'REPLAYED')
    assert.equal(e.nonce, 0n)
    assert.equal(client.state.sent.size, 1, 'kept for getReceipt')
    assert.equal(client.state.nonces.has(key), false, "the account's nonce is asked again")
    const next = await sendTransaction(client, { instance, data: transferData })
    assert.equal(next.nonce, 1n, 'the next transaction takes the nonce after it')
  } finally {
    await operator.close()
  }
})

/**
 * A session transaction whose first attempt runs and whose answer is lost; its resend finds the
 * executor's receipts moved on and the session expired on its chain clock (EXPIRED, sealed), so
 * the SDK sends it again signed itself, through `second`: the client's setup for that leg.
 */
async function sessionLegAfterLostAnswer(
  second: (client: PoseClientBase) => { answer?: (box: Uint8Array) => Uint8Array },
) {
  const setup = await setupActive()
  const { exec, instance } = setup
  let client: PoseClientBase | undefined
  let answer: ((box: Uint8Array) => Uint8Array) | undefined
  const { operator, manager } = await hookedOperator(
    setup,
    async (n, kind, box) => {
      if (kind !== 'tx') return undefined
      if (n === 2) {
        forgetReceipts(setup)
        await exec.enclave.call('chain', { blockNumber: 12n, timestamp: 1001n + 3601n, events: [] })
        answer = second(client!).answer
      }
      return n === 3 && answer ? answer(box) : undefined
    },
    firstOf('tx'),
  )
  try {
    client = sdkClient(setup, manager)
    client.boxSessions = new BoxSessions()
    const key = instance.toString()
    client.state.nonces.set(key, 0n)
    const e = await rejectionOf(sendTransaction(client, { instance, data: transferData }))
    assert.equal((await digestOf(exec, instance)).seq, 1n, 'the session box ran')
    return { e, client, key }
  } finally {
    await operator.close()
  }
}

test('a session transaction whose box may have run stays unconfirmed when its box signed itself is refused', {
  timeout: 10_000,
}, async () => {
  // The enclave refuses the second box, sealed (as it refuses every transaction once the
  // instance terminated in the world): that says nothing of the first box, which ran.
  const { e, client, key } = await sessionLegAfterLostAnswer((c) => ({
    answer: (box) => sealedRefusal(responseKeyOf(c, box), 'WRONG_PHASE', 'instance terminated'),
  }))
  assert.ok(e instanceof TransactionUnconfirmedError, String(e))
  assert.equal(e.code, 'WRONG_PHASE')
  assert.equal(e.nonce, 0n)
  assert.equal(client.state.nonces.get(key), 1n, 'nonce 0 stays taken')
  assert.equal(client.state.freeNonces.size, 0)
  assert.equal(client.state.sent.size, 1, 'kept for getReceipt')
})

test('a session transaction whose box may have run stays unconfirmed, its nonce taken, when signing it itself fails', {
  timeout: 10_000,
}, async () => {
  const { e, client, key } = await sessionLegAfterLostAnswer((c) => {
    // The wallet refuses the transaction's own signature.
    c.account.sign = async () => {
      throw new Error('the user rejected the request')
    }
    return {}
  })
  assert.ok(e instanceof TransactionUnconfirmedError, String(e))
  assert.equal(e.code, 'EXPIRED', "the session leg's outcome")
  assert.equal(e.nonce, 0n)
  assert.equal(client.state.nonces.get(key), 1n, 'nonce 0 stays taken')
  assert.equal(client.state.freeNonces.size, 0)
  assert.equal(client.state.sent.size, 1, 'kept for getReceipt')
})

/**
 * `hookedOperator` whose first transaction runs and loses its answer with its connection;
 * `change` then alters what the client reads on-chain (the fake manager).
 */
async function lostAnswerThen(setup: Setup, change: (manager: FakeManager) => void) {
  let manager: FakeManager | undefined
  let cut = false
  const hooked = await hookedOperator(
    setup,
    async () => undefined,
    (path) => {
      if (!path.endsWith('/tx') || cut) return false
      cut = true
      change(manager!)
      return true
    },
  )
  manager = hooked.manager
  return hooked
}

test('a transaction whose answer was lost and whose instance then lost its executor is unconfirmed, its nonce taken', {
  timeout: 10_000,
}, async () => {
  const setup = await setupActive()
  const { exec, instance } = setup
  // The enclave runs the transaction; its answer is lost with its connection, and every member
  // is gone before the resend (the instance terminated, or froze).
  const { operator, manager } = await lostAnswerThen(setup, (m) => {
    m.phase = Phase.Terminated
    m.executorGone = true
  })
  try {
    const { client, key } = clientAt(setup, manager, 0n)
    const e = await rejectionOf(sendTransaction(client, { instance, data: transferData }))
    assert.equal((await digestOf(exec, instance)).seq, 1n, 'the transaction ran')
    assert.ok(e instanceof TransactionUnconfirmedError, String(e))
    assert.equal(e.code, 'WRONG_PHASE')
    assert.equal(client.state.nonces.get(key), 1n, 'nonce 0 stays taken')
    assert.equal(client.state.freeNonces.size, 0)
    assert.equal(client.state.sent.size, 1, 'kept for getReceipt')
  } finally {
    await operator.close()
  }
})

test("a chain read that fails while a transaction is failed over is tried again: the transaction's receipt comes", {
  timeout: 10_000,
}, async () => {
  const setup = await setupActive()
  const { instance } = setup
  // The first attempt runs and its answer is lost; the chain's endpoint then fails the next
  // reads of the instance.
  const { operator, manager } = await lostAnswerThen(setup, (m) => {
    m.failReads = 3
  })
  try {
    const { client } = clientAt(setup, manager, 0n)
    const r = await sendTransaction(client, { instance, data: transferData })
    assert.equal(r.status, 'success')
    assert.equal(r.nonce, 0n)
    assert.equal(manager.failReads, 0, 'the failed reads were tried again')
    assert.equal(client.state.sent.size, 0)
  } finally {
    await operator.close()
  }
})

test("a chain read that keeps failing after a transaction's attempt went unanswered ends it unconfirmed", {
  timeout: 10_000,
}, async () => {
  const setup = await setupActive()
  const { instance } = setup
  const { operator, manager } = await lostAnswerThen(setup, (m) => {
    m.failReads = Number.MAX_SAFE_INTEGER
  })
  try {
    const client = sdkClient(setup, manager)
    client.failover.timeoutMs = 300
    const key = instance.toString()
    client.state.nonces.set(key, 0n)
    const e = await rejectionOf(sendTransaction(client, { instance, data: transferData }))
    assert.ok(e instanceof TransactionUnconfirmedError, String(e))
    assert.match(e.message, /the chain endpoint is down/)
    assert.equal(client.state.nonces.get(key), 1n, 'nonce 0 stays taken')
    assert.equal(client.state.sent.size, 1, 'kept for getReceipt')
  } finally {
    await operator.close()
  }
})

test('a withdrawal of a negative amount is refused with a typed error before anything is sent', {
  timeout: 5_000,
}, async () => {
  const setup = await setupActive()
  const manager: FakeManager = {
    phase: Phase.Active,
    contractEncryptionKey: bytesToHex(setup.contractEncryptionKey),
    endpoint: 'http://127.0.0.1:9',
    writes: [],
  }
  const client = sdkClient(setup, manager)
  client.failover.timeoutMs = 200
  for (const phase of [Phase.Active, Phase.Terminated]) {
    manager.phase = phase
    const e = await rejectionOf(withdraw(client, { instance: setup.instance, amount: -1n }))
    assert.ok(e instanceof PoseError, String(e))
    assert.equal(e.code, 'OUT_OF_RANGE')
    assert.match(e.message, /amount -1/)
  }
  assert.deepEqual(manager.writes, [], 'nothing submitted')
  assert.equal(client.state.nonces.size, 0, 'no nonce taken')
})

test("a deposit the manager refuses during an executor challenge is sent again once the challenge is over (simulator, seed 2203); other phases' refusals are final", {
  timeout: 5_000,
}, async () => {
  const setup = await setupActive()
  const refusal = (phase: Phase) =>
    new ChainTxError(
      'deposit',
      `PoseManager_UnexpectedPhase(${setup.instance}, ${phase}, ${Phase.Active})`,
      { reverted: true },
    )
  const manager: FakeManager = {
    phase: Phase.ExecutorChallenged,
    contractEncryptionKey: bytesToHex(setup.contractEncryptionKey),
    endpoint: 'http://127.0.0.1:9',
    writes: [],
    onWrite: () =>
      manager.phase === Phase.Active || manager.phase === Phase.WatchdogsChallenged
        ? undefined
        : refusal(manager.phase),
  }
  const client = sdkClient(setup, manager)
  // The executor answers the challenge on-chain 100 ms later.
  const answered = setTimeout(() => {
    manager.phase = Phase.Active
  }, 100)
  const hash = await deposit(client, { instance: setup.instance, value: 5n })
  clearTimeout(answered)
  assert.equal(hash, ZERO_WORD)
  assert.deepEqual(
    manager.writes.map((w) => w.functionName),
    ['deposit', 'deposit'],
    'refused once, then sent again',
  )
  // A challenge already over when the client reads the instance: the revert named it, so the
  // deposit goes again.
  let once = true
  manager.onWrite = () => {
    if (!once) return undefined
    once = false
    return refusal(Phase.ExecutorChallenged)
  }
  await deposit(client, { instance: setup.instance, value: 5n })
  assert.equal(manager.writes.length, 4, 'refused once, then sent again')
  manager.onWrite = () =>
    manager.phase === Phase.Active || manager.phase === Phase.WatchdogsChallenged
      ? undefined
      : refusal(manager.phase)
  // A frozen instance takes no deposit again: the refusal is the caller's.
  manager.phase = Phase.Frozen
  const e = await rejectionOf(deposit(client, { instance: setup.instance, value: 5n }))
  assert.ok(e instanceof ChainTxError, String(e))
  assert.match(e.reason, /UnexpectedPhase/)
  assert.equal(manager.writes.length, 5)
  // A challenge that outlasts the failover's deadline: the refusal is returned.
  manager.phase = Phase.ExecutorChallenged
  client.failover.timeoutMs = 100
  const late = await rejectionOf(deposit(client, { instance: setup.instance, value: 5n }))
  assert.ok(late instanceof ChainTxError, String(late))
  assert.match(late.reason, /UnexpectedPhase/)
})

test('a transaction its enclave answers with a sealed refusal that does not say it never ran (INTERNAL) is unconfirmed, its nonce taken and its box kept', {
  timeout: 10_000,
}, async () => {
  const setup = await setupActive()
  let client: PoseClientBase | undefined
  const { operator, manager } = await hookedOperator(setup, async (_n, kind, box) =>
    kind === 'tx'
      ? sealedRefusal(responseKeyOf(client!, box), 'INTERNAL', 'failed inside the enclave')
      : undefined,
  )
  try {
    client = sdkClient(setup, manager)
    const key = setup.instance.toString()
    client.state.nonces.set(key, 0n)
    const e = await rejectionOf(sendTransaction(client, { instance: setup.instance, data: '0x' }))
    assert.ok(e instanceof TransactionUnconfirmedError, String(e))
    assert.equal(e.code, 'INTERNAL')
    assert.equal(client.state.nonces.get(key), 1n, 'its nonce stays taken')
    assert.equal(client.state.sent.size, 1, 'kept for getReceipt')
  } finally {
    await operator.close()
  }
})

test('a transaction that reverts throws ContractRevertError with its receipt: it ran and took its nonce', {
  timeout: 10_000,
}, async () => {
  const setup = await setupActive()
  const { operator, manager } = await pumpedOperator(setup)
  try {
    const { client, key } = clientAt(setup, manager, 0n)
    const e = await rejectionOf(
      writeContract(client, {
        instance: setup.instance,
        abi: privateTokenAbi,
        functionName: 'transfer',
        args: [ZERO_ADDRESS, 10n ** 30n],
      }),
    )
    assert.ok(e instanceof ContractRevertError, String(e))
    assert.equal(e.errorName, 'PrivateToken_InsufficientBalance')
    assert.equal(e.receipt?.status, 'revert')
    assert.equal(e.receipt?.nonce, 0n)
    assert.equal(client.state.nonces.get(key), 1n)
  } finally {
    await operator.close()
  }
})

/**
 * A client whose first transaction (A, nonce 0) ended unconfirmed: its host withheld A's box
 * until the request timed out. `host.mode` then says what the host does with A's box: withhold
 * it still, pass it to the enclave, or answer a REPLAYED of its own. The account's nonce is then
 * asked of the enclave again (as after a BAD_NONCE): 0, since A never reached it.
 */
async function unconfirmedFirst(setup: Setup) {
  const host = { mode: 'withhold' as 'withhold' | 'pass' | 'lie' }
  let aBox: Uint8Array | undefined
  let letGo: () => void = () => undefined
  const gone = new Promise<void>((r) => {
    letGo = r
  })
  const { operator, manager } = await hookedOperator(setup, async (_n, kind, box) => {
    if (kind !== 'tx') return undefined
    aBox ??= box
    if (!equalBytes(box, aBox) || host.mode === 'pass') return undefined
    if (host.mode === 'lie') throw new ProtocolError('REPLAYED', 'made up by the host')
    await gone
    return undefined
  })
  const close = async () => {
    letGo()
    await operator.close()
  }
  try {
    const { instance } = setup
    const client = sdkClient(setup, manager, { requestTimeoutMs: 300 })
    const key = instance.toString()
    client.state.nonces.set(key, 0n)
    const ea = await rejectionOf(sendTransaction(client, { instance, data: transferData }))
    assert.ok(ea instanceof TransactionUnconfirmedError, String(ea))
    assert.equal(ea.nonce, 0n)
    client.state.nonces.delete(key)
    return { host, client, ea, close }
  } catch (e) {
    await close()
    throw e
  }
}

test("a nonce asked of the enclave again whose transaction ended unconfirmed goes to that transaction's box first, so its host cannot pick which of the two runs", {
  timeout: 15_000,
}, async () => {
  const setup = await setupActive()
  const { instance } = setup
  const { host, client, ea, close } = await unconfirmedFirst(setup)
  try {
    host.mode = 'pass'
    const c = await sendTransaction(client, otherTransfer(instance))
    assert.equal(c.nonce, 1n, 'C took the nonce after A, which went again first')
    const ra = await getReceipt(client, { txHash: ea.txHash })
    assert.equal(ra.status, 'success')
    assert.equal(ra.nonce, 0n, 'A ran with its nonce')
    assert.equal(await getNonce(client, { instance }), 2n, 'both ran')
    assert.equal(client.state.sent.size, 0)
    assert.equal(client.state.unconfirmed.size, 0)
  } finally {
    await close()
  }
})

test("an unconfirmed transaction's resend refused BAD_NONCE behind a nonce its host still withholds keeps its nonce: the new transaction takes the next", {
  timeout: 20_000,
}, async () => {
  const setup = await setupActive()
  const { instance } = setup
  // The host withholds A (nonce 0) until `release`: B (nonce 1) is refused BAD_NONCE and kept.
  // C skips 0 (A is being sent) and would take 1: B goes again first, is refused BAD_NONCE
  // again (A still withheld), and may still run once A did, so C takes 2.
  let aBox: Uint8Array | undefined
  let release: () => void = () => undefined
  const released = new Promise<void>((r) => {
    release = r
  })
  const { operator, manager } = await hookedOperator(setup, async (_n, kind, box) => {
    if (kind !== 'tx') return undefined
    aBox ??= box
    if (equalBytes(box, aBox)) await released
    return undefined
  })
  try {
    const { client, key } = clientAt(setup, manager, 0n)
    const a = sendTransaction(client, { instance, data: transferData })
    for (let i = 0; i < 100 && !aBox; i++) await new Promise((r) => setTimeout(r, 5))
    const b = rejectionOf(sendTransaction(client, { instance, data: transferData }))
    let bDone = false
    void b.finally(() => {
      bDone = true
    })
    await tickPastNonceWait(setup, () => bDone)
    const eb = await b
    assert.ok(eb instanceof TransactionUnconfirmedError && eb.code === 'BAD_NONCE', String(eb))
    assert.equal(eb.nonce, 1n)
    const c = sendTransaction(client, otherTransfer(instance)).then(
      (r) => r.nonce,
      (e: unknown) => (e instanceof TransactionUnconfirmedError ? e.nonce : -1n),
    )
    // C's nonce is taken once B's resend was refused; then A is let through.
    await tickPastNonceWait(setup, () => client.state.noncesInFlight.get(key)?.has(2n) ?? false)
    release()
    assert.equal((await a).nonce, 0n)
    assert.equal(await c, 2n, "C took the nonce after B's")
    const rb = await getReceipt(client, { txHash: eb.txHash })
    assert.equal(rb.nonce, 1n, 'B ran with its nonce')
  } finally {
    release()
    await operator.close()
  }
})

test("a REPLAYED its host makes up for an unconfirmed transaction's resend is no answer: the new transaction takes the nonce nobody used", {
  timeout: 15_000,
}, async () => {
  const setup = await setupActive()
  const { host, client, close } = await unconfirmedFirst(setup)
  try {
    host.mode = 'lie'
    const c = await sendTransaction(client, otherTransfer(setup.instance))
    assert.equal(c.nonce, 0n, 'nonce 0 was never used')
  } finally {
    await close()
  }
})
