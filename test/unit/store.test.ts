/**
 * The operator's sealed store: records appended through the open log come back in order, a
 * snapshot replaces the log (later appends start a new one), a torn last record is ignored, and
 * a second store on the same directory (a restarted operator) reads the same blobs and cuts a
 * torn tail off before it appends.
 */
import assert from 'node:assert/strict'
import fs, { appendFileSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { syncBuiltinESMExports } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import fc from 'fast-check'
import { SealedStore } from '../../src/operator/store.ts'

const hexes = (blobs: Uint8Array[]) => blobs.map((b) => Buffer.from(b).toString('hex'))

test('sealed store: appends, snapshots, torn records and a restart', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pose-store-'))
  try {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.record({
              op: fc.constant('append' as const),
              blob: fc.uint8Array({ maxLength: 300 }),
            }),
            fc.record({
              op: fc.constant('snapshot' as const),
              blob: fc.uint8Array({ maxLength: 300 }),
            }),
            fc.record({ op: fc.constant('close' as const) }),
          ),
          { maxLength: 30 },
        ),
        fc.bigInt({ min: 1n, max: 1000n }),
        (ops, instance) => {
          const sub = mkdtempSync(join(dir, 'case-'))
          const store = new SealedStore(sub)
          // The model: the latest snapshot, then every record appended after it.
          let expected: Uint8Array[] = []
          for (const o of ops) {
            if (o.op === 'append') {
              store.append(instance, o.blob)
              expected.push(o.blob)
            } else if (o.op === 'snapshot') {
              store.writeSnapshot(instance, o.blob)
              expected = [o.blob]
            } else store.close()
          }
          assert.deepEqual(hexes(store.blobs(instance)), hexes(expected))
          // A restarted operator reads the same, and its appends follow on.
          const again = new SealedStore(sub)
          assert.deepEqual(hexes(again.blobs(instance)), hexes(expected))
          again.append(instance, Uint8Array.of(7, 7))
          assert.deepEqual(hexes(again.blobs(instance)), hexes([...expected, Uint8Array.of(7, 7)]))
          store.close()
          again.close()
          return true
        },
      ),
      { numRuns: 100 },
    )
    // A record cut short by a crash mid-write is ignored; the complete ones before it are read.
    const store = new SealedStore(join(dir, 'torn'))
    store.append(5n, Uint8Array.of(1, 2, 3))
    appendFileSync(join(dir, 'torn', 'instances', '5', 'log.sealed'), Buffer.from([0, 0, 0, 9, 1]))
    assert.deepEqual(hexes(store.blobs(5n)), ['010203'])
    assert.deepEqual(store.instances(), [5n])
    store.close()
    // A restarted operator cuts the torn record off before it appends, so what it appends next
    // is read back (not hidden behind the torn bytes).
    const restarted = new SealedStore(join(dir, 'torn'))
    restarted.append(5n, Uint8Array.of(4))
    assert.deepEqual(hexes(restarted.blobs(5n)), ['010203', '04'])
    restarted.close()
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('sealed store: a crash after a new snapshot was put in place, before the old log was removed, leaves the new snapshot alone', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pose-store-'))
  try {
    const store = new SealedStore(dir)
    store.writeSnapshot(3n, Uint8Array.of(1))
    store.append(3n, Uint8Array.of(2))
    store.close()
    // The next snapshot's file in place, as `writeSnapshot` leaves it at its commit point; the
    // process died before it removed the older generation's snapshot and log.
    const inst = join(dir, 'instances', '3')
    const older = ['snapshot.1.sealed', 'log.1.sealed']
    for (const f of older) assert.ok(existsSync(join(inst, f)), f)
    writeFileSync(join(inst, 'snapshot.2.sealed'), Uint8Array.of(9))
    const restarted = new SealedStore(dir)
    assert.deepEqual(hexes(restarted.blobs(3n)), ['09'], 'the new snapshot, without the older log')
    for (const f of older) assert.ok(!existsSync(join(inst, f)), `${f} removed`)
    restarted.append(3n, Uint8Array.of(4))
    assert.deepEqual(hexes(new SealedStore(dir).blobs(3n)), ['09', '04'])
    restarted.close()
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('sealed store: an append that fails part-way (a full disk) hides none of the records appended after it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pose-store-'))
  const writeSync = fs.writeSync
  try {
    const store = new SealedStore(dir)
    store.append(4n, Uint8Array.of(1, 1))
    // The next write puts half a record on disk and fails.
    fs.writeSync = ((fd: number, buffer: Uint8Array, offset?: number) => {
      writeSync(fd, buffer, offset ?? 0, Math.floor(buffer.length / 2))
      throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' })
    }) as unknown as typeof fs.writeSync
    syncBuiltinESMExports()
    assert.throws(() => store.append(4n, Uint8Array.of(2, 2, 2, 2)), /ENOSPC/)
    fs.writeSync = writeSync
    syncBuiltinESMExports()
    store.append(4n, Uint8Array.of(3))
    assert.deepEqual(hexes(store.blobs(4n)), ['0101', '03'])
    store.close()
  } finally {
    fs.writeSync = writeSync
    syncBuiltinESMExports()
    rmSync(dir, { recursive: true, force: true })
  }
})

test('sealed store: a snapshot is on stable storage, file and directory, before the files it replaces are removed', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pose-store-'))
  const { fsyncSync, rmSync: rm } = fs
  const calls: string[] = []
  try {
    const store = new SealedStore(dir)
    store.append(6n, Uint8Array.of(1))
    fs.fsyncSync = ((fd: number) => {
      calls.push('fsync')
      fsyncSync(fd)
    }) as typeof fs.fsyncSync
    fs.rmSync = ((path: string, o?: Parameters<typeof rm>[1]) => {
      calls.push(`rm ${path.split('/').at(-1)}`)
      rm(path, o)
    }) as typeof fs.rmSync
    syncBuiltinESMExports()
    store.writeSnapshot(6n, Uint8Array.of(2))
    assert.deepEqual(calls, ['fsync', 'fsync', 'rm log.sealed', 'rm snapshot.sealed'])
    store.close()
  } finally {
    fs.fsyncSync = fsyncSync
    fs.rmSync = rm
    syncBuiltinESMExports()
    rmSync(dir, { recursive: true, force: true })
  }
})

test('sealed store: keepBlobs cuts the log after the blobs kept, with or without a snapshot, and appends follow them', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pose-store-'))
  try {
    const store = new SealedStore(dir)
    for (const b of [1, 2, 3]) store.append(1n, Uint8Array.of(b))
    store.keepBlobs(1n, 1)
    assert.deepEqual(hexes(store.blobs(1n)), ['01'])
    store.append(1n, Uint8Array.of(4))
    assert.deepEqual(hexes(store.blobs(1n)), ['01', '04'])
    store.writeSnapshot(2n, Uint8Array.of(0))
    for (const b of [1, 2]) store.append(2n, Uint8Array.of(b))
    store.keepBlobs(2n, 1)
    assert.deepEqual(hexes(store.blobs(2n)), ['00'])
    store.keepBlobs(2n, 5)
    assert.deepEqual(hexes(store.blobs(2n)), ['00'], 'keeping more than there is changes nothing')
    store.close()
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
