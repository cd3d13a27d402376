/** Builds dist/enclave.mjs and prints its measurement (npm run build:enclave). */
import { mkdirSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'
import { bytesToHex, keccak256 } from '../src/protocol/index.ts'
import { buildEnclaveBundle, DEFAULT_BUNDLE_PATH } from '../src/tee/measurement.ts'

const bundle = await buildEnclaveBundle()
mkdirSync(dirname(DEFAULT_BUNDLE_PATH), { recursive: true })
writeFileSync(DEFAULT_BUNDLE_PATH, bundle)
console.log(
  `enclave bundle: ${DEFAULT_BUNDLE_PATH} (${bundle.length} bytes), measurement ${bytesToHex(keccak256(bundle))}`,
)
