/**
 * The retry of an enclave's on-chain calls (src/chain/sender.ts `writeWithRetry`): sent again
 * after an endpoint's failure, never after a revert, bounded in attempts; the redaction of RPC
 * URLs from what the operator logs; and `TxSender` on anvil: a call replaced at its nonce by
 * another client of its key is not taken as landed, and one the base fee left behind is sent
 * again at its nonce with higher fees, a bounded number of times.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  type Address,
  createPublicClient,
  createWalletClient,
  custom,
  defineChain,
  type Hash,
  type Hex,
  type JsonRpcAccount,
  keccak256,
  parseTransaction,
  TransactionNotFoundError,
  type TransactionReceipt,
  TransactionReceiptNotFoundError,
  WaitForTransactionReceiptTimeoutError,
} from 'viem'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { privateTokenAbi, privateTokenBytecode } from '../../examples/contracts.generated.ts'
import { poseManagerAbi } from '../../src/chain/abi.generated.ts'
import { createChainClients } from '../../src/chain/clients.ts'
import { ChainTxError, redactUrls, TxSender, writeWithRetry } from '../../src/chain/sender.ts'
import { anvilRpc, startAnvil } from '../../src/devnet/anvil.ts'

const endpointDown = () => new ChainTxError('respondWatchdog', 'HTTP request failed')
const reverted = () =>
  new ChainTxError('respondWatchdog', 'PoseManager_WrongPhase(1)', { reverted: true })

/** A write that fails with `failures` in turn, then succeeds; counts its calls. */
function flaky(failures: Array<() => Error>) {
  let calls = 0
  return {
    calls: () => calls,
    write: async () => {
      const f = failures[calls++]
      if (f) throw f()
      return 'mined'
    },
  }
}

test('an on-chain call that fails at the endpoint is sent again until it lands', async () => {
  const w = flaky([endpointDown, endpointDown])
  const retried: number[] = []
  const r = await writeWithRetry(w.write, {
    attempts: 5,
    backoffMs: 1,
    onRetry: (_e, attempt) => retried.push(attempt),
  })
  assert.equal(r, 'mined')
  assert.equal(w.calls(), 3)
  assert.deepEqual(retried, [1, 2])
})

test('a reverted call is not sent again; failures stop after the attempts allowed or once stopped', async () => {
  const rev = flaky([reverted])
  await assert.rejects(
    writeWithRetry(rev.write, { attempts: 5, backoffMs: 1 }),
    (e) => e instanceof ChainTxError && e.reverted,
  )
  assert.equal(rev.calls(), 1)

  const down = flaky(Array.from({ length: 10 }, () => endpointDown))
  await assert.rejects(writeWithRetry(down.write, { attempts: 3, backoffMs: 1 }), /HTTP request/)
  assert.equal(down.calls(), 3)

  // A node that stops during a wait (a long one) sends nothing more, and does not wait it out.
  const stop = new AbortController()
  const stopping = flaky(Array.from({ length: 10 }, () => endpointDown))
  const t0 = performance.now()
  await assert.rejects(
    writeWithRetry(stopping.write, {
      attempts: 10,
      backoffMs: 60_000,
      signal: stop.signal,
      onRetry: () => setImmediate(() => stop.abort()),
    }),
    /HTTP request/,
  )
  assert.equal(stopping.calls(), 1)
  assert.ok(performance.now() - t0 < 30_000, 'the wait ended when the node stopped')
})

test("an RPC provider's key in a URL's path or query never reaches the operator's log", () => {
  const message = [
    'HTTP request failed.',
    'URL: https://eth-mainnet.example.com/v2/SECRETKEY123?apikey=OTHERSECRET',
    'Request body: {"method":"eth_sendRawTransaction"}',
    'and wss://rpc.example.org/ws/SECRETWS plus http://127.0.0.1:8545',
  ].join('\n')
  const shown = redactUrls(message)
  assert.doesNotMatch(shown, /SECRET/)
  assert.match(shown, /https:\/\/eth-mainnet\.example\.com\/…/)
  assert.match(shown, /wss:\/\/rpc\.example\.org\/…/)
  assert.match(shown, /http:\/\/127\.0\.0\.1:8545(?!\/…)/)
  assert.match(shown, /eth_sendRawTransaction/)
})

test('the waits between attempts double up to their cap', async () => {
  const waits: number[] = []
  let last = performance.now()
  const down = flaky(Array.from({ length: 6 }, () => endpointDown))
  await writeWithRetry(
    async () => {
      const now = performance.now()
      waits.push(now - last)
      last = now
      return down.write()
    },
    { attempts: 7, backoffMs: 20, maxBackoffMs: 80 },
  )
  assert.equal(down.calls(), 7)
  // Waits of 20, 40, 80, 80, 80, 80 ms (timers fire at or after their time).
  const gaps = waits.slice(1)
  for (const [i, min] of [20, 40, 80, 80, 80, 80].entries())
    assert.ok(gaps[i]! >= min - 2, `wait ${i + 1}: ${gaps[i]} ms, at least ${min}`)
  // Uncapped, the last would be 640 ms.
  assert.ok(gaps[5]! < 400, `capped: ${gaps.map(Math.round)}`)
})

/**
 * A TxSender over fake clients: the call passes simulation and is sent as `sent`; `receipt`
 * stands for the receipt wait (the replay of a reverted call reverts with `PoseManager_Late()`).
 */
function fakeSender(sent: Hash, receipt: (timeoutMs: number | undefined) => Promise<unknown>) {
  const publicClient = {
    simulateContract: async (request: { blockNumber?: bigint }) => {
      if (request.blockNumber !== undefined) throw new Error('PoseManager_Late()')
      return { request }
    },
    estimateContractGas: async () => 50_000n,
    waitForTransactionReceipt: (a: { hash: Hash; timeout?: number }) => {
      assert.equal(a.hash, sent)
      return receipt(a.timeout)
    },
    getTransaction: async () => ({ gas: 82_500n }),
  }
  const walletClient = {
    account: { address: `0x${'77'.repeat(20)}` },
    writeContract: async () => sent,
  }
  return new TxSender(publicClient as never, walletClient as never)
}

const depositCall = {
  address: `0x${'42'.repeat(20)}`,
  abi: poseManagerAbi,
  functionName: 'deposit',
  args: [1n],
  value: 5n,
} as const

test('a transaction sent whose receipt does not come in time is named as sent and may still land, not as failed', async () => {
  const sent = `0x${'ab'.repeat(32)}` as const
  const waited: Array<number | undefined> = []
  const sender = fakeSender(sent, async (timeout) => {
    waited.push(timeout)
    throw new WaitForTransactionReceiptTimeoutError({ hash: sent })
  })
  const e = await sender.write(depositCall).then(
    () => assert.fail('the write resolved'),
    (e: unknown) => e,
  )
  assert.ok(e instanceof ChainTxError, String(e))
  assert.equal(e.hash, sent, 'the hash is a field, not only text')
  assert.equal(e.reverted, false)
  assert.deepEqual(waited, [60_000])
  assert.ok(e.message.startsWith(`deposit was sent as transaction ${sent},`), e.message)
  assert.match(e.message, /may still land/)
  assert.doesNotMatch(e.message, /deposit failed/)

  // A mined revert also names its transaction, but as the manager's final answer.
  const mined = fakeSender(sent, async () => ({
    status: 'reverted',
    transactionHash: sent,
    blockNumber: 9n,
    gasUsed: 41_000n,
  }))
  const r = await mined.write(depositCall).then(
    () => assert.fail('the write resolved'),
    (e: unknown) => e,
  )
  assert.ok(r instanceof ChainTxError, String(r))
  assert.equal(r.reverted, true)
  assert.equal(r.hash, sent)
  assert.ok(
    r.message.startsWith(`deposit failed: transaction ${sent} reverted in block 9`),
    r.message,
  )
  assert.match(r.message, /PoseManager_Late\(\)/)
})

test('a call sent without a receipt is looked up before it is sent again: a mined one ends the attempts, a pending one is waited for, a dropped one is sent again', async () => {
  const sent = `0x${'cd'.repeat(32)}` as const
  /** The endpoint's view of `sent` at each lookup, in turn (the last one stays). */
  const run = async (fates: Array<'pending' | 'mined' | 'reverted' | 'dropped'>) => {
    let writes = 0
    let lookups = 0
    const fate = () => fates[Math.min(lookups, fates.length - 1)]!
    const publicClient = {
      simulateContract: async (request: object) => ({ request }),
      estimateContractGas: async () => 50_000n,
      waitForTransactionReceipt: async () => {
        // The first copy's receipt never comes; a second copy's does.
        if (writes === 1) throw new WaitForTransactionReceiptTimeoutError({ hash: sent })
        return { status: 'success', transactionHash: sent }
      },
      getTransactionReceipt: async () => {
        const f = fate()
        if (f === 'mined') return { status: 'success', transactionHash: sent }
        if (f === 'reverted') return { status: 'reverted', transactionHash: sent }
        lookups++
        throw new TransactionReceiptNotFoundError({ hash: sent })
      },
      getTransaction: async () => {
        if (fates[Math.min(lookups - 1, fates.length - 1)] === 'pending') return { hash: sent }
        throw new TransactionNotFoundError({ hash: sent })
      },
    }
    const walletClient = {
      account: { address: `0x${'77'.repeat(20)}` },
      writeContract: async () => {
        writes++
        return sent
      },
    }
    const sender = new TxSender(publicClient as never, walletClient as never)
    const out = await writeWithRetry(() => sender.write(depositCall), {
      attempts: 6,
      backoffMs: 1,
      settle: (hash) => sender.settle('deposit', hash),
    }).then(
      (r) => r,
      (e: unknown) => e,
    )
    return { out, writes }
  }
  // Pending twice, then mined: sent once, and its receipt is the result.
  const mined = await run(['pending', 'pending', 'mined'])
  assert.equal(mined.writes, 1, 'never sent again')
  assert.ok(!(mined.out instanceof Error), String(mined.out))
  assert.equal((mined.out as { hash: Hash }).hash, sent)
  // Pending past the attempts: still sent once, and the error names it as sent.
  const waiting = await run(['pending'])
  assert.equal(waiting.writes, 1)
  assert.ok(waiting.out instanceof ChainTxError && waiting.out.hash === sent, String(waiting.out))
  assert.equal(waiting.out.reverted, false)
  // Unknown to the endpoint: sent again, once.
  const dropped = await run(['dropped'])
  assert.equal(dropped.writes, 2)
  assert.ok(!(dropped.out instanceof Error), String(dropped.out))
  // Mined as a revert: the manager's final answer, not sent again.
  const refused = await run(['reverted'])
  assert.equal(refused.writes, 1)
  assert.ok(refused.out instanceof ChainTxError && refused.out.reverted, String(refused.out))
})

/** A token on a fresh anvil, its whole supply held by a funded account that signs here. */
async function tokenOnAnvil() {
  const anvil = await startAnvil()
  try {
    const key = generatePrivateKey()
    const account = privateKeyToAccount(key)
    await anvilRpc(anvil.url, 'anvil_setBalance', [account.address, '0xffffffffffffffffffff'])
    const clients = await createChainClients({ rpcUrl: anvil.url, account, pollingIntervalMs: 20 })
    const wallet = clients.walletClient!
    return { anvil, key, account, ...clients, wallet, ...(await deployToken(clients)) }
  } catch (e) {
    await anvil.stop()
    throw e
  }
}

/**
 * A token deployed by `clients`' account, which holds its whole supply: its calls transferring
 * to a fresh recipient, and what that recipient holds (the token answers only its holder).
 */
async function deployToken(clients: Awaited<ReturnType<typeof createChainClients>>) {
  const deployed = await clients.publicClient.waitForTransactionReceipt({
    hash: await clients.walletClient!.deployContract({
      abi: privateTokenAbi,
      bytecode: privateTokenBytecode,
      args: [1_000n],
    }),
  })
  const token = deployed.contractAddress as Address
  const recipient = privateKeyToAccount(generatePrivateKey()).address
  const transfer = (amount: bigint) =>
    ({
      address: token,
      abi: privateTokenAbi,
      functionName: 'transfer',
      args: [recipient, amount],
    }) as const
  const received = () =>
    clients.publicClient.readContract({
      address: token,
      abi: privateTokenAbi,
      functionName: 'balanceOf',
      args: [recipient],
      account: recipient,
    })
  return { token, recipient, transfer, received }
}

type PooledTx = {
  hash: Hash
  to: Address
  nonce: string
  input: string
  gas: string
  maxFeePerGas: string
  maxPriorityFeePerGas: string
}

/** The transaction of `from` in anvil's pool that `accept`s, once there (fails after 10 s). */
async function pooled(
  url: string,
  from: Address,
  accept: (tx: PooledTx) => boolean = () => true,
): Promise<PooledTx> {
  const deadline = Date.now() + 10_000
  for (;;) {
    const pool = (await anvilRpc(url, 'txpool_content')) as {
      pending: Record<string, Record<string, PooledTx>>
    }
    const mine = Object.entries(pool.pending).find(([a]) => a.toLowerCase() === from.toLowerCase())
    const tx = Object.values(mine?.[1] ?? {}).find(accept)
    if (tx) return tx
    assert.ok(Date.now() < deadline, 'no such transaction reached the pool in 10 s')
    await new Promise((r) => setTimeout(r, 20))
  }
}

test('a call replaced at its nonce by another transaction of its account (another client of the key) is not reported as landed: it is dropped, and sent again', {
  timeout: 60_000,
}, async () => {
  const t = await tokenOnAnvil()
  try {
    // The operator's CLI, run while its node runs: another client of the same key.
    const cli = await createChainClients({ rpcUrl: t.anvil.url, account: t.account })
    // Its nonce taken for 300 ms (anvil does not lag) before the call counts as replaced.
    const sender = new TxSender(t.publicClient, t.wallet, { replacedAfterMs: 300 })
    await anvilRpc(t.anvil.url, 'evm_setAutomine', [false])
    const written = sender.write(t.transfer(7n)).then(
      (r) => r,
      (e: unknown) => e,
    )
    const ours = await pooled(t.anvil.url, t.account.address)
    // Time for a receipt wait to see the call pending (viem's then looks for a replacement).
    await new Promise((r) => setTimeout(r, 300))
    const replacement = await cli.walletClient!.sendTransaction({
      to: t.account.address,
      value: 0n,
      nonce: Number(ours.nonce),
      maxFeePerGas: 2n * BigInt(ours.maxFeePerGas),
      maxPriorityFeePerGas: 2n * BigInt(ours.maxPriorityFeePerGas),
    })
    await anvilRpc(t.anvil.url, 'evm_mine')
    const minedAt = Date.now()
    const mined = await t.publicClient.getTransactionReceipt({ hash: replacement })
    assert.equal(mined.status, 'success', 'the replacement was mined, with a success status')

    const out = await written
    assert.ok(Date.now() - minedAt >= 300, 'taken as replaced only after replacedAfterMs')
    assert.ok(
      out instanceof ChainTxError,
      `the call was reported as landed, with the receipt of ${(out as { receipt?: TransactionReceipt }).receipt?.transactionHash} (its own hash: ${ours.hash})`,
    )
    assert.equal(out.reverted, false)
    assert.equal(out.dropped, true)
    assert.equal(out.hash, ours.hash, 'the error names the call, not the replacement')
    assert.match(out.message, /did not land/)
    assert.equal(await t.received(), 0n, 'the call did not happen')

    // The lookup agrees, and the retry sends the call again: it lands, once.
    assert.equal(await sender.settle('transfer', out.hash!), 'dropped')
    await anvilRpc(t.anvil.url, 'evm_setAutomine', [true])
    let writes = 0
    const landed = await writeWithRetry(
      () => {
        writes++
        return sender.write(t.transfer(7n))
      },
      { attempts: 3, backoffMs: 1, settle: (h) => sender.settle('transfer', h), sent: out.hash },
    )
    assert.equal(writes, 1)
    assert.equal(landed.receipt.status, 'success')
    assert.equal(landed.receipt.transactionHash, landed.hash)
    assert.equal(await t.received(), 7n)

    // Through writeWithRetry from the start: the dropped call is sent again at once.
    await anvilRpc(t.anvil.url, 'evm_setAutomine', [false])
    writes = 0
    const retried = writeWithRetry(
      () => {
        writes++
        return sender.write(t.transfer(1n))
      },
      { attempts: 3, backoffMs: 1, settle: (h) => sender.settle('transfer', h) },
    )
    const again = await pooled(t.anvil.url, t.account.address)
    await cli.walletClient!.sendTransaction({
      to: t.account.address,
      value: 0n,
      nonce: Number(again.nonce),
      maxFeePerGas: 2n * BigInt(again.maxFeePerGas),
      maxPriorityFeePerGas: 2n * BigInt(again.maxPriorityFeePerGas),
    })
    await anvilRpc(t.anvil.url, 'evm_mine')
    await pooled(t.anvil.url, t.account.address, (tx) => tx.hash !== again.hash)
    await anvilRpc(t.anvil.url, 'evm_mine')
    const second = await retried
    assert.equal(writes, 2)
    assert.equal(second.receipt.status, 'success')
    assert.equal(await t.received(), 8n)
  } finally {
    await t.anvil.stop()
  }
})

test('a call left unmined once the base fee passes its max fee is sent again at its nonce with higher fees, and the copy mined is the one reported', {
  timeout: 60_000,
}, async () => {
  const t = await tokenOnAnvil()
  try {
    const sender = new TxSender(t.publicClient, t.wallet, { bumpAfterMs: 200 })
    await anvilRpc(t.anvil.url, 'evm_setAutomine', [false])
    const raised = (x: bigint) => x + (x + 7n) / 8n
    const hex = (x: bigint) => `0x${x.toString(16)}`

    // The next block's base fee is just above what the first copy offers: it stays in the pool,
    // unminable, until a copy with 12.5 % more replaces it.
    const written = sender.write(t.transfer(3n)).then(
      (r) => r,
      (e: unknown) => e,
    )
    const first = await pooled(t.anvil.url, t.account.address)
    const offered = BigInt(first.maxFeePerGas)
    await anvilRpc(t.anvil.url, 'anvil_setNextBlockBaseFeePerGas', [hex(offered + 1n)])
    const bumped = await pooled(t.anvil.url, t.account.address, (tx) => tx.hash !== first.hash)
    assert.equal(bumped.nonce, first.nonce, 'the copy replaces the call at its nonce')
    assert.equal(bumped.input, first.input, 'with its calldata')
    assert.equal(bumped.gas, first.gas)
    assert.ok(BigInt(bumped.maxFeePerGas) >= raised(offered), `${bumped.maxFeePerGas}`)
    assert.ok(BigInt(bumped.maxPriorityFeePerGas) >= raised(BigInt(first.maxPriorityFeePerGas)))
    await anvilRpc(t.anvil.url, 'evm_mine')
    const r = await written
    assert.ok(!(r instanceof Error), String(r))
    const { hash, receipt } = r as { hash: Hash; receipt: TransactionReceipt }
    assert.equal(hash, bumped.hash, 'the copy mined is the one reported')
    assert.equal(receipt.transactionHash, hash)
    assert.equal(receipt.status, 'success')
    const block = await t.publicClient.getBlock({ blockNumber: receipt.blockNumber })
    assert.ok(block.baseFeePerGas! > offered, 'the first copy could not have been included')
    assert.equal(await t.received(), 3n)

    // A block whose base fee is four times what the call offers is mined while it waits: the
    // copy offers at least what a transaction sent now would (1.2 times that base fee).
    const written2 = sender.write(t.transfer(4n)).then(
      (r) => r,
      (e: unknown) => e,
    )
    const first2 = await pooled(t.anvil.url, t.account.address)
    const base = 4n * BigInt(first2.maxFeePerGas)
    await anvilRpc(t.anvil.url, 'anvil_setNextBlockBaseFeePerGas', [hex(base)])
    await anvilRpc(t.anvil.url, 'evm_mine')
    const bumped2 = await pooled(t.anvil.url, t.account.address, (tx) => tx.hash !== first2.hash)
    assert.equal(bumped2.nonce, first2.nonce)
    assert.ok(BigInt(bumped2.maxFeePerGas) >= (base * 12n) / 10n, `${bumped2.maxFeePerGas}`)
    await anvilRpc(t.anvil.url, 'evm_mine')
    const r2 = await written2
    assert.ok(!(r2 instanceof Error), String(r2))
    assert.equal((r2 as { hash: Hash }).hash, bumped2.hash)
    assert.equal(await t.received(), 7n)
    await assert.rejects(
      t.publicClient.getTransactionReceipt({ hash: first2.hash }),
      TransactionReceiptNotFoundError,
    )
  } finally {
    await t.anvil.stop()
  }
})

/**
 * A JSON-RPC endpoint in-process that takes every transaction and mines none (until `mine`):
 * a base fee of 1 gwei (none with `legacy`, a gas price of 1 gwei instead) and a tip of 1 gwei.
 * With `lagMs`, it stands for nodes behind a load balancer: the account's nonce shows a block at
 * once, the block's receipts and transactions only `lagMs` later. `replace` has a transaction
 * that is none of those sent take their nonce; the first `failSends` sends are taken but
 * answered with an error (a request that timed out after it reached the endpoint).
 */
function stuckEndpoint(opts: { legacy?: boolean; lagMs?: number; failSends?: number } = {}) {
  const account = privateKeyToAccount(generatePrivateKey())
  const chain = defineChain({
    id: 31337,
    name: 'stuck',
    nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 },
    rpcUrls: { default: { http: ['http://127.0.0.1:1'] } },
  })
  const NONCE = 7
  const sent: Array<ReturnType<typeof parseTransaction> & { hash: Hash }> = []
  /** The block that took the nonce: by a transaction sent (`hash`) or by another one; when. */
  let took: { hash: Hash | undefined; at: number } | undefined
  /** Whether the nodes that answer receipts and transactions have that block too. */
  const synced = () => took !== undefined && Date.now() >= took.at + (opts.lagMs ?? 0)
  let failSends = opts.failSends ?? 0
  const gwei = '0x3b9aca00'
  const hex = (x: bigint | number) => `0x${x.toString(16)}`
  const request = async ({ method, params }: { method: string; params?: unknown[] }) => {
    switch (method) {
      case 'eth_chainId':
        return '0x7a69'
      case 'eth_call':
        return `0x${'0'.repeat(63)}1`
      case 'eth_estimateGas':
        return '0xc350'
      case 'eth_getTransactionCount':
        return hex(params?.[1] === 'latest' && took ? NONCE + 1 : NONCE)
      case 'eth_getBlockByNumber':
        return {
          number: '0x10',
          hash: `0x${'11'.repeat(32)}`,
          timestamp: '0x1',
          gasLimit: '0x1c9c380',
          gasUsed: '0x0',
          transactions: [],
          ...(opts.legacy ? {} : { baseFeePerGas: gwei }),
        }
      case 'eth_maxPriorityFeePerGas':
      case 'eth_gasPrice':
        return gwei
      case 'eth_sendRawTransaction': {
        const raw = params![0] as Hex
        const hash = keccak256(raw)
        sent.push({ ...parseTransaction(raw), hash })
        // A code viem's transport does not retry on (-32000: a provider's "request timed out").
        if (failSends-- > 0) throw Object.assign(new Error('request timed out'), { code: -32000 })
        return hash
      }
      case 'eth_getTransactionReceipt':
        return synced() && params![0] === took?.hash
          ? {
              transactionHash: took!.hash,
              transactionIndex: '0x0',
              blockHash: `0x${'12'.repeat(32)}`,
              blockNumber: '0x11',
              from: account.address,
              to: `0x${'42'.repeat(20)}`,
              cumulativeGasUsed: '0x5208',
              gasUsed: '0x5208',
              effectiveGasPrice: gwei,
              contractAddress: null,
              logs: [],
              logsBloom: `0x${'00'.repeat(256)}`,
              status: '0x1',
              type: '0x2',
            }
          : null
      case 'eth_getTransactionByHash': {
        const tx = sent.find((x) => x.hash === params![0])
        // Pending until the nodes have the block: then mined, or gone if another took its nonce.
        const mined = synced() && took?.hash === tx?.hash
        if (!tx || (synced() && !mined)) return null
        return {
          hash: tx.hash,
          from: account.address,
          to: tx.to,
          nonce: hex(tx.nonce!),
          input: tx.data ?? '0x',
          value: hex(tx.value ?? 0n),
          gas: hex(tx.gas!),
          ...(tx.gasPrice !== undefined
            ? { type: '0x0', gasPrice: hex(tx.gasPrice) }
            : {
                type: '0x2',
                maxFeePerGas: hex(tx.maxFeePerGas!),
                maxPriorityFeePerGas: hex(tx.maxPriorityFeePerGas!),
                accessList: [],
              }),
          chainId: '0x7a69',
          v: '0x0',
          r: '0x1',
          s: '0x1',
          blockHash: mined ? `0x${'12'.repeat(32)}` : null,
          blockNumber: mined ? '0x11' : null,
          transactionIndex: mined ? '0x0' : null,
        }
      }
      default: // eth_fillTransaction, which viem tries first when it estimates gas
        throw Object.assign(new Error(`the method ${method} does not exist`), { code: -32601 })
    }
  }
  const transport = custom({ request })
  const publicClient = createPublicClient({ chain, transport, pollingInterval: 5 })
  const walletClient = createWalletClient({ chain, transport, account, pollingInterval: 5 })
  return {
    publicClient,
    walletClient,
    sent,
    mine: (hash: Hash) => (took = { hash, at: Date.now() }),
    replace: () => (took = { hash: undefined, at: Date.now() }),
  }
}

/** Resolves once `cond` holds (fails after 5 s). */
async function until(cond: () => boolean): Promise<void> {
  const deadline = Date.now() + 5_000
  while (!cond()) {
    assert.ok(Date.now() < deadline, 'not in 5 s')
    await new Promise((r) => setTimeout(r, 5))
  }
}

test("copies with higher fees are bounded in number and by a fee ceiling, each at least 12.5 % over the last; the error names the latest, and its lookup finds an earlier copy's receipt", async () => {
  const raised = (x: bigint) => x + (x + 7n) / 8n
  const fail = (r: unknown) => assert.fail(`the write resolved: ${String(r)}`)

  // Bounded in number: the first copy and 3 more, each at its nonce with the same calldata.
  const e = stuckEndpoint()
  const sender = new TxSender(e.publicClient as never, e.walletClient, {
    receiptTimeoutMs: 400,
    bumpAfterMs: 10,
    maxBumps: 3,
  })
  const err = await sender.write(depositCall).then(fail, (x: unknown) => x)
  assert.ok(err instanceof ChainTxError, String(err))
  assert.equal(e.sent.length, 4)
  for (const [i, tx] of e.sent.entries()) {
    assert.equal(tx.nonce, 7)
    assert.equal(tx.data, e.sent[0]!.data)
    assert.equal(tx.gas, e.sent[0]!.gas)
    if (i === 0) continue
    const prev = e.sent[i - 1]!
    assert.ok(tx.maxFeePerGas! >= raised(prev.maxFeePerGas!), `copy ${i}: ${tx.maxFeePerGas}`)
    assert.ok(tx.maxPriorityFeePerGas! >= raised(prev.maxPriorityFeePerGas!))
  }
  assert.equal(err.hash, e.sent[3]!.hash, 'the latest copy is named')
  assert.equal(err.reverted, false)
  assert.equal(err.dropped, false)
  assert.match(err.message, /may still land/)
  // The first copy was the one mined: the lookup of the latest finds it.
  e.mine(e.sent[0]!.hash)
  const fate = await sender.settle('deposit', err.hash!)
  assert.notEqual(fate, 'dropped')
  assert.equal((fate as { hash: Hash }).hash, e.sent[0]!.hash)

  // A ceiling 1.2 times the first copy's max fee leaves room for one copy (1.125 times) only.
  const capped = stuckEndpoint()
  const first = 2_200_000_000n // 1.2 base fees of 1 gwei, and a tip of 1 gwei
  const cappedSender = new TxSender(capped.publicClient as never, capped.walletClient, {
    receiptTimeoutMs: 300,
    bumpAfterMs: 10,
    feeCeiling: (first * 12n) / 10n,
  })
  await assert.rejects(cappedSender.write(depositCall), ChainTxError)
  assert.deepEqual(
    capped.sent.map((tx) => tx.maxFeePerGas),
    [first, raised(first)],
  )

  // Without EIP-1559 fees, the gas price rises the same way.
  const legacy = stuckEndpoint({ legacy: true })
  const legacySender = new TxSender(legacy.publicClient as never, legacy.walletClient, {
    receiptTimeoutMs: 300,
    bumpAfterMs: 10,
    maxBumps: 2,
  })
  await assert.rejects(legacySender.write(depositCall), ChainTxError)
  const prices = legacy.sent.map((tx) => tx.gasPrice!)
  assert.equal(prices.length, 3)
  assert.deepEqual(
    legacy.sent.map((tx) => tx.type),
    ['legacy', 'legacy', 'legacy'],
  )
  assert.ok(prices[1]! >= raised(prices[0]!) && prices[2]! >= raised(prices[1]!), `${prices}`)
})

test('a call replaced at its nonce is looked up before it is sent again: a receipt that shows late ends the attempts', async () => {
  const sent = `0x${'ef'.repeat(32)}` as const
  const dropped = () =>
    new ChainTxError('deposit', 'another transaction took its nonce', { hash: sent, dropped: true })
  let writes = 0
  const looked: Hash[] = []
  const out = await writeWithRetry(
    async () => {
      writes++
      throw dropped()
    },
    {
      attempts: 3,
      backoffMs: 1,
      settle: async (hash) => {
        looked.push(hash)
        return 'landed late'
      },
    },
  )
  assert.equal(out, 'landed late')
  assert.equal(writes, 1, 'not sent again')
  assert.deepEqual(looked, [sent])

  // The lookup agrees that it did not land: sent again.
  const w = flaky([dropped])
  const again = await writeWithRetry(w.write, {
    attempts: 3,
    backoffMs: 1,
    settle: async () => 'dropped' as const,
  })
  assert.equal(again, 'mined')
  assert.equal(w.calls(), 2)
})

test('a call whose nonce shows taken before its receipt does (nodes behind a load balancer that lag) is not taken for replaced: it lands, sent once; a true replacement is dropped only after replacedAfterMs', {
  timeout: 30_000,
}, async () => {
  const fail = (r: unknown) => assert.fail(`the write resolved: ${String(r)}`)
  // The receipt shows 1 s after the nonce does; a call counts as replaced after 2 s.
  const e = stuckEndpoint({ lagMs: 1_000 })
  const sender = new TxSender(e.publicClient as never, e.walletClient, {
    receiptTimeoutMs: 10_000,
    bumpAfterMs: 60_000,
    replacedAfterMs: 2_000,
  })
  const written = sender.write(depositCall).then(
    (r) => r,
    (x: unknown) => x,
  )
  await until(() => e.sent.length === 1)
  e.mine(e.sent[0]!.hash)
  const r = await written
  assert.ok(!(r instanceof Error), `taken for replaced: ${String(r)}`)
  assert.equal((r as { hash: Hash }).hash, e.sent[0]!.hash)
  assert.equal((r as { receipt: TransactionReceipt }).receipt.status, 'success')
  assert.equal(e.sent.length, 1)

  // Another transaction took its nonce: dropped, but not before replacedAfterMs.
  const f = stuckEndpoint()
  const replaced = new TxSender(f.publicClient as never, f.walletClient, {
    receiptTimeoutMs: 10_000,
    bumpAfterMs: 60_000,
    replacedAfterMs: 500,
  })
  const w = replaced.write(depositCall).then(fail, (x: unknown) => x)
  await until(() => f.sent.length === 1)
  const t0 = Date.now()
  f.replace()
  const d = await w
  assert.ok(d instanceof ChainTxError, String(d))
  assert.equal(d.dropped, true)
  assert.equal(d.hash, f.sent[0]!.hash)
  assert.ok(Date.now() - t0 >= 500, `dropped after ${Date.now() - t0} ms`)
})

test('the lookup of a call whose nonce shows taken says dropped only once that has lasted replacedAfterMs, over lookups: until then its fate is unknown, and a receipt that shows late is the result', {
  timeout: 30_000,
}, async () => {
  const fail = (r: unknown) => assert.fail(`the write resolved: ${String(r)}`)
  const unknownFate = (x: unknown, hash: Hash) =>
    x instanceof ChainTxError && x.hash === hash && !x.dropped && !x.reverted

  // The wait ends while the receipt lags the nonce (1.5 s): the fate is unknown, not dropped.
  const e = stuckEndpoint({ lagMs: 1_500 })
  const sender = new TxSender(e.publicClient as never, e.walletClient, {
    receiptTimeoutMs: 300,
    bumpAfterMs: 60_000,
    replacedAfterMs: 5_000,
  })
  const w = sender.write(depositCall).then(fail, (x: unknown) => x)
  await until(() => e.sent.length === 1)
  e.mine(e.sent[0]!.hash)
  const err = await w
  assert.ok(unknownFate(err, e.sent[0]!.hash), String(err))
  const hash = (err as ChainTxError).hash!
  const early = await sender.settle('deposit', hash).then(
    (r) => r,
    (x: unknown) => x,
  )
  assert.ok(unknownFate(early, hash), `a lookup at once: ${String(early)}`)
  assert.match((early as Error).message, /seen taken by another transaction for/)
  // Looked up again before each attempt: the receipt, once it shows, ends them; nothing is sent.
  let writes = 0
  const landed = await writeWithRetry(
    () => {
      writes++
      return sender.write(depositCall)
    },
    {
      attempts: 30,
      backoffMs: 100,
      maxBackoffMs: 200,
      settle: (h) => sender.settle('deposit', h),
      sent: hash,
    },
  )
  assert.equal(writes, 0)
  assert.equal(landed.hash, e.sent[0]!.hash)
  assert.equal(e.sent.length, 1)

  // Replaced after the wait ended: dropped only by a lookup 400 ms after the first that saw
  // it so, and by the third lookup at least.
  const f = stuckEndpoint()
  const replaced = new TxSender(f.publicClient as never, f.walletClient, {
    receiptTimeoutMs: 100,
    bumpAfterMs: 60_000,
    replacedAfterMs: 400,
  })
  const err2 = await replaced.write(depositCall).then(fail, (x: unknown) => x)
  assert.ok(unknownFate(err2, f.sent[0]!.hash), String(err2))
  f.replace()
  const t0 = Date.now()
  let fate: unknown
  let lookups = 0
  while (lookups < 100) {
    lookups++
    fate = await replaced.settle('deposit', f.sent[0]!.hash).then(
      (r) => r,
      (x: unknown) => x,
    )
    if (fate === 'dropped') break
    assert.ok(unknownFate(fate, f.sent[0]!.hash), String(fate))
    await new Promise((r) => setTimeout(r, 50))
  }
  assert.equal(fate, 'dropped')
  assert.ok(Date.now() - t0 >= 400, `dropped after ${Date.now() - t0} ms`)
  assert.ok(lookups >= 3, `dropped on lookup ${lookups}`)

  // A hash this process did not send (another process's), pending with its nonce taken: the
  // same rule.
  const foreign = `0x${'fa'.repeat(32)}` as const
  const from = `0x${'66'.repeat(20)}` as const
  const lookupOnly = {
    getTransactionReceipt: async () => {
      throw new TransactionReceiptNotFoundError({ hash: foreign })
    },
    getTransaction: async () => ({ hash: foreign, from, nonce: 3, blockNumber: null }),
    getTransactionCount: async () => 4,
  }
  const other = new TxSender(lookupOnly as never, {} as never, { replacedAfterMs: 60_000 })
  const once = await other.settle('deposit', foreign).then(
    (r) => r,
    (x: unknown) => x,
  )
  assert.ok(unknownFate(once, foreign), `one look: ${String(once)}`)
})

test('a first copy whose sending fails (the request timed out after the endpoint took it) is named by the error and looked up, not sent again at the next nonce', {
  timeout: 30_000,
}, async () => {
  const fail = (r: unknown) => assert.fail(`the write resolved: ${String(r)}`)
  const e = stuckEndpoint({ failSends: 1 })
  const sender = new TxSender(e.publicClient as never, e.walletClient, { bumpAfterMs: 60_000 })
  const err = await sender.write(depositCall).then(fail, (x: unknown) => x)
  assert.ok(err instanceof ChainTxError, String(err))
  assert.equal(e.sent.length, 1)
  assert.equal(err.hash, e.sent[0]!.hash, 'the error names the copy sent')
  assert.equal(err.reverted, false)
  assert.equal(err.dropped, false)
  assert.match(err.message, /may still land/)
  assert.match(err.message, /sending it failed/)
  // The endpoint holds it: not mined yet.
  const pending = await sender.settle('deposit', err.hash!).then(
    (r) => r,
    (x: unknown) => x,
  )
  assert.ok(pending instanceof ChainTxError && pending.hash === err.hash, String(pending))
  assert.match(pending.message, /not mined yet/)

  // Through writeWithRetry: looked up before the next attempt, and its receipt is the result.
  const f = stuckEndpoint({ failSends: 1 })
  const sender2 = new TxSender(f.publicClient as never, f.walletClient, { bumpAfterMs: 60_000 })
  let writes = 0
  const r = await writeWithRetry(
    () => {
      writes++
      return sender2.write(depositCall)
    },
    {
      attempts: 5,
      backoffMs: 1,
      settle: (h) => sender2.settle('deposit', h),
      onRetry: () => f.mine(f.sent[0]!.hash),
    },
  )
  assert.equal(writes, 1, 'sent once')
  assert.equal(r.hash, f.sent[0]!.hash)
  assert.equal(f.sent.length, 1)
})

test("a wallet's account (JSON-RPC): a transaction the wallet sped up (the same call, higher fees) is the call's, mined; one it cancelled at its nonce is dropped", {
  timeout: 60_000,
}, async () => {
  const anvil = await startAnvil()
  try {
    // An account anvil signs for (impersonated): viem sends its transactions with
    // eth_sendTransaction, and the wallet chooses nonce and fees.
    const address = privateKeyToAccount(generatePrivateKey()).address
    await anvilRpc(anvil.url, 'anvil_impersonateAccount', [address])
    await anvilRpc(anvil.url, 'anvil_setBalance', [address, '0xffffffffffffffffffff'])
    const account: JsonRpcAccount = { address, type: 'json-rpc' }
    const ours = await createChainClients({ rpcUrl: anvil.url, account, pollingIntervalMs: 20 })
    // The wallet itself, speeding up or cancelling what it sent.
    const wallet = (await createChainClients({ rpcUrl: anvil.url, account })).walletClient!
    const { transfer, received } = await deployToken(ours)
    const sender = new TxSender(ours.publicClient, ours.walletClient!, { receiptTimeoutMs: 5_000 })
    await anvilRpc(anvil.url, 'evm_setAutomine', [false])
    /** The wallet's transaction at the nonce of `tx`, with twice its fees. */
    const resend = (tx: PooledTx, call: { to: Address; data?: Hex; value: bigint }) =>
      wallet.sendTransaction({
        ...call,
        nonce: Number(tx.nonce),
        gas: BigInt(tx.gas),
        maxFeePerGas: 2n * BigInt(tx.maxFeePerGas),
        maxPriorityFeePerGas: 2n * BigInt(tx.maxPriorityFeePerGas),
      })

    // Sped up: the same call, higher fees.
    const written = sender.write(transfer(7n)).then(
      (r) => r,
      (e: unknown) => e,
    )
    const first = await pooled(anvil.url, address)
    // Time for the receipt wait to see the transaction pending (viem's then looks for a
    // replacement in each block).
    await new Promise((r) => setTimeout(r, 300))
    const sped = await resend(first, { to: first.to, data: first.input as Hex, value: 0n })
    await anvilRpc(anvil.url, 'evm_mine')
    const r = await written
    assert.ok(!(r instanceof Error), String(r))
    assert.equal((r as { hash: Hash }).hash, sped, 'the copy mined is the one reported')
    assert.equal((r as { receipt: TransactionReceipt }).receipt.transactionHash, sped)
    assert.equal(await received(), 7n)

    // Cancelled: nothing to itself at the call's nonce.
    const written2 = sender.write(transfer(1n)).then(
      (r) => r,
      (e: unknown) => e,
    )
    const second = await pooled(anvil.url, address)
    await new Promise((r) => setTimeout(r, 300))
    await resend(second, { to: address, value: 0n })
    await anvilRpc(anvil.url, 'evm_mine')
    const out = await written2
    assert.ok(out instanceof ChainTxError, String(out))
    assert.equal(out.dropped, true)
    assert.equal(out.reverted, false)
    assert.equal(out.hash, second.hash, 'the error names the call')
    assert.match(out.message, /cancelled/)
    assert.equal(await received(), 7n)
    assert.equal(await sender.settle('transfer', out.hash!), 'dropped')
  } finally {
    await anvil.stop()
  }
})
