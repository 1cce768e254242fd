// containerConcurrency enforcement and in-flight accounting on the request
// path (spec §1.8): the breaker admits cc at a time, queues 10 x cc, rejects
// the rest at once, and every request is accounted out when it ends.
import t from 'tap'
import { knativeEnv, request, startQueueProxy } from '../helpers/servers.ts'
import { accounting, HoldingApp, openRequest, settled, waitFor } from '../helpers/request-path.ts'

async function setup(t: { teardown(fn: () => Promise<void>): void }, cc: number) {
  const app = await HoldingApp.start()
  const qp = await startQueueProxy(knativeEnv(app.port, { CONTAINER_CONCURRENCY: String(cc) }))
  t.teardown(async () => { await qp.stop(); await app.stop() })
  return { app, qp }
}

t.test('cc=1: requests reach the app one at a time, and all complete', async (t) => {
  const { app, qp } = await setup(t, 1)
  const rs = await Promise.all(Array.from({ length: 6 }, (_, i) => request(`${qp.url}/wait/30?n=${i}`)))
  t.same(rs.map((r) => r.status), [200, 200, 200, 200, 200, 200])
  t.equal(app.paths.length, 6, 'every request reached the app')
  t.equal(app.max, 1, 'never more than one at the app at once')
  t.ok(await settled(qp), 'nothing left in flight')
})

t.test('cc=1: 1 running + 10 queued are admitted; the 12th gets 503 "pending request queue full" at once', async (t) => {
  const { app, qp } = await setup(t, 1)
  const admitted = Array.from({ length: 11 }, (_, i) => openRequest(`${qp.url}/hold/${i}`))
  t.ok(await waitFor(() => accounting(qp).stats === 11 && app.current === 1), '11 in flight, 1 at the app')
  t.same(accounting(qp), { active: 11, stats: 11, running: 1, waiting: 10 })

  const start = Date.now()
  const rejected = await request(`${qp.url}/twelfth`)
  t.ok(Date.now() - start < 500, `rejected without waiting (${Date.now() - start} ms)`)
  t.equal(rejected.status, 503)
  t.equal(rejected.body, 'pending request queue full\n')
  t.equal(rejected.headers['content-type'], 'text/plain; charset=utf-8', "Go's http.Error content type")
  t.equal(rejected.headers['x-content-type-options'], 'nosniff', "Go's http.Error nosniff")
  t.notOk(app.paths.includes('/twelfth'), 'the rejected request never reached the app')

  // Queued requests proceed one by one as the slot frees.
  for (let released = 1; released <= 11; released++) {
    t.equal(app.heldCount, 1, `exactly one request at the app before release ${released}`)
    app.releaseOne()
    if (released < 11) t.ok(await waitFor(() => app.heldCount === 1), `next queued request admitted after release ${released}`)
  }
  const results = await Promise.all(admitted.map((r) => r.done))
  t.same(results.map((r) => (r instanceof Error ? r.message : r.status)), Array(11).fill(200))
  t.equal(app.max, 1)
  t.equal(app.paths.length, 11)
  t.ok(await settled(qp), 'nothing left in flight')
})

t.test('cc=0: no breaker, 50 concurrent requests are all at the app at once', async (t) => {
  const { app, qp } = await setup(t, 0)
  const reqs = Array.from({ length: 50 }, (_, i) => openRequest(`${qp.url}/hold/${i}`))
  t.ok(await waitFor(() => app.current === 50, 3000), `all 50 at the app (saw ${app.current})`)
  t.equal(accounting(qp).stats, 50, 'all 50 counted in flight')
  app.releaseAll()
  const results = await Promise.all(reqs.map((r) => r.done))
  t.ok(results.every((r) => !(r instanceof Error) && r.status === 200), 'all 200')
  t.ok(await settled(qp), 'nothing left in flight')
})

t.test('cc=1: a queued request whose client disconnects frees its queue slot and never reaches the app', async (t) => {
  const { app, qp } = await setup(t, 1)
  const running = openRequest(`${qp.url}/running`)
  t.ok(await waitFor(() => app.current === 1))
  const queued = Array.from({ length: 9 }, (_, i) => openRequest(`${qp.url}/queued/${i}`))
  const leaver = openRequest(`${qp.url}/leaver`)
  t.ok(await waitFor(() => accounting(qp).waiting === 10), 'queue full: 10 waiting')
  t.equal((await request(`${qp.url}/rejected`)).status, 503, 'queue is full before the disconnect')

  leaver.req.destroy()
  t.ok(await waitFor(() => accounting(qp).waiting === 9 && accounting(qp).stats === 10), 'the leaver is accounted out')
  const late = openRequest(`${qp.url}/late`)
  t.ok(await waitFor(() => accounting(qp).waiting === 10), 'a later request is admitted into the freed slot')

  app.releaseAll()
  // Keep releasing as queued requests arrive, until all have been answered.
  const all = Promise.all([running, ...queued, late].map((r) => r.done))
  const pump = setInterval(() => app.releaseAll(), 5)
  const results = await all
  clearInterval(pump)
  t.ok(results.every((r) => !(r instanceof Error) && r.status === 200), 'everyone else got 200')
  t.ok(await leaver.done instanceof Error, 'the leaver saw its own abort')
  t.notOk(app.paths.includes('/leaver'), 'the disconnected request never reached the app')
  t.ok(app.paths.includes('/late'), 'the late request was served')
  t.equal(app.max, 1)
  t.ok(await settled(qp), 'nothing left in flight')
})

t.test('cc=1: a client that disconnects while its request runs frees the slot for the next one', async (t) => {
  const { app, qp } = await setup(t, 1)
  const first = openRequest(`${qp.url}/first`)
  t.ok(await waitFor(() => app.current === 1))
  const second = openRequest(`${qp.url}/wait/1`)
  t.ok(await waitFor(() => accounting(qp).waiting === 1))
  first.req.destroy()
  const r = await second.done
  t.equal(r instanceof Error ? r.message : r.status, 200, 'the queued request ran')
  t.ok(await waitFor(() => app.abandoned.includes('/first')), 'the app saw the abandoned request closed')
  t.ok(await settled(qp), 'nothing left in flight')
})

t.test('cc=3: mixed load runs at most 3 at a time, and reaches 3', async (t) => {
  const { app, qp } = await setup(t, 3)
  const delays = [40, 10, 25, 60, 5, 30, 15, 45, 20, 35, 50, 10, 25, 5, 40, 30, 15, 20, 55, 10]
  const rs = await Promise.all(delays.map((ms, i) => request(`${qp.url}/wait/${ms}?i=${i}`)))
  t.ok(rs.every((r) => r.status === 200), 'all 200 (20 requests fit in 3 running + 30 queued)')
  t.equal(app.paths.length, delays.length)
  t.equal(app.max, 3, 'at most (and at some point exactly) 3 at the app')
  t.ok(await settled(qp), 'nothing left in flight')
})

t.test('cc=1: queue-full rejections are accounted out too', async (t) => {
  const { app, qp } = await setup(t, 1)
  const admitted = Array.from({ length: 11 }, (_, i) => openRequest(`${qp.url}/hold/${i}`))
  t.ok(await waitFor(() => accounting(qp).stats === 11))
  const rejected = await Promise.all(Array.from({ length: 5 }, () => request(`${qp.url}/over`)))
  t.same(rejected.map((r) => r.status), [503, 503, 503, 503, 503])
  t.equal(accounting(qp).stats, 11, 'rejected requests leave no count behind')
  const pump = setInterval(() => app.releaseAll(), 5)
  await Promise.all(admitted.map((r) => r.done))
  clearInterval(pump)
  t.ok(await settled(qp), 'nothing left in flight')
})
