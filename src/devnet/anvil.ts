/**
 * Embedded anvil (from the `@foundry-rs/anvil` npm package) on a free loopback port. Used by
 * the devnet, the tests and the benchmarks; never by production paths.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { killOnExit } from './children.ts'

export type Anvil = { url: string; port: number; process: ChildProcess; stop: () => Promise<void> }

export function anvilBinary(): string {
  const require = createRequire(import.meta.url)
  const pkg = `@foundry-rs/anvil-${process.platform}-${process.arch === 'x64' ? 'amd64' : process.arch}`
  return join(dirname(require.resolve(`${pkg}/package.json`)), 'bin', 'anvil')
}

/**
 * Ports below Linux's ephemeral range (32768–60999): the kernel never hands these to outbound
 * connections or to `listen(0)`, so a port reserved here for a process started a little later
 * is not taken by some connection in between.
 */
const RESERVABLE_FROM = 20_000
const RESERVABLE_TO = 32_000

function canListen(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer()
    srv.once('error', () => resolve(false))
    srv.listen(port, host, () => srv.close(() => resolve(true)))
  })
}

/**
 * Ports this process handed out and when: a port is free until the process it was reserved for
 * binds it, so without this two reservations made before either process starts could get the
 * same port (a devnet start-up failed with EADDRINUSE that way).
 */
const handedOut = new Map<number, number>()
const HANDED_OUT_MS = 10 * 60_000

/** A loopback port that is free now and stays free until a process of ours binds it. */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const now = Date.now()
  for (const [port, at] of handedOut) if (now - at > HANDED_OUT_MS) handedOut.delete(port)
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = RESERVABLE_FROM + Math.floor(Math.random() * (RESERVABLE_TO - RESERVABLE_FROM))
    if (handedOut.has(port)) continue
    if (await canListen(port, host)) {
      handedOut.set(port, now)
      return port
    }
  }
  throw new Error(`no free port between ${RESERVABLE_FROM} and ${RESERVABLE_TO} on ${host}`)
}

export type AnvilOptions = {
  port?: number
  /** Interval mining in seconds on top of automine (so time-based steps progress). */
  blockTime?: number
  chainId?: number
  /** The anvil executable (default: the one of the `@foundry-rs/anvil` package; tests). */
  binary?: string
}

/** Cache directories of the anvils this process started and has not stopped yet. */
const cacheDirs = new Set<string>()
let cacheCleanupInstalled = false

/**
 * A directory of its own for the states an anvil moves out of memory (`--cache-path`), removed
 * when it stops or when this process exits. Anvil's default, `~/.foundry/anvil/tmp`, is never
 * cleaned: it keeps a directory per anvil that ran long enough (hundreds of MiB after a
 * benchmark's saturation runs; 460 of them had filled 78 GB of one machine's disk).
 */
function anvilCacheDir(): string {
  if (!cacheCleanupInstalled) {
    cacheCleanupInstalled = true
    // An anvil still running at exit is killed by `killOnExit`; its directory goes here.
    process.once('exit', () => {
      for (const dir of cacheDirs) removeCacheDir(dir)
    })
  }
  const dir = mkdtempSync(join(tmpdir(), 'pose-anvil-'))
  cacheDirs.add(dir)
  return dir
}

function removeCacheDir(dir: string): void {
  cacheDirs.delete(dir)
  rmSync(dir, { recursive: true, force: true })
}

export async function startAnvil(opts: AnvilOptions = {}): Promise<Anvil> {
  const port = opts.port ?? (await freePort())
  const cacheDir = anvilCacheDir()
  const args = [
    '--cache-path',
    cacheDir,
    '--host',
    '127.0.0.1',
    '--port',
    String(port),
    '--silent',
    '--chain-id',
    String(opts.chainId ?? 31337),
  ]
  if (opts.blockTime) args.push('--block-time', String(opts.blockTime), '--mixed-mining')
  let binary: string
  try {
    binary = opts.binary ?? anvilBinary()
  } catch (e) {
    removeCacheDir(cacheDir)
    throw new Error(
      `anvil could not be started: its npm package for ${process.platform}-${process.arch} is not installed (${(e as Error).message.split('\n')[0]}); run \`npm ci\``,
    )
  }
  const child = killOnExit(spawn(binary, args, { stdio: ['ignore', 'ignore', 'pipe'] }))
  // A binary that is missing or not executable fails the spawn with an 'error' event (and no
  // 'exit'); without a listener it would end this process with an unhandled error.
  let spawnError: Error | undefined
  child.once('error', (e) => {
    spawnError = e
    removeCacheDir(cacheDir)
  })
  child.once('exit', () => removeCacheDir(cacheDir))
  let stderr = ''
  child.stderr?.on('data', (d) => {
    stderr = (stderr + d.toString()).slice(-4000)
  })
  const url = `http://127.0.0.1:${port}`
  const deadline = Date.now() + 15_000
  for (;;) {
    if (spawnError) throw new Error(`anvil could not be started: ${spawnError.message} (${binary})`)
    if (child.exitCode !== null || child.signalCode !== null)
      throw new Error(
        `anvil exited with ${child.exitCode !== null ? `code ${child.exitCode}` : child.signalCode} while starting: ${stderr}`,
      )
    try {
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_chainId', params: [] }),
      })
      if (res.ok) break
    } catch {}
    if (Date.now() > deadline) {
      child.kill('SIGKILL')
      throw new Error(`anvil did not answer on ${url} within 15 s`)
    }
    await new Promise((r) => setTimeout(r, 50))
  }
  return {
    url,
    port,
    process: child,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve()
        child.once('exit', () => resolve())
        child.kill('SIGTERM')
        setTimeout(() => child.kill('SIGKILL'), 3000).unref()
      }),
  }
}

/** Calls an anvil JSON-RPC method (time controls, balances). */
export async function anvilRpc(
  url: string,
  method: string,
  params: unknown[] = [],
): Promise<unknown> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
  })
  const json = (await res.json()) as { result?: unknown; error?: { message: string } }
  if (json.error) throw new Error(`${method}: ${json.error.message}`)
  return json.result
}
