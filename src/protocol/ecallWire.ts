/**
 * Compact items on the ecall channel (SPEC §2). Node's structured clone costs a fraction of a
 * microsecond per object and property, and a JS call per byte array; a saturated executor
 * passes several thousand `tx` ecalls a second, each an object with an id, a request id, an
 * instance and a box, then an empty response for each and an `answer` output per receipt
 * (≈ 5 µs of serialising and parsing per transaction between the two processes; bench/README.md,
 * 2026-12-06, "early morning"). So on the channel:
 *
 * - a run of consecutive `tx` ecalls for one instance travels as one `TxRun` (the boxes in one
 *   array, the ids and request ids in two);
 * - a run of successful responses with an empty result and no outputs travels as one `OkRun`
 *   (their ids);
 * - a run of consecutive sealed answers in one response travels as one `answers` output.
 *
 * Each side unpacks at its boundary. The enclave checks a `TxRun`'s shape and then runs and
 * validates every ecall of it as if it had come alone; the host checks what its enclave sent and
 * replaces an `answers` output that does not fit with a warning. Nothing else changes: ecalls
 * keep their ids, their order and their own responses.
 */
import type { EcallRequest, EcallResponse, EnclaveOutput } from './ecalls.ts'
import type { ErrorObject } from './errors.ts'
import { LIMITS } from './limits.ts'

/** Consecutive `tx` ecalls for one instance. `ends[k]` is where the k-th box ends in `boxes`. */
export type TxRun = {
  txs: {
    ids: number[]
    instance: bigint
    requestIds: string[]
    boxes: Uint8Array
    ends: Uint32Array
  }
}
/** The ids of consecutive successful responses with an empty result and no outputs. */
export type OkRun = { oks: number[] }
/** Consecutive sealed answers of one response. `ends[k]` is where the k-th answer ends. */
export type AnswersOutput = {
  type: 'answers'
  requestIds: string[]
  sealed: Uint8Array
  ends: Uint32Array
}
export type OutputOnWire = EnclaveOutput | AnswersOutput
export type ResponseOnWire =
  | { id: number; ok: true; result: unknown; outputs: OutputOnWire[] }
  | { id: number; ok: false; error: ErrorObject; outputs: OutputOnWire[] }
export type RequestItem = EcallRequest | TxRun
export type ResponseItem = ResponseOnWire | OkRun

/** Shorter runs go as they are. */
const MIN_RUN = 2
/** A run's boxes in one array up to this size; a longer run is split. */
const MAX_RUN_BYTES = 8 * 1024 * 1024

type TxParams = { requestId: string; instance: bigint; box: Uint8Array }

/** The params of a `tx` ecall that a run can carry unchanged, or undefined. */
function txParams(r: EcallRequest): TxParams | undefined {
  if (r.method !== 'tx') return undefined
  const p = r.params as Partial<TxParams> | null
  if (
    typeof p !== 'object' ||
    p === null ||
    typeof p.requestId !== 'string' ||
    typeof p.instance !== 'bigint' ||
    !(p.box instanceof Uint8Array) ||
    p.box.length > MAX_RUN_BYTES ||
    Object.keys(p).length !== 3
  )
    return undefined
  return p as TxParams
}

/** The host's side: `items` as they go on the channel, runs of `tx` ecalls packed. */
export function packRequests(items: readonly EcallRequest[]): RequestItem[] {
  const out: RequestItem[] = []
  let i = 0
  while (i < items.length) {
    const first = txParams(items[i]!)
    let j = i + 1
    let bytes = first?.box.length ?? 0
    for (; first && j < items.length; j++) {
      const p = txParams(items[j]!)
      if (!p || p.instance !== first.instance || bytes + p.box.length > MAX_RUN_BYTES) break
      bytes += p.box.length
    }
    if (j - i < MIN_RUN) {
      out.push(items[i]!)
      i++
      continue
    }
    const n = j - i
    const ids = new Array<number>(n)
    const requestIds = new Array<string>(n)
    const boxes = new Uint8Array(bytes)
    const ends = new Uint32Array(n)
    let at = 0
    for (let k = 0; k < n; k++) {
      const r = items[i + k]!
      const p = r.params as TxParams
      ids[k] = r.id
      requestIds[k] = p.requestId
      boxes.set(p.box, at)
      at += p.box.length
      ends[k] = at
    }
    out.push({ txs: { ids, instance: first!.instance, requestIds, boxes, ends } })
    i = j
  }
  return out
}

export const isTxRun = (item: unknown): item is { txs: unknown } =>
  typeof item === 'object' && item !== null && 'txs' in item

/**
 * The enclave's side: the ecalls of a `TxRun`, each to be validated as if it had come alone,
 * or the ids to refuse (`[-1]` when even the ids cannot be read) with the reason.
 */
export function unpackTxRun(item: {
  txs: unknown
}): { ecalls: EcallRequest[] } | { refuse: number[]; error: string } {
  const t = item.txs as Partial<TxRun['txs']> | null
  const ids = typeof t === 'object' && t !== null ? t.ids : undefined
  if (
    !Array.isArray(ids) ||
    ids.length === 0 ||
    ids.length > LIMITS.maxEcallBatch ||
    !ids.every((id) => Number.isSafeInteger(id))
  )
    return { refuse: [-1], error: `tx run: expected 1 to ${LIMITS.maxEcallBatch} ecall ids` }
  const n = ids.length
  const { requestIds, boxes, ends } = t!
  const refuse = (what: string) => ({ refuse: ids, error: `tx run: ${what}` })
  if (!Array.isArray(requestIds) || requestIds.length !== n)
    return refuse(`expected ${n} request ids`)
  if (!(boxes instanceof Uint8Array)) return refuse('boxes: expected bytes')
  if (!(ends instanceof Uint32Array) || ends.length !== n)
    return refuse(`ends: expected a Uint32Array of ${n}`)
  const ecalls = new Array<EcallRequest>(n)
  let start = 0
  for (let k = 0; k < n; k++) {
    const end = ends[k]!
    if (end < start || end > boxes.length)
      return refuse(`ends[${k}]: ${end} is outside ${start}..${boxes.length}`)
    ecalls[k] = {
      id: ids[k]!,
      method: 'tx',
      params: { requestId: requestIds[k], instance: t!.instance, box: boxes.subarray(start, end) },
    }
    start = end
  }
  if (start !== boxes.length) return refuse(`boxes: ${boxes.length - start} bytes after the last`)
  return { ecalls }
}

const isSealedAnswer = (
  o: EnclaveOutput,
): o is { type: 'answer'; requestId: string; sealed: Uint8Array } =>
  o.type === 'answer' && o.sealed !== undefined && o.error === undefined

function isEmptyOk(r: EcallResponse): boolean {
  if (!r.ok || r.outputs.length !== 0) return false
  const v = r.result
  if (typeof v !== 'object' || v === null || Object.getPrototypeOf(v) !== Object.prototype)
    return false
  for (const _ in v) return false
  return true
}

/** Runs of sealed answers in `outputs` packed, or `outputs` itself when there are none. */
function packOutputs(outputs: EnclaveOutput[]): OutputOnWire[] {
  let packed: OutputOnWire[] | undefined
  let i = 0
  while (i < outputs.length) {
    const o = outputs[i]!
    let j = i
    let bytes = 0
    while (j < outputs.length) {
      const a = outputs[j]!
      if (!isSealedAnswer(a) || bytes + a.sealed.length > MAX_RUN_BYTES) break
      bytes += a.sealed.length
      j++
    }
    if (j - i < MIN_RUN) {
      packed?.push(o)
      i++
      continue
    }
    packed ??= outputs.slice(0, i)
    const n = j - i
    const requestIds = new Array<string>(n)
    const sealed = new Uint8Array(bytes)
    const ends = new Uint32Array(n)
    let at = 0
    for (let k = 0; k < n; k++) {
      const a = outputs[i + k] as { requestId: string; sealed: Uint8Array }
      requestIds[k] = a.requestId
      sealed.set(a.sealed, at)
      at += a.sealed.length
      ends[k] = at
    }
    packed.push({ type: 'answers', requestIds, sealed, ends })
    i = j
  }
  return packed ?? outputs
}

/** The enclave's side: responses as they go on the channel. */
export function packResponses(items: readonly EcallResponse[]): ResponseItem[] {
  const out: ResponseItem[] = []
  let i = 0
  while (i < items.length) {
    let j = i
    while (j < items.length && isEmptyOk(items[j]!)) j++
    if (j - i >= MIN_RUN) {
      const oks = new Array<number>(j - i)
      for (let k = i; k < j; k++) oks[k - i] = items[k]!.id
      out.push({ oks })
      i = j
      continue
    }
    out.push(packResponse(items[i]!))
    i++
  }
  return out
}

/** One response as it goes on the channel: its sealed answers packed. */
export function packResponse(r: EcallResponse): ResponseOnWire {
  const outputs = packOutputs(r.outputs)
  if (outputs === r.outputs) return r
  return r.ok
    ? { id: r.id, ok: true, result: r.result, outputs }
    : { id: r.id, ok: false, error: r.error, outputs }
}

/** The `answer` outputs of an `answers` output, or undefined if it does not fit together. */
function unpackAnswers(o: Partial<AnswersOutput>): EnclaveOutput[] | undefined {
  const { requestIds, sealed, ends } = o
  if (
    !Array.isArray(requestIds) ||
    !(sealed instanceof Uint8Array) ||
    !(ends instanceof Uint32Array) ||
    ends.length !== requestIds.length
  )
    return undefined
  const out = new Array<EnclaveOutput>(ends.length)
  let start = 0
  for (let k = 0; k < ends.length; k++) {
    const end = ends[k]!
    const requestId = requestIds[k]
    if (end < start || end > sealed.length || typeof requestId !== 'string') return undefined
    out[k] = { type: 'answer', requestId, sealed: sealed.subarray(start, end) }
    start = end
  }
  return out
}

/**
 * The host's side: hands each response a message of the channel holds (one item, or a batch of
 * them) to `settle`, its packed answers unpacked. Anything that is not an object, and ids that
 * are not numbers, are skipped; an `answers` output that does not fit together becomes a `log`
 * output saying so.
 */
export function unpackResponses(msg: unknown, settle: (r: EcallResponse) => void): void {
  const batch = (msg as { batch?: unknown } | null)?.batch
  if (Array.isArray(batch)) for (const item of batch) unpackItem(item, settle)
  else unpackItem(msg, settle)
}

/** What is wrong with a response's shape (`ok`, `outputs`, `error`), or undefined. */
function responseFault(r: ResponseOnWire): string | undefined {
  if (typeof r.ok !== 'boolean') return '`ok` is not a boolean'
  if (!Array.isArray(r.outputs)) return '`outputs` is not an array'
  for (const o of r.outputs)
    if (typeof o !== 'object' || o === null || typeof o.type !== 'string')
      return 'an output is not an object with a type'
  if (!r.ok && (typeof r.error !== 'object' || r.error === null)) return '`error` is missing'
  return undefined
}

function unpackItem(item: unknown, settle: (r: EcallResponse) => void): void {
  if (typeof item !== 'object' || item === null) return
  if ('oks' in item) {
    const { oks } = item as { oks: unknown }
    if (!Array.isArray(oks)) return
    for (const id of oks)
      if (typeof id === 'number') settle({ id, ok: true, result: {}, outputs: [] })
    return
  }
  const r = item as ResponseOnWire
  if (typeof r.id !== 'number') return
  const bad = responseFault(r)
  if (bad) {
    // Its ecall fails alone, typed, with none of its outputs: the node handles no output of a
    // response it cannot read (a seal missing from it would let a later ack out).
    settle({
      id: r.id,
      ok: false,
      error: { name: 'ProtocolError', code: 'MALFORMED', message: `enclave response: ${bad}` },
      outputs: [],
    })
    return
  }
  if (!r.outputs.some((o) => o.type === 'answers')) {
    settle(r as EcallResponse)
    return
  }
  const outputs: EnclaveOutput[] = []
  for (const o of r.outputs) {
    if (o.type !== 'answers') {
      outputs.push(o)
      continue
    }
    const answers = unpackAnswers(o)
    if (answers) for (const a of answers) outputs.push(a)
    else
      outputs.push({
        type: 'log',
        level: 'warn',
        message: 'The enclave sent answers that do not fit together; they were dropped',
        fields: { requestIds: Array.isArray(o.requestIds) ? o.requestIds.length : -1 },
      })
  }
  settle(
    r.ok
      ? { id: r.id, ok: true, result: r.result, outputs }
      : { id: r.id, ok: false, error: r.error, outputs },
  )
}
