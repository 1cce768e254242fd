// The trace receiver's failure modes, seen from a plain HTTP client: what the
// fault tests rely on (a real refused connection, a held request, a 500).
import { request } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { traceReceiver } from '../../helpers/trace-receiver.ts'

const span = { traceId: 'a'.repeat(32), id: 'b'.repeat(16), name: 'get /', kind: 'SERVER', timestamp: 1_700_000_000_000_000, duration: 2500, localEndpoint: { serviceName: 'qp' }, tags: { 'http.status_code': '200' } }

function post(url: string, signal?: AbortSignal): Promise<Response> {
  return fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify([span]), signal: signal ?? null })
}

t.test('ok, error, refuse and hang, then back to ok on the same port', async (t) => {
  const r = await traceReceiver(t)
  t.equal((await post(r.zipkinUrl)).status, 202, 'Zipkin answers 202')
  t.same(r.spans[0], {
    traceId: 'a'.repeat(32),
    spanId: 'b'.repeat(16),
    name: 'get /',
    kind: 'SERVER',
    startMs: 1_700_000_000_000,
    durationMs: 2.5,
    attributes: { 'http.status_code': '200' },
    serviceName: 'qp',
    transport: 'zipkin',
  }, 'decoded into the common shape')
  t.equal((await fetch(r.zipkinUrl.replace('/api/v2/spans', '/other'), { method: 'POST' })).status, 404)

  await r.setMode('error')
  t.equal((await post(r.zipkinUrl)).status, 500, 'error mode answers 500')

  await r.setMode('refuse')
  // A new connection (a pooled one would only see its socket closed).
  const refused = await new Promise<string | undefined>((resolve) => {
    request(r.zipkinUrl, { method: 'POST', agent: false }, () => resolve('answered')).on('error', (err: NodeJS.ErrnoException) => resolve(err.code)).end()
  })
  t.equal(refused, 'ECONNREFUSED', `refuse mode: connection refused (${refused})`)

  await r.setMode('hang')
  const aborted = new AbortController()
  const hung = post(r.zipkinUrl, aborted.signal).catch(() => 'aborted')
  await r.waitForRequests(3)
  t.equal(r.pending(), 1, 'hang mode holds the request')
  aborted.abort()
  t.equal(await hung, 'aborted')
  for (let i = 0; i < 50 && r.pending() > 0; i++) await sleep(20)
  t.equal(r.pending(), 0, 'a request the client gave up is no longer pending')

  const held = post(r.zipkinUrl)
  await r.waitForRequests(4)
  await r.setMode('ok')
  t.equal((await held).status, 202, 'leaving hang for ok answers the held request')
  t.equal(r.spans.length, 2, 'and keeps its spans (none from error or refuse)')
  await t.rejects(r.waitFor((s) => s.length > 5, 100), /condition not met in 100 ms; spans received: get \/ \(zipkin\)/, 'waitFor names what arrived when it times out')
})

t.test('OTLP/JSON from the real exporter-trace-otlp-http decodes into the same shape', async (t) => {
  const r = await traceReceiver(t)
  const { OTLPTraceExporter } = await import('@opentelemetry/exporter-trace-otlp-http')
  const { BasicTracerProvider, SimpleSpanProcessor } = await import('@opentelemetry/sdk-trace-base')
  const { resourceFromAttributes } = await import('@opentelemetry/resources')
  const { SpanKind, ROOT_CONTEXT, trace } = await import('@opentelemetry/api')
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'json-svc' }),
    spanProcessors: [new SimpleSpanProcessor(new OTLPTraceExporter({ url: r.otlpHttpUrl }))],
  })
  t.teardown(() => provider.shutdown())
  const tracer = provider.getTracer('t')
  const parent = tracer.startSpan('parent', { kind: SpanKind.SERVER })
  const child = tracer.startSpan('child', { kind: SpanKind.CLIENT, attributes: { s: 'x', i: 7, d: 1.5, b: false, a: ['p', 'q'] } }, trace.setSpan(ROOT_CONTEXT, parent))
  child.end()
  parent.end()
  await provider.forceFlush()
  const spans = await r.waitFor((s) => s.length === 2)
  const [c, p] = [spans.find((s) => s.name === 'child')!, spans.find((s) => s.name === 'parent')!]
  t.equal(c.transport, 'otlp-http')
  t.equal(c.serviceName, 'json-svc')
  t.equal(c.traceId, parent.spanContext().traceId)
  t.equal(c.parentId, p.spanId)
  t.equal(p.parentId, undefined, 'a root span has no parent')
  t.same([p.kind, c.kind], ['SERVER', 'CLIENT'])
  t.same(c.attributes, { s: 'x', i: 7, d: 1.5, b: false, a: '["p","q"]' })
  t.ok(c.durationMs >= 0 && c.startMs > 1.6e12, 'times in milliseconds since the epoch')
})
