/** The `pose` command as a user runs it: help, clear errors, and a deploy/send/call/status flow. */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { createPublicClient, http } from 'viem'
import { readInstance } from '../../src/chain/manager.ts'
import { DEFAULT_MANAGER_PARAMS } from '../../src/devnet/deploy.ts'
import { type Devnet, startDevnet } from '../../src/devnet/devnet.ts'
import { REPO_ROOT } from '../../src/tee/measurement.ts'

function pose(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', join(REPO_ROOT, 'src', 'cli', 'main.ts'), ...args],
      {
        cwd: REPO_ROOT,
        env: { ...process.env, ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    )
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000)
    child.on('exit', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
  })
}

const ARTIFACT = join(REPO_ROOT, 'out', 'PrivateToken.sol', 'PrivateToken.json')

describe('pose CLI', { timeout: 300_000 }, () => {
  let devnet: Devnet
  const client = () => createPublicClient({ transport: http(devnet.rpcUrl) }) as never
  before(async () => {
    devnet = await startDevnet({ operators: 3, users: 2 })
  })
  after(async () => {
    await devnet?.stop()
  })

  test('--help names every command', async () => {
    const top = await pose(['--help'])
    assert.equal(top.code, 0)
    for (const c of [
      'devnet',
      'operator',
      'deploy',
      'send',
      'call',
      'challenge',
      'claim',
      'deposit',
      'balance',
      'withdraw',
      'status',
      'verify-measurement',
    ])
      assert.match(top.stdout, new RegExp(`\\b${c}\\b`))
    // Every command's help is checked in-process (test/unit/cliRun.test.ts); one as a process.
    const sub = await pose(['operator', 'exit', '--help'])
    assert.equal(sub.code, 0)
    assert.match(sub.stdout, /^Usage: pose operator exit /)
  })

  test('bad input gets a clear, typed error and exit code 2', async () => {
    const missing = await pose(['deploy', '--rpc', devnet.rpcUrl])
    assert.equal(missing.code, 2)
    assert.match(missing.stderr, /^error \[MISSING_OPTION\]: required option '--manager <address>'/)
    const badAddress = await pose(['status', '--rpc', devnet.rpcUrl, '--manager', '0x1234'])
    assert.equal(badAddress.code, 2)
    assert.match(badAddress.stderr, /^error \[BAD_OPTION\]: --manager: .*20-byte address/)
    const noKey = await pose(
      [
        'call',
        '--rpc',
        devnet.rpcUrl,
        '--manager',
        devnet.manager,
        '--instance',
        '1',
        '--artifact',
        ARTIFACT,
        '--function',
        'myBalance',
      ],
      { POSE_KEY: '' },
    )
    assert.equal(noKey.code, 2)
    assert.match(noKey.stderr, /key is required/)
    const noArtifact = await pose(
      [
        'deploy',
        '--rpc',
        devnet.rpcUrl,
        '--manager',
        devnet.manager,
        '--artifact',
        '/nonexistent.json',
      ],
      { POSE_KEY: devnet.userKeys[0]! },
    )
    assert.equal(noArtifact.code, 2)
    assert.match(noArtifact.stderr, /^error \[BAD_ARTIFACT\]: .*cannot read JSON/)
    const badArgs = await pose(
      [
        'deploy',
        '--rpc',
        devnet.rpcUrl,
        '--manager',
        devnet.manager,
        '--artifact',
        ARTIFACT,
        '--args',
        '[1,2]',
      ],
      { POSE_KEY: devnet.userKeys[0]! },
    )
    assert.equal(badArgs.code, 2)
    assert.match(badArgs.stderr, /expected 1 arguments, got 2/)
  })

  test('deploy, send, call and status against a devnet', async () => {
    const env = { POSE_KEY: devnet.userKeys[0]! }
    const common = ['--rpc', devnet.rpcUrl, '--manager', devnet.manager]
    const dep = await pose(
      ['deploy', ...common, '--artifact', ARTIFACT, '--args', '["1000"]', '--watchdogs', '1'],
      env,
    )
    assert.equal(dep.code, 0, dep.stderr)
    assert.match(dep.stderr, /pool drawn/)
    const instance = JSON.parse(dep.stdout).instance as string
    const other = '0x000000000000000000000000000000000000bEEF'
    const send = await pose(
      [
        'send',
        ...common,
        '--instance',
        instance,
        '--artifact',
        ARTIFACT,
        '--function',
        'transfer',
        '--args',
        JSON.stringify([other, '10']),
      ],
      env,
    )
    assert.equal(send.code, 0, send.stderr)
    assert.equal(JSON.parse(send.stdout).status, 'success')
    const call = await pose(
      [
        'call',
        ...common,
        '--instance',
        instance,
        '--artifact',
        ARTIFACT,
        '--function',
        'myBalance',
      ],
      env,
    )
    assert.equal(call.code, 0, call.stderr)
    assert.equal(JSON.parse(call.stdout), '990')
    const denied = await pose(
      [
        'call',
        ...common,
        '--instance',
        instance,
        '--artifact',
        ARTIFACT,
        '--function',
        'balanceOf',
        '--args',
        JSON.stringify([other]),
      ],
      env,
    )
    assert.equal(denied.code, 1)
    assert.match(denied.stderr, /PrivateToken_NotYourBalance/)
    const unknown = await pose(
      ['send', ...common, '--instance', instance, '--artifact', ARTIFACT, '--function', 'steal'],
      env,
    )
    assert.equal(unknown.code, 2)
    assert.match(unknown.stderr, /^error \[UNKNOWN_FUNCTION\]: function steal is not in the ABI/)
    const status = await pose(['status', ...common, '--instance', instance])
    assert.equal(status.code, 0, status.stderr)
    assert.match(status.stdout, /phase Active/)
    assert.match(status.stdout, /slot 0 executor/)
    assert.match(status.stdout, /slot 1 watchdog .* seq 1 /)
    const verify = await pose([
      'verify-measurement',
      '--rpc',
      devnet.rpcUrl,
      '--verifier',
      devnet.verifier,
    ])
    assert.equal(verify.code, 0, verify.stdout + verify.stderr)
    assert.match(verify.stdout, /allowed by verifier .*: true/)

    // Challenged, the executor answers on-chain: the challenge fee is credited to its operator,
    // who claims it; the challenger has nothing to claim.
    const challenged = await pose(['challenge', ...common, '--instance', instance], env)
    assert.equal(challenged.code, 0, challenged.stderr)
    const executorOp = async () => {
      const info = await readInstance(client(), devnet.manager, BigInt(instance))
      return { phase: info.phaseName, op: info.operators[info.executorSlot]! }
    }
    for (let i = 0; i < 120 && (await executorOp()).phase !== 'Active'; i++)
      await new Promise((r) => setTimeout(r, 250))
    const { phase, op } = await executorOp()
    assert.equal(phase, 'Active', 'the executor answered')
    const opKey = devnet.operators.find((o) => o.address === op)!.key
    const fee = DEFAULT_MANAGER_PARAMS.challengeFee
    const claimed = await pose(['operator', 'claim', ...common], { POSE_OPERATOR_KEY: opKey })
    assert.equal(claimed.code, 0, claimed.stderr)
    assert.equal(JSON.parse(claimed.stdout).claimed, fee.toString())
    const again = await pose(['operator', 'claim', ...common], { POSE_OPERATOR_KEY: opKey })
    assert.equal(JSON.parse(again.stdout).claimed, '0')
    assert.match(again.stderr, /Nothing to claim/)
    const user = await pose(['claim', ...common], env)
    assert.equal(user.code, 0, user.stderr)
    assert.equal(JSON.parse(user.stdout).claimed, '0')
  })

  test('an operator whose enclave dies exits with code 1, for a supervisor to start it again, and resumes from its data directory', async () => {
    const i = 2
    const child = devnet.operators[i]!.process!
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)))
    assert.ok(devnet.killEnclave(i), 'the operator has an enclave to kill')
    const code = await Promise.race([
      exited,
      new Promise<string>((r) => setTimeout(() => r('still running after 30 s'), 30_000).unref()),
    ])
    assert.equal(code, 1)
    const log = readFileSync(devnet.operators[i]!.logPath, 'utf8')
    assert.match(log, /Enclave process exited; stopping the operator node/)
    await devnet.startOperator(i)
    const resumed = readFileSync(devnet.operators[i]!.logPath, 'utf8')
      .split('\n')
      .slice(log.split('\n').length - 1)
      .filter((l) => l.includes('"msg":"Enclave ready"'))
    assert.equal(resumed.length, 1)
    assert.match(resumed[0]!, /"resumed":true/)
  })
})
