// Per-second buckets of observed metric values over a sliding window, with
// the semantics of Knative's aggregation.TimedFloat64Buckets (linear average):
// values recorded in the same second add up (one stat per instance or
// source); the average runs from the first write (a partial window until a
// full one has data) to the last write (seconds after the last write are not
// counted as zeros); seconds without data in between count as zero; once a
// whole window passes without data, the window starts afresh.

import type { Stat } from '@sluice/core/stat-proto'
import { BUCKET_MS, type ScalingMetric } from './config.ts'

export class TimedBuckets {
  readonly windowMs: number
  readonly granularityMs: number
  /** Number of buckets: ceil(window / granularity). */
  readonly size: number
  // Each slot remembers which bucket (time / granularity) it holds, so stale
  // slots are recognised without clearing them on every write.
  private readonly values: Float64Array
  private readonly slotTimes: Float64Array
  private first = 0
  private last = 0
  private empty = true

  constructor(windowMs: number, granularityMs: number = BUCKET_MS) {
    this.windowMs = windowMs
    this.granularityMs = granularityMs
    this.size = Math.max(1, Math.ceil(windowMs / granularityMs))
    this.values = new Float64Array(this.size)
    this.slotTimes = new Float64Array(this.size).fill(-Infinity)
  }

  /** Adds `value` to the bucket of `timeMs`. Values older than a window before the last write are dropped. */
  record(timeMs: number, value: number): void {
    const b = Math.floor(timeMs / this.granularityMs)
    if (this.empty) {
      this.first = b
      this.last = b
      this.empty = false
    } else if (b > this.last) {
      // A full window without data: start over.
      if (b - this.last >= this.size) this.first = b
      this.last = b
    } else if (b <= this.last - this.size) {
      return
    } else if (b < this.first) {
      this.first = b
    }
    const slot = ((b % this.size) + this.size) % this.size
    if (this.slotTimes[slot] !== b) {
      this.slotTimes[slot] = b
      this.values[slot] = 0
    }
    this.values[slot] += value
  }

  /** True when nothing was recorded within the last window (Knative IsEmpty). */
  isEmpty(nowMs: number): boolean {
    if (this.empty) return true
    const now = Math.floor(nowMs / this.granularityMs)
    return (now - this.last) * this.granularityMs > this.windowMs
  }

  /** Average per bucket over the window ending at `nowMs` (0 when it holds no data). */
  windowAverage(nowMs: number): number {
    if (this.empty) return 0
    const end = Math.max(Math.floor(nowMs / this.granularityMs), this.last)
    if (end - this.last >= this.size) return 0
    const lo = Math.max(this.first, end - this.size + 1)
    const hi = this.last
    let sum = 0
    for (let i = 0; i < this.size; i++) {
      const t = this.slotTimes[i]!
      if (t >= lo && t <= hi) sum += this.values[i]!
    }
    return sum / (hi - lo + 1)
  }
}

/** Stable- and panic-window averages of one metric. */
export interface ObservedMetric {
  stable: number
  panic: number
}

/**
 * One revision's collected metrics (Knative's metrics.collection): observed
 * concurrency and requests per second, each over the stable and the panic
 * window.
 */
export class RevisionMetrics {
  readonly concurrencyStable: TimedBuckets
  readonly concurrencyPanic: TimedBuckets
  readonly rpsStable: TimedBuckets
  readonly rpsPanic: TimedBuckets

  constructor(stableWindowMs: number, panicWindowMs: number) {
    this.concurrencyStable = new TimedBuckets(stableWindowMs)
    this.concurrencyPanic = new TimedBuckets(panicWindowMs)
    this.rpsStable = new TimedBuckets(stableWindowMs)
    this.rpsPanic = new TimedBuckets(panicWindowMs)
  }

  /**
   * Records a stat observed at `timeMs`. Proxied requests were already
   * counted by the activator's own stat, so they are subtracted here; the
   * activator's stats carry no proxied part and count in full.
   */
  record(timeMs: number, stat: Stat): void {
    const concurrency = stat.averageConcurrentRequests - stat.averageProxiedConcurrentRequests
    const rps = stat.requestCount - stat.proxiedRequestCount
    if (Number.isFinite(concurrency)) {
      this.concurrencyStable.record(timeMs, concurrency)
      this.concurrencyPanic.record(timeMs, concurrency)
    }
    if (Number.isFinite(rps)) {
      this.rpsStable.record(timeMs, rps)
      this.rpsPanic.record(timeMs, rps)
    }
  }

  /** The metric's stable and panic averages, or undefined when the stable window holds no data (no signal). */
  observe(metric: ScalingMetric, nowMs: number): ObservedMetric | undefined {
    const stable = metric === 'rps' ? this.rpsStable : this.concurrencyStable
    const panic = metric === 'rps' ? this.rpsPanic : this.concurrencyPanic
    if (stable.isEmpty(nowMs)) return undefined
    return { stable: stable.windowAverage(nowMs), panic: panic.windowAverage(nowMs) }
  }
}
