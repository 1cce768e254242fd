// The queue-proxy's spans (spec §1.15) against a real Zipkin receiver: names,
// parents, what the user container receives, the breaker wait, probes,
// sampling, and a collector that is down or stuck (requests never wait on it;
// drops are bounded and counted).
import t from 'tap'
import type http from 'node:http'
import { close, knativeEnv, request, sleep, startApp, startQueueProxy, waitFor } from '../helpers/servers.ts'
import { ensureStopped, spawnQueueProxy } from '../helpers/process.ts'
import { droppedSpansIn, traceReceiver, type ReceivedSpan } from '../helpers/trace-receiver.ts'
import { MAX_QUEUED_SPANS } from '@sluice/core/tracing/tracer'

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736'
const CLIENT_SPAN = '00f067aa0ba902b7'

function zipkinEnv(userPort: number, endpoint: string, extra: Record<string, string> = {}): Record<string, string> {
  return knativeEnv(userPort, { TRACING_CONFIG_BACKEND: 'zipkin', TRACING_CONFIG_ZIPKIN_ENDPOINT: endpoint, TRACING_CONFIG_SAMPLE_RATE: '1', ...extra })
}

/** An app that records the headers it received; holds requests to /hold until release(). */
function recordingApp() {
  const seen: http.IncomingHttpHeaders[] = []
  const holding: Array<() => void> = []
  let onHold: (() => void) | null = null
  const handler: http.RequestListener = (req, res) => {
    seen.push(req.headers)
    if (req.url === '/hold') {
      holding.push(() => res.end('held'))
      onHold?.()
      return
    }
    res.end('ok')
  }
  return {
    seen,
    handler,
    held: () => holding.length > 0 ? Promise.resolve() : new Promise<void>((resolve) => { onHold = resolve }),
    release: () => { for (const r of holding.splice(0)) r() },
  }
}

const byName = (spans: readonly ReceivedSpan[], name: string) => spans.filter((s) => s.name === name)

t.test('a traced request: server span under the incoming traceparent, queue_proxy under it, its context sent to the app', async (t) => {
  const rx = await traceReceiver(t)
  const app = recordingApp()
  const { server, port } = await startApp(app.handler)
  const qp = await startQueueProxy(zipkinEnv(port, rx.zipkinUrl))
  t.teardown(async () => { await qp.stop(); await close(server) })

  const r = await request(`${qp.url}/api/items?page=2`, { headers: { traceparent: `00-${TRACE_ID}-${CLIENT_SPAN}-01`, 'X-B3-TraceId': 'a'.repeat(32), 'X-B3-SpanId': 'b'.repeat(16) } })
  t.equal(r.status, 200)
  const spans = await rx.waitFor((s) => s.length >= 2)
  const [serverSpan] = byName(spans, '/api/items')
  const [proxy] = byName(spans, 'queue_proxy')
  t.ok(serverSpan, 'server span named after the path (no query)')
  t.ok(proxy, 'queue_proxy span')
  t.equal(serverSpan!.kind, 'SERVER')
  t.equal(serverSpan!.traceId, TRACE_ID, 'W3C traceparent wins over B3')
  t.equal(serverSpan!.parentId, CLIENT_SPAN)
  t.equal(proxy!.traceId, TRACE_ID)
  t.equal(proxy!.parentId, serverSpan!.spanId)
  t.equal(byName(spans, 'queue_wait').length, 0, 'no queue_wait without a breaker (cc = 0)')
  t.equal(serverSpan!.attributes['http.method'], 'GET')
  t.equal(serverSpan!.attributes['http.path'], '/api/items')
  t.equal(String(serverSpan!.attributes['http.status_code']), '200')
  t.equal(serverSpan!.serviceName, 'hello-00001-deployment-abc', 'the exporter is named after the pod, as Knative names it')

  const h = app.seen[0]!
  t.equal(h.traceparent, `00-${TRACE_ID}-${proxy!.spanId}-01`, 'the app is parented by queue_proxy')
  t.equal(h['x-b3-traceid'], TRACE_ID, 'B3 rewritten to the same trace')
  t.equal(h['x-b3-spanid'], proxy!.spanId)
  t.equal(h['x-b3-sampled'], '1')
})

t.test('B3-only requests are parented by their B3 headers', async (t) => {
  const rx = await traceReceiver(t)
  const app = recordingApp()
  const { server, port } = await startApp(app.handler)
  const qp = await startQueueProxy(zipkinEnv(port, rx.zipkinUrl))
  t.teardown(async () => { await qp.stop(); await close(server) })

  await request(`${qp.url}/b3`, { headers: { 'X-B3-TraceId': TRACE_ID, 'X-B3-SpanId': CLIENT_SPAN, 'X-B3-Sampled': '1' } })
  const spans = await rx.waitFor((s) => byName(s, '/b3').length === 1)
  const [serverSpan] = byName(spans, '/b3')
  t.equal(serverSpan!.traceId, TRACE_ID)
  t.equal(serverSpan!.parentId, CLIENT_SPAN)
  t.match(app.seen[0]!.traceparent, new RegExp(`^00-${TRACE_ID}-[0-9a-f]{16}-01$`))
})

t.test('queue_wait covers the time a request waited for the breaker (cc = 1)', async (t) => {
  const rx = await traceReceiver(t)
  const app = recordingApp()
  const { server, port } = await startApp(app.handler)
  const qp = await startQueueProxy(zipkinEnv(port, rx.zipkinUrl, { CONTAINER_CONCURRENCY: '1' }))
  t.teardown(async () => { await qp.stop(); await close(server) })

  const first = request(`${qp.url}/hold`)
  await app.held()
  const second = request(`${qp.url}/second`)
  // Once the second waits in the breaker, it gets the slot only after the first is released.
  const breaker = qp.qp.ctx.breaker!
  t.ok(await waitFor(() => breaker.pending > 0, 10_000), 'the second request waits in the breaker')
  await sleep(300)
  app.release()
  t.equal((await first).status, 200)
  t.equal((await second).status, 200)
  const spans = await rx.waitFor((s) => byName(s, '/second').length === 1 && byName(s, 'queue_wait').length === 2)
  const [secondServer] = byName(spans, '/second')
  const waits = byName(spans, 'queue_wait')
  const secondWait = waits.find((w) => w.traceId === secondServer!.traceId)!
  t.equal(secondWait.parentId, secondServer!.spanId, 'queue_wait is a child of the server span')
  t.ok(secondWait.durationMs >= 250, `the wait span spans the hold (${secondWait.durationMs} ms >= 250)`)
  const firstWait = waits.find((w) => w.traceId !== secondServer!.traceId)!
  t.ok(firstWait.durationMs < secondWait.durationMs, 'the first request did not wait for itself')
})

t.test('a probe span per health check, with queueproxy.probe.error when the container is not ready', async (t) => {
  const rx = await traceReceiver(t)
  const { server, port } = await startApp((_req, res) => res.end())
  let ready = false
  const qp = await startQueueProxy(zipkinEnv(port, rx.zipkinUrl), { prober: { probe: () => Promise.resolve(ready) } })
  t.teardown(async () => { await qp.stop(); await close(server) })

  const probe = { 'User-Agent': 'kube-probe/1.30', 'K-Network-Probe': 'queue' }
  t.equal((await request(`${qp.url}/`, { headers: probe })).status, 503)
  ready = true
  t.equal((await request(`${qp.url}/`, { headers: probe })).status, 200)
  t.equal((await request(`${qp.url}/`, { headers: { 'User-Agent': 'kube-probe/1.30', 'K-Network-Probe': 'other' } })).status, 400)
  const spans = await rx.waitFor((s) => byName(s, 'probe').length === 3)
  const errors = byName(spans, 'probe').map((s) => s.attributes['queueproxy.probe.error'] ?? null).sort()
  t.same(errors, ['container not ready', 'unexpected probe header value: other', null].sort())
  t.equal(spans.filter((s) => s.name !== 'probe').length, 0, 'probes get no server or queue_proxy span')
})

t.test('unsampled (rate 0): nothing is exported, the app still receives the trace context, flagged unsampled', async (t) => {
  const rx = await traceReceiver(t)
  const app = recordingApp()
  const { server, port } = await startApp(app.handler)
  const qp = await startQueueProxy(zipkinEnv(port, rx.zipkinUrl, { TRACING_CONFIG_SAMPLE_RATE: '0' }))
  t.teardown(async () => { await qp.stop(); await close(server) })

  for (let i = 0; i < 20; i++) t.equal((await request(`${qp.url}/u`)).status, 200)
  await request(`${qp.url}/parent-sampled`, { headers: { traceparent: `00-${TRACE_ID}-${CLIENT_SPAN}-01` } })
  const spans = await rx.waitFor((s) => s.length >= 2)
  t.ok(spans.every((s) => s.traceId === TRACE_ID), 'only the request whose caller sampled it was exported (parent-based)')
  t.equal(byName(spans, '/u').length, 0)
  for (const h of app.seen.slice(0, 20)) t.match(h.traceparent, /^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/)
})

t.test('a dead collector: requests are served, drops are counted on :9091', async (t) => {
  const rx = await traceReceiver(t)
  await rx.setMode('refuse')
  const { server, port } = await startApp((_req, res) => res.end('ok'))
  const qp = await startQueueProxy(zipkinEnv(port, rx.zipkinUrl, { SERVING_REQUEST_METRICS_BACKEND: 'prometheus' }))
  t.teardown(async () => { await qp.stop(); await close(server) })

  for (let i = 0; i < 30; i++) t.equal((await request(`${qp.url}/x`)).status, 200)
  const metricsUrl = `http://127.0.0.1:${qp.ports.userMetrics}/metrics`
  let dropped = 0
  await waitFor(async () => (dropped = droppedSpansIn((await request(metricsUrl)).body)) >= 60, 20_000, 200)
  t.equal(dropped, 60, 'the 60 spans of 30 requests are counted as dropped')
})

t.test('a stuck collector: requests never wait on it, and memory stays bounded (queue of 2048, the rest dropped)', async (t) => {
  const rx = await traceReceiver(t)
  await rx.setMode('hang')
  const { server, port } = await startApp((_req, res) => res.end('ok'))
  const qp = await startQueueProxy(zipkinEnv(port, rx.zipkinUrl, { SERVING_REQUEST_METRICS_BACKEND: 'prometheus' }))
  t.teardown(async () => { await rx.setMode('ok'); await qp.stop(); await close(server) })

  const requests = 2500 // 5000 spans
  let ok = 0
  for (let i = 0; i < requests; i += 50) {
    const batch = await Promise.all(Array.from({ length: 50 }, () => request(`${qp.url}/y`)))
    ok += batch.filter((r) => r.status === 200).length
  }
  t.equal(ok, requests, 'every request answered while the collector hangs')
  const dropped = droppedSpansIn((await request(`http://127.0.0.1:${qp.ports.userMetrics}/metrics`)).body)
  // At most MAX_QUEUED_SPANS are held (queued or in the stuck export); the rest are dropped as they end.
  t.ok(dropped >= 2 * requests - MAX_QUEUED_SPANS, `${dropped} of ${2 * requests} spans dropped; at most ${MAX_QUEUED_SPANS} held`)
})

for (const transport of ['otlp-http', 'otlp-grpc'] as const) {
  t.test(`OBSERVABILITY_CONFIG (HEAD) with ${transport}: OTLP export, HEAD's span names, no probe spans`, async (t) => {
    const rx = await traceReceiver(t)
    const app = recordingApp()
    const { server, port } = await startApp(app.handler)
    const tracing = transport === 'otlp-http'
      ? { protocol: 'http/protobuf', endpoint: rx.otlpHttpUrl, samplingRate: 1 }
      : { protocol: 'grpc', endpoint: rx.otlpGrpcUrl, samplingRate: 1 }
    const qp = await startQueueProxy(knativeEnv(port, { CONTAINER_CONCURRENCY: '2', OBSERVABILITY_CONFIG: JSON.stringify({ tracing }) }))
    t.teardown(async () => { await qp.stop(); await close(server) })

    t.equal((await request(`${qp.url}/`, { headers: { 'User-Agent': 'kube-probe/1.30', 'K-Network-Probe': 'queue' } })).status, 200)
    t.equal((await request(`${qp.url}/otlp`, { headers: { traceparent: `00-${TRACE_ID}-${CLIENT_SPAN}-01` } })).status, 200)
    const spans = await rx.waitFor((s) => s.length >= 3)
    const [serverSpan] = byName(spans, '/otlp')
    const [proxy] = byName(spans, 'kn.queueproxy.proxy')
    const [wait] = byName(spans, 'kn.queueproxy.wait')
    t.equal(serverSpan?.transport, transport)
    t.equal(serverSpan?.parentId, CLIENT_SPAN)
    t.equal(serverSpan?.kind, 'SERVER')
    t.equal(proxy?.parentId, serverSpan?.spanId)
    t.equal(wait?.parentId, serverSpan?.spanId)
    t.equal(serverSpan?.attributes['http.status_code'], 200, 'OTLP keeps the attribute\'s type')
    t.equal(byName(spans, 'probe').length, 0, 'HEAD dropped the probe spans')
    t.equal(app.seen[0]!.traceparent, `00-${TRACE_ID}-${proxy!.spanId}-01`)
  })
}

t.test('main.js (the bundle) loads the tracer from node_modules when tracing is on', async (t) => {
  const rx = await traceReceiver(t)
  const { server, port } = await startApp((_req, res) => res.end('ok'))
  const env = zipkinEnv(port, rx.zipkinUrl)
  const qp = await spawnQueueProxy({ ...process.env as Record<string, string>, ...env, SLUICE_DRAIN_QUIET_PERIOD: '0s' })
  t.teardown(async () => { await ensureStopped(qp); await close(server) })
  t.equal((await request(`${qp.url}/from-main`)).status, 200)
  const spans = await rx.waitFor((s) => byName(s, '/from-main').length === 1)
  t.equal(byName(spans, 'queue_proxy').length, 1)
  qp.signal('SIGTERM')
  t.equal((await qp.exited).code, 0, 'drains and exits 0 with the tracer shut down')
})
