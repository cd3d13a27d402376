/**
 * A sum of 256-bit words modulo 2^256 in eight 32-bit limbs. The state digest adds and subtracts
 * one keccak output per changed leaf; limbs cost no BigInt per step.
 */
export class WordSum {
  /** Least significant limb first. */
  private readonly limbs = new Uint32Array(8)

  /** Adds a 32-byte big-endian word. */
  add(word: Uint8Array): void {
    let carry = 0
    for (let i = 0; i < 8; i++) {
      const s = this.limbs[i]! + limb(word, i) + carry
      this.limbs[i] = s
      carry = s > 0xffffffff ? 1 : 0
    }
  }

  /** Subtracts a 32-byte big-endian word. */
  sub(word: Uint8Array): void {
    let borrow = 0
    for (let i = 0; i < 8; i++) {
      const d = this.limbs[i]! - limb(word, i) - borrow
      this.limbs[i] = d
      borrow = d < 0 ? 1 : 0
    }
  }

  /** A copy of the limbs, for `restore`. */
  save(): Uint32Array {
    return this.limbs.slice()
  }

  /** Puts back limbs taken by `save`. */
  restore(saved: Uint32Array): void {
    this.limbs.set(saved)
  }

  /** The sum as a 32-byte big-endian word. */
  toWord(): Uint8Array {
    const out = new Uint8Array(32)
    const view = new DataView(out.buffer)
    for (let i = 0; i < 8; i++) view.setUint32(28 - 4 * i, this.limbs[i]!)
    return out
  }
}

/** Limb `i` (0 = least significant) of a 32-byte big-endian word. */
function limb(word: Uint8Array, i: number): number {
  const j = 28 - 4 * i
  return ((word[j]! << 24) | (word[j + 1]! << 16) | (word[j + 2]! << 8) | word[j + 3]!) >>> 0
}
