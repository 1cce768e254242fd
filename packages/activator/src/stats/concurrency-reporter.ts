// Per-revision concurrency as the activator sees it (Knative's
// pkg/activator/handler/concurrency_reporter.go, spec §2.11): an immediate
// (1, 1) "poke" on the first request of a revision, then one batch for all
// revisions every period, with the poke subtracted from the first report.

import { RequestStats } from '@sluice/core/request-stats'
import type { Stat, WireStatMessage } from '@sluice/core/stat-proto'
import { revisionKey } from '../revision.ts'

export interface ConcurrencyReporterOptions {
  /** POD_NAME: the stats' pod_name. */
  podName: string
  /** Gets every batch (a poke is a batch of one); StatSender.send fits. Returns false if dropped. */
  send: (msgs: WireStatMessage[]) => boolean | void
  /** Monotonic clock in milliseconds; performance.now() by default. */
  now?: () => number
  /** Each reported (adjusted) concurrency, for the request_concurrency gauge. */
  onReport?: (namespace: string, name: string, concurrency: number) => void
}

class RevisionEntry {
  readonly namespace: string
  readonly name: string
  readonly stats: RequestStats
  /** Requests in flight that hold this entry: it is not collected while > 0. */
  refs = 0
  /** 1 until the first report: that request was already announced by the poke. */
  firstRequest = 1

  constructor(namespace: string, name: string, now: number) {
    this.namespace = namespace
    this.name = name
    this.stats = new RequestStats(now)
  }
}

function stat(podName: string, concurrency: number, count: number): Stat {
  return {
    podName,
    averageConcurrentRequests: concurrency,
    averageProxiedConcurrentRequests: 0,
    requestCount: count,
    proxiedRequestCount: 0,
    processUptime: 0,
    // 0: the autoscaler stamps the stat on receipt.
    timestamp: 0,
  }
}

function defaultNow(): number {
  return performance.now()
}

export class ConcurrencyReporter {
  private readonly podName: string
  private readonly send: (msgs: WireStatMessage[]) => boolean | void
  private readonly now: () => number
  private readonly onReport: ((namespace: string, name: string, concurrency: number) => void) | undefined
  private readonly entries = new Map<string, RevisionEntry>()
  private timer: NodeJS.Timeout | undefined

  constructor(opts: ConcurrencyReporterOptions) {
    this.podName = opts.podName
    this.send = opts.send
    this.now = opts.now ?? defaultNow
    this.onReport = opts.onReport
  }

  /** Revisions with a live entry (for tests and debugging). */
  get size(): number {
    return this.entries.size
  }

  /** A request for the revision arrived (before it waits in the throttler). */
  requestIn(namespace: string, name: string): void {
    const now = this.now()
    const key = revisionKey(namespace, name)
    let entry = this.entries.get(key)
    let poke = false
    if (entry === undefined) {
      entry = new RevisionEntry(namespace, name, now)
      this.entries.set(key, entry)
      poke = true
    }
    entry.refs++
    entry.stats.requestIn(now, false)
    // Sent at once so a revision at zero starts scaling without waiting for the
    // tick (the autoscaler's Poke acts on a non-zero concurrency, spec §3.4).
    // A poke that never left (autoscaler not connected yet) must not be
    // subtracted from the first report: that report is then the first signal.
    if (poke && this.send([{ namespace, name, stat: stat(this.podName, 1, 1) }]) === false) entry.firstRequest = 0
  }

  /** The request's proxied call returned (or it failed). */
  requestOut(namespace: string, name: string): void {
    const entry = this.entries.get(revisionKey(namespace, name))
    // An entry with references is never collected, so a miss means an
    // unmatched requestOut: ignore it rather than go negative.
    if (entry === undefined || entry.refs === 0) return
    entry.refs--
    entry.stats.requestOut(this.now(), false)
  }

  /** One batch over every revision with an entry; starts a new window for each. */
  report(now: number = this.now()): WireStatMessage[] {
    const msgs: WireStatMessage[] = []
    for (const [key, entry] of this.entries) {
      const r = entry.stats.report(now)
      const adjustment = entry.firstRequest
      entry.firstRequest = 0
      // A whole window without activity: forget the revision so its next
      // request pokes again. Held entries stay (a request is still counted).
      if (r.averageConcurrency === 0 && entry.refs === 0) this.entries.delete(key)
      // The poke already announced one request at concurrency 1; the window
      // average may be below 1, hence the clamp (the count is not clamped).
      const concurrency = Math.max(r.averageConcurrency - adjustment, 0)
      msgs.push({
        namespace: entry.namespace,
        name: entry.name,
        stat: stat(this.podName, concurrency, r.requestCount - adjustment),
      })
      this.onReport?.(entry.namespace, entry.name, concurrency)
    }
    return msgs
  }

  /** Reports now and sends the batch, if any, as one message. */
  readonly tick = (): void => {
    const msgs = this.report(this.now())
    if (msgs.length > 0) this.send(msgs)
  }

  start(periodMs = 1000): void {
    if (this.timer !== undefined) return
    this.timer = setInterval(this.tick, periodMs)
    this.timer.unref()
  }

  stop(): void {
    if (this.timer === undefined) return
    clearInterval(this.timer)
    this.timer = undefined
  }
}
