/**
 * The devnet demo (`npm start`): four operators, one private-token instance with s = 2, a few
 * users transferring tokens, signed view calls that show each user only their own balance, and
 * a check that every pool member holds the same state.
 */
import { type Address, formatEther, parseEther } from 'viem'
import {
  privateTokenAbi,
  privateTokenBytecode,
  prizePoolAbi,
  prizePoolBytecode,
} from '../../examples/contracts.generated.ts'
import { poseManagerAbi, readInstance, readOperator } from '../chain/manager.ts'
import { ContractRevertError } from '../client/errors.ts'
import { createPoseClient, type PoseClient, privateKeyToPoseAccount } from '../client/index.ts'
import { DEV_TEE_WARNING } from '../tee/attestation.ts'
import { type Devnet, startDevnet } from './devnet.ts'
import { type Interruptible, onInterrupt } from './interrupt.ts'

export type DemoOptions = {
  operators: number
  watchdogs: number
  txs: number
  keep: boolean
  dir?: string
}

const say = (line: string) => console.log(line)

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!
}

/** The latency line of the demo's transfer stream. */
export function latencyLine(latencies: readonly number[], elapsedS: number): string {
  if (latencies.length === 0) return '   no transactions (--txs 0)'
  const sorted = [...latencies].sort((a, b) => a - b)
  return `   ${sorted.length} receipts in ${elapsedS.toFixed(2)} s (${(sorted.length / elapsedS).toFixed(0)} tx/s); latency p50 ${percentile(sorted, 50).toFixed(1)} ms, p99 ${percentile(sorted, 99).toFixed(1)} ms`
}

/**
 * Runs the demo on a devnet of its own. SIGINT and SIGTERM, at any step (the devnet's start
 * included), stop anvil, the operators and their enclaves, remove the temporary directories
 * and exit 130. A demo that fails stops the devnet too, keeping its directory for the logs.
 */
export async function runDemo(o: DemoOptions, via?: Interruptible): Promise<void> {
  say(`POSE devnet — ${DEV_TEE_WARNING}`)
  const t0 = performance.now()
  const abort = new AbortController()
  let stopping: Promise<void> | undefined
  const stop = (d: Devnet, keepDir: boolean): Promise<void> => (stopping ??= d.stop({ keepDir }))
  const starting = startDevnet({
    operators: o.operators,
    users: 3,
    ...(o.dir ? { dir: o.dir } : {}),
    log: (l) => say(`  ${l}`),
    signal: abort.signal,
  })
  const interrupt = onInterrupt(
    async () => {
      // A devnet still starting stops what it started and removes its directory.
      abort.abort(new Error('interrupted'))
      const up = await starting.catch(() => undefined)
      if (up) await stop(up, false)
    },
    { message: (signal) => `${signal}: stopping the devnet`, ...(via ? { via } : {}) },
  )
  // An interrupted run ends in the handler (exit 130), not with the error its steps then meet.
  const endsInHandler = () => new Promise<never>(() => undefined)
  const devnet = await starting.catch(async (e: unknown) => {
    if (interrupt.interrupted) await endsInHandler()
    throw e
  })
  let failed = true
  try {
    say(
      `devnet up in ${((performance.now() - t0) / 1000).toFixed(1)} s: ${o.operators} operators, each an operator process plus an enclave process`,
    )
    const names = ['alice', 'bob', 'carol']
    const clients: PoseClient[] = []
    for (const key of devnet.userKeys) {
      clients.push(
        await createPoseClient({
          rpcUrl: devnet.rpcUrl,
          manager: devnet.manager,
          account: privateKeyToPoseAccount(key),
          pollingIntervalMs: 100,
        }),
      )
    }
    const [alice, bob, carol] = clients as [PoseClient, PoseClient, PoseClient]
    const addr = (c: PoseClient): Address => c.account.address

    say(`\n1. alice deploys PrivateToken (1,000,000 supply) with s = ${o.watchdogs} watchdogs`)
    const t1 = performance.now()
    const { instance } = await alice.deployContract({
      abi: privateTokenAbi,
      bytecode: privateTokenBytecode,
      args: [1_000_000n],
      watchdogCount: o.watchdogs,
      onProgress: (s) => say(`   … ${s}`),
    })
    const info = await alice.getInstance({ instance, refresh: true })
    say(
      `   instance ${instance} active in ${((performance.now() - t1) / 1000).toFixed(1)} s; executor ${info.signers[info.executorSlot]}`,
    )

    say(
      '\n2. alice funds bob and carol (off-chain, no gas, receipts signed by the executor enclave)',
    )
    for (const to of [bob, carol]) {
      const s = performance.now()
      const r = await alice.writeContract({
        instance,
        abi: privateTokenAbi,
        functionName: 'transfer',
        args: [addr(to), 10_000n],
      })
      say(
        `   transfer 10000 → ${names[clients.indexOf(to)]}: ${r.status}, seq ${r.seq}, ${(performance.now() - s).toFixed(1)} ms`,
      )
    }

    say(
      `\n3. ${o.txs} transfers from three users, replicated to every watchdog before each receipt`,
    )
    const latencies: number[] = []
    const tStream = performance.now()
    await Promise.all(
      clients.map(async (c, ci) => {
        for (let i = ci; i < o.txs; i += clients.length) {
          const to = clients[(ci + 1 + (i % 2)) % clients.length]!
          const s = performance.now()
          await c.writeContract({
            instance,
            abi: privateTokenAbi,
            functionName: 'transfer',
            args: [addr(to), BigInt(1 + (i % 7))],
          })
          latencies.push(performance.now() - s)
        }
      }),
    )
    say(latencyLine(latencies, (performance.now() - tStream) / 1000))

    say('\n4. signed view calls: each user sees only their own balance')
    let total = 0n
    for (const [i, c] of clients.entries()) {
      const b = await c.readContract({
        instance,
        abi: privateTokenAbi,
        functionName: 'balanceOf',
        args: [addr(c)],
      })
      total += b
      say(`   ${names[i]} reads own balance: ${b}`)
    }
    try {
      await bob.readContract({
        instance,
        abi: privateTokenAbi,
        functionName: 'balanceOf',
        args: [addr(carol)],
      })
      throw new Error('bob could read carol’s balance')
    } catch (e) {
      if (!(e instanceof ContractRevertError)) throw e
      say(`   bob reads carol's balance: refused by the contract (${e.errorName})`)
    }
    if (total !== 1_000_000n) throw new Error(`balances add up to ${total}, expected 1000000`)
    say('   balances add up to the total supply')

    say('\n5. every pool member holds the same state')
    const fresh = await alice.getInstance({ instance, refresh: true })
    const digests = new Set<string>()
    for (let slot = 0; slot < fresh.operators.length; slot++) {
      const op = await readOperator(alice.publicClient, devnet.manager, fresh.operators[slot]!)
      const d = (await (await fetch(`${op.endpoint}/v1/instances/${instance}/digest`)).json()) as {
        role: string
        seq: string
        digest: string
      }
      digests.add(`${d.seq}:${d.digest}`)
      say(`   slot ${slot} ${d.role.padEnd(8)} seq ${d.seq} digest ${d.digest.slice(0, 18)}…`)
    }
    if (digests.size !== 1) throw new Error('pool members disagree on the state digest')
    say('   all digests equal')

    say('\n6. coins: deposits, a payout by contract rule, withdrawals')
    const pool = await alice.deployContract({
      abi: prizePoolAbi,
      bytecode: prizePoolBytecode,
      args: [parseEther('0.5'), 3n],
      watchdogCount: o.watchdogs,
    })
    say(`   PrizePool deployed as instance ${pool.instance} (entry 0.5 ETH, 3 players)`)
    for (const c of clients) await c.deposit({ instance: pool.instance, value: parseEther('1') })
    for (const c of clients) {
      const deadline = Date.now() + 30_000
      while ((await c.getBalance({ instance: pool.instance })) < parseEther('1')) {
        if (Date.now() > deadline) throw new Error('deposit not credited in time')
        await new Promise((r) => setTimeout(r, 100))
      }
    }
    say('   alice, bob and carol each deposited 1 ETH on-chain; the world credited them')
    for (const c of clients) {
      await c.writeContract({
        instance: pool.instance,
        abi: prizePoolAbi,
        functionName: 'enter',
        value: parseEther('0.5'),
      })
    }
    const inWorld = await Promise.all(clients.map((c) => c.getBalance({ instance: pool.instance })))
    const winner = inWorld.indexOf(parseEther('2'))
    say(
      `   all three entered with 0.5 ETH; ${names[winner]} won the 1.5 ETH pot (private randomness)`,
    )
    const before = await clients[winner]!.publicClient.getBalance({
      address: clients[winner]!.account.address,
    })
    const w = await clients[winner]!.withdraw({
      instance: pool.instance,
      amount: parseEther('1.5'),
    })
    const after = await clients[winner]!.publicClient.getBalance({
      address: clients[winner]!.account.address,
    })
    say(
      `   ${names[winner]} withdrew ${formatEther(w.cumulative)} ETH to the chain while the game runs (balance +${formatEther(after - before)} ETH after gas)`,
    )

    say('\n7. termination: the host closes the game, everyone takes their final balance')
    await alice.writeContract({ instance: pool.instance, abi: prizePoolAbi, functionName: 'close' })
    const deadline = Date.now() + 30_000
    while (
      (await readInstance(alice.publicClient, devnet.manager, pool.instance)).phaseName !==
      'Terminated'
    ) {
      if (Date.now() > deadline) throw new Error('the final balances were not published in time')
      await new Promise((r) => setTimeout(r, 100))
    }
    const { balances } = await alice.getFinalBalances({ instance: pool.instance })
    say(
      `   the executor published ${balances.length} final balances on-chain; the pool is released`,
    )
    for (const [i, c] of clients.entries()) {
      const r = await c.withdraw({ instance: pool.instance })
      say(
        `   ${names[i]} withdrew the final ${formatEther(r.amount ?? 0n)} ETH with a Merkle proof`,
      )
    }
    const [deposited, withdrawn] = (await alice.publicClient.readContract({
      address: devnet.manager,
      abi: poseManagerAbi,
      functionName: 'balanceOfInstance',
      args: [pool.instance],
    })) as [bigint, bigint]
    if (deposited !== withdrawn) throw new Error('the manager still holds coins of the instance')
    say(`   the manager paid out exactly what was deposited (${formatEther(withdrawn)} ETH)`)

    if (o.keep) {
      say('\nThe devnet keeps running. Connect with:')
      say(`   rpc      ${devnet.rpcUrl}`)
      say(`   manager  ${devnet.manager}`)
      say(`   instance ${instance}`)
      for (const [i, k] of devnet.userKeys.entries()) say(`   ${names[i]} key ${k}`)
      say(
        `   e.g. POSE_KEY=${devnet.userKeys[1]} npx pose call --rpc ${devnet.rpcUrl} --manager ${devnet.manager} --instance ${instance} --artifact out/PrivateToken.sol/PrivateToken.json --function myBalance`,
      )
      say('Press Ctrl-C to stop.')
      await new Promise(() => undefined)
    }
    say(`\ndemo finished in ${((performance.now() - t0) / 1000).toFixed(1)} s`)
    failed = false
  } catch (e) {
    if (interrupt.interrupted) await endsInHandler()
    throw e
  } finally {
    if (!interrupt.interrupted) {
      await stop(devnet, failed)
      if (failed && !o.dir) say(`devnet stopped; its data and logs are kept in ${devnet.dir}`)
    }
  }
}
