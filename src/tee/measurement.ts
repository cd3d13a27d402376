/**
 * Enclave measurement (SPEC §3): keccak256 of the deterministic esbuild bundle of
 * `src/enclave/main.ts`. Same source, same measurement, on every machine.
 */
import { readFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'
import { keccak256 } from '../protocol/index.ts'

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')
export const DEFAULT_BUNDLE_PATH = join(REPO_ROOT, 'dist', 'enclave.mjs')

export function measureBundle(path = DEFAULT_BUNDLE_PATH): Uint8Array {
  return keccak256(readFileSync(path))
}

/** Builds the enclave bundle in memory; deterministic for a given source tree. */
export async function buildEnclaveBundle(): Promise<Uint8Array> {
  const result = await build({
    entryPoints: [join(REPO_ROOT, 'src', 'enclave', 'main.ts')],
    absWorkingDir: REPO_ROOT,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    write: false,
    minify: false,
    sourcemap: false,
    legalComments: 'none',
    // The native secp256k1 addon and node built-ins stay outside the bundle.
    external: ['secp256k1', 'secp256k1/*'],
    banner: {
      js: "import { createRequire as __poseCreateRequire } from 'node:module'; const require = __poseCreateRequire(import.meta.url);",
    },
    logLevel: 'silent',
  })
  const file = result.outputFiles[0]
  if (!file) throw new Error('esbuild produced no output')
  return file.contents
}
