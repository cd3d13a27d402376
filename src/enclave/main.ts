/**
 * Entry point of the enclave process (SIMULATED TEE — INSECURE: dev builds only). It speaks
 * only the ecall protocol over Node's IPC channel and never writes secrets anywhere.
 */

import type { EnclaveOutput } from '../protocol/index.ts'
import { type EcallResponse, toProtocolError } from '../protocol/index.ts'
import { Enclave } from './enclave.ts'

const enclave = new Enclave()
let chain: Promise<void> = Promise.resolve()

function reply(msg: EcallResponse): void {
  process.send?.(msg)
}

process.on('message', (raw: unknown) => {
  const req = raw as { id?: unknown; method?: unknown; params?: unknown }
  const id = typeof req?.id === 'number' ? req.id : -1
  // Ecalls run strictly one after another: the enclave's state is never interleaved.
  chain = chain.then(async () => {
    try {
      const { result, outputs } = await enclave.call(String(req?.method), req?.params)
      reply({ id, ok: true, result, outputs })
    } catch (e) {
      const outputs = ((e as { outputs?: EnclaveOutput[] })?.outputs ?? []) as EnclaveOutput[]
      reply({ id, ok: false, error: toProtocolError(e).toObject(), outputs })
    }
  })
})

process.on('disconnect', () => process.exit(0))
process.send?.({ id: 0, ok: true, result: { ready: true }, outputs: [] })
