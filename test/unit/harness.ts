/**
 * In-process enclave harness shared by the unit tests: Enclave objects wired by hand play
 * executor and watchdogs, with chain events built like the manager builds them.
 */
import assert from 'node:assert/strict'
import { encodeAbiParameters, encodeDeployData, encodeFunctionData } from 'viem'
import { privateTokenAbi, privateTokenBytecode } from '../../examples/contracts.generated.ts'
import { Enclave } from '../../src/enclave/enclave.ts'
import {
  BOX_CONTEXT,
  type BoxSessions,
  boxSeal,
  bytesToHex,
  type ChainEvent,
  decodeAnswer,
  type EnclaveOutput,
  EventKind,
  encodeDeployRequest,
  encodeSignedTx,
  encodeSignedView,
  generateSecretKey,
  hashSession,
  hashTx,
  hashViewCall,
  INSTANCE_ADDRESS,
  initCommitment,
  instanceAad,
  keccak256,
  nextEventHash,
  openAnswer,
  ProtocolError,
  randomBytes,
  SYSTEM_ADDRESS,
  secretKeyToAddress,
  signDigest,
  type Tx,
  utf8,
} from '../../src/protocol/index.ts'

export const CHAIN_ID = 31337n
export const MANAGER = new Uint8Array(20).fill(0x42)
export const MEASUREMENT = new Uint8Array(32).fill(0x11)

export type Node = {
  enclave: Enclave
  signer: Uint8Array
  encryptionKey: Uint8Array
  sealed: Map<bigint, Uint8Array[]>
  platformSecret: Uint8Array
  sealedIdentity: Uint8Array
}

export async function newNode(
  platformSecret = randomBytes(32),
  sealedIdentity?: Uint8Array,
  now?: () => number,
): Promise<Node> {
  const enclave = new Enclave(now)
  const { result } = (await enclave.call('init', {
    platformSecret,
    measurement: MEASUREMENT,
    chainId: CHAIN_ID,
    manager: MANAGER,
    operator: new Uint8Array(20).fill(1),
    ...(sealedIdentity ? { sealedIdentity } : {}),
  })) as { result: { signer: Uint8Array; encryptionKey: Uint8Array; sealedIdentity: Uint8Array } }
  return {
    enclave,
    signer: result.signer,
    encryptionKey: result.encryptionKey,
    sealed: new Map(),
    platformSecret,
    sealedIdentity: result.sealedIdentity,
  }
}

/**
 * `n` restarted: a new enclave process with the same platform secret and sealed identity,
 * restored from `blobs` (by default everything `n` sealed for `instance`).
 */
export async function restartNode(
  n: Node,
  instance: bigint,
  now?: () => number,
  blobs: Uint8Array[] = [...n.sealed.get(instance)!],
): Promise<Node> {
  const r = await newNode(n.platformSecret, n.sealedIdentity, now)
  await r.enclave.call('restore', { instance, blobs })
  return r
}

/**
 * Seal bookkeeping: every later call of `n`'s enclave keeps what it seals in `n.sealed`, as
 * its host's store would (a snapshot replaces the instance's list).
 */
export function trackSeals(n: Node): Node {
  const orig = n.enclave.call.bind(n.enclave)
  const keep = (outputs: EnclaveOutput[]) => {
    for (const o of outputs) {
      if (o.type === 'seal') {
        const list = n.sealed.get(o.instance) ?? []
        if (o.mode === 'snapshot') list.length = 0
        list.push(o.blob)
        n.sealed.set(o.instance, list)
      }
    }
  }
  n.enclave.call = async (m: string, p: unknown, more?: boolean) => {
    try {
      const r = await orig(m, p, more)
      keep(r.outputs)
      return r
    } catch (e) {
      // A refused ecall's outputs count too (e.g. the updates of a run it ended).
      keep((e as { outputs?: EnclaveOutput[] }).outputs ?? [])
      throw e
    }
  }
  return n
}

/** Builds manager-style events with the running hash. */
export function eventChain(instance: bigint) {
  let prev: Uint8Array = new Uint8Array(32)
  let index = 0n
  const all: ChainEvent[] = []
  const next = (kind: number, data: Uint8Array): ChainEvent => {
    index++
    const hash = nextEventHash({ prevHash: prev, instance, index, kind, data })
    prev = hash
    const e = { instance, index, kind, data, hash }
    all.push(e)
    return e
  }
  /** Every event made so far (a late joiner's feed starts from the first). */
  next.history = () => [...all]
  return next
}

export const hexb = (h: `0x${string}`) => Uint8Array.from(Buffer.from(h.slice(2), 'hex'))

/** The data of a `MemberRemoved` event, as `PoseManager._removeMember` emits it. */
/**
 * Feeds `events` in one chain batch to each of `to` in turn, routing each one's outputs among
 * `nodes` (refusals tolerated) before the next.
 */
export async function feedChain(
  nodes: Node[],
  to: Node[],
  events: ChainEvent[],
  answers: Map<string, Uint8Array>,
  at: { blockNumber: bigint; timestamp: bigint } = { blockNumber: 12n, timestamp: 1002n },
): Promise<void> {
  for (const n of to) {
    const r = await n.enclave.call('chain', { ...at, events })
    await pump(nodes, r.outputs, answers, [], true)
  }
}

/** The data of a `Refilled` event that draws `node` into `slot`. */
export function refilledData(
  slot: number,
  node: { signer: Uint8Array; encryptionKey: Uint8Array },
) {
  return hexb(
    encodeAbiParameters(
      [{ type: 'uint8[]' }, { type: 'address[]' }, { type: 'bytes32[]' }],
      [[slot], [bytesToHex(node.signer)], [bytesToHex(node.encryptionKey)]],
    ),
  )
}

export function memberRemovedData(slot: bigint, signer: Uint8Array, reason: bigint): Uint8Array {
  return hexb(
    encodeAbiParameters(
      [{ type: 'uint256' }, { type: 'address' }, { type: 'uint256' }],
      [slot, bytesToHex(signer), reason],
    ),
  )
}

/** The data of a `WatchdogsChallenged` event: the challenged slots' mask and the payload. */
export const challengedData = (mask: number, payload: Uint8Array) =>
  hexb(encodeAbiParameters([{ type: 'uint16' }, { type: 'bytes' }], [mask, bytesToHex(payload)]))

/** The data of an `ExecutorChallenged` event: a challenge by a random address with `payload`. */
export function executorChallengedData(payload: Uint8Array): Uint8Array {
  return hexb(
    encodeAbiParameters(
      [{ type: 'address' }, { type: 'bytes' }],
      [bytesToHex(randomBytes(20)), bytesToHex(payload)],
    ),
  )
}

/** The data of a `Deposit` event: `amount` wei from `from`. */
export function depositData(from: Uint8Array, amount: bigint): Uint8Array {
  return hexb(
    encodeAbiParameters([{ type: 'address' }, { type: 'uint256' }], [bytesToHex(from), amount]),
  )
}

/** The caller's coin balance: `balance()` of the system contract. */
export const BALANCE_SELECTOR = keccak256(utf8('balance()')).subarray(0, 4)

/** A member's role, seq and state digest for `instance`. */
export async function digestOf(n: Node, instance: bigint) {
  return (await n.enclave.call('digest', { instance })).result as {
    role: string
    seq: bigint
    digest: Uint8Array
  }
}

/** Selects the peer messages addressed to `n`. */
export const sentTo = (n: Node) => (o: EnclaveOutput) =>
  o.type === 'send' && bytesToHex(o.to) === bytesToHex(n.signer)

/** Routes outputs between nodes until quiet; returns answers by request id. */
export async function pump(
  nodes: Node[],
  outputs: EnclaveOutput[],
  answers: Map<string, Uint8Array>,
  activations: EnclaveOutput[] = [],
  /** Keep routing past refused peer messages (their outputs still count). */
  tolerant = false,
  /** Messages the network loses (never delivered). */
  lost: (o: EnclaveOutput) => boolean = () => false,
) {
  const queue = [...outputs]
  let guard = 0
  while (queue.length > 0 && guard++ < 10_000) {
    const o = queue.shift()!
    if (lost(o)) continue
    if (o.type === 'send') {
      const to = nodes.find((n) => bytesToHex(n.signer) === bytesToHex(o.to))!
      try {
        const r = await to.enclave.call('peer', { envelope: o.envelope })
        queue.push(...r.outputs)
      } catch (e) {
        if (!tolerant || !(e instanceof ProtocolError)) throw e
        queue.push(...((e as { outputs?: EnclaveOutput[] }).outputs ?? []))
      }
    } else if (o.type === 'answer') {
      if (o.sealed) answers.set(o.requestId, o.sealed)
    } else if (o.type === 'seal') {
      // Routed to the node that produced it by the caller's bookkeeping below.
    } else if (o.type === 'activate') activations.push(o)
  }
}

/** A PrivateToken transfer of 1 token from `key`'s account, unsigned. */
export function transferTx(
  target: { instance: bigint; contractEncryptionKey: Uint8Array },
  key: Uint8Array,
  nonce: bigint,
  recipient: Uint8Array,
): Tx {
  return {
    instance: target.instance,
    from: secretKeyToAddress(key),
    nonce,
    to: INSTANCE_ADDRESS,
    value: 0n,
    data: hexb(
      encodeFunctionData({
        abi: privateTokenAbi,
        functionName: 'transfer',
        args: [bytesToHex(recipient), 1n],
      }),
    ),
    gasLimit: 200_000n,
  }
}

/** A signed PrivateToken transfer of 1 token, boxed to the contract's key. */
export function transferBox(
  target: { instance: bigint; contractEncryptionKey: Uint8Array },
  key: Uint8Array,
  nonce: bigint,
  recipient: Uint8Array,
) {
  return txBox(target, transferTx(target, key, nonce, recipient), key)
}

/** `tx` signed by `key` (EIP-712) and boxed to the contract's key. */
export function txBox(
  target: { instance: bigint; contractEncryptionKey: Uint8Array },
  tx: Tx,
  key: Uint8Array,
) {
  const signature = signDigest(hashTx({ chainId: CHAIN_ID, manager: MANAGER }, tx), key)
  return boxSeal({
    recipientPublicKey: target.contractEncryptionKey,
    plaintext: encodeSignedTx({ ...tx, signature }),
    context: BOX_CONTEXT.tx,
    aad: instanceAad(target.instance),
  })
}

/**
 * A PrivateToken transfer in a box of `sessions`' session with the contract key, authorised by
 * a Session signature (decision 0014): by `authKey` (default `key`) for `authBoxKey` (default
 * the session's key) until `validUntil`.
 */
export function sessionTransferBox(
  target: { instance: bigint; contractEncryptionKey: Uint8Array },
  key: Uint8Array,
  nonce: bigint,
  recipient: Uint8Array,
  s: {
    sessions: BoxSessions
    validUntil: bigint
    authKey?: Uint8Array
    authBoxKey?: Uint8Array
    signature?: Uint8Array
  },
) {
  const tx = transferTx(target, key, nonce, recipient)
  const session = s.sessions.session(target.contractEncryptionKey)
  const auth = {
    instance: target.instance,
    account: tx.from,
    boxKey: s.authBoxKey ?? session.publicKey,
    validUntil: s.validUntil,
  }
  const signature =
    s.signature ??
    signDigest(hashSession({ chainId: CHAIN_ID, manager: MANAGER }, auth), s.authKey ?? key)
  const sealed = s.sessions.sealIn(session, {
    recipientPublicKey: target.contractEncryptionKey,
    plaintext: encodeSignedTx({ ...tx, signature, session: { validUntil: s.validUntil } }),
    context: BOX_CONTEXT.tx,
    aad: instanceAad(target.instance),
  })
  return { ...sealed, tx }
}

/** A signed view call of the system contract's `selector` by `key`'s account, boxed to the contract's key. */
export function systemViewBox(
  target: { instance: bigint; contractEncryptionKey: Uint8Array },
  key: Uint8Array,
  selector: Uint8Array,
) {
  return viewBox(target, key, SYSTEM_ADDRESS, selector)
}

/** A signed view call of `to` with `data` by `key`'s account, boxed to the contract's key. */
export function viewBox(
  target: { instance: bigint; contractEncryptionKey: Uint8Array },
  key: Uint8Array,
  to: Uint8Array,
  data: Uint8Array,
) {
  const view = {
    instance: target.instance,
    from: secretKeyToAddress(key),
    to,
    data,
    expiry: 10n ** 10n,
  }
  const signature = signDigest(hashViewCall({ chainId: CHAIN_ID, manager: MANAGER }, view), key)
  return boxSeal({
    recipientPublicKey: target.contractEncryptionKey,
    plaintext: encodeSignedView({ ...view, signature }),
    context: BOX_CONTEXT.view,
    aad: instanceAad(target.instance),
  })
}

/** Sends `transferBox(target, key, nonce, recipient)` to `exec`; returns the enclave's outputs. */
export async function sendTransfer(
  exec: Node,
  target: { instance: bigint; contractEncryptionKey: Uint8Array },
  key: Uint8Array,
  nonce: bigint,
  recipient: Uint8Array,
  requestId: string,
): Promise<EnclaveOutput[]> {
  const { box } = transferBox(target, key, nonce, recipient)
  return (await exec.enclave.call('tx', { requestId, instance: target.instance, box })).outputs
}

/**
 * Sends one transfer per nonce through `exec` and routes each to completion among `nodes`
 * before the next (request ids `t<nonce>`).
 */
export async function sendTransfers(
  nodes: Node[],
  exec: Node,
  target: { instance: bigint; contractEncryptionKey: Uint8Array },
  key: Uint8Array,
  nonces: bigint[],
  recipient: Uint8Array,
  answers: Map<string, Uint8Array>,
): Promise<void> {
  for (const nonce of nonces)
    await pump(nodes, await sendTransfer(exec, target, key, nonce, recipient, `t${nonce}`), answers)
}

/**
 * Up to `rounds` timer ticks of `node` at the times `advance` returns, their outputs routed
 * among `nodes` (refusals tolerated), until `done` holds.
 */
export async function tickUntil(
  nodes: Node[],
  node: Node,
  answers: Map<string, Uint8Array>,
  advance: () => number,
  done: () => boolean,
  rounds = 3,
): Promise<void> {
  for (let i = 0; i < rounds && !done(); i++) {
    const { outputs } = await node.enclave.call('tick', { now: advance() })
    await pump(nodes, outputs, answers, [], true)
  }
}

/**
 * `key`'s view call of the system contract's `selector` through `exec`, routed among `nodes`:
 * its return data (the test fails if the answer is not a view result).
 */
export async function systemView(
  nodes: Node[],
  exec: Node,
  target: { instance: bigint; contractEncryptionKey: Uint8Array },
  key: Uint8Array,
  selector: Uint8Array,
  answers: Map<string, Uint8Array>,
): Promise<Uint8Array> {
  const v = systemViewBox(target, key, selector)
  const requestId = `view-${answers.size}`
  const r = await exec.enclave.call('view', { requestId, instance: target.instance, box: v.box })
  await pump(nodes, r.outputs, answers)
  const a = answerOf(answers, requestId, v.responseKey)
  assert.equal(a.kind, 'view')
  return a.kind === 'view' ? a.returnData : new Uint8Array()
}

/** The decoded answer to request `id`, opened with its response key. */
export function answerOf(answers: Map<string, Uint8Array>, id: string, responseKey: Uint8Array) {
  return decodeAnswer(openAnswer(responseKey, answers.get(id)!))
}

/**
 * Three nodes (executor at slot 0, two watchdogs) with an active PrivateToken instance (or
 * `code.initCode`'s contract): genesis replicated, activation signed, every chain event
 * delivered. Sealed blobs are kept per node.
 */
export async function setupActive(now?: () => number, code?: { initCode: Uint8Array }) {
  const nodes = [
    await newNode(undefined, undefined, now),
    await newNode(undefined, undefined, now),
    await newNode(undefined, undefined, now),
  ]
  for (const n of nodes) trackSeals(n)
  const instance = 1n
  const ev = eventChain(instance)
  const creatorKey = generateSecretKey()
  const creator = secretKeyToAddress(creatorKey)
  const initCode =
    code?.initCode ??
    hexb(encodeDeployData({ abi: privateTokenAbi, bytecode: privateTokenBytecode, args: [1000n] }))
  const created = ev(
    EventKind.Created,
    hexb(
      encodeAbiParameters(
        [{ type: 'address' }, { type: 'uint8' }, { type: 'bytes32' }],
        [bytesToHex(creator), 2, bytesToHex(initCommitment(initCode))],
      ),
    ),
  )
  const drawn = ev(
    EventKind.PoolDrawn,
    hexb(
      encodeAbiParameters(
        [{ type: 'address[]' }, { type: 'bytes32[]' }],
        [nodes.map((n) => bytesToHex(n.signer)), nodes.map((n) => bytesToHex(n.encryptionKey))],
      ),
    ),
  )
  for (const n of nodes)
    await n.enclave.call('chain', {
      blockNumber: 10n,
      timestamp: 1000n,
      events: [created, drawn],
    })

  const [exec] = nodes as [Node]
  const { box } = boxSeal({
    recipientPublicKey: exec.encryptionKey,
    plaintext: encodeDeployRequest({ instance, initCode }),
    context: BOX_CONTEXT.deploy,
    aad: instanceAad(instance),
  })
  const dep = await exec.enclave.call('deploy', { instance, box })
  const { contractEncryptionKey, genesisDigest } = dep.result as {
    contractEncryptionKey: Uint8Array
    genesisDigest: Uint8Array
  }
  const activations: EnclaveOutput[] = []
  const answers = new Map<string, Uint8Array>()
  await pump(nodes, dep.outputs, answers, activations)
  assert.equal(activations.length, 1, 'activation once every watchdog acked genesis')
  const act = activations[0] as Extract<EnclaveOutput, { type: 'activate' }>
  assert.equal(act.ackedMask, 7n)
  const activated = ev(
    EventKind.Activated,
    hexb(
      encodeAbiParameters(
        [{ type: 'bytes32' }, { type: 'bytes32' }, { type: 'uint256' }],
        [bytesToHex(contractEncryptionKey), bytesToHex(genesisDigest), 7n],
      ),
    ),
  )
  for (const n of nodes)
    await n.enclave.call('chain', { blockNumber: 11n, timestamp: 1001n, events: [activated] })

  return { nodes, instance, ev, creator, creatorKey, exec, contractEncryptionKey, answers }
}
