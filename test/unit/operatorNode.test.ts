/**
 * The operator node's handling of its enclave's outputs (src/operator/node.ts), driven directly:
 * a sealed record that cannot be persisted stops the node, and nothing the enclave says after it
 * leaves (a later ack or answer could rest on that record).
 */
import assert from 'node:assert/strict'
import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { test } from 'node:test'
import pino from 'pino'
import { OperatorNode } from '../../src/operator/node.ts'
import type { EnclaveOutput } from '../../src/protocol/index.ts'

/** The node's private parts this test drives. */
type Internals = {
  store: {
    append: (instance: bigint, blob: Uint8Array) => void
    instances: () => bigint[]
    blobs: (instance: bigint) => Uint8Array[]
  }
  host: {
    ecall: (method: string, params: { instance: bigint }) => Promise<unknown>
    stop: () => Promise<void>
  }
  handleOutputs: (outputs: EnclaveOutput[]) => void
  restoreInstances: () => Promise<void>
}

const log = (message: string): EnclaveOutput => ({
  type: 'log',
  level: 'info',
  message,
  fields: {},
})

/** A node on `dir` whose log lines are collected in `lines`; nothing started. */
function nodeOn(dir: string, lines: Array<{ level: number; msg: string; instance?: string }>) {
  const logger = pino(
    new Writable({
      write(chunk, _enc, done) {
        for (const l of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(l))
        done()
      },
    }),
  )
  return new OperatorNode({
    rpcUrl: 'http://127.0.0.1:1',
    manager: '0x0000000000000000000000000000000000000001',
    privateKey: `0x${'11'.repeat(32)}`,
    devAuthorityKey: `0x${'22'.repeat(32)}`,
    dataDir: dir,
    logger,
  })
}

test('an instance whose sealed state cannot be restored is logged and its files moved aside; the others are restored', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pose-node-'))
  const lines: Array<{ level: number; msg: string; instance?: string; filesMovedTo?: string }> = []
  const node = nodeOn(dir, lines)
  try {
    const n = node as unknown as Internals
    for (const id of [1n, 2n, 3n]) n.store.append(id, Uint8Array.of(Number(id)))
    const restored: bigint[] = []
    n.host = {
      ecall: async (method, params) => {
        assert.equal(method, 'restore')
        if (params.instance === 2n) throw new Error('OUT_OF_ORDER: update 5 after 7')
        restored.push(params.instance)
        return { result: { seq: 1n }, outputs: [] }
      },
      stop: async () => undefined,
    }
    await n.restoreInstances()
    assert.deepEqual(restored, [1n, 3n])
    const failed = lines.filter((l) => l.level === 50)
    assert.equal(failed.length, 1)
    assert.equal(failed[0]!.instance, '2')
    assert.match(failed[0]!.msg, /not restored/)
    // Kept, out of the way of the fresh state the enclave may seal for the instance.
    const aside = readdirSync(join(dir, 'instances')).filter((f) => f.startsWith('2.'))
    assert.equal(aside.length, 1)
    assert.equal(failed[0]!.filesMovedTo, join(dir, 'instances', aside[0]!))
    assert.deepEqual(n.store.instances(), [1n, 3n])
    assert.deepEqual(n.store.blobs(2n), [])
  } finally {
    await node.stop().finally(() => rmSync(dir, { recursive: true, force: true }))
  }
})

test('a sealed record that cannot be persisted stops the node, and no later output of its enclave leaves it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pose-node-'))
  const lines: Array<{ level: number; msg: string }> = []
  const node = nodeOn(dir, lines)
  const exitCode = process.exitCode
  try {
    const n = node as unknown as Internals
    const append = n.store.append.bind(n.store)
    n.store.append = () => {
      throw new Error('ENOSPC: no space left on device, write')
    }
    const seal: EnclaveOutput = {
      type: 'seal',
      instance: 7n,
      mode: 'append',
      blob: Uint8Array.of(1),
    }
    n.handleOutputs([log('before the record')])
    assert.throws(() => n.handleOutputs([seal, log('after the record')]), /ENOSPC/)
    // The disk is writable again; the enclave (which applied the update) says more: nothing of
    // it leaves, the node is stopping.
    n.store.append = append
    n.handleOutputs([log('a later ecall'), seal])
    const messages = lines.map((l) => l.msg)
    assert.ok(messages.includes('before the record'))
    assert.ok(!messages.includes('after the record'))
    assert.ok(!messages.includes('a later ecall'))
    const fatal = lines.find((l) => l.level === 50 && /could not be persisted/.test(l.msg))
    assert.ok(fatal, 'the failure is logged as an error')
    assert.equal(process.exitCode, 1)
  } finally {
    process.exitCode = exitCode
    await node.stop().finally(() => rmSync(dir, { recursive: true, force: true }))
  }
})
