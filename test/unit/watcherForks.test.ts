/**
 * The manager watcher (src/chain/watcher.ts) against a chain that switches forks between its
 * requests: the block hash it remembers as offered must be of the fork its logs came from, so
 * that a later check finds the switch and the new fork's events are offered.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { encodeAbiParameters, encodeEventTopics, type Hex, toHex } from 'viem'
import { poseManagerAbi } from '../../src/chain/abi.generated.ts'
import { type ChainBatch, ManagerWatcher, type WatcherOptions } from '../../src/chain/watcher.ts'

type ForkName = 'a' | 'b'
/** A manager event in a fork: its block and a marker byte in its data. */
type ForkEvent = { block: bigint; marker: number }

/**
 * A fake public client over two forks of one chain that share the blocks up to `common`; both
 * are `height` blocks high. It serves fork `a` until `switchAfterLogs` `eth_getLogs` requests
 * were answered, and fork `b` from then on.
 */
function forkingClient(p: {
  common: bigint
  height: bigint
  events: Record<ForkName, ForkEvent[]>
  switchAfterLogs: number
}) {
  let fork: ForkName = 'a'
  let logRequests = 0
  const hashOf = (f: ForkName, n: bigint): Hex =>
    `0x${(n <= p.common ? 'c' : f).repeat(2)}${n.toString(16).padStart(62, '0')}`
  const block = (n: bigint) => {
    if (n > p.height) throw new Error(`block ${n} not found`)
    return {
      number: n,
      hash: hashOf(fork, n),
      parentHash: n === 0n ? toHex(0, { size: 32 }) : hashOf(fork, n - 1n),
      timestamp: 1_000n + n,
    }
  }
  const log = (f: ForkName, e: ForkEvent) => ({
    blockNumber: e.block,
    blockHash: hashOf(f, e.block),
    topics: encodeEventTopics({
      abi: poseManagerAbi,
      eventName: 'InstanceEvent',
      args: { id: 1n, index: BigInt(e.marker) },
    }),
    data: encodeAbiParameters(
      [{ type: 'uint8' }, { type: 'bytes' }, { type: 'bytes32' }],
      [1, toHex(e.marker, { size: 1 }), toHex(e.marker, { size: 32 })],
    ),
  })
  return {
    chain: { id: 31337 },
    getBlock: async (a: { blockTag?: 'latest'; blockNumber?: bigint }) =>
      block(a.blockTag === 'latest' ? p.height : a.blockNumber!),
    getLogs: async (a: { fromBlock: bigint; toBlock: bigint }) => {
      const logs = p.events[fork]
        .filter((e) => e.block >= a.fromBlock && e.block <= a.toBlock)
        .map((e) => log(fork, e))
      // The reorganisation lands right after this answer, before the next request.
      if (++logRequests === p.switchAfterLogs) fork = 'b'
      return logs
    },
  }
}

/** A watcher of `client` (with options `more`) that records what it offers and the reorganisations it finds. */
function recordingWatcher(client: unknown, more: Partial<WatcherOptions> = {}) {
  const batches: ChainBatch[] = []
  const reorgs: Array<{ depth: number; block: bigint }> = []
  const w = new ManagerWatcher({
    client: client as never,
    manager: `0x${'42'.repeat(20)}`,
    onBatch: async (b) => {
      batches.push(b)
    },
    onReorg: (r) => reorgs.push(r),
    ...more,
  })
  return { w, batches, reorgs }
}

/** The markers of the instance events offered, in order. */
const markers = (batches: ChainBatch[]) =>
  batches.flatMap((b) => b.instanceEvents.map((e) => e.data[0]))

test('watcher: a fork that replaces the range between its logs and its block is read again', async () => {
  // Fork a has an event in block 2, fork b (from block 2 on) one in block 3; block 4 (one
  // confirmation on 5) carries no event in either, so no log can be compared with its hash.
  const client = forkingClient({
    common: 1n,
    height: 5n,
    events: { a: [{ block: 2n, marker: 0xa2 }], b: [{ block: 3n, marker: 0xb3 }] },
    switchAfterLogs: 1,
  })
  const { w, batches, reorgs } = recordingWatcher(client, { confirmations: 1n })
  await w.poll()
  assert.deepEqual(markers(batches), [0xa2], "fork a's logs, read before the switch")
  await w.poll()
  assert.deepEqual(reorgs, [{ depth: 5, block: 4n }], 'the switch is found')
  assert.deepEqual(markers(batches), [0xa2, 0xb3], "fork b's event is offered")
  assert.equal(w.nextBlock, 5n)
})

test('watcher: a fork between two ranges of one poll makes the earlier range read again', async () => {
  // Ranges of three blocks: [0, 2] is read from fork a, then the chain switches to fork b
  // (from block 1 on). Neither range's last block has an event to compare with its hash.
  const client = forkingClient({
    common: 0n,
    height: 5n,
    events: {
      a: [{ block: 1n, marker: 0xa1 }],
      b: [
        { block: 1n, marker: 0xb1 },
        { block: 4n, marker: 0xb4 },
      ],
    },
    switchAfterLogs: 1,
  })
  const { w, batches, reorgs } = recordingWatcher(client, { maxRange: 3n })
  await w.poll()
  await w.poll()
  assert.equal(reorgs.length, 1, 'the switch is found')
  const shown = markers(batches)
  assert.ok(shown.includes(0xb1) && shown.includes(0xb4), `fork b's events offered: ${shown}`)
  assert.equal(w.nextBlock, 6n)
  // The chain no longer changes: a third poll finds nothing to read again.
  await w.poll()
  assert.equal(reorgs.length, 1, 'nothing more changed')
})

test('watcher: operators registering, moving and leaving are offered in order', async () => {
  const op = `0x${'a1'.repeat(20)}` as const
  const signer = `0x${'b2'.repeat(20)}` as const
  const at = (n: bigint, log: { topics: unknown[]; data: Hex }) => ({
    ...log,
    blockNumber: n,
    blockHash: `0x${n.toString(16).padStart(64, '0')}` as Hex,
  })
  const logs = [
    at(1n, {
      topics: encodeEventTopics({
        abi: poseManagerAbi,
        eventName: 'OperatorRegistered',
        args: { operator: op, enclaveSigner: signer },
      }),
      data: encodeAbiParameters(
        [{ type: 'bytes32' }, { type: 'bytes32' }, { type: 'string' }, { type: 'uint256' }],
        [toHex(1, { size: 32 }), toHex(2, { size: 32 }), 'http://127.0.0.1:7001', 5n],
      ),
    }),
    at(2n, {
      topics: encodeEventTopics({
        abi: poseManagerAbi,
        eventName: 'EndpointChanged',
        args: { operator: op },
      }),
      data: encodeAbiParameters([{ type: 'string' }], ['http://127.0.0.1:7002']),
    }),
    at(3n, {
      topics: encodeEventTopics({
        abi: poseManagerAbi,
        eventName: 'StakeWithdrawn',
        args: { operator: op },
      }),
      data: encodeAbiParameters([{ type: 'uint256' }], [5n]),
    }),
  ]
  const client = {
    chain: { id: 31337 },
    getBlock: async (a: { blockTag?: 'latest'; blockNumber?: bigint }) => {
      const n = a.blockTag === 'latest' ? 3n : a.blockNumber!
      return {
        number: n,
        hash: `0x${n.toString(16).padStart(64, '0')}`,
        parentHash: `0x${(n === 0n ? 0n : n - 1n).toString(16).padStart(64, '0')}`,
        timestamp: 1_000n + n,
      }
    },
    getLogs: async (a: { fromBlock: bigint; toBlock: bigint }) =>
      logs.filter((l) => l.blockNumber >= a.fromBlock && l.blockNumber <= a.toBlock),
  }
  const { w, batches } = recordingWatcher(client)
  await w.poll()
  const events = batches.flatMap((b) => b.operatorEvents)
  assert.deepEqual(
    events.map((e) => (e.left ? 'left' : e.endpoint)),
    ['http://127.0.0.1:7001', 'http://127.0.0.1:7002', 'left'],
  )
  assert.ok(events.every((e) => e.operator.toLowerCase() === op))
})
