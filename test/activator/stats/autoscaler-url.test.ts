// Where the activator dials the autoscaler (spec §2.2 step 9, §2.11):
// SLUICE_AUTOSCALER_URL, else ws://autoscaler.<SYSTEM_NAMESPACE>.svc.<domain>:8080
// with the cluster domain from CLUSTER_DOMAIN, resolv.conf's search line, or
// cluster.local (knative.dev/pkg network.GetClusterDomainName).
import t from 'tap'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { EnvError } from '@sluice/core/env'
import { autoscalerUrl, clusterDomainFromResolvConf, clusterDomainName } from '@sluice/activator/stats/autoscaler-url'

const dir = mkdtempSync(join(tmpdir(), 'sluice-resolv-'))
let n = 0
function resolvConf(text: string): string {
  const p = join(dir, `resolv-${n++}.conf`)
  writeFileSync(p, text)
  return p
}

function errorOf(fn: () => unknown): unknown {
  try {
    fn()
  } catch (err) {
    return err
  }
  return undefined
}

const POD_RESOLV = 'search knative-serving.svc.example.org svc.example.org example.org\nnameserver 10.96.0.10\noptions ndots:5\n'

t.test('builds the Knative URL from SYSTEM_NAMESPACE and the resolv.conf search domain', async (t) => {
  t.equal(
    autoscalerUrl({ SYSTEM_NAMESPACE: 'knative-serving' }, { resolvConfPath: resolvConf(POD_RESOLV) }),
    'ws://autoscaler.knative-serving.svc.example.org:8080',
  )
})

t.test('CLUSTER_DOMAIN takes precedence over resolv.conf', async (t) => {
  t.equal(
    autoscalerUrl({ SYSTEM_NAMESPACE: 'ks', CLUSTER_DOMAIN: 'corp.internal' }, { resolvConfPath: resolvConf(POD_RESOLV) }),
    'ws://autoscaler.ks.svc.corp.internal:8080',
  )
})

t.test('falls back to cluster.local without a svc. search entry or without resolv.conf', async (t) => {
  t.equal(clusterDomainName({}, resolvConf('search example.org\nnameserver 1.1.1.1\n')), 'cluster.local')
  t.equal(clusterDomainName({}, join(dir, 'missing.conf')), 'cluster.local')
  t.equal(autoscalerUrl({ SYSTEM_NAMESPACE: 'ks' }, { resolvConfPath: join(dir, 'missing.conf') }), 'ws://autoscaler.ks.svc.cluster.local:8080')
  t.equal(clusterDomainName({ CLUSTER_DOMAIN: '' }, join(dir, 'missing.conf')), 'cluster.local', 'an empty CLUSTER_DOMAIN counts as unset')
})

t.test('resolv.conf parsing: first svc. entry of a search line, trailing dot dropped', async (t) => {
  t.equal(clusterDomainFromResolvConf('search ns.svc.cluster.local svc.cluster.local cluster.local\n'), 'cluster.local')
  t.equal(clusterDomainFromResolvConf('search svc.example.org.\n'), 'example.org')
  t.equal(clusterDomainFromResolvConf('nameserver 1.1.1.1\nsearch\tns.svc.a.b\tsvc.a.b\n'), 'a.b', 'tab separated')
  t.equal(clusterDomainFromResolvConf('search svc.first.org\nsearch svc.second.org\n'), 'first.org')
  t.equal(clusterDomainFromResolvConf('# search svc.commented.org\ndomain svc.x.org\n'), undefined, 'only search lines')
  t.equal(clusterDomainFromResolvConf('search svc.\n'), undefined, 'an empty domain is no domain')
})

t.test('SLUICE_AUTOSCALER_URL is used as given; SYSTEM_NAMESPACE is then not needed', async (t) => {
  t.equal(autoscalerUrl({ SLUICE_AUTOSCALER_URL: 'ws://127.0.0.1:18080' }), 'ws://127.0.0.1:18080')
  t.equal(autoscalerUrl({ SLUICE_AUTOSCALER_URL: 'wss://autoscaler.example:443/stats', SYSTEM_NAMESPACE: 'ks' }), 'wss://autoscaler.example:443/stats')
})

t.test('a SLUICE_AUTOSCALER_URL that is not ws:// or wss:// is an error naming the variable', async (t) => {
  for (const bad of ['http://autoscaler:8080', 'autoscaler:8080', 'not a url']) {
    const err = errorOf(() => autoscalerUrl({ SLUICE_AUTOSCALER_URL: bad, SYSTEM_NAMESPACE: 'ks' }))
    t.ok(err instanceof EnvError, bad)
    t.equal((err as EnvError).variable, 'SLUICE_AUTOSCALER_URL')
    t.match((err as EnvError).message, /^SLUICE_AUTOSCALER_URL: .*ws:\/\/|^SLUICE_AUTOSCALER_URL: not a URL/)
  }
})

t.test('without an override, a missing or empty SYSTEM_NAMESPACE is an error naming it', async (t) => {
  for (const env of [{}, { SYSTEM_NAMESPACE: '' }]) {
    const err = errorOf(() => autoscalerUrl(env, { resolvConfPath: resolvConf(POD_RESOLV) }))
    t.ok(err instanceof EnvError)
    t.equal((err as EnvError).variable, 'SYSTEM_NAMESPACE')
  }
})
