// The admin server's /wait-for-drain (the user container's PreStop hook) and
// the Drainer state it drives (spec §1.17): quiet period, probes failing
// while draining, requests still served, reset without SIGTERM, and an
// in-process shutdown that lets in-flight work finish.
import t from 'tap'
import { close, knativeEnv, request, sleep, startApp, startQueueProxy } from '../helpers/servers.ts'

const KUBELET = { 'User-Agent': 'kube-probe/1.30', 'K-Network-Probe': 'queue' }
const QUIET_MS = 300

async function setup(t: { teardown(fn: () => Promise<void>): void }) {
  const { server, port } = await startApp((req, res) => {
    if (req.url === '/slow') setTimeout(() => res.end('slow done'), 600)
    else res.end(`app ${req.url}`)
  })
  const qp = await startQueueProxy(knativeEnv(port, { SLUICE_DRAIN_QUIET_PERIOD: `${QUIET_MS}ms` }))
  t.teardown(async () => { await qp.stop(); await close(server) })
  const admin = `http://127.0.0.1:${qp.ports.admin}`
  return { qp, admin }
}

/** Times a /wait-for-drain call. */
async function waitForDrain(admin: string) {
  const started = performance.now()
  const r = await request(`${admin}/wait-for-drain`)
  return { ...r, ms: performance.now() - started }
}

t.test('/wait-for-drain blocks for the quiet period, then 200 with an empty body', async (t) => {
  const { admin } = await setup(t)
  const r = await waitForDrain(admin)
  t.equal(r.status, 200)
  t.equal(r.body, '')
  t.ok(r.ms >= QUIET_MS - 20, `returned after ${r.ms.toFixed(0)} ms`)
  t.ok(r.ms < QUIET_MS + 400, `returned after ${r.ms.toFixed(0)} ms`)
})

t.test('while draining: probes → 503 "shutting down\\n", normal requests still proxied', async (t) => {
  const { qp, admin } = await setup(t)
  const drained = waitForDrain(admin)
  await sleep(30)
  for (const headers of [KUBELET, { 'User-Agent': 'Knative-Activator-Probe', 'K-Network-Probe': 'queue' }, { 'K-Network-Probe': 'probe', 'K-Network-Hash': 'h' }, { 'User-Agent': 'kube-probe/1.30' }]) {
    const r = await request(`${qp.url}/`, { headers })
    t.equal(r.status, 503, JSON.stringify(headers))
    t.equal(r.body, 'shutting down\n')
    t.equal(r.headers['content-type'], 'text/plain; charset=utf-8')
  }
  const r = await request(`${qp.url}/still-served`)
  t.equal(r.status, 200)
  t.equal(r.body, 'app /still-served')
  t.equal((await drained).status, 200)
})

t.test('each normal request restarts the quiet period', async (t) => {
  const { qp, admin } = await setup(t)
  const drained = waitForDrain(admin)
  // Three requests 150 ms apart push the end to ~450 + 300 ms.
  for (let i = 0; i < 3; i++) {
    await sleep(150)
    t.equal((await request(`${qp.url}/r${i}`)).status, 200)
  }
  const r = await drained
  t.equal(r.status, 200)
  t.ok(r.ms >= 700, `drain ended after ${r.ms.toFixed(0)} ms (a quiet period after the last request)`)
})

t.test('probes do not restart the quiet period', async (t) => {
  const { qp, admin } = await setup(t)
  const drained = waitForDrain(admin)
  for (let i = 0; i < 4; i++) {
    await sleep(80)
    await request(`${qp.url}/`, { headers: KUBELET })
  }
  const r = await drained
  t.ok(r.ms < QUIET_MS + 150, `drain ended after ${r.ms.toFixed(0)} ms`)
})

t.test('without SIGTERM the drain state resets after ~1 s: probes healthy again', async (t) => {
  const { qp, admin } = await setup(t)
  const started = performance.now()
  await waitForDrain(admin)
  const draining = await request(`${qp.url}/`, { headers: KUBELET })
  t.equal(draining.status, 503, 'still draining after the quiet period')
  await sleep(1000 - (performance.now() - started) + 100)
  const healthy = await request(`${qp.url}/`, { headers: KUBELET })
  t.equal(healthy.status, 200)
  t.equal(healthy.body, 'queue')
})

t.test('a second /wait-for-drain after the quiet period has passed returns at once', async (t) => {
  const { admin } = await setup(t)
  await waitForDrain(admin)
  const again = await waitForDrain(admin)
  t.equal(again.status, 200)
  t.ok(again.ms < 150, `second call returned after ${again.ms.toFixed(0)} ms`)
})

t.test('concurrent /wait-for-drain calls (several user containers) all return together', async (t) => {
  const { admin } = await setup(t)
  const done = (r: { status: number }) => ({ status: r.status, at: performance.now() })
  const a = waitForDrain(admin).then(done)
  await sleep(150)
  const b = waitForDrain(admin).then(done)
  const [ra, rb] = await Promise.all([a, b])
  t.equal(ra.status, 200)
  t.equal(rb.status, 200)
  t.ok(Math.abs(rb.at - ra.at) < 75, `the later call joined the running drain (ended ${(rb.at - ra.at).toFixed(0)} ms after the first)`)
})

t.test('admin port: any other path → 404', async (t) => {
  const { admin } = await setup(t)
  for (const path of ['/', '/metrics', '/wait-for-drain/x', '/healthz']) {
    const r = await request(`${admin}${path}`)
    t.equal(r.status, 404, path)
    t.equal(r.body, '404 page not found\n')
  }
})

t.test('the query string does not matter on /wait-for-drain', async (t) => {
  const { admin } = await setup(t)
  const started = performance.now()
  const r = await request(`${admin}/wait-for-drain?x=1`)
  t.equal(r.status, 200)
  t.ok(performance.now() - started >= QUIET_MS - 20)
})

t.test('shutdown after a completed PreStop drain does not hang', async (t) => {
  const { qp, admin } = await setup(t)
  await waitForDrain(admin)
  const started = performance.now()
  await Promise.race([qp.stop(), sleep(2000).then(() => { throw new Error('shutdown hung') })])
  t.ok(performance.now() - started < 500, 'shutdown joined the finished drain')
})

t.test('in-process shutdown: probes fail at once, in-flight requests finish, then the listener is closed', async (t) => {
  const { qp } = await setup(t)
  const slow = request(`${qp.url}/slow`)
  await sleep(50)
  const shutdown = qp.stop()
  const probe = await request(`${qp.url}/`, { headers: KUBELET })
  t.equal(probe.status, 503)
  t.equal(probe.body, 'shutting down\n')
  const r = await slow
  t.equal(r.status, 200)
  t.equal(r.body, 'slow done')
  await shutdown
  await t.rejects(request(`${qp.url}/`), { code: 'ECONNREFUSED' })
})
