// The README's SDK example, run by test/e2e/optimistic.test.ts against a real devnet.
import type { Address, Hex } from 'viem'
import { createPoseClient, privateKeyToPoseAccount } from '../src/client/index.ts'
import { privateTokenAbi, privateTokenBytecode } from './contracts.generated.ts'

export async function quickstart(rpcUrl: string, manager: Address, key: Hex, friend: Address) {
  const client = await createPoseClient({ rpcUrl, manager, account: privateKeyToPoseAccount(key) })
  const { instance } = await client.deployContract({
    abi: privateTokenAbi,
    bytecode: privateTokenBytecode,
    args: [1_000n],
    watchdogCount: 2,
  })
  const receipt = await client.writeContract({
    instance,
    abi: privateTokenAbi,
    functionName: 'transfer',
    args: [friend, 10n],
  })
  const mine = await client.readContract({
    instance,
    abi: privateTokenAbi,
    functionName: 'myBalance',
  })
  return { instance, status: receipt.status, mine } // { status: 'success', mine: 990n }
}
