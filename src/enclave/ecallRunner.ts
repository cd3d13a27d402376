/**
 * The enclave process's side of the ecall channel: ecalls run strictly one after another, peer
 * messages first, and the responses of one turn of the event loop go back together.
 */
import {
  type EcallBatch,
  type EcallResponse,
  type EnclaveOutput,
  isTxRun,
  LIMITS,
  ProtocolError,
  packResponse,
  packResponses,
  type ResponseItem,
  type ResponseOnWire,
  toProtocolError,
  turnBatcher,
  unpackTxRun,
} from '../protocol/index.ts'
import type { Enclave } from './enclave.ts'

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
 * Returns the handler for the messages the host sends (one ecall or an `EcallBatch`); responses
 * go to `send`, those of one turn as one message.
 *
 * Ecalls received and not started yet wait in two classes: peer messages (updates, acks) go
 * before client requests and the rest, so an acknowledgement never waits behind a run of
 * transactions that arrived before it; within each class, ecalls run in the order they came.
 * (The host could have sent them in that order: operators may reorder any message, SPEC §1.)
 *
 * After an ecall that sends a peer message (an update, an acknowledgement) or answers requests,
 * the runner lets the turn end before the next queued ecall, so those leave at once: the
 * watchdogs work on the update, the executor on the acknowledgement and the clients on their
 * receipts, while this enclave goes on. Without this, a turn that started with a few hundred
 * queued transactions ran all of them before any answer left, and the clients and the executor
 * took turns instead of working at the same time (bench/README.md, 2026-12-05, morning).
 */
export function ecallRunner(
  enclave: Pick<Enclave, 'call'>,
  send: (msg: ResponseOnWire | EcallBatch<ResponseItem>) => void,
): (raw: unknown) => void {
  const peerJobs = new Fifo<Job>()
  const otherJobs = new Fifo<Job>()
  const waiting = (): number => peerJobs.size + otherJobs.size
  const nextJob = (): Job | undefined => peerJobs.shift() ?? otherJobs.shift()
  let draining = false

  // Packed as the channel carries them (protocol/ecallWire.ts).
  const reply = turnBatcher<EcallResponse>(
    (_, part) => send(part.length === 1 ? packResponse(part[0]!) : { batch: packResponses(part) }),
    (r, e) => {
      const error = new ProtocolError(
        'INTERNAL',
        `ecall response cannot be passed to the host (${e.message})`,
      ).toObject()
      send({ id: r.id, ok: false, error, outputs: [] })
    },
  )

  const leavesAtOnce = (o: EnclaveOutput): boolean => o.type === 'answer' || o.type === 'send'

  async function runOne(raw: unknown): Promise<void> {
    const req = raw as { id?: unknown; method?: unknown; params?: unknown }
    const id = typeof req?.id === 'number' ? req.id : -1
    let outputs: EnclaveOutput[]
    try {
      const r = await enclave.call(String(req?.method), req?.params, waiting() > 0)
      outputs = r.outputs
      reply({ id, ok: true, result: r.result, outputs })
    } catch (e) {
      outputs = (e as { outputs?: EnclaveOutput[] })?.outputs ?? []
      reply({ id, ok: false, error: toProtocolError(e).toObject(), outputs })
    }
    if (waiting() > 0 && outputs.some(leavesAtOnce)) await new Promise((r) => setImmediate(r))
  }

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

  const enqueue = (raw: unknown): void => {
    if (isTxRun(raw)) {
      // A run of `tx` ecalls (protocol/ecallWire.ts): each runs and is validated as if alone.
      const run = unpackTxRun(raw)
      if ('ecalls' in run) for (const e of run.ecalls) otherJobs.push({ raw: e })
      else {
        const error = new ProtocolError('MALFORMED', run.error).toObject()
        for (const id of run.refuse)
          otherJobs.push({ refuse: { id, ok: false, error, outputs: [] } })
      }
      return
    }
    const method = (raw as { method?: unknown } | null)?.method
    ;(method === 'peer' ? peerJobs : otherJobs).push({ raw })
  }

  return (raw: unknown): void => {
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
  }
}
