// The breaker of Knative's queue-proxy (pkg/queue/breaker.go, spec §1.8):
// at most `capacity` requests run at once; at most queueDepth + maxConcurrency
// are admitted in total (running plus waiting, Knative's totalSlots), so with
// capacity at its max at most `queueDepth` wait; beyond that admission fails
// at once. No HTTP in here.
//
// Waiters are long-lived objects with an onAcquire() method (no per-request
// closures). A waiter that gives up (timeout, client abort) calls cancel();
// cancelled waiters are skipped lazily when they reach the queue's head.

import { FixedQueue } from './fixed-queue.ts'

export interface BreakerWaiter {
  /** Called once when a waiting request gets an execution slot. */
  onAcquire(): void
  /** Set by the breaker while the waiter is queued; cleared on acquire/cancel. */
  breakerQueued?: boolean
}

export const Acquire = {
  /** A slot was free: run now. */
  acquired: 0,
  /** Queued: onAcquire() will be called. */
  queued: 1,
  /** Queue full: reject. */
  full: 2,
} as const
export type AcquireResult = (typeof Acquire)[keyof typeof Acquire]

export interface BreakerOptions {
  queueDepth: number
  maxConcurrency: number
  initialCapacity?: number
}

export class Breaker {
  readonly queueDepth: number
  readonly maxConcurrency: number
  private cap: number
  private running = 0
  private waiting = 0
  private readonly waiters = new FixedQueue<BreakerWaiter>(64)

  constructor(opts: BreakerOptions) {
    if (!(opts.queueDepth > 0)) throw new RangeError(`breaker queue depth must be > 0, got ${opts.queueDepth}`)
    if (!(opts.maxConcurrency >= 0)) throw new RangeError(`breaker max concurrency must be >= 0, got ${opts.maxConcurrency}`)
    const initial = opts.initialCapacity ?? opts.maxConcurrency
    if (initial < 0 || initial > opts.maxConcurrency) {
      throw new RangeError(`breaker initial capacity must be in [0, ${opts.maxConcurrency}], got ${initial}`)
    }
    this.queueDepth = opts.queueDepth
    this.maxConcurrency = opts.maxConcurrency
    this.cap = initial
  }

  /** Requests executing now. */
  get inFlight(): number {
    return this.running
  }

  /** Requests waiting for a slot. */
  get pending(): number {
    return this.waiting
  }

  /** Executing plus waiting: what Knative reports as queue depth. */
  get load(): number {
    return this.running + this.waiting
  }

  get capacity(): number {
    return this.cap
  }

  /** Try to take an execution slot; queue the waiter if none is free. */
  acquire(waiter: BreakerWaiter): AcquireResult {
    if (this.running < this.cap && this.waiting === 0) {
      this.running++
      return Acquire.acquired
    }
    // Knative's limit counts running + waiting against queueDepth + maxConcurrency,
    // not waiting against queueDepth: they differ when capacity < maxConcurrency
    // (the activator's breaker at capacity 0 queues 10000 + 2^31-1, spec §2.6).
    if (this.running + this.waiting >= this.queueDepth + this.maxConcurrency) return Acquire.full
    this.waiting++
    waiter.breakerQueued = true
    this.waiters.push(waiter)
    return Acquire.queued
  }

  /** Take a slot only if one is free right now (Knative's Reserve). */
  tryAcquire(): boolean {
    if (this.running < this.cap && this.waiting === 0) {
      this.running++
      return true
    }
    return false
  }

  /** Withdraw a queued waiter. Returns false if it was not waiting. */
  cancel(waiter: BreakerWaiter): boolean {
    if (waiter.breakerQueued !== true) return false
    waiter.breakerQueued = false
    // Drop stale (cancelled) entries as soon as nobody waits, so they hold no memory.
    if (--this.waiting === 0) this.waiters.clear()
    return true
  }

  /** Give back an execution slot and hand it to the next waiter. */
  release(): void {
    this.running--
    this.dispatch()
  }

  /** Change capacity (the activator resizes per revision); wakes waiters. */
  updateConcurrency(capacity: number): void {
    if (capacity < 0) capacity = 0
    if (capacity > this.maxConcurrency) capacity = this.maxConcurrency
    this.cap = capacity
    this.dispatch()
  }

  private dispatch(): void {
    while (this.running < this.cap && this.waiting > 0) {
      const w = this.waiters.shift()
      if (w === undefined) break
      if (w.breakerQueued !== true) continue // cancelled earlier
      w.breakerQueued = false
      this.waiting--
      this.running++
      w.onAcquire()
    }
  }
}
