// The activator's metrics for dashboards and alerts (deploy/monitoring/):
// its buffering bounds, per-revision series that start at 0 once the revision
// is known (so rate() and increase() count the first event), and cold starts:
// capacity arriving while requests wait at none.
import t from 'tap'
import { close, request, startApp } from '../helpers/servers.ts'
import { waitFor } from '../helpers/request-path.ts'
import { metricValue, revisionInfo, scrapeMetrics, startActivator, startPod, type RunningActivator } from '../helpers/activator.ts'

const route = { 'Knative-Serving-Namespace': 'default', 'Knative-Serving-Revision': 'cold-00001' }

function queueLength(act: RunningActivator): number {
  return act.activator.ctx.throttler.get('default/cold-00001')?.queue.length ?? 0
}

t.test('the bounds, per revision and in total, from SLUICE_MAX_QUEUED* and SLUICE_MAX_BUFFERED_BYTES*', async (t) => {
  const act = await startActivator({
    env: { SLUICE_MAX_QUEUED_PER_REVISION: '3', SLUICE_MAX_QUEUED: '7', SLUICE_MAX_BUFFERED_BYTES_PER_REVISION: '1000', SLUICE_MAX_BUFFERED_BYTES: '5000' },
  })
  t.teardown(() => act.stop())
  const text = await scrapeMetrics(act.metricsUrl)
  t.equal(metricValue(text, 'sluice_activator_queue_limit', { scope: 'revision' }), 3)
  t.equal(metricValue(text, 'sluice_activator_queue_limit', { scope: 'total' }), 7)
  t.equal(metricValue(text, 'sluice_activator_buffered_bytes_limit', { scope: 'revision' }), 1000)
  t.equal(metricValue(text, 'sluice_activator_buffered_bytes_limit', { scope: 'total' }), 5000)
})

t.test('a known revision has its cold-start, shed and wait series at 0 before any request', async (t) => {
  const act = await startActivator({ revisions: [revisionInfo('cold-00001')] })
  t.teardown(() => act.stop())
  const text = await scrapeMetrics(act.metricsUrl)
  const rev = { namespace_name: 'default', revision_name: 'cold-00001' }
  t.equal(metricValue(text, 'sluice_activator_cold_starts_total', rev), 0)
  t.equal(metricValue(text, 'sluice_activator_requests_shed_total', { ...rev, reason: 'full' }), 0)
  t.equal(metricValue(text, 'sluice_activator_requests_shed_total', { ...rev, reason: 'deadline' }), 0)
  t.equal(metricValue(text, 'sluice_activator_capacity_wait_seconds_count', rev), 0)
  t.equal(metricValue(text, 'sluice_activator_capacity_wait_seconds_bucket', { ...rev, le: '+Inf' }), 0)
  t.equal(metricValue(text, 'activator_request_count', rev), undefined, 'request counts still appear with their first response code')
})

t.test('sluice_activator_cold_starts_total counts capacity arriving for waiting requests, not capacity alone', async (t) => {
  const app = await startApp((req, res) => res.end(`app ${req.url}`))
  const pod = await startPod(app.port)
  const act = await startActivator({ revisions: [revisionInfo('cold-00001')] })
  t.teardown(async () => {
    await act.stop()
    await pod.stop()
    await close(app.server)
  })
  const coldStarts = async () => metricValue(await scrapeMetrics(act.metricsUrl), 'sluice_activator_cold_starts_total', { revision_name: 'cold-00001' })

  // Scale from zero: the request waits at no capacity, then the pod arrives.
  const waiting = request(`${act.url}/a`, { headers: route })
  t.ok(await waitFor(() => queueLength(act) === 1), 'the request waits')
  act.source.setEndpoints('default', 'cold-00001', { ready: [pod.dest], notReady: [] })
  t.equal((await waiting).status, 200)
  t.equal(await coldStarts(), 1, 'one cold start')
  t.equal((await request(`${act.url}/b`, { headers: route })).status, 200)
  t.equal(await coldStarts(), 1, 'a request served at once is none')

  // The pod goes and comes back with nothing waiting: no cold start.
  act.source.setEndpoints('default', 'cold-00001', { ready: [], notReady: [] })
  t.ok(await waitFor(() => act.activator.ctx.throttler.get('default/cold-00001')!.capacity === 0), 'no capacity')
  act.source.setEndpoints('default', 'cold-00001', { ready: [pod.dest], notReady: [] })
  t.ok(await waitFor(() => act.activator.ctx.throttler.get('default/cold-00001')!.capacity > 0), 'capacity again')
  t.equal(await coldStarts(), 1, 'capacity with nothing waiting is no cold start')

  // Lost and back while a request waits: a second one.
  act.source.setEndpoints('default', 'cold-00001', { ready: [], notReady: [] })
  t.ok(await waitFor(() => act.activator.ctx.throttler.get('default/cold-00001')!.capacity === 0), 'no capacity')
  const again = request(`${act.url}/c`, { headers: route })
  t.ok(await waitFor(() => queueLength(act) === 1), 'the request waits')
  act.source.setEndpoints('default', 'cold-00001', { ready: [pod.dest], notReady: [] })
  t.equal((await again).status, 200)
  t.equal(await coldStarts(), 2)
  const text = await scrapeMetrics(act.metricsUrl)
  t.equal(metricValue(text, 'sluice_activator_capacity_wait_seconds_count', { revision_name: 'cold-00001' }), 3, 'every proxied request observed its wait, the first included (a first scrape after it does not reset it)')
})
