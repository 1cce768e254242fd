// Mesh compatibility end to end: the activator reads revisions, endpoints,
// the private Service and config-network from the fake API, probes a pod
// behind a sidecar that rejects plain traffic, and routes through the
// ClusterIP stand-in (127.0.0.2) as config-network says. Real sockets only.

import t from 'tap'
import { request } from '../../helpers/servers.ts'
import { CLUSTER_IP, configNetwork, POD_IP, ROUTE, startMesh, waitFor } from './fake-mesh.ts'

const meshLines = (logs: Record<string, unknown>[]) => logs.filter((l) => l.msg === 'mesh compatibility settings')

t.test('auto (default): mesh-rejected pod probes -> the buffered request is served through the ClusterIP', async (t) => {
  const m = await startMesh(t, { cc: 2, podReady: true })
  const res = await request(`${m.url}/`, { headers: ROUTE })
  t.equal(res.status, 200)
  t.equal(res.body, 'served by clusterip', 'served through the private Service ClusterIP')
  t.ok(m.pod.probes > 0, 'pods were probed first')
  t.equal(m.pod.requests, 0, 'no request reached the rejecting pod')
  const rt = m.activator.ctx.throttler.get('default/hello-00001')!
  t.match(rt.clusterDest, new RegExp(`^${CLUSTER_IP.replace(/\./g, '\\.')}:\\d+$`))
  // Knative's ClusterIP capacity: cc x K8s-ready backends / activators, no per-pod trackers.
  t.equal(rt.capacity, 2, 'cc 2 x 1 ready backend')
  t.same(rt.healthyDests, [], 'no pod trackers')
  t.same(meshLines(m.logs).map((l) => l['mesh-compatibility-mode']), ['auto'], 'the mode in force is logged')
  t.ok(m.logs.some((l) => l.msg === 'pods not addressable (mesh); routing through the private service ClusterIP'), 'the fallback is logged')

  // Capacity follows the ready count: cc 2 x 3 ready / 1 activator.
  m.setPodEndpoints({ ready: [POD_IP, '127.0.0.4', '127.0.0.5'] })
  t.ok(await waitFor(() => rt.capacity === 6), `capacity cc x ready backends (${rt.capacity})`)
  const again = await request(`${m.url}/`, { headers: ROUTE })
  t.equal(again.body, 'served by clusterip')
})

t.test('disabled: no ClusterIP fallback; the request waits and is served once the pod is addressable', async (t) => {
  const m = await startMesh(t, { configNetwork: { 'mesh-compatibility-mode': 'disabled' } })
  let done = false
  const pending = request(`${m.url}/`, { headers: ROUTE }).finally(() => (done = true))
  t.ok(await waitFor(() => m.pod.probes >= 3), 'pod probed repeatedly')
  t.notOk(done, 'still waiting')
  t.equal(m.cluster.probes + m.cluster.requests, 0, 'the ClusterIP is never touched')
  m.pod.rejecting = false // the sidecar now lets plain traffic through
  const res = await pending
  t.equal(res.status, 200)
  t.equal(res.body, 'served by pod')
  t.same(meshLines(m.logs).map((l) => l['mesh-compatibility-mode']), ['disabled'])
})

t.test('enabled: pods are not probed; the ClusterIP is used at once', async (t) => {
  const m = await startMesh(t, { configNetwork: { 'mesh-compatibility-mode': 'enabled' }, podReady: true })
  const res = await request(`${m.url}/`, { headers: ROUTE })
  t.equal(res.body, 'served by clusterip')
  t.equal(m.pod.probes, 0, 'pods never probed')
  t.equal(m.pod.requests, 0)
  t.ok(m.cluster.probes > 0, 'the ClusterIP was probed')
})

t.test('enable-mesh-pod-addressability: passthrough headers on probes, the private Service host on requests, never the ClusterIP', async (t) => {
  const m = await startMesh(t, { configNetwork: { 'enable-mesh-pod-addressability': 'true' } })
  let done = false
  const pending = request(`${m.url}/`, { headers: ROUTE }).finally(() => (done = true))
  t.ok(await waitFor(() => m.pod.probes >= 3))
  t.equal(m.pod.lastProbe['k-passthrough-lb'], 'true')
  t.equal(m.pod.lastProbe.host, 'hello-00001-private.default')
  t.notOk(done)
  t.equal(m.cluster.probes + m.cluster.requests, 0)
  m.pod.rejecting = false
  t.equal((await pending).body, 'served by pod')
  // Knative's handler overrides Host with the private Service so the mesh routes it there.
  t.equal(m.pod.lastRequest.host, 'hello-00001-private.default', 'the request carries the private Service host')
  t.ok(m.pod.lastRequest['k-original-host'] !== undefined, 'the original host travels in K-Original-Host')
})

t.test('mode switches at run time through config-network, without restart', async (t) => {
  const m = await startMesh(t, { configNetwork: { 'mesh-compatibility-mode': 'auto' }, podReady: true })
  t.equal((await request(`${m.url}/`, { headers: ROUTE })).body, 'served by clusterip')
  const rt = m.activator.ctx.throttler.get('default/hello-00001')!

  // disabled: back to pods (the ClusterIP route ends); the pod (now not ready: disabled
  // trusts K8s readiness) is still rejecting -> requests wait.
  m.setPodEndpoints({ notReady: [POD_IP] })
  m.api.upsert('configmaps', configNetwork({ 'mesh-compatibility-mode': 'disabled' }))
  t.ok(await waitFor(() => rt.clusterDest === null), 'ClusterIP routing ended')
  let done = false
  const pending = request(`${m.url}/`, { headers: ROUTE }).finally(() => (done = true))
  const probes = m.pod.probes
  t.ok(await waitFor(() => m.pod.probes >= probes + 3), 'pods probed again')
  t.notOk(done, 'waits for an addressable pod')
  m.pod.rejecting = false
  t.equal((await pending).body, 'served by pod', 'pod routing once the pod is addressable')

  // enabled: the ClusterIP again (capacity from the K8s-ready count), pods no longer probed.
  m.setPodEndpoints({ ready: [POD_IP] })
  m.api.upsert('configmaps', configNetwork({ 'mesh-compatibility-mode': 'enabled' }))
  t.ok(await waitFor(() => rt.clusterDest !== null), 'ClusterIP routing')
  t.equal((await request(`${m.url}/`, { headers: ROUTE })).body, 'served by clusterip')

  // An invalid value is refused and the mode in force kept.
  m.api.upsert('configmaps', configNetwork({ 'mesh-compatibility-mode': 'sometimes' }))
  t.ok(await waitFor(() => m.logs.some((l) => l.msg === 'invalid config-network; keeping the settings in force')))
  t.equal(m.activator.ctx.throttler.mesh.mode, 'enabled')

  // Deleted ConfigMap: Knative's defaults (auto). The pod now answers probes -> pod routing.
  m.api.remove('configmaps', 'knative-serving', 'config-network')
  t.ok(await waitFor(() => m.activator.ctx.throttler.mesh.mode === 'auto'))
  t.ok(await waitFor(() => rt.clusterDest === null && rt.healthyDests.length === 1), 'pods addressable again: pod routing')
  t.equal((await request(`${m.url}/`, { headers: ROUTE })).body, 'served by pod')
  t.same(meshLines(m.logs).map((l) => l['mesh-compatibility-mode']), ['auto', 'disabled', 'enabled', 'auto'], 'every change logged')
})
