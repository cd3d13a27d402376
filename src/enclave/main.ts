/**
 * Entry point of the enclave process (SIMULATED TEE — INSECURE: dev builds only). It speaks
 * only the ecall protocol over Node's IPC channel and never writes secrets anywhere.
 */

import { ecallRunner } from './ecallRunner.ts'
import { Enclave } from './enclave.ts'

const onMessage = ecallRunner(new Enclave(), (msg) => {
  process.send?.(msg)
})
process.on('message', onMessage)
process.on('disconnect', () => process.exit(0))
process.send?.({ id: 0, ok: true, result: { ready: true }, outputs: [] })
