// Child process for the floor section: answers every message the way the enclave answers an
// ecall (an id, a result and one output of `answerBytes`), and reports its own CPU time when
// asked, so the parent can add both ends of the IPC channel.
process.on('message', (msg) => {
  if (msg === 'cpu') {
    process.send({ cpu: process.cpuUsage() })
    return
  }
  process.send({
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
  })
})
process.send('ready')
