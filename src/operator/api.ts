/**
 * The operator's HTTP API for users (SPEC §2): encrypted transactions, view calls and deploys
 * are passed to the enclave as opaque boxes; answers come back sealed to the user. Every error
 * is a JSON body `{ error: { code, message } }` with a matching HTTP status.
 */
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify'
import {
  bytesToHex,
  type ErrorCode,
  hexToBytes,
  isHex,
  LIMITS,
  ProtocolError,
} from '../protocol/index.ts'

export interface ApiBackend {
  info(): Record<string, unknown>
  deploy(
    instance: bigint,
    box: Uint8Array,
  ): Promise<{ contractEncryptionKey: Uint8Array; genesisDigest: Uint8Array }>
  request(kind: 'tx' | 'view', instance: bigint, box: Uint8Array): Promise<Uint8Array>
  digest(instance: bigint): Promise<{ role: string; seq: bigint; digest: Uint8Array }>
  status(): Promise<unknown>
  /** Counts of injected link faults when the simulator enabled them. */
  faults?(): Record<string, number>
  /** A host-side error (not a protocol error) that a client was told only was internal. */
  internalError?(e: unknown): void
}

/** What a client is told of an internal error of the operator's own (details are in its log). */
export const INTERNAL_ERROR_MESSAGE = "internal error in the operator (see the operator's log)"

/**
 * The error a client is sent: a protocol error as it is (the enclave's included); anything else
 * (a host-side failure such as a file write, whose message may name paths) as a bare INTERNAL,
 * handed to `report` with its details for the operator's log.
 */
export function publicError(e: unknown, report?: (e: unknown) => void): ProtocolError {
  if (e instanceof ProtocolError) return e
  report?.(e)
  return new ProtocolError('INTERNAL', INTERNAL_ERROR_MESSAGE)
}

/** The HTTP status of each error code (every code has one: a new code must be placed here). */
const STATUS: Record<ErrorCode, number> = {
  MALFORMED: 400,
  OUT_OF_RANGE: 400,
  OVERSIZED: 413,
  BAD_SIGNATURE: 400,
  DECRYPTION_FAILED: 400,
  BAD_NONCE: 409,
  REPLAYED: 409,
  // A session authorisation past its time: the SDK signs the transaction itself and resends.
  EXPIRED: 401,
  UNKNOWN_INSTANCE: 404,
  WRONG_ROLE: 421,
  WRONG_PHASE: 409,
  NOT_READY: 503,
  STALE_EVENT: 409,
  OUT_OF_ORDER: 409,
  COMMITMENT_MISMATCH: 400,
  TIMEOUT: 504,
  UNAVAILABLE: 503,
  INTERNAL: 500,
}

function sendError(reply: FastifyReply, e: unknown, report?: (e: unknown) => void) {
  const err = publicError(e, report)
  return reply.code(STATUS[err.code] ?? 500).send({ error: err.toObject() })
}

function parseInstance(raw: unknown): bigint {
  if (typeof raw !== 'string' || !/^[1-9][0-9]{0,76}$/.test(raw)) {
    throw new ProtocolError('MALFORMED', 'instance: expected a positive decimal id in the path')
  }
  return BigInt(raw)
}

function parseBox(body: unknown, max: number): Uint8Array {
  if (typeof body !== 'object' || body === null || !('box' in body)) {
    throw new ProtocolError('MALFORMED', 'body: expected JSON { "box": "0x..." }')
  }
  const box = (body as { box: unknown }).box
  if (!isHex(box)) throw new ProtocolError('MALFORMED', 'box: expected 0x-prefixed hex')
  if ((box.length - 2) / 2 > max)
    throw new ProtocolError('OVERSIZED', `box: larger than ${max} bytes`)
  return hexToBytes(box, 'box')
}

export function createApi(backend: ApiBackend): FastifyInstance {
  const app = Fastify({ logger: false, bodyLimit: LIMITS.maxHttpBodyBytes })
  const report = backend.internalError?.bind(backend)

  app.setErrorHandler((error, _req, reply) => {
    const e = error as { statusCode?: number; code?: string; message?: string }
    if (e.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      return reply.code(413).send({
        error: { name: 'ProtocolError', code: 'OVERSIZED', message: 'request body too large' },
      })
    }
    if (e.statusCode && e.statusCode < 500) {
      return reply.code(e.statusCode).send({
        error: { name: 'ProtocolError', code: 'MALFORMED', message: e.message ?? 'bad request' },
      })
    }
    return sendError(reply, error, report)
  })

  app.setNotFoundHandler((req, reply) =>
    reply.code(404).send({
      error: {
        name: 'ProtocolError',
        code: 'MALFORMED',
        message: `no route ${req.method} ${req.url.slice(0, 100)}`,
      },
    }),
  )

  app.get('/v1/health', async () => {
    const faults = backend.faults?.()
    return faults ? { ok: true, faults } : { ok: true }
  })
  app.get('/v1/info', async () => backend.info())
  app.get('/v1/status', async (_req, reply) => {
    try {
      return await backend.status()
    } catch (e) {
      return sendError(reply, e, report)
    }
  })

  app.post('/v1/instances/:id/deploy', async (req, reply) => {
    try {
      const id = parseInstance((req.params as { id?: unknown }).id)
      const r = await backend.deploy(id, parseBox(req.body, LIMITS.maxDeployBoxBytes))
      return {
        contractEncryptionKey: bytesToHex(r.contractEncryptionKey),
        genesisDigest: bytesToHex(r.genesisDigest),
      }
    } catch (e) {
      return sendError(reply, e, report)
    }
  })

  for (const kind of ['tx', 'view'] as const) {
    app.post(`/v1/instances/:id/${kind}`, async (req, reply) => {
      try {
        const id = parseInstance((req.params as { id?: unknown }).id)
        const sealed = await backend.request(kind, id, parseBox(req.body, LIMITS.maxTxBoxBytes))
        return { sealed: bytesToHex(sealed) }
      } catch (e) {
        return sendError(reply, e, report)
      }
    })
  }

  app.get('/v1/instances/:id/digest', async (req, reply) => {
    try {
      const r = await backend.digest(parseInstance((req.params as { id?: unknown }).id))
      return { role: r.role, seq: r.seq.toString(), digest: bytesToHex(r.digest) }
    } catch (e) {
      return sendError(reply, e, report)
    }
  })

  return app
}
