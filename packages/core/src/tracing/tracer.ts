// The OpenTelemetry side of tracing, loaded only through `await import()` when
// tracing is on (off means this file and @opentelemetry/* are never parsed).
// Contexts are passed explicitly (no async-hooks context manager): the
// per-request cost is the spans themselves.
import { type Attributes, type Context, type Link, ROOT_CONTEXT, type Span, SpanKind, SpanStatusCode, type TextMapGetter, type TextMapSetter, TraceFlags, trace } from '@opentelemetry/api'
import { CompositePropagator, ExportResultCode, W3CTraceContextPropagator, type ExportResult } from '@opentelemetry/core'
import { B3InjectEncoding, B3Propagator } from '@opentelemetry/propagator-b3'
import { resourceFromAttributes } from '@opentelemetry/resources'
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  AlwaysOffSampler,
  AlwaysOnSampler,
  ParentBasedSampler,
  SamplingDecision,
  TraceIdRatioBasedSampler,
  type Sampler,
  type SamplingResult,
  type ReadableSpan,
  type SpanExporter,
  type SpanProcessor,
  type Span as SdkSpan,
} from '@opentelemetry/sdk-trace-base'
import type { TracingSettings } from './settings.ts'
import { SampledRequest, UNSAMPLED, writeUnsampled, type RequestTrace } from './request-spans.ts'
import { newTraceId, PresetIdGenerator } from './trace-ids.ts'

export type { RequestTrace }

export type { Span }

/** Spans held in memory at most, queued or being exported (beyond it, new spans are dropped and counted). */
export const MAX_QUEUED_SPANS = 2048
const BATCH_SIZE = 512
const EXPORT_DELAY_MS = 1000
const EXPORT_TIMEOUT_MS = 5000
/** What a shutdown waits at most for the last export (both components' drain and a tracer switch). */
const SHUTDOWN_WAIT_MS = 2000

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
const flatSetter: TextMapSetter<string[]> = {
  set: (h, key, value) => {
    h.push(key, value)
  },
}

/** The trace context headers (W3C and B3), which a hop replaces with its own. */
const TRACE_HEADERS = new Set(['traceparent', 'tracestate', 'b3', 'x-b3-traceid', 'x-b3-spanid', 'x-b3-parentspanid', 'x-b3-sampled', 'x-b3-flags'])
const NO_HEADERS: Headers = Object.freeze({})

/**
 * Removes the trace context headers from a flat [name, value, ...] list in
 * place and returns them by lower-case name: one pass, and no object at all
 * for the common request that carries none.
 */
export function takeTraceHeaders(flat: string[]): Headers {
  let found: Record<string, string> | null = null
  let w = 0
  for (let i = 0; i < flat.length; i += 2) {
    const name = flat[i]!
    const c = name.charCodeAt(0) | 0x20
    // Only names starting with t, b or x can be trace headers.
    if (c === 0x74 || c === 0x62 || c === 0x78) {
      const lower = name.toLowerCase()
      if (TRACE_HEADERS.has(lower)) {
        found ??= {}
        found[lower] ??= flat[i + 1]!
        continue
      }
    }
    if (w !== i) {
      flat[w] = name
      flat[w + 1] = flat[i + 1]!
    }
    w += 2
  }
  flat.length = w
  return found ?? NO_HEADERS
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

/**
 * The bound on spans held in memory, counted here rather than inside the
 * batch processor (which reports its own overflow only later, through
 * diag.warn): every sampled span that ends takes a place until its export
 * batch settles; with all places taken, new spans are dropped and counted at
 * once. A collector that never answers frees its places after the export
 * timeout (plus a grace), so one stuck export cannot hold the budget forever.
 */
class SpanBudget {
  held = 0
  readonly onDropped: (n: number) => void
  constructor(onDropped: (n: number) => void) {
    this.onDropped = onDropped
  }
}

class BoundedProcessor implements SpanProcessor {
  readonly #inner: SpanProcessor
  readonly #budget: SpanBudget
  constructor(inner: SpanProcessor, budget: SpanBudget) {
    this.#inner = inner
    this.#budget = budget
  }
  onStart(span: SdkSpan, parent: Context): void {
    this.#inner.onStart(span, parent)
  }
  onEnd(span: ReadableSpan): void {
    // The batch processor skips unsampled spans too; they take no place.
    if ((span.spanContext().traceFlags & TraceFlags.SAMPLED) === 0) return
    const budget = this.#budget
    if (budget.held >= MAX_QUEUED_SPANS) {
      budget.onDropped(1)
      return
    }
    budget.held++
    this.#inner.onEnd(span)
  }
  forceFlush(): Promise<void> {
    return this.#inner.forceFlush()
  }
  shutdown(): Promise<void> {
    return this.#inner.shutdown()
  }
}

/** Frees the places of each exported batch; a failed batch is counted as dropped. */
class CountingExporter implements SpanExporter {
  readonly #inner: SpanExporter
  readonly #budget: SpanBudget
  constructor(inner: SpanExporter, budget: SpanBudget) {
    this.#inner = inner
    this.#budget = budget
  }
  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    const budget = this.#budget
    let settled = false
    const settle = (ok: boolean): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      budget.held -= spans.length
      if (!ok) budget.onDropped(spans.length)
    }
    const timer = setTimeout(settle, EXPORT_TIMEOUT_MS + 1000, false)
    timer.unref()
    this.#inner.export(spans, (result) => {
      settle(result.code === ExportResultCode.SUCCESS)
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
      const [{ ZipkinExporter }, { boundedZipkinSend }] = await Promise.all([import('@opentelemetry/exporter-zipkin'), import('./zipkin-send.ts')])
      const exporter = new ZipkinExporter({ url: settings.endpoint, serviceName })
      // Its own send has no deadline (zipkin-send.ts); the exporter keeps the encoding.
      const internals = exporter as unknown as { _send?: unknown }
      if (typeof internals._send !== 'function') throw new Error('@opentelemetry/exporter-zipkin changed: no _send to bound')
      internals._send = boundedZipkinSend(settings.endpoint, EXPORT_TIMEOUT_MS)
      return exporter
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

function ignoreError(): void {}

/** The request fields a server span is named and labelled from. */
export interface HttpRequestLike {
  readonly method?: string | undefined
  readonly url?: string | undefined
}

/** What the hot path calls; every method is cheap when a span is unsampled. */
export class Tracer {
  readonly #provider: BasicTracerProvider
  readonly #tracer: ReturnType<BasicTracerProvider['getTracer']>
  readonly #sampler: PresetSampler
  readonly #ids: PresetIdGenerator
  readonly #rate: number

  constructor(provider: BasicTracerProvider, sampler: PresetSampler, ids: PresetIdGenerator, rate: number) {
    this.#provider = provider
    this.#tracer = provider.getTracer('sluice')
    this.#sampler = sampler
    this.#ids = ids
    this.#rate = rate
  }

  /** Server span for an incoming request, parented by traceparent or B3 headers. */
  startServer(name: string, headers: Headers): Span {
    const parent = propagator.extract(ROOT_CONTEXT, headers, getter)
    return this.#tracer.startSpan(name, { kind: SpanKind.SERVER }, parent)
  }

  /**
   * The spans of a proxied request: the server span named after its path as
   * OpenCensus's ochttp names it (with its attributes), parented by the trace
   * headers, which are taken out of `upstreamHeaders` (the hop writes its own).
   * Sampling is decided first, on the trace id the request will carry; an
   * unsampled request gets no span objects (request-spans.ts).
   */
  startRequest(req: HttpRequestLike, host: string, userAgent: string, upstreamHeaders: string[]): RequestTrace {
    const incoming = takeTraceHeaders(upstreamHeaders)
    const parentCtx = incoming === NO_HEADERS ? ROOT_CONTEXT : propagator.extract(ROOT_CONTEXT, incoming, getter)
    const parent = incoming === NO_HEADERS ? undefined : trace.getSpanContext(parentCtx)
    const traceId = parent?.traceId ?? newTraceId()
    // A root request: the rate alone decides (the same as both samplers, without
    // parsing the id back); with a caller, its sampler rules (samplerFor).
    const sampled = parent === undefined
      ? Math.random() < this.#rate
      : this.#sampler.shouldSample(parentCtx, traceId, '', SpanKind.SERVER, {}, []).decision === SamplingDecision.RECORD_AND_SAMPLED
    if (!sampled) {
      const state = incoming.tracestate
      writeUnsampled(upstreamHeaders, traceId, typeof state === 'string' && parent !== undefined ? state : undefined)
      return UNSAMPLED
    }
    // Only a sampled request needs its path (the span's name).
    const url = req.url ?? '/'
    const q = url.indexOf('?')
    const path = q < 0 ? url : url.slice(0, q)
    // The SDK asks the sampler again: it gets this decision, and the root span this id.
    this.#sampler.preset = SAMPLED
    if (parent === undefined) this.#ids.next = traceId
    const server = this.#tracer.startSpan(path, { kind: SpanKind.SERVER }, parentCtx)
    this.#sampler.preset = null
    this.#ids.next = null
    server.setAttribute('http.method', req.method ?? '')
    server.setAttribute('http.path', path)
    server.setAttribute('http.host', host)
    server.setAttribute('http.user_agent', userAgent)
    return new SampledRequest(this, server)
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

  /** As inject, appending to a flat [name, value, ...] header list. */
  injectFlat(span: Span, out: string[]): void {
    propagator.inject(trace.setSpan(ROOT_CONTEXT, span), out, flatSetter)
  }

  /** Ends a span with the response status: http.status_code, and an error status for 5xx (OpenCensus's rule). */
  endHttp(span: Span, statusCode: number): void {
    if (span.isRecording()) {
      span.setAttribute('http.status_code', statusCode)
      if (statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR })
    }
    span.end()
  }

  /** Exports what is queued; failures are already counted as drops, so never rejects. */
  forceFlush(): Promise<void> {
    return this.#provider.forceFlush().catch(ignoreError)
  }

  shutdown(): Promise<void> {
    return this.#provider.shutdown()
  }

  /** Shuts down (exporting what is queued), waiting at most `maxMs` (2 s by default): a dead collector must not hold up a drain. */
  async shutdownWithin(maxMs = SHUTDOWN_WAIT_MS): Promise<void> {
    let timer: NodeJS.Timeout | undefined
    const cap = new Promise<void>((resolve) => { timer = setTimeout(resolve, maxMs) })
    await Promise.race([this.#provider.shutdown().catch(ignoreError), cap])
    clearTimeout(timer)
  }
}

/**
 * Knative 1.12 samples with OpenCensus: a request is recorded when its caller
 * sampled it, or else by the rate (debug is rate 1), whatever an unsampled
 * caller said. HEAD (OTLP, from OBSERVABILITY_CONFIG) uses OpenTelemetry's:
 * rate >= 1 always, <= 0 never, otherwise the caller's decision, else the rate.
 */
function samplerFor(settings: TracingSettings): Sampler {
  const rate = settings.sampleRate
  if (settings.exporter === 'otlp-http' || settings.exporter === 'otlp-grpc') {
    if (rate >= 1) return new AlwaysOnSampler()
    if (rate <= 0) return new AlwaysOffSampler()
    return new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(rate) })
  }
  return new OpenCensusSampler(rate)
}

class OpenCensusSampler implements Sampler {
  readonly #ratio: TraceIdRatioBasedSampler
  constructor(rate: number) {
    this.#ratio = new TraceIdRatioBasedSampler(rate)
  }
  shouldSample(context: Context, traceId: string): SamplingResult {
    const parent = trace.getSpanContext(context)
    if (parent !== undefined && (parent.traceFlags & TraceFlags.SAMPLED) !== 0) return { decision: SamplingDecision.RECORD_AND_SAMPLED }
    return this.#ratio.shouldSample(context, traceId)
  }
  toString(): string {
    return `OpenCensusSampler{${this.#ratio.toString()}}`
  }
}

const SAMPLED: SamplingResult = Object.freeze({ decision: SamplingDecision.RECORD_AND_SAMPLED })

/** The SDK's sampler: a decision already taken for the span being started (`preset`), else the real one. */
class PresetSampler implements Sampler {
  preset: SamplingResult | null = null
  readonly #inner: Sampler
  constructor(inner: Sampler) {
    this.#inner = inner
  }
  shouldSample(context: Context, traceId: string, name: string, kind: SpanKind, attributes: Attributes, links: Link[]): SamplingResult {
    return this.preset ?? this.#inner.shouldSample(context, traceId, name, kind, attributes, links)
  }
  toString(): string {
    return this.#inner.toString()
  }
}

export async function createTracer(settings: TracingSettings, options: TracerOptions): Promise<Tracer> {
  const budget = new SpanBudget(options.onDropped)
  const exporter = new CountingExporter(await exporterFor(settings, options.serviceName), budget)
  const sampler = new PresetSampler(samplerFor(settings))
  const ids = new PresetIdGenerator()
  const provider = new BasicTracerProvider({
    idGenerator: ids,
    resource: resourceFromAttributes({ 'service.name': options.serviceName }),
    sampler,
    spanProcessors: [
      new BoundedProcessor(new BatchSpanProcessor(exporter, {
        maxQueueSize: MAX_QUEUED_SPANS,
        maxExportBatchSize: BATCH_SIZE,
        scheduledDelayMillis: EXPORT_DELAY_MS,
        exportTimeoutMillis: EXPORT_TIMEOUT_MS,
      }), budget),
    ],
  })
  return new Tracer(provider, sampler, ids, settings.sampleRate)
}
