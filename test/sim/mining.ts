/**
 * The simulator's block production. The devnet's anvil mines a transaction at once (automine)
 * and an empty block every second (`--mixed-mining`), so confirmations and time progress. A
 * chain reorganisation needs mining paused from reading the blocks it replaces until it has
 * replaced them: a transaction mined in between lands in a block that is replaced unread, and
 * is lost for good (simulator seed 196: a user's withdraw never mined). Anvil has no call that
 * resumes mixed mining once paused, so the simulator keeps anvil's automine and mines the
 * one-second blocks itself; every block it mines, and every clock move, waits while a
 * reorganisation holds mining paused.
 */
import type { Rpc } from './reorg.ts'

export class BlockClock {
  private queue: Promise<unknown> = Promise.resolve()
  private ticking = false
  private timer: NodeJS.Timeout | undefined

  constructor(private readonly rpc: Rpc) {}

  /** Turns the chain's interval mining off (automine stays on) and mines a block every `ms`. */
  async start(ms = 1_000): Promise<void> {
    await this.rpc('evm_setIntervalMining', [0])
    await this.rpc('evm_setAutomine', [true])
    this.timer = setInterval(() => this.tick(), ms)
    this.timer.unref()
  }

  /** Runs `f` after every mining step queued before it, and before any queued after it. */
  private exclusive<T>(f: () => Promise<T>): Promise<T> {
    const run = this.queue.then(f, f)
    this.queue = run.catch(() => undefined)
    return run
  }

  private tick(): void {
    // One pending tick at most: a long pause does not leave a burst of blocks behind it.
    if (this.ticking) return
    this.ticking = true
    this.exclusive(() => this.rpc('evm_mine', []))
      .catch(() => undefined)
      .finally(() => {
        this.ticking = false
      })
  }

  /** Moves the chain's clock `seconds` on and mines a block. */
  advance(seconds: number): Promise<void> {
    return this.exclusive(async () => {
      await this.rpc('evm_increaseTime', [seconds])
      await this.rpc('evm_mine', [])
    })
  }

  /**
   * Runs `f` with no block mined meanwhile: transactions sent while it runs wait in the pool
   * and are mined by the next block after it.
   */
  paused<T>(f: () => Promise<T>): Promise<T> {
    return this.exclusive(async () => {
      await this.rpc('evm_setAutomine', [false])
      try {
        return await f()
      } finally {
        await this.rpc('evm_setAutomine', [true])
        // Whatever arrived meanwhile is mined now, not at the next tick.
        await this.rpc('evm_mine', [])
      }
    })
  }

  stop(): void {
    clearInterval(this.timer)
  }
}
