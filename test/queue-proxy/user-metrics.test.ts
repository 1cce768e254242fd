// User-facing request metrics in Prometheus text on the user-metrics port
// (spec §1.13, §5): Knative 1.12 names and labels, route_tag values,
// latency buckets, app metrics and queue depth, probes excluded; Sluice's
// breaker rejections and drain state; enabled by
// SERVING_REQUEST_METRICS_BACKEND=prometheus or OBSERVABILITY_CONFIG.
import t from 'tap'
import { close, knativeEnv, request, sleep, startApp, startQueueProxy, waitFor } from '../helpers/servers.ts'

interface Sample { name: string; labels: Record<string, string>; value: number }

function parseProm(text: string): Sample[] {
  const out: Sample[] = []
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (!m) throw new Error(`unparsable line ${JSON.stringify(line)}`)
    const labels: Record<string, string> = {}
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!
    out.push({ name: m[1]!, labels, value: Number(m[3]) })
  }
  return out
}

/** Samples of `name` whose labels include `match`. */
function find(samples: Sample[], name: string, match: Record<string, string> = {}): Sample[] {
  return samples.filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v))
}

/** Polls `cond` every 20 ms until it holds (true) or `ms` pass (false). */
const waitUntil = (cond: () => Promise<boolean>, ms: number): Promise<boolean> => waitFor(cond, ms, 20)

const RESOURCE = {
  namespace_name: 'default',
  service_name: 'hello',
  configuration_name: 'hello',
  revision_name: 'hello-00001',
  pod_name: 'hello-00001-deployment-abc',
  container_name: 'queue-proxy',
}

async function setup(t: { teardown(fn: () => Promise<void>): void }, extra: Record<string, string>) {
  const app = await startApp((req, res) => {
    if (req.url === '/missing') {
      res.statusCode = 404
      res.end('nope')
    } else if (req.url === '/slow') {
      setTimeout(() => res.end('slow'), 120)
    } else {
      res.end('ok')
    }
  })
  const qp = await startQueueProxy(knativeEnv(app.port, extra))
  t.teardown(async () => { await qp.stop(); await close(app.server) })
  const scrape = async () => {
    const r = await request(`http://127.0.0.1:${qp.ports.userMetrics}/metrics`)
    return { ...r, samples: parseProm(r.body) }
  }
  return { qp, scrape }
}

t.test('SERVING_REQUEST_METRICS_BACKEND=prometheus (1.12)', async (t) => {
  const { qp, scrape } = await setup(t, { SERVING_REQUEST_METRICS_BACKEND: 'prometheus' })

  t.test('the user-metrics listener is up and serves Prometheus text on /metrics only', async (t) => {
    t.not(qp.ports.userMetrics, null)
    const r = await scrape()
    t.equal(r.status, 200)
    t.match(r.headers['content-type'], /^text\/plain; version=0\.0\.4/)
    t.match(r.body, /# TYPE revision_request_count counter/)
    t.match(r.body, /# TYPE revision_request_latencies histogram/)
    t.match(r.body, /# TYPE revision_app_request_count counter/)
    t.match(r.body, /# TYPE revision_app_request_latencies histogram/)
    t.match(r.body, /# TYPE revision_queue_depth gauge/)
    t.equal((await request(`http://127.0.0.1:${qp.ports.userMetrics}/other`)).status, 404)
  })

  t.test('revision_request_count carries the resource, pod, container, code and route_tag labels', async (t) => {
    await request(`${qp.url}/`)
    const [s] = find((await scrape()).samples, 'revision_request_count', { route_tag: 'DISABLED', response_code: '200' })
    t.ok(s, 'sample present')
    t.same(s!.labels, { ...RESOURCE, response_code: '200', response_code_class: '2xx', route_tag: 'DISABLED' })
    t.equal(s!.value, 1)
  })

  t.test('response_code and response_code_class follow the app status', async (t) => {
    await request(`${qp.url}/missing`)
    await request(`${qp.url}/missing`)
    const samples = (await scrape()).samples
    t.equal(find(samples, 'revision_request_count', { response_code: '404', response_code_class: '4xx' })[0]?.value, 2)
    t.equal(find(samples, 'revision_app_request_count', { response_code: '404', response_code_class: '4xx' })[0]?.value, 2)
  })

  t.test('route_tag: DEFAULT, UNDEFINED, the tag itself', async (t) => {
    const cases: [Record<string, string>, string][] = [
      [{ 'Knative-Serving-Default-Route': 'true' }, 'DEFAULT'],
      [{ 'Knative-Serving-Default-Route': 'false' }, 'DEFAULT'],
      [{ 'Knative-Serving-Tag': 'blue', 'Knative-Serving-Default-Route': 'true' }, 'UNDEFINED'],
      [{ 'Knative-Serving-Tag': 'green' }, 'green'],
      [{ 'Knative-Serving-Tag': 'green', 'Knative-Serving-Default-Route': 'false' }, 'green'],
    ]
    for (const [headers] of cases) await request(`${qp.url}/`, { headers })
    const samples = (await scrape()).samples
    t.equal(find(samples, 'revision_request_count', { route_tag: 'DEFAULT' })[0]?.value, 2)
    t.equal(find(samples, 'revision_request_count', { route_tag: 'UNDEFINED' })[0]?.value, 1)
    t.equal(find(samples, 'revision_request_count', { route_tag: 'green' })[0]?.value, 2)
  })

  t.test('revision_request_latencies: ms buckets 5…100000, a 120 ms request lands in its bucket', async (t) => {
    await request(`${qp.url}/slow`, { headers: { 'Knative-Serving-Tag': 'slowtag' } })
    const buckets = find((await scrape()).samples, 'revision_request_latencies_bucket', { route_tag: 'slowtag' })
    t.same(buckets.map((b) => b.labels.le), ['5', '10', '20', '40', '60', '80', '100', '150', '200', '250', '300', '350', '400', '450', '500', '600', '700', '800', '900', '1000', '2000', '5000', '10000', '20000', '50000', '100000', '+Inf'])
    const le = (v: string) => buckets.find((b) => b.labels.le === v)!.value
    const [sum] = find((await scrape()).samples, 'revision_request_latencies_sum', { route_tag: 'slowtag' })
    t.ok(sum!.value >= 115 && sum!.value < 1000, `sum ${sum!.value} ms (milliseconds, not seconds)`)
    t.equal(le('100'), 0)
    t.equal(le('+Inf'), 1)
    // Cumulative buckets: 0 below the observed latency, 1 from its bucket on (le=150 unless the machine is slow).
    for (const b of buckets) t.equal(b.value, b.labels.le === '+Inf' || sum!.value <= Number(b.labels.le) ? 1 : 0, `le=${b.labels.le}`)
  })

  t.test('revision_app_request_count / _latencies: same labels without route_tag', async (t) => {
    const samples = (await scrape()).samples
    const [c] = find(samples, 'revision_app_request_count', { response_code: '200' })
    t.same(c!.labels, { ...RESOURCE, response_code: '200', response_code_class: '2xx' })
    t.ok(c!.value >= 7, `app count ${c!.value}`)
    t.ok(find(samples, 'revision_app_request_latencies_bucket', { response_code: '200', le: '+Inf' })[0]!.value >= 7)
  })

  t.test('probes are not recorded, including a proxied K-Network-Probe: queue without a health-check UA', async (t) => {
    const total = (s: { samples: Sample[] }, name: string) => find(s.samples, name).reduce((a, x) => a + x.value, 0)
    const before = await scrape()
    const probes = [
      { 'User-Agent': 'kube-probe/1.30', 'K-Network-Probe': 'queue' },
      { 'User-Agent': 'Knative-Activator-Probe', 'K-Network-Probe': 'queue' },
      { 'K-Network-Probe': 'probe', 'K-Network-Hash': 'h' },
      { 'K-Network-Probe': 'queue' }, // proxied to the app, still a probe
    ]
    for (const headers of probes) await request(`${qp.url}/`, { headers })
    const after = await scrape()
    t.equal(total(after, 'revision_request_count'), total(before, 'revision_request_count'))
    t.equal(total(after, 'revision_app_request_count'), total(before, 'revision_app_request_count'))
    await request(`${qp.url}/`)
    t.equal(total(await scrape(), 'revision_request_count'), total(before, 'revision_request_count') + 1, 'a normal request is')
  })

  t.test('cc=0: revision_queue_depth has no samples', async (t) => {
    t.equal(find((await scrape()).samples, 'revision_queue_depth').length, 0)
  })
})

t.test('revision_queue_depth with containerConcurrency ≥ 1: breaker load at the start of each app request', async (t) => {
  const { qp, scrape } = await setup(t, { SERVING_REQUEST_METRICS_BACKEND: 'prometheus', CONTAINER_CONCURRENCY: '1' })
  await request(`${qp.url}/`)
  const [d] = find((await scrape()).samples, 'revision_queue_depth')
  t.same(d!.labels, RESOURCE)
  t.equal(d!.value, 1, 'one request executing')
  // cc=1: slow A executing, slow B and C queued. When A ends, B starts while C still waits: depth 2.
  const a = request(`${qp.url}/slow`)
  await sleep(20)
  const b = request(`${qp.url}/slow`)
  await sleep(20)
  const c = request(`${qp.url}/slow`)
  await sleep(160) // A done at ~120 ms, B running until ~240 ms
  t.equal(find((await scrape()).samples, 'revision_queue_depth')[0]!.value, 2, 'B started with C waiting: depth 2 while B runs')
  await b
  await sleep(20) // C running alone
  t.equal(find((await scrape()).samples, 'revision_queue_depth')[0]!.value, 1, 'C started once B released its slot: depth 1')
  await Promise.all([a, c])
  t.equal(find((await scrape()).samples, 'revision_queue_depth')[0]!.value, 1, 'C started alone')
})

t.test('sluice_queue_proxy_breaker_rejections_total: 0 from the start, then one per 503 for a full queue', async (t) => {
  const { qp, scrape } = await setup(t, { SERVING_REQUEST_METRICS_BACKEND: 'prometheus', CONTAINER_CONCURRENCY: '1' })
  const before = find((await scrape()).samples, 'sluice_queue_proxy_breaker_rejections_total')
  t.same(before.map((s) => [s.labels, s.value]), [[RESOURCE, 0]], 'one series at 0 before any request')
  // cc=1 takes 1 running + 10 waiting: 15 slow requests at once leave at least 4 with 503.
  const replies = await Promise.all(Array.from({ length: 15 }, () => request(`${qp.url}/slow`)))
  const rejected = replies.filter((r) => r.status === 503).length
  t.ok(rejected >= 4, `${rejected} answered 503`)
  t.equal(rejected + replies.filter((r) => r.status === 200).length, 15, 'the others 200')
  t.equal(find((await scrape()).samples, 'sluice_queue_proxy_breaker_rejections_total')[0]!.value, rejected, 'counted once each')
  t.equal(find((await scrape()).samples, 'revision_request_count', { response_code: '503' })[0]!.value, rejected, 'and in revision_request_count')
})

t.test('cc=0: no breaker, no sluice_queue_proxy_breaker_rejections_total series', async (t) => {
  const { qp, scrape } = await setup(t, { SERVING_REQUEST_METRICS_BACKEND: 'prometheus' })
  await request(`${qp.url}/`)
  t.equal(find((await scrape()).samples, 'sluice_queue_proxy_breaker_rejections_total').length, 0)
})

t.test('sluice_queue_proxy_draining: 0, 1 while /wait-for-drain drains, 0 after the reset without SIGTERM', async (t) => {
  const { qp, scrape } = await setup(t, { SERVING_REQUEST_METRICS_BACKEND: 'prometheus', SLUICE_DRAIN_QUIET_PERIOD: '3s' })
  const draining = async () => find((await scrape()).samples, 'sluice_queue_proxy_draining')
  t.same((await draining()).map((s) => [s.labels, s.value]), [[RESOURCE, 0]], 'serving: 0')
  const preStop = request(`http://127.0.0.1:${qp.ports.admin}/wait-for-drain`).catch(() => undefined)
  t.ok(await waitUntil(async () => (await draining())[0]!.value === 1, 5000), 'PreStop: 1')
  // No SIGTERM follows within a second: the drain is reset (admin-server.ts) and the waiter released.
  t.ok(await waitUntil(async () => (await draining())[0]!.value === 0, 10_000), 'reset: 0 again')
  await preStop
})

t.test('service_name is "unknown" when SERVING_SERVICE is empty', async (t) => {
  const { qp, scrape } = await setup(t, { SERVING_REQUEST_METRICS_BACKEND: 'prometheus', SERVING_SERVICE: '' })
  await request(`${qp.url}/`)
  t.equal(find((await scrape()).samples, 'revision_request_count')[0]!.labels.service_name, 'unknown')
})

t.test('OBSERVABILITY_CONFIG {"requestMetrics":{"protocol":"prometheus"}} turns them on (HEAD)', async (t) => {
  const { qp, scrape } = await setup(t, { OBSERVABILITY_CONFIG: '{"tracing":{},"metrics":{},"runtime":{},"requestMetrics":{"protocol":"prometheus"}}' })
  t.not(qp.ports.userMetrics, null)
  await request(`${qp.url}/`)
  t.equal(find((await scrape()).samples, 'revision_request_count', { route_tag: 'DISABLED' })[0]?.value, 1)
})

t.test('off: no user-metrics listener', async (t) => {
  for (const extra of [
    {} as Record<string, string>,
    { SERVING_REQUEST_METRICS_BACKEND: '' },
    { SERVING_REQUEST_METRICS_BACKEND: 'none' },
    { OBSERVABILITY_CONFIG: '{"requestMetrics":{"protocol":"none"}}' },
    { OBSERVABILITY_CONFIG: '{}' },
    // With OBSERVABILITY_CONFIG present the 1.12 variable is not read.
    { OBSERVABILITY_CONFIG: '{}', SERVING_REQUEST_METRICS_BACKEND: 'prometheus' },
  ]) {
    const app = await startApp((_req, res) => res.end())
    const qp = await startQueueProxy(knativeEnv(app.port, extra))
    t.equal(qp.ports.userMetrics, null, JSON.stringify(extra))
    await qp.stop()
    await close(app.server)
  }
})
