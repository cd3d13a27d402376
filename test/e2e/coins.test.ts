/**
 * Coins end to end (SPEC §4 Coins, §5): users deposit on-chain, a contract moves coins between
 * them by rule (PrizePool), everyone withdraws; on-chain balances change by exactly what the
 * worlds say (gas accounted for) and the manager holds nothing for the instance afterwards.
 * Replayed, older and forged authorisations pay nothing; an authorisation made by an executor
 * is paid after that executor was replaced, and the new one never re-authorises it.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { type Address, parseEther } from 'viem'
import { prizePoolAbi, prizePoolBytecode } from '../../examples/contracts.generated.ts'
import { poseManagerAbi, readInstance } from '../../src/chain/manager.ts'
import { ChainTxError } from '../../src/chain/sender.ts'
import { getWithdrawAuthorisation } from '../../src/client/actions/withdraw.ts'
import type { PoseClient } from '../../src/client/index.ts'
import { type Devnet, startDevnet } from '../../src/devnet/devnet.ts'
import {
  bytesToHex,
  generateSecretKey,
  hexToBytes,
  signDigest,
  withdrawDigest,
} from '../../src/protocol/index.ts'
import { killMember, passDelta, userClients, waitFor } from './helpers.ts'

let devnet: Devnet
let clients: PoseClient[]
let instance: bigint
let startBlock: bigint

async function gasSpentBy(client: PoseClient, who: Address): Promise<bigint> {
  const head = await client.publicClient.getBlockNumber({ cacheTime: 0 })
  let spent = 0n
  for (let n = startBlock; n <= head; n++) {
    const block = await client.publicClient.getBlock({ blockNumber: n, includeTransactions: true })
    for (const tx of block.transactions) {
      if (tx.from.toLowerCase() !== who.toLowerCase()) continue
      const r = await client.publicClient.getTransactionReceipt({ hash: tx.hash })
      spent += r.gasUsed * r.effectiveGasPrice
    }
  }
  return spent
}

const rejects = (p: Promise<unknown>, reason: string) =>
  assert.rejects(p, (e: unknown) => e instanceof ChainTxError && e.reason.startsWith(reason))

describe('coins', { timeout: 300_000 }, () => {
  before(async () => {
    devnet = await startDevnet({ operators: 4, users: 3 })
    clients = await userClients(devnet)
    ;({ instance } = await clients[0]!.deployContract({
      abi: prizePoolAbi,
      bytecode: prizePoolBytecode,
      args: [parseEther('0.5'), 3n],
      watchdogCount: 2,
    }))
  })
  after(async () => {
    await devnet?.stop()
  })

  test('deposit, pay out by contract rule, withdraw: balances add up exactly', async () => {
    const [alice, bob, carol] = clients as [PoseClient, PoseClient, PoseClient]
    startBlock = await alice.publicClient.getBlockNumber({ cacheTime: 0 })
    const onChainBefore = await Promise.all(
      clients.map((c) => c.publicClient.getBalance({ address: c.account.address })),
    )
    for (const c of clients) await c.deposit({ instance, value: parseEther('1') })
    for (const c of clients)
      await waitFor(
        'the deposit credit',
        async () => (await c.getBalance({ instance })) === parseEther('1'),
      )

    // A deposit event replayed by an operator is never credited twice (checked in-process);
    // here: three entries, one winner takes the pot of 1.5.
    for (const c of clients) {
      const r = await c.writeContract({
        instance,
        abi: prizePoolAbi,
        functionName: 'enter',
        value: parseEther('0.5'),
      })
      assert.equal(r.status, 'success')
    }
    const world = await Promise.all(clients.map((c) => c.getBalance({ instance })))
    assert.equal(
      world.reduce((a, b) => a + b, 0n),
      parseEther('3'),
    )
    assert.deepEqual(
      [...world].sort(),
      [parseEther('0.5'), parseEther('0.5'), parseEther('2')].sort(),
    )

    // alice withdraws everything.
    const a1 = await alice.withdraw({ instance, amount: world[0]! })
    assert.equal(a1.cumulative, world[0])
    // The same authorisation again pays nothing.
    const replay = [
      instance,
      alice.account.address,
      a1.cumulative,
      a1.eventIndex,
      a1.signature,
    ] as const
    await rejects(
      alice.sender.write({
        address: devnet.manager,
        abi: poseManagerAbi,
        functionName: 'withdraw',
        args: replay,
      }),
      'PoseManager_NothingToWithdraw',
    )
    // A forged authorisation (not a member enclave) pays nothing.
    const info = await readInstance(alice.publicClient, devnet.manager, instance)
    const forgedSig = signDigest(
      withdrawDigest({
        chainId: alice.domain.chainId,
        manager: hexToBytes(devnet.manager),
        instance,
        recipient: hexToBytes(alice.account.address),
        cumulative: parseEther('5'),
        eventIndex: info.eventIndex,
        eventHash: hexToBytes(info.eventHash),
      }),
      generateSecretKey(),
    )
    await rejects(
      alice.sender.write({
        address: devnet.manager,
        abi: poseManagerAbi,
        functionName: 'withdraw',
        args: [
          instance,
          alice.account.address,
          parseEther('5'),
          info.eventIndex,
          bytesToHex(forgedSig),
        ],
      }),
      'PoseManager_NotAMember',
    )

    // bob: a smaller authorisation, then a larger one; the older one afterwards pays nothing.
    const b1 = await bob.withdraw({ instance, amount: parseEther('0.1') })
    const b2 = await bob.withdraw({ instance, amount: parseEther('0.2') })
    assert.equal(b2.cumulative, parseEther('0.3'))
    await rejects(
      bob.sender.write({
        address: devnet.manager,
        abi: poseManagerAbi,
        functionName: 'withdraw',
        args: [instance, bob.account.address, b1.cumulative, b1.eventIndex, b1.signature],
      }),
      'PoseManager_NothingToWithdraw',
    )

    // carol gets an authorisation, then the executor that signed it is replaced; it still pays.
    const c1 = await carol.withdraw({ instance, amount: world[2]!, submit: false })
    await killMember(devnet, info.operators[info.executorSlot]!)
    await alice.challengeExecutor({ instance })
    await passDelta(devnet)
    await waitFor('a new executor', async () => {
      const i = await readInstance(alice.publicClient, devnet.manager, instance)
      return i.executorSlot !== info.executorSlot && i.phaseName === 'Active'
    })
    await carol.sender.write({
      address: devnet.manager,
      abi: poseManagerAbi,
      functionName: 'withdraw',
      args: [instance, carol.account.address, c1.cumulative, c1.eventIndex, c1.signature],
    })
    // The new executor authorises the same cumulative amount: nothing more to pay.
    const c2 = await getWithdrawAuthorisation(carol, { instance })
    assert.equal(c2.cumulative, c1.cumulative)
    await rejects(
      carol.sender.write({
        address: devnet.manager,
        abi: poseManagerAbi,
        functionName: 'withdraw',
        args: [instance, carol.account.address, c2.cumulative, c2.eventIndex, c2.signature],
      }),
      'PoseManager_NothingToWithdraw',
    )

    // bob takes out the rest through the new executor.
    await bob.withdraw({ instance, amount: world[1]! - parseEther('0.3') })
    for (const c of clients) assert.equal(await c.getBalance({ instance }), 0n)
    const [deposited, withdrawn] = (await alice.publicClient.readContract({
      address: devnet.manager,
      abi: poseManagerAbi,
      functionName: 'balanceOfInstance',
      args: [instance],
    })) as [bigint, bigint]
    assert.equal(deposited, parseEther('3'))
    assert.equal(withdrawn, parseEther('3'), 'the manager holds nothing for the instance')

    // On-chain: each balance changed by (withdrawn − deposited) minus gas (and alice's challenge fee).
    const fee = (await alice.publicClient.readContract({
      address: devnet.manager,
      abi: poseManagerAbi,
      functionName: 'challengeFee',
    })) as bigint
    for (const [u, c] of clients.entries()) {
      const after = await c.publicClient.getBalance({ address: c.account.address })
      const gas = await gasSpentBy(c, c.account.address)
      const expected = onChainBefore[u]! - parseEther('1') + world[u]! - gas - (u === 0 ? fee : 0n)
      assert.equal(after, expected, `user ${u}`)
    }
  })
})
