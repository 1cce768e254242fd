// A spike into a revision that is scaling up: its wait estimate, computed from
// the one pod serving when the spike arrives, says the last requests in line
// cannot make their 10 s timeout; the three pods that become ready within a
// second serve them all in ~4 s. By default nothing is shed on that guess:
// every request is answered 200 (SLUICE_SHED_ON_DEADLINE_ESTIMATE=true brings
// the early shedding back; handler/activation-exchange.test.ts).
import t from 'tap'
import { request, sleep, type RawResponse } from '../../helpers/servers.ts'
import { waitFor } from '../../helpers/request-path.ts'
import { metricLabels, metricValue, revisionInfo, scrapeMetrics, startActivator } from '../../helpers/activator.ts'
import { startFakePod, type FakePod } from './fake-pod.ts'

const REV = 'spike-00001'
const SERVICE_MS = 300
const SPIKE = 40
const h = { 'Knative-Serving-Namespace': 'default', 'Knative-Serving-Revision': REV }

t.test(`${SPIKE} requests (cc=1, ${SERVICE_MS} ms each, 10 s timeout) while the revision goes from 1 to 4 pods: all 200, none shed`, async (t) => {
  const pods: FakePod[] = []
  for (let i = 0; i < 4; i++) pods.push(await startFakePod((_req, res) => setTimeout(() => res.end('ok'), SERVICE_MS)))
  const act = await startActivator({ revisions: [revisionInfo(REV, { containerConcurrency: 1, timeoutSeconds: 10 })] })
  t.teardown(async () => {
    await act.stop()
    for (const p of pods) await p.close()
  })
  const rt = act.activator.ctx.throttler.get(`default/${REV}`)!
  const dests = pods.map((p) => p.dest)
  act.source.setEndpoints('default', REV, { ready: dests.slice(0, 1), notReady: [] })
  t.ok(await waitFor(() => rt.capacity === 1), 'one pod serving')
  // Five requests give the queue its service-time estimate (~300 ms, one slot).
  for (let i = 0; i < 5; i++) t.equal((await request(`${act.url}/warm`, { headers: h })).status, 200)
  t.ok(rt.queue.meanServiceMs >= SERVICE_MS, `estimate learnt: ${rt.queue.meanServiceMs.toFixed(0)} ms`)
  const estimate = rt.queue.estimateWaitMs(SPIKE - 1)
  t.ok(estimate > 10_000, `the last in line is estimated to wait ${estimate.toFixed(0)} ms, past its timeout`)

  const started = performance.now()
  const spike = Array.from({ length: SPIKE }, (_, i) => request(`${act.url}/spike/${i}`, { headers: h }))
  // The scale-up, as the autoscaler and Kubernetes would deliver it: one more pod every 300 ms.
  for (let n = 2; n <= 4; n++) {
    await sleep(300)
    act.source.setEndpoints('default', REV, { ready: dests.slice(0, n), notReady: [] })
  }
  const results: RawResponse[] = await Promise.all(spike)
  const took = performance.now() - started
  const statuses = new Map<number, number>()
  for (const r of results) statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1)
  t.same([...statuses], [[200, SPIKE]], `every request served (${(took / 1000).toFixed(1)} s for all)`)
  t.ok(took < 10_000, 'within the timeout')
  t.ok(pods.every((p) => p.seen.length > 0), 'the new pods took part')
  const text = await scrapeMetrics(act.metricsUrl)
  // The shed counters exist from the revision's first scrape, at 0.
  const shed = metricLabels(text, 'sluice_activator_requests_shed_total')
  t.same(shed.filter((l) => metricValue(text, 'sluice_activator_requests_shed_total', l) !== 0), [], `nothing shed (${shed.length} counters at 0)`)
})
