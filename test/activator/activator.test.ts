// The activator in this process end to end, on loopback with a test
// autoscaler, real queue-proxies in front of test apps and a LocalSource:
// scale from zero (spec §3.6: poke, wait, probe, release), stat reporting
// (§2.11), throttling (§2.6), h2c (§2.9) and metrics (§2.12).
import t from 'tap'
import http2 from 'node:http2'
import type net from 'node:net'
import { once } from 'node:events'
import { close, request, startApp } from '../helpers/servers.ts'
import { HoldingApp, openRequest, waitFor } from '../helpers/request-path.ts'
import { startTestAutoscaler } from '../helpers/test-autoscaler.ts'
import { metricLabels, metricValue, POD_NAME, revisionInfo, scrapeMetrics, startActivator, startPod } from '../helpers/activator.ts'

t.jobs = 4

const route = (rev: string) => ({ 'Knative-Serving-Namespace': 'default', 'Knative-Serving-Revision': rev })

t.test('scale from zero: poke at once, requests wait, probe, release within a probe period, none lost', async (t) => {
  const autoscaler = await startTestAutoscaler()
  const act = await startActivator({ autoscalerUrl: autoscaler.url, revisions: [revisionInfo('cold-00001')] })
  const app = await HoldingApp.start()
  t.teardown(async () => {
    await app.stop()
    await act.stop()
    await autoscaler.stop()
  })
  const h = route('cold-00001')

  const sentAt = performance.now()
  const first = openRequest(`${act.url}/wait/0`, { headers: h })
  const poke = await autoscaler.waitForStat((s) => s.name === 'cold-00001', 1000)
  t.ok(poke.at - sentAt < 100, `poke received ${(poke.at - sentAt).toFixed(1)} ms after the request`)
  t.equal(poke.namespace, 'default')
  t.same(poke.stat, {
    podName: POD_NAME, averageConcurrentRequests: 1, averageProxiedConcurrentRequests: 0,
    requestCount: 1, proxiedRequestCount: 0, processUptime: 0, timestamp: 0,
  }, 'the (1, 1) poke, pod_name = POD_NAME')
  t.equal(autoscaler.frames[poke.frame]!.messages.length, 1, 'one message in its own binary frame')
  t.equal(autoscaler.textFrames.length, 0, 'nothing sent as text')
  t.equal(autoscaler.decodeErrors, 0, 'every frame decodes as WireStatMessages')

  // A burst during the cold start: all wait.
  const burst = Array.from({ length: 20 }, (_, i) => openRequest(`${act.url}/wait/${i % 3}`, { headers: h }))
  const rt = act.activator.ctx.throttler.get('default/cold-00001')!
  t.ok(await waitFor(() => rt.queue.length === 21), 'the first request and the burst wait')
  t.equal(app.paths.length, 0)

  // The pod comes up: Kubernetes lists it not-ready; the activator's probe finds it serving.
  const pod = await startPod(app.port)
  t.teardown(() => pod.stop())
  const readyAt = performance.now()
  act.source.setEndpoints('default', 'cold-00001', { ready: [], notReady: [pod.dest] })
  const r = await first.done
  const releasedAfter = performance.now() - readyAt
  if (r instanceof Error) throw r
  t.equal(r.status, 200)
  // One 200 ms probe period when the machine is quiet; the bound leaves room for a busy CI
  // machine while still far below what the next endpoints update would take.
  t.ok(releasedAfter < 1500, `released ${releasedAfter.toFixed(1)} ms after the pod appeared (a 200 ms probe period, plus scheduling)`)
  const probe = pod.seen.find((s) => s.url === '/healthz')
  t.ok(probe, 'the queue-proxy was probed')
  t.equal(probe?.method, 'GET')
  t.equal(probe?.headers['k-network-probe'], 'queue')
  t.equal(probe?.headers['user-agent'], 'Knative-Activator-Probe')
  const timing = /^activator-wait;dur=(\d+\.\d)$/.exec(String(r.headers['server-timing']))
  t.ok(timing, `Server-Timing: ${r.headers['server-timing']}`)
  t.ok(Number(timing?.[1]) >= readyAt - sentAt - 5, 'the wait covers the cold start')

  const results = await Promise.all(burst.map((b) => b.done))
  t.same(results.map((x) => (x instanceof Error ? x.message : x.status)), Array(20).fill(200), 'all 20 burst requests succeed')
  t.equal(app.paths.length, 21, 'each reached the app exactly once')
  t.equal(rt.queue.length, 0)

  // Periodic reports: hold 3 requests across a whole reporting window.
  const held = [0, 1, 2].map(() => openRequest(`${act.url}/hold`, { headers: h }))
  t.ok(await waitFor(() => app.heldCount === 3))
  const framesNow = autoscaler.frames.length
  const frames = await autoscaler.waitForFrames(framesNow + 2, 3000)
  const [a, b] = [frames[framesNow]!, frames[framesNow + 1]!]
  t.ok(Math.abs(b.at - a.at - 1000) < 150, `reports every second (${(b.at - a.at).toFixed(0)} ms apart)`)
  const full = b.messages.find((m) => m.name === 'cold-00001')!
  t.equal(full.stat?.podName, POD_NAME)
  t.ok(Math.abs(full.stat!.averageConcurrentRequests - 3) < 1e-9, `three requests held for the whole window (${full.stat?.averageConcurrentRequests})`)
  t.equal(full.stat?.requestCount, 0, 'no arrivals in that window')
  app.releaseAll()
  for (const x of await Promise.all(held.map((q) => q.done))) t.equal(x instanceof Error ? x.message : x.status, 200)
  // An idle window reports 0 and the revision is forgotten, so its next request pokes again.
  await autoscaler.waitFor(() => autoscaler.messages.some((m) => m.frame > framesNow + 1 && m.name === 'cold-00001' && m.stat.averageConcurrentRequests === 0), 3000, 'an idle report')
  t.equal(act.activator.ctx.reporter.size, 0, 'idle revision forgotten')
})

t.test('cc=1 with 2 pods: never more than one request per pod, 10 concurrent clients all served', async (t) => {
  const apps = [await HoldingApp.start(), await HoldingApp.start()]
  const pods = [await startPod(apps[0]!.port, { containerConcurrency: 1 }), await startPod(apps[1]!.port, { containerConcurrency: 1 })]
  const act = await startActivator({ revisions: [revisionInfo('one-00001', { containerConcurrency: 1 })] })
  act.source.setEndpoints('default', 'one-00001', { ready: pods.map((p) => p.dest), notReady: [] })
  t.teardown(async () => {
    await act.stop()
    for (const p of pods) await p.stop()
    for (const a of apps) await a.stop()
  })
  const rt = act.activator.ctx.throttler.get('default/one-00001')!
  t.ok(await waitFor(() => rt.healthyDests.length === 2))
  const statuses: number[] = []
  await Promise.all(Array.from({ length: 10 }, async (_, c) => {
    for (let i = 0; i < 3; i++) statuses.push((await request(`${act.url}/wait/20?c=${c}`, { headers: route('one-00001') })).status)
  }))
  t.same(statuses, Array(30).fill(200), 'all 30 requests succeed')
  t.equal(apps[0]!.max, 1, 'pod A never ran two at once')
  t.equal(apps[1]!.max, 1, 'pod B never ran two at once')
  t.equal(apps[0]!.paths.length + apps[1]!.paths.length, 30)
  t.ok(apps[0]!.paths.length > 0 && apps[1]!.paths.length > 0, 'both pods used')
})

t.test('cc=0: the gate is open, every request goes straight to the pod', async (t) => {
  const app = await HoldingApp.start()
  const pod = await startPod(app.port)
  const act = await startActivator({ revisions: [revisionInfo('open-00001')] })
  act.source.setEndpoints('default', 'open-00001', { ready: [pod.dest], notReady: [] })
  t.teardown(async () => {
    await app.stop()
    await act.stop()
    await pod.stop()
  })
  const rt = act.activator.ctx.throttler.get('default/open-00001')!
  t.ok(await waitFor(() => rt.healthyDests.length === 1))
  const reqs = Array.from({ length: 10 }, () => openRequest(`${act.url}/hold`, { headers: route('open-00001') }))
  t.ok(await waitFor(() => app.current === 10), 'ten requests run on one pod at once')
  t.equal(rt.queue.length, 0, 'none waits')
  app.releaseAll()
  for (const r of await Promise.all(reqs.map((q) => q.done))) t.equal(r instanceof Error ? r.message : r.status, 200)
})

t.test('cc=1: a pod that becomes ready later takes a waiting request at once', async (t) => {
  const apps = [await HoldingApp.start(), await HoldingApp.start()]
  const pods = [await startPod(apps[0]!.port, { containerConcurrency: 1 }), await startPod(apps[1]!.port, { containerConcurrency: 1 })]
  const act = await startActivator({ revisions: [revisionInfo('one-00001', { containerConcurrency: 1 })] })
  act.source.setEndpoints('default', 'one-00001', { ready: [pods[0]!.dest], notReady: [] })
  t.teardown(async () => {
    for (const a of apps) await a.stop()
    await act.stop()
    for (const p of pods) await p.stop()
  })
  const rt = act.activator.ctx.throttler.get('default/one-00001')!
  const reqs = [0, 1, 2].map(() => openRequest(`${act.url}/hold`, { headers: route('one-00001') }))
  t.ok(await waitFor(() => apps[0]!.heldCount === 1 && rt.queue.length === 2), 'one runs on pod A, two wait')
  const at = performance.now()
  act.source.setEndpoints('default', 'one-00001', { ready: [pods[0]!.dest], notReady: [pods[1]!.dest] })
  t.ok(await waitFor(() => apps[1]!.heldCount === 1, 1000), 'pod B took the head of the queue')
  t.ok(performance.now() - at < 250, `within ${(performance.now() - at).toFixed(0)} ms of appearing (probed at once, not at the next tick)`)
  t.equal(rt.queue.length, 1, 'one still waits: both pods are busy')
  apps[0]!.releaseAll()
  t.ok(await waitFor(() => apps[0]!.heldCount === 1), 'the last one takes the freed slot')
  apps[0]!.releaseAll()
  apps[1]!.releaseAll()
  for (const r of await Promise.all(reqs.map((q) => q.done))) t.equal(r instanceof Error ? r.message : r.status, 200)
})

t.test('h2c with prior knowledge: activator -> queue-proxy -> h2c app, streaming body and trailers', async (t) => {
  const versions: string[] = []
  const app = http2.createServer((req, res) => {
    versions.push(req.httpVersion)
    res.setHeader('content-type', 'application/grpc')
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      res.addTrailers({ 'grpc-status': '0', 'grpc-message': 'ok' })
      res.end(Buffer.concat(chunks))
    })
  })
  app.listen(0, '127.0.0.1')
  await once(app, 'listening')
  const pod = await startPod((app.address() as net.AddressInfo).port)
  const act = await startActivator({ revisions: [revisionInfo('grpc-00001', { protocol: 'h2c' })] })
  act.source.setEndpoints('default', 'grpc-00001', { ready: [pod.dest], notReady: [] })
  const c = http2.connect(act.h2cUrl)
  t.teardown(async () => {
    c.close()
    await act.stop()
    await pod.stop()
    app.close()
  })
  const result = await new Promise<{ headers: http2.IncomingHttpHeaders; trailers: http2.IncomingHttpHeaders; body: string }>((resolve, reject) => {
    const s = c.request({ ':path': '/pkg.Svc/Method', ':method': 'POST', 'content-type': 'application/grpc', te: 'trailers', ...route('grpc-00001') })
    let headers: http2.IncomingHttpHeaders = {}
    let body = ''
    s.on('response', (h) => { headers = h })
    s.on('data', (d: Buffer) => { body += d.toString() })
    s.on('trailers', (tr) => resolve({ headers, trailers: tr, body }))
    s.on('error', reject)
    s.write('part1-')
    setTimeout(() => s.end('part2'), 20)
  })
  t.equal(result.headers[':status'], 200)
  t.equal(result.body, 'part1-part2', 'the streamed body arrives whole')
  t.equal(result.trailers['grpc-status'], '0', 'trailers pass both hops')
  t.equal(result.trailers['grpc-message'], 'ok')
  t.match(String(result.headers['server-timing']), /activator-wait;dur=/)
  t.same(versions, ['2.0'], 'the app was reached over HTTP/2')
  const atQp = pod.seen.find((s) => s.url === '/pkg.Svc/Method')
  t.equal(atQp?.httpVersion, '2.0', 'the activator spoke h2c to the queue-proxy')
  t.equal(atQp?.headers['k-proxy-request'], 'activator')
})

t.test('metrics: Knative\'s request count/latency/concurrency labels, capacity wait, queue depth, autoscaler connection', async (t) => {
  const autoscaler = await startTestAutoscaler()
  const app = await startApp((req, res) => res.end(`app ${req.url}`))
  const pod = await startPod(app.port)
  const act = await startActivator({
    autoscalerUrl: autoscaler.url,
    revisions: [
      revisionInfo('hello-00001', { serviceName: 'hello', configurationName: 'hello-config' }),
      revisionInfo('bare-00001', { serviceName: '', configurationName: '', timeoutSeconds: 1 }),
      revisionInfo('wait-00001'),
    ],
  })
  t.teardown(async () => {
    await act.stop()
    await pod.stop()
    await close(app.server)
    await autoscaler.stop()
  })
  // Knative's resource labels plus pod/container (spec §2.12).
  const base = { namespace_name: 'default', service_name: 'hello', configuration_name: 'hello-config', revision_name: 'hello-00001', pod_name: POD_NAME, container_name: 'activator' }
  const ok = { ...base, response_code: '200', response_code_class: '2xx' }

  const cold = openRequest(`${act.url}/`, { headers: route('hello-00001') })
  await new Promise((r) => setTimeout(r, 150))
  const waiting = [0, 1].map(() => openRequest(`${act.url}/`, { headers: route('wait-00001') }))
  t.ok(await waitFor(() => act.activator.ctx.throttler.get('default/wait-00001')?.queue.length === 2))
  let text = await scrapeMetrics(act.metricsUrl)
  t.equal(metricValue(text, 'sluice_activator_queue_depth', { namespace_name: 'default', revision_name: 'wait-00001' }), 2, 'queue depth while requests wait')
  t.equal(metricValue(text, 'sluice_activator_autoscaler_connected'), 1)

  act.source.setEndpoints('default', 'hello-00001', { ready: [pod.dest], notReady: [] })
  t.equal((await cold.done as { status: number }).status, 200)
  for (let i = 0; i < 2; i++) t.equal((await request(`${act.url}/`, { headers: route('hello-00001') })).status, 200)
  t.equal((await request(`${act.url}/`, { headers: route('bare-00001') })).status, 504)

  text = await scrapeMetrics(act.metricsUrl)
  t.equal(metricValue(text, 'activator_request_count', ok), 3)
  t.equal(metricValue(text, 'activator_request_latencies_count', ok), 3)
  t.equal(metricValue(text, 'activator_request_latencies_bucket', { ...ok, le: '+Inf' }), 3)
  t.ok(metricLabels(text, 'activator_request_latencies_bucket').some((l) => l.le === '5000'), 'millisecond buckets as the queue-proxy\'s')
  t.equal(metricValue(text, 'activator_request_count', { revision_name: 'bare-00001', service_name: 'unknown', response_code: '504', response_code_class: '5xx' }), 1, 'empty service label -> "unknown"; 504s counted')
  t.equal(metricValue(text, 'sluice_activator_capacity_wait_seconds_count', base), 3, 'every proxied request observes its wait')
  t.ok((metricValue(text, 'sluice_activator_capacity_wait_seconds_sum', base) ?? 0) >= 0.14, 'the cold start shows in the wait')
  t.equal(metricValue(text, 'sluice_activator_capacity_wait_seconds_bucket', { ...base, le: '0.1' }), 2, 'the warm ones waited < 100 ms')

  // The concurrency gauge follows the reports sent to the autoscaler.
  await autoscaler.waitFor(() => autoscaler.messages.some((m) => m.name === 'hello-00001' && m.frame > 0), 2500, 'a periodic report')
  text = await scrapeMetrics(act.metricsUrl)
  const conc = metricValue(text, 'activator_request_concurrency', base)
  t.ok(conc !== undefined && conc >= 0, `activator_request_concurrency with Knative's labels (${conc})`)

  await autoscaler.stop()
  t.ok(await waitFor(() => !act.activator.sender.connected))
  t.equal(metricValue(await scrapeMetrics(act.metricsUrl), 'sluice_activator_autoscaler_connected'), 0, '0 while the autoscaler is gone')
  await autoscaler.start()
  t.ok(await waitFor(() => act.activator.sender.connected, 3000))
  t.equal(metricValue(await scrapeMetrics(act.metricsUrl), 'sluice_activator_autoscaler_connected'), 1, '1 again after reconnecting')

  for (const w of waiting) w.req.destroy()
  t.ok(await waitFor(() => act.activator.ctx.throttler.get('default/wait-00001')?.queue.length === 0))
  t.equal(metricValue(await scrapeMetrics(act.metricsUrl), 'sluice_activator_queue_depth', { revision_name: 'wait-00001' }), 0)
  const other = await fetch(act.metricsUrl.replace('/metrics', '/other'))
  t.equal(other.status, 404)
})
