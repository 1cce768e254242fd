// The spans of one proxied request, as both components use them: the server
// span, a wait span (breaker or throttler) and the inner proxy span whose
// context goes upstream. Most requests are not sampled (Knative's default
// rate is 0.1), and for them no span object is made at all: the sampling
// decision comes first (tracer.ts), and an unsampled request only writes its
// trace context upstream (flags 00), the trace id kept, a fresh span id, when
// it starts (the upstream headers are sent only when the request is proxied).
import type { Span } from '@opentelemetry/api'
import type { Tracer } from './tracer.ts'
import { newSpanId } from './trace-ids.ts'

export interface RequestTrace {
  /** Opens the inner span and writes its context (W3C and B3) to the upstream headers. */
  openInner(name: string, upstreamHeaders: string[]): void
  openWait(name: string): void
  /** Ends the wait span, with `error` as the `errorKey` attribute when given. */
  closeWait(errorKey?: string, error?: string): void
  /** The response is complete or the client went away. */
  end(statusCode: number): void
}

/** A sampled request: real spans, exported when they end. */
export class SampledRequest implements RequestTrace {
  readonly tracer: Tracer
  readonly server: Span
  inner: Span | null = null
  wait: Span | null = null

  constructor(tracer: Tracer, server: Span) {
    this.tracer = tracer
    this.server = server
  }

  openInner(name: string, upstreamHeaders: string[]): void {
    this.inner = this.tracer.startChild(name, this.server)
    this.tracer.injectFlat(this.inner, upstreamHeaders)
  }

  openWait(name: string): void {
    this.wait = this.tracer.startChild(name, this.server)
  }

  closeWait(errorKey?: string, error?: string): void {
    const w = this.wait
    if (w === null) return
    this.wait = null
    if (errorKey !== undefined) w.setAttribute(errorKey, error ?? '')
    w.end()
  }

  end(statusCode: number): void {
    this.closeWait()
    if (this.inner !== null) this.tracer.endHttp(this.inner, statusCode)
    this.tracer.endHttp(this.server, statusCode)
  }
}

/**
 * An unsampled request: the headers OpenTelemetry's propagators would write
 * for it (written at once by writeUnsampled), nothing else; one shared object.
 */
export const UNSAMPLED: RequestTrace = Object.freeze({
  openInner(): void {},
  openWait(): void {},
  closeWait(): void {},
  end(): void {},
})

/** The trace context of an unsampled hop: the trace id kept, a fresh span id, flags 00, the caller's tracestate. */
export function writeUnsampled(upstreamHeaders: string[], traceId: string, traceState: string | undefined): void {
  const spanId = newSpanId()
  upstreamHeaders.push('x-b3-traceid', traceId, 'x-b3-spanid', spanId, 'x-b3-sampled', '0', 'traceparent', `00-${traceId}-${spanId}-00`)
  if (traceState !== undefined) upstreamHeaders.push('tracestate', traceState)
}
