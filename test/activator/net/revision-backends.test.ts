import t, { type Test } from 'tap'
import http from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import { RevisionBackends, type RevisionBackendsOptions } from '@sluice/activator/net/revision-backends'
import { close, listen, waitFor } from '../../helpers/servers.ts'

type Mode = 'ok' | '503' | 'wrong-body' | 'long-body' | 'slow' | 'slow-ok'

interface Seen {
  method: string
  url: string
  headers: http.IncomingHttpHeaders
}

/** A queue-proxy stand-in answering the activator's probe according to `mode`. */
async function pod(mode: Mode) {
  const state = { mode, requests: [] as Seen[], connections: 0 }
  const server = http.createServer((req, res) => {
    state.requests.push({ method: req.method!, url: req.url!, headers: req.headers })
    switch (state.mode) {
      case 'ok': res.end('queue'); break
      case '503': res.writeHead(503).end(); break
      case 'wrong-body': res.end('queue\n'); break
      case 'long-body': res.end('queueueueue'); break
      case 'slow': setTimeout(() => res.end('queue'), 1000).unref(); break
      case 'slow-ok': setTimeout(() => res.end('queue'), 100).unref(); break
    }
  })
  server.on('connection', () => state.connections++)
  const port = await listen(server)
  return { state, server, dest: `127.0.0.1:${port}` }
}

/** Backends recording every published list with its time. */
function backends(t: Test, opts: Partial<RevisionBackendsOptions> = {}) {
  const published: { at: number; dests: readonly string[] }[] = []
  const b = new RevisionBackends({ ...opts, onHealthy: (dests) => published.push({ at: performance.now(), dests }) })
  t.teardown(() => b.close())
  return { b, published }
}


t.test('probe request: GET /healthz with K-Network-Probe: queue and User-Agent: Knative-Activator-Probe', async (t) => {
  const p = await pod('ok')
  t.teardown(() => close(p.server))
  const { b } = backends(t)
  b.update({ ready: [p.dest], notReady: [] })
  t.ok(await waitFor(() => b.healthy.length === 1))
  const r = p.state.requests[0]!
  t.equal(r.method, 'GET')
  t.equal(r.url, '/healthz')
  t.equal(r.headers['k-network-probe'], 'queue')
  t.equal(r.headers['user-agent'], 'Knative-Activator-Probe')
  t.equal(r.headers.host, p.dest, 'Host is the pod ip:port')
})

t.test('a ready pod answering 200 `queue` is published healthy after its first probe', async (t) => {
  const p = await pod('ok')
  t.teardown(() => close(p.server))
  const { b, published } = backends(t)
  const start = performance.now()
  b.update({ ready: [p.dest], notReady: [] })
  t.same(published, [], 'nothing published before the probe answers')
  t.ok(await waitFor(() => published.length === 1))
  t.same(published[0]!.dests, [p.dest])
  t.ok(published[0]!.at - start < 150, `probed at once, not after a tick (${(published[0]!.at - start).toFixed(1)} ms)`)
})

t.test('503, a body other than exactly `queue`, and a longer body are not healthy', async (t) => {
  const pods = await Promise.all([pod('503'), pod('wrong-body'), pod('long-body'), pod('ok')])
  t.teardown(() => Promise.all(pods.map((p) => close(p.server))))
  const { b } = backends(t, { probeFrequencyMs: 20 })
  b.update({ ready: pods.map((p) => p.dest), notReady: [] })
  t.ok(await waitFor(() => b.rounds >= 3), 'several rounds ran')
  t.same(b.healthy, [pods[3]!.dest])
  for (const p of pods.slice(0, 3)) t.ok(p.state.requests.length >= 3, `${p.state.mode} re-probed every round`)
  t.equal(pods[3]!.state.requests.length, 1, 'a healthy pod is not probed again')
})

t.test('a pod slower than the probe timeout is not healthy; the round ends at the timeout', async (t) => {
  const p = await pod('slow')
  t.teardown(() => close(p.server))
  const { b } = backends(t, { probeFrequencyMs: 20, probeTimeoutMs: 100 })
  const start = performance.now()
  b.update({ ready: [p.dest], notReady: [] })
  t.ok(await waitFor(() => b.rounds >= 2))
  const took = performance.now() - start
  t.ok(took >= 190 && took < 600, `two rounds of ~100 ms each (${took.toFixed(0)} ms)`)
  t.same(b.healthy, [])
})

t.test('a pod that becomes ready later is picked up within about one probe period (200 ms)', async (t) => {
  const p = await pod('503')
  t.teardown(() => close(p.server))
  const { b, published } = backends(t)
  b.update({ ready: [], notReady: [p.dest] })
  await sleep(330)
  t.same(published, [])
  const before = p.state.requests.length
  t.ok(before >= 2 && before <= 3, `probed every 200 ms while not healthy (${before} probes in 330 ms)`)
  const readyAt = performance.now()
  p.state.mode = 'ok'
  t.ok(await waitFor(() => published.length === 1))
  const lag = published[0]!.at - readyAt
  t.ok(lag <= 260, `healthy ${lag.toFixed(0)} ms after the pod turned ready`)
  t.same(b.healthy, [p.dest])
})

t.test('keep-alive: repeated probes of a pod reuse one connection', async (t) => {
  const p = await pod('503')
  t.teardown(() => close(p.server))
  const { b } = backends(t, { probeFrequencyMs: 10 })
  b.update({ ready: [p.dest], notReady: [] })
  t.ok(await waitFor(() => p.state.requests.length >= 5))
  t.equal(p.state.connections, 1)
})

t.test('probe optimisation: a probed not-ready pod is used', async (t) => {
  const p = await pod('ok')
  t.teardown(() => close(p.server))
  const { b } = backends(t)
  b.update({ ready: [], notReady: [p.dest] })
  t.ok(await waitFor(() => b.healthy.length === 1))
})

t.test('exec readiness probe (no optimisation): not-ready pods are neither used nor probed; ready ones are', async (t) => {
  const [nr, r] = await Promise.all([pod('ok'), pod('ok')])
  t.teardown(() => Promise.all([close(nr.server), close(r.server)]))
  const { b } = backends(t, { probeOptimisation: false, probeFrequencyMs: 10 })
  b.update({ ready: [r.dest], notReady: [nr.dest] })
  t.ok(await waitFor(() => b.healthy.length === 1))
  t.same(b.healthy, [r.dest])
  await sleep(50)
  t.equal(nr.state.requests.length, 0)
  t.notOk(b.probing, 'nothing left to probe')
  b.update({ ready: [r.dest, nr.dest], notReady: [] })
  t.ok(await waitFor(() => b.healthy.length === 2), 'used once Kubernetes marks it ready')
})

t.test('turning the optimisation on (revision lost its exec probe) probes not-ready pods at once', async (t) => {
  const p = await pod('ok')
  t.teardown(() => close(p.server))
  const { b } = backends(t, { probeOptimisation: false })
  b.update({ ready: [], notReady: [p.dest] })
  t.notOk(b.probing)
  b.probeOptimisation = true
  t.ok(await waitFor(() => b.healthy.length === 1))
})

t.test('ready -> not-ready: removed from the healthy set at once, inside the update', async (t) => {
  const p = await pod('ok')
  t.teardown(() => close(p.server))
  const { b, published } = backends(t, { probeOptimisation: false })
  b.update({ ready: [p.dest], notReady: [] })
  t.ok(await waitFor(() => b.healthy.length === 1))
  b.update({ ready: [], notReady: [p.dest] })
  t.same(b.healthy, [], 'synchronously')
  t.same(published.at(-1)!.dests, [])
  await sleep(250)
  t.same(b.healthy, [], 'stays out without the optimisation')
})

t.test('ready -> not-ready with the optimisation: removed at once, back after a passing re-probe', async (t) => {
  const p = await pod('ok')
  t.teardown(() => close(p.server))
  const { b, published } = backends(t)
  b.update({ ready: [p.dest], notReady: [] })
  t.ok(await waitFor(() => b.healthy.length === 1))
  const probes = p.state.requests.length
  b.update({ ready: [], notReady: [p.dest] })
  t.same(b.healthy, [])
  t.ok(await waitFor(() => b.healthy.length === 1))
  t.equal(p.state.requests.length, probes + 1, 're-probed once')
  t.same(published.map((x) => x.dests.length), [1, 0, 1])
})

t.test('pods gone from the endpoints are dropped at once', async (t) => {
  const [a, c] = await Promise.all([pod('ok'), pod('ok')])
  t.teardown(() => Promise.all([close(a.server), close(c.server)]))
  const { b, published } = backends(t)
  b.update({ ready: [a.dest, c.dest], notReady: [] })
  t.ok(await waitFor(() => b.healthy.length === 2))
  b.update({ ready: [c.dest], notReady: [] })
  t.same(b.healthy, [c.dest])
  b.update({ ready: [], notReady: [] })
  t.same(b.healthy, [])
  t.same(published.at(-1)!.dests, [])
  t.notOk(b.probing)
})

t.test('a probe that was in flight when its pod left the endpoints does not count', async (t) => {
  const p = await pod('slow-ok')
  t.teardown(() => close(p.server))
  const { b } = backends(t)
  b.update({ ready: [p.dest], notReady: [] })
  await sleep(20)
  b.update({ ready: [], notReady: [] })
  t.ok(await waitFor(() => b.rounds >= 1))
  t.same(b.healthy, [])
})

t.test('reportFailure: the pod leaves at once and is re-probed before reuse', async (t) => {
  const p = await pod('ok')
  t.teardown(() => close(p.server))
  const { b, published } = backends(t)
  b.update({ ready: [p.dest], notReady: [] })
  t.ok(await waitFor(() => b.healthy.length === 1))
  const probes = p.state.requests.length
  t.ok(b.reportFailure(p.dest))
  t.same(b.healthy, [], 'synchronously')
  t.same(published.at(-1)!.dests, [])
  t.notOk(b.reportFailure(p.dest), 'already out')
  t.notOk(b.reportFailure('10.9.9.9:8012'), 'unknown pod')
  t.ok(await waitFor(() => b.healthy.length === 1), 'a pod that still answers comes back')
  t.equal(p.state.requests.length, probes + 1)
})

t.test('reportFailure: a dead pod stays out while Kubernetes still lists it', async (t) => {
  const p = await pod('ok')
  const { b } = backends(t, { probeFrequencyMs: 20 })
  b.update({ ready: [p.dest], notReady: [] })
  t.ok(await waitFor(() => b.healthy.length === 1))
  await close(p.server)
  b.reportFailure(p.dest)
  const rounds = b.rounds
  t.ok(await waitFor(() => b.rounds >= rounds + 3))
  t.same(b.healthy, [])
  t.ok(b.probing, 'still probing it')
})

t.test('trustReadyPods (mesh mode disabled): ready pods are healthy unprobed; after a failure they need a probe', async (t) => {
  const p = await pod('503')
  t.teardown(() => close(p.server))
  const { b } = backends(t, { trustReadyPods: true, probeFrequencyMs: 20 })
  b.update({ ready: [p.dest], notReady: [] })
  t.same(b.healthy, [p.dest], 'synchronously, no probe')
  t.notOk(b.probing)
  b.reportFailure(p.dest)
  b.update({ ready: [p.dest], notReady: [] })
  t.same(b.healthy, [], 'not trusted again after a connection failure')
  p.state.mode = 'ok'
  t.ok(await waitFor(() => b.healthy.length === 1), 'back after a passing probe')
})

t.test('timers: probing stops once every pod is healthy, and on close', async (t) => {
  const [a, c] = await Promise.all([pod('ok'), pod('503')])
  t.teardown(() => Promise.all([close(a.server), close(c.server)]))
  const { b } = backends(t, { probeFrequencyMs: 10 })
  t.notOk(b.probing, 'no pods: idle')
  b.update({ ready: [a.dest], notReady: [] })
  t.ok(await waitFor(() => b.healthy.length === 1))
  await sleep(10)
  t.notOk(b.probing)
  const n = a.state.requests.length
  await sleep(60)
  t.equal(a.state.requests.length, n, 'no further probes')
  b.update({ ready: [a.dest, c.dest], notReady: [] })
  t.ok(b.probing)
  await sleep(30)
  b.close()
  await sleep(20)
  const m = c.state.requests.length
  await sleep(60)
  t.equal(c.state.requests.length, m, 'no probes after close')
  t.notOk(b.probing)
})
