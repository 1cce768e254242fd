// The queue-proxy's user-container readiness prober (spec §1.7). Runs the
// probes of SERVING_READINESS_PROBE: aggressively (poll every 50 ms, 100 ms per
// attempt, up to 10 s, honouring successThreshold) when periodSeconds is 0,
// otherwise one attempt with timeoutSeconds. Concurrent callers (kubelet and
// activator probes) share one in-flight execution.
import { setTimeout as sleep } from 'node:timers/promises'
import { GrpcProbe } from './grpc-probe.ts'
import { HttpProbe } from './http-probe.ts'
import type { ProbeSpec } from './probe-spec.ts'
import { TcpProbe } from './tcp-probe.ts'

/** Knative's aggressive-mode timings (pkg/queue/readiness). */
export const ProbeTiming = {
  retryIntervalMs: 50,
  aggressiveAttemptTimeoutMs: 100,
  pollTimeoutMs: 10_000,
} as const

export interface ProberOptions {
  /** Receives one line per error (the QP writes them to stderr). */
  log: (line: string) => void
  /** ENABLE_HTTP2_AUTO_DETECTION: HTTP probes try h2c first. */
  http2AutoDetect?: boolean
  /** Aggressive mode: pause between attempt starts. Default 50 ms. */
  retryIntervalMs?: number
  /** Aggressive mode: timeout of each attempt. Default 100 ms. */
  aggressiveAttemptTimeoutMs?: number
  /** Aggressive mode: give up after this long. Default 10 s. */
  pollTimeoutMs?: number
}

interface Attempt {
  run(timeoutMs: number): Promise<void>
}

/** A rejected attempt that needs no retrying (exec / no handler). */
class Unsupported implements Attempt {
  readonly message: string
  constructor(message: string) {
    this.message = message
  }
  run(): Promise<void> {
    return Promise.reject(new Error(this.message))
  }
}

/** One probe of the spec list, with its own consecutive-success counter. */
class TrackedProbe {
  readonly spec: ProbeSpec
  readonly attempt: Attempt
  /** Consecutive successes; persists across probe() calls like Knative's. */
  count = 0

  constructor(spec: ProbeSpec, http2AutoDetect: boolean) {
    this.spec = spec
    this.attempt = selectAttempt(spec, http2AutoDetect)
  }
}

/** httpGet > tcpSocket > grpc > exec > none (spec §1.7). */
function selectAttempt(spec: ProbeSpec, http2AutoDetect: boolean): Attempt {
  if (spec.httpGet) return new HttpProbe(spec.httpGet, { http2AutoDetect })
  if (spec.tcpSocket) return new TcpProbe(spec.tcpSocket)
  if (spec.grpc) return new GrpcProbe(spec.grpc)
  // Exec probes are turned into TCP probes by the reconciler; kubelet runs the real one.
  if (spec.exec) return new Unsupported('exec probe not supported')
  return new Unsupported('no probe found')
}

export class ReadinessProber {
  private readonly probes: TrackedProbe[] | undefined
  private readonly log: (line: string) => void
  private readonly retryIntervalMs: number
  private readonly attemptTimeoutMs: number
  private readonly pollTimeoutMs: number
  private inflight: Promise<boolean> | undefined
  private readonly clearInflight = (): void => {
    this.inflight = undefined
  }

  /** `specs` undefined: no probe configured, always ready. */
  constructor(specs: ProbeSpec[] | undefined, opts: ProberOptions) {
    const h2 = opts.http2AutoDetect === true
    this.probes = specs?.map((s) => new TrackedProbe(s, h2))
    this.log = opts.log
    this.retryIntervalMs = opts.retryIntervalMs ?? ProbeTiming.retryIntervalMs
    this.attemptTimeoutMs = opts.aggressiveAttemptTimeoutMs ?? ProbeTiming.aggressiveAttemptTimeoutMs
    this.pollTimeoutMs = opts.pollTimeoutMs ?? ProbeTiming.pollTimeoutMs
  }

  /** True iff every probe passes. Callers arriving while a run is in flight get that run's result. */
  probe(): Promise<boolean> {
    if (this.probes === undefined) return Promise.resolve(true)
    if (this.inflight !== undefined) return this.inflight
    const run = this.runAll(this.probes)
    this.inflight = run
    void run.finally(this.clearInflight)
    return run
  }

  private async runAll(probes: TrackedProbe[]): Promise<boolean> {
    if (probes.length === 1) return this.runOne(probes[0]!)
    // HEAD multi-container probing: all in parallel, all must pass.
    const results = await Promise.all(probes.map((p) => this.runOne(p)))
    return results.every(Boolean)
  }

  /** Never rejects: failures are logged (one line) and reported as false. */
  private async runOne(p: TrackedProbe): Promise<boolean> {
    if (p.attempt instanceof Unsupported) {
      this.log(p.attempt.message)
      return false
    }
    if (p.spec.periodSeconds > 0) {
      try {
        await p.attempt.run(Math.max(1, p.spec.timeoutSeconds) * 1000)
        return true
      } catch (err) {
        this.log(oneLine((err as Error).message))
        return false
      }
    }
    return this.pollAggressively(p)
  }

  /** wait.PollImmediate semantics: attempt now, then on every tick until passed or the poll timeout. */
  private async pollAggressively(p: TrackedProbe): Promise<boolean> {
    const threshold = Math.max(1, p.spec.successThreshold)
    const deadline = Date.now() + this.pollTimeoutMs
    let failures = 0
    let lastError: Error | undefined
    for (;;) {
      const started = Date.now()
      try {
        await p.attempt.run(this.attemptTimeoutMs)
        p.count++
        if (p.count >= threshold) return true
      } catch (err) {
        p.count = 0
        failures++
        lastError = err as Error
      }
      const nextTick = Math.max(Date.now(), started + this.retryIntervalMs)
      if (nextTick >= deadline) break
      if (nextTick > Date.now()) await sleep(nextTick - Date.now())
    }
    this.log(
      lastError === undefined
        ? 'timed out waiting for the condition'
        : `aggressive probe error (failed ${failures} times): ${oneLine(lastError.message)}`,
    )
    return false
  }
}

/** Server-supplied text (e.g. grpc-message) must not break the one-line-per-error log. */
function oneLine(message: string): string {
  return message.includes('\n') ? message.replace(/\s*\n\s*/g, ' ') : message
}
