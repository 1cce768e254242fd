// A websocket through the activator to a cold revision is one trace, as any
// request is (spec §1.15, §2.3): the activator's server span, throttler_try
// for the wait for capacity, activator_proxy, then the queue-proxy's spans
// under it and the app's upgrade request under queue_proxy; every span ends
// with the tunnel, recording 101. Real sockets, real exporters, the Zipkin
// receiver.
import t, { type Test } from 'tap'
import { WebSocket } from 'ws'
import { NAMESPACE, revisionInfo, startActivator, startPod, waitingInThrottler } from '../helpers/activator.ts'
import { sleep, waitFor } from '../helpers/servers.ts'
import { oneSpan, traceReceiver } from '../helpers/trace-receiver.ts'
import { connectWebsocket, startWebsocketApp } from '../helpers/websocket-app.ts'

t.jobs = 2

const TRACE_ID = '0af7651916cd43dd8448eb211c80319c'
const CLIENT_SPAN = 'b7ad6b7169203331'
const REV = 'hello-00001'
const ROUTE = { 'Knative-Serving-Namespace': NAMESPACE, 'Knative-Serving-Revision': REV }
const ACTIVATOR = 'activator-service'
const POD = 'hello-00001-deployment-abc'



/** Activator and pod, both tracing to `zipkinUrl` (the activator at rate 0.1: the caller's sampled flag decides). */
async function chain(t: Test, zipkinUrl: string, appPort: number) {
  const pod = await startPod(appPort, { env: { TRACING_CONFIG_BACKEND: 'zipkin', TRACING_CONFIG_ZIPKIN_ENDPOINT: zipkinUrl, TRACING_CONFIG_SAMPLE_RATE: '1' } })
  const act = await startActivator({
    env: { SLUICE_TRACING_BACKEND: 'zipkin', SLUICE_TRACING_ZIPKIN_ENDPOINT: zipkinUrl, SLUICE_TRACING_SAMPLE_RATE: '0.1' },
    revisions: [revisionInfo(REV)],
  })
  t.teardown(async () => { await act.stop(); await pod.stop() })
  return { act, pod }
}

t.test('a websocket to a cold revision: one trace across activator, queue-proxy and app, ending with the websocket', async (t) => {
  const rx = await traceReceiver(t)
  const app = await startWebsocketApp()
  t.teardown(() => app.stop())
  const { act, pod } = await chain(t, rx.zipkinUrl, app.port)

  const { ws, messages, opened, closed } = connectWebsocket(act.url, '/chat', { ...ROUTE, traceparent: `00-${TRACE_ID}-${CLIENT_SPAN}-01` })
  // No pod yet: the upgrade waits in the throttler until the endpoints arrive.
  await waitingInThrottler(act, REV)
  await sleep(300)
  act.source.setEndpoints(NAMESPACE, REV, { ready: [pod.dest], notReady: [] })
  await opened
  ws.send('hi')
  t.ok(await waitFor(() => messages.includes('echo:hi'), 5000), 'messages flow through both tunnels')
  await sleep(300)
  ws.close()
  await closed

  const spans = await rx.waitFor((s) => s.filter((x) => x.traceId === TRACE_ID).length >= 5)
  const trace = spans.filter((s) => s.traceId === TRACE_ID)
  const actServer = oneSpan(trace, '/chat', ACTIVATOR)
  const wait = oneSpan(trace, 'throttler_try')
  const actProxy = oneSpan(trace, 'activator_proxy')
  const qpServer = oneSpan(trace, '/chat', POD)
  const qpProxy = oneSpan(trace, 'queue_proxy')
  t.equal(trace.length, 5, 'five spans, no more')
  t.equal(actServer.kind, 'SERVER')
  t.equal(actServer.parentId, CLIENT_SPAN, 'the client\'s sampled traceparent decides')
  t.equal(wait.parentId, actServer.spanId, 'throttler_try under the activator\'s server span')
  t.ok(wait.durationMs >= 250, `throttler_try lasts the cold start (${wait.durationMs} ms >= 250)`)
  t.equal(actProxy.parentId, actServer.spanId, 'activator_proxy under the server span')
  t.ok(actProxy.startMs >= wait.startMs + wait.durationMs - 1, 'the proxying starts once the wait is over')
  t.equal(qpServer.parentId, actProxy.spanId, 'the queue-proxy continues the activator\'s trace')
  t.equal(qpProxy.parentId, qpServer.spanId)
  t.equal(app.upgrades[0]?.headers.traceparent, `00-${TRACE_ID}-${qpProxy.spanId}-01`, 'the app\'s upgrade request is parented by queue_proxy')
  for (const s of [actServer, actProxy, qpServer, qpProxy]) t.equal(String(s.attributes['http.status_code']), '101', `${s.serviceName}:${s.name} records 101`)
  t.ok(actProxy.durationMs >= 250, `activator_proxy covers the open websocket (${actProxy.durationMs} ms >= 250)`)
  t.ok(qpServer.durationMs >= 250, `so does the queue-proxy's server span (${qpServer.durationMs} ms >= 250)`)
  t.ok(actServer.durationMs >= 500, `the activator's server span covers wait and websocket (${actServer.durationMs} ms >= 500)`)
})

t.test('a refused upgrade records the pod\'s 400 at both hops; one shed while waiting (revision deleted) records 404 and why', async (t) => {
  const rx = await traceReceiver(t)
  const app = await startWebsocketApp()
  t.teardown(() => app.stop())
  const { act, pod } = await chain(t, rx.zipkinUrl, app.port)
  act.source.setEndpoints(NAMESPACE, REV, { ready: [pod.dest], notReady: [] })

  const status = (path: string, headers: Record<string, string>) => new Promise<number>((resolve) => {
    const ws = new WebSocket(`${act.url.replace(/^http/, 'ws')}${path}`, { headers })
    ws.on('open', () => { ws.terminate(); resolve(101) })
    ws.on('unexpected-response', (_req, res) => { res.resume(); ws.terminate(); resolve(res.statusCode ?? 0) })
    ws.on('error', () => resolve(0))
  })
  t.equal(await status('/refuse', { ...ROUTE, traceparent: `00-${TRACE_ID}-${CLIENT_SPAN}-01` }), 400)
  // A revision with no pods: the upgrade waits until the revision is deleted, then is shed.
  const GONE = 'gone-00001'
  act.source.upsertRevision(revisionInfo(GONE))
  const other = 'aaaaaaaaaaaaaaaabbbbbbbbbbbbbbbb'
  const shed = status('/shed', { 'Knative-Serving-Namespace': NAMESPACE, 'Knative-Serving-Revision': GONE, traceparent: `00-${other}-${CLIENT_SPAN}-01` })
  t.ok(await waitFor(() => (act.activator.ctx.throttler.get(`${NAMESPACE}/${GONE}`)?.queue.length ?? 0) > 0, 10_000), 'the upgrade waits for capacity')
  act.source.deleteRevision(NAMESPACE, GONE)
  t.equal(await shed, 404)

  const spans = await rx.waitFor((s) => s.filter((x) => x.traceId === TRACE_ID).length >= 5 && s.some((x) => x.name === '/shed'))
  const trace = spans.filter((s) => s.traceId === TRACE_ID)
  for (const s of [oneSpan(trace, '/refuse', ACTIVATOR), oneSpan(trace, 'activator_proxy'), oneSpan(trace, '/refuse', POD), oneSpan(trace, 'queue_proxy')]) {
    t.equal(String(s.attributes['http.status_code']), '400', `${s.serviceName}:${s.name} records the refusal`)
  }
  const shedServer = oneSpan(spans, '/shed')
  t.equal(shedServer.traceId, other)
  t.equal(String(shedServer.attributes['http.status_code']), '404')
  const shedWait = spans.find((s) => s.name === 'throttler_try' && s.parentId === shedServer.spanId)
  t.equal(shedWait?.attributes['activator.throttler.error'], 'no-revision', 'throttler_try says why it was shed')
  t.notOk(spans.some((s) => s.name === 'activator_proxy' && s.traceId === other), 'never proxied')
})
