// The tracer against a real Zipkin v2 JSON receiver on 127.0.0.1: propagation
// both ways and sampling. Transports and failing collectors: receiver-*.test.ts.
import t from 'tap'
import { createTracer } from '@sluice/core/tracing/tracer'
import { tracingFromEnv } from '@sluice/core/tracing/settings'
import { traceReceiver } from '../../helpers/trace-receiver.ts'

const TRACE = '0af7651916cd43dd8448eb211c80319c'
const PARENT = 'b7ad6b7169203331'

t.test('server and child spans reach Zipkin with the incoming W3C parent', async (t) => {
  const zipkin = await traceReceiver(t)
  let dropped = 0
  const tracer = await createTracer({ exporter: 'zipkin', endpoint: zipkin.zipkinUrl, sampleRate: 1 }, { serviceName: 'qp', onDropped: (n: number) => (dropped += n) })
  t.teardown(() => tracer.shutdown())
  // traceparent wins over a B3 header naming another trace.
  const server = tracer.startServer('/', { traceparent: `00-${TRACE}-${PARENT}-01`, b3: `${'1'.repeat(32)}-${'2'.repeat(16)}-1` })
  const proxy = tracer.startChild('queue_proxy', server)
  const out: Record<string, string> = {}
  tracer.inject(proxy, out)
  proxy.end()
  server.end()
  await tracer.forceFlush()
  const byName = new Map(zipkin.spans.map((s) => [s.name, s]))
  t.equal(byName.get('/')?.traceId, TRACE)
  t.equal(byName.get('/')?.parentId, PARENT)
  t.equal(byName.get('/')?.kind, 'SERVER')
  t.equal(byName.get('/')?.serviceName, 'qp')
  t.equal(byName.get('queue_proxy')?.parentId, byName.get('/')?.spanId)
  t.equal(out.traceparent, `00-${TRACE}-${byName.get('queue_proxy')?.spanId}-01`, 'W3C written upstream')
  t.equal(out['x-b3-traceid'], TRACE, 'B3 multi-header written upstream')
  t.equal(out['x-b3-spanid'], byName.get('queue_proxy')?.spanId)
  t.equal(out['x-b3-sampled'], '1')
  t.equal(dropped, 0)
})

t.test('B3 single and multi headers are read when there is no traceparent', async (t) => {
  const zipkin = await traceReceiver(t)
  const tracer = await createTracer({ exporter: 'zipkin', endpoint: zipkin.zipkinUrl, sampleRate: 1 }, { serviceName: 'act', onDropped: () => {} })
  t.teardown(() => tracer.shutdown())
  tracer.startServer('single', { b3: `${TRACE}-${PARENT}-1` }).end()
  tracer.startServer('multi', { 'x-b3-traceid': TRACE, 'x-b3-spanid': PARENT, 'x-b3-sampled': '1' }).end()
  await tracer.forceFlush()
  for (const name of ['single', 'multi']) {
    const span = zipkin.spans.find((s) => s.name === name)
    t.equal(span?.traceId, TRACE, name)
    t.equal(span?.parentId, PARENT, name)
  }
})

t.test('sample rate 0 exports nothing but still propagates', async (t) => {
  const zipkin = await traceReceiver(t)
  const tracer = await createTracer({ exporter: 'zipkin', endpoint: zipkin.zipkinUrl, sampleRate: 0 }, { serviceName: 'qp', onDropped: () => {} })
  t.teardown(() => tracer.shutdown())
  const span = tracer.startServer('/', {})
  const out: Record<string, string> = {}
  tracer.inject(span, out)
  span.end()
  await tracer.forceFlush()
  t.match(out.traceparent, /^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/, 'unsampled traceparent written')
  t.equal(out['x-b3-sampled'], '0')
  t.same(zipkin.spans, [], 'nothing exported')
})

t.test('a sampled caller is recorded even at sample rate 0 (OpenCensus ProbabilitySampler)', async (t) => {
  const zipkin = await traceReceiver(t)
  const tracer = await createTracer({ exporter: 'zipkin', endpoint: zipkin.zipkinUrl, sampleRate: 0 }, { serviceName: 'act', onDropped: () => {} })
  t.teardown(() => tracer.shutdown())
  tracer.startServer('sampled', { traceparent: `00-${TRACE}-${PARENT}-01` }).end()
  tracer.startServer('unsampled', { traceparent: `00-${TRACE}-${PARENT}-00` }).end()
  await tracer.forceFlush()
  await zipkin.waitFor((s) => s.length >= 1)
  t.same(zipkin.spans.map((s) => s.name), ['sampled'])
})

// Knative 1.12 samples with OpenCensus: debug is AlwaysSample and rate 1 is
// ProbabilitySampler(1), and both record a request whose caller said
// "not sampled" (the sampler, not the parent flag, decides for a remote
// parent); 1.19+ uses AlwaysSample for samplingRate >= 1. Sluice's
// OpenCensus-style sampler (tracer.ts) does the same for the 1.12 settings.
t.test('debug (always sample) records a request whose caller did not sample it', async (t) => {
  const zipkin = await traceReceiver(t)
  const settings = tracingFromEnv({ TRACING_CONFIG_BACKEND: 'zipkin', TRACING_CONFIG_ZIPKIN_ENDPOINT: zipkin.zipkinUrl, TRACING_CONFIG_DEBUG: 'true' })!
  const tracer = await createTracer(settings, { serviceName: 'qp', onDropped: () => {} })
  t.teardown(() => tracer.shutdown())
  const span = tracer.startServer('/', { traceparent: `00-${TRACE}-${PARENT}-00` })
  const out: Record<string, string> = {}
  tracer.inject(span, out)
  span.end()
  await tracer.forceFlush()
  t.match(out.traceparent, new RegExp(`^00-${TRACE}-[0-9a-f]{16}-01$`), 'sampled from here on')
  const spans = await zipkin.waitFor((s) => s.length >= 1, 3000)
  t.equal(spans[0]?.traceId, TRACE, 'recorded in the caller\'s trace')
})

t.test('a backend without exporter (1.12 empty backend) still propagates and sends nothing', async (t) => {
  const tracer = await createTracer({ exporter: 'discard', endpoint: '', sampleRate: 1 }, { serviceName: 'qp', onDropped: () => t.fail('no drops') })
  t.teardown(() => tracer.shutdown())
  const span = tracer.startServer('/', { traceparent: `00-${TRACE}-${PARENT}-01` })
  const out: Record<string, string> = {}
  tracer.inject(span, out)
  span.end()
  await tracer.forceFlush()
  t.match(out.traceparent, new RegExp(`^00-${TRACE}-[0-9a-f]{16}-01$`))
  t.equal(out['x-b3-traceid'], TRACE)
})
