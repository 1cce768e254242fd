// The bounded per-revision wait queue (user pain points 8 and 13, §4 idea 1).
// Knative holds up to 10 000 + 2^31-1 waiting requests per revision and grows
// until the activator OOMs (knative/serving#13583); here a request is admitted
// only while its revision and the whole activator stay within a count and a
// byte budget (and, opt-in, only if it can expect a slot before its deadline).
// Sheds get a Retry-After suggestion. FIFO; cancelling frees the slot and
// bytes at once.
//
// The queue is an intrusive doubly linked list through fields on the waiters
// themselves: O(1) append, shift and removal from the middle, no per-request
// allocation, and a cancelled request is unlinked at once (a ring buffer with
// lazy deletion would keep cancelled requests alive until they reach the head,
// which under a revision that never comes up is the OOM again).
//
// Memory: every waiting request is bounded by the count, and what a request
// with a body holds beyond a bodyless one is charged against the byte budget
// (waitingBodyCharge). A waiting upload reads one socket read of its body,
// <= 64 KiB; the rest stays in the kernel (handler/waiting-uploads.ts). The
// defaults against the 600 Mi limit of Knative's activator Deployment, with
// figures from `npm run bench:activator -- --parts uploads` (RSS deltas of the
// activator process: sockets, parsers, buffers and uncollected garbage):
//
//   idle process: 76 MiB with the local endpoint source (the bench),
//     ~140 MiB in a cluster (Kubernetes client; deploy/)         140 MiB
//   20,000 waiting requests (SLUICE_MAX_QUEUED) x 18 KiB
//     (measured 15-18 KiB per waiting GET)                       352 MiB
//   uploads beyond that: 48 MiB (SLUICE_MAX_BUFFERED_BYTES), each
//     charged its read-ahead (<= 64 KiB) + 64 KiB, so <= 384 waiting
//     1 MiB uploads (measured 98-128 KiB each beyond a GET, read-ahead
//     included)                                                    48 MiB
//   extra read-ahead pool (SLUICE_MAX_READ_AHEAD_BYTES)             8 MiB
//   worst case in a cluster                                      548 MiB
//
// 52 MiB (9 %) under the limit in a cluster, 116 MiB with the bench's idle
// process, for proxying and for the garbage of bodies read and dropped after
// shedding. Measured with the bench's idle process: 384 uploads and 14,000
// GETs waiting while 1,664 more uploads were shed peaked at 388 MiB;
// projected to 20,000 waiting, 472 MiB (~536 MiB with a cluster's idle
// process). Per revision: 10,000 requests (Knative's breakerQueueDepth) and
// 32 MiB, so one stuck revision cannot take the whole budget. Lowering
// SLUICE_MAX_QUEUED by 1,000 frees 18 MiB: room for 144 more waiting uploads.

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

const KiB = 1024
const MiB = 1024 * KiB

/** What Node reads from a socket at once (libuv's 64 KiB reads): a waiting upload reads at most this of its body, beyond any pool grant. */
export const READ_AHEAD_BYTES = 64 * KiB
/** What a waiting upload costs beyond a bodyless request and its read-ahead (measured, see above). */
export const UPLOAD_OVERHEAD_BYTES = 64 * KiB

/**
 * What a waiting request is charged against the byte budgets: the body it has
 * read ahead (reading stops after the first read, handler/waiting-uploads.ts)
 * plus what a body costs beyond that. `contentLength`: 0 none, -1 unknown.
 */
export function waitingBodyCharge(contentLength: number): number {
  if (contentLength === 0) return 0
  return (contentLength < 0 || contentLength > READ_AHEAD_BYTES ? READ_AHEAD_BYTES : contentLength) + UPLOAD_OVERHEAD_BYTES
}

export const DEFAULT_REVISION_LIMITS: Readonly<QueueLimits> = { maxQueued: 10_000, maxBufferedBytes: 32 * MiB }
export const DEFAULT_TOTAL_LIMITS: Readonly<QueueLimits> = { maxQueued: 20_000, maxBufferedBytes: 48 * MiB }

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
  /**
   * Shed a request at once when the wait estimate exceeds its remaining deadline
   * (SLUICE_SHED_ON_DEADLINE_ESTIMATE). Off by default: the estimate knows the
   * pods serving now, not those about to become ready, so it rejects requests
   * that a scaling revision would have served in time. Without it a waiting
   * request is answered by its own revision timeout, as in Knative.
   */
  shedOnDeadlineEstimate?: boolean
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
  private readonly shedOnDeadlineEstimate: boolean
  private readonly defaultRetryAfterSec: number
  private readonly maxRetryAfterSec: number

  constructor(opts: RevisionQueueOptions = {}) {
    this.maxQueued = opts.maxQueued ?? DEFAULT_REVISION_LIMITS.maxQueued
    this.maxBufferedBytes = opts.maxBufferedBytes ?? DEFAULT_REVISION_LIMITS.maxBufferedBytes
    this.budget = opts.budget ?? new QueueBudget()
    this.minSamples = opts.minSamples ?? 5
    this.shedOnDeadlineEstimate = opts.shedOnDeadlineEstimate ?? false
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
   * Appends `w` if the budgets allow (and, with shedOnDeadlineEstimate, if its
   * deadline can be met). `bytes`: what it is charged while waiting
   * (waitingBodyCharge); `remainingMs`: time left before its deadline
   * (Infinity for none).
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
    if (remainingMs <= 0 || this.shedOnDeadlineEstimate && this.estimateWaitMs(this.count + 1) > remainingMs) {
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
