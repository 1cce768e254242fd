// Every second, the window's averages become the Stat the autoscaler scrapes
// (pkg/queue/protobuf_stats_reporter.go, spec §1.12). The encoded bytes are
// kept, so a scrape costs no encoding.

import type { RequestStats } from '@sluice/core/request-stats'
import { encodeStat, type Stat } from '@sluice/core/stat-proto'

export const REPORTING_PERIOD_MS = 1000

export class StatsReporter {
  private readonly stats: RequestStats
  private readonly podName: string
  private readonly startedAt: number
  private timer: NodeJS.Timeout | null = null
  private encoded: Buffer
  last: Stat | null = null

  constructor(stats: RequestStats, podName: string, startedAt = performance.now()) {
    this.stats = stats
    this.podName = podName
    this.startedAt = startedAt
    // Before the first report: a valid Stat carrying only the pod name.
    this.encoded = encodeStat({ podName, averageConcurrentRequests: 0, averageProxiedConcurrentRequests: 0, requestCount: 0, proxiedRequestCount: 0, processUptime: 0, timestamp: 0 })
  }

  start(periodMs = REPORTING_PERIOD_MS): void {
    this.timer = setInterval(tick, periodMs, this, periodMs)
    this.timer.unref()
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer)
    this.timer = null
  }

  /** Snapshot of the window that just ended; counts become per-second rates. */
  report(now: number, periodMs: number): Stat {
    const r = this.stats.report(now)
    const perSecond = 1000 / periodMs
    const stat: Stat = {
      podName: this.podName,
      averageConcurrentRequests: r.averageConcurrency,
      averageProxiedConcurrentRequests: r.averageProxiedConcurrency,
      requestCount: r.requestCount * perSecond,
      proxiedRequestCount: r.proxiedRequestCount * perSecond,
      processUptime: (now - this.startedAt) / 1000,
      timestamp: 0,
    }
    this.last = stat
    this.encoded = encodeStat(stat)
    return stat
  }

  /** Protobuf bytes served on :9090/metrics. */
  get body(): Buffer {
    return this.encoded
  }
}

function tick(r: StatsReporter, periodMs: number): void {
  r.report(performance.now(), periodMs)
}
