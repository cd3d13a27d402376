/**
 * Restarting an operator the fault schedule crashed, in a simulator whose operators also crash
 * at named points.
 */
import { existsSync } from 'node:fs'
import { join } from 'node:path'

/** What the restart needs of the devnet. */
export type Restartable = {
  operators: ReadonlyArray<{ dataDir: string }>
  startOperator: (i: number) => Promise<void>
}

/** The marker an operator leaves in its data directory when it crashes at a named point. */
export const crashMarker = (dataDir: string): string => join(dataDir, 'crash-point')

/**
 * Starts operator `i`. An operator that crashes at a named point while it starts (restoring,
 * catching up or dropping a removed instance's state, before it serves) is one more injected
 * crash, not a failed fault: it left its marker, and the crash watcher counts it and restarts
 * the operator (simulator seed 188). Any other failure to start is thrown.
 */
export async function restartCrashed(devnet: Restartable, i: number): Promise<void> {
  await devnet.startOperator(i).catch((e: Error) => {
    if (!existsSync(crashMarker(devnet.operators[i]!.dataDir))) throw e
  })
}
