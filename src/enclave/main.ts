/**
 * Entry point of the enclave process (SIMULATED TEE — INSECURE: dev builds only). It speaks
 * only the ecall protocol over Node's IPC channel and never writes secrets anywhere.
 */

import {
  type EcallBatch,
  type EcallResponse,
  type EnclaveOutput,
  LIMITS,
  ProtocolError,
  toProtocolError,
} from '../protocol/index.ts'
import { Enclave } from './enclave.ts'

const enclave = new Enclave()
let chain: Promise<void> = Promise.resolve()
/** Responses produced during this turn of the event loop, sent together at its end. */
let replies: EcallResponse[] = []

function flushReplies(): void {
  const r = replies
  replies = []
  sendReplies(r)
}

function sendReplies(r: EcallResponse[]): void {
  const msg: EcallResponse | EcallBatch<EcallResponse> = r.length === 1 ? r[0]! : { batch: r }
  try {
    process.send?.(msg)
  } catch (e) {
    // Nothing was written: the response at fault is replaced by an error, the others still go.
    if (r.length > 1) for (const one of r) sendReplies([one])
    else {
      const error = new ProtocolError(
        'INTERNAL',
        `ecall response cannot be passed to the host (${(e as Error).message})`,
      ).toObject()
      process.send?.({ id: r[0]!.id, ok: false, error, outputs: [] })
    }
  }
}

function reply(msg: EcallResponse): void {
  if (replies.push(msg) === 1) setImmediate(flushReplies)
}

function run(raw: unknown): void {
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
