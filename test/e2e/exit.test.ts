/**
 * Operator exit (SPEC §4): the executor's operator requests exit while users send
 * transactions; its memberships are handed over, no receipted transaction is lost, and it
 * withdraws its stake after the exit delay (anvil's clock).
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { privateTokenAbi, privateTokenBytecode } from '../../examples/contracts.generated.ts'
import { readInstance, readOperator } from '../../src/chain/manager.ts'
import type { PoseClient, PoseReceipt } from '../../src/client/index.ts'
import { anvilRpc } from '../../src/devnet/anvil.ts'
import { DEFAULT_MANAGER_PARAMS } from '../../src/devnet/deploy.ts'
import { type Devnet, startDevnet } from '../../src/devnet/devnet.ts'
import { exitPool, withdrawStake } from '../../src/operator/exit.ts'
import { userClients, waitFor } from './helpers.ts'

let devnet: Devnet
let clients: PoseClient[]
let instance: bigint

describe('operator exit while executor', { timeout: 300_000 }, () => {
  before(async () => {
    devnet = await startDevnet({ operators: 4, users: 2 })
    clients = await userClients(devnet)
    const [alice, bob] = clients as [PoseClient, PoseClient]
    ;({ instance } = await alice.deployContract({
      abi: privateTokenAbi,
      bytecode: privateTokenBytecode,
      args: [2_000_000n],
      watchdogCount: 2,
    }))
    await alice.writeContract({
      instance,
      abi: privateTokenAbi,
      functionName: 'transfer',
      args: [bob.account.address, 1_000_000n],
    })
  })
  after(async () => {
    await devnet?.stop()
  })

  test('hands over without losing a transaction; the stake is withdrawn after the delay', async () => {
    const receipts: { from: number; amount: bigint; r: PoseReceipt }[] = []
    let stop = false
    let failed: unknown
    const streams = clients
      .map(async (c, ci) => {
        for (let k = 0; !stop && k < 300; k++) {
          const amount = BigInt(1 + (k % 5))
          const r = await c.writeContract({
            instance,
            abi: privateTokenAbi,
            functionName: 'transfer',
            args: [clients[1 - ci]!.account.address, amount],
          })
          receipts.push({ from: ci, amount, r })
        }
      })
      .map((p) =>
        p.catch((e: unknown) => {
          failed = e
        }),
      )
    await waitFor('20 receipts', async () => receipts.length >= 20 || failed !== undefined)

    const before = await readInstance(clients[0]!.publicClient, devnet.manager, instance)
    const op = devnet.operators.find((o) => o.address === before.operators[before.executorSlot])!
    const lines: string[] = []
    const { left, readyAt } = await exitPool({
      rpcUrl: devnet.rpcUrl,
      manager: devnet.manager,
      privateKey: op.key,
      log: (l) => lines.push(l),
    })
    assert.deepEqual(left, [instance])
    assert.match(lines.join('\n'), /executor: handed over/)
    const atExit = receipts.length
    const oldExecutor = before.signers[before.executorSlot]!.toLowerCase()
    const handedTo = await readInstance(clients[0]!.publicClient, devnet.manager, instance)
    const newExecutor = handedTo.signers[handedTo.executorSlot]!.toLowerCase()
    assert.notEqual(newExecutor, oldExecutor)
    const by = (signer: string) => receipts.filter((x) => x.r.executor.toLowerCase() === signer)
    await waitFor(
      '20 receipts after the exit, one of them from the new executor',
      async () =>
        (receipts.length >= atExit + 20 && by(newExecutor).length > 0) || failed !== undefined,
    )
    stop = true
    await Promise.all(streams)
    if (failed) throw failed

    const afterInfo = await readInstance(clients[0]!.publicClient, devnet.manager, instance)
    assert.notEqual(afterInfo.operators[afterInfo.executorSlot], op.address)
    assert.ok(!afterInfo.operators.includes(op.address))
    assert.equal(afterInfo.signers[afterInfo.executorSlot]!.toLowerCase(), newExecutor)
    // One history: the old executor may still release a few receipts after the exit (until its
    // chain view and its watchdogs' see the removal), but all of them come before the new
    // executor's first update, which continues from every update the old one had acknowledged.
    for (const x of receipts) {
      const signer = x.r.executor.toLowerCase()
      assert.ok(signer === oldExecutor || signer === newExecutor, `receipt signed by ${signer}`)
    }
    const seqs = (signer: string) =>
      by(signer)
        .map((x) => x.r.seq)
        .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
    const lastOld = seqs(oldExecutor).at(-1) ?? 0n
    const firstNew = seqs(newExecutor)[0]!
    assert.ok(lastOld < firstNew, `old executor's seq ${lastOld} before the new one's ${firstNew}`)

    // Replaying every receipt gives the final balances.
    const expected = [1_000_000n, 1_000_000n]
    for (const x of receipts) {
      expected[x.from]! -= x.amount
      expected[1 - x.from]! += x.amount
    }
    for (const [u, c] of clients.entries()) {
      assert.equal(
        await c.readContract({ instance, abi: privateTokenAbi, functionName: 'myBalance' }),
        expected[u],
      )
    }

    // Stake: not before the exit delay, then all of it.
    await assert.rejects(
      withdrawStake({ rpcUrl: devnet.rpcUrl, manager: devnet.manager, privateKey: op.key }),
      /PoseManager_CannotWithdraw/,
    )
    const now = (await clients[0]!.publicClient.getBlock({ blockTag: 'latest' })).timestamp
    await anvilRpc(devnet.rpcUrl, 'evm_increaseTime', [Number(readyAt - now) + 1])
    await anvilRpc(devnet.rpcUrl, 'evm_mine', [])
    const balanceBefore = await clients[0]!.publicClient.getBalance({ address: op.address })
    const paid = await withdrawStake({
      rpcUrl: devnet.rpcUrl,
      manager: devnet.manager,
      privateKey: op.key,
    })
    assert.equal(paid, DEFAULT_MANAGER_PARAMS.minStake)
    const balanceAfter = await clients[0]!.publicClient.getBalance({ address: op.address })
    assert.ok(balanceAfter > balanceBefore + paid - 10n ** 16n, 'stake arrived (minus gas)')
    assert.equal(
      (await readOperator(clients[0]!.publicClient, devnet.manager, op.address)).stake,
      0n,
    )
  })

  test('keeps an instance it is the last live member of while it holds coins, unless forced', async () => {
    const [alice] = clients as [PoseClient]
    const { instance: alone } = await alice.deployContract({
      abi: privateTokenAbi,
      bytecode: privateTokenBytecode,
      args: [1_000n],
      watchdogCount: 0,
    })
    await alice.deposit({ instance: alone, value: 1_000n })
    const info = await readInstance(alice.publicClient, devnet.manager, alone)
    const op = devnet.operators.find((o) => o.address === info.operators[info.executorSlot])!
    const exit = (force: boolean) =>
      exitPool({ rpcUrl: devnet.rpcUrl, manager: devnet.manager, privateKey: op.key, force })
    const kept = await exit(false)
    assert.deepEqual(kept.kept, [alone])
    assert.ok(!kept.left.includes(alone))
    const still = await readInstance(alice.publicClient, devnet.manager, alone)
    assert.equal(still.phaseName, 'Active')
    assert.equal(still.operators[still.executorSlot], op.address, 'still its executor')
    const forced = await exit(true)
    assert.deepEqual(forced.kept, [])
    assert.ok(forced.left.includes(alone))
    const frozen = await readInstance(alice.publicClient, devnet.manager, alone)
    assert.equal(frozen.phaseName, 'Frozen', 'left anyway: frozen with its coins')
  })
})
