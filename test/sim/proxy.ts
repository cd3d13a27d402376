/**
 * A fault-injecting TCP proxy in front of an operator node: everything users and peers send to
 * the operator's public URL passes through it (HTTP requests and peer WebSockets alike). With
 * seeded probabilities per chunk it holds data back or cuts the connection, losing a request
 * before it arrives or a response after the work was done.
 */
import { connect, createServer, type Server, type Socket } from 'node:net'
import { seededRandom } from '../../src/operator/faults.ts'

export type ProxyFaults = { cut: number; delay: number; maxDelayMs: number }

export type FaultyProxy = { port: number; close: () => Promise<void> }

export async function startFaultyProxy(p: {
  targetPort: number
  seed: number
  faults: ProxyFaults
  count: (kind: string) => void
}): Promise<FaultyProxy> {
  const random = seededRandom(p.seed)
  const sockets = new Set<Socket>()
  const server: Server = createServer((client) => {
    const upstream = connect(p.targetPort, '127.0.0.1')
    sockets.add(client)
    sockets.add(upstream)
    const cut = () => {
      client.destroy()
      upstream.destroy()
    }
    const relay = (from: Socket, to: Socket, direction: string) => {
      from.on('data', (chunk) => {
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

/** A port that was free a moment ago on loopback. */
export async function freePort(): Promise<number> {
  const s = createServer()
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()))
  const port = (s.address() as { port: number }).port
  await new Promise<void>((r) => s.close(() => r()))
  return port
}
