import type { Abi, Address, ContractFunctionArgs, ContractFunctionName } from 'viem'
import type { PoseClientBase } from '../createPoseClient.ts'
import { encodeCall } from './encodeCall.ts'
import { revertError } from './readContract.ts'
import {
  type PoseReceipt,
  type SendTransactionParameters,
  sendTransaction,
} from './sendTransaction.ts'

export type WriteContractParameters<
  abi extends Abi = Abi,
  functionName extends ContractFunctionName<abi, 'nonpayable' | 'payable'> = ContractFunctionName<
    abi,
    'nonpayable' | 'payable'
  >,
  args extends ContractFunctionArgs<
    abi,
    'nonpayable' | 'payable',
    functionName
  > = ContractFunctionArgs<abi, 'nonpayable' | 'payable', functionName>,
> = {
  instance: bigint
  abi: abi
  functionName: functionName
  args?: args
  address?: Address
  value?: bigint
  gasLimit?: bigint
  /**
   * Throw ContractRevertError (with the receipt) when the call reverted (default true). A
   * receipt whose status is `error` (out of gas, say) is returned: check `status`.
   */
  throwOnRevert?: boolean
}

/**
 * Calls a state-changing function of the instance contract and returns the verified receipt.
 *
 * @example
 * ```ts
 * const receipt = await writeContract(client, { instance, abi, functionName: 'transfer', args: [to, 5n] })
 * ```
 */
export async function writeContract<
  const abi extends Abi,
  functionName extends ContractFunctionName<abi, 'nonpayable' | 'payable'>,
  args extends ContractFunctionArgs<abi, 'nonpayable' | 'payable', functionName>,
>(
  client: PoseClientBase,
  p: WriteContractParameters<abi, functionName, args>,
): Promise<PoseReceipt> {
  const data = encodeCall(p.abi, p.functionName, p.args as readonly unknown[] | undefined)
  // No spreads: on Node 20 they cost microseconds per call (see `signedTx`).
  const tx: SendTransactionParameters = { instance: p.instance, data }
  if (p.address) tx.to = p.address
  if (p.value !== undefined) tx.value = p.value
  if (p.gasLimit !== undefined) tx.gasLimit = p.gasLimit
  const receipt = await sendTransaction(client, tx)
  if (receipt.status === 'revert' && (p.throwOnRevert ?? true)) {
    const e = revertError(p.abi as Abi, receipt.returnData)
    e.receipt = receipt
    throw e
  }
  return receipt
}
