/**
 * What the `pose` command (src/cli/main.ts) prints when a command fails while running. The
 * error's text comes from outside (an RPC endpoint, an operator's host answering `send` or
 * `call`, revert data): its escape sequences and line breaks must neither reach the terminal nor
 * forge lines of output. The CLI runs as a process with src/cli/run.ts replaced by a stand-in
 * that throws the error under test, so the printing is the one the command line does.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { pathToFileURL } from 'node:url'
import { promisify } from 'node:util'

const execFileAsync = promisify(execFile)
const root = join(import.meta.dirname, '..', '..')

/** What a hostile host answers: clear the screen, then a forged line of output. */
const FORGED = '\u001b[2J\r\n{"status":"success","result":"0x01"}\u0007'
const SENT = `0x${'ab'.repeat(32)}`

/**
 * Writes the stand-in for src/cli/run.ts, throwing the error `POSE_TEST_THROW` names, and the
 * module that loads it in run.ts's place; returns the `--import` argument for the latter.
 */
function standIn(dir: string): string {
  const sender = pathToFileURL(join(root, 'src/chain/sender.ts')).href
  const run = join(dir, 'run.mjs')
  writeFileSync(
    run,
    `const forged = ${JSON.stringify(FORGED)}
const { ChainTxError } = await import(${JSON.stringify(sender)})
export async function runCommand() {
  switch (process.env.POSE_TEST_THROW) {
    case 'viem':
      throw Object.assign(new Error('a long message'), { shortMessage: 'RPC Request failed: ' + forged, details: forged })
    case 'error':
      throw new Error(forged)
    case 'sent':
      throw new ChainTxError('deposit', forged, { hash: ${JSON.stringify(SENT)} })
    default:
      throw forged
  }
}
`,
  )
  const hooks = join(dir, 'hooks.mjs')
  writeFileSync(
    hooks,
    `export async function resolve(specifier, context, next) {
  if (specifier === './run.ts' && context.parentURL?.endsWith('/src/cli/main.ts'))
    return { url: ${JSON.stringify(pathToFileURL(run).href)}, shortCircuit: true }
  return next(specifier, context)
}
`,
  )
  const register = join(dir, 'register.mjs')
  writeFileSync(
    register,
    `import { register } from 'node:module'
register(${JSON.stringify(pathToFileURL(hooks).href)})
`,
  )
  return register
}

test('CLI as a process: the text of a failed run is printed with its control characters escaped, and a transaction sent is named', {
  timeout: 120_000,
}, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pose-cli-errors-'))
  try {
    const register = standIn(dir)
    // A valid command line, so that the (stand-in) command runs; nothing is contacted.
    const args = ['status', '--rpc', 'http://127.0.0.1:1', '--manager', `0x${'1'.repeat(40)}`]
    const pose = (env: Record<string, string>) =>
      execFileAsync(
        process.execPath,
        ['--import', 'tsx', '--import', register, join(root, 'src/cli/main.ts'), ...args],
        { cwd: root, env: { ...process.env, POSE_DEBUG: '', ...env }, timeout: 60_000 },
      ).then(
        (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
        (e: { code: number; stdout: string; stderr: string }) => e,
      )
    const [viem, error, sent, thrown, debug] = await Promise.all([
      pose({ POSE_TEST_THROW: 'viem' }),
      pose({ POSE_TEST_THROW: 'error' }),
      pose({ POSE_TEST_THROW: 'sent' }),
      pose({ POSE_TEST_THROW: 'string' }),
      pose({ POSE_TEST_THROW: 'error', POSE_DEBUG: '1' }),
    ])
    const shown = '\\u001b[2J {"status":"success","result":"0x01"}\\u0007'
    for (const [name, r] of Object.entries({ viem, error, sent, thrown, debug })) {
      assert.equal(r!.code, 1, `${name}: ${r!.stderr}`)
      assert.equal(r!.stdout, '', name)
      // Line feeds are the only control characters printed as they are.
      assert.doesNotMatch(r!.stderr, /[^\P{Cc}\n]|[\u2028\u2029]/u, name)
    }
    assert.equal(viem!.stderr, `error: RPC Request failed: ${shown}\ndetails: ${shown}\n`)
    assert.equal(error!.stderr, `error: ${shown}\n`)
    assert.equal(thrown!.stderr, `error: ${shown}\n`)
    assert.equal(
      sent!.stderr,
      `error: deposit was sent as transaction ${SENT}, but no receipt came (${shown}); it may still land: look the transaction up before sending it again\ntransaction: ${SENT}\n`,
    )
    // POSE_DEBUG prints the whole stack: its line feeds kept, every other control character
    // escaped.
    assert.ok(debug!.stderr.startsWith('error: Error: \\u001b[2J\\u000d\n{"status"'), debug!.stderr)
    assert.match(debug!.stderr, /\n\s+at /)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
