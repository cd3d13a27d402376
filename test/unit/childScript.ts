/** Runs an ES module script in a child Node process (with tsx); for tests of whole-process behaviour. */
import { spawn } from 'node:child_process'
import { once } from 'node:events'

/**
 * The script's exit code, the signal that ended it (SIGKILL once `killAfterMs` passed) and its
 * standard output.
 */
export async function runScript(
  script: string,
  o: { nodeFlags?: string[]; killAfterMs: number },
): Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string }> {
  const child = spawn(
    process.execPath,
    [...(o.nodeFlags ?? []), '--import', 'tsx', '--input-type=module', '-e', script],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  )
  let out = ''
  child.stdout.on('data', (c: Buffer) => {
    out += c
  })
  const timer = setTimeout(() => child.kill('SIGKILL'), o.killAfterMs)
  const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null]
  clearTimeout(timer)
  return { code, signal, out }
}
