import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { crashMarker, restartCrashed } from '../sim/restart.ts'

describe('simulator: restarting an operator the schedule crashed', () => {
  const devnetWith = (dataDir: string, start: () => Promise<void>) => ({
    operators: [{ dataDir }],
    startOperator: async (_i: number) => start(),
  })
  const killed = () => Promise.reject(new Error('operator 0 was killed by SIGKILL while starting'))

  it('seed 188: a crash at a named point while it starts is left to the crash watcher', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pose-sim-restart-'))
    try {
      writeFileSync(crashMarker(dir), 'before-seal')
      await restartCrashed(devnetWith(dir, killed), 0)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('any other failure to start is a finding', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pose-sim-restart-'))
    try {
      await assert.rejects(restartCrashed(devnetWith(dir, killed), 0), /killed by SIGKILL/)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('a clean start resolves', async () => {
    let started = 0
    await restartCrashed(
      devnetWith('/nonexistent', async () => {
        started++
      }),
      0,
    )
    assert.equal(started, 1)
  })
})
