/**
 * `readOperator` on a real manager: the manager stores no endpoint (docs/decisions/0009), so
 * an operator's endpoint and measurement come from its latest registration log and any later
 * `EndpointChanged`; stake round-trips through the manager's gwei record. Log searches start at
 * the block the manager was created in. A mined call that reverts is explained by a replay.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { type Address, type Hex, hexToBytes } from 'viem'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { devAttestationVerifierAbi, poseManagerAbi } from '../../src/chain/abi.generated.ts'
import { createChainClients } from '../../src/chain/clients.ts'
import { readDeploymentBlock, readOperator } from '../../src/chain/manager.ts'
import { ChainTxError, explainRevert, TxSender } from '../../src/chain/sender.ts'
import { anvilRpc, startAnvil } from '../../src/devnet/anvil.ts'
import { DEFAULT_MANAGER_PARAMS, deployManager } from '../../src/devnet/deploy.ts'
import { createDevAttestationBackend } from '../../src/tee/attestation.ts'

const ETHER = 10n ** 18n

test('readOperator takes the endpoint from the latest registration and later endpoint changes, per operator', {
  timeout: 60_000,
}, async () => {
  const anvil = await startAnvil()
  try {
    const authorityKey = hexToBytes(generatePrivateKey())
    const measurement = hexToBytes(`0x${'ab'.repeat(32)}`)
    const { manager, verifier } = await deployManager({
      rpcUrl: anvil.url,
      deployerKey: (await funded()).key,
      devAuthorityKey: authorityKey,
      measurements: [measurement],
      params: { ...DEFAULT_MANAGER_PARAMS, exitDelay: 10n },
    })
    const attestation = createDevAttestationBackend(authorityKey)

    async function funded() {
      const key = generatePrivateKey()
      const account = privateKeyToAccount(key)
      await anvilRpc(anvil.url, 'anvil_setBalance', [account.address, '0xffffffffffffffffffffff'])
      return { key, account }
    }
    async function operator() {
      const { account } = await funded()
      const clients = await createChainClients({ rpcUrl: anvil.url, account })
      const sender = new TxSender(clients.publicClient, clients.walletClient!)
      const write = (functionName: string, args: readonly unknown[] = [], value?: bigint) =>
        sender.write({
          address: manager,
          abi: poseManagerAbi,
          functionName,
          args,
          ...(value !== undefined ? { value } : {}),
        } as never)
      const register = async (endpoint: string, stake: bigint) => {
        const signer = privateKeyToAccount(generatePrivateKey()).address
        const encryptionKey: Hex = `0x${'11'.repeat(32)}`
        const reportHash = (await clients.publicClient.readContract({
          address: verifier,
          abi: devAttestationVerifierAbi,
          functionName: 'reportHash',
          args: [
            BigInt(clients.chain.id),
            manager,
            `0x${'ab'.repeat(32)}`,
            signer,
            encryptionKey,
            account.address,
          ],
        })) as Hex
        const evidence = await attestation.evidence({
          reportHash: hexToBytes(reportHash),
          measurement,
        })
        await write('register', [signer, encryptionKey, endpoint, evidence], stake)
        return signer
      }
      const read = () => readOperator(clients.publicClient, manager, account.address as Address)
      return { account, write, register, read, clients }
    }

    const a = await operator()
    const b = await operator()
    const none = await a.read()
    assert.equal(none.registered, false)
    assert.equal(none.endpoint, '', 'an operator that never registered has no endpoint')

    const signerA = await a.register('http://127.0.0.1:1001', 2n * ETHER)
    await b.register('http://127.0.0.1:2001', ETHER)
    let info = await a.read()
    assert.equal(info.registered, true)
    assert.equal(info.enclaveSigner, signerA)
    assert.equal(info.endpoint, 'http://127.0.0.1:1001')
    assert.equal(info.measurement, `0x${'ab'.repeat(32)}`)
    assert.equal(info.stake, 2n * ETHER, 'stake kept exactly (whole gwei)')

    await a.write('setEndpoint', ['http://127.0.0.1:1002'])
    await b.write('setEndpoint', ['http://127.0.0.1:2002'])
    assert.equal((await a.read()).endpoint, 'http://127.0.0.1:1002', 'the latest change wins')
    assert.equal((await b.read()).endpoint, 'http://127.0.0.1:2002', 'each operator its own')

    // Exit, withdraw and register again: the new registration's endpoint replaces the change
    // made under the old one.
    await a.write('requestExit')
    await anvilRpc(anvil.url, 'evm_increaseTime', [20])
    await anvilRpc(anvil.url, 'evm_mine')
    await a.write('withdrawStake')
    info = await a.read()
    assert.equal(info.registered, false)
    assert.equal(info.stake, 0n)
    const signerA2 = await a.register('http://127.0.0.1:1003', ETHER + 10n ** 9n)
    info = await a.read()
    assert.equal(info.enclaveSigner, signerA2)
    assert.equal(info.endpoint, 'http://127.0.0.1:1003')
    assert.equal(info.stake, ETHER + 10n ** 9n)
    assert.equal((await b.read()).endpoint, 'http://127.0.0.1:2002')

    await assert.rejects(
      a.write('setEndpoint', ['']),
      (e: Error) =>
        // A revert is the manager's answer: sending the call again would not help.
        e instanceof ChainTxError &&
        e.reverted &&
        /PoseManager_BadEndpoint/.test(`${e.message} ${JSON.stringify(e)}`),
    )
    const c = await operator()
    await assert.rejects(c.register('http://127.0.0.1:3001', ETHER + 1n), (e: Error) =>
      /PoseManager_StakeNotWholeGwei/.test(`${e.message} ${JSON.stringify(e)}`),
    )
    assert.equal((await c.read()).registered, false, 'a refused stake registers nothing')
  } finally {
    await anvil.stop()
  }
})

/** A fresh anvil with a manager deployed by a funded account, after `blocksBefore` blocks. */
async function withManager(
  blocksBefore: number,
  fn: (m: { url: string; manager: Address; key: Hex }) => Promise<void>,
): Promise<void> {
  const anvil = await startAnvil()
  try {
    if (blocksBefore > 0)
      await anvilRpc(anvil.url, 'anvil_mine', [`0x${blocksBefore.toString(16)}`])
    const key = generatePrivateKey()
    await anvilRpc(anvil.url, 'anvil_setBalance', [
      privateKeyToAccount(key).address,
      '0xffffffffffffffffffffff',
    ])
    const { manager } = await deployManager({
      rpcUrl: anvil.url,
      deployerKey: key,
      devAuthorityKey: hexToBytes(generatePrivateKey()),
      measurements: [hexToBytes(`0x${'ab'.repeat(32)}`)],
      params: DEFAULT_MANAGER_PARAMS,
    })
    await fn({ url: anvil.url, manager, key })
  } finally {
    await anvil.stop()
  }
}

test(
  'log searches start at the block the manager was created in, read once per client',
  {
    timeout: 60_000,
  },
  () =>
    withManager(0x40, async ({ url, manager }) => {
      const { publicClient } = await createChainClients({ rpcUrl: url })
      const created = await readDeploymentBlock(publicClient, manager)
      assert.ok(created > 0x40n, `created after the 64 mined blocks (${created})`)
      assert.equal(
        await publicClient.getCode({ address: manager, blockNumber: created - 1n }),
        undefined,
      )
      assert.notEqual(
        await publicClient.getCode({ address: manager, blockNumber: created }),
        undefined,
      )

      // Every log search of readOperator starts there, and the block is read only once.
      const fromBlocks: bigint[] = []
      let blockReads = 0
      let failNext = true
      const watched = new Proxy(publicClient, {
        get(target, prop, receiver) {
          if (prop === 'getLogs')
            return (args: { fromBlock: bigint }) => {
              fromBlocks.push(args.fromBlock)
              return target.getLogs(args as never)
            }
          if (prop === 'readContract')
            return async (args: { functionName: string }) => {
              if (args.functionName === 'deploymentBlock') {
                blockReads++
                if (failNext) {
                  failNext = false
                  throw new Error('node unavailable')
                }
              }
              return target.readContract(args as never)
            }
          return Reflect.get(target, prop, receiver)
        },
      })
      const someone = privateKeyToAccount(generatePrivateKey()).address
      await assert.rejects(readOperator(watched, manager, someone), /node unavailable/)
      assert.equal((await readOperator(watched, manager, someone)).endpoint, '')
      await readOperator(watched, manager, someone)
      assert.equal(blockReads, 2, 'a failed read is not kept; a good one is')
      assert.deepEqual(fromBlocks, [created, created, created, created])
      await readOperator(watched, manager, someone, { fromBlock: 3n })
      assert.deepEqual(fromBlocks.slice(4), [3n, 3n], 'an explicit fromBlock wins')
    }),
)

test(
  'a mined call that reverts is explained by its gas and a replay on the state before and after its block',
  {
    timeout: 60_000,
  },
  () =>
    withManager(0, async ({ url, manager, key }) => {
      const account = privateKeyToAccount(key)
      const { publicClient, walletClient } = await createChainClients({ rpcUrl: url, account })
      const request = {
        address: manager,
        abi: poseManagerAbi,
        functionName: 'setEndpoint',
        args: ['http://127.0.0.1:1'],
        account,
      } as const
      // An explicit gas limit skips the node's estimate, so the call is mined and reverts.
      const hash = await walletClient!.writeContract({ ...request, gas: 100_000n } as never)
      const receipt = await publicClient.waitForTransactionReceipt({ hash })
      assert.equal(receipt.status, 'reverted')
      const { message } = await explainRevert(publicClient, receipt, request)
      assert.match(
        message,
        new RegExp(`transaction ${hash} reverted in block ${receipt.blockNumber}`),
      )
      assert.match(message, new RegExp(`gas ${receipt.gasUsed} of 100000`))
      const notRegistered = `PoseManager_NotRegistered\\(${account.address}\\)`
      assert.match(
        message,
        new RegExp(`before its block: ${notRegistered}; after it: ${notRegistered}`),
      )
    }),
)
