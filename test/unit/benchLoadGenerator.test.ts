/**
 * The benchmark's two kinds of process: the one that drives the SDK clients starts with
 * `LOAD_GENERATOR_FLAGS` (`npm run bench`, `bench:ab`'s devnets), and the bare EVM the system is
 * compared with runs in a child with Node's defaults, as an enclave process does.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { describe, test } from 'node:test'
import { bareEvmInChild } from '../../bench/lib/bareEvm.ts'
import { LOAD_GENERATOR_FLAGS } from '../../bench/lib/workload.ts'

describe('load generator flags', () => {
  test('`npm run bench` starts its process with every flag, before the script', () => {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'))
    const script: string = pkg.scripts.bench
    const node = script.slice(script.indexOf('node '))
    for (const f of LOAD_GENERATOR_FLAGS) {
      assert.ok(node.includes(` ${f} `), `bench script lacks ${f}: ${script}`)
      assert.ok(node.indexOf(f) < node.indexOf('bench/run.ts'), `${f} after the script`)
    }
  })

  test('this Node accepts the flags and they set the young generation', () => {
    const r = spawnSync(
      process.execPath,
      [
        ...LOAD_GENERATOR_FLAGS,
        '-e',
        "const s = require('v8').getHeapSpaceStatistics().find((x) => x.space_name === 'new_space'); console.log(s.space_size)",
      ],
      { encoding: 'utf8', timeout: 30_000 },
    )
    assert.equal(r.status, 0, r.stderr)
    // Two semi-spaces of at least 16 MiB each against 1 MiB with Node's defaults.
    assert.ok(Number(r.stdout.trim()) >= 16 * 2 ** 20, `new space ${r.stdout.trim()} bytes`)
  })
})

describe('bareEvmInChild', () => {
  test('measures transfers in a child process', async () => {
    const r = await bareEvmInChild(200)
    assert.equal(r.txs, 200)
    assert.ok(r.tps > 0 && r.tpsWithWriteSet > 0, JSON.stringify(r))
    // A PrivateToken transfer between funded accounts, its intrinsic gas (21,000 and calldata) included.
    assert.ok(r.gasPerTx > 5_000 && r.gasPerTx < 60_000, `gas ${r.gasPerTx}`)
  })

  test('a refused argument fails the call with the child’s exit', async () => {
    await assert.rejects(bareEvmInChild(0), /bare EVM child: exited with code 2/)
  })
})
