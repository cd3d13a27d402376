/**
 * The bare EVM: PrivateToken transfers on the enclave's EVM world with no protocol, the ceiling
 * full-protocol throughput is compared with. `bareEvmInChild` measures it in a child process
 * started with Node's default V8 flags, as an enclave process is (`src/tee/enclaveHost.ts`):
 * the benchmark process runs with the SDK clients' settings (`LOAD_GENERATOR_FLAGS`), which
 * would otherwise change the figure POSE is divided by.
 *
 * Run as a script (`node --import tsx bench/lib/bareEvm.ts <txs> <fast|stock>`) it prints one
 * JSON line with the result.
 */
import { spawn } from 'node:child_process'
import { resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { encodeWriteSet, INSTANCE_ADDRESS } from '../../src/protocol/index.ts'
import { onCleanup, round } from './common.ts'
import { BLOCK, fundedTokenWorld, transferCalldata } from './world.ts'

/**
 * Transfers run before the measured ones. V8 needs a few thousand to reach its steady rate on
 * this code: after 500 the next thousand ran at about half of it, and the first 8,000 measured
 * averaged 7,150–11,199 tx/s in five runs where the steady rate is ≈ 14,500 (bench/README.md,
 * "2026-12-06, morning"). A ceiling measured cold flatters whatever is divided by it.
 */
export const WARM_UP_TXS = 4_000

export type BareEvmResult = { txs: number; tps: number; tpsWithWriteSet: number; gasPerTx: number }

/** Transfers in this process: `txs` plain, then `txs` taking each one's write set. */
export async function bareEvm(txs: number, fastPaths = true): Promise<BareEvmResult> {
  const { world, users } = await fundedTokenWorld(fastPaths)
  // Calldata is prepared up front: the figure is the EVM's work, not ABI encoding.
  const calls = users.map((_, i) => transferCalldata(users[(i + 1) % users.length]!, 1n))
  const run = async (n: number, withWriteSet: boolean) => {
    let gas = 0n
    const t0 = performance.now()
    for (let k = 0; k < n; k++) {
      const i = k % users.length
      const from = users[i]!
      if (withWriteSet) world.setNonce(from, world.getNonce(from) + 1n)
      const r = await world.call({
        from,
        to: INSTANCE_ADDRESS,
        value: 0n,
        data: calls[i]!,
        gasLimit: 200_000n,
        block: BLOCK,
      })
      if (r.status !== 'success') throw new Error(`bare transfer ${k}: ${r.status}`)
      gas += r.gasUsed
      if (withWriteSet) encodeWriteSet(world.takeWriteSet())
    }
    if (!withWriteSet) world.takeWriteSet()
    return { tps: n / ((performance.now() - t0) / 1000), gas: Number(gas) / n }
  }
  await run(WARM_UP_TXS, false)
  const plain = await run(txs, false)
  const withWs = await run(txs, true)
  return {
    txs,
    tps: round(plain.tps, 0),
    tpsWithWriteSet: round(withWs.tps, 0),
    gasPerTx: round(plain.gas, 0),
  }
}

const SELF = fileURLToPath(import.meta.url)
/** Longest a child's measurement may take (the full run's 8,000 transfers take seconds). */
const CHILD_TIMEOUT_MS = 300_000

/** `bareEvm` in a child process with Node's default V8 flags (see the file's comment). */
export function bareEvmInChild(txs: number, fastPaths = true): Promise<BareEvmResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', SELF, String(txs), fastPaths ? 'fast' : 'stock'],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    )
    const removeCleanup = onCleanup(async () => void child.kill('SIGKILL'))
    const timer = setTimeout(() => child.kill('SIGKILL'), CHILD_TIMEOUT_MS)
    let out = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d
    })
    child.once('error', (e) => {
      clearTimeout(timer)
      removeCleanup()
      reject(new Error(`bare EVM child: ${e.message}`))
    })
    child.once('close', (code, signal) => {
      clearTimeout(timer)
      removeCleanup()
      try {
        if (code !== 0) throw new Error(`exited with ${signal ?? `code ${code}`}`)
        resolve(JSON.parse(out.trim().split('\n').at(-1) ?? '') as BareEvmResult)
      } catch (e) {
        reject(new Error(`bare EVM child: ${(e as Error).message}`))
      }
    })
  })
}

if (process.argv[1] && resolve(process.argv[1]) === SELF) {
  const txs = Number(process.argv[2])
  const mode = process.argv[3]
  if (!Number.isInteger(txs) || txs < 1 || (mode !== 'fast' && mode !== 'stock')) {
    console.error('usage: node --import tsx bench/lib/bareEvm.ts <txs ≥ 1> <fast|stock>')
    process.exit(2)
  }
  console.log(JSON.stringify(await bareEvm(txs, mode === 'fast')))
}
