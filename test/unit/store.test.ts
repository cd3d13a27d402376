/**
 * The operator's sealed store: records appended through the open log come back in order, a
 * snapshot replaces the log (later appends start a new one), a torn last record is ignored, and
 * a second store on the same directory (a restarted operator) reads the same blobs and cuts a
 * torn tail off before it appends.
 */
import assert from 'node:assert/strict'
import { appendFileSync, mkdtempSync, rmSync } from 'node:fs'
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
