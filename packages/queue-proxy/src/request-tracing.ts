// The queue-proxy's spans (spec §1.15, Knative's pkg/queue/handler.go and
// health/handler.go): a server span per request named after its path, parented
// by the incoming traceparent (else B3); under it `queue_proxy` around the
// proxying and `queue_wait` for the time spent in the breaker (cc >= 1 only);
// a root `probe` span per health check. Configured through HEAD's
// OBSERVABILITY_CONFIG (OTLP), the spans take HEAD's names
// (`kn.queueproxy.proxy`, `kn.queueproxy.wait`, no probe spans: spec §5).
// The user container receives the proxy span's context in both W3C and B3
// headers, replacing the incoming ones. Loaded only when tracing is on
// (queue-proxy.ts imports it dynamically, and it loads the tracer dynamically).

import type { Logger } from '@sluice/core/logging'
import type { TracingSettings } from '@sluice/core/tracing/settings'
import type { RequestTrace, Span, Tracer } from '@sluice/core/tracing/tracer'
import type { SpanDrops } from '@sluice/core/tracing/span-drops'

/** What the tracing hooks read from a request (the Exchange). */
export interface TracedRequest {
  readonly req: { readonly method?: string; readonly url?: string }
  readonly host: string
  readonly userAgent: string
  upstreamHeaders: string[]
  spans: RequestTrace | null
}

interface SpanNames {
  proxy: string
  wait: string
  /** null: health checks get no span. */
  probe: string | null
}
const KNATIVE_1_12: SpanNames = { proxy: 'queue_proxy', wait: 'queue_wait', probe: 'probe' }
const KNATIVE_HEAD: SpanNames = { proxy: 'kn.queueproxy.proxy', wait: 'kn.queueproxy.wait', probe: null }

export class QueueTracing {
  readonly tracer: Tracer
  readonly names: SpanNames

  private constructor(tracer: Tracer, names: SpanNames) {
    this.tracer = tracer
    this.names = names
  }

  /** Knative's queue-proxy names its exporter after the pod (WithExporterFull(pod, podIP)). */
  static async create(settings: TracingSettings, pod: string, drops: SpanDrops, log: Logger): Promise<QueueTracing> {
    const { createTracer } = await import('@sluice/core/tracing/tracer')
    const tracer = await createTracer(settings, { serviceName: pod, onDropped: drops.add })
    log.info({ exporter: settings.exporter, endpoint: settings.endpoint, sampleRate: settings.sampleRate }, 'tracing on')
    // Only OBSERVABILITY_CONFIG (HEAD) selects the OTLP exporters.
    const head = settings.exporter === 'otlp-http' || settings.exporter === 'otlp-grpc'
    return new QueueTracing(tracer, head ? KNATIVE_HEAD : KNATIVE_1_12)
  }

  /** Opens the server and `queue_proxy` spans (and `queue_wait` when a breaker runs). */
  start(r: TracedRequest, withBreaker: boolean): void {
    const spans = this.tracer.startRequest(r.req, r.host, r.userAgent, r.upstreamHeaders)
    spans.openInner(this.names.proxy, r.upstreamHeaders)
    if (withBreaker) spans.openWait(this.names.wait)
    r.spans = spans
  }

  /** A `probe` span for a health check (null under HEAD's names: none). */
  startProbe(): Span | null {
    return this.names.probe === null ? null : this.tracer.startServer(this.names.probe, {})
  }

  /** Ends a `probe` span; `error` becomes its queueproxy.probe.error attribute. */
  endProbe(span: Span, error: string | null): void {
    if (error !== null && span.isRecording()) span.setAttribute('queueproxy.probe.error', error)
    span.end()
  }

}
