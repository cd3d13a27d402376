/**
 * Child process for the floor section: answers `tx`-shaped ecalls the way the enclave does
 * (src/enclave/ecallRunner.ts) and reports its own CPU time when asked, so the parent can add
 * both ends of the IPC channel. It reads the host's runs of ecalls (protocol/ecallWire.ts),
 * answers each ecall with an empty response and puts the turn's sealed answers (`answerBytes`
 * each, its only argument) in one further response, as an executor's answers come with the
 * acknowledgement that released them; everything one event-loop turn produced goes as one
 * message, packed as the enclave packs it.
 */
import {
  type EcallResponse,
  type EnclaveOutput,
  isTxRun,
  packResponses,
  unpackTxRun,
} from '../../src/protocol/index.ts'

const answerBytes = Number(process.argv[2] ?? 0)
let responses: EcallResponse[] = []
let answers: EnclaveOutput[] = []
const flush = () => {
  const all = [...responses, { id: 0, ok: true as const, result: {}, outputs: answers }]
  responses = []
  answers = []
  process.send?.({ batch: packResponses(all) })
}
const answer = (msg: { id: number; params: { requestId: string } }) => {
  answers.push({
    type: 'answer',
    requestId: msg.params.requestId,
    sealed: new Uint8Array(answerBytes),
  })
  if (responses.push({ id: msg.id, ok: true, result: {}, outputs: [] }) === 1) setImmediate(flush)
}
const take = (item: unknown) => {
  if (!isTxRun(item)) return answer(item as Parameters<typeof answer>[0])
  const run = unpackTxRun(item)
  if ('ecalls' in run) for (const e of run.ecalls) answer(e as Parameters<typeof answer>[0])
}
process.on('message', (msg: unknown) => {
  if (msg === 'cpu') {
    process.send?.({ cpu: process.cpuUsage() })
    return
  }
  const batch = (msg as { batch?: unknown[] }).batch
  if (Array.isArray(batch)) for (const m of batch) take(m)
  else take(msg)
})
process.send?.('ready')
