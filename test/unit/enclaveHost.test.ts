/**
 * The ecall channel's host side against a stand-in enclave process that answers every ecall
 * but one method, which it never answers (as an enclave that hangs; simulator seed 128): the
 * host reports that ecall once it has waited `slowEcallMs`, and not the answered ones.
 */
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { EnclaveHost } from '../../src/tee/enclaveHost.ts'

const STAND_IN = `
process.send({ ready: true })
process.on('message', (m) => {
  if (m.method === 'tick') return
  process.send({ id: m.id, ok: true, result: {}, outputs: [] })
})
process.on('disconnect', () => process.exit(0))
`

test('an ecall the enclave leaves unanswered is reported once, with its method and the ecalls pending', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'enclave-host-'))
  const bundlePath = join(dir, 'stand-in.mjs')
  writeFileSync(bundlePath, STAND_IN)
  const slow: Array<{ method: string; waitedMs: number; pending: number }> = []
  let reported: () => void = () => {}
  const firstReport = new Promise<void>((r) => {
    reported = r
  })
  const host = new EnclaveHost({
    bundlePath,
    slowEcallMs: 200,
    onSlowEcall: (method, waitedMs, pending) => {
      slow.push({ method, waitedMs, pending })
      reported()
    },
  })
  try {
    await host.start()
    const answered = await host.ecall('status', {})
    assert.deepEqual(answered.outputs, [])
    const hung = host.ecall('tick', { now: 1 })
    hung.catch(() => undefined)
    let bound: NodeJS.Timeout | undefined
    await Promise.race([
      firstReport,
      new Promise((_, reject) => {
        bound = setTimeout(() => reject(new Error('the unanswered ecall was not reported')), 5_000)
      }),
    ]).finally(() => clearTimeout(bound))
    // Answered ecalls made meanwhile and after are not reported.
    await host.ecall('status', {})
    await new Promise((r) => setTimeout(r, 400))
    assert.deepEqual(slow, [{ method: 'tick', waitedMs: 200, pending: 1 }])
  } finally {
    await host.stop()
    rmSync(dir, { recursive: true, force: true })
  }
})
