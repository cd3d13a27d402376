/**
 * The enclave's EVM world in the benchmark process: a fresh world with PrivateToken deployed at
 * the instance address, the supply held by the first of eight users.
 */
import { encodeDeployData, encodeFunctionData } from 'viem'
import { privateTokenAbi, privateTokenBytecode } from '../../examples/contracts.generated.ts'
import { World } from '../../src/enclave/world/world.ts'
import { bytesToHex, hexToBytes, INSTANCE_ADDRESS } from '../../src/protocol/index.ts'

export const BLOCK = { number: 1n, timestamp: 1_700_000_000n, prevRandao: new Uint8Array(32) }

/** A world as the enclaves make it; `fastPaths: false` runs `@ethereumjs/evm` as shipped. */
export const newWorld = (fastPaths = true) =>
  World.create({
    chainId: 31337n,
    maxGasPerTx: 30_000_000n,
    digestKey: new Uint8Array(32).fill(7),
    fastPaths,
  })

export async function tokenWorld(fastPaths = true): Promise<{ world: World; users: Uint8Array[] }> {
  const users = Array.from({ length: 8 }, (_, i) => new Uint8Array(20).fill(i + 1))
  const world = await newWorld(fastPaths)
  const d = await world.deploy({
    from: users[0]!,
    initCode: tokenInitCode(10n ** 15n),
    value: 0n,
    gasLimit: 5_000_000n,
    block: BLOCK,
    address: INSTANCE_ADDRESS,
  })
  if (d.status !== 'success') throw new Error(`token deployment failed: ${d.error}`)
  return { world, users }
}

/** Creation code of `PrivateToken` with `supply` tokens for its deployer. */
export const tokenInitCode = (supply: bigint): Uint8Array =>
  hexToBytes(
    encodeDeployData({ abi: privateTokenAbi, bytecode: privateTokenBytecode, args: [supply] }),
  )

/** Calldata of `PrivateToken.transfer(to, amount)`. */
export const transferCalldata = (to: Uint8Array, amount: bigint): Uint8Array =>
  hexToBytes(
    encodeFunctionData({
      abi: privateTokenAbi,
      functionName: 'transfer',
      args: [bytesToHex(to), amount],
    }),
  )

/**
 * `tokenWorld` with 10¹² tokens sent from the first user to each other one, and the write set
 * of that set-up taken: the state transfers between any two users start from.
 */
export async function fundedTokenWorld(
  fastPaths = true,
): Promise<{ world: World; users: Uint8Array[] }> {
  const { world, users } = await tokenWorld(fastPaths)
  for (const u of users.slice(1)) {
    const r = await world.call({
      from: users[0]!,
      to: INSTANCE_ADDRESS,
      value: 0n,
      data: transferCalldata(u, 10n ** 12n),
      gasLimit: 200_000n,
      block: BLOCK,
    })
    if (r.status !== 'success') throw new Error(`funding transfer: ${r.status}`)
  }
  world.takeWriteSet()
  return { world, users }
}
