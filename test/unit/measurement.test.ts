/** SPEC §3: the same source gives the same enclave bundle and measurement on every build. */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { test } from 'node:test'
import { bytesToHex, keccak256 } from '../../src/protocol/index.ts'
import {
  buildEnclaveBundle,
  DEFAULT_BUNDLE_PATH,
  measureBundle,
  REPO_ROOT,
} from '../../src/tee/measurement.ts'

test('the enclave bundle is deterministic and its measurement matches the built file', async () => {
  const a = await buildEnclaveBundle()
  const b = await buildEnclaveBundle()
  assert.deepEqual(a, b)
  assert.equal(bytesToHex(keccak256(a)), bytesToHex(measureBundle(DEFAULT_BUNDLE_PATH)))
})

test('the bundle names no machine-specific path', async () => {
  const text = new TextDecoder().decode(await buildEnclaveBundle())
  assert.ok(!text.includes(REPO_ROOT), 'absolute checkout path leaked into the bundle')
  assert.ok(!readFileSync(DEFAULT_BUNDLE_PATH, 'utf8').includes(REPO_ROOT))
})
