/**
 * Persistence of sealed blobs (SPEC §7). The operator stores what its enclave sealed and can
 * read none of it. Per instance: one snapshot file and an append-only log of length-prefixed
 * records written after it, both named by a generation that each snapshot raises
 * (`snapshot.<n>.sealed`, `log.<n>.sealed`; generation 0 is `snapshot.sealed` and `log.sealed`).
 * A new snapshot is written under the next generation and renamed into place before the old
 * generation's files are removed, so a crash at any point leaves either the old snapshot with its
 * log or the new snapshot alone: never a snapshot followed by an older log, which its enclave
 * could not restore. Snapshots reach stable storage before the files they replace are removed;
 * appended records are not synced (durability comes from the pool's replication, decision 0021).
 */

import { randomBytes } from 'node:crypto'
import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  truncateSync,
  writeFileSync,
  writeSync,
} from 'node:fs'
import { dirname, join } from 'node:path'

export class SealedStore {
  /** Instance directories known to exist, and each instance's open log (append mode). */
  private readonly dirs = new Set<string>()
  private readonly logs = new Map<string, number>()
  /** Each instance's current generation, once its directory was read. */
  private readonly gens = new Map<string, number>()

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
    if (!this.dirs.has(d)) {
      mkdirSync(d, { recursive: true })
      this.dirs.add(d)
    }
    return d
  }

  private closeLog(instance: bigint): void {
    const fd = this.logs.get(instance.toString())
    if (fd === undefined) return
    this.logs.delete(instance.toString())
    closeSync(fd)
  }

  /** Closes every open log (a stopped node; appends after this reopen them). */
  close(): void {
    for (const fd of this.logs.values()) closeSync(fd)
    this.logs.clear()
  }

  /**
   * Writes `path` whole or not at all, on stable storage before it is in place, and in place on
   * stable storage (the directory synced) before this returns: a snapshot's caller removes the
   * files it replaces next (docs/decisions/0021).
   */
  private atomicWrite(path: string, data: Uint8Array): void {
    const tmp = `${path}.tmp`
    const fd = openSync(tmp, 'w')
    try {
      let off = 0
      while (off < data.length) off += writeSync(fd, data, off)
      fsyncSync(fd)
    } finally {
      closeSync(fd)
    }
    renameSync(tmp, path)
    const dir = openSync(dirname(path), 'r')
    try {
      fsyncSync(dir)
    } finally {
      closeSync(dir)
    }
  }

  /**
   * The instance's current generation: the highest with a snapshot (0 without one). Files of
   * older generations (left by a crash between a snapshot's rename and their removal) and
   * unfinished snapshots are removed when it is first read.
   */
  private generation(instance: bigint): number {
    const key = instance.toString()
    const known = this.gens.get(key)
    if (known !== undefined) return known
    const d = this.instanceDir(instance)
    const names = readdirSync(d)
    let gen = 0
    for (const n of names) {
      const g = fileGeneration(n, 'snapshot')
      if (g !== undefined && g > gen) gen = g
    }
    for (const n of names) {
      const g = fileGeneration(n, 'snapshot') ?? fileGeneration(n, 'log')
      if ((g !== undefined && g < gen) || n.endsWith('.tmp')) rmSync(join(d, n), { force: true })
    }
    this.gens.set(key, gen)
    return gen
  }

  /** A snapshot replaces the instance's snapshot and clears its log. */
  writeSnapshot(instance: bigint, blob: Uint8Array): void {
    const d = this.instanceDir(instance)
    const old = this.generation(instance)
    // The new generation's snapshot in place is the commit point; the old files go after it.
    this.atomicWrite(join(d, fileName('snapshot', old + 1)), blob)
    this.gens.set(instance.toString(), old + 1)
    this.closeLog(instance)
    rmSync(join(d, fileName('log', old)), { force: true })
    rmSync(join(d, fileName('snapshot', old)), { force: true })
  }

  /** Appends one length-prefixed record in a single write to the instance's open log. */
  append(instance: bigint, blob: Uint8Array): void {
    const key = instance.toString()
    let fd = this.logs.get(key)
    if (fd === undefined) {
      const path = join(this.instanceDir(instance), fileName('log', this.generation(instance)))
      // A record cut short by a crash would hide every record appended after it: cut it off.
      if (existsSync(path)) {
        const log = readFileSync(path)
        const complete = completeLength(log)
        if (complete < log.length) truncateSync(path, complete)
      }
      fd = openSync(path, 'a')
      this.logs.set(key, fd)
    }
    const record = Buffer.allocUnsafe(4 + blob.length)
    record.writeUInt32BE(blob.length, 0)
    record.set(blob, 4)
    let off = 0
    try {
      while (off < record.length) off += writeSync(fd, record, off)
    } catch (e) {
      // Part of the record may be on disk: the log is reopened by the next append, which cuts
      // the torn record off first (records after it would be hidden by it).
      this.closeLog(instance)
      throw e
    }
  }

  /**
   * Moves an instance's files aside (`instances/<id>.unrestorable-<ms>`): kept for the operator
   * to look at, and out of the way of the fresh state its enclave may seal for the instance.
   * Returns where they went.
   */
  setAside(instance: bigint): string {
    const key = instance.toString()
    this.closeLog(instance)
    const d = join(this.dir, 'instances', key)
    const aside = `${d}.unrestorable-${Date.now()}`
    renameSync(d, aside)
    this.dirs.delete(d)
    this.gens.delete(key)
    return aside
  }

  /**
   * Keeps only the first `count` of the instance's blobs (as `blobs` lists them: the snapshot,
   * then the log's records): the log is cut after the records kept. For records its enclave
   * could not open (a power loss's tail), which would otherwise stand before every record
   * appended after them.
   */
  keepBlobs(instance: bigint, count: number): void {
    const d = this.instanceDir(instance)
    const gen = this.generation(instance)
    const hasSnapshot = existsSync(join(d, fileName('snapshot', gen)))
    const records = count - (hasSnapshot ? 1 : 0)
    const logPath = join(d, fileName('log', gen))
    if (records < 0 || !existsSync(logPath)) return
    this.closeLog(instance)
    const log = readFileSync(logPath)
    let kept = 0
    let length = 0
    completeLength(log, (record) => {
      if (kept < records) {
        kept++
        length += 4 + record.length
      }
    })
    if (length < log.length) truncateSync(logPath, length)
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
    const gen = this.generation(instance)
    const out: Uint8Array[] = []
    const snap = join(d, fileName('snapshot', gen))
    if (existsSync(snap)) out.push(new Uint8Array(readFileSync(snap)))
    const logPath = join(d, fileName('log', gen))
    if (existsSync(logPath)) {
      const log = readFileSync(logPath)
      // A record cut short by a crash mid-write is ignored: the enclave never acked it.
      completeLength(log, (record) => out.push(new Uint8Array(record)))
    }
    return out
  }
}

/** A generation's snapshot or log file (generation 0 keeps the names without a number). */
function fileName(kind: 'snapshot' | 'log', gen: number): string {
  return gen === 0 ? `${kind}.sealed` : `${kind}.${gen}.sealed`
}

/** The generation a file of `kind` belongs to, or undefined when it is not one. */
function fileGeneration(name: string, kind: 'snapshot' | 'log'): number | undefined {
  if (name === `${kind}.sealed`) return 0
  const m = new RegExp(`^${kind}\\.([1-9][0-9]{0,8})\\.sealed$`).exec(name)
  return m ? Number(m[1]) : undefined
}

/** The length of the log's complete length-prefixed records, each passed to `each` in order. */
function completeLength(log: Buffer, each?: (record: Buffer) => void): number {
  let off = 0
  while (off + 4 <= log.length) {
    const len = log.readUInt32BE(off)
    if (off + 4 + len > log.length) break
    each?.(log.subarray(off + 4, off + 4 + len))
    off += 4 + len
  }
  return off
}
