// Health checks and network probes answered by the queue-proxy itself
// (spec §1.6): which requests are intercepted, the exact replies, and that
// probes bypass the user container, the Stat and containerConcurrency.
import t from 'tap'
import http from 'node:http'
import http2 from 'node:http2'
import { close, knativeEnv, listen, request, sleep, startApp, startQueueProxy } from '../helpers/servers.ts'
import { nextStat } from '../helpers/stat-scrape.ts'

const QUEUE = { 'K-Network-Probe': 'queue' }
const GO_ERROR = { 'content-type': 'text/plain; charset=utf-8', 'x-content-type-options': 'nosniff' }

/** An app that counts what reaches it and echoes the probe header. */
function countingApp() {
  const seen: http.IncomingHttpHeaders[] = []
  const handler: http.RequestListener = (req, res) => {
    seen.push(req.headers)
    res.end(`app saw k-network-probe=${req.headers['k-network-probe'] ?? ''}`)
  }
  return { seen, handler }
}

t.test('user container ready (TCP readiness probe passes)', async (t) => {
  const app = countingApp()
  const { server, port } = await startApp(app.handler)
  const qp = await startQueueProxy(knativeEnv(port))
  t.teardown(async () => { await qp.stop(); await close(server) })

  t.test('kubelet UA kube-probe/1.30 + K-Network-Probe: queue → 200, body exactly "queue"', async (t) => {
    const r = await request(`${qp.url}/`, { headers: { 'User-Agent': 'kube-probe/1.30', ...QUEUE } })
    t.equal(r.status, 200)
    t.equal(r.body, 'queue')
  })

  t.test('Knative-Activator-Probe UA + K-Network-Probe: queue on /healthz → 200 "queue"', async (t) => {
    const r = await request(`${qp.url}/healthz`, { headers: { 'User-Agent': 'Knative-Activator-Probe', ...QUEUE } })
    t.equal(r.status, 200)
    t.equal(r.body, 'queue')
  })

  t.test('Knative-Autoscaling-Probe UA + K-Network-Probe: queue → 200 "queue"', async (t) => {
    const r = await request(`${qp.url}/`, { headers: { 'User-Agent': 'Knative-Autoscaling-Probe', ...QUEUE } })
    t.equal(r.status, 200)
    t.equal(r.body, 'queue')
  })

  t.test('any path and method: POST /some/path probe is still a probe', async (t) => {
    const r = await request(`${qp.url}/some/path?x=1`, { method: 'POST', headers: { 'User-Agent': 'kube-probe/1.30', ...QUEUE } })
    t.equal(r.status, 200)
    t.equal(r.body, 'queue')
  })

  t.test('Knative-Autoscaling-Probe + K-Network-Probe: activator (KPA "activator in path?") → 400 exact message', async (t) => {
    const r = await request(`${qp.url}//healthz`, { headers: { 'User-Agent': 'Knative-Autoscaling-Probe', 'K-Network-Probe': 'activator' } })
    t.equal(r.status, 400)
    t.equal(r.body, 'unexpected probe header value: activator\n')
    t.match(r.headers, GO_ERROR)
  })

  t.test('kubelet probe without K-Network-Probe → 400 "unexpected probe header value: \\n"', async (t) => {
    const r = await request(`${qp.url}/`, { headers: { 'User-Agent': 'kube-probe/1.30' } })
    t.equal(r.status, 400)
    t.equal(r.body, 'unexpected probe header value: \n')
    t.match(r.headers, GO_ERROR)
  })

  t.test('K-Kubelet-Probe: queue (no kubelet UA) marks a kubelet probe: with K-Network-Probe: queue → 200 "queue"', async (t) => {
    const r = await request(`${qp.url}/`, { headers: { 'K-Kubelet-Probe': 'queue', ...QUEUE } })
    t.equal(r.status, 200)
    t.equal(r.body, 'queue')
  })

  t.test('K-Kubelet-Probe: queue alone is intercepted too → 400, never proxied', async (t) => {
    const before = app.seen.length
    const r = await request(`${qp.url}/`, { headers: { 'K-Kubelet-Probe': 'queue' } })
    t.equal(r.status, 400)
    t.equal(r.body, 'unexpected probe header value: \n')
    t.equal(app.seen.length, before)
  })

  t.test('KProbe: K-Network-Probe: probe + K-Network-Hash: h → 200, empty body, K-Network-Hash echoed', async (t) => {
    const r = await request(`${qp.url}/`, { headers: { 'K-Network-Probe': 'probe', 'K-Network-Hash': 'h' } })
    t.equal(r.status, 200)
    t.equal(r.body, '')
    t.equal(r.headers['k-network-hash'], 'h')
  })

  t.test('KProbe without K-Network-Hash → 400 with the exact message', async (t) => {
    const r = await request(`${qp.url}/`, { headers: { 'K-Network-Probe': 'probe' } })
    t.equal(r.status, 400)
    t.equal(r.body, 'a probe request must contain a non-empty "K-Network-Hash" header\n')
    t.match(r.headers, GO_ERROR)
  })

  t.test('KProbe with an empty K-Network-Hash → 400 as if missing', async (t) => {
    const r = await request(`${qp.url}/`, { headers: { 'K-Network-Probe': 'probe', 'K-Network-Hash': '' } })
    t.equal(r.status, 400)
    t.equal(r.body, 'a probe request must contain a non-empty "K-Network-Hash" header\n')
  })

  t.test('health-check UA wins over KProbe: kube-probe UA + K-Network-Probe: probe → 400 unexpected value', async (t) => {
    const r = await request(`${qp.url}/`, { headers: { 'User-Agent': 'kube-probe/1.30', 'K-Network-Probe': 'probe', 'K-Network-Hash': 'h' } })
    t.equal(r.status, 400)
    t.equal(r.body, 'unexpected probe header value: probe\n')
  })

  t.test('K-Network-Probe: queue WITHOUT a health-check UA is proxied to the app, header included', async (t) => {
    const before = app.seen.length
    const r = await request(`${qp.url}/x`, { headers: { 'User-Agent': 'curl/8', ...QUEUE } })
    t.equal(r.status, 200)
    t.equal(r.body, 'app saw k-network-probe=queue')
    t.equal(app.seen.length, before + 1)
  })

  t.test('K-Network-Probe: activator without a health-check UA is proxied as well', async (t) => {
    const r = await request(`${qp.url}/`, { headers: { 'K-Network-Probe': 'activator' } })
    t.equal(r.body, 'app saw k-network-probe=activator')
  })

  t.test('a probe over h2c (prior knowledge) is answered the same way', async (t) => {
    const c = http2.connect(qp.url)
    t.teardown(() => c.close())
    const got = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const s = c.request({ ':path': '/', 'user-agent': 'kube-probe/1.30', 'k-network-probe': 'queue' })
      let status = 0
      let body = ''
      s.on('response', (h) => { status = Number(h[':status']) })
      s.on('data', (d: Buffer) => { body += d.toString() })
      s.on('end', () => resolve({ status, body }))
      s.on('error', reject)
      s.end()
    })
    t.same(got, { status: 200, body: 'queue' })
  })

  t.test('probes never reach the app and are not counted in the Stat; a normal request in the same window is', async (t) => {
    const before = app.seen.length
    await nextStat(qp.ports.metrics) // just after a tick: the next window is ours
    const probes = [
      { 'User-Agent': 'kube-probe/1.30', ...QUEUE },
      { 'User-Agent': 'Knative-Activator-Probe', ...QUEUE },
      { 'User-Agent': 'Knative-Autoscaling-Probe', 'K-Network-Probe': 'activator' },
      { 'K-Kubelet-Probe': 'queue', ...QUEUE },
      { 'K-Network-Probe': 'probe', 'K-Network-Hash': 'h' },
      { 'K-Network-Probe': 'probe' },
    ]
    for (let i = 0; i < 3; i++) await Promise.all(probes.map((headers) => request(`${qp.url}/`, { headers })))
    t.equal(app.seen.length, before, 'no probe reached the app')
    await request(`${qp.url}/normal`)
    const stat = await nextStat(qp.ports.metrics)
    t.equal(stat.requestCount, 1, 'only the normal request counted')
    t.ok(stat.averageConcurrentRequests < 0.2, `concurrency ${stat.averageConcurrentRequests}`)
  })
})

t.test('user container down (TCP readiness probe fails)', async (t) => {
  // Reserve a port, then free it: nothing listens there.
  const placeholder = http.createServer()
  const port = await listen(placeholder)
  await close(placeholder)
  // periodSeconds > 0: one attempt per probe (no 10 s aggressive polling).
  const qp = await startQueueProxy(knativeEnv(port, {
    SERVING_READINESS_PROBE: `{"tcpSocket":{"port":${port},"host":"127.0.0.1"},"periodSeconds":1,"timeoutSeconds":1,"successThreshold":1}`,
  }))
  t.teardown(() => qp.stop())

  t.test('kubelet probe → 503 with an empty body', async (t) => {
    const r = await request(`${qp.url}/`, { headers: { 'User-Agent': 'kube-probe/1.30', ...QUEUE } })
    t.equal(r.status, 503)
    t.equal(r.body, '')
  })

  t.test('activator probe → 503 with an empty body', async (t) => {
    const r = await request(`${qp.url}/healthz`, { headers: { 'User-Agent': 'Knative-Activator-Probe', ...QUEUE } })
    t.equal(r.status, 503)
    t.equal(r.body, '')
  })

  t.test('a KProbe does not run the user prober: still 200 with the hash', async (t) => {
    const r = await request(`${qp.url}/`, { headers: { 'K-Network-Probe': 'probe', 'K-Network-Hash': 'abc' } })
    t.equal(r.status, 200)
    t.equal(r.headers['k-network-hash'], 'abc')
  })
})

t.test('an injected prober decides readiness on every probe', async (t) => {
  let ready = false
  const { server, port } = await startApp((_req, res) => res.end('app'))
  const qp = await startQueueProxy(knativeEnv(port), { prober: { probe: async () => ready } })
  t.teardown(async () => { await qp.stop(); await close(server) })
  const probe = () => request(`${qp.url}/`, { headers: { 'User-Agent': 'kube-probe/1.30', ...QUEUE } })
  t.equal((await probe()).status, 503)
  ready = true
  const r = await probe()
  t.equal(r.status, 200)
  t.equal(r.body, 'queue')
})

t.test('probes do not count toward containerConcurrency: cc=1 with the slot busy, a probe answers at once', async (t) => {
  let release: () => void = () => {}
  let held: () => void = () => {}
  const holding = new Promise<void>((r) => { held = r })
  const { server, port } = await startApp((req, res) => {
    if (req.url === '/hold') {
      held()
      release = () => res.end('held')
      return
    }
    res.end('fast')
  })
  const qp = await startQueueProxy(knativeEnv(port, { CONTAINER_CONCURRENCY: '1' }))
  t.teardown(async () => { await qp.stop(); await close(server) })

  const slow = request(`${qp.url}/hold`)
  await holding
  // A normal request now waits for the slot...
  let queuedDone = false
  const queued = request(`${qp.url}/queued`).then((r) => { queuedDone = true; return r })
  await sleep(50)
  t.equal(queuedDone, false, 'a normal request waits for the busy slot')
  // ...but probes do not.
  const started = performance.now()
  const [kubelet, kprobe] = await Promise.all([
    request(`${qp.url}/`, { headers: { 'User-Agent': 'kube-probe/1.30', ...QUEUE } }),
    request(`${qp.url}/`, { headers: { 'K-Network-Probe': 'probe', 'K-Network-Hash': 'h' } }),
  ])
  const ms = performance.now() - started
  t.equal(kubelet.status, 200)
  t.equal(kubelet.body, 'queue')
  t.equal(kprobe.status, 200)
  t.ok(ms < 300, `probes answered in ${ms.toFixed(0)} ms`)
  release()
  t.equal((await slow).body, 'held')
  t.equal((await queued).body, 'fast')
})
