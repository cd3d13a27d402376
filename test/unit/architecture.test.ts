/**
 * Enforces the import direction of ARCHITECTURE.md: the enclave imports only the protocol (and
 * pure npm libraries), the protocol imports nothing else of src/, the client never imports the
 * enclave or the operator, and no production code imports the devnet.
 */
import assert from 'node:assert/strict'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { test } from 'node:test'

const SRC = resolve(import.meta.dirname, '..', '..', 'src')

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n)
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : []
  })
}

function imports(file: string): string[] {
  const text = readFileSync(file, 'utf8')
  const out: string[] = []
  for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)[^'"\n]*?from\s+['"]([^'"]+)['"]/g))
    out.push(m[1]!)
  for (const m of text.matchAll(/import\(\s*['"]([^'"]+)['"]\s*\)/g)) out.push(m[1]!)
  return out
}

const layerOf = (file: string) => relative(SRC, file).split('/')[0]!

const RULES: Record<string, { src: string[]; npm: RegExp }> = {
  protocol: { src: ['protocol'], npm: /^(@noble\/|hash-wasm$|zod$|node:(crypto|module|zlib)$)/ },
  enclave: { src: ['enclave', 'protocol'], npm: /^(@noble\/|@ethereumjs\/|zod$)/ },
  client: { src: ['client', 'protocol', 'chain'], npm: /.*/ },
  chain: { src: ['chain', 'protocol'], npm: /.*/ },
  tee: { src: ['tee', 'protocol'], npm: /.*/ },
  operator: { src: ['operator', 'protocol', 'chain', 'tee'], npm: /.*/ },
  cli: { src: ['cli', 'client', 'operator', 'devnet', 'chain', 'tee', 'protocol'], npm: /.*/ },
  devnet: { src: ['devnet', 'client', 'chain', 'tee', 'protocol'], npm: /.*/ },
}

test('every layer imports only what ARCHITECTURE.md allows', () => {
  const violations: string[] = []
  for (const file of files(SRC)) {
    const layer = layerOf(file)
    const rule = RULES[layer]
    if (!rule) {
      violations.push(`${relative(SRC, file)}: unknown layer ${layer}`)
      continue
    }
    for (const spec of imports(file)) {
      if (spec.startsWith('.')) {
        const target = resolve(dirname(file), spec)
        if (!target.startsWith(SRC)) {
          // Generated example artifacts are data, allowed for the devnet demo only.
          if (layer === 'devnet' && spec.includes('examples/contracts.generated')) continue
          violations.push(`${relative(SRC, file)} imports ${spec} outside src/`)
          continue
        }
        const to = layerOf(target)
        if (!rule.src.includes(to))
          violations.push(`${relative(SRC, file)} (${layer}) imports ${to}: ${spec}`)
      } else if (!rule.npm.test(spec)) {
        violations.push(`${relative(SRC, file)} (${layer}) imports package ${spec}`)
      }
    }
  }
  assert.deepEqual(violations, [])
})

test('the rule check itself catches a forbidden import', () => {
  // Guards against a regex that silently matches nothing.
  const enclaveFiles = files(join(SRC, 'enclave'))
  assert.ok(enclaveFiles.length > 0)
  assert.ok(enclaveFiles.some((f) => imports(f).some((s) => s.includes('protocol'))))
  assert.equal(RULES.enclave!.npm.test('node:fs'), false)
  assert.equal(RULES.enclave!.src.includes('operator'), false)
})
