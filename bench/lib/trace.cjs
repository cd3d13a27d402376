/**
 * Timeline probe of the `anatomy` section, preloaded into the devnet's operator and enclave
 * processes with `NODE_OPTIONS=--require` (and loaded by the benchmark process itself). It records
 * when messages cross each process boundary: requests at the operator's API (HTTP or its WebSocket
 * API, `/v1/ws`: at low load one request per frame), peer WebSocket frames, ecalls entering and
 * answers leaving the enclave process, and the SDK's requests. Only names and timestamps are kept:
 * the method or message kind, never a payload. Nothing happens unless BENCH_TRACE_DIR is set; on
 * SIGUSR2 the process writes what it recorded since the last signal to
 * `$BENCH_TRACE_DIR/trace-<pid>.json` and starts afresh. In the process that loads it with
 * `require`, `take()` does the same and `stop()` / `start()` pause and resume the recording.
 */
'use strict'
const dir = process.env.BENCH_TRACE_DIR
if (dir) {
  const { writeFileSync } = require('node:fs')
  const { join } = require('node:path')
  const http = require('node:http')
  const { syncBuiltinESMExports } = require('node:module')

  /** Milliseconds on the machine's monotonic clock: one clock for every process on it. */
  const now = () => Number(process.hrtime.bigint()) / 1e6
  const MAX_EVENTS = 1_000_000
  let events = []
  let recording = true
  const record = (what, t = now()) => {
    if (recording && events.length < MAX_EVENTS) events.push([t, what])
  }
  const kinds = (outputs) =>
    Array.isArray(outputs)
      ? outputs.map((o) => (o?.envelope?.kind ? `${o.type}.${o.envelope.kind}` : o?.type)).join(',')
      : ''

  if (typeof process.send === 'function' && process.argv[1]?.includes('enclave')) {
    // The enclave process: ecalls in, answers out. A message on the ecall channel is one item
    // or several as `{ batch }` (the ecalls or responses of one event-loop turn); a run of `tx`
    // ecalls travels as one `{ txs }` item and a run of empty responses as one `{ oks }` item
    // (src/protocol/ecallWire.ts). Each item is recorded on its own, all at the message's time.
    const itemsOf = (msg) => (Array.isArray(msg?.batch) ? msg.batch : [msg])
    const emit = process.emit
    process.emit = function (name, msg, ...rest) {
      if (name === 'message') {
        const t = now()
        for (const item of itemsOf(msg)) {
          if (typeof item?.method === 'string') {
            const kind = item.params?.envelope?.kind
            record(`enclave in ${item.method}${kind ? ` ${kind}` : ''}`, t)
          } else if (item?.txs) record('enclave in tx', t)
        }
      }
      return emit.call(this, name, msg, ...rest)
    }
    const send = process.send.bind(process)
    process.send = (msg, ...rest) => {
      const t = now()
      for (const item of itemsOf(msg)) {
        if (item?.id !== 0) record(`enclave out ${kinds(item?.outputs) || '(no outputs)'}`, t)
      }
      return send(msg, ...rest)
    }
  } else {
    // Operators and the benchmark process: the HTTP API, the SDK's requests, peer frames.
    const serverEmit = http.Server.prototype.emit
    http.Server.prototype.emit = function (...args) {
      const [name, req, res] = args
      if (name === 'request' && req.method === 'POST') {
        const route = String(req.url).split('/').pop()
        record(`api in ${route}`)
        res.once('finish', () => record(`api out ${route}`))
      }
      return serverEmit.apply(this, args)
    }
    const request = http.request
    http.request = function (...args) {
      const [url, options] = args
      const req = request.apply(this, args)
      const path = url instanceof URL ? url.pathname : (url?.path ?? options?.path ?? '')
      if (String(path).endsWith('/tx')) {
        record('sdk request tx')
        req.once('response', (res) => res.once('end', () => record('sdk answer tx')))
      }
      return req
    }
    syncBuiltinESMExports()
    try {
      const resolved = require.resolve('ws', { paths: [process.cwd(), __dirname] })
      const WebSocket = require(resolved)
      // The users' WebSocket API (`/v1/ws`) is told apart from peer links by its path: a
      // client socket has its URL, a server socket is tagged with its upgrade request's.
      const route = Symbol('trace route')
      const { WebSocketServer } = require(resolved)
      const handleUpgrade = WebSocketServer.prototype.handleUpgrade
      WebSocketServer.prototype.handleUpgrade = function (req, socket, head, cb) {
        return handleUpgrade.call(this, req, socket, head, (ws, ...rest) => {
          ws[route] = String(req.url)
          return cb(ws, ...rest)
        })
      }
      const isApi = (ws) => String(ws[route] ?? ws.url ?? '').endsWith('/v1/ws')
      const send = WebSocket.prototype.send
      WebSocket.prototype.send = function (...args) {
        record(isApi(this) ? (this.url ? 'sdk request tx' : 'api out tx') : 'peer send')
        return send.apply(this, args)
      }
      const emit = WebSocket.prototype.emit
      WebSocket.prototype.emit = function (name, ...args) {
        if (name === 'message')
          record(isApi(this) ? (this.url ? 'sdk answer tx' : 'api in tx') : 'peer receive')
        return emit.call(this, name, ...args)
      }
    } catch {
      // No `ws` here: this process has no peer links.
    }
  }

  /** What was recorded since the last call, then starts afresh. */
  const take = () => {
    const out = events
    events = []
    return out
  }
  process.on('SIGUSR2', () =>
    writeFileSync(join(dir, `trace-${process.pid}.json`), JSON.stringify(take())),
  )
  /** Stops and resumes recording (the hooks stay in place and only pass calls through). */
  const stop = () => {
    recording = false
    events = []
  }
  const start = () => {
    recording = true
  }
  module.exports = { take, stop, start }
}
