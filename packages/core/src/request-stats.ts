// Time-weighted concurrency accounting (knative networking pkg/http/stats,
// spec §1.8): concurrency is integrated over time between events, so a report
// gives the average number of in-flight requests over the window.

export interface StatsReport {
  averageConcurrency: number
  averageProxiedConcurrency: number
  requestCount: number
  proxiedRequestCount: number
}

export class RequestStats {
  private concurrency = 0
  private proxiedConcurrency = 0
  private requestCount = 0
  private proxiedCount = 0
  private computedConcurrency = 0
  private computedProxied = 0
  // Time integrated in this window (Knative's secondsInUse): only positive
  // deltas count, so an out-of-order timestamp cannot skew the average.
  private inUse = 0
  private lastChange: number

  /** `now` in milliseconds from a monotonic clock (performance.now()). */
  constructor(now: number) {
    this.lastChange = now
  }

  get inFlight(): number {
    return this.concurrency
  }

  private integrate(now: number): void {
    const dt = now - this.lastChange
    if (dt > 0) {
      this.computedConcurrency += this.concurrency * dt
      this.computedProxied += this.proxiedConcurrency * dt
      this.inUse += dt
      this.lastChange = now
    }
  }

  requestIn(now: number, proxied: boolean): void {
    this.integrate(now)
    this.concurrency++
    this.requestCount++
    if (proxied) {
      this.proxiedConcurrency++
      this.proxiedCount++
    }
  }

  requestOut(now: number, proxied: boolean): void {
    this.integrate(now)
    this.concurrency--
    if (proxied) this.proxiedConcurrency--
  }

  /** Averages over the window since the last report; starts a new window. */
  report(now: number): StatsReport {
    this.integrate(now)
    const elapsed = this.inUse
    const r: StatsReport = {
      averageConcurrency: elapsed > 0 ? this.computedConcurrency / elapsed : this.concurrency,
      averageProxiedConcurrency: elapsed > 0 ? this.computedProxied / elapsed : this.proxiedConcurrency,
      requestCount: this.requestCount,
      proxiedRequestCount: this.proxiedCount,
    }
    this.computedConcurrency = 0
    this.computedProxied = 0
    this.requestCount = 0
    this.proxiedCount = 0
    this.inUse = 0
    return r
  }
}
