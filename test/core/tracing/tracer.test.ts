// The tracer against a real Zipkin v2 JSON receiver on 127.0.0.1: what the
// real exporter sends, propagation both ways, sampling, and a dead collector.
import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import { MAX_QUEUED_SPANS, createTracer } from '@sluice/core/tracing/tracer'

interface ZipkinSpan {
  traceId: string
  id: string
  parentId?: string
  name: string
  kind?: string
  localEndpoint: { serviceName: string }
}

async function zipkinReceiver(t: Test): Promise<{ url: string; spans: ZipkinSpan[] }> {
  const spans: ZipkinSpan[] = []
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      spans.push(...(JSON.parse(Buffer.concat(chunks).toString('utf8')) as ZipkinSpan[]))
      res.writeHead(202).end()
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => server.close())
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/v2/spans`, spans }
}

const TRACE = '0af7651916cd43dd8448eb211c80319c'
const PARENT = 'b7ad6b7169203331'

t.test('server and child spans reach Zipkin with the incoming W3C parent', async (t) => {
  const zipkin = await zipkinReceiver(t)
  let dropped = 0
  const tracer = await createTracer({ exporter: 'zipkin', endpoint: zipkin.url, sampleRate: 1 }, { serviceName: 'qp', onDropped: (n: number) => (dropped += n) })
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
  t.equal(byName.get('/')?.localEndpoint.serviceName, 'qp')
  t.equal(byName.get('queue_proxy')?.parentId, byName.get('/')?.id)
  t.equal(out.traceparent, `00-${TRACE}-${byName.get('queue_proxy')?.id}-01`, 'W3C written upstream')
  t.equal(out['x-b3-traceid'], TRACE, 'B3 multi-header written upstream')
  t.equal(out['x-b3-spanid'], byName.get('queue_proxy')?.id)
  t.equal(out['x-b3-sampled'], '1')
  t.equal(dropped, 0)
})

t.test('B3 single and multi headers are read when there is no traceparent', async (t) => {
  const zipkin = await zipkinReceiver(t)
  const tracer = await createTracer({ exporter: 'zipkin', endpoint: zipkin.url, sampleRate: 1 }, { serviceName: 'act', onDropped: () => {} })
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
  const zipkin = await zipkinReceiver(t)
  const tracer = await createTracer({ exporter: 'zipkin', endpoint: zipkin.url, sampleRate: 0 }, { serviceName: 'qp', onDropped: () => {} })
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

t.test('a dead collector never blocks and drops are counted', async (t) => {
  // A port that was just free: connections are refused.
  const probe = createServer().listen(0, '127.0.0.1')
  await once(probe, 'listening')
  const port = (probe.address() as AddressInfo).port
  probe.close()
  let dropped = 0
  const tracer = await createTracer(
    { exporter: 'zipkin', endpoint: `http://127.0.0.1:${port}/api/v2/spans`, sampleRate: 1 },
    { serviceName: 'qp', onDropped: (n: number) => (dropped += n) },
  )
  t.teardown(() => tracer.shutdown())
  const started = performance.now()
  // More spans than the queue holds: the overflow is dropped at once.
  for (let i = 0; i < MAX_QUEUED_SPANS + 100; i++) tracer.startServer('/', {}).end()
  t.ok(performance.now() - started < 5000, 'ending spans does not wait for the collector')
  await tracer.forceFlush()
  // The overflow count is reported when the queue next accepts a span.
  tracer.startServer('/', {}).end()
  await tracer.forceFlush()
  t.ok(dropped >= MAX_QUEUED_SPANS + 100, `all spans counted as dropped (${dropped})`)
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
