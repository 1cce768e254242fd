// The activator as it runs in a pod (main.js, from the bundles) with
// SLUICE_SYSTEM_INTERNAL_TLS=enabled: the Secret and the revision come from
// the Kubernetes API (through KUBECONFIG), a request goes over TLS to the
// activator and over TLS to a real queue-proxy. On the fake API (the pod on
// 127.0.0.1) and, when SLUICE_KUBE_APISERVER_BIN is set, a real
// kube-apiserver: then this file runs again inside a network namespace where
// the pod has an address the real server accepts in Endpoints (netns-tests.ts).

import t from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import https from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { activatorEnv, logLines, spawnActivator } from '../../helpers/activator.ts'
import { privateEndpoints, revision } from '../../helpers/knative-objects.ts'
import { kubeApis } from '../../helpers/kube-apis.ts'
import { netnsSkip, relayedBackend, runInNetns } from '../../helpers/netns-tests.ts'
import { ensureStopped } from '../../helpers/process.ts'
import { close, knativeEnv, sleep, startApp, startQueueProxy } from '../../helpers/servers.ts'
import { startTestAutoscaler } from '../../helpers/test-autoscaler.ts'
import { issue, makeCa, routingSecret } from './certs.ts'

const SERVER_NAME = 'data-plane.knative.dev'
const POD_IP = { fake: '127.0.0.1', real: '10.244.0.1' }

const relayed = relayedBackend()
for (const backend of relayed ? [relayed] : await kubeApis(t)) {
  if (backend.name === 'real' && !relayed) {
    t.test('[real] the case above, in a network namespace', { skip: netnsSkip(backend) }, (t) => runInNetns(t, backend, import.meta.filename, [POD_IP.real]))
    continue
  }
  t.test(`[${backend.name}] main.js with internal TLS: Secret from the API, TLS on both hops`, async (t) => {
    const kube = await backend.use(t)
    const podIP = POD_IP[kube.name]
    const ca = makeCa('ca-process')
    const app = await startApp((req, res) => res.end(`app ${req.url}`))
    const dir = mkdtempSync(join(tmpdir(), 'sluice-tls-process-'))
    const leaf = issue(ca, 'queue-proxy', ['kn-user-default', SERVER_NAME])
    writeFileSync(join(dir, 'tls.crt'), leaf.cert)
    writeFileSync(join(dir, 'tls.key'), leaf.key)
    const qp = await startQueueProxy(knativeEnv(app.port, { SERVING_REVISION: 'hello-00001', SERVING_POD_IP: podIP, SLUICE_BIND_ADDRESS: podIP }), { certsDir: dir })
    t.teardown(async () => {
      await qp.stop()
      await close(app.server)
      rmSync(dir, { recursive: true, force: true })
    })
    kube.writeKubeconfig(join(dir, 'kubeconfig'))
    await kube.upsert('secrets', routingSecret('knative-serving', ca.cert, issue(ca, 'activator', ['kn-routing', SERVER_NAME])))
    await kube.upsert('revisions', revision('default', 'hello-00001'))
    await kube.upsert('endpoints', privateEndpoints('default', 'hello-00001', {
      subsets: [{ addresses: [{ ip: podIP }], ports: [{ name: 'http', port: qp.ports.serving, protocol: 'TCP' }] }],
    }))

    // A listening autoscaler: the activator gives an absent one a second at start.
    const autoscaler = await startTestAutoscaler()
    t.teardown(() => autoscaler.stop())
    const p = await spawnActivator(activatorEnv({
      SLUICE_AUTOSCALER_URL: autoscaler.url,
      SLUICE_ENDPOINT_SOURCE: 'kubernetes',
      KUBECONFIG: join(dir, 'kubeconfig'),
      SLUICE_SYSTEM_INTERNAL_TLS: 'enabled',
      SLUICE_HTTPS_PORT: '0',
      SLUICE_QUEUE_TLS_PORT: String(qp.ports.tls),
    }))
    t.teardown(() => ensureStopped(p))
    const lines = logLines(p.stdout())
    const httpsPort = (lines.find((l) => l.message === 'activator started')?.ports as { https?: number }).https
    t.type(httpsPort, 'number', 'the TLS port is listed among the ports')
    t.ok(lines.some((l) => l.message === 'Knative Internal TLS is enabled'), 'the start-up log says TLS is on')
    t.ok(lines.some((l) => l.message === 'internal TLS certificates loaded'), 'the Secret was read')
    if (kube.fake) {
      // The watch follows the first list.
      for (let i = 0; kube.fake.watches('secrets') === 0 && i < 250; i++) await sleep(20)
      t.ok(kube.fake.lists('secrets') >= 1 && kube.fake.watches('secrets') >= 1, 'the Secret is listed and watched')
    }

    const r = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      https.get({
        host: '127.0.0.1', port: httpsPort, path: '/tls', ca: ca.cert, servername: SERVER_NAME, agent: false,
        headers: { 'knative-serving-revision': 'hello-00001', 'knative-serving-namespace': 'default' },
      }, (res) => {
        let body = ''
        res.setEncoding('utf8').on('data', (d: string) => { body += d })
        res.on('end', () => resolve({ status: res.statusCode!, body }))
      }).on('error', reject)
    })
    t.same(r, { status: 200, body: 'app /tls' })
  })
}
