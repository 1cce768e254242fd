// KubernetesSource against the fake API server (list/watch with injectable
// failures) and, when SLUICE_KUBE_APISERVER_BIN is set, a real kube-apiserver
// + etcd. The tests in the loop below run on both; the ones after it need the
// fake's controls (dropped or refused watches, 410 Gone, compaction,
// bookmarks, failing or stalled lists, the request log) and run on it alone.

import t, { type Test } from 'tap'
import { pino } from 'pino'
import { KubernetesSource } from '@sluice/activator/endpoints/kubernetes-source'
import type { EndpointEvents, PrivateService, RevisionEndpoints } from '@sluice/activator/endpoints/source'
import type { RevisionInfo } from '@sluice/activator/revision'
import { FakeKubeApi, kubeConfigFor } from '../../helpers/fake-kube-api.ts'
import { kubeApis, type KubeApi } from '../../helpers/kube-apis.ts'
import { endpointSlice, privateEndpoints, privateService, publicEndpoints, revision } from '../../helpers/knative-objects.ts'
import { waitFor as pollFor } from '../../helpers/servers.ts'

const silent = pino({ level: 'silent' })
const BACKOFF = { initialMs: 10, maxMs: 40 }

/** Records every event and keeps the latest state per revision. */
class Recorder implements EndpointEvents {
  readonly calls: string[] = []
  readonly revisions = new Map<string, RevisionInfo>()
  readonly endpoints = new Map<string, RevisionEndpoints>()
  readonly activators = new Map<string, string[]>()
  readonly services = new Map<string, PrivateService | null>()

  revisionUpserted(rev: RevisionInfo): void {
    this.calls.push(`revisionUpserted ${rev.namespace}/${rev.name}`)
    this.revisions.set(`${rev.namespace}/${rev.name}`, rev)
  }
  revisionDeleted(ns: string, name: string): void {
    this.calls.push(`revisionDeleted ${ns}/${name}`)
    this.revisions.delete(`${ns}/${name}`)
  }
  endpointsUpdated(ns: string, name: string, eps: RevisionEndpoints): void {
    this.calls.push(`endpointsUpdated ${ns}/${name}`)
    this.endpoints.set(`${ns}/${name}`, { ready: [...eps.ready].sort(), notReady: [...eps.notReady].sort() })
  }
  endpointsDeleted(ns: string, name: string): void {
    this.calls.push(`endpointsDeleted ${ns}/${name}`)
    this.endpoints.delete(`${ns}/${name}`)
  }
  activatorsUpdated(ns: string, name: string, ips: string[]): void {
    this.calls.push(`activatorsUpdated ${ns}/${name}`)
    this.activators.set(`${ns}/${name}`, [...ips].sort())
  }
  privateServiceUpdated(ns: string, name: string, svc: PrivateService | null): void {
    this.calls.push(`privateServiceUpdated ${ns}/${name}`)
    this.services.set(`${ns}/${name}`, svc)
  }
  count(prefix: string): number {
    return this.calls.filter((c) => c.startsWith(prefix)).length
  }
}

// Generous: a real API server on a loaded 2-core machine; a pass returns at once.
const waitFor = (cond: () => boolean, ms = 10_000): Promise<boolean> => pollFor(cond, ms)

async function setup(t: Test, opts: { slices?: boolean } = {}) {
  const api = await FakeKubeApi.start()
  const source = new KubernetesSource({
    kubeConfig: kubeConfigFor(api),
    log: silent,
    backoff: BACKOFF,
    ...(opts.slices ? { useEndpointSlices: true } : {}),
  })
  const rec = new Recorder()
  t.teardown(async () => {
    await source.stop()
    await api.close()
  })
  return { api, source, rec }
}

/** A source reading `api` (fake or real). */
function sourceFor(t: Test, api: KubeApi, opts: { slices?: boolean } = {}) {
  const source = new KubernetesSource({
    kubeConfig: api.kubeConfig(),
    log: silent,
    backoff: BACKOFF,
    ...(opts.slices ? { useEndpointSlices: true } : {}),
  })
  t.teardown(() => source.stop())
  return { source, rec: new Recorder() }
}

for (const backend of await kubeApis(t)) {
  const test = (name: string, fn: (t: Test, api: KubeApi) => Promise<void>) =>
    t.test(`[${backend.name}] ${name}`, { skip: backend.skip }, async (t) => fn(t, await backend.use(t)))

  test('initial sync: start() resolves after revisions, private endpoints, public activators and private services were delivered', async (t, api) => {
    const { source, rec } = sourceFor(t, api)
    await api.upsert('revisions', revision('ns', 'hello-00001', { containerConcurrency: 10 }))
    await api.upsert('revisions', revision('ns', 'grpc-00001', { h2c: true }))
    await api.upsert('endpoints', privateEndpoints('ns', 'hello-00001', { ready: ['10.0.0.1', '10.0.0.2'], notReady: ['10.0.0.3'] }))
    await api.upsert('endpoints', privateEndpoints('ns', 'grpc-00001', { h2c: true, ready: ['10.0.1.1'] }))
    await api.upsert('endpoints', publicEndpoints('ns', 'hello-00001', ['10.1.0.7', '10.1.0.5']))
    await api.upsert('services', privateService('ns', 'hello-00001', '10.96.0.10'))
    await api.upsert('services', privateService('ns', 'grpc-00001', '10.96.0.11', { h2c: true }))

    await source.start(rec)

    t.same([...rec.revisions.keys()].sort(), ['ns/grpc-00001', 'ns/hello-00001'])
    t.same(rec.endpoints.get('ns/hello-00001'), { ready: ['10.0.0.1:8012', '10.0.0.2:8012'], notReady: ['10.0.0.3:8012'] }, 'http1 revision: port http (8012)')
    t.same(rec.endpoints.get('ns/grpc-00001'), { ready: ['10.0.1.1:8013'], notReady: [] }, 'h2c revision: port http2 (8013)')
    t.same(rec.activators.get('ns/hello-00001'), ['10.1.0.5', '10.1.0.7'], 'public endpoints: activator IPs, no ports')
    t.same(rec.services.get('ns/hello-00001'), { clusterDest: '10.96.0.10:80' })
    t.same(rec.services.get('ns/grpc-00001'), { clusterDest: '10.96.0.11:80' }, 'h2c private service: port http2')
    const firstEndpoints = rec.calls.findIndex((c) => !c.startsWith('revision'))
    t.ok(rec.calls.slice(0, firstEndpoints).length === 2, 'revisions are delivered before any endpoints')
    if (api.fake) {
      t.equal(api.fake.requests.find((r) => r.kind === 'endpoints')?.labelSelector, 'networking.internal.knative.dev/serviceType in (Private,Public)')
      t.equal(api.fake.requests.find((r) => r.kind === 'services')?.labelSelector, 'networking.internal.knative.dev/serviceType=Private')
      t.equal(api.fake.lists('endpointslices'), 0, 'EndpointSlices are not read by default')
    }
  })

  test('revision fields: defaults, explicit values, serving container of a multi-container revision', async (t, api) => {
    const { source, rec } = sourceFor(t, api)
    await api.upsert('revisions', revision('ns', 'plain-00001'))
    await api.upsert('revisions', revision('ns', 'full-00001', {
      containerConcurrency: 3, h2c: true, timeoutSeconds: 60, responseStartTimeoutSeconds: 20,
      idleTimeoutSeconds: 5, service: 'svc', configuration: 'cfg', execReadinessProbe: true,
    }))
    await api.upsert('revisions', revision('ns', 'multi-00001', {
      containers: [
        { name: 'sidecar', image: 's', readinessProbe: { httpGet: { port: 9 } } },
        { name: 'app', image: 'a', ports: [{ name: 'h2c', containerPort: 8080 }], readinessProbe: { exec: { command: ['x'] } } },
      ],
    }))
    const bare = revision('ns', 'bare-00001')
    bare.metadata.labels = {}
    await api.upsert('revisions', bare)
    await source.start(rec)

    t.same(source.getRevision('ns', 'plain-00001'), {
      namespace: 'ns', name: 'plain-00001', containerConcurrency: 0, protocol: 'http1', timeoutSeconds: 300,
      responseStartTimeoutSeconds: 0, idleTimeoutSeconds: 0, serviceName: 'plain', configurationName: 'plain',
      execReadinessProbe: false,
    })
    t.same(source.getRevision('ns', 'full-00001'), {
      namespace: 'ns', name: 'full-00001', containerConcurrency: 3, protocol: 'h2c', timeoutSeconds: 60,
      responseStartTimeoutSeconds: 20, idleTimeoutSeconds: 5, serviceName: 'svc', configurationName: 'cfg',
      execReadinessProbe: true,
    })
    const multi = source.getRevision('ns', 'multi-00001')
    t.equal(multi?.protocol, 'h2c', 'protocol from the container with ports')
    t.equal(multi?.execReadinessProbe, true, 'probe of the container with ports')
    t.equal(source.getRevision('ns', 'bare-00001')?.serviceName, '', 'missing labels give empty names')
    t.equal(source.getRevision('ns', 'nope'), undefined)
    t.equal(source.getRevision('other', 'plain-00001'), undefined, 'namespace is part of the key')
    t.same(rec.revisions.get('ns/full-00001'), source.getRevision('ns', 'full-00001'), 'the cache holds what was delivered')
  })

  test('endpoints of a revision not known yet: port http if present, else http2; IPv6 in brackets', async (t, api) => {
    const { source, rec } = sourceFor(t, api)
    await api.upsert('endpoints', privateEndpoints('ns', 'a-00001', { ready: ['10.0.0.1'] }))
    await api.upsert('endpoints', privateEndpoints('ns', 'b-00001', { h2c: true, ready: ['10.0.0.2'] }))
    await api.upsert('endpoints', privateEndpoints('ns', 'v6-00001', { ready: ['fd00::1'], notReady: ['fd00::2'] }))
    await source.start(rec)
    t.same(rec.endpoints.get('ns/a-00001')?.ready, ['10.0.0.1:8012'])
    t.same(rec.endpoints.get('ns/b-00001')?.ready, ['10.0.0.2:8013'])
    t.same(rec.endpoints.get('ns/v6-00001'), { ready: ['[fd00::1]:8012'], notReady: ['[fd00::2]:8012'] })
  })

  test('a known http1 revision reads only the http port, even if the endpoints offer http2 as well', async (t, api) => {
    const { source, rec } = sourceFor(t, api)
    await api.upsert('revisions', revision('ns', 'r-00001'))
    await api.upsert('endpoints', privateEndpoints('ns', 'r-00001', {
      subsets: [
        { addresses: [{ ip: '10.0.0.1' }], ports: [{ name: 'http2', port: 8013 }] },
        { addresses: [{ ip: '10.0.0.2' }, { ip: '10.0.0.2' }], ports: [{ name: 'http', port: 8012 }, { name: 'https', port: 8112 }] },
      ],
    }))
    await source.start(rec)
    t.same(rec.endpoints.get('ns/r-00001'), { ready: ['10.0.0.2:8012'], notReady: [] }, 'other subsets ignored, duplicates merged')
  })

  test('updates and deletes propagate', async (t, api) => {
    const { source, rec } = sourceFor(t, api)
    await api.upsert('revisions', revision('ns', 'r-00001'))
    await api.upsert('endpoints', privateEndpoints('ns', 'r-00001'))
    await api.upsert('endpoints', publicEndpoints('ns', 'r-00001', ['10.1.0.1']))
    await api.upsert('services', privateService('ns', 'r-00001', '10.96.0.21'))
    await source.start(rec)
    t.same(rec.endpoints.get('ns/r-00001'), { ready: [], notReady: [] }, 'empty endpoints are delivered')

    await api.upsert('endpoints', privateEndpoints('ns', 'r-00001', { notReady: ['10.0.0.1'] }))
    t.ok(await waitFor(() => rec.endpoints.get('ns/r-00001')?.notReady.length === 1), 'not-ready pod appears')
    await api.upsert('endpoints', privateEndpoints('ns', 'r-00001', { ready: ['10.0.0.1'] }))
    t.ok(await waitFor(() => rec.endpoints.get('ns/r-00001')?.ready[0] === '10.0.0.1:8012'), 'pod becomes ready')
    await api.upsert('endpoints', publicEndpoints('ns', 'r-00001', ['10.1.0.1', '10.1.0.2']))
    t.ok(await waitFor(() => rec.activators.get('ns/r-00001')?.length === 2), 'activator subset grows')
    await api.upsert('services', privateService('ns', 'r-00001', 'None'))
    t.ok(await waitFor(() => rec.services.get('ns/r-00001') === null), 'headless private service: no ClusterIP destination')

    const revisionEvents = rec.count('revisionUpserted')
    const rev = revision('ns', 'r-00001')
    rev.status = { observedGeneration: 2, conditions: [{ type: 'Ready', status: 'True' }] }
    await api.upsert('revisions', rev)
    await api.upsert('revisions', revision('ns', 'r-00001', { containerConcurrency: 4 }))
    t.ok(await waitFor(() => source.getRevision('ns', 'r-00001')?.containerConcurrency === 4), 'revision update reaches the cache')
    t.equal(rec.count('revisionUpserted'), revisionEvents + 1, 'a status-only update is not re-delivered')

    await api.remove('endpoints', 'ns', 'r-00001-private')
    t.ok(await waitFor(() => rec.count('endpointsDeleted ns/r-00001') === 1), 'private endpoints deleted')
    await api.remove('services', 'ns', 'r-00001-private')
    await api.remove('revisions', 'ns', 'r-00001')
    t.ok(await waitFor(() => rec.count('revisionDeleted ns/r-00001') === 1), 'revision deleted')
    t.equal(source.getRevision('ns', 'r-00001'), undefined, 'and gone from the cache')
    t.equal(rec.services.get('ns/r-00001'), null, 'private service deletion delivers null')
  })

  test('Endpoints without the Private/Public label, or without a revisionUID, are ignored', async (t, api) => {
    const { source, rec } = sourceFor(t, api)
    const plain = privateEndpoints('ns', 'x-00001', { ready: ['10.0.0.1'] })
    delete plain.metadata.labels!['networking.internal.knative.dev/serviceType']
    await api.upsert('endpoints', plain)
    const noUid = privateEndpoints('ns', 'y-00001', { ready: ['10.0.0.2'] })
    delete noUid.metadata.labels!['serving.knative.dev/revisionUID']
    await api.upsert('endpoints', noUid)
    const other = privateEndpoints('ns', 'z-00001', { ready: ['10.0.0.3'] })
    other.metadata.labels!['networking.internal.knative.dev/serviceType'] = 'Other'
    await api.upsert('endpoints', other)
    await source.start(rec)
    await api.upsert('endpoints', { ...plain, subsets: [] })
    await api.upsert('endpoints', privateEndpoints('ns', 'ok-00001', { ready: ['10.0.0.9'] }))
    t.ok(await waitFor(() => rec.endpoints.has('ns/ok-00001')), 'a labelled one arrives')
    t.same([...rec.endpoints.keys()], ['ns/ok-00001'], 'nothing else was delivered')
    t.equal(rec.activators.size, 0)

    // Losing the label is a deletion for a label-selected watch.
    const relabelled = privateEndpoints('ns', 'ok-00001', { ready: ['10.0.0.9'] })
    delete relabelled.metadata.labels!['networking.internal.knative.dev/serviceType']
    await api.upsert('endpoints', relabelled)
    t.ok(await waitFor(() => rec.count('endpointsDeleted ns/ok-00001') === 1), 'endpoints that lose the label are deleted')
  })

  test('EndpointSlices mode: merges the slices of a service; ready unless conditions.ready is false; terminating left out', async (t, api) => {
    const { source, rec } = sourceFor(t, api, { slices: true })
    await api.upsert('revisions', revision('ns', 'r-00001'))
    await api.upsert('revisions', revision('ns', 'g-00001', { h2c: true }))
    await api.upsert('endpointslices', endpointSlice('ns', 'r-00001', 'r-00001-private-a', [
      { ip: '10.0.0.1' }, { ip: '10.0.0.2', ready: false }, { ip: '10.0.0.3', ready: null },
    ]))
    await api.upsert('endpointslices', endpointSlice('ns', 'r-00001', 'r-00001-private-b', [
      { ip: '10.0.0.4' }, { ip: '10.0.0.5', ready: false, terminating: true },
    ]))
    await api.upsert('endpointslices', endpointSlice('ns', 'r-00001', 'r-00001-private-v6', [{ ip: 'fd00::1' }], { addressType: 'IPv6' }))
    await api.upsert('endpointslices', endpointSlice('ns', 'g-00001', 'g-00001-private-a', [{ ip: 'fd00::9' }], { h2c: true, addressType: 'IPv6' }))
    await api.upsert('endpointslices', endpointSlice('ns', 'r-00001', 'r-00001-x', [{ ip: '10.1.0.1' }, { ip: '10.1.0.2', ready: false }], { type: 'Public' }))
    const foreign = endpointSlice('ns', 'r-00001', 'unrelated', [{ ip: '10.9.9.9' }])
    delete foreign.metadata.labels!['networking.internal.knative.dev/serviceType']
    await api.upsert('endpointslices', foreign)
    await api.upsert('endpoints', privateEndpoints('ns', 'r-00001', { ready: ['10.7.7.7'] }))
    await source.start(rec)

    t.same(rec.endpoints.get('ns/r-00001'), {
      ready: ['10.0.0.1:8012', '10.0.0.3:8012', '10.0.0.4:8012'],
      notReady: ['10.0.0.2:8012'],
    }, 'slices merged; the IPv6 slice of a dual-stack service is not counted twice')
    t.same(rec.endpoints.get('ns/g-00001'), { ready: ['[fd00::9]:8013'], notReady: [] }, 'IPv6-only service, h2c port')
    t.same(rec.activators.get('ns/r-00001'), ['10.1.0.1'], 'public slices give ready activator IPs')
    t.notOk(rec.endpoints.get('ns/r-00001')?.ready.includes('10.7.7.7:8012'), 'core Endpoints are not read in this mode')
    if (api.fake) t.equal(api.fake.lists('endpoints'), 0, 'core Endpoints are not listed')

    await api.upsert('endpointslices', endpointSlice('ns', 'r-00001', 'r-00001-private-b', [{ ip: '10.0.0.4', ready: false }]))
    t.ok(await waitFor(() => rec.endpoints.get('ns/r-00001')?.notReady.length === 2), 'update of one slice re-merges')
    await api.remove('endpointslices', 'ns', 'r-00001-private-a')
    t.ok(await waitFor(() => rec.endpoints.get('ns/r-00001')?.ready.length === 0), 'removing one slice re-merges')
    t.equal(rec.count('endpointsDeleted'), 0, 'not deleted while slices remain')
    await api.remove('endpointslices', 'ns', 'r-00001-private-b')
    t.ok(await waitFor(() => rec.endpoints.get('ns/r-00001')?.ready[0] === '[fd00::1]:8012'), 'only the IPv6 slice left')
    await api.remove('endpointslices', 'ns', 'r-00001-private-v6')
    t.ok(await waitFor(() => rec.count('endpointsDeleted ns/r-00001') === 1), 'last slice removed: endpoints deleted')
  })

  test('the API server restarts twice mid-test: watches resume, and what changed afterwards is seen', async (t, api) => {
    const { source, rec } = sourceFor(t, api)
    await api.upsert('revisions', revision('ns', 'r-00001'))
    await api.upsert('endpoints', privateEndpoints('ns', 'r-00001', { ready: ['10.0.0.1'] }))
    await api.upsert('services', privateService('ns', 'r-00001', '10.96.0.21'))
    await source.start(rec)
    t.same(rec.endpoints.get('ns/r-00001')?.ready, ['10.0.0.1:8012'])

    await api.restart(300)
    await api.upsert('endpoints', privateEndpoints('ns', 'r-00001', { ready: ['10.0.0.1', '10.0.0.2'] }))
    await api.upsert('revisions', revision('ns', 'r2-00001', { h2c: true }))
    await api.upsert('endpoints', privateEndpoints('ns', 'r2-00001', { h2c: true, ready: ['10.0.1.1'] }))
    await api.upsert('services', privateService('ns', 'r2-00001', '10.96.0.22', { h2c: true }))
    t.ok(await waitFor(() => rec.endpoints.get('ns/r-00001')?.ready.length === 2), 'an Endpoints change after the restart arrives')
    t.ok(await waitFor(() => source.getRevision('ns', 'r2-00001')?.protocol === 'h2c'), 'a Revision created after the restart arrives')
    t.ok(await waitFor(() => rec.endpoints.get('ns/r2-00001')?.ready[0] === '10.0.1.1:8013'), 'with its Endpoints')
    t.ok(await waitFor(() => rec.services.get('ns/r2-00001')?.clusterDest === '10.96.0.22:80'), 'and its private Service')

    await api.restart(300)
    await api.remove('endpoints', 'ns', 'r-00001-private')
    await api.remove('revisions', 'ns', 'r-00001')
    await api.remove('services', 'ns', 'r-00001-private')
    t.ok(await waitFor(() => rec.count('endpointsDeleted ns/r-00001') === 1), 'a deletion after the second restart arrives')
    t.ok(await waitFor(() => rec.count('revisionDeleted ns/r-00001') === 1), 'the Revision deletion too')
    t.ok(await waitFor(() => rec.services.get('ns/r-00001') === null), 'and the Service deletion')
    t.same(rec.endpoints.get('ns/r2-00001')?.ready, ['10.0.1.1:8013'], 'the other revision is untouched')
    t.equal(rec.count('revisionUpserted ns/r-00001'), 1, 'nothing was delivered twice across the restarts')
  })
}

t.test('dropped watch connections: reconnect from the last resourceVersion and catch up, without relisting', async (t) => {
  const { api, source, rec } = await setup(t)
  api.upsert('revisions', revision('ns', 'r-00001'))
  api.upsert('endpoints', privateEndpoints('ns', 'r-00001', { ready: ['10.0.0.1'] }))
  await source.start(rec)
  t.ok(await waitFor(() => api.openWatches() === 3), 'three watches open')
  const lists = api.requests.filter((r) => !r.watch).length

  api.dropWatches('reset')
  api.upsert('endpoints', privateEndpoints('ns', 'r-00001', { ready: ['10.0.0.1', '10.0.0.2'] }))
  api.upsert('revisions', revision('ns', 'r2-00001'))
  t.ok(await waitFor(() => rec.endpoints.get('ns/r-00001')?.ready.length === 2), 'change made while disconnected arrives')
  t.ok(await waitFor(() => source.getRevision('ns', 'r2-00001') !== undefined), 'revision created while disconnected arrives')

  api.dropWatches('end')
  api.remove('endpoints', 'ns', 'r-00001-private')
  t.ok(await waitFor(() => rec.count('endpointsDeleted') === 1), 'deletion after a cleanly ended watch arrives')
  t.ok(await waitFor(() => api.openWatches() === 3), 'watches re-established')
  t.equal(api.requests.filter((r) => !r.watch).length, lists, 'no relist was needed')
  const resumed = api.requests.filter((r) => r.watch && r.kind === 'endpoints').slice(1)
  t.ok(resumed.length >= 2 && resumed.every((r) => Number(r.resourceVersion) > 100), 'watches resumed from a resourceVersion')
})

for (const goneAs of ['event', 'status'] as const) {
  t.test(`410 Gone (${goneAs === 'event' ? 'ERROR watch event' : 'HTTP 410'}): relist and catch up without missing a change`, async (t) => {
    const { api, source, rec } = await setup(t)
    api.goneAs = goneAs
    api.upsert('revisions', revision('ns', 'a-00001'))
    api.upsert('revisions', revision('ns', 'b-00001'))
    api.upsert('endpoints', privateEndpoints('ns', 'a-00001', { ready: ['10.0.0.1'] }))
    api.upsert('endpoints', privateEndpoints('ns', 'b-00001', { ready: ['10.0.0.2'] }))
    await source.start(rec)
    t.ok(await waitFor(() => api.openWatches() === 3))
    const lists = api.lists('endpoints')

    // The API server is unreachable for watches while history is compacted away.
    api.failWatches(503)
    api.dropWatches()
    api.upsert('endpoints', privateEndpoints('ns', 'a-00001', { ready: ['10.0.0.1', '10.0.0.3'] }))
    api.remove('endpoints', 'ns', 'b-00001-private')
    api.remove('revisions', 'ns', 'b-00001')
    api.upsert('endpoints', privateEndpoints('ns', 'c-00001', { ready: ['10.0.0.4'] }))
    api.compact()
    await new Promise((r) => setTimeout(r, 30))
    api.failWatches(undefined)

    t.ok(await waitFor(() => rec.endpoints.get('ns/a-00001')?.ready.length === 2), 'modification seen')
    t.ok(await waitFor(() => rec.count('endpointsDeleted ns/b-00001') === 1), 'deletion seen (relist diff)')
    t.ok(await waitFor(() => rec.count('revisionDeleted ns/b-00001') === 1), 'revision deletion seen (relist diff)')
    t.ok(await waitFor(() => rec.endpoints.has('ns/c-00001')), 'addition seen')
    t.ok(api.gone >= 3, `every watch was refused with 410 (${api.gone})`)
    t.ok(api.lists('endpoints') > lists, 'the collection was relisted')
    t.equal(rec.count('endpointsUpdated ns/a-00001'), 2, 'unchanged objects are not re-delivered by the relist')

    api.upsert('endpoints', privateEndpoints('ns', 'c-00001', { ready: [] }))
    t.ok(await waitFor(() => rec.endpoints.get('ns/c-00001')?.ready.length === 0), 'watching resumes after the relist')
  })
}

t.test('a watch expired mid-stream (ERROR 410) relists; later changes still flow', async (t) => {
  const { api, source, rec } = await setup(t)
  api.upsert('endpoints', privateEndpoints('ns', 'a-00001', { ready: ['10.0.0.1'] }))
  await source.start(rec)
  t.ok(await waitFor(() => api.openWatches() === 3))
  const lists = api.lists('endpoints')
  api.expireWatches()
  t.ok(await waitFor(() => api.lists('endpoints') === lists + 1 && api.openWatches() === 3), 'relisted and watching again')
  api.upsert('endpoints', privateEndpoints('ns', 'a-00001', { ready: ['10.0.0.1', '10.0.0.2'] }))
  t.ok(await waitFor(() => rec.endpoints.get('ns/a-00001')?.ready.length === 2))
})

t.test('bookmarks advance the resourceVersion: reconnecting after compaction needs no relist', async (t) => {
  const { api, source, rec } = await setup(t)
  await source.start(rec)
  t.ok(await waitFor(() => api.openWatches() === 3))
  t.ok(api.requests.filter((r) => r.watch).length === 3, 'watches requested')
  api.tick()
  api.tick()
  api.bookmark()
  await new Promise((r) => setTimeout(r, 30))
  api.compact()
  const lists = api.requests.filter((r) => !r.watch).length
  api.dropWatches('end')
  t.ok(await waitFor(() => api.watches('endpoints') === 2 && api.openWatches() === 3), 'watches resumed')
  t.equal(api.requests.filter((r) => !r.watch).length, lists, 'no relist')
})

t.test('list failures (500) are retried with back-off; start() resolves once the lists succeed', async (t) => {
  const { api, source, rec } = await setup(t)
  api.upsert('revisions', revision('ns', 'r-00001'))
  api.upsert('endpoints', privateEndpoints('ns', 'r-00001', { ready: ['10.0.0.1'] }))
  api.failNextList(500, 'revisions')
  api.failNextList(500, 'revisions')
  api.failNextList(503, 'endpoints')
  const t0 = Date.now()
  await source.start(rec)
  const ms = Date.now() - t0
  t.equal(api.lists('revisions'), 3, 'revisions listed three times')
  t.equal(api.lists('endpoints'), 2, 'endpoints listed twice')
  t.ok(ms >= BACKOFF.initialMs * 3 - 2, `waited with back-off (10 + 20 ms for revisions, then 10 ms): ${ms} ms`)
  t.ok(source.getRevision('ns', 'r-00001'), 'revision delivered')
  t.same(rec.endpoints.get('ns/r-00001')?.ready, ['10.0.0.1:8012'], 'endpoints delivered')
})

t.test('watch failures back off exponentially up to the maximum, then resume', async (t) => {
  const { api, source, rec } = await setup(t)
  await source.start(rec)
  t.ok(await waitFor(() => api.openWatches() === 3))
  api.failWatches(500)
  api.dropWatches()
  const before = api.watches('services')
  await new Promise((r) => setTimeout(r, 250))
  const attempts = api.watches('services') - before
  // 10, 20, 40, 40, 40, 40 ms ... => about 6-8 attempts in 250 ms, not hundreds.
  t.ok(attempts >= 3 && attempts <= 12, `bounded retries: ${attempts}`)
  api.failWatches(undefined)
  api.upsert('services', privateService('ns', 'r-00001', '10.96.0.1'))
  t.ok(await waitFor(() => rec.services.has('ns/r-00001')), 'resumed')
})

t.test('an unanswered list is abandoned after listTimeoutMs and retried; stop() aborts one in flight', async (t) => {
  const api = await FakeKubeApi.start()
  t.teardown(() => api.close())
  const rec = new Recorder()
  api.upsert('revisions', revision('ns', 'r-00001'))
  const a = new KubernetesSource({ kubeConfig: kubeConfigFor(api), log: silent, backoff: BACKOFF, listTimeoutMs: 50 })
  api.stallLists(true)
  const started = a.start(rec)
  t.ok(await waitFor(() => api.lists('revisions') >= 2), 'the stalled list was given up and retried')
  api.stallLists(false)
  await started
  t.ok(a.getRevision('ns', 'r-00001'), 'synced once the server answers')
  await a.stop()

  const b = new KubernetesSource({ kubeConfig: kubeConfigFor(api), log: silent, backoff: BACKOFF })
  api.stallLists(true)
  const pending = b.start(rec)
  t.ok(await waitFor(() => api.stalledLists() === 1), 'list in flight')
  const t0 = Date.now()
  await b.stop()
  await pending
  t.ok(Date.now() - t0 < 200, 'stop() does not wait for the list')
  t.ok(await waitFor(() => api.stalledLists() === 0), 'the list request was aborted')
})

t.test('stop() ends every watch and request; start() pending on failing lists resolves', async (t) => {
  const api = await FakeKubeApi.start()
  t.teardown(() => api.close())
  const rec = new Recorder()
  const a = new KubernetesSource({ kubeConfig: kubeConfigFor(api), log: silent, backoff: BACKOFF })
  await a.start(rec)
  t.ok(await waitFor(() => api.openWatches() === 3), 'watches open')
  await a.stop()
  t.ok(await waitFor(() => api.openWatches() === 0), 'server sees every watch closed')
  const n = api.requests.length
  await new Promise((r) => setTimeout(r, 60))
  t.equal(api.requests.length, n, 'no requests after stop()')

  const b = new KubernetesSource({ kubeConfig: kubeConfigFor(api), log: silent, backoff: { initialMs: 1000, maxMs: 1000 } })
  for (let i = 0; i < 5; i++) api.failNextList(500, 'revisions')
  const started = b.start(rec)
  t.ok(await waitFor(() => api.lists('revisions') === 1), 'first list failed')
  const t0 = Date.now()
  await b.stop()
  await started
  t.ok(Date.now() - t0 < 500, 'stop() cuts the back-off short and start() resolves')
  await new Promise((r) => setTimeout(r, 30))
  t.equal(api.openWatches(), 0, 'nothing was left running')
})
