/**
 * The chain feed's head subscription (src/chain/heads.ts) against a WebSocket JSON-RPC endpoint
 * on loopback that answers the way a node does, including badly; and the manager watcher
 * (src/chain/watcher.ts) following anvil's new heads, with the requests a new block costs it.
 */
import assert from 'node:assert/strict'
import type { AddressInfo } from 'node:net'
import { after, before, test } from 'node:test'
import { type Chain, createPublicClient, defineChain, http } from 'viem'
import type WebSocket from 'ws'
import { WebSocketServer } from 'ws'
import { nodeFetch } from '../../src/chain/fetch.ts'
import { HeadSubscription } from '../../src/chain/heads.ts'
import { type ChainBatch, ManagerWatcher } from '../../src/chain/watcher.ts'
import { type Anvil, anvilRpc, startAnvil } from '../../src/devnet/anvil.ts'

/**
 * Resolves once `cond()` holds, polling every 10 ms; fails after `ms`. Not test/e2e/helpers.ts's
 * `waitFor`, which polls every 100 ms: a lost subscription stays down only 250 ms before it
 * reconnects, and the test checks it while it is down.
 */
async function until(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

type Provider = {
  url: string
  sockets: WebSocket[]
  subscribes: number
  /** How the next eth_subscribe is answered. */
  answer: 'ok' | 'refuse'
  /** What eth_chainId answers (nothing while `undefined`). */
  chainId: string | undefined
  /** eth_chainId requests seen. */
  chainIdAsked: number
  close: () => Promise<void>
}

/** A WebSocket JSON-RPC endpoint that answers eth_subscribe with subscription ids 0x1, 0x2, … */
async function provider(): Promise<Provider> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 })
  await new Promise<void>((r) => wss.once('listening', () => r()))
  const p: Provider = {
    url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`,
    sockets: [],
    subscribes: 0,
    answer: 'ok',
    chainId: '0x7a69',
    chainIdAsked: 0,
    close: () =>
      new Promise<void>((r) => {
        for (const ws of wss.clients) ws.terminate()
        wss.close(() => r())
      }),
  }
  wss.on('connection', (ws) => {
    p.sockets.push(ws)
    ws.on('message', (data) => {
      const m = JSON.parse(data.toString()) as { id: number; method: string; params: unknown[] }
      if (m.method === 'eth_chainId') {
        p.chainIdAsked++
        if (p.chainId !== undefined)
          ws.send(JSON.stringify({ jsonrpc: '2.0', id: m.id, result: p.chainId }))
        return
      }
      if (m.method !== 'eth_subscribe' || m.params[0] !== 'newHeads') return
      p.subscribes++
      ws.send(
        JSON.stringify(
          p.answer === 'ok'
            ? { jsonrpc: '2.0', id: m.id, result: `0x${p.subscribes}` }
            : { jsonrpc: '2.0', id: m.id, error: { code: -32601, message: 'Method not found' } },
        ),
      )
    })
  })
  return p
}

const notification = (subscription: string) =>
  JSON.stringify({
    jsonrpc: '2.0',
    method: 'eth_subscription',
    params: { subscription, result: { number: '0x5', hash: `0x${'ab'.repeat(32)}` } },
  })

/**
 * A subscription to `p`, started, that records its state changes and counts the heads it
 * reports; resolves once it is live.
 */
async function liveSubscription(p: Provider) {
  const states: Array<[boolean, string | undefined]> = []
  let heads = 0
  const sub = new HeadSubscription({
    url: p.url,
    onHead: () => heads++,
    onState: (live, reason) => states.push([live, reason]),
  })
  sub.start()
  await until(() => sub.live, 'the subscription')
  return { sub, states, heads: () => heads }
}

test('a head subscription reports heads of its own subscription only, and survives what else the endpoint sends', async () => {
  const p = await provider()
  const { sub, states, heads } = await liveSubscription(p)
  try {
    assert.equal(p.subscribes, 1)
    assert.deepEqual(states, [[true, undefined]])
    // Subscribing reports a head: one may have come before the subscription.
    assert.equal(heads(), 1)

    const ws = p.sockets[0]!
    ws.send(notification('0x1'))
    await until(() => heads() === 2, 'the notification')
    for (const frame of [
      notification('0x99'), // another subscription's
      '{"jsonrpc":"2.0","method":"eth_subscription"', // cut short
      'null',
      '42',
      JSON.stringify({ jsonrpc: '2.0', method: 'eth_subscription', params: null }),
      JSON.stringify({ jsonrpc: '2.0', id: 1, result: '0x7' }), // a second answer to subscribe
    ])
      ws.send(frame)
    ws.send(Buffer.from([1, 2, 3]), { binary: true })
    ws.send(notification('0x1'))
    await until(() => heads() === 3, 'the notification after the junk')
    assert.equal(sub.ignoredFrames, 7)
    assert.ok(sub.live)
    assert.equal(sub.heads, 3)
  } finally {
    await sub.stop()
    await p.close()
  }
})

test('a head subscription that loses its connection says so, reconnects and subscribes again', async () => {
  const p = await provider()
  const { sub, states, heads } = await liveSubscription(p)
  try {
    p.sockets[0]!.terminate()
    await until(() => states.length === 2, 'the loss to be reported')
    assert.equal(states[1]![0], false)
    assert.equal(sub.live, false)
    await until(() => sub.live && p.subscribes === 2, 'the second subscription')
    assert.deepEqual(states[2], [true, undefined])
    // The new subscription's id, not the old one's, is followed.
    const before = heads()
    p.sockets[1]!.send(notification('0x1'))
    p.sockets[1]!.send(notification('0x2'))
    await until(() => heads() === before + 1, 'the new subscription’s head')
    await new Promise((r) => setTimeout(r, 50))
    assert.equal(heads(), before + 1)
  } finally {
    await sub.stop()
    await p.close()
  }
  // Stopped: the endpoint is not contacted again.
  const subscribes = p.subscribes
  await new Promise((r) => setTimeout(r, 600))
  assert.equal(p.subscribes, subscribes)
})

test('losses double the wait before reconnecting, and a delivered head resets it', async () => {
  const p = await provider()
  const { sub, heads } = await liveSubscription(p)
  try {
    assert.equal(sub.backoffMs, 250)
    p.sockets[0]!.terminate()
    await until(() => sub.live && p.subscribes === 2, 'the second subscription')
    // Subscribing alone does not reset it: an endpoint that subscribes and then drops would be
    // asked again every 250 ms.
    assert.equal(sub.backoffMs, 500)
    p.sockets[1]!.terminate()
    await until(() => sub.live && p.subscribes === 3, 'the third subscription')
    assert.equal(sub.backoffMs, 1000)
    const before = heads()
    p.sockets[2]!.send(notification('0x3'))
    await until(() => heads() === before + 1, 'the head')
    assert.equal(sub.backoffMs, 250)
  } finally {
    await sub.stop()
    await p.close()
  }
})

test('an endpoint that refuses eth_subscribe leaves the subscription down, and it asks again later', async () => {
  const p = await provider()
  p.answer = 'refuse'
  const states: Array<[boolean, string | undefined]> = []
  const sub = new HeadSubscription({
    url: p.url,
    onHead: () => assert.fail('no head without a subscription'),
    onState: (live, reason) => states.push([live, reason]),
  })
  try {
    sub.start()
    await until(() => p.subscribes >= 2, 'a second attempt')
    assert.equal(sub.live, false)
    // Reported once, not at every attempt.
    assert.deepEqual(states, [[false, 'eth_subscribe refused: Method not found']])
  } finally {
    await sub.stop()
    await p.close()
  }
})

test('a head subscription checks the chain id first and refuses an endpoint of another chain', async () => {
  const p = await provider()
  const states: Array<[boolean, string | undefined]> = []
  const sub = (chainId: number) =>
    new HeadSubscription({
      url: p.url,
      chainId,
      onHead: () => {},
      onState: (live, reason) => states.push([live, reason]),
    })
  const same = sub(31337)
  const other = sub(1)
  try {
    same.start()
    await until(() => same.live, 'the subscription on chain 31337')
    assert.equal(p.chainIdAsked, 1)
    assert.equal(p.subscribes, 1)
    other.start()
    await until(() => p.chainIdAsked >= 3, 'a second attempt on chain 1')
    assert.equal(other.live, false)
    // Never subscribed, reported once.
    assert.equal(p.subscribes, 1)
    assert.deepEqual(states, [
      [true, undefined],
      [false, 'the endpoint serves chain 31337, not chain 1'],
    ])
    // An answer to eth_subscribe before it was asked for (the chain id not yet answered) is
    // not a subscription.
    await other.stop()
    p.chainId = undefined
    const asked = p.chainIdAsked
    const early = sub(31337)
    early.start()
    await until(() => p.chainIdAsked === asked + 1, 'the chain id asked')
    const ws = p.sockets.at(-1)!
    ws.send(JSON.stringify({ jsonrpc: '2.0', id: 1, result: '0x99' }))
    ws.send(notification('0x99'))
    await until(() => early.ignoredFrames === 2, 'both frames')
    assert.equal(early.live, false)
    assert.equal(early.heads, 0)
    await early.stop()
  } finally {
    await same.stop()
    await other.stop()
    await p.close()
  }
})

test('an endpoint that opens and never answers is cut, reported and asked again', async () => {
  const p = await provider()
  p.chainId = undefined // eth_chainId is never answered
  const states: Array<[boolean, string | undefined]> = []
  const sub = new HeadSubscription({
    url: p.url,
    chainId: 31337,
    onHead: () => {},
    onState: (live, reason) => states.push([live, reason]),
    setupTimeoutMs: 200,
  })
  try {
    sub.start()
    await until(() => p.chainIdAsked >= 2, 'a second connection')
    assert.equal(sub.live, false)
    assert.deepEqual(states, [[false, 'not subscribed within 200 ms']], 'reported once')
    // Once the endpoint answers, the subscription is made on a later connection.
    p.chainId = '0x7a69'
    await until(() => sub.live, 'the subscription')
  } finally {
    await sub.stop()
    await p.close()
  }
})

test('logs of a block from another fork than the block read with them are not offered', async () => {
  // The logs and the block come from two requests; a reorganisation between them would pair
  // one fork's events with the other fork's hash. Block 4 is offered (one confirmation on 5).
  const hash = (b: number) => `0x${b.toString(16).padStart(64, '0')}` as const
  let logHash: `0x${string}` = hash(0xdead)
  const client = {
    chain: { id: 31337 },
    getBlock: async (a: { blockTag?: string; blockNumber?: bigint }) => {
      const n = a.blockTag === 'latest' ? 5n : a.blockNumber!
      return { number: n, hash: hash(Number(n)), parentHash: hash(Number(n) - 1), timestamp: n }
    },
    getLogs: async () => [{ blockNumber: 4n, blockHash: logHash, data: '0x', topics: [] }],
  }
  const batches: ChainBatch[] = []
  const w = new ManagerWatcher({
    client: client as never,
    manager: `0x${'42'.repeat(20)}`,
    confirmations: 1n,
    onBatch: async (b) => {
      batches.push(b)
    },
  })
  await assert.rejects(w.poll(), /block 4 changed while its logs were read/)
  assert.equal(batches.length, 0)
  assert.equal(w.nextBlock, 0n, 'the range is read again')
  logHash = hash(4)
  await w.poll()
  assert.deepEqual(
    batches.map((b) => b.blockNumber),
    [4n],
  )
  assert.equal(w.nextBlock, 5n)
})

test('a watcher stopped in the middle of a poll offers the rest once started again', async () => {
  const hash = (b: number) => `0x${b.toString(16).padStart(64, '0')}` as const
  const client = {
    chain: { id: 31337 },
    getBlock: async (a: { blockTag?: string; blockNumber?: bigint }) => {
      const n = a.blockTag === 'latest' ? 3n : a.blockNumber!
      return { number: n, hash: hash(Number(n)), parentHash: hash(Number(n) - 1), timestamp: n }
    },
    getLogs: async () => [],
  }
  const offered: bigint[] = []
  const w: ManagerWatcher = new ManagerWatcher({
    client: client as never,
    manager: `0x${'42'.repeat(20)}`,
    maxRange: 1n,
    pollIntervalMs: 600_000,
    onBatch: async (b) => {
      offered.push(b.blockNumber)
      if (b.blockNumber === 1n) void w.stop()
    },
  })
  await w.poll()
  assert.deepEqual(offered, [0n, 1n], 'nothing offered after the stop')
  w.start()
  try {
    await until(() => offered.length === 4, 'the rest offered')
    assert.deepEqual(offered, [0n, 1n, 2n, 3n])
  } finally {
    await w.stop()
  }
})

test('a head subscription to nothing reports why and stops cleanly', async () => {
  const p = await provider()
  const url = p.url
  await p.close()
  const states: Array<[boolean, string | undefined]> = []
  const sub = new HeadSubscription({
    url,
    onHead: () => {},
    onState: (l, r) => states.push([l, r]),
  })
  sub.start()
  await until(() => states.length === 1, 'the failure')
  assert.equal(states[0]![0], false)
  assert.match(states[0]![1] ?? '', /ECONNREFUSED|closed|connect/)
  await sub.stop()
})

describeAnvil()

/** The watcher against anvil, counting the JSON-RPC requests it sends by method. */
function describeAnvil(): void {
  let anvil: Anvil
  let chain: Chain
  before(async () => {
    anvil = await startAnvil()
    chain = defineChain({
      id: 31337,
      name: 'anvil',
      nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 },
      rpcUrls: { default: { http: [anvil.url] } },
    })
  })
  after(() => anvil.stop())

  const counted = () => {
    const calls = new Map<string, number>()
    /** The block ranges of the `eth_getLogs` requests, in order. */
    const logRanges: Array<[bigint, bigint]> = []
    const fetchFn: typeof nodeFetch = (input, init) => {
      const body = JSON.parse(String(init?.body)) as {
        method: string
        params?: Array<{ fromBlock?: string; toBlock?: string }>
      }
      calls.set(body.method, (calls.get(body.method) ?? 0) + 1)
      const range = body.params?.[0]
      if (body.method === 'eth_getLogs' && range?.fromBlock && range.toBlock)
        logRanges.push([BigInt(range.fromBlock), BigInt(range.toBlock)])
      return nodeFetch(input, init)
    }
    const client = createPublicClient({ chain, transport: http(anvil.url, { fetchFn }) })
    return { calls, client, logRanges }
  }
  const watcher = (
    client: ReturnType<typeof counted>['client'],
    batches: ChainBatch[],
    reorgs: unknown[],
  ) =>
    new ManagerWatcher({
      client,
      manager: `0x${'42'.repeat(20)}`,
      fromBlock: 0n,
      // Only a head can make it poll within the test.
      pollIntervalMs: 600_000,
      subscribedPollIntervalMs: 600_000,
      headsUrl: anvil.url.replace(/^http/, 'ws'),
      onBatch: async (b) => {
        batches.push(b)
      },
      onReorg: (r) => reorgs.push(r),
    })

  test('the watcher polls when anvil announces a block, two requests for it', {
    timeout: 30_000,
  }, async () => {
    const { calls, client } = counted()
    const batches: ChainBatch[] = []
    const w = watcher(client, batches, [])
    w.start()
    try {
      await until(() => w.subscribed && batches.length > 0, 'the first batch')
      // The polls the subscription itself caused are done once the head is unchanged.
      await new Promise((r) => setTimeout(r, 200))
      calls.clear()
      const before = batches.at(-1)!.blockNumber
      await anvilRpc(anvil.url, 'evm_mine', [])
      await until(() => batches.at(-1)!.blockNumber === before + 1n, 'the mined block')
      await new Promise((r) => setTimeout(r, 100))
      // The head (which is the block offered and whose parent is the last one offered), then
      // its logs: no other block is read.
      assert.deepEqual(Object.fromEntries(calls), { eth_getBlockByNumber: 1, eth_getLogs: 1 })
      const b = batches.at(-1)!
      const mined = (await client.getBlock({ blockNumber: b.blockNumber })).timestamp
      assert.equal(b.timestamp, mined)
    } finally {
      await w.stop()
    }
  })

  test('a block replaced under the newest offered one is still found when a head follows it', {
    timeout: 30_000,
  }, async () => {
    const { client } = counted()
    const batches: ChainBatch[] = []
    const reorgs: Array<{ depth: number; block: bigint }> = []
    const w = watcher(client, batches, reorgs)
    w.start()
    try {
      await anvilRpc(anvil.url, 'evm_mine', [])
      const tip = await client.getBlockNumber({ cacheTime: 0 })
      await until(() => batches.at(-1)?.blockNumber === tip, 'the tip offered')
      // The offered block is replaced and a block mined on the new one: the new head's parent
      // is not the block offered.
      await anvilRpc(anvil.url, 'anvil_reorg', [1, []])
      await anvilRpc(anvil.url, 'evm_mine', [])
      await until(() => reorgs.length === 1, 'the reorganisation')
      assert.equal(reorgs[0]!.block, tip)
      // 1, or the whole first batch when the mined block came with it (no older block known).
      assert.ok(reorgs[0]!.depth >= 1)
    } finally {
      await w.stop()
    }
  })

  test('after a reorganisation the blocks from the fork are read again, and a shorter chain counts as one', {
    timeout: 30_000,
  }, async () => {
    const { client, logRanges } = counted()
    const batches: ChainBatch[] = []
    const reorgs: Array<{ depth: number; block: bigint }> = []
    const w = watcher(client, batches, reorgs)
    w.start()
    try {
      // Three blocks, each offered on its own.
      for (let i = 0; i < 3; i++) {
        await anvilRpc(anvil.url, 'evm_mine', [])
        const n = await client.getBlockNumber({ cacheTime: 0 })
        await until(() => batches.at(-1)?.blockNumber === n, `block ${n} offered`)
      }
      const tip = batches.at(-1)!.blockNumber
      // The last two replaced, and a block on top: read again from the first replaced one.
      logRanges.length = 0
      await anvilRpc(anvil.url, 'anvil_reorg', [2, []])
      await anvilRpc(anvil.url, 'evm_mine', [])
      await until(() => reorgs.length === 1, 'the reorganisation')
      assert.deepEqual(reorgs[0], { depth: 2, block: tip })
      await until(() => batches.at(-1)?.blockNumber === tip + 1n, 'the new head offered')
      // Read again from the fork to the head: at once, or in two reads when the replaced head
      // was announced before the block mined on it.
      assert.equal(logRanges[0]?.[0], tip - 1n, 'the first read starts at the fork')
      for (let i = 1; i < logRanges.length; i++)
        assert.equal(logRanges[i]![0], logRanges[i - 1]![1] + 1n, 'reads follow on')
      assert.equal(logRanges.at(-1)?.[1], tip + 1n)
      // Back to a snapshot two blocks down: the chain is shorter than the newest offered block.
      const snapshot = await anvilRpc(anvil.url, 'evm_snapshot', [])
      await anvilRpc(anvil.url, 'evm_mine', [])
      await anvilRpc(anvil.url, 'evm_mine', [])
      const high = await client.getBlockNumber({ cacheTime: 0 })
      await until(() => batches.at(-1)?.blockNumber === high, 'the two blocks offered')
      logRanges.length = 0
      await anvilRpc(anvil.url, 'evm_revert', [snapshot])
      await anvilRpc(anvil.url, 'evm_mine', [])
      await until(() => reorgs.length === 2, 'the shorter chain')
      assert.deepEqual(reorgs[1], { depth: 2, block: high })
      await until(() => batches.at(-1)?.blockNumber === high - 1n, 'the replacement offered')
      assert.deepEqual(logRanges, [[high - 1n, high - 1n]])
    } finally {
      await w.stop()
    }
  })
}
