/**
 * Bounded caches (src/protocol/cache.ts): the bound, the order of eviction, the newest entry kept.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import fc from 'fast-check'
import { setBounded } from '../../src/protocol/index.ts'

test('a cache never holds more than its bound and evicts its oldest entries first', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 300 }),
      fc.array(fc.integer({ min: 0, max: 500 }), { maxLength: 2_000 }),
      (max, keys) => {
        const m = new Map<number, number>()
        const order: number[] = [] // insertion order of the keys present, as a Map keeps it
        for (const [i, k] of keys.entries()) {
          setBounded(m, k, i, max)
          if (!order.includes(k)) order.push(k)
          assert.ok(m.size <= max, `${m.size} entries, bound ${max}`)
          assert.equal(m.get(k), i, 'the entry just set is kept, with its new value')
          // What is left is the newest part of the insertion order.
          while (order.length > m.size) order.shift()
          assert.deepEqual([...m.keys()], order)
        }
      },
    ),
  )
})

test('a cache over its bound drops a sixteenth of it at once; setting a present key drops nothing', () => {
  const m = new Map<string, number>()
  for (let i = 0; i < 4_096; i++) setBounded(m, `k${i}`, i, 4_096)
  assert.equal(m.size, 4_096)
  setBounded(m, 'k5', -1, 4_096)
  assert.equal(m.size, 4_096, 'a present key is set in place')
  setBounded(m, 'new', 0, 4_096)
  assert.equal(m.size, 3_841, '4,097 entries less the oldest 256')
  assert.equal(m.has('k255'), false)
  assert.equal(m.has('k256'), true)
  assert.equal(m.has('new'), true)
  const one = new Map<string, number>()
  setBounded(one, 'a', 1, 1)
  setBounded(one, 'b', 2, 1)
  assert.deepEqual([...one], [['b', 2]])
})
