// The activator as it runs in a pod (main.js, from the bundles) with
// SLUICE_SYSTEM_INTERNAL_TLS=enabled: the Secret and the revision come from
// the Kubernetes API (fake, through KUBECONFIG), a request goes over TLS to
// the activator and over TLS to a real queue-proxy.

import t from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import https from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { activatorEnv, logLines, spawnActivator } from '../../helpers/activator.ts'
import { FakeKubeApi, writeKubeconfigFor } from '../../helpers/fake-kube-api.ts'
import { privateEndpoints, revision } from '../../helpers/knative-objects.ts'
import { ensureStopped } from '../../helpers/process.ts'
import { close, knativeEnv, sleep, startApp, startQueueProxy } from '../../helpers/servers.ts'
import { issue, makeCa, routingSecret } from './certs.ts'

const SERVER_NAME = 'data-plane.knative.dev'

t.test('main.js with internal TLS: Secret from the API, TLS on both hops', async (t) => {
  const ca = makeCa('ca-process')
  const kube = await FakeKubeApi.start()
  const app = await startApp((req, res) => res.end(`app ${req.url}`))
  const dir = mkdtempSync(join(tmpdir(), 'sluice-tls-process-'))
  const leaf = issue(ca, 'queue-proxy', ['kn-user-default', SERVER_NAME])
  writeFileSync(join(dir, 'tls.crt'), leaf.cert)
  writeFileSync(join(dir, 'tls.key'), leaf.key)
  const qp = await startQueueProxy(knativeEnv(app.port, { SERVING_REVISION: 'hello-00001' }), { certsDir: dir })
  t.teardown(async () => {
    await qp.stop()
    await close(app.server)
    await kube.close()
    rmSync(dir, { recursive: true, force: true })
  })
  writeKubeconfigFor(kube, join(dir, 'kubeconfig'))
  kube.upsert('secrets', routingSecret('knative-serving', ca.cert, issue(ca, 'activator', ['kn-routing', SERVER_NAME])))
  kube.upsert('revisions', revision('default', 'hello-00001'))
  kube.upsert('endpoints', privateEndpoints('default', 'hello-00001', {
    subsets: [{ addresses: [{ ip: '127.0.0.1' }], ports: [{ name: 'http', port: qp.ports.serving, protocol: 'TCP' }] }],
  }))

  const p = await spawnActivator(activatorEnv({
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
  // The watch follows the first list.
  for (let i = 0; kube.watches('secrets') === 0 && i < 250; i++) await sleep(20)
  t.ok(kube.lists('secrets') >= 1 && kube.watches('secrets') >= 1, 'the Secret is listed and watched')

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
