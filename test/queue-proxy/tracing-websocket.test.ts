// Websockets (HTTP/1.1 Upgrade) traced through the queue-proxy as Knative's
// OpenCensus middleware traces every request: a server span and queue_proxy
// (queue_wait while the breaker holds it), the app's upgrade request carrying
// queue_proxy's context, and the spans ending when the tunnel closes with the
// answer's status (101, the app's refusal, or the proxy's own 502). Real
// sockets, the real Zipkin exporter, the test receiver.
import t from 'tap'
import { knativeEnv, sleep, startQueueProxy, waitFor } from '../helpers/servers.ts'
import { deadPort } from '../helpers/request-path.ts'
import { traceReceiver, type ReceivedSpan } from '../helpers/trace-receiver.ts'
import { connectWebsocket, startWebsocketApp } from '../helpers/websocket-app.ts'

t.jobs = 3

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736'
const CLIENT_SPAN = '00f067aa0ba902b7'

function zipkinEnv(userPort: number, endpoint: string, extra: Record<string, string> = {}): Record<string, string> {
  return knativeEnv(userPort, { TRACING_CONFIG_BACKEND: 'zipkin', TRACING_CONFIG_ZIPKIN_ENDPOINT: endpoint, TRACING_CONFIG_SAMPLE_RATE: '1', ...extra })
}

const byName = (spans: readonly ReceivedSpan[], name: string) => spans.filter((s) => s.name === name)
const inTrace = (spans: readonly ReceivedSpan[], traceId: string, name: string) => spans.find((s) => s.traceId === traceId && s.name === name)

t.test('a websocket: server span under the client\'s traceparent, queue_proxy under it, 101, ending when the websocket closes', async (t) => {
  const rx = await traceReceiver(t)
  const app = await startWebsocketApp()
  const qp = await startQueueProxy(zipkinEnv(app.port, rx.zipkinUrl))
  t.teardown(async () => { await qp.stop(); await app.stop() })

  const c = connectWebsocket(qp.url, '/chat?room=1', { traceparent: `00-${TRACE_ID}-${CLIENT_SPAN}-01`, 'X-B3-TraceId': 'a'.repeat(32), 'X-B3-SpanId': 'b'.repeat(16), 'User-Agent': 'ws-test' })
  await c.opened
  const openedAt = Date.now()
  c.ws.send('hi')
  t.ok(await waitFor(() => c.messages.includes('echo:hi'), 5000), 'messages flow through the traced tunnel')
  await sleep(400)
  c.ws.close()
  await c.closed
  const closedAt = Date.now()

  const spans = await rx.waitFor((s) => byName(s, '/chat').length === 1 && byName(s, 'queue_proxy').length === 1)
  const [server] = byName(spans, '/chat')
  const [proxy] = byName(spans, 'queue_proxy')
  t.equal(server!.kind, 'SERVER')
  t.equal(server!.traceId, TRACE_ID, 'W3C traceparent wins over B3')
  t.equal(server!.parentId, CLIENT_SPAN)
  t.equal(proxy!.traceId, TRACE_ID)
  t.equal(proxy!.parentId, server!.spanId)
  t.equal(byName(spans, 'queue_wait').length, 0, 'no queue_wait without a breaker (cc = 0)')
  t.equal(server!.attributes['http.method'], 'GET')
  t.equal(server!.attributes['http.path'], '/chat')
  t.equal(server!.attributes['http.user_agent'], 'ws-test')
  t.equal(String(server!.attributes['http.status_code']), '101', 'a switched tunnel records 101')
  t.equal(String(proxy!.attributes['http.status_code']), '101')
  t.equal(server!.attributes['otel.status_code'], undefined, 'not an error')
  t.ok(server!.durationMs >= 350, `the server span covers the open websocket (${server!.durationMs} ms >= 350)`)
  t.ok(proxy!.durationMs >= 350, `so does queue_proxy (${proxy!.durationMs} ms >= 350)`)
  // The span's end (its clock and Date.now() agree to well within the 50 ms to spare) comes after the hold.
  t.ok(server!.startMs + server!.durationMs >= openedAt + 350, 'the server span ended after the hold')
  t.ok(server!.startMs <= closedAt, 'and started before the close')

  const h = app.upgrades[0]!.headers
  t.equal(h.traceparent, `00-${TRACE_ID}-${proxy!.spanId}-01`, 'the app\'s upgrade request is parented by queue_proxy')
  t.equal(h['x-b3-traceid'], TRACE_ID, 'B3 rewritten to the same trace')
  t.equal(h['x-b3-spanid'], proxy!.spanId)
  t.equal(h['x-b3-sampled'], '1')
})

t.test('cc=1: an upgrade queued behind an open websocket gets queue_wait for its wait', async (t) => {
  const rx = await traceReceiver(t)
  const app = await startWebsocketApp()
  const qp = await startQueueProxy(zipkinEnv(app.port, rx.zipkinUrl, { CONTAINER_CONCURRENCY: '1' }))
  t.teardown(async () => { await qp.stop(); await app.stop() })

  const first = connectWebsocket(qp.url, '/first')
  await first.opened
  const second = connectWebsocket(qp.url, '/second')
  const breaker = qp.qp.ctx.breaker!
  t.ok(await waitFor(() => breaker.pending > 0, 10_000), 'the second upgrade waits in the breaker')
  await sleep(300)
  first.ws.close()
  await first.closed
  await second.opened
  second.ws.close()
  await second.closed

  const spans = await rx.waitFor((s) => byName(s, '/second').length === 1 && byName(s, 'queue_wait').length === 2)
  const [server] = byName(spans, '/second')
  const wait = inTrace(spans, server!.traceId, 'queue_wait')!
  const proxy = inTrace(spans, server!.traceId, 'queue_proxy')!
  t.equal(wait.parentId, server!.spanId, 'queue_wait is a child of the server span')
  t.equal(proxy.parentId, server!.spanId)
  t.ok(wait.durationMs >= 250, `queue_wait spans the wait behind the first websocket (${wait.durationMs} ms >= 250)`)
  t.equal(String(server!.attributes['http.status_code']), '101')
  t.equal(app.upgrades.find((u) => u.url === '/second')?.headers.traceparent, `00-${server!.traceId}-${proxy.spanId}-01`)
  const firstWait = inTrace(spans, byName(spans, '/first')[0]!.traceId, 'queue_wait')!
  t.ok(firstWait.durationMs < wait.durationMs, 'the first upgrade did not wait')
})

t.test('a refused upgrade records the app\'s status; an app not listening records 502 as an error', async (t) => {
  const rx = await traceReceiver(t)
  const app = await startWebsocketApp()
  const qp = await startQueueProxy(zipkinEnv(app.port, rx.zipkinUrl))
  const dead = await startQueueProxy(zipkinEnv(await deadPort(), rx.zipkinUrl))
  t.teardown(async () => { await qp.stop(); await dead.stop(); await app.stop() })

  t.equal(await connectWebsocket(qp.url, '/refuse').refused, 400, 'the app\'s refusal reaches the client')
  t.equal(await connectWebsocket(dead.url, '/nobody').refused, 502, 'Go\'s 502 when the app is not listening')
  const spans = await rx.waitFor((s) => byName(s, '/refuse').length === 1 && byName(s, '/nobody').length === 1 && byName(s, 'queue_proxy').length === 2)
  const [refused] = byName(spans, '/refuse')
  t.equal(String(refused!.attributes['http.status_code']), '400')
  t.equal(refused!.attributes['otel.status_code'], undefined, '4xx is not a server error')
  t.equal(String(inTrace(spans, refused!.traceId, 'queue_proxy')!.attributes['http.status_code']), '400')
  const [failed] = byName(spans, '/nobody')
  t.equal(String(failed!.attributes['http.status_code']), '502')
  t.equal(failed!.attributes['otel.status_code'], 'ERROR', '5xx marks the span as an error')
  t.equal(inTrace(spans, failed!.traceId, 'queue_proxy')!.attributes['otel.status_code'], 'ERROR')
})

t.test('unsampled (rate 0): no spans, the app still receives the trace context, flagged unsampled', async (t) => {
  const rx = await traceReceiver(t)
  const app = await startWebsocketApp()
  const qp = await startQueueProxy(zipkinEnv(app.port, rx.zipkinUrl, { TRACING_CONFIG_SAMPLE_RATE: '0' }))
  t.teardown(async () => { await qp.stop(); await app.stop() })

  const other = 'aaaaaaaaaaaaaaaabbbbbbbbbbbbbbbb'
  const callers: Array<Record<string, string>> = [{}, { traceparent: `00-${other}-${CLIENT_SPAN}-00` }]
  for (const headers of callers) {
    const c = connectWebsocket(qp.url, '/unsampled', headers)
    await c.opened
    c.ws.close()
    await c.closed
  }
  const [root, child] = app.upgrades
  t.match(root!.headers.traceparent, /^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/, 'a fresh trace id, flagged unsampled')
  t.equal(root!.headers['x-b3-sampled'], '0')
  t.match(child!.headers.traceparent, new RegExp(`^00-${other}-[0-9a-f]{16}-00$`), 'the caller\'s trace id kept')
  t.not(child!.headers.traceparent, `00-${other}-${CLIENT_SPAN}-00`, 'with this hop\'s span id')
  t.equal(child!.headers['x-b3-traceid'], other)
  // A caller that sampled is honoured (parent-based): once its spans arrive, the earlier ones would have too.
  const sampled = connectWebsocket(qp.url, '/sampled', { traceparent: `00-${TRACE_ID}-${CLIENT_SPAN}-01` })
  await sampled.opened
  sampled.ws.close()
  await sampled.closed
  const spans = await rx.waitFor((s) => byName(s, '/sampled').length === 1 && byName(s, 'queue_proxy').length >= 1)
  t.ok(spans.every((s) => s.traceId === TRACE_ID), 'only the upgrade whose caller sampled it was exported')
})
