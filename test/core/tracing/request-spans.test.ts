// Tracer.startRequest: sampling decided before any span exists; an unsampled
// request writes exactly the trace context OpenTelemetry's propagators would
// (trace id kept, flags 00, tracestate passed on), and the rate holds.
import t from 'tap'
import { createTracer } from '@sluice/core/tracing/tracer'

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736'
const PARENT = '00f067aa0ba902b7'

const headerMap = (flat: string[]): Record<string, string[]> => {
  const out: Record<string, string[]> = {}
  for (let i = 0; i < flat.length; i += 2) (out[flat[i]!.toLowerCase()] ??= []).push(flat[i + 1]!)
  return out
}

t.test('an unsampled caller: its trace id and tracestate go on, flagged 00, in W3C and B3; its own headers are replaced', async (t) => {
  const tracer = await createTracer({ exporter: 'discard', endpoint: '', sampleRate: 0 }, { serviceName: 't', onDropped: () => {} })
  t.teardown(() => tracer.shutdown())
  const upstream = ['Host', 'h', 'traceparent', `00-${TRACE}-${PARENT}-00`, 'tracestate', 'vendor=x', 'X-B3-TraceId', 'f'.repeat(32), 'X-B3-SpanId', 'e'.repeat(16), 'accept', '*/*']
  const trace = tracer.startRequest({ method: 'GET', url: '/p?q' }, 'h', 'ua', upstream)
  trace.openWait('wait')
  trace.closeWait('error', 'x')
  trace.openInner('proxy', upstream)
  trace.end(200)
  const h = headerMap(upstream)
  t.same(Object.keys(h).sort(), ['accept', 'host', 'traceparent', 'tracestate', 'x-b3-sampled', 'x-b3-spanid', 'x-b3-traceid'])
  t.equal(h.traceparent!.length, 1, 'one traceparent')
  const m = /^00-([0-9a-f]{32})-([0-9a-f]{16})-00$/.exec(h.traceparent![0]!)
  t.ok(m, `traceparent ${h.traceparent![0]}`)
  t.equal(m?.[1], TRACE, 'the caller\'s trace id')
  t.not(m?.[2], PARENT, 'a span id of this hop')
  t.same(h.tracestate, ['vendor=x'])
  t.same(h['x-b3-traceid'], [TRACE])
  t.same(h['x-b3-spanid'], [m?.[2]])
  t.same(h['x-b3-sampled'], ['0'])
})

t.test('a root request at rate 0 gets a fresh trace id; a sampled caller is followed (the spans are real)', async (t) => {
  const tracer = await createTracer({ exporter: 'discard', endpoint: '', sampleRate: 0 }, { serviceName: 't', onDropped: () => {} })
  t.teardown(() => tracer.shutdown())
  const root: string[] = []
  tracer.startRequest({ url: '/' }, 'h', 'ua', root).openInner('proxy', root)
  t.match(headerMap(root).traceparent?.[0], /^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/)
  const sampled = ['traceparent', `00-${TRACE}-${PARENT}-01`]
  tracer.startRequest({ url: '/' }, 'h', 'ua', sampled).openInner('proxy', sampled)
  t.match(headerMap(sampled).traceparent?.[0], new RegExp(`^00-${TRACE}-[0-9a-f]{16}-01$`))
  t.same(headerMap(sampled)['x-b3-sampled'], ['1'])
})

t.test('the rate holds for root requests, and a sampled root carries the trace id its decision was made on', async (t) => {
  const tracer = await createTracer({ exporter: 'discard', endpoint: '', sampleRate: 0.5 }, { serviceName: 't', onDropped: () => {} })
  t.teardown(() => tracer.shutdown())
  const n = 2000
  let sampled = 0
  for (let i = 0; i < n; i++) {
    const up: string[] = []
    tracer.startRequest({ url: '/' }, 'h', 'ua', up).openInner('proxy', up)
    if (up[up.indexOf('traceparent') + 1]!.endsWith('-01')) sampled++
  }
  // Binomial(2000, 0.5): the standard deviation is ~1.1 %; 40-60 % is more than 9 of them.
  t.ok(sampled > 0.4 * n && sampled < 0.6 * n, `${sampled} of ${n} sampled at rate 0.5 (not 0.25: one decision per request)`)
})
