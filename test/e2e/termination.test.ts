/**
 * Termination end to end (SPEC §4 Coins): a contract ends its instance from inside the world;
 * the executor publishes every account's final balance once the ending is replicated; the pool
 * is released; everyone withdraws exactly their final balance on-chain, once; the instance
 * takes no more transactions or deposits.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { parseEther } from 'viem'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import {
  airdropAbi,
  airdropBytecode,
  prizePoolAbi,
  prizePoolBytecode,
} from '../../examples/contracts.generated.ts'
import {
  poseManagerAbi,
  readFinalBalancesPages,
  readInstance,
  readOperator,
} from '../../src/chain/manager.ts'
import { ChainTxError } from '../../src/chain/sender.ts'
import { ContractRevertError, type PoseClient, PoseError } from '../../src/client/index.ts'
import { type Devnet, startDevnet } from '../../src/devnet/devnet.ts'
import { userClients, waitFor } from './helpers.ts'

let devnet: Devnet
let clients: PoseClient[]
let instance: bigint

describe('termination', { timeout: 300_000 }, () => {
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

  test('the contract ends itself; final balances are paid once; the pool is released', async () => {
    const [alice, bob, carol] = clients as [PoseClient, PoseClient, PoseClient]
    for (const c of clients) await c.deposit({ instance, value: parseEther('1') })
    for (const c of clients)
      await waitFor('the deposit credit', async () => (await c.getBalance({ instance })) > 0n)
    // Two of three entries: the round is open when the host closes it, so both are refunded.
    for (const c of [alice, bob])
      await c.writeContract({
        instance,
        abi: prizePoolAbi,
        functionName: 'enter',
        value: parseEther('0.5'),
      })
    // carol takes 0.2 out before the end with an ordinary authorisation.
    await carol.withdraw({ instance, amount: parseEther('0.2') })
    // Only the host may end the game.
    await assert.rejects(
      bob.writeContract({ instance, abi: prizePoolAbi, functionName: 'close' }),
      (e: unknown) => e instanceof ContractRevertError && e.errorName === 'PrizePool_NotHost',
    )

    const pool = await readInstance(alice.publicClient, devnet.manager, instance)
    const membershipsBefore = await Promise.all(
      pool.operators.map(
        async (op) => (await readOperator(alice.publicClient, devnet.manager, op)).memberships,
      ),
    )
    const closed = await alice.writeContract({ instance, abi: prizePoolAbi, functionName: 'close' })
    assert.equal(closed.status, 'success')

    // The world takes nothing more; the manager shows the final balances once published.
    await assert.rejects(
      bob.writeContract({
        instance,
        abi: prizePoolAbi,
        functionName: 'enter',
        value: parseEther('0.5'),
      }),
      (e: unknown) => e instanceof PoseError && e.code === 'WRONG_PHASE',
    )
    await waitFor(
      'the termination on-chain',
      async () =>
        (await readInstance(alice.publicClient, devnet.manager, instance)).phaseName ===
        'Terminated',
    )
    const ended = await readInstance(alice.publicClient, devnet.manager, instance)
    assert.ok(
      ended.operators.every((op) => /^0x0{40}$/.test(op)),
      'pool released',
    )
    for (const [i, op] of pool.operators.entries()) {
      const { memberships } = await readOperator(alice.publicClient, devnet.manager, op)
      assert.equal(memberships, membershipsBefore[i]! - 1, `operator ${i} membership ended`)
    }

    // Final cumulative withdrawals: everything each one put in (refunds included); carol's
    // counts the 0.2 she already took out.
    const { balances } = await alice.getFinalBalances({ instance })
    const finalOf = (c: PoseClient) =>
      balances.find((b) => b.account.toLowerCase() === c.account.address.toLowerCase())?.cumulative
    assert.equal(balances.length, 3)
    for (const c of clients) assert.equal(finalOf(c), parseEther('1'))

    const paid = []
    for (const c of clients) {
      const before = await c.publicClient.getBalance({ address: c.account.address })
      const r = await c.withdraw({ instance })
      const receipt = await c.publicClient.getTransactionReceipt({ hash: r.hash! })
      const after = await c.publicClient.getBalance({ address: c.account.address })
      assert.equal(after - before + receipt.gasUsed * receipt.effectiveGasPrice, r.amount)
      paid.push(r.amount)
    }
    assert.deepEqual(paid, [parseEther('1'), parseEther('1'), parseEther('0.8')])

    // Nothing twice; nothing more in.
    await assert.rejects(carol.withdraw({ instance }), /Nothing left to withdraw/)
    await assert.rejects(
      alice.deposit({ instance, value: 1n }),
      (e: unknown) =>
        e instanceof ChainTxError && e.reason.startsWith('PoseManager_UnexpectedPhase'),
    )
    const [deposited, withdrawn] = (await alice.publicClient.readContract({
      address: devnet.manager,
      abi: poseManagerAbi,
      functionName: 'balanceOfInstance',
      args: [instance],
    })) as [bigint, bigint]
    assert.equal(deposited, parseEther('3'))
    assert.equal(withdrawn, deposited, 'the manager holds nothing for the instance')
  })

  test('final balances of more accounts than a page lists are published in pages and paid against one root', async () => {
    const [alice] = clients as [PoseClient]
    const { instance: drop } = await alice.deployContract({
      abi: airdropAbi,
      bytecode: airdropBytecode,
      watchdogCount: 2,
    })
    await alice.deposit({ instance: drop, value: parseEther('1') })
    await waitFor(
      'the deposit credit',
      async () => (await alice.getBalance({ instance: drop })) > 0n,
    )
    // 1,100 recipients (and alice): two pages of final balances.
    const recipients = Array.from(
      { length: 1_100 },
      () => privateKeyToAccount(generatePrivateKey()).address,
    )
    const each = 1_000n
    for (let i = 0; i < recipients.length; i += 400) {
      const to = recipients.slice(i, i + 400)
      const r = await alice.writeContract({
        instance: drop,
        abi: airdropAbi,
        functionName: 'drop',
        args: [to, each],
        value: BigInt(to.length) * each,
        gasLimit: 20_000_000n,
      })
      assert.equal(r.status, 'success')
    }
    await alice.writeContract({ instance: drop, abi: airdropAbi, functionName: 'close' })
    await waitFor(
      'the termination on-chain',
      async () =>
        (await readInstance(alice.publicClient, devnet.manager, drop)).phaseName === 'Terminated',
      120_000,
    )
    const pages = await readFinalBalancesPages(alice.publicClient, devnet.manager, drop)
    assert.equal(pages.size, 1, 'one page besides the one in the Terminated event')
    const { balances } = await alice.getFinalBalances({ instance: drop })
    assert.equal(balances.length, recipients.length + 1)
    const byAccount = new Map(balances.map((b) => [b.account.toLowerCase(), b.cumulative]))
    for (const r of recipients) assert.equal(byAccount.get(r.toLowerCase()), each, r)
    const rest = parseEther('1') - BigInt(recipients.length) * each
    assert.equal(byAccount.get(alice.account.address.toLowerCase()), rest)
    // Paid against the root over both pages.
    const r = await alice.withdraw({ instance: drop })
    assert.equal(r.amount, rest)
  })
})
