// Prometheus metrics on :9090 (spec §2.12, Knative 1.12 names) plus Sluice's
// own: queue depth and buffered bytes per revision and their bounds, requests
// shed, time spent waiting for capacity, cold starts, waiting uploads whose
// client left, the autoscaler connection state.

import type * as Prom from 'prom-client'
import { loadPromParts } from '@sluice/core/prom-parts'
import { splitRevisionKey, type RevisionInfo } from './revision.ts'

/** The namespace_name and revision_name labels of a revision key ("namespace/name"). */
export function revisionLabels(key: string): { namespace_name: string; revision_name: string } {
  const [namespace, name] = splitRevisionKey(key)
  return { namespace_name: namespace, revision_name: name }
}

const LATENCY_BUCKETS_MS = [5, 10, 20, 40, 60, 80, 100, 150, 200, 250, 300, 350, 400, 450, 500, 600, 700, 800, 900, 1000, 2000, 5000, 10000, 20000, 50000, 100000]
/** prom-client's four classes, not its index (~14 MiB and ~60 ms less: core's prom-parts.ts). */
const client = loadPromParts()

const WAIT_BUCKETS_S = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300]

type CounterChild = ReturnType<Prom.Counter['labels']>
type HistogramChild = ReturnType<Prom.Histogram['labels']>

interface RevisionChildren {
  labels: Record<string, string>
  byCode: Map<number, { count: CounterChild; latency: HistogramChild }>
  wait: HistogramChild
}

export class ActivatorMetrics {
  readonly registry = new client.Registry()
  private readonly podName: string
  private readonly requestCount: Prom.Counter
  private readonly requestLatency: Prom.Histogram
  private readonly concurrency: Prom.Gauge
  private readonly capacityWait: Prom.Histogram
  readonly queueDepth: Prom.Gauge
  readonly bufferedBytes: Prom.Gauge
  readonly shed: Prom.Counter
  readonly autoscalerConnected: Prom.Gauge
  readonly statsDropped: Prom.Counter
  readonly abandonedUploads: Prom.Counter
  readonly readAheadBytes: Prom.Gauge
  readonly connectionScanSeconds: Prom.Gauge
  readonly coldStarts: Prom.Counter
  readonly queueLimit: Prom.Gauge
  readonly bufferedBytesLimit: Prom.Gauge
  private readonly revisions = new Map<string, RevisionChildren>()
  private readonly zeroed = new Set<string>()

  constructor(podName: string) {
    this.podName = podName
    const registers = [this.registry]
    const rev = ['namespace_name', 'service_name', 'configuration_name', 'revision_name', 'pod_name', 'container_name']
    const withCode = [...rev, 'response_code', 'response_code_class']
    this.requestCount = new client.Counter({ name: 'activator_request_count', help: 'The number of requests that are routed to activator', labelNames: withCode, registers })
    this.requestLatency = new client.Histogram({ name: 'activator_request_latencies', help: 'The response time in millisecond', labelNames: withCode, buckets: LATENCY_BUCKETS_MS, registers })
    this.concurrency = new client.Gauge({ name: 'activator_request_concurrency', help: 'Concurrent requests that are routed to Activator', labelNames: rev, registers })
    this.capacityWait = new client.Histogram({ name: 'sluice_activator_capacity_wait_seconds', help: 'Time a request waited in the activator for capacity (cold starts show here)', labelNames: rev, buckets: WAIT_BUCKETS_S, registers })
    this.queueDepth = new client.Gauge({ name: 'sluice_activator_queue_depth', help: 'Requests waiting for capacity', labelNames: ['namespace_name', 'revision_name'], registers })
    this.bufferedBytes = new client.Gauge({ name: 'sluice_activator_buffered_bytes', help: 'Bytes charged to waiting uploads: body read ahead plus overhead (revision-queue.ts)', labelNames: ['namespace_name', 'revision_name'], registers })
    this.shed = new client.Counter({ name: 'sluice_activator_requests_shed_total', help: 'Requests answered 503 with Retry-After instead of being queued', labelNames: ['namespace_name', 'revision_name', 'reason'], registers })
    this.autoscalerConnected = new client.Gauge({ name: 'sluice_activator_autoscaler_connected', help: '1 while the stat websocket to the autoscaler is up', registers })
    this.statsDropped = new client.Counter({ name: 'sluice_activator_stats_dropped_total', help: 'Stat batches dropped because the autoscaler was unreachable', registers })
    this.readAheadBytes = new client.Gauge({ name: 'sluice_activator_read_ahead_bytes', help: 'Extra body bytes waiting uploads may read ahead (the shared pool in use)', registers })
    this.connectionScanSeconds = new client.Gauge({ name: 'sluice_activator_connection_scan_seconds', help: 'Duration of the last read of the kernel connection table for waiting uploads (scans repeat every 10x this, at least 250 ms)', registers })
    this.abandonedUploads = new client.Counter({ name: 'sluice_activator_abandoned_uploads_total', help: 'Waiting uploads ended because the client had closed or reset the connection', registers })
    this.coldStarts = new client.Counter({ name: 'sluice_activator_cold_starts_total', help: 'Times a revision went from no capacity to some while requests waited (a scale from zero, or pods back after all were lost)', labelNames: ['namespace_name', 'revision_name'], registers })
    this.queueLimit = new client.Gauge({ name: 'sluice_activator_queue_limit', help: 'Bound on waiting requests: per revision (scope="revision") and for the whole activator (scope="total")', labelNames: ['scope'], registers })
    this.bufferedBytesLimit = new client.Gauge({ name: 'sluice_activator_buffered_bytes_limit', help: 'Bound on bytes charged to waiting uploads: per revision (scope="revision") and for the whole activator (scope="total")', labelNames: ['scope'], registers })
  }

  /** The buffering bounds (SLUICE_MAX_QUEUED*, SLUICE_MAX_BUFFERED_BYTES*), exported once. */
  setLimits(limits: { queuedPerRevision: number; queuedTotal: number; bytesPerRevision: number; bytesTotal: number }): void {
    this.queueLimit.set({ scope: 'revision' }, limits.queuedPerRevision)
    this.queueLimit.set({ scope: 'total' }, limits.queuedTotal)
    this.bufferedBytesLimit.set({ scope: 'revision' }, limits.bytesPerRevision)
    this.bufferedBytesLimit.set({ scope: 'total' }, limits.bytesTotal)
  }

  /** Whether startRevision ran for "namespace/name". */
  started(key: string): boolean {
    return this.zeroed.has(key)
  }

  /**
   * A revision is known (called at a scrape): its cold-start, shed and wait series start at 0
   * once, so increase(), rate() and histogram_quantile() count its first cold start rather
   * than starting the series after it.
   */
  startRevision(rev: RevisionInfo): void {
    const key = `${rev.namespace}/${rev.name}`
    this.zeroed.add(key)
    const short = { namespace_name: rev.namespace, revision_name: rev.name }
    this.coldStarts.inc(short, 0)
    for (const reason of ['full', 'deadline']) this.shed.inc({ ...short, reason }, 0)
    // zero() would reset observations: only for a revision no request has reached yet.
    if (!this.revisions.has(key)) this.capacityWait.zero(this.children(rev).labels)
  }

  /** The throttler saw capacity arrive for waiting requests of "namespace/name". */
  coldStart(key: string): void {
    this.coldStarts.inc(revisionLabels(key))
  }

  private children(rev: RevisionInfo): RevisionChildren {
    const key = `${rev.namespace}/${rev.name}`
    let c = this.revisions.get(key)
    if (c === undefined) {
      const labels = {
        namespace_name: rev.namespace,
        service_name: rev.serviceName === '' ? 'unknown' : rev.serviceName,
        configuration_name: rev.configurationName,
        revision_name: rev.name,
        pod_name: this.podName,
        container_name: 'activator',
      }
      c = { labels, byCode: new Map(), wait: this.capacityWait.labels(labels) }
      this.revisions.set(key, c)
    }
    return c
  }

  recordRequest(rev: RevisionInfo, code: number, latencyMs: number): void {
    const c = this.children(rev)
    let m = c.byCode.get(code)
    if (m === undefined) {
      const labels = { ...c.labels, response_code: String(code), response_code_class: `${Math.floor(code / 100)}xx` }
      m = { count: this.requestCount.labels(labels), latency: this.requestLatency.labels(labels) }
      c.byCode.set(code, m)
    }
    m.count.inc()
    m.latency.observe(latencyMs)
  }

  recordCapacityWait(rev: RevisionInfo, seconds: number): void {
    this.children(rev).wait.observe(seconds)
  }

  setConcurrency(namespace: string, name: string, value: number): void {
    const c = this.revisions.get(`${namespace}/${name}`)
    if (c !== undefined) this.concurrency.set(c.labels, value)
  }
}
