/**
 * What the `pose` command does and prints when a valid command fails while running: the error's
 * code, the transaction a revert ran as, advice the CLI user can follow for a transaction whose
 * receipt never came; a wrong --manager named as such; an overloaded function chosen by its
 * arguments; every command's help. The chain is a stand-in JSON-RPC server on loopback.
 */
import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, test } from 'node:test'
import { type Abi, parseAbi } from 'viem'
import { runFailureLines } from '../../src/cli/failure.ts'
import { runCli } from '../../src/cli/program.ts'
import { CommandError, runCommand } from '../../src/cli/run.ts'
import { CliError, functionCall } from '../../src/cli/validate.ts'
import {
  ContractRevertError,
  PoseRequestError,
  TransactionUnconfirmedError,
} from '../../src/client/errors.ts'

const HASH = `0x${'ab'.repeat(32)}` as const
const MANAGER = `0x${'1'.repeat(40)}` as const
const KEY = `0x${'2'.repeat(64)}` as const

test('a runtime error with a code prints it; the SDK default CLIENT and RPC numbers are left out', () => {
  assert.deepEqual(
    runFailureLines(
      new CommandError('NO_CONTRACT', 'no contract at --manager 0x1', 'check'),
      false,
    ),
    ['error [NO_CONTRACT]: no contract at --manager 0x1', 'details: check'],
  )
  const refused = new PoseRequestError('Session expired', { code: 'EXPIRED', origin: 'enclave' })
  assert.deepEqual(runFailureLines(refused, false), ['error [EXPIRED]: Session expired'])
  const plain = new PoseRequestError('Instance 9 does not exist')
  assert.deepEqual(runFailureLines(plain, false), ['error: Instance 9 does not exist'])
  const rpc = Object.assign(new Error('long'), { shortMessage: 'execution reverted', code: 3 })
  assert.deepEqual(runFailureLines(rpc, false), ['error: execution reverted'])
  // POSE_DEBUG: the whole stack, the code still named.
  const [debug] = runFailureLines(new CommandError('TX_FAILED', 'ended with status error'), true)
  assert.match(debug!, /^error \[TX_FAILED\]: CommandError: ended with status error\n\s+at /)
})

test('a transaction without a receipt: advice the CLI user can follow, and its hash', () => {
  const cause = new PoseRequestError('No answer from the executor', { code: 'UNAVAILABLE' })
  const lines = runFailureLines(new TransactionUnconfirmedError(HASH, 7n, cause), false)
  assert.equal(lines.length, 3, lines.join('\n'))
  assert.match(lines[0]!, /^error \[UNAVAILABLE\]: Transaction 0xab.* \(nonce 7\) may have been/)
  assert.doesNotMatch(lines.join('\n'), /getReceipt/)
  assert.match(lines[1]!, /^details: No answer from the executor\. The CLI cannot ask/)
  assert.match(lines[1]!, /pose call, pose balance\) before sending it again/)
  assert.equal(lines[2], `transaction: ${HASH}`)
})

test('a reverted transaction names its hash and seq from the receipt it carries', () => {
  const e = new ContractRevertError('0x', 'InsufficientBalance', [1n, 2n])
  e.receipt = { txHash: HASH, seq: 42n } as NonNullable<ContractRevertError['receipt']>
  const lines = runFailureLines(e, false)
  assert.equal(lines[0], 'error: Contract reverted with InsufficientBalance(1, 2)')
  assert.equal(lines.at(-1), `transaction: ${HASH} (seq 42, reverted; its nonce is used)`)
  // A view call's revert has no receipt: no transaction line.
  const view = runFailureLines(new ContractRevertError('0x', 'Nope', []), false)
  assert.ok(!view.some((l) => l.startsWith('transaction:')))
})

test('an overloaded function is chosen by its arguments, or refused naming its overloads', () => {
  const abi = parseAbi([
    'function put(uint256 a)',
    'function put(address a, uint256 b)',
    'function tag(uint8 a)',
    'function tag(uint16 a)',
    'error Bad(uint256 x)',
  ]) as Abi
  const two = functionCall(abi, 'put', `["0x${'a'.repeat(40)}", "5"]`, 'x.json')
  assert.deepEqual(two.args, [`0x${'a'.repeat(40)}`, 5n])
  const fns = two.abi.filter((x) => x.type === 'function')
  assert.equal(fns.length, 1)
  assert.equal((fns[0] as { inputs: readonly unknown[] }).inputs.length, 2)
  assert.ok(
    two.abi.some((x) => x.type === 'error'),
    'errors kept for decoding reverts',
  )
  assert.deepEqual(functionCall(abi, 'put', '["5"]', 'x.json').args, [5n])
  const refused = (raw: string, fn: string, message: RegExp) =>
    assert.throws(
      () => functionCall(abi, fn, raw, 'x.json'),
      (e: unknown) =>
        e instanceof CliError && e.code === 'BAD_ARGS_JSON' && message.test(e.message),
    )
  refused('[]', 'put', /fit none of the overloads of put: put\(uint256\), put\(address,uint256\)/)
  refused('[1]', 'tag', /fit 2 overloads of tag \(tag\(uint8\), tag\(uint16\)\).*the SDK/)
  // A name that is not overloaded behaves as before, its ABI handed on whole.
  const one = parseAbi(['function f(bool b)', 'function g()']) as Abi
  assert.equal(functionCall(one, 'f', '[true]', 'x.json').abi, one)
  assert.throws(() => functionCall(one, 'h', '[]', 'x.json'), /function h is not in the ABI/)
})

/** A JSON-RPC endpoint on loopback with no code at any address (chain 31337). */
let server: Server
let rpc = ''
before(async () => {
  server = createServer((req, res) => {
    let body = ''
    req.on('data', (d) => {
      body += d
    })
    req.on('end', () => {
      const answer = (m: { id: number; method: string }) => ({
        jsonrpc: '2.0',
        id: m.id,
        ...(m.method === 'eth_chainId'
          ? { result: '0x7a69' }
          : m.method === 'eth_getCode'
            ? { result: '0x' }
            : { error: { code: -32601, message: `${m.method} not served here` } }),
      })
      const parsed = JSON.parse(body)
      res.setHeader('content-type', 'application/json')
      res.end(JSON.stringify(Array.isArray(parsed) ? parsed.map(answer) : answer(parsed)))
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  rpc = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})
after(() => new Promise<void>((r) => server.close(() => r())))

test('a --manager without code is named, with the chain, before any other read', async () => {
  const noContract = (e: unknown) => {
    assert.ok(e instanceof CommandError, String(e))
    assert.equal(e.code, 'NO_CONTRACT')
    assert.equal(e.message, `no contract at --manager ${MANAGER} on chain 31337`)
    return true
  }
  await assert.rejects(runCommand({ cmd: 'status', rpc, manager: MANAGER }), noContract)
  await assert.rejects(
    runCommand({ cmd: 'balance', rpc, manager: MANAGER, key: KEY, instance: 1n }),
    noContract,
  )
  await assert.rejects(
    runCommand({ cmd: 'operator-exit', rpc, manager: MANAGER, key: KEY, force: false }),
    noContract,
  )
  await assert.rejects(
    runCommand({
      cmd: 'verify-measurement',
      expected: `0x${'0'.repeat(64)}`,
      rpc,
      verifier: MANAGER,
    }),
    (e: unknown) =>
      e instanceof CommandError &&
      e.message === `no contract at --verifier ${MANAGER} on chain 31337`,
  )
})

test('--help on every command prints its usage and runs nothing', async () => {
  const commands = [
    ['devnet'],
    ['operator', 'start'],
    ['deploy'],
    ['send'],
    ['call'],
    ['challenge'],
    ['deposit'],
    ['balance'],
    ['withdraw'],
    ['operator', 'exit'],
    ['operator', 'withdraw'],
    ['operator', 'claim'],
    ['claim'],
    ['status'],
    ['verify-measurement'],
  ]
  for (const c of commands) {
    let out = ''
    await runCli([...c, '--help'], {
      run: async () => assert.fail(`${c.join(' ')} --help ran the command`),
      writeOut: (s) => {
        out += s
      },
      writeErr: () => undefined,
      env: {},
    })
    assert.match(out, new RegExp(`^Usage: pose ${c.join(' ')} `), `${c.join(' ')} --help`)
  }
})
