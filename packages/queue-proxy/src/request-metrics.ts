// User-facing request metrics on :9091 (spec §1.13, Knative 1.12 names):
// revision_request_count/latencies around the whole chain,
// revision_app_request_count/latencies around the user container,
// revision_queue_depth. Sluice's own: sluice_queue_proxy_breaker_rejections_total
// (503s for a full queue, cc >= 1) and sluice_queue_proxy_draining (1 while
// draining: SIGTERM or /wait-for-drain). Probes are not recorded. prom-client (its four
// classes, prom-parts.ts) is loaded only when metrics are on; label children
// are cached per response code.

import type { Counter, Gauge, Histogram, Registry } from 'prom-client'
import type { QueueConfig } from './config.ts'
import { loadPromParts, type PromParts } from '@sluice/core/prom-parts'

const BUCKETS_MS = [5, 10, 20, 40, 60, 80, 100, 150, 200, 250, 300, 350, 400, 450, 500, 600, 700, 800, 900, 1000, 2000, 5000, 10000, 20000, 50000, 100000]

interface Child {
  count: { inc(): void }
  latency: { observe(v: number): void }
}

export class RequestMetrics {
  readonly registry: Registry
  private readonly requestCount: Counter
  private readonly requestLatency: Histogram
  private readonly appCount: Counter
  private readonly appLatency: Histogram
  private readonly queueDepth: Gauge
  /** sluice_queue_proxy_breaker_rejections_total's one child (a full queue is when 503s come fast). */
  private readonly breakerRejections: { inc(): void }
  /** Read at each scrape: the queue-proxy's Drainer (null: never draining). */
  private readonly drain: { source: { readonly draining: boolean } | null } = { source: null }
  private readonly base: Record<string, string>
  private readonly outer = new Map<string, Child>()
  private readonly app = new Map<number, Child>()

  private constructor(prom: PromParts, cfg: QueueConfig) {
    const registry = new prom.Registry()
    this.registry = registry
    this.base = {
      namespace_name: cfg.namespace,
      service_name: cfg.service === '' ? 'unknown' : cfg.service,
      configuration_name: cfg.configuration,
      revision_name: cfg.revision,
      pod_name: cfg.pod,
      container_name: 'queue-proxy',
    }
    const labels = Object.keys(this.base)
    const withCode = [...labels, 'response_code', 'response_code_class']
    this.requestCount = new prom.Counter({ name: 'revision_request_count', help: 'The number of requests that are routed to queue-proxy', labelNames: [...withCode, 'route_tag'], registers: [registry] })
    this.requestLatency = new prom.Histogram({ name: 'revision_request_latencies', help: 'The response time in millisecond', labelNames: [...withCode, 'route_tag'], buckets: BUCKETS_MS, registers: [registry] })
    this.appCount = new prom.Counter({ name: 'revision_app_request_count', help: 'The number of requests that are routed to user-container', labelNames: withCode, registers: [registry] })
    this.appLatency = new prom.Histogram({ name: 'revision_app_request_latencies', help: 'The response time in millisecond', labelNames: withCode, buckets: BUCKETS_MS, registers: [registry] })
    this.queueDepth = new prom.Gauge({ name: 'revision_queue_depth', help: 'The current number of items in the serving and waiting queue, or not reported if unlimited concurrency.', labelNames: labels, registers: [registry] })
    const rejections = new prom.Counter({ name: 'sluice_queue_proxy_breaker_rejections_total', help: 'Requests answered 503 because the queue (10 x containerConcurrency waiting) was full', labelNames: labels, registers: [registry] })
    // Starts at 0 where a breaker exists, so rate() shows 0 rather than no data.
    if (cfg.containerConcurrency > 0) rejections.inc(this.base, 0)
    this.breakerRejections = rejections.labels(this.base)
    const base = this.base
    const drain = this.drain
    new prom.Gauge({
      name: 'sluice_queue_proxy_draining',
      help: '1 while the queue-proxy drains (SIGTERM or /wait-for-drain) and fails readiness, else 0',
      labelNames: labels,
      registers: [registry],
      collect() {
        this.set(base, drain.source?.draining === true ? 1 : 0)
      },
    })
  }

  /** Where the drain state is read at each scrape. */
  trackDrain(drain: { readonly draining: boolean }): void {
    this.drain.source = drain
  }

  recordBreakerRejection(): void {
    this.breakerRejections.inc()
  }

  static create(cfg: QueueConfig): RequestMetrics {
    return new RequestMetrics(loadPromParts(), cfg)
  }

  recordRequest(code: number, routeTag: string, latencyMs: number): void {
    const key = `${code}\u0000${routeTag}`
    let c = this.outer.get(key)
    if (c === undefined) {
      const labels = { ...this.base, response_code: String(code), response_code_class: codeClass(code), route_tag: routeTag }
      c = { count: this.requestCount.labels(labels), latency: this.requestLatency.labels(labels) }
      this.outer.set(key, c)
    }
    c.count.inc()
    c.latency.observe(latencyMs)
  }

  recordApp(code: number, latencyMs: number): void {
    let c = this.app.get(code)
    if (c === undefined) {
      const labels = { ...this.base, response_code: String(code), response_code_class: codeClass(code) }
      c = { count: this.appCount.labels(labels), latency: this.appLatency.labels(labels) }
      this.app.set(code, c)
    }
    c.count.inc()
    c.latency.observe(latencyMs)
  }

  setQueueDepth(depth: number): void {
    this.queueDepth.set(this.base, depth)
  }
}

function codeClass(code: number): string {
  return `${Math.floor(code / 100)}xx`
}

/** route_tag label value from the Knative-Serving-Tag / -Default-Route headers. */
export function routeTagLabel(tag: string, defaultRoute: string): string {
  if (tag === '') return defaultRoute === '' ? 'DISABLED' : 'DEFAULT'
  if (defaultRoute === 'true') return 'UNDEFINED'
  return tag
}
