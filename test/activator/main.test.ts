// The activator process (main.ts) spawned for real: configuration errors exit
// 1 naming the variable; SIGTERM fails probes at once, serves through the
// drain period, lets in-flight requests finish and exits 0 (spec §2.14); the
// local endpoint source is driven over its HTTP API; the Kubernetes source
// reads the fake API server through KUBECONFIG and, when
// SLUICE_KUBE_APISERVER_BIN is set, a real one (the pod and the activator then
// run in a network namespace of the test's own), across an API-server restart.
import t, { type Test } from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { close, knativeEnv, request, sleep, startApp } from '../helpers/servers.ts'
import { ensureStopped, MAIN_JS } from '../helpers/process.ts'
import { startTestAutoscaler, type TestAutoscaler } from '../helpers/test-autoscaler.ts'
import { revision } from '../helpers/knative-objects.ts'
import { kubeApis, type KubeApi } from '../helpers/kube-apis.ts'
import { NetNs, netnsUnavailable } from '../helpers/netns.ts'
import { ACTIVATOR_MAIN_JS, activatorEnv, logLines, runActivatorMain, spawnActivator, startPod, type ActivatorProcess } from '../helpers/activator.ts'

t.jobs = 4

const KUBELET = { 'User-Agent': 'kube-probe/1.30' }
const ROUTE = { 'Knative-Serving-Namespace': 'default', 'Knative-Serving-Revision': 'hello-00001' }
type Teardown = { teardown(fn: () => Promise<void> | void): void }

async function autoscalerFor(t: Teardown): Promise<TestAutoscaler> {
  const a = await startTestAutoscaler()
  t.teardown(() => a.stop())
  return a
}

async function spawnWith(t: Teardown, autoscaler: TestAutoscaler, extra: Record<string, string>): Promise<ActivatorProcess> {
  const p = await spawnActivator(activatorEnv({ SLUICE_AUTOSCALER_URL: autoscaler.url, ...extra }))
  t.teardown(() => ensureStopped(p))
  return p
}

/** An HTTP call to the local endpoint API with a JSON body. */
async function api(p: ActivatorProcess, method: string, path: string, body?: unknown) {
  const r = await request(`http://127.0.0.1:${p.ports.localApi}${path}`, {
    method,
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  })
  return { status: r.status, json: r.body === '' ? null : JSON.parse(r.body) as unknown }
}

t.test('missing POD_NAME: exit 1, stderr names the variable', async (t) => {
  const env = activatorEnv()
  delete env.POD_NAME
  const run = runActivatorMain(env)
  t.teardown(() => ensureStopped(run))
  const exit = await run.exited
  t.equal(exit.code, 1)
  t.match(run.stderr(), /invalid configuration: POD_NAME: required environment variable is not set/)
})

t.test('bad SLUICE_LB_POLICY: exit 1, stderr names it and the choices', async (t) => {
  const run = runActivatorMain(activatorEnv({ SLUICE_LB_POLICY: 'fastest' }))
  t.teardown(() => ensureStopped(run))
  t.equal((await run.exited).code, 1)
  t.match(run.stderr(), /SLUICE_LB_POLICY: must be "knative" or one of .*first-available.*got "fastest"/)
})

t.test('bad SLUICE_AUTOSCALER_URL, SLUICE_ENDPOINT_SOURCE, SLUICE_SHED_ON_DEADLINE_ESTIMATE: exit 1 naming them', async (t) => {
  for (const [name, value] of [['SLUICE_AUTOSCALER_URL', 'http://autoscaler:8080'], ['SLUICE_ENDPOINT_SOURCE', 'etcd'], ['SLUICE_SHED_ON_DEADLINE_ESTIMATE', 'yes']] as const) {
    const run = runActivatorMain(activatorEnv({ [name]: value }))
    t.teardown(() => ensureStopped(run))
    t.equal((await run.exited).code, 1, name)
    t.match(run.stderr(), new RegExp(`invalid configuration: ${name}: `))
  }
})

t.test('local endpoint API over HTTP: revisions and endpoints drive routing', async (t) => {
  const autoscaler = await autoscalerFor(t)
  const app = await startApp((req, res) => res.end(`app ${req.url}`))
  const pod = await startPod(app.port)
  t.teardown(async () => {
    await pod.stop()
    await close(app.server)
  })
  const p = await spawnWith(t, autoscaler, {})
  t.ok(p.ports.localApi !== null && p.ports.localApi > 0, `local API port logged (${p.ports.localApi})`)

  t.equal((await request(`${p.url}/`, { headers: ROUTE })).status, 404, 'unknown before it is pushed')
  t.same(await api(p, 'PUT', '/revisions/default/hello-00001', { containerConcurrency: 0, protocol: 'http1', timeoutSeconds: 5 }), { status: 200, json: {} })
  const listed = await api(p, 'GET', '/revisions')
  t.match(listed.json, [{ namespace: 'default', name: 'hello-00001', timeoutSeconds: 5, serviceName: '' }])

  const waiting = request(`${p.url}/cold`, { headers: ROUTE })
  await sleep(100)
  t.same(await api(p, 'PUT', '/endpoints/default/hello-00001', { ready: [], notReady: [pod.dest] }), { status: 200, json: {} })
  const r = await waiting
  t.equal(r.status, 200, 'the waiting request is released once the pod is pushed')
  t.equal(r.body, 'app /cold')

  const badJson = await api(p, 'PUT', '/endpoints/default/hello-00001', '{nope')
  t.equal(badJson.status, 400)
  t.match(badJson.json, { error: /invalid JSON/ })
  t.equal((await api(p, 'POST', '/revisions/default/hello-00001', {})).status, 405)
  t.equal((await api(p, 'GET', '/nothing/here')).status, 404)
  t.equal((await request(`${p.url}/still`, { headers: ROUTE })).status, 200, 'bad requests change nothing')

  t.same(await api(p, 'DELETE', '/revisions/default/hello-00001'), { status: 200, json: {} })
  const gone = await request(`${p.url}/`, { headers: ROUTE })
  t.equal(gone.status, 404)
  t.equal(gone.body, 'Error getting active endpoint: revision.serving.knative.dev "hello-00001" not found\n')
})

// Known bug in endpoints/local-source.ts: validation errors are thrown inside the
// fulfilment handler of readJson(...).then(ok, fail), so `fail` never sees them;
// the rejection is unhandled and the process dies (Node's default).
t.test('local endpoint API: well-formed JSON that fails validation -> 400, the process lives on', async (t) => {
  const autoscaler = await autoscalerFor(t)
  const p = await spawnWith(t, autoscaler, {})
  const badDest = await api(p, 'PUT', '/endpoints/default/hello-00001', { ready: ['not a dest'] })
  t.equal(badDest.status, 400)
  t.match(badDest.json, { error: /invalid destination "not a dest"/ })
  const badRev = await api(p, 'PUT', '/revisions/default/bad-00001', { containerConcurrency: -1, protocol: 'http1', timeoutSeconds: 5 })
  t.equal(badRev.status, 400)
  t.equal((await request(`${p.url}/`, { headers: { 'User-Agent': 'kube-probe/1.30' } })).status, 200, 'still serving')
})

t.test('SIGTERM: probes fail at once, requests served during the drain, in-flight request completes, exit 0', async (t) => {
  const autoscaler = await autoscalerFor(t)
  const app = await startApp((req, res) => {
    if (req.url === '/slow') setTimeout(() => res.end('slow done'), 800)
    else res.end(`app ${req.url}`)
  })
  const pod = await startPod(app.port)
  t.teardown(async () => {
    await pod.stop()
    await close(app.server)
  })
  const p = await spawnWith(t, autoscaler, { SLUICE_DRAIN_PERIOD: '300ms' })
  await api(p, 'PUT', '/revisions/default/hello-00001', { containerConcurrency: 0, protocol: 'http1', timeoutSeconds: 30 })
  await api(p, 'PUT', '/endpoints/default/hello-00001', { ready: [pod.dest], notReady: [] })
  t.equal((await request(`${p.url}/`, { headers: KUBELET })).status, 200, 'Ready before the signal')
  t.equal((await request(`${p.url}/warm`, { headers: ROUTE })).status, 200)

  const slow = request(`${p.url}/slow`, { headers: ROUTE })
  await sleep(50)
  const signalled = performance.now()
  p.child.kill('SIGTERM')
  let probe = await request(`${p.url}/`, { headers: KUBELET })
  while (probe.status === 200 && performance.now() - signalled < 200) probe = await request(`${p.url}/`, { headers: KUBELET })
  t.ok(performance.now() - signalled < 200, 'probes fail at once')
  t.equal(probe.status, 500)
  t.equal(probe.body, 'received SIGTERM from kubelet\n')
  const during = await request(`${p.url}/during`, { headers: ROUTE })
  t.equal(during.status, 200, 'a new request during the drain period is served')
  t.equal(during.body, 'app /during')
  const s = await slow
  t.equal(s.status, 200, 'the in-flight request completes')
  t.equal(s.body, 'slow done')
  const exit = await p.exited
  t.equal(exit.code, 0)
  t.ok(exit.at - signalled >= 300, `exited after the drain period (${(exit.at - signalled).toFixed(0)} ms)`)
  t.match(p.stdout(), /shutdown complete/)
})

t.test('a second signal during the drain exits 1 at once', async (t) => {
  const autoscaler = await autoscalerFor(t)
  const p = await spawnWith(t, autoscaler, { SLUICE_DRAIN_PERIOD: '10s' })
  p.child.kill('SIGTERM')
  await sleep(100)
  const second = performance.now()
  p.child.kill('SIGINT')
  const exit = await p.exited
  t.equal(exit.code, 1)
  t.ok(exit.at - second < 1000, 'without waiting for the drain period')
})

/** Where the Kubernetes case runs: its pod and the activator process, and the URL the test sends to. */
interface KubeSite {
  /** The pod as its Endpoints list it. */
  podIP: string
  podPort: number
  kubeconfig: string
  spawn(env: Record<string, string>): Promise<{ url: string; ports: ActivatorProcess['ports'] }>
  /** What the pod's processes wrote, shown when an assertion fails. */
  output(): string
}

/** On the host's loopback: fine for the fake API, which takes 127.0.0.1 in Endpoints. */
async function hostSite(t: Test, kube: KubeApi, autoscaler: TestAutoscaler): Promise<KubeSite> {
  const app = await startApp((req, res) => res.end(`app ${req.url} host=${req.headers.host}`))
  const pod = await startPod(app.port)
  const dir = mkdtempSync(join(tmpdir(), 'sluice-kubeconfig-'))
  t.teardown(async () => {
    await pod.stop()
    await close(app.server)
    rmSync(dir, { recursive: true, force: true })
  })
  const kubeconfig = join(dir, 'config')
  kube.writeKubeconfig(kubeconfig)
  return { podIP: '127.0.0.1', podPort: pod.qp.ports.serving, kubeconfig, spawn: (env) => spawnWith(t, autoscaler, env), output: () => '' }
}

/**
 * In a network namespace of the test's own: the real API server refuses
 * loopback addresses in Endpoints, so the pod (app + queue-proxy on Knative's
 * ports) gets 10.244.0.1 there, the activator runs beside it, and the API
 * server, the autoscaler and the activator's port cross over through sockets.
 */
async function netnsSite(t: Test, kube: KubeApi, autoscaler: TestAutoscaler): Promise<KubeSite> {
  const ns = await NetNs.create()
  t.teardown(() => ns.delete())
  const podIP = '10.244.0.1'
  await ns.addAddress(podIP)
  const app = ns.spawn(process.execPath, ['-e', "require('http').createServer((q, s) => s.end(`app ${q.url} host=${q.headers.host}`)).listen(8080, '127.0.0.1')"], {})
  const qp = ns.spawn(process.execPath, [MAIN_JS], knativeEnv(8080, {
    SERVING_POD_IP: podIP, SLUICE_BIND_ADDRESS: podIP, QUEUE_SERVING_PORT: '8012', QUEUE_SERVING_TLS_PORT: '8112',
    SLUICE_ADMIN_PORT: '8022', SLUICE_METRICS_PORT: '9090', SLUICE_USER_METRICS_PORT: '9091', SLUICE_DRAIN_QUIET_PERIOD: '0s',
  }))
  await ns.forwardIn(Number(new URL(kube.url).port))
  const autoscalerPort = Number(new URL(autoscaler.url).port)
  await ns.forwardIn(autoscalerPort)
  const dir = mkdtempSync(join(tmpdir(), 'sluice-kubeconfig-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const kubeconfig = join(dir, 'config')
  kube.writeKubeconfig(kubeconfig)
  return {
    podIP,
    podPort: 8012,
    kubeconfig,
    output: () => `app: ${app.stderr()}\nqueue-proxy: ${qp.stderr()}${qp.stdout()}`,
    async spawn(env) {
      const p = ns.spawn(process.execPath, [ACTIVATOR_MAIN_JS], activatorEnv({ SLUICE_AUTOSCALER_URL: autoscaler.url, ...env, SLUICE_LOG_LEVEL: 'info' }))
      t.teardown(() => ensureStopped(p))
      const deadline = Date.now() + 20_000
      for (;;) {
        const lines = logLines(p.stdout())
        const started = lines.find((l) => l.message === 'activator started')
        if (started !== undefined) {
          const ports = started.ports as Omit<ActivatorProcess['ports'], 'localApi'>
          const localApi = lines.find((l) => l.message === 'local endpoint API listening')?.port as number | undefined
          return { url: `http://127.0.0.1:${await ns.forwardOut(ports.http)}`, ports: { ...ports, localApi: localApi ?? null } }
        }
        if (p.child.exitCode !== null || Date.now() > deadline) throw new Error(`activator in ${ns.name} did not start: ${p.stderr()}${p.stdout()}`)
        await sleep(20)
      }
    },
  }
}

for (const backend of await kubeApis(t)) {
  // The real API server needs the pod in a network namespace (see netnsSite).
  const netns = backend.name === 'real' ? netnsUnavailable() : undefined
  const skip = backend.skip || (netns === undefined ? false : `real kube-apiserver: ${netns}`)
  t.test(`[${backend.name}] SLUICE_ENDPOINT_SOURCE=kubernetes with KUBECONFIG: revisions and endpoints from the API, watched across an API-server restart`, { skip }, async (t) => {
    const kube = await backend.use(t)
    const autoscaler = await autoscalerFor(t)
    const site = kube.name === 'real' ? await netnsSite(t, kube, autoscaler) : await hostSite(t, kube, autoscaler)
    await kube.upsert('revisions', revision('default', 'hello-00001', { timeoutSeconds: 10 }))
    const endpoints = (notReady: string[]) => ({
      apiVersion: 'v1',
      kind: 'Endpoints',
      metadata: {
        name: 'hello-00001-private',
        namespace: 'default',
        labels: {
          'networking.internal.knative.dev/serviceType': 'Private',
          'serving.knative.dev/revision': 'hello-00001',
          'serving.knative.dev/revisionUID': 'uid-default-hello-00001',
        },
      },
      // The pod's queue-proxy port, named http as the private service's target port is.
      subsets: notReady.length === 0 ? [] : [{ notReadyAddresses: notReady.map((ip) => ({ ip })), ports: [{ name: 'http', port: site.podPort, protocol: 'TCP' }] }],
    })
    await kube.upsert('endpoints', endpoints([]))

    const p = await site.spawn({ SLUICE_ENDPOINT_SOURCE: 'kubernetes', KUBECONFIG: site.kubeconfig })
    t.equal(p.ports.localApi, null, 'no local API in kubernetes mode')
    if (kube.fake) t.ok(kube.fake.lists('revisions') >= 1 && kube.fake.watches('revisions') >= 1, 'revisions listed and watched')

    const waiting = request(`${p.url}/cold`, { headers: { Host: 'hello-00001.default.svc.cluster.local' } })
    await sleep(100)
    await kube.upsert('endpoints', endpoints([site.podIP]))
    const r = await waiting
    t.equal(r.status, 200, 'released when the watched Endpoints list the pod', { output: site.output() })
    t.equal(r.body, 'app /cold host=hello-00001.default.svc.cluster.local')
    const unknown = await request(`${p.url}/`, { headers: { 'Knative-Serving-Namespace': 'default', 'Knative-Serving-Revision': 'other-00001' } })
    t.equal(unknown.status, 404)

    // The activator's watches must resume: a revision created after the restart is served.
    await kube.restart(300)
    await kube.upsert('revisions', revision('default', 'world-00001', { timeoutSeconds: 10 }))
    const world = { Host: 'world-00001.default.svc.cluster.local' }
    const worldEndpoints = endpoints([site.podIP])
    worldEndpoints.metadata.name = 'world-00001-private'
    worldEndpoints.metadata.labels['serving.knative.dev/revision'] = 'world-00001'
    worldEndpoints.metadata.labels['serving.knative.dev/revisionUID'] = 'uid-default-world-00001'
    await kube.upsert('endpoints', worldEndpoints)
    // The activator's own back-off (1 s doubling) decides when it reconnects: allow for it.
    let served = await request(`${p.url}/after-restart`, { headers: world })
    for (const end = Date.now() + 30_000; served.status === 404 && Date.now() < end;) {
      await sleep(50)
      served = await request(`${p.url}/after-restart`, { headers: world })
    }
    t.equal(served.status, 200, 'a revision created after the API-server restart is served')
    t.equal(served.body, 'app /after-restart host=world-00001.default.svc.cluster.local')

    await kube.remove('revisions', 'default', 'hello-00001')
    let after = await request(`${p.url}/`, { headers: ROUTE })
    for (const end = Date.now() + 10_000; after.status !== 404 && Date.now() < end;) {
      await sleep(20)
      after = await request(`${p.url}/`, { headers: ROUTE })
    }
    t.equal(after.status, 404, 'a deleted revision is gone')
  })
}
