/** The operator's HTTP boundary: every malformed request gets a typed error, none reaches the enclave. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import fc from 'fast-check'
import { createApi, INTERNAL_ERROR_MESSAGE } from '../../src/operator/api.ts'
import { ERROR_CODES, LIMITS, ProtocolError } from '../../src/protocol/index.ts'

function backend() {
  const calls: string[] = []
  return {
    calls,
    api: createApi({
      info: () => ({ ok: true }),
      deploy: async () => {
        calls.push('deploy')
        return { contractEncryptionKey: new Uint8Array(32), genesisDigest: new Uint8Array(32) }
      },
      request: async (kind, _instance, box) => {
        calls.push(kind)
        if (box.length === 1) throw new ProtocolError('DECRYPTION_FAILED', 'box: too short')
        return new Uint8Array([1, 2])
      },
      digest: async () => ({ role: 'executor', seq: 3n, digest: new Uint8Array(32) }),
      status: async () => ({ instances: [] }),
    }),
  }
}

test('well-formed requests reach the backend and answer with hex', async () => {
  const { api, calls } = backend()
  const r = await api.inject({
    method: 'POST',
    url: '/v1/instances/7/tx',
    payload: { box: '0x0102' },
  })
  assert.equal(r.statusCode, 200)
  assert.deepEqual(r.json(), { sealed: '0x0102' })
  const d = await api.inject({ method: 'GET', url: '/v1/instances/7/digest' })
  assert.equal(d.json().seq, '3')
  assert.deepEqual(calls, ['tx'])
})

test('malformed requests are refused with typed errors and never reach the backend', async () => {
  const { api, calls } = backend()
  const cases: Array<{ url: string; payload: string; code: string; status: number }> = [
    { url: '/v1/instances/7/tx', payload: '{', code: 'MALFORMED', status: 400 },
    { url: '/v1/instances/7/tx', payload: '[]', code: 'MALFORMED', status: 400 },
    { url: '/v1/instances/7/tx', payload: '{"box":12}', code: 'MALFORMED', status: 400 },
    { url: '/v1/instances/7/tx', payload: '{"box":"0x0"}', code: 'MALFORMED', status: 400 },
    { url: '/v1/instances/0/tx', payload: '{"box":"0x00"}', code: 'MALFORMED', status: 400 },
    { url: '/v1/instances/-1/view', payload: '{"box":"0x00"}', code: 'MALFORMED', status: 400 },
    {
      url: `/v1/instances/${'9'.repeat(100)}/tx`,
      payload: '{"box":"0x00"}',
      code: 'MALFORMED',
      status: 400,
    },
    {
      url: '/v1/instances/7/tx',
      payload: JSON.stringify({ box: `0x${'00'.repeat(200_000)}` }),
      code: 'OVERSIZED',
      status: 413,
    },
    {
      url: '/v1/instances/7/tx',
      payload: JSON.stringify({ box: `0x${'00'.repeat(1_100_000)}` }),
      code: 'OVERSIZED',
      status: 413,
    },
  ]
  for (const c of cases) {
    const r = await api.inject({
      method: 'POST',
      url: c.url,
      payload: c.payload,
      headers: { 'content-type': 'application/json' },
    })
    assert.equal(
      r.statusCode,
      c.status,
      `${c.url} ${c.payload.slice(0, 30)}: ${r.body.slice(0, 200)}`,
    )
    assert.equal(r.json().error.code, c.code, c.payload.slice(0, 30))
  }
  assert.deepEqual(calls, [])
  const r = await api.inject({
    method: 'POST',
    url: '/v1/instances/7/tx',
    payload: { box: '0x01' },
  })
  assert.equal(r.statusCode, 400)
  assert.equal(r.json().error.code, 'DECRYPTION_FAILED')
})

test('a deploy box of the largest size fits in a request body; one byte more is OVERSIZED', async () => {
  const { api, calls } = backend()
  const deploy = (bytes: number) =>
    api.inject({
      method: 'POST',
      url: '/v1/instances/7/deploy',
      payload: JSON.stringify({ box: `0x${'ab'.repeat(bytes)}` }),
      headers: { 'content-type': 'application/json' },
    })
  const fits = await deploy(LIMITS.maxDeployBoxBytes)
  assert.equal(fits.statusCode, 200, fits.body.slice(0, 200))
  assert.deepEqual(calls, ['deploy'])
  const over = await deploy(LIMITS.maxDeployBoxBytes + 1)
  assert.equal(over.statusCode, 413)
  assert.equal(over.json().error.code, 'OVERSIZED')
  assert.deepEqual(calls, ['deploy'])
})

test('every error code has its own HTTP status; only INTERNAL is a 5xx of ours', async () => {
  for (const code of ERROR_CODES) {
    const api = createApi({
      info: () => ({}),
      deploy: async () => {
        throw new ProtocolError(code, 'no')
      },
      request: async () => {
        throw new ProtocolError(code, `refused: ${code}`)
      },
      digest: async () => ({ role: 'executor', seq: 0n, digest: new Uint8Array(32) }),
      status: async () => ({}),
    })
    const r = await api.inject({
      method: 'POST',
      url: '/v1/instances/7/tx',
      payload: { box: '0x0102' },
    })
    assert.equal(r.json().error.code, code)
    const server = r.statusCode >= 500 && r.statusCode !== 503 && r.statusCode !== 504
    assert.equal(server, code === 'INTERNAL', `${code}: ${r.statusCode}`)
    if (code === 'EXPIRED') assert.equal(r.statusCode, 401)
  }
})

test("a host-side error reaches the client as a bare INTERNAL; its details go to the operator's log", async () => {
  const reported: unknown[] = []
  const api = createApi({
    info: () => ({}),
    deploy: async () => {
      throw new Error('EACCES: permission denied, open /srv/pose/data/instances/7/log.sealed')
    },
    request: async () => {
      throw new ProtocolError('INTERNAL', 'update 5: state digest differs from the executor')
    },
    digest: async () => ({ role: 'executor', seq: 0n, digest: new Uint8Array(32) }),
    status: async () => ({}),
    internalError: (e) => reported.push(e),
  })
  const deploy = await api.inject({
    method: 'POST',
    url: '/v1/instances/7/deploy',
    payload: { box: '0x0102' },
  })
  assert.equal(deploy.statusCode, 500)
  assert.deepEqual(deploy.json().error, {
    name: 'ProtocolError',
    code: 'INTERNAL',
    message: INTERNAL_ERROR_MESSAGE,
  })
  assert.doesNotMatch(deploy.body, /srv|EACCES/)
  assert.equal(reported.length, 1)
  assert.match((reported[0] as Error).message, /EACCES/)
  // A protocol error, the enclave's INTERNAL included, keeps its message.
  const tx = await api.inject({
    method: 'POST',
    url: '/v1/instances/7/tx',
    payload: { box: '0x01' },
  })
  assert.equal(tx.json().error.message, 'update 5: state digest differs from the executor')
  assert.equal(reported.length, 1)
})

test('arbitrary bodies never produce a 5xx or an untyped error', async () => {
  const { api } = backend()
  await fc.assert(
    fc.asyncProperty(
      fc.oneof(fc.json(), fc.string(), fc.constant('')),
      fc.constantFrom('tx', 'view', 'deploy'),
      async (body, kind) => {
        const r = await api.inject({
          method: 'POST',
          url: `/v1/instances/1/${kind}`,
          payload: body,
          headers: { 'content-type': 'application/json' },
        })
        assert.ok(r.statusCode < 500, `${r.statusCode} ${r.body}`)
        if (r.statusCode >= 400) assert.equal(typeof r.json().error.code, 'string')
      },
    ),
    { numRuns: 300 },
  )
})
