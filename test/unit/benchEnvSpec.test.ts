/**
 * `bench:ab --a-env/--b-env` (bench/lib/envSpec.ts): a value may hold spaces and `=` (several
 * NODE_OPTIONS flags); anything that is not a NAME=VALUE pair is refused with the part named.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { parseEnvSpec } from '../../bench/lib/envSpec.ts'

describe('parseEnvSpec', () => {
  test('pairs separated by spaces; empty and blank specs give no variables', () => {
    assert.deepEqual(parseEnvSpec('A=1 B_2=two  _c=', '--b-env'), { A: '1', B_2: 'two', _c: '' })
    assert.deepEqual(parseEnvSpec('', '--b-env'), {})
    assert.deepEqual(parseEnvSpec('   ', '--b-env'), {})
  })

  test('a value runs up to the next NAME=: flags with = and spaces stay in it', () => {
    assert.deepEqual(
      parseEnvSpec('NODE_OPTIONS=--max-semi-space-size=64 --require=/tmp/h.cjs POSE_X=a=b', '-e'),
      { NODE_OPTIONS: '--max-semi-space-size=64 --require=/tmp/h.cjs', POSE_X: 'a=b' },
    )
  })

  test('malformed parts are refused, naming the flag and the part', () => {
    assert.throws(
      () => parseEnvSpec('--require=/tmp/h.cjs', '--a-env'),
      /--a-env: .*"--require=\/tmp\/h\.cjs"/,
    )
    assert.throws(() => parseEnvSpec('NOVALUE', '--b-env'), /--b-env: .*"NOVALUE"/)
    assert.throws(() => parseEnvSpec('=1', '--b-env'), /"=1"/)
    assert.throws(() => parseEnvSpec('1A=1', '--b-env'), /"1A=1"/)
    assert.throws(() => parseEnvSpec('A=1 A=2', '--b-env'), /--b-env: A is given twice/)
  })
})
