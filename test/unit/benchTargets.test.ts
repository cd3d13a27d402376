/**
 * The benchmark's targets table (bench/lib/targets.ts): a throughput target counts as out of
 * reach only above the strict ceiling (the floor's sum of primitives) measured in the same run;
 * the channel figure is an estimate and never decides.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { checkTargets } from '../../bench/lib/targets.ts'

const run = 'run-a.json'

function latest(o: {
  s2: number
  bare: number
  anvil: number
  ceiling: number
  arch?: number
  floorBare: number
  floorSource?: string
}): Record<string, unknown> {
  return {
    throughput_tps: { s2: o.s2, bare_evm: o.bare, anvil: o.anvil },
    floor: {
      ceiling_tps: o.ceiling,
      ...(o.arch !== undefined ? { arch_ceiling_tps: o.arch } : {}),
      bare_evm_tps: o.floorBare,
    },
    sources: { throughput: run, floor: o.floorSource ?? run },
  }
}

const row = (checks: ReturnType<typeof checkTargets>, prefix: string) => {
  const r = checks.find((c) => c.target.startsWith(prefix))
  assert.ok(r, `no row ${prefix}`)
  return r
}

describe('benchmark targets', () => {
  test('the verdict comes from the strict ceiling, not from the channel estimate', () => {
    // Strict ceiling 64.6 % of its bare EVM, the estimate 49.9 %: 50 % is within reach,
    // three times anvil (67.9 %) is not.
    const checks = checkTargets(
      latest({ s2: 770, bare: 3879, anvil: 878, ceiling: 1892, arch: 1463, floorBare: 2931 }),
    )
    const half = row(checks, 's=2 throughput ≥ 50 %')
    assert.equal(half.met, false)
    assert.match(half.measured, /64\.6 % of its bare EVM run/)
    assert.match(half.measured, /with the channels ≈ 49\.9 %, an estimate/)
    assert.match(half.measured, /≥ target$/)
    const anvil = row(checks, 's=2 throughput ≥ 3 × anvil')
    assert.equal(anvil.met, false)
    assert.match(anvil.measured, /< target: out of reach$/)
  })

  test('the bare EVM measured beside s = 2 is shown, and the verdict keeps the fastest bare EVM run', () => {
    const l = latest({ s2: 4500, bare: 13_000, anvil: 700, ceiling: 9000, floorBare: 13_000 })
    ;(l.throughput_tps as Record<string, number>).bare_evm_beside_s2 = 8000
    const half = row(checkTargets(l), 's=2 throughput ≥ 50 %')
    assert.equal(half.met, false, '4,500 is below half of 13,000')
    assert.match(
      half.measured,
      /= 34\.6 % \(56\.3 % of the bare EVM measured right after it, 8000 tx\/s\)/,
    )
    const without = row(
      checkTargets(
        latest({ s2: 4500, bare: 13_000, anvil: 700, ceiling: 9000, floorBare: 13_000 }),
      ),
      's=2 throughput ≥ 50 %',
    )
    assert.doesNotMatch(without.measured, /measured right after it/)
  })

  test('a target is met whatever the ceiling says', () => {
    const checks = checkTargets(
      latest({ s2: 2000, bare: 3000, anvil: 600, ceiling: 1500, floorBare: 3000 }),
    )
    assert.equal(row(checks, 's=2 throughput ≥ 50 %').met, true)
    assert.equal(row(checks, 's=2 throughput ≥ 3 × anvil').met, true)
  })

  test('the s = 2 rows say where s = 2 ran, with the shared-cores rate beside it', () => {
    const base = latest({ s2: 1654.8, bare: 3623, anvil: 782.7, ceiling: 4000, floorBare: 3600 })
    const placed = checkTargets({
      ...base,
      throughput_tps: { ...(base.throughput_tps as object), s2_shared: 1362.4 },
      throughput_placement: 'executor-core',
    })
    for (const prefix of ['s=2 throughput ≥ 50 %', 's=2 throughput ≥ 3 × anvil'])
      assert.match(
        row(placed, prefix).measured,
        /^1654\.8 \(executor-core; shared cores 1362\.4\) vs /,
      )
    assert.equal(row(placed, 's=2 throughput ≥ 50 %').met, false, 'judged on the placed rate')
    const shared = checkTargets({ ...base, throughput_placement: 'shared' })
    assert.match(row(shared, 's=2 throughput ≥ 50 %').measured, /^1654\.8 vs 3623 tx\/s/)
  })

  test("the throughput rows set the target against the run's own CPU ceiling", () => {
    // latest.json of 2026-12-05 01:09: 50 % of 6,697 = 3,348.5 lies above the CPU ceiling of
    // 2,597 tx/s (s = 2's 0.77 ms per transfer on 2 cores); 3 × anvil = 2,302.5 below it.
    const base = latest({ s2: 1918.1, bare: 6697, anvil: 767.5, ceiling: 1, floorBare: 1 })
    const checks = checkTargets({
      ...base,
      sources: { throughput: run, floor: 'run-b.json' },
      cpu_ceiling_tps: { s2: 2597, s2_server: 3390, cores: 2 },
    })
    const half = row(checks, 's=2 throughput ≥ 50 %')
    assert.match(
      half.measured,
      /; CPU ceiling \(2 cores, s = 2's CPU per transfer\) 2597 tx\/s < target, without the clients 3390; floor ceiling from another run/,
    )
    assert.match(row(checks, 's=2 throughput ≥ 3 × anvil').measured, /2597 tx\/s ≥ target/)
    assert.doesNotMatch(
      row(checkTargets(base), 's=2 throughput ≥ 50 %').measured,
      /CPU ceiling/,
      'no CPU ceiling in latest.json, none in the table',
    )
    // With the executor's enclave measured apart: the other processes' ceiling on the other
    // core (latest.json of 2026-12-05 21:37 would give 0.31 ms in all, 0.135 of it the executor).
    const apart = checkTargets({
      ...base,
      sources: { throughput: run, floor: 'run-b.json' },
      cpu_ceiling_tps: { s2: 6452, s2_server: 8696, cores: 2, s2_others: 5714 },
    })
    assert.match(
      row(apart, 's=2 throughput ≥ 50 %').measured,
      /without the clients 8696, everything but the executor's enclave on 1 core 5714 \(≥ target\)/,
    )
  })

  test("s = 2's CPU per transfer and the target's allowance are both counted in the bare EVM run beside it", () => {
    // latest.json of 2026-12-06 19:02: 0.278 ms per transfer over every process, the bare EVM
    // 17,315 tx/s right after s = 2's runs: 4.81 transfers' worth. The targets are set on the
    // fastest bare EVM run (19,493 tx/s), as the verdict is: half of it, 9,747 tx/s, allows
    // 2 × 17,315 / 9,746.5 = 3.55 of those transfers on 2 cores; three times anvil (1,759 tx/s)
    // 19.69. (Counting the allowance in the fastest run's transfers gave 4 and 22.16: two units.)
    const base = latest({ s2: 5790, bare: 19_493, anvil: 586.4, ceiling: 1, floorBare: 1 })
    const full = {
      ...base,
      throughput_tps: { ...(base.throughput_tps as object), bare_evm_beside_s2: 17_315 },
      sources: { throughput: run, floor: 'run-b.json' },
      cpu_ceiling_tps: { s2: 7194, s2_server: 9709, cores: 2, s2_others: 6897 },
      cpu_ms_per_tx_s2: {
        clients: 0.072,
        operators: 0.038,
        executor: 0.133,
        watchdogs: 0.034,
        anvil: 0.001,
      },
    }
    const checks = checkTargets(full)
    const half = row(checks, 's=2 throughput ≥ 50 %')
    assert.match(
      half.measured,
      /; CPU per transfer 4\.81 bare-EVM transfers of the run beside s = 2 \(the target, 9747 tx\/s, allows 3\.55 of them with every core busy: above\)/,
    )
    const anvil = row(checks, 's=2 throughput ≥ 3 × anvil')
    assert.match(
      anvil.measured,
      /; CPU per transfer 4\.81 bare-EVM transfers of the run beside s = 2 \(the target, 1759 tx\/s, allows 19\.69 of them with every core busy: within\)/,
    )
    // The allowance says what the CPU ceiling says, in other units: above exactly when the
    // ceiling (cores / CPU per transfer) is below the target.
    assert.match(half.measured, /7194 tx\/s < target/)
    assert.match(anvil.measured, /7194 tx\/s ≥ target/)
    // Without the bare EVM measured beside s = 2 there is nothing to count in.
    const { bare_evm_beside_s2: _, ...tps } = full.throughput_tps as Record<string, number>
    assert.doesNotMatch(
      row(checkTargets({ ...full, throughput_tps: tps }), 's=2 throughput ≥ 50 %').measured,
      /bare-EVM transfers/,
    )
  })

  test('gas is judged on the highest sample of each operation over every pool and variant', () => {
    // latest.json of 2026-12-07 08:01 gave medians; a challenge of the executor with the user's
    // transaction as payload costs more than one without, and the paper's figure is one number.
    const gasByPool = {
      pool3: {
        challengeExecutor: 63_317,
        'challengeExecutor (tx payload)': 71_642,
        challengeWatchdogs: 91_500,
        register: 135_174,
        createContract: 116_842,
        drawPool: 189_287,
        activate: 67_875,
        'setup (createContract+drawPool+activate)': 374_004,
      },
      pool5: { challengeExecutor: 63_317, 'challengeExecutor (tx payload)': 71_654 },
      pool11: { challengeWatchdogs: 82_593, 'setup (createContract+drawPool+activate)': 666_117 },
    }
    const checks = checkTargets({ gas: gasByPool.pool3, gas_by_pool: gasByPool })
    const challenge = row(checks, 'gas challengeExecutor ≤')
    assert.equal(challenge.met, false)
    assert.equal(
      challenge.measured,
      '71,654 (highest sample: challengeExecutor (tx payload), pool of 5)',
    )
    const watchdogs = row(checks, 'gas challengeWatchdogs ≤')
    assert.equal(watchdogs.met, false, '91,500 at pool 3 is above 90,000')
    assert.equal(watchdogs.measured, '91,500 (highest sample: pool of 3)')
    assert.equal(row(checks, 'gas register ≤').met, true)
    // setup is its own operation: drawPool's figure is not one of its variants.
    assert.equal(row(checks, 'gas setup').measured, '666,117 (highest sample: pool of 11)')
    assert.equal(row(checks, 'gas deposit ≤').met, null, 'not measured')
  })

  test('memory per instance is compared with 10^6 bytes', () => {
    const mem = (kib: number) =>
      checkTargets({
        memory: {
          per_instance_kib: kib,
          enclaves_total_mib_0: 300,
          enclaves_total_mib_1: 300.5,
          enclaves_total_mib_10: 306,
          enclaves_total_mib_100: 395,
        },
      })
    const within = row(mem(976), 'memory per idle instance')
    assert.equal(within.met, true, '976 KiB = 999,424 bytes')
    assert.equal(
      within.measured,
      "976 KiB = 999,424 bytes (least-squares slope of the enclaves' RSS over 0, 1, 10, 100 instances)",
    )
    assert.equal(row(mem(977), 'memory per idle instance').met, false, '1,000,448 bytes')
    assert.equal(row(mem(-12), 'memory per idle instance').met, null, 'inconclusive')
  })

  test('a floor from another run is not compared', () => {
    const checks = checkTargets(
      latest({
        s2: 770,
        bare: 3879,
        anvil: 878,
        ceiling: 1000,
        floorBare: 2931,
        floorSource: 'run-b.json',
      }),
    )
    const half = row(checks, 's=2 throughput ≥ 50 %')
    assert.match(half.measured, /floor ceiling from another run, not compared$/)
    assert.doesNotMatch(half.measured, /out of reach/)
  })
})
