// Kubelet probes of the activator (spec §2.4, §2.14): 200 while healthy, 500
// "received SIGTERM from kubelet" from the moment shutdown starts while
// requests are still served through the drain period, and — only with
// SLUICE_READINESS_REQUIRES_AUTOSCALER, as Knative always does — 500 while the
// autoscaler websocket is down.
import t from 'tap'
import http from 'node:http'
import { close, request, sleep, startApp } from '../../helpers/servers.ts'
import { freePort } from '../../helpers/process.ts'
import { TestAutoscaler } from '../../helpers/test-autoscaler.ts'
import { revisionInfo, startActivator, startPod } from '../../helpers/activator.ts'

t.jobs = 3

const KUBELET = { 'User-Agent': 'kube-probe/1.30', 'K-Kubelet-Probe': 'activator' }

async function probe(url: string) {
  return request(`${url}/healthz`, { headers: KUBELET })
}

t.test('default: Ready without an autoscaler connection (Sluice keeps serving warm revisions)', async (t) => {
  const act = await startActivator()
  t.teardown(() => act.stop())
  t.equal(act.activator.sender.connected, false)
  const r = await probe(act.url)
  t.equal(r.status, 200)
  t.equal(r.body, '')
})

t.test('SLUICE_READINESS_REQUIRES_AUTOSCALER=true: 500 until the websocket is up, then 200', async (t) => {
  const port = await freePort()
  const autoscaler = new TestAutoscaler({ port })
  const act = await startActivator({ env: { SLUICE_READINESS_REQUIRES_AUTOSCALER: 'true' }, autoscalerUrl: autoscaler.url })
  t.teardown(async () => {
    await act.stop()
    await autoscaler.stop()
  })
  const down = await probe(act.url)
  t.equal(down.status, 500)
  t.equal(down.body, 'connection has not yet been established\n')
  t.equal(down.headers['content-type'], 'text/plain; charset=utf-8')
  await autoscaler.start()
  await autoscaler.waitFor(() => act.activator.sender.connected, 3000, 'the activator to connect')
  t.equal((await probe(act.url)).status, 200, 'Ready once connected')
  await autoscaler.stop()
  await autoscaler.waitFor(() => !act.activator.sender.connected, 2000, 'the activator to notice')
  const again = await probe(act.url)
  t.equal(again.status, 500, 'not Ready again when the autoscaler goes away')
  t.equal(again.body, 'connection has not yet been established\n')
})

t.test('shutdown: probes fail at once, requests are served through the drain period, in-flight ones complete', async (t) => {
  const app = await startApp((req, res) => {
    if (req.url === '/slow') setTimeout(() => res.end('slow done'), 700)
    else res.end(`app ${req.url}`)
  })
  const pod = await startPod(app.port)
  const act = await startActivator({ env: { SLUICE_DRAIN_PERIOD: '400ms' }, revisions: [revisionInfo('hello-00001')] })
  act.source.setEndpoints('default', 'hello-00001', { ready: [pod.dest], notReady: [] })
  t.teardown(async () => {
    await act.stop()
    await pod.stop()
    await close(app.server)
  })
  const route = { 'Knative-Serving-Namespace': 'default', 'Knative-Serving-Revision': 'hello-00001' }
  t.equal((await request(`${act.url}/`, { headers: route })).status, 200, 'warm')

  const slow = request(`${act.url}/slow`, { headers: route })
  await sleep(50)
  const started = performance.now()
  const done = act.activator.shutdown()
  const p = await probe(act.url)
  t.equal(p.status, 500)
  t.equal(p.body, 'received SIGTERM from kubelet\n')
  const during = await request(`${act.url}/during`, { headers: route })
  t.equal(during.status, 200, 'a new request during the drain period is served')
  t.equal(during.body, 'app /during')
  t.equal((await request(`${act.url}//healthz`, { headers: { 'K-Network-Probe': 'activator' } })).body, 'activator', 'network probes still answered')
  const s = await slow
  t.equal(s.status, 200, 'the in-flight request completes')
  t.equal(s.body, 'slow done')
  await done
  t.ok(performance.now() - started >= 400, 'shutdown waited for the drain period')
  await t.rejects(request(`${act.url}/`, { headers: route }), 'listeners closed after shutdown')
})

// Known bug in @sluice/core/http/listener: its http.Server never 'listens' (sockets are
// handed to it), so Node never sets up its connection tracking and
// closeIdleConnections()/closeAllConnections() do nothing. Idle keep-alive
// connections outlive shutdown and are then served with closed upstreams.
t.test('shutdown closes idle keep-alive connections', async (t) => {
  const app = await startApp((req, res) => res.end(`app ${req.url}`))
  const pod = await startPod(app.port)
  const act = await startActivator({ revisions: [revisionInfo('hello-00001')] })
  act.source.setEndpoints('default', 'hello-00001', { ready: [pod.dest], notReady: [] })
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
  t.teardown(async () => {
    agent.destroy()
    await pod.stop()
    await close(app.server)
  })
  const route = { 'Knative-Serving-Namespace': 'default', 'Knative-Serving-Revision': 'hello-00001' }
  t.equal((await request(`${act.url}/`, { agent, headers: route })).status, 200)
  const socket = Object.values(agent.freeSockets)[0]![0]!
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()))
  await act.stop()
  const after = await Promise.race([closed.then(() => 'closed'), sleep(500).then(() => 'still open')])
  t.equal(after, 'closed', 'the idle connection was closed by the activator')
})
