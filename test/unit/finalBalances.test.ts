/**
 * Final balances of a terminated instance: the TypeScript tree must match what PoseManager
 * checks (OpenZeppelin leaf encoding, sorted-pair hashing), cross-checked against viem's ABI
 * encoder, for any set of balances.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import { encodeAbiParameters, keccak256 } from 'viem'
import {
  bytesToHex,
  compareBytes,
  decodeTerminated,
  encodeFinalPage,
  type FinalBalance,
  finalBalanceLeaf,
  finalBalanceProof,
  finalBalancesPages,
  finalBalancesRoot,
  LIMITS,
  MAX_FINAL_ACCOUNTS,
  MAX_FINAL_PAGES,
  ProtocolError,
  processFinalBalanceProof,
  systemWithdrawnSlot,
  terminateDigest,
} from '../../src/protocol/index.ts'

const balance = fc.record({
  account: fc.uint8Array({ minLength: 20, maxLength: 20 }),
  cumulative: fc.bigInt({ min: 0n, max: (1n << 256n) - 1n }),
})
const distinct = (bs: FinalBalance[]) =>
  bs.filter((b, i) => bs.findIndex((o) => compareBytes(o.account, b.account) === 0) === i)

/** Every leaf of `raw` (first entry per account) proves against the root; others do not. */
function checkProofs(raw: FinalBalance[], outsider: FinalBalance): true {
  const bs = distinct(raw)
  const root = finalBalancesRoot(bs)
  for (const b of bs) {
    assert.deepEqual(processFinalBalanceProof(b, finalBalanceProof(bs, b)), root)
  }
  // Another amount in range (+1 would leave uint256 for the largest cumulative).
  const wrong = { account: bs[0]!.account, cumulative: bs[0]!.cumulative ^ 1n }
  assert.notDeepEqual(processFinalBalanceProof(wrong, finalBalanceProof(bs, bs[0]!)), root)
  if (!bs.some((b) => compareBytes(b.account, outsider.account) === 0))
    assert.throws(
      () => finalBalanceProof(bs, outsider),
      (e: unknown) => e instanceof ProtocolError && e.code === 'MALFORMED',
    )
  return true
}

describe('final balances', () => {
  test('every leaf proves against the root; other leaves do not', () => {
    fc.assert(
      fc.property(fc.array(balance, { minLength: 1, maxLength: 40 }), balance, checkProofs),
      {
        numRuns: 60,
      },
    )
  })

  test('the largest cumulative amount: a wrong amount fails its proof instead of overflowing (property counterexample, seed 352120946)', () => {
    const zero = new Uint8Array(20)
    checkProofs(
      [
        { account: zero, cumulative: (1n << 256n) - 1n },
        { account: zero, cumulative: 0n },
      ],
      { account: zero, cumulative: 0n },
    )
  })

  test('leaf, page, digest and withdrawn slot match viem encodings', () => {
    fc.assert(
      fc.property(fc.array(balance, { maxLength: 10 }), (bs) => {
        for (const b of bs) {
          const enc = encodeAbiParameters(
            [{ type: 'address' }, { type: 'uint256' }],
            [bytesToHex(b.account), b.cumulative],
          )
          assert.equal(bytesToHex(finalBalanceLeaf(b)), keccak256(keccak256(enc)))
        }
        const root = new Uint8Array(32).fill(bs.length)
        const page = encodeAbiParameters(
          [{ type: 'bytes32' }, { type: 'address[]' }, { type: 'uint256[]' }],
          [bytesToHex(root), bs.map((b) => bytesToHex(b.account)), bs.map((b) => b.cumulative)],
        )
        assert.equal(bytesToHex(encodeFinalPage(root, bs)), page)
        const decoded = decodeTerminated(encodeFinalPage(root, bs))
        assert.deepEqual(decoded.root, root)
        assert.deepEqual(
          decoded.balances,
          bs.map((b) => ({ account: b.account, cumulative: b.cumulative })),
        )
        return true
      }),
      { numRuns: 40 },
    )
    const p = {
      chainId: 31337n,
      manager: new Uint8Array(20).fill(0x42),
      instance: 7n,
      root: new Uint8Array(32).fill(1),
      page: 5,
      pages: 12,
      pageHash: new Uint8Array(32).fill(2),
      eventIndex: 9n,
      eventHash: new Uint8Array(32).fill(3),
    }
    const expected = keccak256(
      encodeAbiParameters(
        [
          { type: 'string' },
          { type: 'uint256' },
          { type: 'address' },
          { type: 'uint256' },
          { type: 'bytes32' },
          { type: 'uint256' },
          { type: 'bytes32' },
          { type: 'uint64' },
          { type: 'bytes32' },
        ],
        [
          'POSE-TERMINATE-v2',
          p.chainId,
          bytesToHex(p.manager),
          p.instance,
          bytesToHex(p.root),
          (12n << 16n) | 5n,
          bytesToHex(p.pageHash),
          p.eventIndex,
          bytesToHex(p.eventHash),
        ],
      ),
    )
    assert.equal(bytesToHex(terminateDigest(p)), expected)
    const who = new Uint8Array(20).fill(0xab)
    assert.equal(
      systemWithdrawnSlot(who),
      BigInt(
        keccak256(
          encodeAbiParameters([{ type: 'address' }, { type: 'uint256' }], [bytesToHex(who), 0n]),
        ),
      ),
    )
  })

  test('final balances go in pages of at most MAX_FINAL_ACCOUNTS, in their order; none make one empty page', () => {
    const bs = Array.from({ length: 2 * MAX_FINAL_ACCOUNTS + 3 }, (_, i) => ({
      account: new Uint8Array(20).fill(i % 256),
      cumulative: BigInt(i),
    }))
    const pages = finalBalancesPages(bs)
    assert.deepEqual(
      pages.map((p) => p.length),
      [MAX_FINAL_ACCOUNTS, MAX_FINAL_ACCOUNTS, 3],
    )
    assert.deepEqual(pages.flat(), bs)
    assert.deepEqual(finalBalancesPages([]), [[]])
    // What the manager takes (PoseManager.MAX_FINAL_PAGES: Termination.t.sol takes 128, refuses 129).
    assert.equal(MAX_FINAL_PAGES, 128)
    assert.equal(LIMITS.maxFinalAccounts, MAX_FINAL_ACCOUNTS * MAX_FINAL_PAGES)
    assert.deepEqual(finalBalancesPages(bs.slice(0, MAX_FINAL_ACCOUNTS)).length, 1)
  })

  test('no balances: the zero root', () => {
    assert.deepEqual(finalBalancesRoot([]), new Uint8Array(32))
  })
})
