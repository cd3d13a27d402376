// Child process for the floor section: answers every ecall the way the enclave does (an id, a
// result and one output of `answerBytes`), the answers of one event-loop turn as one message
// (`{ batch }`, as src/enclave/ecallRunner.ts sends them), accepts the host's batches, and
// reports its own CPU time when asked, so the parent can add both ends of the IPC channel.
let queued = []
const flush = () => {
  const all = queued
  queued = []
  process.send(all.length === 1 ? all[0] : { batch: all })
}
const answer = (msg) => {
  if (
    queued.push({
      id: msg.id,
      ok: true,
      result: { accepted: true },
      outputs: [
        {
          kind: 'answer',
          requestId: msg.params.requestId,
          sealed: new Uint8Array(msg.params.answerBytes),
        },
      ],
    }) === 1
  )
    setImmediate(flush)
}
process.on('message', (msg) => {
  if (msg === 'cpu') {
    process.send({ cpu: process.cpuUsage() })
    return
  }
  if (Array.isArray(msg?.batch)) for (const m of msg.batch) answer(m)
  else answer(msg)
})
process.send('ready')
