/**
 * The simulator's link-fault injector: seeded (same seed, same decisions), faults at about the
 * configured rates, tampered frames stay well-formed JSON with exactly one digit changed, and
 * a malformed configuration is refused with a clear error.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { ChainFaults, CrashPoints, LinkFaults, seededRandom } from '../../src/operator/faults.ts'
import { SecretScanner } from '../sim/proxy.ts'

const frame = JSON.stringify({
  envelope: {
    kind: 'update',
    instance: '1',
    body: `0x${'ab'.repeat(64)}`,
    signature: `0x${'cd'.repeat(65)}`,
  },
})

test('same seed, same decisions; rates near the configuration', () => {
  const config = {
    seed: 9,
    drop: 0.1,
    duplicate: 0.1,
    delay: 0.2,
    maxDelayMs: 40,
    tamper: 0.05,
    replay: 0.05,
  }
  const a = new LinkFaults(config)
  const b = new LinkFaults(config)
  for (let i = 0; i < 2000; i++) assert.deepEqual(a.apply(frame), b.apply(frame))
  assert.deepEqual(a.counts, b.counts)
  const within = (n: number, p: number, total: number) => Math.abs(n / total - p) < p * 0.35
  assert.ok(within(a.counts.drop, 0.1, 2000), `drops ${a.counts.drop}`)
  assert.ok(within(a.counts.tamper, 0.05 * 0.9, 2000), `tampers ${a.counts.tamper}`)
  assert.ok(within(a.counts.duplicate, 0.1 * 0.9, 2000), `duplicates ${a.counts.duplicate}`)
})

test('a tampered frame is valid JSON with one hex digit of body or signature changed', () => {
  const f = new LinkFaults({
    seed: 3,
    drop: 0,
    duplicate: 0,
    delay: 0,
    maxDelayMs: 0,
    tamper: 1,
    replay: 0,
  })
  for (let i = 0; i < 200; i++) {
    const [out] = f.apply(frame)
    const before = JSON.parse(frame).envelope
    const after = JSON.parse(out!.frame).envelope
    let diffs = 0
    for (const k of ['body', 'signature'] as const)
      for (let j = 0; j < before[k].length; j++) if (before[k][j] !== after[k][j]) diffs++
    assert.equal(diffs, 1)
    assert.equal(after.kind, before.kind)
  }
})

test('configuration from the environment', () => {
  assert.equal(LinkFaults.fromEnv(undefined), undefined)
  assert.throws(() => LinkFaults.fromEnv('{'), /POSE_LINK_FAULTS: not JSON/)
  assert.throws(() => LinkFaults.fromEnv('{"seed":1,"drop":2}'), /POSE_LINK_FAULTS/)
  assert.throws(() => LinkFaults.fromEnv('{"seed":1,"bogus":1}'), /POSE_LINK_FAULTS/)
  assert.equal(LinkFaults.fromEnv('{"seed":1}')?.config.drop, 0)
})

test('neighbouring seeds give different streams', () => {
  const first = Array.from({ length: 50 }, (_, s) => seededRandom(s)())
  assert.ok(first.some((x) => x < 0.5) && first.some((x) => x >= 0.5))
  assert.notEqual(seededRandom(1)(), seededRandom(2)())
})

test('crash points: only the listed points, only after the settling count, seeded', () => {
  const crashed: string[] = []
  const c = new CrashPoints(
    { seed: 1, probability: 1, points: ['after-seal', 'handover'], after: 2 },
    (p) => crashed.push(p),
  )
  c.reach('before-seal')
  c.reach('after-seal')
  c.reach('handover')
  assert.deepEqual(crashed, [])
  c.reach('challenge-response')
  c.reach('handover')
  assert.deepEqual(crashed, ['handover'])
  assert.equal(
    CrashPoints.fromEnv(undefined, () => undefined),
    undefined,
  )
  assert.throws(
    () => CrashPoints.fromEnv('{"seed":1,"probability":1,"points":["nowhere"]}', () => undefined),
    /POSE_CRASH_POINTS/,
  )
  const decisions = (seed: number) => {
    const out: string[] = []
    const x = new CrashPoints({ seed, probability: 0.3, points: ['before-seal'], after: 0 }, () =>
      out.push('x'),
    )
    for (let i = 0; i < 100; i++) x.reach('before-seal')
    return out.length
  }
  assert.equal(decisions(5), decisions(5))
  // A per-point probability overrides the general one (rare points get a high one).
  const rare: string[] = []
  const r = new CrashPoints(
    {
      seed: 3,
      probability: 0,
      probabilities: { 'challenge-response': 1 },
      points: ['before-seal', 'challenge-response'],
      after: 0,
    },
    (p) => rare.push(p),
  )
  for (let i = 0; i < 50; i++) r.reach('before-seal')
  r.reach('challenge-response')
  assert.deepEqual(rare, ['challenge-response'])
})

test('the secret scanner finds raw and hex matches, also across chunk boundaries', () => {
  const s = new SecretScanner()
  const secret = Uint8Array.from({ length: 32 }, (_, i) => i + 1)
  s.add([{ name: 'key', bytes: secret }])
  const feed = s.stream('a link')
  const hex = Buffer.from(`{"x":"0x${Buffer.from(secret).toString('hex')}"}`)
  feed(hex.subarray(0, 20))
  feed(hex.subarray(20))
  assert.deepEqual([...s.found], ['key in a link'])
  const t = new SecretScanner()
  t.add([{ name: 'key', bytes: secret }])
  t.stream('raw')(Buffer.concat([Buffer.from('xx'), Buffer.from(secret)]))
  t.stream('clean')(Buffer.from(secret.subarray(1)))
  assert.deepEqual([...t.found], ['key in raw'])
})

test('chain faults: seeded decisions, counted, configuration checked', () => {
  const config = { seed: 4, hold: 0.5, maxHoldMs: 100, reorder: 0.2, replay: 0.3 }
  const a = new ChainFaults(config)
  const b = new ChainFaults(config)
  for (let i = 0; i < 500; i++) {
    const d = a.decide()
    assert.deepEqual(d, b.decide())
    assert.ok(d.holdMs >= 0 && d.holdMs < 100)
  }
  assert.ok(
    a.counts.hold > 150 && a.counts.reorder > 50 && a.counts.replay > 100,
    JSON.stringify(a.counts),
  )
  assert.throws(() => ChainFaults.fromEnv('{"seed":1,"hold":3}'), /POSE_CHAIN_FAULTS/)
  assert.equal(ChainFaults.fromEnv(undefined), undefined)
})
