// The autoscaler's scrape endpoint on the metrics port (spec §1.12, §3.2):
// protobuf Stat with exact Content-Type, small body, the pod name, and
// per-window averages that match a known load.
import t from 'tap'
import { decodeStat, encodeStat, emptyStat } from '@sluice/core/stat-proto'
import { close, knativeEnv, request, startApp, startQueueProxy } from '../helpers/servers.ts'
import { collectStats, getBinary, nextStat } from '../helpers/stat-scrape.ts'
import { accounting, waitFor } from '../helpers/request-path.ts'

const POD = 'hello-00001-deployment-abc'

// Each test waits for the reporter's 1 s ticks on its own queue-proxy: run them side by side.
t.jobs = 5

/** An app whose /sleep?ms=N answers after N ms. */
async function sleepyApp() {
  return startApp((req, res) => {
    const ms = Number(new URL(req.url!, 'http://x').searchParams.get('ms') ?? '0')
    setTimeout(() => res.end('ok'), ms)
  })
}

t.test('scrape endpoint shape', async (t) => {
  const app = await sleepyApp()
  const qp = await startQueueProxy(knativeEnv(app.port))
  t.teardown(async () => { await qp.stop(); await close(app.server) })
  const metrics = `http://127.0.0.1:${qp.ports.metrics}`

  // First, before the reporter's first tick (1 s after start).
  t.test('before the first report: a valid Stat holding only pod_name', async (t) => {
    const r = await getBinary(`${metrics}/metrics`)
    t.equal(r.status, 200)
    t.same(decodeStat(r.body), emptyStat(POD))
    t.same(r.body, encodeStat(emptyStat(POD)), 'only field 1 on the wire')
  })

  t.test('GET /metrics → 200, Content-Type exactly application/protobuf, pod_name = SERVING_POD', async (t) => {
    const r = await getBinary(`${metrics}/metrics`, { headers: { Accept: 'application/protobuf' } })
    t.equal(r.status, 200)
    t.equal(r.headers['content-type'], 'application/protobuf')
    t.equal(decodeStat(r.body).podName, POD)
    t.equal(Number(r.headers['content-length']), r.body.length)
  })

  t.test('any Accept header (none, text, CSV, Prometheus text) gets the same protobuf', async (t) => {
    const bodies = await Promise.all([undefined, 'text/plain', 'text/csv', 'text/plain; version=0.0.4', '*/*'].map((accept) =>
      getBinary(`${metrics}/metrics`, { headers: accept === undefined ? {} : { Accept: accept } })))
    for (const r of bodies) {
      t.equal(r.status, 200)
      t.equal(r.headers['content-type'], 'application/protobuf')
      t.equal(decodeStat(r.body).podName, POD)
    }
  })

  t.test('any method on /metrics is served; the query string is ignored', async (t) => {
    for (const method of ['POST', 'HEAD', 'PUT']) {
      const r = await getBinary(`${metrics}/metrics?x=1`, { method })
      t.equal(r.status, 200, method)
      t.equal(r.headers['content-type'], 'application/protobuf')
    }
  })

  t.test('other paths → 404', async (t) => {
    for (const path of ['/', '/metrics/', '/healthz', '/stats']) {
      const r = await request(`${metrics}${path}`)
      t.equal(r.status, 404, path)
      t.equal(r.body, '404 page not found\n')
    }
  })

  t.test('timestamp is not set and process_uptime grows by ~1 s per report', async (t) => {
    const a = await nextStat(qp.ports.metrics)
    const b = await nextStat(qp.ports.metrics)
    t.equal(a.timestamp, 0)
    t.equal(b.timestamp, 0)
    t.ok(a.processUptime > 0.5, `uptime ${a.processUptime}`)
    const dt = b.processUptime - a.processUptime
    t.ok(dt > 0.9 && dt < 1.1, `uptime grew by ${dt}`)
  })
})

t.test('averages over a window match a known load', async (t) => {
  let arrived = 0
  const app = await startApp((req, res) => {
    arrived++
    const ms = Number(new URL(req.url!, 'http://x').searchParams.get('ms') ?? '0')
    setTimeout(() => res.end('ok'), ms)
  })
  const qp = await startQueueProxy(knativeEnv(app.port))
  t.teardown(async () => { await qp.stop(); await close(app.server) })

  // Two 4.5 s requests (one via the activator). Windows are read until both
  // have arrived: their arrivals are counted once, in those windows. The
  // window after that lies wholly inside both requests, however late the
  // arrivals were on a busy machine.
  await nextStat(qp.ports.metrics)
  const load = Promise.all([
    request(`${qp.url}/sleep?ms=4500`),
    request(`${qp.url}/sleep?ms=4500`, { headers: { 'K-Proxy-Request': 'activator' } }),
  ])
  let requests = 0
  let proxied = 0
  for (let seen = false; !seen;) {
    seen = arrived === 2
    const w = await nextStat(qp.ports.metrics)
    requests += w.requestCount
    proxied += w.proxiedRequestCount
  }
  t.equal(requests, 2, 'two arrivals, counted once')
  t.equal(proxied, 1, 'K-Proxy-Request: activator counted as proxied')
  const full = await nextStat(qp.ports.metrics)
  t.ok(full.averageConcurrentRequests > 1.8 && full.averageConcurrentRequests <= 2.0001, `average concurrency ${full.averageConcurrentRequests} ≈ 2`)
  t.ok(full.averageProxiedConcurrentRequests > 0.9 && full.averageProxiedConcurrentRequests <= 1.0001, `proxied concurrency ${full.averageProxiedConcurrentRequests} ≈ 1`)
  t.equal(full.requestCount, 0, 'no arrivals in a window inside the requests')
  t.equal(full.podName, POD)

  // The window holding the requests' end reports less, with no arrivals.
  for (const r of await load) t.equal(r.status, 200)
  const tail = await nextStat(qp.ports.metrics)
  t.ok(tail.averageConcurrentRequests < 2, `tail concurrency ${tail.averageConcurrentRequests}`)
  t.equal(tail.requestCount, 0)

  // An idle window reports zero load (zero fields are omitted on the wire).
  const idle = await nextStat(qp.ports.metrics)
  t.equal(idle.averageConcurrentRequests, 0)
  t.equal(idle.requestCount, 0)
})

t.test('request_count is arrivals per second: 10 short requests in a window → 10', async (t) => {
  const app = await sleepyApp()
  const qp = await startQueueProxy(knativeEnv(app.port))
  t.teardown(async () => { await qp.stop(); await close(app.server) })
  const seen = collectStats(qp.ports.metrics)
  await nextStat(qp.ports.metrics)
  await Promise.all(Array.from({ length: 10 }, (_, i) => request(`${qp.url}/sleep?ms=${i * 10}`, i % 2 === 0 ? { headers: { 'K-Proxy-Request': 'activator' } } : {})))
  await nextStat(qp.ports.metrics)
  const windows = await seen.stop()
  // Summed over the windows: on a busy machine the ten may straddle a tick.
  t.equal(windows.reduce((n, w) => n + w.requestCount, 0), 10)
  t.equal(windows.reduce((n, w) => n + w.proxiedRequestCount, 0), 5)
  const busiest = Math.max(...windows.map((w) => w.averageConcurrentRequests))
  t.ok(busiest > 0 && busiest < 10, `short requests: concurrency ${busiest} (~0.5)`)
})

t.test('queued requests count as concurrency (cc=1: the waiting request is in flight too)', async (t) => {
  const app = await sleepyApp()
  const qp = await startQueueProxy(knativeEnv(app.port, { CONTAINER_CONCURRENCY: '1' }))
  t.teardown(async () => { await qp.stop(); await close(app.server) })
  // Once both are in flight (one running, one queued), the next window but one
  // lies wholly inside the 4 s request, however busy the machine.
  const a = request(`${qp.url}/sleep?ms=4000`)
  t.ok(await waitFor(() => accounting(qp).running === 1), 'the first request runs')
  const b = request(`${qp.url}/sleep?ms=10`)
  t.ok(await waitFor(() => accounting(qp).waiting === 1), 'the second waits in the breaker queue')
  t.equal(accounting(qp).stats, 2, 'both count in flight')
  await nextStat(qp.ports.metrics)
  const s = await nextStat(qp.ports.metrics)
  t.ok(s.averageConcurrentRequests > 1.8, `concurrency ${s.averageConcurrentRequests} includes the queued request`)
  await Promise.all([a, b])
})

t.test('a 253-character pod name with every field set still fits the autoscaler\'s 336-byte read', async (t) => {
  const pod = 'p'.repeat(253)
  const app = await sleepyApp()
  const qp = await startQueueProxy(knativeEnv(app.port, { SERVING_POD: pod }))
  t.teardown(async () => { await qp.stop(); await close(app.server) })
  await nextStat(qp.ports.metrics)
  const load = request(`${qp.url}/sleep?ms=1100`, { headers: { 'K-Proxy-Request': 'activator' } })
  await nextStat(qp.ports.metrics)
  const r = await getBinary(`http://127.0.0.1:${qp.ports.metrics}/metrics`)
  await load
  const s = decodeStat(r.body)
  t.equal(s.podName, pod)
  t.ok(s.averageConcurrentRequests > 0 && s.averageProxiedConcurrentRequests > 0 && s.requestCount > 0 && s.proxiedRequestCount > 0 && s.processUptime > 0, 'all fields set')
  t.ok(r.body.length < 336, `body is ${r.body.length} bytes`)
})
