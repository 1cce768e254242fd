// ClusterIP routing in the throttler (spec §2.6 calculateCapacity): one
// unlimited tracker, capacity cc x ready backends / activators (at least 1
// when the product is > 0), "open" for cc = 0; back to pod trackers on null.
// Also config-network's mesh values and their SLUICE_* start-up values.

import t from 'tap'
import { loadConfig } from '@sluice/activator/config'
import { MAX_CAPACITY, RevisionThrottler, type ThrottleWaiter } from '@sluice/activator/net/throttler'
import { DEFAULT_MESH, meshFromConfigMap } from '@sluice/activator/net/mesh-config'

function waiter(dests: string[]): ThrottleWaiter {
  return { onDest: (d: string) => void dests.push(d), onReject: () => {} } as unknown as ThrottleWaiter
}

t.test('capacity through the ClusterIP', async (t) => {
  const rt = new RevisionThrottler('default/r', 10)
  rt.updateClusterIP('10.0.0.9:80', 3)
  t.equal(rt.capacity, 30, 'cc x ready, one activator')
  rt.updateActivators(0, 4)
  t.equal(rt.capacity, 7, 'floor(30 / 4)')
  rt.updateClusterIP('10.0.0.9:80', 0)
  t.equal(rt.capacity, 0, 'no ready backend: requests wait')
  const single = new RevisionThrottler('default/s', 1)
  single.updateActivators(0, 3)
  single.updateClusterIP('10.0.0.9:80', 1)
  t.equal(single.capacity, 1, 'floored at 1 when cc x ready > 0')
  const open = new RevisionThrottler('default/o', 0)
  open.updateClusterIP('10.0.0.9:80', 2)
  t.equal(open.capacity, MAX_CAPACITY, 'cc 0: open')

  // Requests go to the ClusterIP, not limited per destination.
  const dests: string[] = []
  const ws = [waiter(dests), waiter(dests), waiter(dests)]
  rt.updateClusterIP('10.0.0.9:80', 2) // floor(20 / 4) = 5
  for (const w of ws) rt.try(w, 0, Infinity)
  t.same(dests, ['10.0.0.9:80', '10.0.0.9:80', '10.0.0.9:80'])
  t.same(rt.healthyDests, [], 'no per-pod trackers')
  // Back to pods: a request in flight on the ClusterIP is still released cleanly.
  rt.updateClusterIP(null, 0)
  rt.updateDests(['10.1.0.1:8012'])
  t.equal(rt.clusterDest, null)
  t.equal(rt.capacity, 10, 'pod routing: cc x assigned pods')
  for (const w of ws) t.ok(rt.release(w))
  t.equal(rt.inFlight, 0)
})

t.test('config-network mesh values', async (t) => {
  t.same(meshFromConfigMap(undefined, DEFAULT_MESH), { mode: 'auto', passthroughLb: false }, 'absent: defaults')
  t.same(meshFromConfigMap({ 'mesh-compatibility-mode': 'Enabled', 'enable-mesh-pod-addressability': 'True' }, DEFAULT_MESH), { mode: 'enabled', passthroughLb: true })
  t.same(meshFromConfigMap({ 'mesh-compatibility-mode': '', 'enable-mesh-pod-addressability': '0' }, { mode: 'disabled', passthroughLb: true }), { mode: 'disabled', passthroughLb: false })
  t.throws(() => meshFromConfigMap({ 'mesh-compatibility-mode': 'on' }, DEFAULT_MESH), /mesh-compatibility-mode/)
  t.throws(() => meshFromConfigMap({ 'enable-mesh-pod-addressability': 'yes' }, DEFAULT_MESH), /enable-mesh-pod-addressability/)
})

t.test('SLUICE_MESH_COMPATIBILITY_MODE / SLUICE_ENABLE_MESH_POD_ADDRESSABILITY', async (t) => {
  const base = { POD_NAME: 'a', POD_IP: '10.0.0.5', SYSTEM_NAMESPACE: 'knative-serving' }
  t.same(loadConfig(base).mesh, { mode: 'auto', passthroughLb: false })
  t.same(loadConfig({ ...base, SLUICE_MESH_COMPATIBILITY_MODE: 'disabled', SLUICE_ENABLE_MESH_POD_ADDRESSABILITY: 'true' }).mesh, { mode: 'disabled', passthroughLb: true })
  t.throws(() => loadConfig({ ...base, SLUICE_MESH_COMPATIBILITY_MODE: 'istio' }), /SLUICE_MESH_COMPATIBILITY_MODE/)
})
