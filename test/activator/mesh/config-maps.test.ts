// ConfigMapWatch against the Kubernetes API: current data after the first
// list, changes and deletions while running, other namespaces ignored, and
// watches that resume after an API-server restart. On the fake API and, when
// SLUICE_KUBE_APISERVER_BIN is set, a real kube-apiserver; the dropped-watch
// case needs the fake's controls and runs on it alone.

import t, { type Test } from 'tap'
import { pino } from 'pino'
import { ConfigMapWatch, type ConfigMapData } from '@sluice/activator/endpoints/config-maps'
import { FakeKubeApi, kubeConfigFor } from '../../helpers/fake-kube-api.ts'
import { kubeApis, type KubeApi } from '../../helpers/kube-apis.ts'
import { waitFor as pollFor } from '../../helpers/servers.ts'

const silent = pino({ level: 'silent' })
const BACKOFF = { initialMs: 10, maxMs: 40 }

// Generous: a real API server on a loaded 2-core machine; a pass returns at once.
const waitFor = (cond: () => boolean, ms = 10_000): Promise<boolean> => pollFor(cond, ms)

function configMap(namespace: string, name: string, data: ConfigMapData) {
  return { metadata: { namespace, name }, data }
}

function watchOn(t: Test, api: KubeApi): ConfigMapWatch {
  const watch = new ConfigMapWatch({ kubeConfig: api.kubeConfig(), namespace: 'knative-serving', log: silent, backoff: BACKOFF })
  t.teardown(() => watch.stop())
  return watch
}

for (const backend of await kubeApis(t)) {
  const test = (name: string, fn: (t: Test, api: KubeApi) => Promise<void>) =>
    t.test(`[${backend.name}] ${name}`, { skip: backend.skip }, async (t) => fn(t, await backend.use(t)))

  test('listeners get the current data, changes and deletions', async (t, api) => {
    await api.upsert('configmaps', configMap('knative-serving', 'config-network', { 'mesh-compatibility-mode': 'enabled' }))
    const watch = watchOn(t, api)
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
    if (api.fake) t.equal(api.fake.requests.find((r) => r.kind === 'configmaps')?.watch, false, 'listed first')

    await api.upsert('configmaps', configMap('other', 'config-network', { 'mesh-compatibility-mode': 'disabled' }))
    await api.upsert('configmaps', configMap('knative-serving', 'config-network', { 'mesh-compatibility-mode': 'auto' }))
    t.ok(await waitFor(() => network.length === 2), 'change delivered')
    t.same(network[1], { 'mesh-compatibility-mode': 'auto' }, 'other namespaces ignored')

    await api.upsert('configmaps', configMap('knative-serving', 'config-tracing', { backend: 'none' }))
    t.ok(await waitFor(() => tracing.length === 2), 'creation delivered (despite the failing listener)')

    await api.remove('configmaps', 'knative-serving', 'config-network')
    t.ok(await waitFor(() => network.length === 3), 'deletion delivered')
    t.equal(network[2], undefined)

    const late: (ConfigMapData | undefined)[] = []
    watch.onConfigMap('config-tracing', (d) => late.push(d))
    t.same(late, [{ backend: 'none' }], 'a listener added after start hears the current data at once')
    await t.rejects(watch.start(), /already started/)
  })

  test('the watch resumes after an API-server restart', async (t, api) => {
    const watch = watchOn(t, api)
    const seen: (ConfigMapData | undefined)[] = []
    watch.onConfigMap('config-network', (d) => seen.push(d))
    await watch.start()
    await api.restart()
    await api.upsert('configmaps', configMap('knative-serving', 'config-network', { a: 'b' }))
    // The watch's back-off (at most 40 ms here) decides when it is back: allow for a slow restart.
    t.ok(await waitFor(() => seen.length === 2, 30_000), 'a change made after the restart arrives')
    t.same(seen[1], { a: 'b' })
  })
}

// Fake only: it drops the watch and changes the ConfigMap before the reconnect.
t.test('survives dropped watches', async (t) => {
  const api = await FakeKubeApi.start()
  t.teardown(() => api.close())
  const watch = new ConfigMapWatch({ kubeConfig: kubeConfigFor(api), namespace: 'knative-serving', log: silent, backoff: BACKOFF })
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
