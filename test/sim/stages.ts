/**
 * The stages of a simulator scenario, in order: the instance's set-up (clients, deployment,
 * token hand-out, deposits), the workload with its fault schedule, the pool settling and the
 * final checks, the instance's termination with its own fault and checks, and the end. The
 * crash watcher and the chain controller run from the set-up until the end, the fault schedule
 * during the workload.
 */
const ORDER = ['setup', 'workload', 'settling', 'terminating', 'ended'] as const

export type Stage = (typeof ORDER)[number]

export class Stages {
  private current: Stage = 'setup'

  enter(stage: Stage): void {
    this.current = stage
  }

  /** Whether the scenario is at `stage` or past it. */
  reached(stage: Stage): boolean {
    return ORDER.indexOf(this.current) >= ORDER.indexOf(stage)
  }
}
