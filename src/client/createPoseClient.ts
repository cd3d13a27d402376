/**
 * The POSE client (viem style): `createPoseClient({ rpcUrl, manager, account })` returns a
 * client with every action bound to it; each action also lives in its own file under
 * `actions/` and can be called as `action(client, params)`.
 */
import type {
  Abi,
  Account,
  Address,
  ContractFunctionArgs,
  ContractFunctionName,
  Hex,
  LocalAccount,
} from 'viem'
import { type ChainClients, createChainClients } from '../chain/clients.ts'
import { TxSender } from '../chain/sender.ts'
import { BoxSessions, hexToBytes, type PoseDomain } from '../protocol/index.ts'
import { type ChallengeExecutorParameters, challengeExecutor } from './actions/challengeExecutor.ts'
import { claim, getPayout } from './actions/claim.ts'
import { type DeployContractParameters, deployContract } from './actions/deployContract.ts'
import { type DepositParameters, deposit } from './actions/deposit.ts'
import { getBalance } from './actions/getBalance.ts'
import { type GetInstanceReturnType, getInstance } from './actions/getInstance.ts'
import { type GetReceiptParameters, getReceipt } from './actions/getReceipt.ts'
import { type ReadContractParameters, readContract } from './actions/readContract.ts'
import {
  type PoseReceipt,
  type SendTransactionParameters,
  sendTransaction,
} from './actions/sendTransaction.ts'
import { type WithdrawParameters, withdraw } from './actions/withdraw.ts'
import { getFinalBalances, withdrawFinal } from './actions/withdrawFinal.ts'
import { type WriteContractParameters, writeContract } from './actions/writeContract.ts'
import {
  type ApiTransport,
  DEFAULT_HOST_PROBE_MS,
  DEFAULT_REQUEST_TIMEOUT_MS,
} from './transport.ts'

export type CreatePoseClientParameters = {
  /** JSON-RPC endpoint of the chain holding the manager. */
  rpcUrl: string
  /** Address of the PoseManager contract. */
  manager: Address
  /**
   * The user's account, a viem LocalAccount: `privateKeyToPoseAccount` (native signatures) or
   * viem's `privateKeyToAccount`.
   */
  account: LocalAccount
  /** How often to poll the chain while waiting, in ms (default 250). */
  pollingIntervalMs?: number
  /** Challenge a silent executor on-chain automatically (default false). */
  autoChallenge?: boolean
  /**
   * How long a transaction keeps starting attempts at a live executor, following changes of
   * executor (default 120 s). No new attempt starts after it; one started just before may still
   * take up to `requestTimeoutMs` (and, with `autoChallenge`, the sending of its challenge), so a
   * send can end that much later.
   */
  failoverTimeoutMs?: number
  /**
   * How long one request to an operator may go unanswered before it fails with TIMEOUT and the
   * executor counts as silent (with `autoChallenge`, it is challenged at once). Default 35 s:
   * above the 30 s after which operators answer TIMEOUT themselves while their enclave is busy.
   * A transaction left unanswered while the executor's own challenge of a late watchdog is
   * open on-chain is sent again instead. Keep it above the executors' ack timeout (5 s) plus a
   * block, or a transaction that waits for a late watchdog challenges the executor before it
   * challenges the watchdog.
   */
  requestTimeoutMs?: number
  /**
   * While requests to the executor are pending, its operator's `/v1/health` is checked every
   * `hostProbeMs` (default 2 s; 0: never), each check allowed as long, one check at a time per
   * host however many requests the process has pending there: two checks in a row left
   * unanswered or refused (the second right after the first) mean a stopped, frozen or cut-off
   * host, treated like an unanswered request (with `autoChallenge`, challenged at once: at most
   * 3 × `hostProbeMs` after the request) instead of waiting out `requestTimeoutMs`. A host
   * whose operator answers keeps its requests waiting.
   */
  hostProbeMs?: number
  /**
   * How transactions and view calls reach the executor: `'ws'` (default), the operators'
   * WebSocket API, one connection per operator shared by the clients of the process; `'http'`,
   * one `POST /v1/instances/:id/{tx,view}` each. Over `'ws'`, an operator whose WebSocket
   * cannot be opened is sent the request over HTTP.
   */
  apiTransport?: ApiTransport
  /**
   * Reuse one ephemeral encryption key per instance key for many requests (default true): a
   * request then costs no key exchange (docs/decisions/0012). Each request still has its own
   * nonce and response key; a session lasts at most 65,536 requests or 10 minutes. `false`
   * seals every request with a fresh ephemeral key, so that no two requests can be linked by
   * their ciphertexts.
   */
  sessionKeys?: boolean
  /**
   * With `sessionKeys`, sign once per box session instead of once per transaction (default
   * true): the account signs a `Session` message (EIP-712) authorising the session's key for
   * an hour of chain time, and the enclave accepts the transactions in that session's boxes as
   * the account's (docs/decisions/0014). `false` signs every transaction, so that a wallet
   * shows each one.
   */
  sessionAuth?: boolean
}

/** A transaction kept for `getReceipt`: its box, and its receipt once a later send got it. */
export type SentTx = {
  instance: bigint
  nonce: bigint
  box: Uint8Array
  responseKey: Uint8Array
  receipt?: PoseReceipt
}

export type PoseClientState = {
  /** Each instance's next nonce for the account (one after the last taken). */
  nonces: Map<string, bigint>
  /** Nonces below it given back by transactions the enclave refused, to be taken first. */
  freeNonces: Map<string, bigint[]>
  /** Each instance's nonces held by transactions being sent: never taken by another one. */
  noncesInFlight: Map<string, Set<bigint>>
  instances: Map<string, GetInstanceReturnType>
  /**
   * Transactions sent whose receipt has not reached the caller, by hash (for `getReceipt`): the
   * receipt itself once a later send got it (see `unconfirmed`).
   */
  sent: Map<string, SentTx>
  /**
   * Each instance's transactions that ended unconfirmed (`TransactionUnconfirmedError`), by
   * nonce, with their hash: a host may still hold such a box, so a send that takes one of these
   * nonces sends that box again first.
   */
  unconfirmed: Map<string, Map<bigint, string>>
  /** Session authorisations by instance and box key (decision 0014), signed or being signed. */
  sessionAuths: Map<string, Promise<{ validUntil: bigint; signature: Uint8Array }>>
}

/** A client's empty state: no nonce, instance, pending transaction or session known yet. */
export function newClientState(): PoseClientState {
  return {
    nonces: new Map(),
    freeNonces: new Map(),
    noncesInFlight: new Map(),
    instances: new Map(),
    sent: new Map(),
    unconfirmed: new Map(),
    sessionAuths: new Map(),
  }
}

export type PoseClientBase = ChainClients & {
  account: LocalAccount
  manager: Address
  domain: PoseDomain
  sender: TxSender
  pollingIntervalMs: number
  failover: {
    autoChallenge: boolean
    timeoutMs: number
    requestTimeoutMs: number
    hostProbeMs: number
    apiTransport: ApiTransport
  }
  state: PoseClientState
  /** Box sessions for requests (`sessionKeys`); none: a fresh ephemeral key per request. */
  boxSessions?: BoxSessions | undefined
  /** Transactions are authorised per box session (`sessionAuth`), not signed one by one. */
  sessionAuth: boolean
}

export type PoseClient = PoseClientBase & {
  deployContract: <const abi extends Abi>(
    p: DeployContractParameters<abi>,
  ) => ReturnType<typeof deployContract<abi>>
  sendTransaction: (p: SendTransactionParameters) => ReturnType<typeof sendTransaction>
  writeContract: <
    const abi extends Abi,
    functionName extends ContractFunctionName<abi, 'nonpayable' | 'payable'>,
    args extends ContractFunctionArgs<abi, 'nonpayable' | 'payable', functionName>,
  >(
    p: WriteContractParameters<abi, functionName, args>,
  ) => ReturnType<typeof writeContract<abi, functionName, args>>
  readContract: <
    const abi extends Abi,
    functionName extends ContractFunctionName<abi, 'pure' | 'view'>,
    args extends ContractFunctionArgs<abi, 'pure' | 'view', functionName>,
  >(
    p: ReadContractParameters<abi, functionName, args>,
  ) => ReturnType<typeof readContract<abi, functionName, args>>
  getReceipt: (p: GetReceiptParameters) => ReturnType<typeof getReceipt>
  challengeExecutor: (p: ChallengeExecutorParameters) => ReturnType<typeof challengeExecutor>
  deposit: (p: DepositParameters) => ReturnType<typeof deposit>
  getBalance: (p: { instance: bigint }) => ReturnType<typeof getBalance>
  withdraw: (p: WithdrawParameters) => ReturnType<typeof withdraw>
  withdrawFinal: (p: { instance: bigint; fromBlock?: bigint }) => ReturnType<typeof withdrawFinal>
  getFinalBalances: (p: {
    instance: bigint
    fromBlock?: bigint
  }) => ReturnType<typeof getFinalBalances>
  getInstance: (p: { instance: bigint; refresh?: boolean }) => Promise<GetInstanceReturnType>
  /** What the manager holds for an account to claim (refunds, rewards), in wei. */
  getPayout: (p?: { address?: Address }) => ReturnType<typeof getPayout>
  /** Claims what the manager credited this account; sends nothing when there is nothing. */
  claim: () => ReturnType<typeof claim>
}

/**
 * Creates a POSE client.
 *
 * @example
 * ```ts
 * const client = await createPoseClient({ rpcUrl: 'http://127.0.0.1:8545', manager, account })
 * const { instance } = await client.deployContract({ abi, bytecode, args: [1000n], watchdogCount: 2 })
 * await client.writeContract({ instance, abi, functionName: 'transfer', args: [to, 5n] })
 * ```
 */
export async function createPoseClient(p: CreatePoseClientParameters): Promise<PoseClient> {
  const pollingIntervalMs = p.pollingIntervalMs ?? 250
  const chain = await createChainClients({
    rpcUrl: p.rpcUrl,
    account: p.account as Account,
    pollingIntervalMs,
  })
  // Every field named in one literal, no spread: built by spreading, the clients of a process
  // with hundreds of them took many hidden classes, and property reads on them missed their
  // inline caches once per transfer (bench/README.md, 2026-12-06).
  const base: PoseClientBase = {
    chain: chain.chain,
    publicClient: chain.publicClient,
    walletClient: chain.walletClient,
    account: p.account,
    manager: p.manager,
    domain: { chainId: BigInt(chain.chain.id), manager: hexToBytes(p.manager, 'manager', 20) },
    sender: new TxSender(chain.publicClient, chain.walletClient!),
    pollingIntervalMs,
    failover: {
      autoChallenge: p.autoChallenge ?? false,
      timeoutMs: p.failoverTimeoutMs ?? 120_000,
      requestTimeoutMs: p.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
      hostProbeMs: p.hostProbeMs ?? DEFAULT_HOST_PROBE_MS,
      apiTransport: p.apiTransport ?? 'ws',
    },
    state: newClientState(),
    boxSessions: p.sessionKeys === false ? undefined : new BoxSessions(),
    sessionAuth: p.sessionKeys !== false && p.sessionAuth !== false,
  }
  const client = base as PoseClient
  client.deployContract = (q) => deployContract(base, q)
  client.sendTransaction = (q) => sendTransaction(base, q)
  client.writeContract = (q) => writeContract(base, q)
  client.readContract = (q) => readContract(base, q)
  client.getReceipt = (q) => getReceipt(base, q)
  client.getInstance = (q) => getInstance(base, q)
  client.challengeExecutor = (q) => challengeExecutor(base, q)
  client.deposit = (q) => deposit(base, q)
  client.getBalance = (q) => getBalance(base, q)
  client.withdraw = (q) => withdraw(base, q)
  client.withdrawFinal = (q) => withdrawFinal(base, q)
  client.getFinalBalances = (q) => getFinalBalances(base, q)
  client.getPayout = (q) => getPayout(base, q)
  client.claim = () => claim(base)
  return client
}

export type { Hex }
