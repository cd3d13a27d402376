/**
 * Chain and devnet faults found by the fault-injection simulator: a manager call that other
 * calls overtake between its gas estimate and its inclusion still has the gas it needs
 * (src/chain/sender.ts), and a port reserved for an operator is one the kernel never hands to
 * an outbound connection (src/devnet/anvil.ts `freePort`).
 */
import assert from 'node:assert/strict'
import { existsSync, readFileSync } from 'node:fs'
import { connect, createServer } from 'node:net'
import { test } from 'node:test'
import { type Address, parseGwei } from 'viem'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { privateTokenAbi, privateTokenBytecode } from '../../examples/contracts.generated.ts'
import { createChainClients } from '../../src/chain/clients.ts'
import { TxSender } from '../../src/chain/sender.ts'
import { anvilRpc, freePort, startAnvil } from '../../src/devnet/anvil.ts'

test('a manager call is sent with headroom over its gas estimate, so calls landing before it do not run it out of gas (simulator, commit 8268f0b)', {
  timeout: 60_000,
}, async () => {
  // The simulator's withdraw was estimated against one state and mined after other calls had
  // changed it. Here a token transfer to `recipient` is estimated while the recipient holds a
  // balance (its slot is rewritten: 2,900 gas); the recipient empties that balance in a call
  // mined first in the same block, so the transfer writes a zero slot (20,000 gas) instead.
  const anvil = await startAnvil()
  try {
    const client = async () => {
      const key = generatePrivateKey()
      const account = privateKeyToAccount(key)
      await anvilRpc(anvil.url, 'anvil_setBalance', [account.address, '0xffffffffffffffffffff'])
      const clients = await createChainClients({ rpcUrl: anvil.url, account })
      return { address: account.address, ...clients, wallet: clients.walletClient! }
    }
    const [minter, caller, recipient] = [await client(), await client(), await client()]
    const deployed = await minter.publicClient.waitForTransactionReceipt({
      hash: await minter.wallet.deployContract({
        abi: privateTokenAbi,
        bytecode: privateTokenBytecode,
        args: [1_000n],
      }),
    })
    const token = deployed.contractAddress as Address
    const minterSender = new TxSender(minter.publicClient, minter.wallet)
    for (const to of [caller.address, recipient.address])
      await minterSender.write({
        address: token,
        abi: privateTokenAbi,
        functionName: 'transfer',
        args: [to, 100n],
      })

    const call = {
      address: token,
      abi: privateTokenAbi,
      functionName: 'transfer',
      args: [recipient.address, 1n],
    } as const
    const estimate = await caller.publicClient.estimateContractGas({
      ...call,
      account: caller.wallet.account,
    })

    await anvilRpc(anvil.url, 'evm_setAutomine', [false])
    const sent = new TxSender(caller.publicClient, caller.wallet).write(call)
    for (let i = 0; ; i++) {
      const pool = (await anvilRpc(anvil.url, 'txpool_status')) as { pending: string }
      if (BigInt(pool.pending) === 1n) break
      assert.ok(i < 200, 'the transfer never reached the pool')
      await new Promise((r) => setTimeout(r, 50))
    }
    // A higher tip orders the recipient's call first in the block.
    const overtaking = await recipient.wallet.writeContract({
      address: token,
      abi: privateTokenAbi,
      functionName: 'transfer',
      args: [minter.address, 100n],
      maxPriorityFeePerGas: parseGwei('50'),
      maxFeePerGas: parseGwei('100'),
    })
    await anvilRpc(anvil.url, 'evm_mine')

    const { hash, receipt } = await sent
    const first = await caller.publicClient.getTransactionReceipt({ hash: overtaking })
    assert.equal(first.blockNumber, receipt.blockNumber, 'both calls are in one block')
    assert.ok(first.transactionIndex < receipt.transactionIndex, 'the overtaking call is first')
    assert.equal(receipt.status, 'success')
    const tx = await caller.publicClient.getTransaction({ hash })
    assert.ok(
      receipt.gasUsed > estimate,
      `the call needed more than its estimate (${receipt.gasUsed} of ${estimate})`,
    )
    assert.ok(tx.gas > receipt.gasUsed, `gas limit ${tx.gas} covers ${receipt.gasUsed}`)
  } finally {
    await anvil.stop()
  }
})

const PORT_RANGE = '/proc/sys/net/ipv4/ip_local_port_range'

test('freePort reserves ports outside the kernel ephemeral range, so an outbound connection cannot take one before its operator binds it (simulator, commit 2b2fad0)', {
  skip: !existsSync(PORT_RANGE) && `no ${PORT_RANGE}`,
}, async () => {
  const [low, high] = readFileSync(PORT_RANGE, 'utf8').trim().split(/\s+/).map(Number) as [
    number,
    number,
  ]
  // The range is the one the kernel picks local ports of outbound connections from.
  const server = createServer((s) => s.destroy())
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  try {
    const socket = connect((server.address() as { port: number }).port, '127.0.0.1')
    await new Promise<void>((r, reject) => socket.once('connect', r).once('error', reject))
    const outbound = socket.localPort!
    socket.destroy()
    assert.ok(outbound >= low && outbound <= high, `outbound port ${outbound} in ${low}–${high}`)
  } finally {
    server.close()
  }

  for (let i = 0; i < 50; i++) {
    const port = await freePort()
    assert.ok(port < low || port > high, `port ${port} is in the ephemeral range ${low}–${high}`)
  }
})
