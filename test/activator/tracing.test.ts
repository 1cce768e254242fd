// Tracing through the activator (spec §1.15, §2.3): one trace across
// client → activator → queue-proxy → app for a cold request, with the
// throttler wait as its own span; config-tracing followed at run time through
// the Kubernetes API; the bundled main.js loading the tracer. Real exporters,
// a real Zipkin receiver, real sockets.
import t, { type Test } from 'tap'
import http from 'node:http'
import { ConfigMapWatch } from '@sluice/activator/endpoints/config-maps'
import { createLogger } from '@sluice/core/logging'
import { NAMESPACE, revisionInfo, scrapeMetrics, spawnActivator, startActivator, startPod, activatorEnv, waitingInThrottler } from '../helpers/activator.ts'
import { FakeKubeApi, kubeConfigFor } from '../helpers/fake-kube-api.ts'
import { close, request, sleep, startApp, waitFor } from '../helpers/servers.ts'
import { ensureStopped } from '../helpers/process.ts'
import { droppedSpansIn, oneSpan, traceReceiver } from '../helpers/trace-receiver.ts'

const TRACE_ID = '0af7651916cd43dd8448eb211c80319c'
const CLIENT_SPAN = 'b7ad6b7169203331'
const REV = 'hello-00001'
const ROUTE = { 'Knative-Serving-Namespace': NAMESPACE, 'Knative-Serving-Revision': REV }



async function recordingApp(t: Test) {
  const seen: http.IncomingHttpHeaders[] = []
  const app = await startApp((req, res) => {
    seen.push(req.headers)
    res.end('hello')
  })
  t.teardown(() => close(app.server))
  return { seen, port: app.port }
}

t.test('a cold request is one trace: activator server span, throttler_try for the wait, activator_proxy, then the queue-proxy spans and the app', async (t) => {
  const rx = await traceReceiver(t)
  const app = await recordingApp(t)
  const pod = await startPod(app.port, { env: { TRACING_CONFIG_BACKEND: 'zipkin', TRACING_CONFIG_ZIPKIN_ENDPOINT: rx.zipkinUrl, TRACING_CONFIG_SAMPLE_RATE: '1' } })
  const act = await startActivator({
    env: { SLUICE_TRACING_BACKEND: 'zipkin', SLUICE_TRACING_ZIPKIN_ENDPOINT: rx.zipkinUrl, SLUICE_TRACING_SAMPLE_RATE: '0.1' },
    revisions: [revisionInfo(REV)],
  })
  t.teardown(async () => { await act.stop(); await pod.stop() })

  // No pod yet: the request waits in the throttler until the endpoints arrive.
  const res = request(`${act.url}/cold?x=1`, { headers: { ...ROUTE, traceparent: `00-${TRACE_ID}-${CLIENT_SPAN}-01` } })
  await waitingInThrottler(act, REV)
  await sleep(400)
  act.source.setEndpoints(NAMESPACE, REV, { ready: [pod.dest], notReady: [] })
  const r = await res
  t.equal(r.status, 200)
  t.equal(r.body, 'hello')

  const spans = await rx.waitFor((s) => s.filter((x) => x.traceId === TRACE_ID).length >= 5)
  const trace = spans.filter((s) => s.traceId === TRACE_ID)
  const actServer = oneSpan(trace, '/cold', 'activator-service')
  const wait = oneSpan(trace, 'throttler_try')
  const actProxy = oneSpan(trace, 'activator_proxy')
  const qpServer = oneSpan(trace, '/cold', 'hello-00001-deployment-abc')
  const qpProxy = oneSpan(trace, 'queue_proxy')
  t.equal(actServer.kind, 'SERVER')
  t.equal(actServer.parentId, CLIENT_SPAN, 'the client\'s sampled traceparent decides (sample rate 0.1 notwithstanding)')
  t.equal(wait.parentId, actServer.spanId, 'throttler_try under the activator\'s server span')
  t.ok(wait.durationMs >= 350, `throttler_try lasts the cold start (${wait.durationMs} ms >= 350)`)
  t.equal(actProxy.parentId, actServer.spanId, 'activator_proxy under the server span')
  t.ok(actProxy.startMs >= wait.startMs + wait.durationMs - 1, 'the proxying starts once the wait is over')
  t.equal(qpServer.parentId, actProxy.spanId, 'the queue-proxy continues the activator\'s trace')
  t.equal(qpProxy.parentId, qpServer.spanId)
  t.equal(app.seen.at(-1)?.traceparent, `00-${TRACE_ID}-${qpProxy.spanId}-01`, 'the app is parented by queue_proxy')
  t.equal(String(actServer.attributes['http.status_code']), '200')
})

t.test('OTLP over HTTP (HEAD\'s config-observability / OBSERVABILITY_CONFIG): the same cold-start trace, HEAD\'s queue-proxy span names', async (t) => {
  const rx = await traceReceiver(t)
  const api = await FakeKubeApi.start()
  t.teardown(() => api.close())
  api.upsert('configmaps', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { namespace: 'knative-serving', name: 'config-observability' }, data: { 'tracing-protocol': 'http/protobuf', 'tracing-endpoint': rx.otlpHttpUrl, 'tracing-sampling-rate': '0.1' } })
  const app = await recordingApp(t)
  const pod = await startPod(app.port, { containerConcurrency: 1, env: { OBSERVABILITY_CONFIG: JSON.stringify({ tracing: { protocol: 'http/protobuf', endpoint: rx.otlpHttpUrl, samplingRate: 0.1 } }) } })
  const log = createLogger({ name: 'test', level: 'fatal' })
  const act = await startActivator({ revisions: [revisionInfo(REV, { containerConcurrency: 1 })], configMaps: new ConfigMapWatch({ kubeConfig: kubeConfigFor(api), namespace: 'knative-serving', log }) })
  t.teardown(async () => { await act.stop(); await pod.stop() })

  const res = request(`${act.url}/cold-otlp`, { headers: { ...ROUTE, traceparent: `00-${TRACE_ID}-${CLIENT_SPAN}-01` } })
  await waitingInThrottler(act, REV)
  await sleep(400)
  act.source.setEndpoints(NAMESPACE, REV, { ready: [pod.dest], notReady: [] })
  t.equal((await res).status, 200)
  const spans = await rx.waitFor((s) => s.filter((x) => x.traceId === TRACE_ID).length >= 6)
  const trace = spans.filter((s) => s.traceId === TRACE_ID)
  t.ok(trace.every((s) => s.transport === 'otlp-http'), 'every span came as OTLP protobuf over HTTP')
  const actServer = oneSpan(trace, '/cold-otlp', 'activator-service')
  const wait = oneSpan(trace, 'throttler_try')
  const actProxy = oneSpan(trace, 'activator_proxy')
  const qpServer = oneSpan(trace, '/cold-otlp', 'hello-00001-deployment-abc')
  const qpProxy = oneSpan(trace, 'kn.queueproxy.proxy')
  const qpWait = oneSpan(trace, 'kn.queueproxy.wait')
  t.equal(actServer.parentId, CLIENT_SPAN)
  t.equal(wait.parentId, actServer.spanId)
  t.ok(wait.durationMs >= 350, `throttler_try lasts the cold start (${wait.durationMs} ms)`)
  t.equal(actProxy.parentId, actServer.spanId)
  t.equal(qpServer.parentId, actProxy.spanId)
  t.equal(qpProxy.parentId, qpServer.spanId)
  t.equal(qpWait.parentId, qpServer.spanId, 'the breaker wait (cc 1) under the queue-proxy\'s server span')
  t.equal(app.seen.at(-1)?.traceparent, `00-${TRACE_ID}-${qpProxy.spanId}-01`)
})

t.test('sampling through the chain: an unsampled caller (rate 0) is exported by no one but keeps its trace id; a sampled one by both', async (t) => {
  const rx = await traceReceiver(t)
  const app = await recordingApp(t)
  const pod = await startPod(app.port, { env: { TRACING_CONFIG_BACKEND: 'zipkin', TRACING_CONFIG_ZIPKIN_ENDPOINT: rx.zipkinUrl, TRACING_CONFIG_SAMPLE_RATE: '0' } })
  const act = await startActivator({
    env: { SLUICE_TRACING_BACKEND: 'zipkin', SLUICE_TRACING_ZIPKIN_ENDPOINT: rx.zipkinUrl, SLUICE_TRACING_SAMPLE_RATE: '0' },
    revisions: [revisionInfo(REV)],
  })
  t.teardown(async () => { await act.stop(); await pod.stop() })
  act.source.setEndpoints(NAMESPACE, REV, { ready: [pod.dest], notReady: [] })

  const other = 'aaaaaaaaaaaaaaaabbbbbbbbbbbbbbbb'
  t.equal((await request(`${act.url}/unsampled`, { headers: { ...ROUTE, traceparent: `00-${other}-${CLIENT_SPAN}-00` } })).status, 200)
  t.match(app.seen.at(-1)?.traceparent, new RegExp(`^00-${other}-[0-9a-f]{16}-00$`), 'the app gets the caller\'s trace id, unsampled')
  t.equal(app.seen.at(-1)?.['x-b3-sampled'], '0')
  t.equal((await request(`${act.url}/sampled`, { headers: { ...ROUTE, traceparent: `00-${TRACE_ID}-${CLIENT_SPAN}-01` } })).status, 200)
  const spans = await rx.waitFor((s) => s.filter((x) => x.traceId === TRACE_ID).length >= 5)
  t.same([...new Set(spans.filter((s) => s.traceId === TRACE_ID).map((s) => s.serviceName))].sort(), ['activator-service', 'hello-00001-deployment-abc'], 'both hops exported the sampled request')
  t.notOk(spans.some((s) => s.traceId === other), 'nothing of the unsampled request was exported (after the sampled one arrived)')
})

t.test('a shed request: throttler_try carries activator.throttler.error', async (t) => {
  const rx = await traceReceiver(t)
  const act = await startActivator({
    env: { SLUICE_TRACING_BACKEND: 'zipkin', SLUICE_TRACING_ZIPKIN_ENDPOINT: rx.zipkinUrl, SLUICE_TRACING_DEBUG: 'true', SLUICE_MAX_QUEUED_PER_REVISION: '1' },
    // The waiting request gives up after 2 s (504), so shutdown need not wait for it.
    revisions: [revisionInfo(REV, { timeoutSeconds: 2 })],
  })
  t.teardown(() => act.stop())
  // The first waits (no pods), the second finds the queue full.
  const first = request(`${act.url}/a`, { headers: ROUTE })
  await sleep(100)
  const second = await request(`${act.url}/b`, { headers: ROUTE })
  t.equal(second.status, 503)
  const spans = await rx.waitFor((s) => s.some((x) => x.name === '/b'))
  const server = oneSpan(spans, '/b')
  const wait = spans.find((s) => s.name === 'throttler_try' && s.parentId === server.spanId)
  t.equal(wait?.attributes['activator.throttler.error'], 'full')
  t.equal(String(server.attributes['http.status_code']), '503')
  t.notOk(spans.some((s) => s.name === 'activator_proxy' && s.traceId === server.traceId), 'never proxied')
  t.equal((await first).status, 504, 'the waiting request timed out')
  const spansA = await rx.waitFor((s) => s.some((x) => x.name === '/a'))
  const waitA = spansA.find((s) => s.name === 'throttler_try' && s.parentId === oneSpan(spansA, '/a').spanId)
  t.ok(waitA !== undefined && waitA.durationMs >= 1500, `the timed-out request's throttler_try lasts its wait (${waitA?.durationMs} ms)`)
})

t.test('config-tracing is followed at run time: off → zipkin → another endpoint → off', async (t) => {
  const rxA = await traceReceiver(t)
  const rxB = await traceReceiver(t)
  const api = await FakeKubeApi.start()
  t.teardown(() => api.close())
  const app = await recordingApp(t)
  const pod = await startPod(app.port)
  const log = createLogger({ name: 'test', level: 'fatal' })
  const configMaps = new ConfigMapWatch({ kubeConfig: kubeConfigFor(api), namespace: 'knative-serving', log })
  const act = await startActivator({ revisions: [revisionInfo(REV)], configMaps })
  t.teardown(async () => { await act.stop(); await pod.stop() })
  act.source.setEndpoints(NAMESPACE, REV, { ready: [pod.dest], notReady: [] })

  const send = async (path: string) => t.equal((await request(`${act.url}${path}`, { headers: ROUTE })).status, 200, path)
  const configTracing = (data: Record<string, string>) => api.upsert('configmaps', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { namespace: 'knative-serving', name: 'config-tracing' }, data })
  const until = async (what: string, pred: () => boolean) => {
    if (!(await waitFor(pred, 10_000, 20))) throw new Error(`timed out waiting for ${what}`)
  }

  await send('/off')
  t.equal(act.activator.ctx.tracing, null, 'no config-tracing: off, nothing loaded')
  await configTracing({ backend: 'zipkin', 'zipkin-endpoint': rxA.zipkinUrl, 'sample-rate': '1' })
  await until('tracing on', () => act.activator.ctx.tracing !== null)
  await send('/to-a')
  await rxA.waitFor((s) => s.some((x) => x.name === '/to-a'))
  const first = act.activator.ctx.tracing
  await configTracing({ backend: 'zipkin', 'zipkin-endpoint': rxB.zipkinUrl, 'sample-rate': '1' })
  await until('the new endpoint', () => act.activator.ctx.tracing !== first)
  await send('/to-b')
  await rxB.waitFor((s) => s.some((x) => x.name === '/to-b'))
  t.notOk(rxA.spans.some((s) => s.name === '/to-b'), 'the old collector gets nothing new')
  await configTracing({ backend: 'zipkin', 'zipkin-endpoint': rxB.zipkinUrl, 'sample-rate': 'lots' })
  await sleep(300)
  t.equal(act.activator.ctx.tracing !== null, true, 'an invalid config-tracing keeps the settings in force')
  await configTracing({ backend: 'none' })
  await until('tracing off', () => act.activator.ctx.tracing === null)
  await send('/off-again')
  await sleep(1500)
  t.notOk([...rxA.spans, ...rxB.spans].some((s) => s.name === '/off' || s.name === '/off-again'), 'nothing traced while off')
  t.ok(app.seen.every((h) => h['x-b3-traceid'] === undefined || h.traceparent !== undefined), 'headers consistent')
})

t.test('HEAD\'s config-observability tracing-* keys win over config-tracing; removing them hands back', async (t) => {
  const rx = await traceReceiver(t)
  const api = await FakeKubeApi.start()
  t.teardown(() => api.close())
  const app = await recordingApp(t)
  const pod = await startPod(app.port)
  const cm = (name: string, data: Record<string, string>) => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { namespace: 'knative-serving', name }, data })
  api.upsert('configmaps', cm('config-tracing', { backend: 'zipkin', 'zipkin-endpoint': rx.zipkinUrl, 'sample-rate': '1' }))
  api.upsert('configmaps', cm('config-observability', { 'tracing-protocol': 'grpc', 'tracing-endpoint': rx.otlpGrpcUrl, 'tracing-sampling-rate': '1' }))
  const log = createLogger({ name: 'test', level: 'fatal' })
  const act = await startActivator({ revisions: [revisionInfo(REV)], configMaps: new ConfigMapWatch({ kubeConfig: kubeConfigFor(api), namespace: 'knative-serving', log }) })
  t.teardown(async () => { await act.stop(); await pod.stop() })
  act.source.setEndpoints(NAMESPACE, REV, { ready: [pod.dest], notReady: [] })

  t.equal((await request(`${act.url}/grpc`, { headers: ROUTE })).status, 200)
  const viaGrpc = await rx.waitFor((s) => s.some((x) => x.name === '/grpc'))
  t.equal(oneSpan(viaGrpc, '/grpc').transport, 'otlp-grpc', 'config-observability (OTLP gRPC) in force')
  t.equal(oneSpan(viaGrpc, 'activator_proxy').transport, 'otlp-grpc')
  const before = act.activator.ctx.tracing
  api.upsert('configmaps', cm('config-observability', {}))
  await waitFor(() => act.activator.ctx.tracing !== before, 10_000, 20)
  t.equal((await request(`${act.url}/zipkin`, { headers: ROUTE })).status, 200)
  const viaZipkin = await rx.waitFor((s) => s.some((x) => x.name === '/zipkin'))
  t.equal(oneSpan(viaZipkin, '/zipkin').transport, 'zipkin', 'without tracing-* keys, config-tracing applies again')
})

t.test('a dead collector: requests are served; drops are counted on the metrics port', async (t) => {
  const rx = await traceReceiver(t)
  await rx.setMode('refuse')
  const app = await recordingApp(t)
  const pod = await startPod(app.port)
  const act = await startActivator({
    env: { SLUICE_TRACING_BACKEND: 'zipkin', SLUICE_TRACING_ZIPKIN_ENDPOINT: rx.zipkinUrl, SLUICE_TRACING_DEBUG: 'true' },
    revisions: [revisionInfo(REV)],
  })
  t.teardown(async () => { await act.stop(); await pod.stop() })
  act.source.setEndpoints(NAMESPACE, REV, { ready: [pod.dest], notReady: [] })
  for (let i = 0; i < 20; i++) t.equal((await request(`${act.url}/x`, { headers: ROUTE })).status, 200)
  let dropped = 0
  await waitFor(async () => (dropped = droppedSpansIn(await scrapeMetrics(act.metricsUrl))) >= 60, 20_000, 200)
  t.equal(dropped, 60, 'the 3 spans of each of 20 requests are counted as dropped')
})

t.test('main.js (the bundle) loads the tracer when SLUICE_TRACING_* turn it on', async (t) => {
  const rx = await traceReceiver(t)
  const app = await recordingApp(t)
  const pod = await startPod(app.port)
  t.teardown(() => pod.stop())
  const act = await spawnActivator({ ...activatorEnv(), SLUICE_TRACING_BACKEND: 'zipkin', SLUICE_TRACING_ZIPKIN_ENDPOINT: rx.zipkinUrl, SLUICE_TRACING_DEBUG: 'true' })
  t.teardown(() => ensureStopped(act))
  const put = async (path: string, body: unknown) => t.equal((await request(`http://127.0.0.1:${act.ports.localApi}${path}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })).status < 300, true, `PUT ${path}`)
  await put(`/revisions/${NAMESPACE}/${REV}`, revisionInfo(REV))
  await put(`/endpoints/${NAMESPACE}/${REV}`, { ready: [pod.dest], notReady: [] })
  t.equal((await request(`${act.url}/bundled`, { headers: ROUTE })).status, 200)
  const spans = await rx.waitFor((s) => s.some((x) => x.name === '/bundled'))
  t.equal(oneSpan(spans, '/bundled').serviceName, 'activator-service')
})
