// Mesh compatibility end to end: the activator reads revisions, endpoints,
// the private Service and config-network from the Kubernetes API, probes a
// pod behind a sidecar that rejects plain traffic, and routes through the
// ClusterIP stand-in as config-network says. Real sockets only. Every case
// runs on the fake API (127.0.0.x addresses) and, when
// SLUICE_KUBE_APISERVER_BIN is set, on a real kube-apiserver: then this file
// runs again inside a network namespace holding the cluster-style addresses
// the real server accepts (netns-tests.ts).

import t, { type Test } from 'tap'
import { kubeApis, type KubeApi } from '../../helpers/kube-apis.ts'
import { netnsSkip, relayedBackend, runInNetns } from '../../helpers/netns-tests.ts'
import { request } from '../../helpers/servers.ts'
import { ADDRESSES, configNetwork, ROUTE, startMesh, waitFor, type MeshSetup } from './fake-mesh.ts'

const meshLines = (logs: Record<string, unknown>[]) => logs.filter((l) => l.msg === 'mesh compatibility settings')
const escape = (s: string) => s.replace(/\./g, '\\.')

const relayed = relayedBackend()
for (const backend of relayed ? [relayed] : await kubeApis(t)) {
  if (backend.name === 'real' && !relayed) {
    const { clusterIP, podIP, others } = ADDRESSES.real
    t.test('[real] the cases above, in a network namespace', { skip: netnsSkip(backend) }, (t) => runInNetns(t, backend, import.meta.filename, [clusterIP, podIP, ...others]))
    continue
  }
  const test = (name: string, o: Parameters<typeof startMesh>[2], fn: (t: Test, m: MeshSetup) => Promise<void>) =>
    t.test(`[${backend.name}] ${name}`, async (t) => {
      const api: KubeApi = await backend.use(t)
      await fn(t, await startMesh(t, api, o))
    })

  test('auto (default): mesh-rejected pod probes -> the buffered request is served through the ClusterIP', { cc: 2, podReady: true }, async (t, m) => {
    const res = await request(`${m.url}/`, { headers: ROUTE })
    t.equal(res.status, 200)
    t.equal(res.body, 'served by clusterip', 'served through the private Service ClusterIP')
    t.ok(m.pod.probes > 0, 'pods were probed first')
    t.equal(m.pod.requests, 0, 'no request reached the rejecting pod')
    const rt = m.activator.ctx.throttler.get('default/hello-00001')!
    t.match(rt.clusterDest, new RegExp(`^${escape(m.clusterIP)}:\\d+$`))
    // Knative's ClusterIP capacity: cc x K8s-ready backends / activators, no per-pod trackers.
    t.equal(rt.capacity, 2, 'cc 2 x 1 ready backend')
    t.same(rt.healthyDests, [], 'no pod trackers')
    t.same(meshLines(m.logs).map((l) => l['mesh-compatibility-mode']), ['auto'], 'the mode in force is logged')
    t.ok(m.logs.some((l) => l.msg === 'pods not addressable (mesh); routing through the private service ClusterIP'), 'the fallback is logged')
    // The metrics operators check (deploy/README.md): the mode in force and the revision's routing.
    const metrics = (await request(`http://127.0.0.1:${m.activator.ports!.metrics}/metrics`)).body
    t.match(metrics, /^sluice_activator_mesh_compatibility_mode\{mode="auto"\} 1$/m)
    t.match(metrics, /^sluice_activator_mesh_compatibility_mode\{mode="disabled"\} 0$/m)
    t.match(metrics, /^sluice_activator_mesh_pod_addressability 0$/m)
    t.match(metrics, /^sluice_activator_clusterip_routing\{namespace_name="default",revision_name="hello-00001"\} 1$/m)

    // Capacity follows the ready count: cc 2 x 3 ready / 1 activator.
    await m.setPodEndpoints({ ready: [m.podIP, ...m.others] })
    t.ok(await waitFor(() => rt.capacity === 6), `capacity cc x ready backends (${rt.capacity})`)
    const again = await request(`${m.url}/`, { headers: ROUTE })
    t.equal(again.body, 'served by clusterip')
  })

  test('disabled: no ClusterIP fallback; the request waits and is served once the pod is addressable', { configNetwork: { 'mesh-compatibility-mode': 'disabled' } }, async (t, m) => {
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

  test('enabled: pods are not probed; the ClusterIP is used at once', { configNetwork: { 'mesh-compatibility-mode': 'enabled' }, podReady: true }, async (t, m) => {
    const res = await request(`${m.url}/`, { headers: ROUTE })
    t.equal(res.body, 'served by clusterip')
    t.equal(m.pod.probes, 0, 'pods never probed')
    t.equal(m.pod.requests, 0)
    t.ok(m.cluster.probes > 0, 'the ClusterIP was probed')
  })

  test('enable-mesh-pod-addressability: passthrough headers on probes, the private Service host on requests, never the ClusterIP', { configNetwork: { 'enable-mesh-pod-addressability': 'true' } }, async (t, m) => {
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

  test('mode switches at run time through config-network, without restart', { configNetwork: { 'mesh-compatibility-mode': 'auto' }, podReady: true }, async (t, m) => {
    t.equal((await request(`${m.url}/`, { headers: ROUTE })).body, 'served by clusterip')
    const rt = m.activator.ctx.throttler.get('default/hello-00001')!

    // disabled: back to pods (the ClusterIP route ends); the pod (now not ready: disabled
    // trusts K8s readiness) is still rejecting -> requests wait.
    await m.setPodEndpoints({ notReady: [m.podIP] })
    await m.api.upsert('configmaps', configNetwork({ 'mesh-compatibility-mode': 'disabled' }))
    t.ok(await waitFor(() => rt.clusterDest === null), 'ClusterIP routing ended')
    const metrics = (await request(`http://127.0.0.1:${m.activator.ports!.metrics}/metrics`)).body
    t.match(metrics, /^sluice_activator_mesh_compatibility_mode\{mode="disabled"\} 1$/m, 'the metric follows config-network')
    t.match(metrics, /^sluice_activator_clusterip_routing\{namespace_name="default",revision_name="hello-00001"\} 0$/m, 'routed to pods again')
    let done = false
    const pending = request(`${m.url}/`, { headers: ROUTE }).finally(() => (done = true))
    const probes = m.pod.probes
    t.ok(await waitFor(() => m.pod.probes >= probes + 3), 'pods probed again')
    t.notOk(done, 'waits for an addressable pod')
    m.pod.rejecting = false
    t.equal((await pending).body, 'served by pod', 'pod routing once the pod is addressable')

    // enabled: the ClusterIP again (capacity from the K8s-ready count), pods no longer probed.
    await m.setPodEndpoints({ ready: [m.podIP] })
    await m.api.upsert('configmaps', configNetwork({ 'mesh-compatibility-mode': 'enabled' }))
    t.ok(await waitFor(() => rt.clusterDest !== null), 'ClusterIP routing')
    t.equal((await request(`${m.url}/`, { headers: ROUTE })).body, 'served by clusterip')

    // An invalid value is refused and the mode in force kept.
    await m.api.upsert('configmaps', configNetwork({ 'mesh-compatibility-mode': 'sometimes' }))
    t.ok(await waitFor(() => m.logs.some((l) => l.msg === 'invalid config-network; keeping the settings in force')))
    t.equal(m.activator.ctx.throttler.mesh.mode, 'enabled')

    // Deleted ConfigMap: Knative's defaults (auto). The pod now answers probes -> pod routing.
    await m.api.remove('configmaps', 'knative-serving', 'config-network')
    t.ok(await waitFor(() => m.activator.ctx.throttler.mesh.mode === 'auto'))
    t.ok(await waitFor(() => rt.clusterDest === null && rt.healthyDests.length === 1), 'pods addressable again: pod routing')
    t.equal((await request(`${m.url}/`, { headers: ROUTE })).body, 'served by pod')
    t.same(meshLines(m.logs).map((l) => l['mesh-compatibility-mode']), ['auto', 'disabled', 'enabled', 'auto'], 'every change logged')
  })
}
