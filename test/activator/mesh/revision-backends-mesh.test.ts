// RevisionBackends' mesh rules against real servers: only 502/503 and
// connection errors count as "maybe a mesh"; any other answer proves pods are
// reachable and the ClusterIP is not tried. A new ClusterIP must pass a probe
// again; deleted endpoints make pods addressable again.

import t, { type Test } from 'tap'
import { RevisionBackends } from '@sluice/activator/net/revision-backends'
import { CLUSTER_IP, MeshServer, POD_IP, waitFor } from './fake-mesh.ts'

async function setup(t: Test) {
  const pod = new MeshServer('pod', true)
  const podDest = `${POD_IP}:${await pod.listen(POD_IP)}`
  const cluster = new MeshServer('clusterip', false)
  const clusterDest = `${CLUSTER_IP}:${await cluster.listen(CLUSTER_IP)}`
  t.teardown(() => Promise.all([pod.close(), cluster.close()]))
  const routes: (string | null)[] = []
  const healthy: string[][] = []
  const rb = new RevisionBackends({
    probeFrequencyMs: 20,
    onHealthy: (d) => healthy.push([...d]),
    onClusterIP: (d, n) => routes.push(d === null ? null : `${d} x${n}`),
  })
  t.teardown(() => rb.close())
  return { pod, podDest, cluster, clusterDest, rb, routes, healthy }
}

t.test('a non-mesh answer (500) keeps the revision off the ClusterIP', async (t) => {
  const m = await setup(t)
  m.pod.server.removeAllListeners('request')
  m.pod.server.on('request', (_req, res) => {
    m.pod.probes++
    res.writeHead(500)
    res.end()
  })
  m.rb.setClusterDest(m.clusterDest)
  m.rb.update({ ready: [m.podDest], notReady: [] })
  t.ok(await waitFor(() => m.pod.probes >= 3))
  t.equal(m.cluster.probes, 0, 'ClusterIP never probed')
  t.same(m.routes, [])
})

t.test('fallback, a new ClusterIP, endpoints deleted', async (t) => {
  const m = await setup(t)
  m.rb.update({ ready: [m.podDest], notReady: [] })
  t.ok(await waitFor(() => m.pod.probes >= 2), 'probing without a known ClusterIP')
  t.same(m.routes, [], 'no ClusterIP known: nothing to fall back to')
  m.rb.setClusterDest(m.clusterDest)
  t.ok(await waitFor(() => m.routes.length === 1))
  t.same(m.routes, [`${m.clusterDest} x1`])
  t.ok(m.rb.viaClusterIP)
  m.rb.update({ ready: [m.podDest, '127.0.0.9:1'], notReady: [] })
  t.same(m.routes[1], `${m.clusterDest} x2`, 'ready count follows the endpoints')

  // The Service got a new address: off the old one at once, on the new one after a probe.
  const other = new MeshServer('clusterip-2', false)
  const otherDest = `127.0.0.4:${await other.listen('127.0.0.4')}`
  t.teardown(() => other.close())
  m.rb.setClusterDest(otherDest)
  t.equal(m.routes[2], null)
  t.ok(await waitFor(() => m.routes.length === 4))
  t.equal(m.routes[3], `${otherDest} x2`)
  t.ok(other.probes > 0)

  // Endpoints deleted: the route ends, and pods are probed again when they come back.
  m.rb.reset()
  t.equal(m.routes[4], null)
  m.pod.rejecting = false
  m.rb.update({ ready: [m.podDest], notReady: [] })
  t.ok(await waitFor(() => m.healthy.at(-1)?.[0] === m.podDest), 'pod routing again')
  t.equal(m.routes.length, 5, 'no ClusterIP route')
})
