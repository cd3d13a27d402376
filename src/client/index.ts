/** The POSE client SDK. */

/** Errors of the chain's writes (deposit, withdraw, claim, challenge, deploy) and of bad fields. */
export { ChainTxError } from '../chain/sender.ts'
export { ProtocolError } from '../protocol/errors.ts'
export { privateKeyToPoseAccount } from './account.ts'
export { type ClaimReturnType, claim, getPayout } from './actions/claim.ts'
export {
  type DeployContractParameters,
  type DeployContractReturnType,
  deployContract,
} from './actions/deployContract.ts'
export {
  type GetInstanceParameters,
  type GetInstanceReturnType,
  getInstance,
} from './actions/getInstance.ts'
export { getNonce } from './actions/getNonce.ts'
export { type GetReceiptParameters, getReceipt } from './actions/getReceipt.ts'
export { type ReadContractParameters, readContract } from './actions/readContract.ts'
export {
  type PoseReceipt,
  type SendTransactionParameters,
  sendTransaction,
} from './actions/sendTransaction.ts'
export { type WriteContractParameters, writeContract } from './actions/writeContract.ts'
export {
  type CreatePoseClientParameters,
  createPoseClient,
  type PoseClient,
} from './createPoseClient.ts'
export * from './errors.ts'
export type { ApiTransport } from './transport.ts'
