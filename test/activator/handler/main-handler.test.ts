// The activator's handler chain end to end (spec §2.3–2.5, §2.9): probes
// answered by the activator itself, revision identification from headers or
// the cluster-local Host, and what a proxied request looks like at the
// queue-proxy and at the user container.
import t from 'tap'
import type http from 'node:http'
import { close, request, startApp } from '../../helpers/servers.ts'
import { nextStat } from '../../helpers/stat-scrape.ts'
import { startTestAutoscaler } from '../../helpers/test-autoscaler.ts'
import { metricLabels, revisionInfo, scrapeMetrics, startActivator, startPod } from '../../helpers/activator.ts'

const REV = 'hello-00001'
const ROUTE = { 'Knative-Serving-Namespace': 'default', 'Knative-Serving-Revision': REV }

const appSaw: http.IncomingHttpHeaders[] = []
const app = await startApp((req, res) => {
  appSaw.push(req.headers)
  res.setHeader('content-type', 'text/plain')
  res.end(`app ${req.url}`)
})
const pod = await startPod(app.port)
const autoscaler = await startTestAutoscaler()
const act = await startActivator({ autoscalerUrl: autoscaler.url, revisions: [revisionInfo(REV)] })
act.source.setEndpoints('default', REV, { ready: [pod.dest], notReady: [] })
t.teardown(async () => {
  await pod.stop()
  await close(app.server)
  await act.stop()
  await autoscaler.stop()
})

/** The last request the app saw after sending one through the activator. */
async function throughActivator(headers: Record<string, string>, path = '/hi') {
  const before = appSaw.length
  const r = await request(`${act.url}${path}`, { headers })
  return { r, seen: appSaw.length > before ? appSaw[appSaw.length - 1]! : undefined }
}

t.test('kubelet probes: any path, kube-probe UA or K-Kubelet-Probe -> 200 with an empty body', async (t) => {
  for (const headers of [{ 'User-Agent': 'kube-probe/1.30' }, { 'K-Kubelet-Probe': 'activator' }]) {
    const r = await request(`${act.url}/anything`, { headers })
    t.equal(r.status, 200, JSON.stringify(headers))
    t.equal(r.body, '')
  }
  const r = await request(`${act.url}/`, { method: 'POST', headers: { 'User-Agent': 'kube-probe/1.30', ...ROUTE } })
  t.equal(r.status, 200, 'a kubelet probe is answered before revision routing')
  t.equal(r.body, '')
})

t.test('K-Network-Probe: activator on //healthz (the KPA probe before scaling to zero) -> 200 "activator"', async (t) => {
  const r = await request(`${act.url}//healthz`, { headers: { 'K-Network-Probe': 'activator', 'User-Agent': 'Knative-Autoscaling-Probe' } })
  t.equal(r.status, 200)
  t.equal(r.body, 'activator', 'no trailing newline')
})

t.test('K-Network-Probe: probe echoes K-Network-Hash; without a hash 400', async (t) => {
  const r = await request(`${act.url}/`, { headers: { 'K-Network-Probe': 'probe', 'K-Network-Hash': 'abc123' } })
  t.equal(r.status, 200)
  t.equal(r.headers['k-network-hash'], 'abc123')
  t.equal(r.body, '')
  const bad = await request(`${act.url}/`, { headers: { 'K-Network-Probe': 'probe' } })
  t.equal(bad.status, 400)
  t.equal(bad.body, 'a probe request must contain a non-empty "K-Network-Hash" header\n')
})

t.test('any other K-Network-Probe value -> 400 with the value quoted and html-escaped', async (t) => {
  const r = await request(`${act.url}/`, { headers: { 'K-Network-Probe': 'x' } })
  t.equal(r.status, 400)
  t.equal(r.body, 'unexpected probe header value: "x"\n')
  t.equal(r.headers['content-type'], 'text/plain; charset=utf-8')
  t.equal(r.headers['x-content-type-options'], 'nosniff')
  const q = await request(`${act.url}/`, { headers: { 'K-Network-Probe': 'queue' } })
  t.equal(q.body, 'unexpected probe header value: "queue"\n', 'the queue-proxy probe value is not the activator\'s')
  const esc = await request(`${act.url}/`, { headers: { 'K-Network-Probe': `<b>"it's" & more` } })
  t.equal(esc.body, 'unexpected probe header value: "&lt;b&gt;&#34;it&#39;s&#34; &amp; more"\n')
})

t.test('revision from the Knative-Serving-Namespace/-Revision headers', async (t) => {
  const { r } = await throughActivator(ROUTE)
  t.equal(r.status, 200)
  t.equal(r.body, 'app /hi')
})

t.test('revision from a <rev>.<ns>.svc.<cluster domain>[:port] Host when a header is missing', async (t) => {
  for (const host of [`${REV}.default.svc.cluster.local`, `${REV}.default.svc.cluster.local:8012`]) {
    const { r, seen } = await throughActivator({ Host: host })
    t.equal(r.status, 200, host)
    t.equal(seen?.host, host, 'the app sees the original Host')
  }
  const { r } = await throughActivator({ Host: `${REV}.default.svc.cluster.local`, 'Knative-Serving-Revision': REV })
  t.equal(r.status, 200, 'only one header: the Host decides')
})

t.test('unknown revisions -> 404 with Knative\'s exact body, never reaching a pod', async (t) => {
  const before = appSaw.length
  const cases: Array<[Record<string, string>, string]> = [
    [{ 'Knative-Serving-Namespace': 'default', 'Knative-Serving-Revision': 'nope-00001' }, 'nope-00001'],
    [{ 'Knative-Serving-Namespace': 'other', 'Knative-Serving-Revision': REV }, REV],
    [{ Host: 'gone-00002.default.svc.cluster.local' }, 'gone-00002'],
    [{ Host: `${REV}.default.svc.example.org` }, ''],
    [{ Host: 'hello.default.example.com' }, ''],
  ]
  for (const [headers, name] of cases) {
    const r = await request(`${act.url}/`, { headers })
    t.equal(r.status, 404, JSON.stringify(headers))
    t.equal(r.body, `Error getting active endpoint: revision.serving.knative.dev "${name}" not found\n`)
    t.equal(r.headers['content-type'], 'text/plain; charset=utf-8')
  }
  t.equal(appSaw.length, before)
  const text = await scrapeMetrics(act.metricsUrl)
  t.notOk(metricLabels(text, 'activator_request_count').some((l) => l.response_code === '404'), 'probes and 404s are not counted in activator_request_count')
})

t.test('at the queue-proxy: Host = pod, K-Original-Host = original Host, K-Proxy-Request: activator, revision headers gone', async (t) => {
  const before = pod.seen.length
  const { r } = await throughActivator({ ...ROUTE, Host: 'hello.default.example.com', 'K-Network-Hash': 'h' }, '/at-qp?x=1')
  t.equal(r.status, 200)
  const seen = pod.seen.slice(before).find((s) => s.url === '/at-qp?x=1')
  t.ok(seen, 'the queue-proxy received the request')
  t.equal(seen?.headers.host, pod.dest)
  t.equal(seen?.headers['k-original-host'], 'hello.default.example.com')
  t.equal(seen?.headers['k-proxy-request'], 'activator')
  t.equal(seen?.headers['knative-serving-revision'], undefined)
  t.equal(seen?.headers['knative-serving-namespace'], undefined)
  t.equal(seen?.headers['k-network-hash'], undefined, 'K-Network-Hash is dropped')

  const kept = await throughActivator({ ...ROUTE, Host: 'outer.example.com', 'K-Original-Host': 'first.example.com' })
  t.equal(kept.seen?.host, 'first.example.com', 'an existing K-Original-Host is kept (and wins at the queue-proxy)')
})

t.test('at the user container: original Host restored, revision headers stripped, client IP in X-Forwarded-For', async (t) => {
  const { r, seen } = await throughActivator({ ...ROUTE, Host: 'hello.default.example.com', 'X-Forwarded-For': '203.0.113.7', 'X-Custom': 'kept' })
  t.equal(r.status, 200)
  t.equal(seen?.host, 'hello.default.example.com')
  t.equal(seen?.['knative-serving-revision'], undefined)
  t.equal(seen?.['knative-serving-namespace'], undefined)
  t.equal(seen?.['x-custom'], 'kept')
  // client's, then the activator's view of the client, then the queue-proxy's view of the activator
  t.equal(seen?.['x-forwarded-for'], '203.0.113.7, 127.0.0.1, 127.0.0.1')
  const plain = await throughActivator(ROUTE)
  t.equal(plain.seen?.['x-forwarded-for'], '127.0.0.1, 127.0.0.1', 'the client IP is added when there was none')
})

t.test('the queue-proxy counts requests from the activator as proxied in its autoscaler Stat', async (t) => {
  await nextStat(pod.qp.ports.metrics) // start of a fresh reporting window
  for (let i = 0; i < 3; i++) t.equal((await request(`${act.url}/`, { headers: ROUTE })).status, 200)
  t.equal((await request(`${pod.qp.url}/direct`)).status, 200, 'one request straight to the queue-proxy')
  const stat = await nextStat(pod.qp.ports.metrics)
  t.equal(stat.requestCount, 4)
  t.equal(stat.proxiedRequestCount, 3, 'only the activator\'s requests are proxied')
})
