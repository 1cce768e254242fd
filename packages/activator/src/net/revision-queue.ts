// The bounded per-revision wait queue (user pain points 8 and 13, §4 idea 1).
// Knative holds up to 10 000 + 2^31-1 waiting requests per revision and grows
// until the activator OOMs (knative/serving#13583); here a request is admitted
// only while its revision and the whole activator stay within a count and a
// byte budget, and only if it can expect a slot before its deadline. Sheds get
// a Retry-After suggestion. FIFO; cancelling frees the slot and bytes at once.
//
// The queue is an intrusive doubly linked list through fields on the waiters
// themselves: O(1) append, shift and removal from the middle, no per-request
// allocation, and a cancelled request is unlinked at once (a ring buffer with
// lazy deletion would keep cancelled requests alive until they reach the head,
// which under a revision that never comes up is the OOM again).
//
// Memory ceiling of the defaults (the stated budget): at most TOTAL maxQueued
// = 20 000 waiting requests activator-wide. bench/activator.ts measured RSS
// growing ~16.5 KiB per waiting request (socket, parser, headers, handler
// state, uncollected garbage) over a ~76 MiB baseline: ~400 MiB at the limit
// for bodiless requests, with up to 128 MiB of buffered bodies on top in the
// worst case — below the 600 Mi memory limit of Knative's activator Deployment. Per revision: 10 000
// requests (Knative's breakerQueueDepth) and 64 MiB, so one stuck revision
// cannot take the whole budget.

export interface QueueNode {
  /** Set while queued: the queue holding the node. */
  queuedIn?: object | null
  queuePrev?: QueueNode | null
  queueNext?: QueueNode | null
  /** Bytes charged while queued. */
  queueBytes?: number
}

export const Admit = {
  admitted: 0,
  /** Count or byte budget (revision or activator-wide) exhausted. */
  full: 1,
  /** The expected wait exceeds the request's remaining deadline. */
  deadline: 2,
} as const
export type AdmitResult = (typeof Admit)[keyof typeof Admit]

export interface QueueLimits {
  maxQueued: number
  maxBufferedBytes: number
}

const MiB = 1024 * 1024

export const DEFAULT_REVISION_LIMITS: Readonly<QueueLimits> = { maxQueued: 10_000, maxBufferedBytes: 64 * MiB }
export const DEFAULT_TOTAL_LIMITS: Readonly<QueueLimits> = { maxQueued: 20_000, maxBufferedBytes: 128 * MiB }

/** Activator-wide totals, shared by every revision's queue. */
export class QueueBudget {
  readonly maxQueued: number
  readonly maxBufferedBytes: number
  queued = 0
  bufferedBytes = 0
  shedFull = 0
  shedDeadline = 0

  constructor(limits: Partial<QueueLimits> = {}) {
    this.maxQueued = limits.maxQueued ?? DEFAULT_TOTAL_LIMITS.maxQueued
    this.maxBufferedBytes = limits.maxBufferedBytes ?? DEFAULT_TOTAL_LIMITS.maxBufferedBytes
  }
}

export interface RevisionQueueOptions extends Partial<QueueLimits> {
  budget?: QueueBudget
  /** Completed requests needed before the wait estimate is trusted (default 5). */
  minSamples?: number
  /** Retry-After when no estimate exists (default 5 s, about a pod start). */
  defaultRetryAfterSec?: number
  /** Cap on the Retry-After suggestion (default 60 s). */
  maxRetryAfterSec?: number
}

/** Weight of a new sample in the service-time average: ~the last 10 requests. */
const EWMA_ALPHA = 0.1

export class RevisionQueue<W extends QueueNode> {
  readonly maxQueued: number
  readonly maxBufferedBytes: number
  readonly budget: QueueBudget
  /** Concurrent pod slots of the revision; set by the throttler, drives the estimate. */
  capacity = 0
  // Counters for metrics.
  admitted = 0
  dequeued = 0
  cancelled = 0
  shedFull = 0
  shedDeadline = 0

  private head: QueueNode | null = null
  private tail: QueueNode | null = null
  private count = 0
  private bytes = 0
  private serviceMs = 0
  private samples = 0
  private readonly minSamples: number
  private readonly defaultRetryAfterSec: number
  private readonly maxRetryAfterSec: number

  constructor(opts: RevisionQueueOptions = {}) {
    this.maxQueued = opts.maxQueued ?? DEFAULT_REVISION_LIMITS.maxQueued
    this.maxBufferedBytes = opts.maxBufferedBytes ?? DEFAULT_REVISION_LIMITS.maxBufferedBytes
    this.budget = opts.budget ?? new QueueBudget()
    this.minSamples = opts.minSamples ?? 5
    this.defaultRetryAfterSec = opts.defaultRetryAfterSec ?? 5
    this.maxRetryAfterSec = opts.maxRetryAfterSec ?? 60
  }

  /** Requests waiting. */
  get length(): number {
    return this.count
  }

  /** Body bytes the waiting requests hold. */
  get bufferedBytes(): number {
    return this.bytes
  }

  /** Mean time a request holds a pod slot (ms), or NaN before any sample. */
  get meanServiceMs(): number {
    return this.samples === 0 ? NaN : this.serviceMs
  }

  /**
   * Appends `w` if the budgets allow and its deadline can be met. `bytes`: the
   * body bytes it holds while waiting; `remainingMs`: time left before its
   * deadline (Infinity for none).
   */
  enqueue(w: W, bytes: number, remainingMs: number): AdmitResult {
    if (!(bytes > 0)) bytes = 0
    const b = this.budget
    if (
      this.count >= this.maxQueued || b.queued >= b.maxQueued ||
      this.bytes + bytes > this.maxBufferedBytes || b.bufferedBytes + bytes > b.maxBufferedBytes
    ) {
      this.shedFull++
      b.shedFull++
      return Admit.full
    }
    if (remainingMs <= 0 || this.estimateWaitMs(this.count + 1) > remainingMs) {
      this.shedDeadline++
      b.shedDeadline++
      return Admit.deadline
    }
    w.queuedIn = this
    w.queueBytes = bytes
    w.queueNext = null
    w.queuePrev = this.tail
    if (this.tail === null) this.head = w
    else this.tail.queueNext = w
    this.tail = w
    this.count++
    this.bytes += bytes
    b.queued++
    b.bufferedBytes += bytes
    this.admitted++
    return Admit.admitted
  }

  /** The oldest waiter, left in place. */
  peek(): W | undefined {
    return (this.head ?? undefined) as W | undefined
  }

  /** Removes and returns the oldest waiter. */
  shift(): W | undefined {
    const w = this.head
    if (w === null) return undefined
    this.unlink(w)
    this.dequeued++
    return w as W
  }

  /** Withdraws a waiter (timeout, client abort). False if it was not queued here. */
  remove(w: W): boolean {
    if (w.queuedIn !== this) return false
    this.unlink(w)
    this.cancelled++
    return true
  }

  /** Feeds the estimator: how long a finished request held its pod slot. */
  recordService(ms: number): void {
    if (!(ms >= 0)) return
    this.serviceMs = this.samples === 0 ? ms : this.serviceMs + EWMA_ALPHA * (ms - this.serviceMs)
    this.samples++
  }

  /**
   * Expected wait of the `position`-th request in line (1 = head), or NaN when
   * unknown. While requests queue every slot is busy and slots free up at
   * capacity / S per ms (S = mean slot holding time), so the k-th in line
   * starts after about k * S / capacity. Unknown with no capacity (no pods:
   * the wait is a pod start-up, so requests wait up to their timeout as in
   * Knative) or before minSamples requests have completed.
   */
  estimateWaitMs(position: number): number {
    if (this.capacity <= 0 || this.samples < this.minSamples) return NaN
    return (position * this.serviceMs) / this.capacity
  }

  /** Retry-After (seconds) for a shed request: time for today's backlog to drain. */
  retryAfterSec(): number {
    const ms = this.estimateWaitMs(this.count)
    if (Number.isNaN(ms)) return this.defaultRetryAfterSec
    const s = Math.ceil(ms / 1000)
    return s < 1 ? 1 : s > this.maxRetryAfterSec ? this.maxRetryAfterSec : s
  }

  private unlink(w: QueueNode): void {
    const prev = w.queuePrev ?? null
    const next = w.queueNext ?? null
    if (prev === null) this.head = next
    else prev.queueNext = next
    if (next === null) this.tail = prev
    else next.queuePrev = prev
    const bytes = w.queueBytes ?? 0
    w.queuedIn = null
    w.queuePrev = null
    w.queueNext = null
    w.queueBytes = 0
    this.count--
    this.bytes -= bytes
    this.budget.queued--
    this.budget.bufferedBytes -= bytes
  }
}
