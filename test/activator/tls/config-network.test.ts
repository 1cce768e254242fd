// With SLUICE_SYSTEM_INTERNAL_TLS unset, config-network decides at start, as
// Knative's activator reads it: `system-internal-tls: Enabled` (or the legacy
// `internal-encryption: "true"`) serves the TLS port and dials queue-proxies
// over TLS; `Disabled` or no key leaves TLS off; a bad value is logged and TLS
// stays off. On the fake Kubernetes API and, when SLUICE_KUBE_APISERVER_BIN
// is set, a real kube-apiserver.

import t from 'tap'
import https from 'node:https'
import { kubeApis } from '../../helpers/kube-apis.ts'
import { makeCa } from './certs.ts'
import { REVISION, SERVER_NAME, startPair } from './harness.ts'

function get(port: number, ca: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const headers = { host: 'hello.default.example.com', 'knative-serving-revision': REVISION, 'knative-serving-namespace': 'default' }
    https.get({ host: '127.0.0.1', port, path: '/cn', ca, servername: SERVER_NAME, headers, agent: false }, (res) => {
      let body = ''
      res.setEncoding('utf8').on('data', (d: string) => { body += d })
      res.on('end', () => resolve({ status: res.statusCode!, body }))
    }).on('error', reject)
  })
}

for (const backend of await kubeApis(t)) {
  for (const data of [{ 'system-internal-tls': 'Enabled' }, { 'internal-encryption': 'true' }] as Record<string, string>[]) {
    t.test(`[${backend.name}] config-network ${JSON.stringify(data)}: TLS on both hops`, { skip: backend.skip }, async (t) => {
      const ca = makeCa('ca-cn')
      const p = await startPair(await backend.use(t), ca, ca, { configNetwork: data })
      t.teardown(() => p.stop())
      t.ok(p.httpsPort > 0, 'the TLS port is served')
      t.same(await get(p.httpsPort, ca.cert), { status: 200, body: 'app /cn' })
      t.same(p.seen.filter((s) => !s.probe).map((s) => s.tls), [true], 'the queue-proxy got it over TLS')
      t.ok(p.logs().some((l) => l.msg === 'Knative Internal TLS is enabled' || l.message === 'Knative Internal TLS is enabled'), 'logged')
    })
  }

  for (const [data, logged] of [[{ 'system-internal-tls': 'Disabled' }, false], [{}, false], [{ 'system-internal-tls': 'sometimes' }, true]] as const) {
    t.test(`[${backend.name}] config-network ${JSON.stringify(data)}: TLS off`, { skip: backend.skip }, async (t) => {
      const ca = makeCa('ca-off')
      const p = await startPair(await backend.use(t), ca, ca, { configNetwork: { ...data } })
      t.teardown(() => p.stop())
      t.equal(p.httpsPort, 0, 'no TLS port')
      t.equal(p.activator.ctx.upstreams.tls ?? null, null, 'queue-proxies dialled in plain text')
      const invalid = p.logs().some((l) => String(l.msg ?? l.message) === 'invalid system-internal-tls; internal TLS stays off')
      t.equal(invalid, logged, logged ? 'the bad value is logged' : 'nothing logged as invalid')
    })
  }
}
