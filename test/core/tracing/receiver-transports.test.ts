// The real exporters (Zipkin v2 JSON, OTLP protobuf over HTTP, OTLP over gRPC),
// driven through the project's tracer and settings parsers, deliver the same
// trace to a receiver on 127.0.0.1 that decodes each wire format.
import { setTimeout as sleep } from 'node:timers/promises'
import { SpanKind } from '@opentelemetry/api'
import t from 'tap'
import { createTracer } from '@sluice/core/tracing/tracer'
import { type ReceivedSpan, traceReceiver } from '../../helpers/trace-receiver.ts'
import { TRANSPORTS, settingsFor } from './transports.ts'

const TRACE = '0af7651916cd43dd8448eb211c80319c'
const CALLER = 'b7ad6b7169203331'
const WAIT_MS = 50

for (const transport of TRANSPORTS) {
  t.test(`${transport}: names, kinds, links, attributes and durations arrive`, async (t) => {
    const receiver = await traceReceiver(t)
    let dropped = 0
    const tracer = await createTracer(settingsFor(receiver, transport), { serviceName: 'activator', onDropped: (n) => (dropped += n) })
    t.teardown(() => tracer.shutdown())

    const before = Date.now()
    const server = tracer.startServer('/', { traceparent: `00-${TRACE}-${CALLER}-01` })
    server.setAttribute('http.host', 'hello.default.svc')
    const wait = tracer.startChild('throttler_try', server)
    wait.setAttribute('activator.cold', true)
    await sleep(WAIT_MS)
    wait.end()
    const proxy = tracer.startChild('activator_proxy', server, SpanKind.CLIENT)
    const upstream: Record<string, string> = {}
    tracer.inject(proxy, upstream)
    tracer.endHttp(proxy, 503)
    tracer.endHttp(server, 200)
    const after = Date.now()
    await tracer.forceFlush()

    const spans = await receiver.waitFor((s) => s.length >= 3)
    t.equal(spans.length, 3, 'exactly the three spans')
    t.ok(spans.every((s) => s.transport === transport && s.serviceName === 'activator'), 'service name from the resource / local endpoint')
    t.ok(spans.every((s) => s.traceId === TRACE), 'every span in the caller\'s trace')
    const byName = new Map<string, ReceivedSpan>(spans.map((s) => [s.name, s]))
    const root = byName.get('/')!
    const waited = byName.get('throttler_try')!
    const proxied = byName.get('activator_proxy')!
    t.same([root.kind, waited.kind, proxied.kind], ['SERVER', 'INTERNAL', 'CLIENT'])
    t.equal(root.parentId, CALLER, 'server span parented by the incoming traceparent')
    t.equal(waited.parentId, root.spanId, 'wait span is a child of the server span')
    t.equal(proxied.parentId, root.spanId, 'proxy span is a child of the server span')
    t.match(root.spanId, /^[0-9a-f]{16}$/)
    t.equal(upstream.traceparent, `00-${TRACE}-${proxied.spanId}-01`, 'the hop upstream names the proxy span')

    // Zipkin carries tags as strings; OTLP keeps the types.
    const typed = transport !== 'zipkin'
    t.equal(root.attributes['http.host'], 'hello.default.svc')
    t.equal(root.attributes['http.status_code'], typed ? 200 : '200')
    t.equal(proxied.attributes['http.status_code'], typed ? 503 : '503')
    t.equal(waited.attributes['activator.cold'], typed ? true : 'true')

    t.ok(waited.durationMs >= WAIT_MS - 1 && waited.durationMs < 5000, `wait span lasts the wait (${waited.durationMs} ms)`)
    t.ok(root.durationMs >= waited.durationMs, 'the server span encloses the wait')
    t.ok(root.startMs >= before - 1 && root.startMs + root.durationMs <= after + 1, 'start and end within the test\'s clock window')
    t.ok(waited.startMs >= root.startMs && proxied.startMs >= waited.startMs + waited.durationMs - 1, 'children start in order')
    t.equal(dropped, 0, 'nothing dropped')
  })
}

t.test('spans from two services in one trace are told apart by service name', async (t) => {
  const receiver = await traceReceiver(t)
  const activator = await createTracer({ exporter: 'otlp-http', endpoint: receiver.otlpHttpUrl, sampleRate: 1 }, { serviceName: 'activator', onDropped: () => {} })
  const queueProxy = await createTracer({ exporter: 'zipkin', endpoint: receiver.zipkinUrl, sampleRate: 1 }, { serviceName: 'queue-proxy', onDropped: () => {} })
  t.teardown(() => Promise.all([activator.shutdown(), queueProxy.shutdown()]))
  const outer = activator.startServer('/', {})
  const proxy = activator.startChild('activator_proxy', outer, SpanKind.CLIENT)
  const hop: Record<string, string> = {}
  activator.inject(proxy, hop)
  // The queue-proxy reads the B3 headers alone here (no traceparent).
  const inner = queueProxy.startServer('/', { 'x-b3-traceid': hop['x-b3-traceid'], 'x-b3-spanid': hop['x-b3-spanid'], 'x-b3-sampled': hop['x-b3-sampled'] })
  inner.end()
  proxy.end()
  outer.end()
  await Promise.all([activator.forceFlush(), queueProxy.forceFlush()])
  const spans = await receiver.waitFor((s) => s.length >= 3)
  const qp = spans.find((s) => s.serviceName === 'queue-proxy')!
  const act = spans.find((s) => s.serviceName === 'activator' && s.name === 'activator_proxy')!
  t.equal(qp.transport, 'zipkin')
  t.equal(act.transport, 'otlp-http')
  t.equal(qp.traceId, act.traceId, 'one trace across both')
  t.equal(qp.parentId, act.spanId, 'queue-proxy server span is a child of the activator proxy span')
})
