/**
 * The retry of an enclave's on-chain calls (src/chain/sender.ts `writeWithRetry`): sent again
 * after an endpoint's failure, never after a revert, bounded in attempts; and the redaction of
 * RPC URLs from what the operator logs.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  type Hash,
  TransactionNotFoundError,
  TransactionReceiptNotFoundError,
  WaitForTransactionReceiptTimeoutError,
} from 'viem'
import { poseManagerAbi } from '../../src/chain/abi.generated.ts'
import { ChainTxError, redactUrls, TxSender, writeWithRetry } from '../../src/chain/sender.ts'

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
