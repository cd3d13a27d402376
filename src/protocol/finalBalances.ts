/**
 * Final balances of a terminated instance (SPEC §4 Coins): every funded account's final
 * cumulative withdrawal, committed to by a Merkle root the manager pays against. Leaves use
 * OpenZeppelin's standard encoding `keccak256(bytes.concat(keccak256(abi.encode(account,
 * amount))))`; inner nodes hash sorted pairs, so `MerkleProof.verify` accepts the proofs.
 */
import { addressToWord, compareBytes, concatBytes, uintToWord, wordToUint } from './bytes.ts'
import { SYSTEM_WITHDRAWN_SLOT } from './constants.ts'
import { ProtocolError } from './errors.ts'
import { keccak256 } from './hash.ts'

export type FinalBalance = { account: Uint8Array; cumulative: bigint }

/** Most accounts a page of final balances may list (MAX_FINAL_ACCOUNTS in PoseTypes.sol). */
export const MAX_FINAL_ACCOUNTS = 1024
/** Most pages final balances may take (PoseManager.MAX_FINAL_PAGES). */
export const MAX_FINAL_PAGES = 128

/** The PoseSystem storage slot of `withdrawn[account]` (a Solidity mapping at slot 0). */
export function systemWithdrawnSlot(account: Uint8Array): bigint {
  return wordToUint(
    keccak256(concatBytes(addressToWord(account), uintToWord(SYSTEM_WITHDRAWN_SLOT))),
  )
}

export function finalBalanceLeaf(b: FinalBalance): Uint8Array {
  return keccak256(keccak256(concatBytes(addressToWord(b.account), uintToWord(b.cumulative))))
}

function hashPair(a: Uint8Array, b: Uint8Array): Uint8Array {
  return compareBytes(a, b) <= 0 ? keccak256(concatBytes(a, b)) : keccak256(concatBytes(b, a))
}

/** Tree levels from the sorted leaves up to the root; an odd node moves up unchanged. */
function levels(balances: FinalBalance[]): Uint8Array[][] {
  const out: Uint8Array[][] = [balances.map(finalBalanceLeaf).sort(compareBytes)]
  while (out.at(-1)!.length > 1) {
    const below = out.at(-1)!
    const next: Uint8Array[] = []
    for (let i = 0; i < below.length; i += 2)
      next.push(i + 1 < below.length ? hashPair(below[i]!, below[i + 1]!) : below[i]!)
    out.push(next)
  }
  return out
}

/** The root over `balances` (zero for none). */
export function finalBalancesRoot(balances: FinalBalance[]): Uint8Array {
  if (balances.length === 0) return new Uint8Array(32)
  return levels(balances).at(-1)![0]!
}

/** The proof for `balance`, which must be one of `balances`. */
export function finalBalanceProof(balances: FinalBalance[], balance: FinalBalance): Uint8Array[] {
  const tree = levels(balances)
  const leaf = finalBalanceLeaf(balance)
  let index = tree[0]!.findIndex((l) => compareBytes(l, leaf) === 0)
  if (index < 0)
    throw new ProtocolError('MALFORMED', 'final balances: the balance is not one of the leaves')
  const proof: Uint8Array[] = []
  for (const level of tree.slice(0, -1)) {
    const sibling = index ^ 1
    if (sibling < level.length) proof.push(level[sibling]!)
    index >>= 1
  }
  return proof
}

/** Recomputes a root from a leaf and its proof (what `MerkleProof.processProof` does). */
export function processFinalBalanceProof(balance: FinalBalance, proof: Uint8Array[]): Uint8Array {
  return proof.reduce(hashPair, finalBalanceLeaf(balance))
}

/**
 * `balances` in pages of at most `MAX_FINAL_ACCOUNTS`, in their order (the enclave's: by
 * address); one empty page for none.
 */
export function finalBalancesPages(balances: FinalBalance[]): FinalBalance[][] {
  const pages: FinalBalance[][] = []
  for (let i = 0; i < balances.length; i += MAX_FINAL_ACCOUNTS)
    pages.push(balances.slice(i, i + MAX_FINAL_ACCOUNTS))
  return pages.length > 0 ? pages : [[]]
}

/**
 * `abi.encode(bytes32 root, address[] accounts, uint256[] cumulatives)`: a page of final
 * balances as its event (`FinalBalancesPage`, or `Terminated` for the last page in) carries it;
 * the executor signs its hash (`terminateDigest`).
 */
export function encodeFinalPage(root: Uint8Array, page: FinalBalance[]): Uint8Array {
  const n = page.length
  return concatBytes(
    root,
    uintToWord(96n),
    uintToWord(BigInt(128 + 32 * n)),
    uintToWord(BigInt(n)),
    ...page.map((b) => addressToWord(b.account)),
    uintToWord(BigInt(n)),
    ...page.map((b) => uintToWord(b.cumulative)),
  )
}
