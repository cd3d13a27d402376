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
/** A FIFO of ecalls (or refusals) not started yet. */
class Fifo<T> {
  private items: T[] = []
  private head = 0
  get size(): number {
    return this.items.length - this.head
  }
  push(item: T): void {
    this.items.push(item)
  }
  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined
    const item = this.items[this.head++]
    if (this.head === this.items.length) {
      this.items = []
      this.head = 0
    }
    return item
  }
}

type Job = { raw: unknown } | { refuse: EcallResponse }

/**
 * Ecalls received and not started yet, in two classes: peer messages (updates, acks) go before
 * client requests and the rest, so an acknowledgement never waits behind a run of transactions
 * that arrived before it; within each class, ecalls run in the order they came. (The host could
 * have sent them in that order: operators may reorder any message, SPEC §1.)
 */
const peerJobs = new Fifo<Job>()
const otherJobs = new Fifo<Job>()
const waiting = (): number => peerJobs.size + otherJobs.size
const nextJob = (): Job | undefined => peerJobs.shift() ?? otherJobs.shift()
let draining = false

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

async function runOne(raw: unknown): Promise<void> {
  const req = raw as { id?: unknown; method?: unknown; params?: unknown }
  const id = typeof req?.id === 'number' ? req.id : -1
  let sentUpdate = false
  try {
    const { result, outputs } = await enclave.call(String(req?.method), req?.params, waiting() > 0)
    reply({ id, ok: true, result, outputs })
    // An update leaves before the next run of ecalls: the watchdogs work on it meanwhile.
    sentUpdate = outputs.some((o) => o.type === 'send' && o.envelope.kind === 'update')
  } catch (e) {
    const outputs = ((e as { outputs?: EnclaveOutput[] })?.outputs ?? []) as EnclaveOutput[]
    reply({ id, ok: false, error: toProtocolError(e).toObject(), outputs })
  }
  if (sentUpdate && waiting() > 0) await new Promise((r) => setImmediate(r))
}

/** Ecalls run strictly one after another: the enclave's state is never interleaved. */
async function drain(): Promise<void> {
  if (draining) return
  draining = true
  try {
    for (let job = nextJob(); job; job = nextJob()) {
      if ('refuse' in job) reply(job.refuse)
      else await runOne(job.raw)
    }
  } finally {
    draining = false
  }
}

function enqueue(raw: unknown): void {
  const method = (raw as { method?: unknown } | null)?.method
  ;(method === 'peer' ? peerJobs : otherJobs).push({ raw })
}

process.on('message', (raw: unknown) => {
  const batch = (raw as { batch?: unknown } | null)?.batch
  if (batch === undefined) enqueue(raw)
  else if (!Array.isArray(batch) || batch.length === 0 || batch.length > LIMITS.maxEcallBatch) {
    const error = new ProtocolError(
      'MALFORMED',
      `ecall batch: expected 1 to ${LIMITS.maxEcallBatch} ecalls`,
    ).toObject()
    // Behind the ecalls already queued, like any other answer.
    otherJobs.push({ refuse: { id: -1, ok: false, error, outputs: [] } })
  } else for (const r of batch) enqueue(r)
  void drain()
})

process.on('disconnect', () => process.exit(0))
process.send?.({ id: 0, ok: true, result: { ready: true }, outputs: [] })
