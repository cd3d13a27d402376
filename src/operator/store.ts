/**
 * Persistence of sealed blobs (SPEC §7). The operator stores what its enclave sealed and can
 * read none of it. Per instance: one snapshot file (replaced atomically) and an append-only log
 * of length-prefixed records written after it.
 */

import { randomBytes } from 'node:crypto'
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { join } from 'node:path'

export class SealedStore {
  constructor(readonly dir: string) {
    mkdirSync(join(dir, 'instances'), { recursive: true })
  }

  /** The simulated platform secret of the dev TEE (created on first start). */
  platformSecret(): Uint8Array {
    const path = join(this.dir, 'platform-secret')
    if (!existsSync(path)) writeFileSync(path, randomBytes(32), { mode: 0o600 })
    const s = readFileSync(path)
    if (s.length !== 32)
      throw new Error(
        `${path}: expected 32 bytes, found ${s.length}; the data directory is damaged`,
      )
    return new Uint8Array(s)
  }

  readIdentity(): Uint8Array | undefined {
    const path = join(this.dir, 'identity.sealed')
    return existsSync(path) ? new Uint8Array(readFileSync(path)) : undefined
  }

  writeIdentity(blob: Uint8Array): void {
    this.atomicWrite(join(this.dir, 'identity.sealed'), blob)
  }

  private instanceDir(instance: bigint): string {
    const d = join(this.dir, 'instances', instance.toString())
    mkdirSync(d, { recursive: true })
    return d
  }

  private atomicWrite(path: string, data: Uint8Array): void {
    const tmp = `${path}.tmp`
    writeFileSync(tmp, data)
    renameSync(tmp, path)
  }

  /** A snapshot replaces the instance's snapshot and clears its log. */
  writeSnapshot(instance: bigint, blob: Uint8Array): void {
    const d = this.instanceDir(instance)
    this.atomicWrite(join(d, 'snapshot.sealed'), blob)
    rmSync(join(d, 'log.sealed'), { force: true })
  }

  append(instance: bigint, blob: Uint8Array): void {
    const header = Buffer.alloc(4)
    header.writeUInt32BE(blob.length)
    appendFileSync(join(this.instanceDir(instance), 'log.sealed'), Buffer.concat([header, blob]))
  }

  instances(): bigint[] {
    return readdirSync(join(this.dir, 'instances'))
      .filter((n) => /^[0-9]+$/.test(n))
      .map((n) => BigInt(n))
      .sort((a, b) => (a < b ? -1 : 1))
  }

  /** Blobs of an instance in order: the snapshot (if any), then every complete log record. */
  blobs(instance: bigint): Uint8Array[] {
    const d = this.instanceDir(instance)
    const out: Uint8Array[] = []
    const snap = join(d, 'snapshot.sealed')
    if (existsSync(snap)) out.push(new Uint8Array(readFileSync(snap)))
    const logPath = join(d, 'log.sealed')
    if (existsSync(logPath)) {
      const log = readFileSync(logPath)
      let off = 0
      // A record cut short by a crash mid-write is ignored: the enclave never acked it.
      while (off + 4 <= log.length) {
        const len = log.readUInt32BE(off)
        if (off + 4 + len > log.length) break
        out.push(new Uint8Array(log.subarray(off + 4, off + 4 + len)))
        off += 4 + len
      }
    }
    return out
  }
}
