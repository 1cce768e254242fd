// Joins request metrics and the request log into one completion hook, chosen
// at start-up: with both off, no observer runs at all.

import type { ExchangeObserver } from './context.ts'
import type { Exchange } from './exchange.ts'
import type { RequestMetrics } from './request-metrics.ts'
import { routeTagLabel } from './request-metrics.ts'
import type { RequestLogWriter } from './request-log-writer.ts'

export function createObserver(metrics: RequestMetrics | null, log: RequestLogWriter | null): ExchangeObserver | null {
  if (metrics === null && log === null) return null
  return {
    onAppStart: metrics === null ? noop : (ex) => {
      // revision_queue_depth is recorded as each app request starts (Knative's app metrics handler).
      if (ex.ctx.breaker !== null) metrics.setQueueDepth(ex.queueDepthAtStart)
    },
    onDone: (ex) => observe(ex, metrics, log),
  }
}

function noop(): void {
}

function observe(ex: Exchange, metrics: RequestMetrics | null, log: RequestLogWriter | null): void {
  const end = performance.now()
  const code = ex.res.statusCode
  if (metrics !== null && !ex.isProbe) {
    metrics.recordRequest(code, routeTagLabel(ex.routeTag, ex.defaultRoute), end - ex.startedAt)
    if (ex.breakerRejected) metrics.recordBreakerRejection()
    if (ex.appStartedAt > 0) {
      metrics.recordApp(code, (ex.appEndedAt > 0 ? ex.appEndedAt : end) - ex.appStartedAt)
    }
  }
  if (log !== null) log.write(ex, code, end)
}
