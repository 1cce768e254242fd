// One request below revision identification (spec §2.6, §2.9, §2.10, §2.15):
// bounded by the revision's timeouts while it waits (504 "activator request
// timeout"), shed with 503 + Retry-After when the bounded queue is full or its
// deadline cannot be met (opt-in), freeing its queue slot when the client gives
// up; proxied with Server-Timing showing the wait; a pod whose connection fails
// is dropped at once and requests it never received are retried on another pod
// (test/activator/hardening/retry-safety.test.ts has the cases that are not).
import t from 'tap'
import http from 'node:http'
import { close, request, sleep, startApp, type RawResponse } from '../../helpers/servers.ts'
import { waitFor } from '../../helpers/request-path.ts'
import { metricValue, revisionInfo, scrapeMetrics, startActivator, startPod, type RunningActivator } from '../../helpers/activator.ts'

t.jobs = 4

function route(rev: string): Record<string, string> {
  return { 'Knative-Serving-Namespace': 'default', 'Knative-Serving-Revision': rev }
}

/** A request that can be aborted by the client before it is answered. */
function openRequest(url: string, headers: Record<string, string>) {
  const req = http.request(url, { agent: false, headers })
  const response = new Promise<RawResponse>((resolve, reject) => {
    req.on('response', (res) => {
      let body = ''
      res.setEncoding('utf8').on('data', (d: string) => { body += d })
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }))
    })
    req.on('error', reject)
  })
  response.catch(() => {})
  req.end()
  return { req, response }
}

function queueLength(act: RunningActivator, rev: string): number {
  return act.activator.ctx.throttler.get(`default/${rev}`)?.queue.length ?? 0
}

t.test('no endpoints: the revision timeout (1 s) answers 504 "activator request timeout" and frees the queue slot', async (t) => {
  const act = await startActivator({ revisions: [revisionInfo('cold-00001', { timeoutSeconds: 1 })] })
  t.teardown(() => act.stop())
  const started = performance.now()
  const r = await request(`${act.url}/`, { headers: route('cold-00001') })
  const took = performance.now() - started
  t.equal(r.status, 504)
  t.equal(r.body, 'activator request timeout', 'exact body, no newline')
  t.equal(r.headers['content-type'], 'text/plain; charset=utf-8')
  t.ok(took >= 990 && took < 1500, `answered after the timeout (${took.toFixed(0)} ms)`)
  t.equal(queueLength(act, 'cold-00001'), 0)
  t.equal(act.activator.ctx.active, 0, 'nothing left in flight')
})

t.test('responseStartTimeoutSeconds shorter than timeoutSeconds bounds the wait too', async (t) => {
  const act = await startActivator({ revisions: [revisionInfo('cold-00001', { timeoutSeconds: 300, responseStartTimeoutSeconds: 1 })] })
  t.teardown(() => act.stop())
  const started = performance.now()
  const r = await request(`${act.url}/`, { headers: route('cold-00001') })
  t.equal(r.status, 504)
  t.equal(r.body, 'activator request timeout')
  t.ok(performance.now() - started < 1500)
})

t.test('SLUICE_MAX_QUEUED_PER_REVISION=2: the 3rd waiting request is shed; client aborts free their slots', async (t) => {
  const app = await startApp((req, res) => res.end(`app ${req.url}`))
  const pod = await startPod(app.port)
  const act = await startActivator({ env: { SLUICE_MAX_QUEUED_PER_REVISION: '2' }, revisions: [revisionInfo('cold-00001')] })
  t.teardown(async () => {
    await act.stop()
    await pod.stop()
    await close(app.server)
  })
  const h = route('cold-00001')
  const first = [openRequest(`${act.url}/a`, h), openRequest(`${act.url}/b`, h)]
  t.ok(await waitFor(() => queueLength(act, 'cold-00001') === 2), 'two requests wait')

  const third = await request(`${act.url}/c`, { headers: h })
  t.equal(third.status, 503)
  t.equal(third.body, 'pending request queue full\n')
  t.equal(third.headers['retry-after'], '5', 'Retry-After: about a pod start when no estimate exists')
  t.equal(third.headers['content-type'], 'text/plain; charset=utf-8')

  for (const r of first) r.req.destroy()
  t.ok(await waitFor(() => queueLength(act, 'cold-00001') === 0), 'aborted waiters leave the queue at once')
  t.equal(act.activator.ctx.throttler.budget.queued, 0, 'and the activator-wide budget')

  const again = [openRequest(`${act.url}/d`, h), openRequest(`${act.url}/e`, h)]
  t.ok(await waitFor(() => queueLength(act, 'cold-00001') === 2), 'two new requests are admitted in their place')
  act.source.setEndpoints('default', 'cold-00001', { ready: [], notReady: [pod.dest] })
  const results = await Promise.all(again.map((r) => r.response))
  t.same(results.map((r) => [r.status, r.body]), [[200, 'app /d'], [200, 'app /e']])

  const text = await scrapeMetrics(act.metricsUrl)
  t.equal(metricValue(text, 'sluice_activator_requests_shed_total', { revision_name: 'cold-00001', reason: 'full' }), 1)
  t.equal(metricValue(text, 'sluice_activator_queue_depth', { revision_name: 'cold-00001' }), 0)
})

t.test('SLUICE_SHED_ON_DEADLINE_ESTIMATE=true: a request that cannot expect a slot before its deadline is shed at once: 503 "context deadline exceeded"', async (t) => {
  // The estimate can only come out longer than the app's 550 ms (never shorter), so the
  // outcome below holds however slow the machine: 1 x S fits in 1 s, 2 x S does not.
  const app = await startApp((req, res) => setTimeout(() => res.end(`app ${req.url}`), 550))
  const pod = await startPod(app.port, { containerConcurrency: 1 })
  const act = await startActivator({ env: { SLUICE_SHED_ON_DEADLINE_ESTIMATE: 'true' }, revisions: [revisionInfo('slow-00001', { containerConcurrency: 1, timeoutSeconds: 1 })] })
  act.source.setEndpoints('default', 'slow-00001', { ready: [pod.dest], notReady: [] })
  t.teardown(async () => {
    await act.stop()
    await pod.stop()
    await close(app.server)
  })
  const h = route('slow-00001')
  // Five requests, one after the other, teach the activator that one holds the single slot ~550 ms.
  for (let i = 0; i < 5; i++) t.equal((await request(`${act.url}/warm`, { headers: h })).status, 200, `warm-up ${i}`)
  const running = openRequest(`${act.url}/0`, h)
  t.ok(await waitFor(() => act.activator.ctx.throttler.get('default/slow-00001')!.inFlight === 1))
  // First in line: a slot expected after ~550 ms, within the 1 s timeout.
  const queued = openRequest(`${act.url}/1`, h)
  t.ok(await waitFor(() => queueLength(act, 'slow-00001') === 1), 'the first in line is admitted')
  // Second in line: ~1100 ms.
  const started = performance.now()
  const shed = await request(`${act.url}/2`, { headers: h })
  t.ok(performance.now() - started < 500, 'answered at once, not after the timeout')
  t.equal(shed.status, 503)
  t.equal(shed.body, 'context deadline exceeded\n')
  t.equal(shed.headers['retry-after'], '1', 'Retry-After: the backlog (1 x ~550 ms) drains within a second')
  t.equal((await running.response).status, 200, 'the running one is served')
  await queued.response
})

t.test('proxied responses carry Server-Timing activator-wait, after the app\'s own entries', async (t) => {
  const app = await startApp((_req, res) => {
    res.setHeader('Server-Timing', 'app;dur=5')
    res.end('ok')
  })
  const pod = await startPod(app.port)
  const act = await startActivator({ revisions: [revisionInfo('hello-00001')] })
  act.source.setEndpoints('default', 'hello-00001', { ready: [pod.dest], notReady: [] })
  t.teardown(async () => {
    await act.stop()
    await pod.stop()
    await close(app.server)
  })
  const r = await request(`${act.url}/`, { headers: route('hello-00001') })
  t.equal(r.status, 200)
  t.match(r.headers['server-timing'], /^app;dur=5, activator-wait;dur=\d+\.\d$/)
})

t.test('stale pods: a killed queue-proxy is dropped at once; GETs are retried on another pod, and so is a POST it never received', async (t) => {
  const appA = await startApp((_req, res) => res.end('A'))
  const appB = await startApp((_req, res) => res.end('B'))
  const podA = await startPod(appA.port)
  const podB = await startPod(appB.port)
  const appC = await startApp((_req, res) => res.end('C'))
  const podC = await startPod(appC.port, { revision: 'solo-00001' })
  const act = await startActivator({ revisions: [revisionInfo('two-00001'), revisionInfo('solo-00001')] })
  act.source.setEndpoints('default', 'two-00001', { ready: [podA.dest, podB.dest], notReady: [] })
  act.source.setEndpoints('default', 'solo-00001', { ready: [podC.dest], notReady: [] })
  const bodies2: string[] = []
  const appC2 = await startApp((req, res) => {
    let body = ''
    req.setEncoding('utf8').on('data', (d: string) => { body += d })
    req.on('end', () => {
      bodies2.push(body)
      res.end('C2')
    })
  })
  t.teardown(async () => {
    await act.stop()
    await podB.stop()
    for (const a of [appA, appB, appC, appC2]) await close(a.server)
  })
  const rt = act.activator.ctx.throttler.get('default/two-00001')!
  t.ok(await waitFor(() => rt.healthyDests.length === 2), 'both pods probed healthy')
  const seenBodies = new Set<string>()
  for (let i = 0; i < 20; i++) seenBodies.add((await request(`${act.url}/`, { headers: route('two-00001') })).body)
  t.same([...seenBodies].sort(), ['A', 'B'], 'traffic reaches both pods')

  await podA.kill()
  await sleep(50)
  const bodies: string[] = []
  for (let i = 0; i < 10; i++) {
    const r = await request(`${act.url}/`, { headers: route('two-00001') })
    t.equal(r.status, 200, `GET ${i} succeeds: ${r.body}`)
    bodies.push(r.body)
  }
  t.same(new Set(bodies), new Set(['B']), 'served by the live pod')
  t.same(rt.healthyDests, [podB.dest], 'the dead pod left the healthy set (passive removal)')

  t.equal((await request(`${act.url}/`, { headers: route('solo-00001') })).body, 'C', 'solo revision warm')
  await podC.kill()
  await sleep(50)
  // Refused: the pod got nothing, so the POST waits for another pod, body unread.
  const post = request(`${act.url}/upload`, { method: 'POST', headers: { ...route('solo-00001'), 'content-type': 'text/plain' }, body: 'payload' })
  const solo = act.activator.ctx.throttler.get('default/solo-00001')!
  t.ok(await waitFor(() => solo.queue.length === 1), 'the POST waits again')
  t.same(solo.healthyDests, [], 'and that pod is dropped too')
  const podC2 = await startPod(appC2.port, { revision: 'solo-00001' })
  t.teardown(() => podC2.stop())
  act.source.setEndpoints('default', 'solo-00001', { ready: [podC2.dest], notReady: [] })
  const r = await post
  t.equal(r.status, 200)
  t.equal(r.body, 'C2')
  t.same(bodies2, ['payload'], 'the new pod got the whole body, once')
})
