/**
 * Users' requests waiting for their enclave's sealed answer, each failing with TIMEOUT unless
 * answered within `timeoutMs`. Every request waits equally long, so the map's insertion order is
 * the order of their deadlines: one timer, at the oldest request's deadline, serves them all. A
 * saturated executor's operator holds hundreds of requests at once and thousands a second pass
 * through; a timer of its own per request cost a `Timeout` set and cleared for each, and kept
 * each one alive in the timer lists until its answer.
 */
import { ProtocolError } from '../protocol/index.ts'

type Waiter = {
  resolve: (sealed: Uint8Array) => void
  reject: (e: Error) => void
  /** `performance.now()` time at which it fails with TIMEOUT. */
  deadline: number
  kind: string
}

export class WaitingRequests {
  private readonly waiting = new Map<string, Waiter>()
  private timer: NodeJS.Timeout | undefined
  /** Set by `close`: what every request after it fails with. */
  private closedWith: Error | undefined

  constructor(
    private readonly timeoutMs: number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  get size(): number {
    return this.waiting.size
  }

  /** Waits for `requestId`'s answer; `kind` names the request in its TIMEOUT error. */
  wait(requestId: string, kind: string): Promise<Uint8Array> {
    if (this.closedWith) return Promise.reject(this.closedWith)
    return new Promise<Uint8Array>((resolve, reject) => {
      this.waiting.delete(requestId) // a reused id goes to the end, with its new deadline
      this.waiting.set(requestId, { resolve, reject, deadline: this.now() + this.timeoutMs, kind })
      this.arm()
    })
  }

  /** Answers `requestId` with its sealed answer; false if nothing waits for it. */
  resolve(requestId: string, sealed: Uint8Array): boolean {
    const w = this.take(requestId)
    w?.resolve(sealed)
    return w !== undefined
  }

  /** Fails `requestId` with `e`; false if nothing waits for it. */
  reject(requestId: string, e: Error): boolean {
    const w = this.take(requestId)
    w?.reject(e)
    return w !== undefined
  }

  /** Fails every waiting request with `e`, and every later one. */
  close(e: Error): void {
    this.closedWith = e
    clearTimeout(this.timer)
    this.timer = undefined
    const all = [...this.waiting.values()]
    this.waiting.clear()
    for (const w of all) w.reject(e)
  }

  private take(requestId: string): Waiter | undefined {
    const w = this.waiting.get(requestId)
    if (w !== undefined) this.waiting.delete(requestId)
    if (this.waiting.size === 0) {
      clearTimeout(this.timer)
      this.timer = undefined
    }
    return w
  }

  /** Sets the timer for the oldest request, unless it is set or nothing waits. */
  private arm(): void {
    if (this.timer !== undefined || this.closedWith) return
    const oldest = this.waiting.values().next()
    if (oldest.done) return
    const delay = Math.max(0, Math.ceil(oldest.value.deadline - this.now()))
    this.timer = setTimeout(() => this.expire(), delay)
  }

  /** Fails the requests past their deadline, oldest first, and sets the timer for the next. */
  private expire(): void {
    this.timer = undefined
    const now = this.now()
    const late: Waiter[] = []
    for (const [id, w] of this.waiting) {
      if (w.deadline > now) break
      this.waiting.delete(id)
      late.push(w)
    }
    this.arm()
    for (const w of late) {
      w.reject(
        new ProtocolError(
          'TIMEOUT',
          `${w.kind}: no answer from the enclave in time; the tx may still be executed — query its receipt or resubmit`,
        ),
      )
    }
  }
}
