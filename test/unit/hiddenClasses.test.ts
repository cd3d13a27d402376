/**
 * The objects the SDK keeps one of per client (the client, its cached instance, its box session)
 * share V8's hidden classes across clients. Built by spreading (`{ ...chain, account }`), they
 * took many classes in a saturated benchmark's process, and reads of their properties missed
 * their inline caches once per transfer (bench/README.md, 2026-12-06). Checked in a child process
 * with V8's `%HaveSameMap`. Here, in a fresh process, only the client's spread is caught (a
 * client without box sessions got another class); the cached instances' classes diverged on a
 * devnet of 4 users, and the sessions' sites were megamorphic in the benchmark's process.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { runScript } from './childScript.ts'

test('clients, their cached instances and their box sessions share hidden classes', async () => {
  const script = `
    import { createServer } from 'node:http'
    import { privateKeyToAccount } from 'viem/accounts'
    import { createPoseClient } from './src/client/createPoseClient.ts'
    import { getInstance } from './src/client/actions/getInstance.ts'
    import { BoxSessions, generateX25519KeyPair } from './src/protocol/index.ts'

    const same = new Function('a', 'b', 'return %HaveSameMap(a, b)')
    // eth_chainId is all createPoseClient asks the chain.
    const server = createServer((req, res) => {
      let body = ''
      req.on('data', (c) => (body += c))
      req.on('end', () => {
        const { id } = JSON.parse(body)
        res.setHeader('content-type', 'application/json')
        res.end(JSON.stringify({ jsonrpc: '2.0', id, result: '0x7a69' }))
      })
    })
    await new Promise((r) => server.listen(0, '127.0.0.1', r))
    const rpcUrl = 'http://127.0.0.1:' + server.address().port
    const manager = '0x' + '22'.repeat(20)
    const key = (i) => '0x' + String(i).padStart(64, '0')
    const clients = []
    for (let i = 1; i <= 3; i++)
      clients.push(await createPoseClient({ rpcUrl, manager, account: privateKeyToAccount(key(i)) }))
    const withoutSessions = await createPoseClient({
      rpcUrl, manager, account: privateKeyToAccount(key(4)), sessionKeys: false,
    })
    server.close()

    // An instance as the manager reports it; no logs, so no endpoint and no contract key.
    const signer = '0x' + '33'.repeat(20)
    const operator = '0x' + '44'.repeat(20)
    const publicClient = {
      readContract: async ({ functionName }) =>
        functionName === 'getInstance'
          ? {
              phase: 3, watchdogCount: 0, drawBlock: 0n, executorSlot: 0, eventIndex: 2n,
              eventHash: '0x' + '00'.repeat(32), signers: [signer], operators: [operator],
              challenger: '0x' + '00'.repeat(20), challengeDeadline: 0n, watchdogMask: 0,
              respondedMask: 0, watchdogDeadline: 0n, refillBlock: 0n,
            }
          : functionName === 'getOperator'
            ? {
                enclaveSigner: signer, encryptionKey: '0x' + '55'.repeat(32), stake: 0n,
                registered: true, exiting: false, memberships: 1, exitRequestedAt: 0n,
              }
            : 0n,
      getLogs: async () => [],
    }
    const infos = []
    for (const c of clients) {
      c.publicClient = publicClient
      c.state.instances.clear()
      infos.push(await getInstance(c, { instance: 1n }))
    }
    const sessionKey = generateX25519KeyPair().publicKey
    const sessions = [new BoxSessions(), new BoxSessions()].map((b) => b.session(sessionKey))
    const pairs = {
      clients: same(clients[0], clients[1]) && same(clients[1], clients[2]),
      withoutSessions: same(clients[0], withoutSessions),
      failover: same(clients[0].failover, clients[2].failover),
      instances: same(infos[0], infos[1]) && same(infos[1], infos[2]),
      sessions: same(sessions[0], sessions[1]),
    }
    console.log(JSON.stringify({ pairs, executorEndpoint: infos[0].executorEndpoint, members: [...infos[0].memberSigners] }))
  `
  const { code, out } = await runScript(script, {
    nodeFlags: ['--allow-natives-syntax'],
    killAfterMs: 30_000,
  })
  assert.equal(code, 0, out)
  const r = JSON.parse(out.trim().split('\n').at(-1)!)
  assert.deepEqual(r.pairs, {
    clients: true,
    withoutSessions: true,
    failover: true,
    instances: true,
    sessions: true,
  })
  // The result still carries what getInstance adds to the manager's fields.
  assert.deepEqual(r.members, [`0x${'33'.repeat(20)}`])
  assert.equal(typeof r.executorEndpoint, 'string')
})
