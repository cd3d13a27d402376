/**
 * A fault-injecting TCP proxy in front of an operator node: everything users and peers send to
 * the operator's public URL passes through it (HTTP requests and peer WebSockets alike). With
 * seeded probabilities per chunk it holds data back or cuts the connection, losing a request
 * before it arrives or a response after the work was done.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { join } from 'node:path'
import { seededRandom } from '../../src/operator/faults.ts'

export type ProxyFaults = { cut: number; delay: number; maxDelayMs: number }

export type FaultyProxy = { port: number; close: () => Promise<void> }

/**
 * Finds secrets in a byte stream that arrives in chunks (a match may span two chunks): each
 * pattern is searched as raw bytes and as lowercase hex text, as it would appear in JSON.
 */
export class SecretScanner {
  private readonly patterns: Array<{ name: string; bytes: Buffer }> = []
  private longest = 1
  readonly found = new Set<string>()

  add(secrets: Array<{ name: string; bytes: Uint8Array }>): void {
    for (const s of secrets) {
      this.patterns.push({ name: s.name, bytes: Buffer.from(s.bytes) })
      this.patterns.push({ name: s.name, bytes: Buffer.from(Buffer.from(s.bytes).toString('hex')) })
    }
    this.longest = Math.max(1, ...this.patterns.map((x) => x.bytes.length))
  }

  /** A stream scanner: feed it chunks in order. */
  stream(where: string): (chunk: Buffer) => void {
    let tail = Buffer.alloc(0)
    return (chunk) => {
      const data = Buffer.concat([tail, chunk])
      this.scan(data, where)
      tail = data.subarray(Math.max(0, data.length - this.longest + 1))
    }
  }

  /** Scans every file under `dir` (logs, sealed blobs, identity). */
  scanDir(dir: string): void {
    for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
      if (!e.isFile()) continue
      const path = join(e.parentPath, e.name)
      this.scan(readFileSync(path), path)
    }
  }

  scan(data: Buffer, where: string): void {
    for (const x of this.patterns)
      if (data.includes(x.bytes)) this.found.add(`${x.name} in ${where}`)
  }
}

export async function startFaultyProxy(p: {
  targetPort: number
  seed: number
  faults: ProxyFaults
  count: (kind: string) => void
  scanner?: SecretScanner
  /** A network partition: connections from this remote address are cut while it holds. */
  blocked?: (remoteAddress: string) => boolean
}): Promise<FaultyProxy> {
  const random = seededRandom(p.seed)
  const sockets = new Set<Socket>()
  const server: Server = createServer((client) => {
    const remote = client.remoteAddress ?? ''
    if (p.blocked?.(remote)) {
      client.destroy()
      return
    }
    const upstream = connect(p.targetPort, '127.0.0.1')
    sockets.add(client)
    sockets.add(upstream)
    const cut = () => {
      client.destroy()
      upstream.destroy()
    }
    const relay = (from: Socket, to: Socket, direction: string) => {
      const scan = p.scanner?.stream(`traffic (${direction}s) of the operator on ${p.targetPort}`)
      from.on('data', (chunk) => {
        if (p.blocked?.(remote)) {
          cut()
          return
        }
        scan?.(chunk)
        if (random() < p.faults.cut) {
          p.count(`client-link-cut-${direction}`)
          cut()
          return
        }
        if (random() < p.faults.delay) {
          p.count('client-link-delay')
          from.pause()
          setTimeout(
            () => {
              if (!to.destroyed) to.write(chunk)
              from.resume()
            },
            Math.floor(random() * p.faults.maxDelayMs),
          )
          return
        }
        if (!to.destroyed) to.write(chunk)
      })
      from.on('end', () => to.end())
      from.on('error', cut)
      from.on('close', () => {
        sockets.delete(from)
        if (!to.destroyed) to.end()
      })
    }
    relay(client, upstream, 'request')
    relay(upstream, client, 'response')
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
  const port = (server.address() as { port: number }).port
  return {
    port,
    close: async () => {
      for (const s of sockets) s.destroy()
      await new Promise<void>((r) => server.close(() => r()))
    },
  }
}

/**
 * Where operator `i`, listening on `port` behind its proxy on `proxyPort`, is reached. Users
 * and peers use the public URL, through the proxy (half the operators are given one with a
 * trailing slash, as people type them). The devnet probes a restarted operator's health
 * directly: a partition may cut its proxy meanwhile (seed 34's restart timeout).
 */
export function operatorUrls(
  i: number,
  port: number,
  proxyPort: number,
): { publicUrl: string; healthUrl: string } {
  return {
    publicUrl: `http://127.0.0.1:${proxyPort}${i % 2 === 1 ? '/' : ''}`,
    healthUrl: `http://127.0.0.1:${port}`,
  }
}
