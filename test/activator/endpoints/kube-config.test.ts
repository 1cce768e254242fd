// loadKubeConfig: KUBECONFIG (kubectl merge rules), then in-cluster, then ~/.kube/config.

import t from 'tap'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { KubeConfig } from '@kubernetes/client-node'
import { loadKubeConfig } from '@sluice/activator/endpoints/kube-config'

function kubeconfig(o: { current?: string; clusters?: [string, string][]; users?: [string, string][]; contexts?: [string, string, string][] }): string {
  const lines = ['apiVersion: v1', 'kind: Config']
  if (o.current) lines.push(`current-context: ${o.current}`)
  lines.push('clusters:')
  for (const [name, server] of o.clusters ?? []) lines.push(`- name: ${name}`, '  cluster:', `    server: ${server}`, '    certificate-authority: ca.pem')
  lines.push('users:')
  for (const [name, token] of o.users ?? []) lines.push(`- name: ${name}`, '  user:', `    token: ${token}`)
  lines.push('contexts:')
  for (const [name, cluster, user] of o.contexts ?? []) lines.push(`- name: ${name}`, '  context:', `    cluster: ${cluster}`, `    user: ${user}`)
  return lines.join('\n') + '\n'
}

async function authHeader(kc: KubeConfig): Promise<string | undefined> {
  const opts: { headers?: Record<string, string> } = {}
  await kc.applyToHTTPSOptions(opts)
  return opts.headers?.Authorization
}

function serviceAccount(dir: string, files: { token?: string; ca?: boolean; namespace?: string }): string {
  const sa = join(dir, 'sa')
  mkdirSync(sa, { recursive: true })
  if (files.token !== undefined) writeFileSync(join(sa, 'token'), files.token)
  if (files.ca) writeFileSync(join(sa, 'ca.crt'), 'not really a cert')
  if (files.namespace !== undefined) writeFileSync(join(sa, 'namespace'), files.namespace)
  return sa
}

const IN_CLUSTER_ENV = { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' }

t.test('in-cluster: https to KUBERNETES_SERVICE_HOST:PORT with the service account token, CA and namespace', async (t) => {
  const dir = t.testdir({})
  const sa = serviceAccount(dir, { token: 'sa-token', ca: true, namespace: 'knative-serving\n' })
  const kc = loadKubeConfig({ ...IN_CLUSTER_ENV, HOME: dir }, { serviceAccountDir: sa })
  const cluster = kc.getCurrentCluster()
  t.equal(cluster?.server, 'https://10.96.0.1:443')
  t.equal(cluster?.caFile, join(sa, 'ca.crt'))
  t.equal(kc.getContextObject(kc.getCurrentContext())?.namespace, 'knative-serving')
  t.equal(await authHeader(kc), 'Bearer sa-token')

  writeFileSync(join(sa, 'token'), 'rotated')
  t.equal(await authHeader(loadKubeConfig({ ...IN_CLUSTER_ENV }, { serviceAccountDir: sa })), 'Bearer rotated', 'token read from the file')
})

t.test('in-cluster: IPv6 host is bracketed; https whatever the port; no CA file is tolerated', async (t) => {
  const dir = t.testdir({})
  const sa = serviceAccount(dir, { token: 'x' })
  const kc = loadKubeConfig({ KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '8080' }, { serviceAccountDir: sa })
  t.equal(kc.getCurrentCluster()?.server, 'https://[fd00::1]:8080')
  t.equal(kc.getCurrentCluster()?.caFile, undefined)
})

t.test('KUBECONFIG: one file; relative certificate paths resolve against the file', async (t) => {
  const dir = t.testdir({
    'ca.pem': 'not really a cert',
    'a.yaml': kubeconfig({ current: 'a', clusters: [['ca', 'https://a.example:6443']], users: [['ua', 'tok-a']], contexts: [['a', 'ca', 'ua']] }),
  })
  const kc = loadKubeConfig({ KUBECONFIG: join(dir, 'a.yaml') })
  t.equal(kc.getCurrentCluster()?.server, 'https://a.example:6443')
  t.equal(kc.getCurrentCluster()?.caFile, join(dir, 'ca.pem'))
  t.equal(await authHeader(kc), 'Bearer tok-a')
})

t.test('KUBECONFIG: several files merged as kubectl does (first definition and first current-context win, missing files skipped)', async (t) => {
  const dir = t.testdir({
    'ca.pem': 'not really a cert',
    'a.yaml': kubeconfig({ clusters: [['shared', 'https://first.example']], users: [['u', 'tok-first']] }),
    'b.yaml': kubeconfig({
      current: 'b',
      clusters: [['shared', 'https://second.example'], ['other', 'https://other.example']],
      users: [['u', 'tok-second']],
      contexts: [['b', 'shared', 'u'], ['c', 'other', 'u']],
    }),
    'c.yaml': kubeconfig({ current: 'c' }),
  })
  const list = [join(dir, 'missing.yaml'), join(dir, 'a.yaml'), join(dir, 'b.yaml'), join(dir, 'c.yaml')].join(':')
  const kc = loadKubeConfig({ KUBECONFIG: list })
  t.equal(kc.getCurrentContext(), 'b', 'first file that sets current-context wins')
  t.equal(kc.getCurrentCluster()?.server, 'https://first.example', 'first definition of a cluster wins')
  t.equal(await authHeader(kc), 'Bearer tok-first', 'first definition of a user wins')
  t.equal(kc.getContexts().length, 2)
})

t.test('precedence: KUBECONFIG over in-cluster over ~/.kube/config', async (t) => {
  const dir = t.testdir({
    'explicit.yaml': kubeconfig({ current: 'x', clusters: [['x', 'https://explicit.example']], users: [['x', 't']], contexts: [['x', 'x', 'x']] }),
    'home': { '.kube': { config: kubeconfig({ current: 'h', clusters: [['h', 'https://home.example']], users: [['h', 't']], contexts: [['h', 'h', 'h']] }) } },
  })
  const sa = serviceAccount(dir, { token: 'sa' })
  const home = join(dir, 'home')
  t.equal(loadKubeConfig({ ...IN_CLUSTER_ENV, KUBECONFIG: join(dir, 'explicit.yaml'), HOME: home }, { serviceAccountDir: sa }).getCurrentCluster()?.server, 'https://explicit.example')
  t.equal(loadKubeConfig({ ...IN_CLUSTER_ENV, HOME: home }, { serviceAccountDir: sa }).getCurrentCluster()?.server, 'https://10.96.0.1:443')
  t.equal(loadKubeConfig({ HOME: home }, { serviceAccountDir: sa }).getCurrentCluster()?.server, 'https://home.example', 'no service env: home config')
  t.equal(loadKubeConfig({ ...IN_CLUSTER_ENV }, { serviceAccountDir: join(dir, 'nope'), homeDir: home }).getCurrentCluster()?.server, 'https://home.example', 'no token file: home config')
})

t.test('clear errors when nothing usable is found', async (t) => {
  const dir = t.testdir({
    'nocurrent.yaml': kubeconfig({ clusters: [['c', 'https://c.example']], users: [['u', 't']], contexts: [['x', 'c', 'u']] }),
    'dangling.yaml': kubeconfig({ current: 'ghost', clusters: [['c', 'https://c.example']] }),
  })
  t.throws(() => loadKubeConfig({ HOME: join(dir, 'empty') }, { serviceAccountDir: join(dir, 'nope') }), /no Kubernetes configuration found; tried: KUBECONFIG \(unset\); in-cluster \(KUBERNETES_SERVICE_HOST\/PORT unset\); .*\.kube\/config \(not found\)/)
  t.throws(() => loadKubeConfig({ KUBECONFIG: join(dir, 'missing.yaml') }), /KUBECONFIG=.*missing\.yaml names no existing kubeconfig file/)
  t.throws(() => loadKubeConfig({ KUBECONFIG: join(dir, 'nocurrent.yaml') }), /sets no current-context/)
  t.throws(() => loadKubeConfig({ KUBECONFIG: join(dir, 'dangling.yaml') }), /current-context "ghost" is not defined/)
})
