import assert from 'node:assert/strict'
import { test } from 'node:test'
import fc from 'fast-check'
import { WordSum } from '../../src/enclave/world/wordSum.ts'
import { uintToWord, wordToUint } from '../../src/protocol/index.ts'

const MOD = 1n << 256n
const word = fc.oneof(
  fc.bigInt({ min: 0n, max: MOD - 1n }),
  fc.constantFrom(0n, 1n, MOD - 1n, (1n << 32n) - 1n, 1n << 32n, MOD >> 1n),
)

test('WordSum adds and subtracts words modulo 2^256 like BigInt arithmetic', () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.boolean(), word), { maxLength: 40 }), (steps) => {
      const sum = new WordSum()
      let ref = 0n
      for (const [add, v] of steps) {
        if (add) sum.add(uintToWord(v))
        else sum.sub(uintToWord(v))
        ref = add ? ref + v : ref - v
      }
      assert.equal(wordToUint(sum.toWord()), ((ref % MOD) + MOD) % MOD)
    }),
    { numRuns: 500 },
  )
})

test('WordSum carries and borrows across every limb', () => {
  const sum = new WordSum()
  sum.add(uintToWord(MOD - 1n))
  sum.add(uintToWord(1n))
  assert.equal(wordToUint(sum.toWord()), 0n)
  sum.sub(uintToWord(1n))
  assert.equal(wordToUint(sum.toWord()), MOD - 1n)
})
