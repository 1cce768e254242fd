// ConfigMapWatch against the fake API server: current data after the first
// list, changes and deletions while running, other namespaces ignored.

import t from 'tap'
import { pino } from 'pino'
import { ConfigMapWatch, type ConfigMapData } from '@sluice/activator/endpoints/config-maps'
import { FakeKubeApi, kubeConfigFor } from '../../helpers/fake-kube-api.ts'

const silent = pino({ level: 'silent' })

async function waitFor(cond: () => boolean, ms = 5000): Promise<boolean> {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) return false
    await new Promise((r) => setTimeout(r, 5))
  }
  return true
}

function configMap(namespace: string, name: string, data: ConfigMapData) {
  return { metadata: { namespace, name }, data }
}

t.test('listeners get the current data, changes and deletions', async (t) => {
  const api = await FakeKubeApi.start()
  t.teardown(() => api.close())
  api.upsert('configmaps', configMap('knative-serving', 'config-network', { 'mesh-compatibility-mode': 'enabled' }))
  const watch = new ConfigMapWatch({ kubeConfig: kubeConfigFor(api), namespace: 'knative-serving', log: silent, backoff: { initialMs: 10, maxMs: 40 } })
  t.teardown(() => watch.stop())
  const network: (ConfigMapData | undefined)[] = []
  const tracing: (ConfigMapData | undefined)[] = []
  watch.onConfigMap('config-network', (d) => network.push(d))
  watch.onConfigMap('config-tracing', (d) => tracing.push(d))
  watch.onConfigMap('config-tracing', () => {
    throw new Error('a failing listener')
  })
  await watch.start()
  t.same(network, [{ 'mesh-compatibility-mode': 'enabled' }], 'existing ConfigMap delivered at start')
  t.same(tracing, [undefined], 'missing ConfigMap delivered as undefined')
  t.equal(api.requests.find((r) => r.kind === 'configmaps')?.watch, false, 'listed first')

  api.upsert('configmaps', configMap('other', 'config-network', { 'mesh-compatibility-mode': 'disabled' }))
  api.upsert('configmaps', configMap('knative-serving', 'config-network', { 'mesh-compatibility-mode': 'auto' }))
  t.ok(await waitFor(() => network.length === 2), 'change delivered')
  t.same(network[1], { 'mesh-compatibility-mode': 'auto' }, 'other namespaces ignored')

  api.upsert('configmaps', configMap('knative-serving', 'config-tracing', { backend: 'none' }))
  t.ok(await waitFor(() => tracing.length === 2), 'creation delivered (despite the failing listener)')

  api.remove('configmaps', 'knative-serving', 'config-network')
  t.ok(await waitFor(() => network.length === 3), 'deletion delivered')
  t.equal(network[2], undefined)

  const late: (ConfigMapData | undefined)[] = []
  watch.onConfigMap('config-tracing', (d) => late.push(d))
  t.same(late, [{ backend: 'none' }], 'a listener added after start hears the current data at once')
  await t.rejects(watch.start(), /already started/)
})

t.test('survives dropped watches', async (t) => {
  const api = await FakeKubeApi.start()
  t.teardown(() => api.close())
  const watch = new ConfigMapWatch({ kubeConfig: kubeConfigFor(api), namespace: 'knative-serving', log: silent, backoff: { initialMs: 10, maxMs: 40 } })
  t.teardown(() => watch.stop())
  const seen: (ConfigMapData | undefined)[] = []
  watch.onConfigMap('config-network', (d) => seen.push(d))
  await watch.start()
  t.ok(await waitFor(() => api.openWatches('configmaps') === 1))
  api.dropWatches()
  api.upsert('configmaps', configMap('knative-serving', 'config-network', { a: 'b' }))
  t.ok(await waitFor(() => seen.length === 2), 'change made while disconnected arrives after the reconnect')
  t.same(seen[1], { a: 'b' })
})
