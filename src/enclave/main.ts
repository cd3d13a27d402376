/**
 * Entry point of the enclave process (SIMULATED TEE — INSECURE: dev builds only). It speaks
 * only the ecall protocol over Node's IPC channel and never writes secrets anywhere.
 */

import {
  type EcallResponse,
  type EnclaveOutput,
  LIMITS,
  ProtocolError,
  toProtocolError,
  turnBatcher,
} from '../protocol/index.ts'
import { Enclave } from './enclave.ts'

const enclave = new Enclave()
let chain: Promise<void> = Promise.resolve()
/** Ecalls queued and not started yet: while there are any, `tx` ecalls form one update. */
let waiting = 0
/** Sends the responses produced during one turn of the event loop together, at its end. */
const reply = turnBatcher<EcallResponse>(
  (msg) => {
    process.send?.(msg)
  },
  (r, e) => {
    const error = new ProtocolError(
      'INTERNAL',
      `ecall response cannot be passed to the host (${e.message})`,
    ).toObject()
    process.send?.({ id: r.id, ok: false, error, outputs: [] })
  },
)

function run(raw: unknown): void {
  const req = raw as { id?: unknown; method?: unknown; params?: unknown }
  const id = typeof req?.id === 'number' ? req.id : -1
  waiting++
  // Ecalls run strictly one after another: the enclave's state is never interleaved.
  chain = chain.then(async () => {
    waiting--
    try {
      const { result, outputs } = await enclave.call(String(req?.method), req?.params, waiting > 0)
      reply({ id, ok: true, result, outputs })
      // An update leaves before the next run of ecalls: the watchdogs work on it meanwhile.
      if (waiting > 0 && outputs.some((o) => o.type === 'send' && o.envelope.kind === 'update'))
        await new Promise((r) => setImmediate(r))
    } catch (e) {
      const outputs = ((e as { outputs?: EnclaveOutput[] })?.outputs ?? []) as EnclaveOutput[]
      reply({ id, ok: false, error: toProtocolError(e).toObject(), outputs })
    }
  })
}

process.on('message', (raw: unknown) => {
  const batch = (raw as { batch?: unknown } | null)?.batch
  if (batch === undefined) return run(raw)
  if (!Array.isArray(batch) || batch.length === 0 || batch.length > LIMITS.maxEcallBatch) {
    const error = new ProtocolError(
      'MALFORMED',
      `ecall batch: expected 1 to ${LIMITS.maxEcallBatch} ecalls`,
    ).toObject()
    // Behind the ecalls already queued, like any other answer.
    chain = chain.then(() => reply({ id: -1, ok: false, error, outputs: [] }))
    return
  }
  for (const r of batch) run(r)
})

process.on('disconnect', () => process.exit(0))
process.send?.({ id: 0, ok: true, result: { ready: true }, outputs: [] })
