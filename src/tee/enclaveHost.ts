/**
 * The TEE host side of the ecall channel (SPEC §2): spawns the enclave bundle as its own OS
 * process and exchanges structured-clone messages over Node's IPC channel. This backend is the
 * SIMULATED TEE: the process boundary is real, the hardware isolation is not.
 */
import { type ChildProcess, fork } from 'node:child_process'
import {
  type EcallName,
  type EcallRequest,
  type EcallResponse,
  type EcallResults,
  type EnclaveOutput,
  ProtocolError,
  packRequests,
  turnBatcher,
  unpackResponses,
} from '../protocol/index.ts'

export type EcallReturn<N extends EcallName> = { result: EcallResults[N]; outputs: EnclaveOutput[] }

export class EnclaveCallError extends ProtocolError {
  override name = 'EnclaveCallError'
  constructor(
    readonly method: string,
    readonly inner: ProtocolError,
    readonly outputs: EnclaveOutput[],
  ) {
    super(
      inner.code,
      `ecall ${method}: ${inner.shortMessage}`,
      inner.details ? { details: inner.details } : {},
    )
  }
}

export type EnclaveHostOptions = {
  bundlePath: string
  /**
   * Passed as the process's only argument (the enclave ignores it) so tools can tell this
   * enclave process from others by its command line, e.g. the operator's data directory.
   */
  label?: string
  /** Called when the enclave process exits unexpectedly. */
  onExit?: (code: number | null, signal: NodeJS.Signals | null) => void
  startTimeoutMs?: number
  /**
   * Called once for an ecall still unanswered after `slowEcallMs` (default 10 s; noticed
   * within a quarter of that), with the number of ecalls pending: an enclave that stops
   * answering otherwise goes unnoticed, since its process stays up and every later ecall
   * just waits.
   */
  onSlowEcall?: (method: string, waitedMs: number, pending: number) => void
  slowEcallMs?: number
  /**
   * An ecall unanswered this long (default 2 min: far above the longest restore or handover
   * measured) means the enclave is hung: `onHung` is told and the process is killed, so its
   * ecalls fail and `onExit` follows (the operator stops, and its supervisor restarts it from
   * the sealed state) instead of every later ecall waiting behind it without end.
   */
  hungEcallMs?: number
  onHung?: (method: string, waitedMs: number) => void
}

const DEFAULT_SLOW_ECALL_MS = 10_000
const DEFAULT_HUNG_ECALL_MS = 120_000

export class EnclaveHost {
  private child: ChildProcess | undefined
  private nextId = 1
  private pending = new Map<
    number,
    {
      resolve: (r: EcallResponse) => void
      reject: (e: Error) => void
      method: string
      sentAt: number
      reported?: boolean
    }
  >()
  /**
   * Sends the ecalls made during one turn of the event loop together, at its end, packed as
   * the channel carries them (protocol/ecallWire.ts).
   */
  private readonly enqueue = turnBatcher<EcallRequest>(
    (msg, part) => {
      const what = part.length === 1 ? `ecall ${part[0]!.method}` : `ecall batch of ${part.length}`
      const child = this.child
      if (!child?.connected) {
        this.fail(part, new ProtocolError('UNAVAILABLE', `${what}: enclave process is not running`))
        return
      }
      child.send(part.length === 1 ? msg : { batch: packRequests(part) }, (err) => {
        if (err) this.fail(part, new ProtocolError('UNAVAILABLE', `${what}: ${err.message}`))
      })
    },
    // E.g. a peer's envelope nested too deep for the structured clone: that ecall fails alone.
    (r, e) =>
      this.fail(
        [r],
        new ProtocolError(
          'MALFORMED',
          `ecall ${r.method}: its parameters cannot be passed to the enclave (${e.message})`,
        ),
      ),
  )
  private stopping = false
  /** Looks for ecalls unanswered past `slowEcallMs` (one timer, not one per ecall). */
  private slowCheck: NodeJS.Timeout | undefined

  constructor(private readonly opts: EnclaveHostOptions) {}

  get pid(): number | undefined {
    return this.child?.pid
  }

  async start(): Promise<void> {
    const child = fork(this.opts.bundlePath, this.opts.label ? [this.opts.label] : [], {
      serialization: 'advanced',
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      execArgv: [],
    })
    this.child = child
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new ProtocolError('TIMEOUT', 'enclave process did not start in time')),
        this.opts.startTimeoutMs ?? 15_000,
      )
      child.once('message', () => {
        clearTimeout(timer)
        resolve()
      })
      child.once('error', (e) => {
        clearTimeout(timer)
        reject(e)
      })
      child.once('exit', (code) => {
        clearTimeout(timer)
        reject(
          new ProtocolError('UNAVAILABLE', `enclave process exited during start (code ${code})`),
        )
      })
    })
    const settle = (r: EcallResponse) => this.settle(r)
    child.on('message', (msg: unknown) => unpackResponses(msg, settle))
    const onSlow = this.opts.onSlowEcall
    const slowMs = this.opts.slowEcallMs ?? DEFAULT_SLOW_ECALL_MS
    const hungMs = this.opts.hungEcallMs ?? DEFAULT_HUNG_ECALL_MS
    this.slowCheck = setInterval(
      () => {
        const now = performance.now()
        for (const p of this.pending.values()) {
          const waited = now - p.sentAt
          if (waited >= hungMs) {
            clearInterval(this.slowCheck)
            this.opts.onHung?.(p.method, hungMs)
            child.kill('SIGKILL')
            return
          }
          if (!onSlow || p.reported || waited < slowMs) continue
          p.reported = true
          onSlow(p.method, slowMs, this.pending.size)
        }
      },
      Math.max(1, Math.min(slowMs, hungMs) / 4),
    ).unref()
    child.on('exit', (code, signal) => {
      clearInterval(this.slowCheck)
      const err = new ProtocolError(
        'UNAVAILABLE',
        `enclave process exited (code ${code}, signal ${signal})`,
      )
      for (const p of this.pending.values()) p.reject(err)
      this.pending.clear()
      this.child = undefined
      if (!this.stopping) this.opts.onExit?.(code, signal)
    })
  }

  /**
   * Makes one ecall. Rejects with EnclaveCallError (carrying any outputs) when the enclave
   * refuses. Ecalls made in one turn of the event loop go to the enclave in one message.
   */
  async ecall<N extends EcallName>(method: N, params: unknown): Promise<EcallReturn<N>> {
    if (!this.child?.connected)
      throw new ProtocolError('UNAVAILABLE', 'enclave process is not running')
    const id = this.nextId++
    const res = await new Promise<EcallResponse>((resolve, reject) => {
      this.pending.set(id, { resolve, reject, method, sentAt: performance.now() })
      this.enqueue({ id, method, params })
    })
    if (!res.ok)
      throw new EnclaveCallError(method, ProtocolError.fromObject(res.error), res.outputs)
    return { result: res.result as EcallResults[N], outputs: res.outputs }
  }

  /** Rejects the ecalls of `part` still waiting. */
  private fail(part: EcallRequest[], err: ProtocolError): void {
    for (const r of part) {
      const p = this.pending.get(r.id)
      if (!p) continue
      this.pending.delete(r.id)
      p.reject(err)
    }
  }

  private settle(r: EcallResponse): void {
    const p = this.pending.get(r.id)
    if (!p) return
    this.pending.delete(r.id)
    p.resolve(r)
  }

  async stop(): Promise<void> {
    this.stopping = true
    clearInterval(this.slowCheck)
    const child = this.child
    if (!child) return
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL')
      }, 3000)
      child.once('exit', () => {
        clearTimeout(timer)
        resolve()
      })
      child.disconnect?.()
      child.kill('SIGTERM')
    })
  }
}
