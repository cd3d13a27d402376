/**
 * Intrinsic gas of a transaction (Cancun): what Ethereum charges before any code runs. The
 * world charges it too, so that `gasleft()`, the gas a call forwards and running out of gas
 * are Ethereum's; an enclave refuses a transaction whose gas limit does not cover it, as a
 * node refuses one, before it takes the nonce.
 */
export const TX_BASE_GAS = 21_000n
export const TX_CREATE_GAS = 32_000n
const ZERO_BYTE_GAS = 4n
const NONZERO_BYTE_GAS = 16n
/** EIP-3860: per 32-byte word of creation code. */
const INITCODE_WORD_GAS = 2n

/** The intrinsic gas of a transaction carrying `data` (creation code when `create`). */
export function intrinsicGas(data: Uint8Array, create = false): bigint {
  let zeros = 0
  for (let i = 0; i < data.length; i++) if (data[i] === 0) zeros++
  let gas =
    TX_BASE_GAS + BigInt(zeros) * ZERO_BYTE_GAS + BigInt(data.length - zeros) * NONZERO_BYTE_GAS
  if (create) gas += TX_CREATE_GAS + BigInt(Math.ceil(data.length / 32)) * INITCODE_WORD_GAS
  return gas
}
