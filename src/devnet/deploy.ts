/** Deploys the dev attestation verifier and the manager (devnet and tests). */
import { type Address, createWalletClient, type Hex, http } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import {
  devAttestationVerifierAbi,
  devAttestationVerifierBytecode,
  poseManagerAbi,
  poseManagerBytecode,
} from '../chain/abi.generated.ts'
import { createChainClients } from '../chain/clients.ts'
import { bytesToHex, secretKeyToAddress } from '../protocol/index.ts'

export type ManagerParams = {
  minStake: bigint
  creationFee: bigint
  challengeFee: bigint
  /** Stake taken from an operator whose enclave is removed by a timed-out challenge. */
  slashAmount: bigint
  /** Δ, the challenge timeout, in seconds. */
  delta: bigint
  exitDelay: bigint
}

export const DEFAULT_MANAGER_PARAMS: ManagerParams = {
  minStake: 10n ** 18n,
  creationFee: 10n ** 15n,
  challengeFee: 10n ** 16n,
  slashAmount: 5n * 10n ** 17n,
  delta: 60n,
  exitDelay: 600n,
}

export async function deployManager(p: {
  rpcUrl: string
  deployerKey: Hex
  devAuthorityKey: Uint8Array
  measurements: Uint8Array[]
  params?: ManagerParams
}): Promise<{ manager: Address; verifier: Address }> {
  const account = privateKeyToAccount(p.deployerKey)
  const { chain, publicClient } = await createChainClients({ rpcUrl: p.rpcUrl })
  const wallet = createWalletClient({ chain, transport: http(p.rpcUrl), account })
  const params = p.params ?? DEFAULT_MANAGER_PARAMS
  const deploy = async (
    abi: readonly unknown[],
    bytecode: Hex,
    args: readonly unknown[],
  ): Promise<Address> => {
    const hash = await wallet.deployContract({ abi, bytecode, args } as never)
    const r = await publicClient.waitForTransactionReceipt({ hash })
    if (!r.contractAddress) throw new Error('deployment produced no contract address')
    return r.contractAddress
  }
  const verifier = await deploy(devAttestationVerifierAbi, devAttestationVerifierBytecode, [
    bytesToHex(secretKeyToAddress(p.devAuthorityKey)),
    p.measurements.map(bytesToHex),
  ])
  const manager = await deploy(poseManagerAbi, poseManagerBytecode, [verifier, params])
  return { manager, verifier }
}
