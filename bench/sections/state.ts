/**
 * Section `state`: the cost of one update and of a full state handover as the state grows
 * (10^3 to 10^5 storage slots), in-process on the enclave's `World`, with the same codec and
 * encryption the enclaves use:
 *
 * - update = executor: nonce, transfer, write set, encode, AES-GCM seal; watchdog: open,
 *   decode, apply (digest updated incrementally); the digests are compared.
 * - handover = snapshot, encode, box to the new member (x25519 + AES-GCM), open, decode,
 *   apply on an empty world (what a refilled or promoted member receives).
 */
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { encodeFunctionData } from 'viem'
import { privateTokenAbi } from '../../examples/contracts.generated.ts'
import {
  aeadOpen,
  aeadSeal,
  BOX_CONTEXT,
  boxOpen,
  boxSeal,
  bytesToHex,
  decodeWriteSet,
  encodeWriteSet,
  equalBytes,
  generateX25519KeyPair,
  hexToBytes,
  INSTANCE_ADDRESS,
  keccak256,
  randomBytes,
  wordToUint,
} from '../../src/protocol/index.ts'
import { printTable, progress, type Row, round } from '../lib/common.ts'
import { BLOCK, newWorld, tokenWorld } from '../lib/world.ts'

export type StateConfig = { slotCounts: number[]; updates: number }

export type StatePoint = {
  slots: number
  updateMs: { executor: number; watchdog: number; total: number }
  updateBytes: number
  handoverMs: {
    snapshot: number
    encode: number
    seal: number
    open: number
    decode: number
    apply: number
    total: number
  }
  handoverBytes: number
  /** Heap growth of the world while filling the slots, per slot (bytes, after a forced GC). */
  heapBytesPerSlot: number
}

export type StateResult = { points: StatePoint[]; summary: Record<string, number> }

const ms = (t: number) => round(performance.now() - t, 3)

// A forced GC makes the heap-per-slot figure meaningful (the flag can be set at run time).
setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

async function measure(slots: number, updates: number): Promise<StatePoint> {
  const { world: exec, users } = await tokenWorld()
  gc()
  const heap0 = process.memoryUsage().heapUsed
  const seed = new Uint8Array(32)
  const view = new DataView(seed.buffer)
  for (let i = 0; i < slots; i++) {
    view.setUint32(0, i)
    // Mapping-like slots (keccak of a key) with non-zero values.
    exec.setStorageWord(INSTANCE_ADDRESS, wordToUint(keccak256(seed)), BigInt(i + 1))
  }
  exec.takeWriteSet()
  gc()
  const heapBytesPerSlot = Math.max(0, (process.memoryUsage().heapUsed - heap0) / slots)

  // Handover of the whole state to a new member.
  const member = generateX25519KeyPair()
  let t = performance.now()
  const snap = exec.snapshot()
  const snapshotMs = ms(t)
  t = performance.now()
  const encoded = encodeWriteSet(snap)
  const encodeMs = ms(t)
  t = performance.now()
  const { box } = boxSeal({
    recipientPublicKey: member.publicKey,
    plaintext: encoded,
    context: BOX_CONTEXT.genesis,
  })
  const sealMs = ms(t)
  t = performance.now()
  const { plaintext } = boxOpen({
    recipientSecretKey: member.secretKey,
    recipientPublicKey: member.publicKey,
    box,
    context: BOX_CONTEXT.genesis,
  })
  const openMs = ms(t)
  t = performance.now()
  const decoded = decodeWriteSet(plaintext)
  const decodeMs = ms(t)
  const replica = await newWorld()
  t = performance.now()
  replica.applyWriteSet(decoded)
  const applyMs = ms(t)
  if (!equalBytes(replica.digest(), exec.digest())) throw new Error('handover: digests differ')

  // Updates: one transfer each, replicated to the member.
  const stateKey = randomBytes(32)
  const calls = users.map((u) =>
    hexToBytes(
      encodeFunctionData({
        abi: privateTokenAbi,
        functionName: 'transfer',
        args: [bytesToHex(u), 1n],
      }),
    ),
  )
  let execMs = 0
  let wdMs = 0
  let bytes = 0
  const run = async (n: number, record: boolean) => {
    for (let k = 0; k < n; k++) {
      let s = performance.now()
      const from = users[0]!
      exec.setNonce(from, exec.getNonce(from) + 1n)
      const r = await exec.call({
        from,
        to: INSTANCE_ADDRESS,
        value: 0n,
        data: calls[1 + (k % 7)]!,
        gasLimit: 200_000n,
        block: BLOCK,
      })
      if (r.status !== 'success') throw new Error(`update ${k}: ${r.status}`)
      const sealed = aeadSeal(stateKey, encodeWriteSet(exec.takeWriteSet()))
      const e = performance.now() - s
      s = performance.now()
      replica.applyWriteSet(decodeWriteSet(aeadOpen(stateKey, sealed)))
      if (!equalBytes(replica.digest(), exec.digest()))
        throw new Error(`update ${k}: digests differ`)
      if (record) {
        execMs += e
        wdMs += performance.now() - s
        bytes += sealed.length
      }
    }
  }
  await run(20, false) // warm-up
  await run(updates, true)
  return {
    slots,
    updateMs: {
      executor: round(execMs / updates, 3),
      watchdog: round(wdMs / updates, 3),
      total: round((execMs + wdMs) / updates, 3),
    },
    updateBytes: Math.round(bytes / updates),
    handoverMs: {
      snapshot: snapshotMs,
      encode: encodeMs,
      seal: sealMs,
      open: openMs,
      decode: decodeMs,
      apply: applyMs,
      total: round(snapshotMs + encodeMs + sealMs + openMs + decodeMs + applyMs, 1),
    },
    handoverBytes: box.length,
    heapBytesPerSlot: Math.round(heapBytesPerSlot),
  }
}

export async function benchState(cfg: StateConfig): Promise<StateResult> {
  const points: StatePoint[] = []
  for (const n of cfg.slotCounts) {
    progress(`state: ${n.toLocaleString('en-US')} slots`)
    points.push(await measure(n, cfg.updates))
  }
  const summary: Record<string, number> = {}
  for (const p of points) {
    summary[`update_ms_${p.slots}`] = p.updateMs.total
    summary[`handover_ms_${p.slots}`] = p.handoverMs.total
    summary[`handover_bytes_${p.slots}`] = p.handoverBytes
  }
  const rows: Row[] = points.map((p) => ({
    slots: p.slots,
    update_ms: p.updateMs.total,
    'update_ms (exec/wd)': `${p.updateMs.executor} / ${p.updateMs.watchdog}`,
    update_bytes: p.updateBytes,
    handover_ms: p.handoverMs.total,
    'handover: snap/enc/seal/open/dec/apply ms': [
      p.handoverMs.snapshot,
      p.handoverMs.encode,
      p.handoverMs.seal,
      p.handoverMs.open,
      p.handoverMs.decode,
      p.handoverMs.apply,
    ]
      .map((x) => round(x, 1))
      .join(' / '),
    handover_bytes: p.handoverBytes,
    heap_bytes_per_slot: p.heapBytesPerSlot,
  }))
  printTable('Update and handover cost as state grows (in-process World, one core)', rows, [
    'update = one transfer: executor (nonce, call, write set, encode, seal) + watchdog (open, decode, apply).',
    'handover = the full state boxed to a new member and applied to an empty world.',
  ])
  return { points, summary }
}
