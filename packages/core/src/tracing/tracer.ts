// The OpenTelemetry side of tracing, loaded only through `await import()` when
// tracing is on (off means this file and @opentelemetry/* are never parsed).
// Contexts are passed explicitly (no async-hooks context manager): the
// per-request cost is the spans themselves.
import { type Context, ROOT_CONTEXT, type Span, SpanKind, type TextMapGetter, type TextMapSetter, trace, diag, DiagLogLevel } from '@opentelemetry/api'
import { CompositePropagator, ExportResultCode, W3CTraceContextPropagator, type ExportResult } from '@opentelemetry/core'
import { B3InjectEncoding, B3Propagator } from '@opentelemetry/propagator-b3'
import { resourceFromAttributes } from '@opentelemetry/resources'
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  ParentBasedSampler,
  TraceIdRatioBasedSampler,
  type ReadableSpan,
  type SpanExporter,
} from '@opentelemetry/sdk-trace-base'
import type { TracingSettings } from './settings.ts'

/** Spans held in memory at most (beyond it, new spans are dropped and counted). */
export const MAX_QUEUED_SPANS = 2048
const BATCH_SIZE = 512
const EXPORT_DELAY_MS = 1000
const EXPORT_TIMEOUT_MS = 5000

type Headers = Record<string, string | string[] | undefined>

const getter: TextMapGetter<Headers> = {
  keys: (h) => Object.keys(h),
  get: (h, key) => h[key],
}
const setter: TextMapSetter<Record<string, string>> = {
  set: (h, key, value) => {
    h[key] = value
  },
}

// Extraction: the composite lets later propagators override earlier ones, so
// W3C goes last to win over B3 (Knative reads traceparent first). B3 reads the
// single and multi header forms; injection writes W3C and B3 multi-header.
const propagator = new CompositePropagator({
  propagators: [new B3Propagator({ injectEncoding: B3InjectEncoding.MULTI_HEADER }), new W3CTraceContextPropagator()],
})

export interface TracerOptions {
  serviceName: string
  /** Called with the number of spans dropped (queue full or export failed). */
  onDropped: (count: number) => void
}

/** Counts spans the exporter failed to deliver (collector down or slow). */
class CountingExporter implements SpanExporter {
  readonly #inner: SpanExporter
  readonly #onDropped: (n: number) => void
  constructor(inner: SpanExporter, onDropped: (n: number) => void) {
    this.#inner = inner
    this.#onDropped = onDropped
  }
  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    this.#inner.export(spans, (result) => {
      if (result.code !== ExportResultCode.SUCCESS) this.#onDropped(spans.length)
      done(result)
    })
  }
  shutdown(): Promise<void> {
    return this.#inner.shutdown()
  }
  forceFlush(): Promise<void> {
    return this.#inner.forceFlush?.() ?? Promise.resolve()
  }
}

/** Discards everything: the 1.12 "tracing on, no exporter" case. */
const discard: SpanExporter = {
  export: (_spans, done) => done({ code: ExportResultCode.SUCCESS }),
  shutdown: () => Promise.resolve(),
}

async function exporterFor(settings: TracingSettings, serviceName: string): Promise<SpanExporter> {
  switch (settings.exporter) {
    case 'zipkin': {
      const { ZipkinExporter } = await import('@opentelemetry/exporter-zipkin')
      return new ZipkinExporter({ url: settings.endpoint, serviceName })
    }
    case 'otlp-http': {
      const { OTLPTraceExporter } = await import('@opentelemetry/exporter-trace-otlp-proto')
      return new OTLPTraceExporter({ url: settings.endpoint, timeoutMillis: EXPORT_TIMEOUT_MS })
    }
    case 'otlp-grpc': {
      const { OTLPTraceExporter } = await import('@opentelemetry/exporter-trace-otlp-grpc')
      return new OTLPTraceExporter({ url: settings.endpoint, timeoutMillis: EXPORT_TIMEOUT_MS })
    }
    case 'discard':
      return discard
  }
}

// The batch processor reports queue overflow only through diag.warn
// ("Dropped N spans because maxQueueSize reached", logged when the queue next
// accepts a span); route that into the count.
function listenForQueueDrops(onDropped: (n: number) => void): void {
  const dropped = /^Dropped (\d+) spans because maxQueueSize reached/
  const ignore = (): void => {}
  diag.setLogger(
    {
      error: ignore,
      warn: (message: string) => {
        const m = dropped.exec(message)
        if (m) onDropped(Number(m[1]))
      },
      info: ignore,
      debug: ignore,
      verbose: ignore,
    },
    { logLevel: DiagLogLevel.WARN, suppressOverrideMessage: true },
  )
}

function ignoreError(): void {}

/** What the hot path calls; every method is cheap when a span is unsampled. */
export class Tracer {
  readonly #provider: BasicTracerProvider
  readonly #tracer: ReturnType<BasicTracerProvider['getTracer']>

  constructor(provider: BasicTracerProvider) {
    this.#provider = provider
    this.#tracer = provider.getTracer('sluice')
  }

  /** Server span for an incoming request, parented by traceparent or B3 headers. */
  startServer(name: string, headers: Headers): Span {
    const parent = propagator.extract(ROOT_CONTEXT, headers, getter)
    return this.#tracer.startSpan(name, { kind: SpanKind.SERVER }, parent)
  }

  /** Child span (proxy, probe, throttler wait) of `parent`. */
  startChild(name: string, parent: Span, kind: SpanKind = SpanKind.INTERNAL): Span {
    return this.#tracer.startSpan(name, { kind }, trace.setSpan(ROOT_CONTEXT, parent))
  }

  /** Writes traceparent and X-B3-* for `span` into `out` (also when unsampled). */
  inject(span: Span, out: Record<string, string>): void {
    const ctx: Context = trace.setSpan(ROOT_CONTEXT, span)
    propagator.inject(ctx, out, setter)
  }

  /** Exports what is queued; failures are already counted as drops, so never rejects. */
  forceFlush(): Promise<void> {
    return this.#provider.forceFlush().catch(ignoreError)
  }

  shutdown(): Promise<void> {
    return this.#provider.shutdown()
  }
}

export async function createTracer(settings: TracingSettings, options: TracerOptions): Promise<Tracer> {
  listenForQueueDrops(options.onDropped)
  const exporter = new CountingExporter(await exporterFor(settings, options.serviceName), options.onDropped)
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': options.serviceName }),
    sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(settings.sampleRate) }),
    spanProcessors: [
      new BatchSpanProcessor(exporter, {
        maxQueueSize: MAX_QUEUED_SPANS,
        maxExportBatchSize: BATCH_SIZE,
        scheduledDelayMillis: EXPORT_DELAY_MS,
        exportTimeoutMillis: EXPORT_TIMEOUT_MS,
      }),
    ],
  })
  return new Tracer(provider)
}
