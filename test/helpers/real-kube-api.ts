// A real Kubernetes API server for tests: etcd and kube-apiserver 1.26 as
// child processes on loopback ports, token authentication, RBAC, TLS with the
// API server's own self-signed CA, and Knative's Revision CRD. Objects are
// written through the API as Knative's controllers write them (the main
// resource, then the status subresource), so the activator meets real list
// and watch semantics: resourceVersions from etcd, the watch cache, selector
// transitions, validation, a restart that cuts every watch.
//
// Found through SLUICE_KUBE_APISERVER_BIN (kube-apiserver; README.md
// "Development" says how to build it) and etcd on PATH or SLUICE_ETCD_BIN;
// realKubeApiUnavailable() says why it cannot run (tests skip with that).

import { spawn, execFile, type ChildProcess } from 'node:child_process'
import { accessSync, constants, existsSync, mkdirSync, mkdtempSync, openSync, closeSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import https from 'node:https'
import { tmpdir } from 'node:os'
import { delimiter, join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { promisify } from 'node:util'
import { KubeConfig } from '@kubernetes/client-node'
import YAML from 'yaml'
import type { Kind, KubeObject } from './fake-kube-api.ts'
import { freePort } from './process.ts'
import { sleep } from './servers.ts'

export const APISERVER_ENV = 'SLUICE_KUBE_APISERVER_BIN'
export const ETCD_ENV = 'SLUICE_ETCD_BIN'

const CRD_DIR = join(import.meta.dirname, 'knative-crds')
// The tests' ClusterIPs are 10.96.x.y; the "kubernetes" Service holds the first one, 10.96.0.1.
const SERVICE_CIDR = '10.96.0.0/12'

const KINDS: Record<Kind, { group: string; apiVersion: string; kind: string; resource: string }> = {
  revisions: { group: '/apis/serving.knative.dev/v1', apiVersion: 'serving.knative.dev/v1', kind: 'Revision', resource: 'revisions' },
  endpoints: { group: '/api/v1', apiVersion: 'v1', kind: 'Endpoints', resource: 'endpoints' },
  services: { group: '/api/v1', apiVersion: 'v1', kind: 'Service', resource: 'services' },
  endpointslices: { group: '/apis/discovery.k8s.io/v1', apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', resource: 'endpointslices' },
  secrets: { group: '/api/v1', apiVersion: 'v1', kind: 'Secret', resource: 'secrets' },
  configmaps: { group: '/api/v1', apiVersion: 'v1', kind: 'ConfigMap', resource: 'configmaps' },
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK)
    return true
  } catch {
    return false
  }
}

export function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && executable(join(dir, name))) return join(dir, name)
  }
  return undefined
}

interface Binaries {
  apiserver: string
  etcd: string
}

function binaries(): Binaries | string {
  const apiserver = process.env[APISERVER_ENV]
  if (!apiserver) return `${APISERVER_ENV} is not set (a kube-apiserver 1.26 binary; README.md "Development" says how to build one)`
  if (!executable(apiserver)) return `${APISERVER_ENV}=${apiserver} is not an executable file`
  const etcd = process.env[ETCD_ENV] || onPath('etcd')
  if (!etcd) return `etcd is not on PATH and ${ETCD_ENV} is not set`
  if (!executable(etcd)) return `${ETCD_ENV}=${etcd} is not an executable file`
  if (!onPath('openssl')) return 'openssl is not on PATH (it makes the service-account keys)'
  return { apiserver, etcd }
}

/** Why the real API server cannot be started here, or undefined when it can. */
export function realKubeApiUnavailable(): string | undefined {
  const b = binaries()
  return typeof b === 'string' ? b : undefined
}

interface Reply {
  status: number
  body: KubeObject & { status?: unknown; reason?: string; message?: string }
}

interface Proc {
  child: ChildProcess
  exited: Promise<void>
}

// The server runs under a shell that ends it when this process is gone
// (killed by a test timeout, say) and passes SIGTERM on: no orphaned etcd.
const WATCHDOG = '"$@" & c=$!; trap \'kill $c; wait $c; exit 0\' TERM INT; ' +
  'while kill -0 $PPID 2>/dev/null && kill -0 $c 2>/dev/null; do sleep 1 & wait $!; done; kill $c 2>/dev/null; wait $c'

/** The command line that runs `bin args` under the watchdog shell (its stdin is /dev/null). */
export function underWatchdog(bin: string, args: string[]): [string, string[]] {
  return ['/bin/sh', ['-c', WATCHDOG, 'sh', bin, ...args]]
}

function startProc(bin: string, args: string[], logFile: string): Proc {
  const fd = openSync(logFile, 'a')
  const child = spawn(...underWatchdog(bin, args), { stdio: ['ignore', fd, fd] })
  closeSync(fd)
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  return { child, exited }
}

async function stopProc(p: Proc | undefined): Promise<void> {
  if (!p || p.child.exitCode !== null || p.child.signalCode !== null) return
  p.child.kill('SIGTERM')
  const killed = setTimeout(() => p.child.kill('SIGKILL'), 5000)
  await p.exited
  clearTimeout(killed)
}

const ALREADY_EXISTS = 409

export class RealKubeApi {
  readonly name = 'real'
  /** https://127.0.0.1:<secure port> */
  readonly url: string
  /** The bearer token of a system:masters user. */
  readonly token: string
  /** PEM bundle of the API server's self-signed serving certificate and its CA. */
  ca = ''

  private readonly bins: Binaries
  private readonly dir: string
  private readonly etcdDir: string
  private readonly port: number
  private readonly etcdPort: number
  private readonly peerPort: number
  private etcd: Proc | undefined
  private apiserver: Proc | undefined
  private agent: https.Agent | undefined
  private readonly namespaces = new Set<string>()
  /** Objects upserted and not removed: what reset() deletes. */
  private readonly created = new Map<string, { kind: Kind; namespace: string; name: string }>()

  private constructor(bins: Binaries, ports: { api: number; etcd: number; peer: number }) {
    this.bins = bins
    this.dir = mkdtempSync(join(tmpdir(), 'sluice-kube-'))
    // etcd fsyncs every write: on tmpfs that costs nothing.
    this.etcdDir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'sluice-etcd-'))
    this.port = ports.api
    this.etcdPort = ports.etcd
    this.peerPort = ports.peer
    this.url = `https://127.0.0.1:${ports.api}`
    this.token = randomBytes(16).toString('hex')
  }

  /** Starts etcd and kube-apiserver, waits for /readyz and applies the CRDs. Throws when unavailable. */
  static async start(): Promise<RealKubeApi> {
    const bins = binaries()
    if (typeof bins === 'string') throw new Error(bins)
    const api = new RealKubeApi(bins, { api: await freePort(), etcd: await freePort(), peer: await freePort() })
    try {
      await api.boot()
    } catch (err) {
      await api.close()
      throw err
    }
    return api
  }

  private async boot(): Promise<void> {
    const run = promisify(execFile)
    const key = join(this.dir, 'sa.key')
    await run('openssl', ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', key])
    await run('openssl', ['pkey', '-in', key, '-pubout', '-out', join(this.dir, 'sa.pub')])
    writeFileSync(join(this.dir, 'tokens.csv'), `${this.token},admin,admin,system:masters\n`)
    mkdirSync(join(this.dir, 'certs'))

    const etcdUrl = `http://127.0.0.1:${this.etcdPort}`
    const peerUrl = `http://127.0.0.1:${this.peerPort}`
    this.etcd = startProc(this.bins.etcd, [
      '--name', 'default', '--data-dir', this.etcdDir,
      '--listen-client-urls', etcdUrl, '--advertise-client-urls', etcdUrl,
      '--listen-peer-urls', peerUrl, '--initial-advertise-peer-urls', peerUrl,
      '--initial-cluster', `default=${peerUrl}`,
    ], join(this.dir, 'etcd.log'))
    await this.waitFor('etcd', async () => (await fetch(`${etcdUrl}/health`)).ok, this.etcd)
    await this.startApiserver()
    for (const file of readdirSync(CRD_DIR).filter((f) => f.endsWith('.yaml')).sort()) {
      for (const doc of YAML.parseAllDocuments(readFileSync(join(CRD_DIR, file), 'utf8'))) {
        const crd = doc.toJS() as KubeObject | null
        if (crd?.kind === 'CustomResourceDefinition') await this.applyCrd(crd)
      }
    }
  }

  private async startApiserver(): Promise<void> {
    this.apiserver = startProc(this.bins.apiserver, [
      `--etcd-servers=http://127.0.0.1:${this.etcdPort}`,
      `--secure-port=${this.port}`,
      '--bind-address=127.0.0.1',
      '--advertise-address=127.0.0.1',
      // No controller-manager runs: the "kubernetes" Service's Endpoints would be loopback (refused).
      '--endpoint-reconciler-type=none',
      `--cert-dir=${join(this.dir, 'certs')}`,
      `--token-auth-file=${join(this.dir, 'tokens.csv')}`,
      '--authorization-mode=RBAC',
      `--service-account-key-file=${join(this.dir, 'sa.pub')}`,
      `--service-account-signing-key-file=${join(this.dir, 'sa.key')}`,
      '--service-account-issuer=https://kubernetes.default.svc',
      `--service-cluster-ip-range=${SERVICE_CIDR}`,
      '--profiling=false',
    ], join(this.dir, 'kube-apiserver.log'))
    const crt = join(this.dir, 'certs', 'apiserver.crt')
    await this.waitFor('kube-apiserver', async () => {
      if (!existsSync(crt)) return false
      this.ca = readFileSync(crt, 'utf8')
      this.agent ??= new https.Agent({ keepAlive: true, ca: this.ca })
      return (await this.call('GET', '/readyz')).status === 200
    }, this.apiserver)
  }

  /** Polls `ready` until true; fails (with the log's tail) when `proc` exits or after 60 s. */
  private async waitFor(what: string, ready: () => Promise<boolean>, proc: Proc): Promise<void> {
    const deadline = Date.now() + 60_000
    for (;;) {
      if (proc.child.exitCode !== null || proc.child.signalCode !== null) throw new Error(`${what} exited during start-up: ${this.logTail(what)}`)
      if (Date.now() > deadline) throw new Error(`${what} not ready within 60 s: ${this.logTail(what)}`)
      try {
        if (await ready()) return
      } catch { /* not listening yet */ }
      await sleep(100)
    }
  }

  private logTail(what: string): string {
    const file = join(this.dir, what === 'etcd' ? 'etcd.log' : 'kube-apiserver.log')
    return existsSync(file) ? readFileSync(file, 'utf8').split('\n').slice(-15).join('\n') : '(no log)'
  }

  private async applyCrd(crd: KubeObject): Promise<void> {
    const path = '/apis/apiextensions.k8s.io/v1/customresourcedefinitions'
    const r = await this.call('POST', path, crd)
    if (r.status !== 201 && r.status !== ALREADY_EXISTS) throw new Error(`CRD ${crd.metadata.name}: ${r.status} ${r.body.message}`)
    const spec = crd.spec as { group: string; names: { plural: string }; versions: { name: string; served: boolean }[] }
    const served = spec.versions.filter((v) => v.served).map((v) => `/apis/${spec.group}/${v.name}/${spec.names.plural}`)
    const deadline = Date.now() + 30_000
    for (;;) {
      const got = await this.call('GET', `${path}/${crd.metadata.name}`)
      const conditions = ((got.body.status as { conditions?: { type: string; status: string }[] } | undefined)?.conditions) ?? []
      const established = conditions.some((c) => c.type === 'Established' && c.status === 'True')
      // Established comes a little before the collection is served.
      if (established && (await Promise.all(served.map((p) => this.call('GET', p)))).every((l) => l.status === 200)) return
      if (Date.now() > deadline) throw new Error(`CRD ${crd.metadata.name} not established within 30 s`)
      await sleep(100)
    }
  }

  // ---- HTTP ----------------------------------------------------------------

  /** One request to the API server as the admin user; JSON in, JSON out. */
  call(method: string, path: string, body?: unknown): Promise<Reply> {
    const payload = body === undefined ? undefined : JSON.stringify(body)
    return new Promise<Reply>((resolve, reject) => {
      const req = https.request(`${this.url}${path}`, {
        method,
        agent: this.agent,
        headers: {
          authorization: `Bearer ${this.token}`,
          accept: 'application/json',
          ...(payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }),
        },
        timeout: 30_000,
      }, (res) => {
        let text = ''
        res.setEncoding('utf8').on('data', (d: string) => { text += d })
        res.on('end', () => {
          let parsed: Reply['body']
          try {
            parsed = JSON.parse(text) as Reply['body']
          } catch {
            parsed = { metadata: { name: '' }, message: text }
          }
          resolve({ status: res.statusCode ?? 0, body: parsed })
        })
        res.on('error', reject)
      })
      req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer within 30 s`)))
      req.on('error', reject)
      req.end(payload)
    })
  }

  private async must(method: string, path: string, body?: unknown): Promise<Reply> {
    const r = await this.call(method, path, body)
    if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${r.body.reason ?? ''} ${r.body.message ?? ''}`)
    return r
  }

  // ---- test controls (the FakeKubeApi ones the shared tests use) --------------

  /**
   * Creates or replaces an object, as a controller does: POST, or PUT over the
   * current resourceVersion when it exists; a Revision's status then goes
   * through the status subresource. A Service whose immutable fields changed
   * (clusterIP) is deleted and created again. Returns the stored object.
   */
  async upsert(kind: Kind, obj: KubeObject): Promise<KubeObject> {
    const k = KINDS[kind]
    const namespace = obj.metadata.namespace ?? 'default'
    await this.ensureNamespace(namespace)
    const body = structuredClone(obj) as KubeObject & { status?: unknown }
    body.apiVersion = k.apiVersion
    body.kind = k.kind
    body.metadata = { ...body.metadata, namespace }
    // The server assigns these; the builders set made-up ones.
    delete body.metadata.uid
    delete body.metadata.resourceVersion
    const status = kind === 'revisions' ? body.status : undefined
    if (kind === 'revisions') delete body.status
    const collection = `${k.group}/namespaces/${namespace}/${k.resource}`
    const item = `${collection}/${obj.metadata.name}`
    let stored: Reply | undefined
    for (let attempt = 0; stored === undefined; attempt++) {
      const created = await this.call('POST', collection, body)
      if (created.status === 201) {
        stored = created
        break
      }
      if (created.status !== ALREADY_EXISTS) throw new Error(`POST ${collection}: ${created.status} ${created.body.message}`)
      const current = await this.must('GET', item)
      const replaced = await this.call('PUT', item, { ...body, metadata: { ...body.metadata, resourceVersion: current.body.metadata.resourceVersion } })
      if (replaced.status === 200) stored = replaced
      else if (replaced.status === 422 && kind === 'services') await this.must('DELETE', item)
      else if (replaced.status !== 409 || attempt > 5) throw new Error(`PUT ${item}: ${replaced.status} ${replaced.body.message}`)
    }
    this.created.set(`${kind}/${namespace}/${obj.metadata.name}`, { kind, namespace, name: obj.metadata.name })
    if (status === undefined) return stored.body
    return (await this.must('PUT', `${item}/status`, { ...stored.body, status })).body
  }

  async remove(kind: Kind, namespace: string, name: string): Promise<boolean> {
    this.created.delete(`${kind}/${namespace}/${name}`)
    const r = await this.call('DELETE', `${KINDS[kind].group}/namespaces/${namespace}/${KINDS[kind].resource}/${name}`)
    if (r.status === 404) return false
    if (r.status >= 300) throw new Error(`DELETE ${kind} ${namespace}/${name}: ${r.status} ${r.body.message}`)
    return true
  }

  /** Deletes every object upserted since the start or the last reset (namespaces stay). */
  async reset(): Promise<void> {
    const all = [...this.created.values()]
    await Promise.all(all.map((o) => this.remove(o.kind, o.namespace, o.name)))
  }

  private async ensureNamespace(name: string): Promise<void> {
    if (this.namespaces.has(name)) return
    const r = await this.call('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name } })
    if (r.status !== 201 && r.status !== ALREADY_EXISTS) throw new Error(`namespace ${name}: ${r.status} ${r.body.message}`)
    this.namespaces.add(name)
  }

  /**
   * Stops kube-apiserver (SIGTERM: every watch and connection ends) and starts
   * it again on the same port with the same certificates; etcd keeps running,
   * so the data and resourceVersions survive. `downMs` is how long it stays down.
   */
  async restart(downMs = 0): Promise<void> {
    await stopProc(this.apiserver)
    this.agent?.destroy()
    this.agent = undefined
    if (downMs > 0) await sleep(downMs)
    await this.startApiserver()
  }

  /** A KubeConfig for the admin user (the token) trusting the API server's CA. */
  kubeConfig(): KubeConfig {
    const kc = new KubeConfig()
    kc.loadFromString(JSON.stringify(this.kubeconfigObject()))
    return kc
  }

  /** Writes a kubeconfig file (token and CA inline) to `path`. */
  writeKubeconfig(path: string): void {
    writeFileSync(path, JSON.stringify(this.kubeconfigObject()))
  }

  private kubeconfigObject() {
    return {
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'real', cluster: { server: this.url, 'certificate-authority-data': Buffer.from(this.ca).toString('base64') } }],
      users: [{ name: 'admin', user: { token: this.token } }],
      contexts: [{ name: 'real', context: { cluster: 'real', user: 'admin' } }],
      'current-context': 'real',
    }
  }

  async close(): Promise<void> {
    this.agent?.destroy()
    await stopProc(this.apiserver)
    await stopProc(this.etcd)
    rmSync(this.dir, { recursive: true, force: true })
    rmSync(this.etcdDir, { recursive: true, force: true })
  }
}
