import {
  type Abi,
  type Address,
  type ContractFunctionArgs,
  type ContractFunctionName,
  type ContractFunctionReturnType,
  decodeErrorResult,
  decodeFunctionResult,
} from 'viem'
import { INSTANCE_ADDRESS_HEX } from '../../protocol/index.ts'
import type { PoseClientBase } from '../createPoseClient.ts'
import { ContractRevertError, PoseError } from '../errors.ts'
import { encodeCall } from './encodeCall.ts'
import { signedView } from './getNonce.ts'

export type ReadContractParameters<
  abi extends Abi = Abi,
  functionName extends ContractFunctionName<abi, 'pure' | 'view'> = ContractFunctionName<
    abi,
    'pure' | 'view'
  >,
  args extends ContractFunctionArgs<abi, 'pure' | 'view', functionName> = ContractFunctionArgs<
    abi,
    'pure' | 'view',
    functionName
  >,
> = {
  instance: bigint
  abi: abi
  functionName: functionName
  args?: args
  /** Defaults to the instance contract. */
  address?: Address
}

/** Decodes revert data with the ABI's custom errors when it can. */
export function revertError(abi: Abi, data: `0x${string}`): ContractRevertError {
  try {
    const d = decodeErrorResult({ abi, data })
    return new ContractRevertError(data, d.errorName, d.args as readonly unknown[] | undefined)
  } catch {
    return new ContractRevertError(data, undefined, undefined)
  }
}

/**
 * Calls a view function as the client's account (a signed view call): the contract sees
 * `msg.sender` = the account, so it can decide what this user may read.
 *
 * @example
 * ```ts
 * const balance = await readContract(client, { instance, abi, functionName: 'balanceOf', args: [account.address] })
 * ```
 */
export async function readContract<
  const abi extends Abi,
  functionName extends ContractFunctionName<abi, 'pure' | 'view'>,
  args extends ContractFunctionArgs<abi, 'pure' | 'view', functionName>,
>(
  client: PoseClientBase,
  p: ReadContractParameters<abi, functionName, args>,
): Promise<ContractFunctionReturnType<abi, 'pure' | 'view', functionName, args>> {
  const data = encodeCall(p.abi, p.functionName, p.args as readonly unknown[] | undefined)
  const r = await signedView(client, {
    instance: p.instance,
    to: p.address ?? INSTANCE_ADDRESS_HEX,
    data,
  })
  if (r.status === 'revert') throw revertError(p.abi as Abi, r.returnData)
  if (r.status !== 'success')
    throw new PoseError(`View call ${String(p.functionName)} failed (${r.status})`)
  return decodeFunctionResult({
    abi: p.abi,
    functionName: p.functionName,
    data: r.returnData,
  } as never) as never
}
