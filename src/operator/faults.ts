/**
 * Fault injection on outbound peer links, for the fault-injection simulator (`test/sim`). Off
 * unless `POSE_LINK_FAULTS` holds a JSON config; seeded, so a scenario replays the same
 * decisions for the same sequence of frames. Drops, duplicates, delays (which also reorders)
 * and tampers with frames: the enclaves' resend timers, hash chains and signatures must absorb
 * every one of them.
 */
import { z } from 'zod'

const configSchema = z.strictObject({
  seed: z.number().int().nonnegative(),
  /** Probability that a frame is dropped. */
  drop: z.number().min(0).max(1).default(0),
  /** Probability that a frame is sent twice. */
  duplicate: z.number().min(0).max(1).default(0),
  /** Probability that a frame is held back up to `maxDelayMs` (later frames overtake it). */
  delay: z.number().min(0).max(1).default(0),
  maxDelayMs: z.number().int().min(0).max(10_000).default(50),
  /** Probability that one hex digit of the envelope body or signature is flipped. */
  tamper: z.number().min(0).max(1).default(0),
  /** Probability that an earlier frame to the same peer is sent again (a replay). */
  replay: z.number().min(0).max(1).default(0),
})

export type LinkFaultConfig = z.infer<typeof configSchema>
export type LinkFaultCounts = {
  drop: number
  duplicate: number
  delay: number
  tamper: number
  replay: number
}

const REPLAY_HISTORY = 32

/** A small seeded generator (mulberry32): uniform floats in [0, 1). */
export function seededRandom(seed: number): () => number {
  // Scrambled so that neighbouring seeds start far apart.
  let a = Math.imul((seed >>> 0) ^ 0x5bd1e995, 0x9e3779b9) >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export class LinkFaults {
  readonly counts: LinkFaultCounts = { drop: 0, duplicate: 0, delay: 0, tamper: 0, replay: 0 }
  private readonly random: () => number
  private readonly history: string[] = []

  constructor(readonly config: LinkFaultConfig) {
    this.random = seededRandom(config.seed)
  }

  /** The injector configured by `POSE_LINK_FAULTS`, or undefined when it is not set. */
  static fromEnv(value: string | undefined): LinkFaults | undefined {
    if (!value) return undefined
    let json: unknown
    try {
      json = JSON.parse(value)
    } catch {
      throw new Error('POSE_LINK_FAULTS: not JSON')
    }
    const r = configSchema.safeParse(json)
    if (!r.success) throw new Error(`POSE_LINK_FAULTS: ${r.error.issues[0]?.message ?? 'invalid'}`)
    return new LinkFaults(r.data)
  }

  /** What to send for one frame: nothing, the frame, a tampered copy, or two copies, each with a delay. */
  apply(frame: string): Array<{ frame: string; delayMs: number }> {
    const c = this.config
    const old = this.history[Math.floor(this.random() * this.history.length)]
    this.history.push(frame)
    if (this.history.length > REPLAY_HISTORY) this.history.shift()
    const replayed: Array<{ frame: string; delayMs: number }> = []
    if (old !== undefined && this.random() < c.replay) {
      this.counts.replay++
      replayed.push({ frame: old, delayMs: 0 })
    }
    if (this.random() < c.drop) {
      this.counts.drop++
      return replayed
    }
    let out = frame
    if (this.random() < c.tamper) {
      this.counts.tamper++
      out = this.tamper(frame)
    }
    const delayMs = () => {
      if (this.random() >= c.delay) return 0
      this.counts.delay++
      return Math.floor(this.random() * c.maxDelayMs)
    }
    const sends = [{ frame: out, delayMs: delayMs() }]
    if (this.random() < c.duplicate) {
      this.counts.duplicate++
      sends.push({ frame: out, delayMs: delayMs() })
    }
    return [...replayed, ...sends]
  }

  /** Flips one hex digit of the envelope's body or signature (keeps the frame well-formed). */
  private tamper(frame: string): string {
    const msg = JSON.parse(frame) as { envelope: Record<string, unknown> }
    const field = this.random() < 0.5 ? 'body' : 'signature'
    const value = msg.envelope[field]
    if (typeof value !== 'string' || value.length <= 2) return frame
    const i = 2 + Math.floor(this.random() * (value.length - 2))
    const digit = value[i] === '0' ? '1' : '0'
    msg.envelope[field] = value.slice(0, i) + digit + value.slice(i + 1)
    return JSON.stringify(msg)
  }
}

/** Points in the operator's handling of enclave outputs where the simulator may crash it. */
export const CRASH_POINTS = [
  'before-seal',
  'after-seal',
  'handover',
  'challenge-response',
  'final-page',
] as const
export type CrashPoint = (typeof CRASH_POINTS)[number]

const crashSchema = z.strictObject({
  seed: z.number().int().nonnegative(),
  /** Probability of crashing each time the point is reached. */
  probability: z.number().min(0).max(1),
  /**
   * Per point, instead of `probability`: points reached a few times per run (a handover, a
   * challenge response) need a far higher one than a seal, reached at every update.
   */
  probabilities: z.partialRecord(z.enum(CRASH_POINTS), z.number().min(0).max(1)).optional(),
  points: z.array(z.enum(CRASH_POINTS)).min(1),
  /** Outputs handled before the first crash may happen (lets the node settle in). */
  after: z.number().int().nonnegative().default(0),
})

/**
 * Crashes at named points (simulator only, `POSE_CRASH_POINTS`): before a sealed blob is
 * written, after it is written but before the outputs that depend on it (an ack) leave, while
 * handing state to a member, before a challenge response is submitted, and after the manager
 * took a page of final balances, before the next one goes. The node leaves a marker file
 * naming the point and SIGKILLs itself; its enclave exits with the IPC channel.
 */
export class CrashPoints {
  private readonly random: () => number
  private seen = 0

  constructor(
    readonly config: z.infer<typeof crashSchema>,
    private readonly crash: (point: CrashPoint) => void,
  ) {
    this.random = seededRandom(config.seed)
  }

  static fromEnv(
    value: string | undefined,
    crash: (point: CrashPoint) => void,
  ): CrashPoints | undefined {
    if (!value) return undefined
    let json: unknown
    try {
      json = JSON.parse(value)
    } catch {
      throw new Error('POSE_CRASH_POINTS: not JSON')
    }
    const r = crashSchema.safeParse(json)
    if (!r.success) throw new Error(`POSE_CRASH_POINTS: ${r.error.issues[0]?.message ?? 'invalid'}`)
    return new CrashPoints(r.data, crash)
  }

  reach(point: CrashPoint): void {
    if (!this.config.points.includes(point) || ++this.seen <= this.config.after) return
    if (this.random() < (this.config.probabilities?.[point] ?? this.config.probability))
      this.crash(point)
  }
}

const chainSchema = z.strictObject({
  seed: z.number().int().nonnegative(),
  /** Probability that a block batch is held back up to `maxHoldMs` (a lagging chain view). */
  hold: z.number().min(0).max(1).default(0),
  maxHoldMs: z.number().int().min(0).max(60_000).default(2_000),
  /** Probability that a batch is hidden until after the next one was offered (reordering). */
  reorder: z.number().min(0).max(1).default(0),
  /** Probability that an earlier batch is offered again (a replay). */
  replay: z.number().min(0).max(1).default(0),
})

export type ChainFaultCounts = { hold: number; reorder: number; replay: number }

/**
 * A malicious operator's chain feed (simulator only, `POSE_CHAIN_FAULTS`): it lags, reorders
 * and replays the manager's events it hands its enclave. The running hash makes the enclave
 * refuse anything out of order; the operator only harms its own enclave's timeliness.
 */
export class ChainFaults {
  readonly counts: ChainFaultCounts = { hold: 0, reorder: 0, replay: 0 }
  private readonly random: () => number

  constructor(readonly config: z.infer<typeof chainSchema>) {
    this.random = seededRandom(config.seed)
  }

  static fromEnv(value: string | undefined): ChainFaults | undefined {
    if (!value) return undefined
    let json: unknown
    try {
      json = JSON.parse(value)
    } catch {
      throw new Error('POSE_CHAIN_FAULTS: not JSON')
    }
    const r = chainSchema.safeParse(json)
    if (!r.success) throw new Error(`POSE_CHAIN_FAULTS: ${r.error.issues[0]?.message ?? 'invalid'}`)
    return new ChainFaults(r.data)
  }

  /** What to do with the next batch. */
  decide(): { holdMs: number; reorder: boolean; replay: boolean } {
    const c = this.config
    const holdMs = this.random() < c.hold ? Math.floor(this.random() * c.maxHoldMs) : 0
    const reorder = this.random() < c.reorder
    const replay = this.random() < c.replay
    if (holdMs > 0) this.counts.hold++
    if (reorder) this.counts.reorder++
    if (replay) this.counts.replay++
    return { holdMs, reorder, replay }
  }
}
