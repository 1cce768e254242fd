// A test file's real-API cases run inside a network namespace, for tests
// whose code under test lives in the test process itself (an Activator
// object, an in-process queue-proxy) and must reach pods and ClusterIPs at
// addresses the real API server accepts (10.244.x.y in Endpoints, 10.96.x.y
// in Services: it refuses loopback ones). Those addresses exist only on the
// namespace's loopback and a process cannot move its sockets there, so the
// file runs again inside it (tap's t.spawn: the child's results are a
// subtest here). The API server stays on the host, lent to the child by this
// process: its port is forwarded in (the kubeconfig names 127.0.0.1 as on
// the host), and upsert/remove/restart go over a small HTTP relay to the
// KubeApi held here.
//
//   const relayed = relayedBackend()    // set in the child only
//   for (const backend of relayed ? [relayed] : await kubeApis(t)) {
//     if (backend.name === 'real' && !relayed) {
//       t.test('[real] in a network namespace', { skip: netnsSkip(backend) }, (t) => runInNetns(t, backend, import.meta.filename, ['10.244.0.3']))
//       continue
//     }
//     ...the cases, on `backend`...
//   }

import { copyFileSync, mkdtempSync, rmSync } from 'node:fs'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Test } from 'tap'
import { KubeConfig } from '@kubernetes/client-node'
import type { Kind, KubeObject } from './fake-kube-api.ts'
import type { KubeApi, KubeBackend } from './kube-apis.ts'
import { NetNs, netnsUnavailable } from './netns.ts'
import { onPath, underWatchdog } from './real-kube-api.ts'
import { close } from './servers.ts'

const ENV = 'SLUICE_TEST_NETNS_RELAY'

interface RelayInfo {
  /** The relay, as reached inside the namespace. */
  relay: string
  /** The API server's URL (its port is forwarded in). */
  url: string
  kubeconfig: string
}

/** Why the real backend's cases cannot run in a namespace here (its own skip first), or false. */
export function netnsSkip(backend: KubeBackend): string | false {
  if (backend.skip) return backend.skip
  const missing = netnsUnavailable()
  return missing === undefined ? false : `real kube-apiserver: ${missing}`
}

/** Parent side: runs `file` inside a new namespace holding `addresses`, its real-API cases talking to `backend`. */
export async function runInNetns(t: Test, backend: KubeBackend, file: string, addresses: string[]): Promise<void> {
  const api = await backend.use(t)
  const ns = await NetNs.create()
  t.teardown(() => ns.delete())
  for (const a of addresses) await ns.addAddress(a)
  await ns.forwardIn(Number(new URL(api.url).port))

  // What the child created, removed before each of its tests (as the real backend's reset does).
  const created = new Map<string, { kind: Kind; namespace: string; name: string }>()
  const relay = http.createServer((req, res) => {
    let body = ''
    req.setEncoding('utf8').on('data', (d: string) => { body += d })
    req.on('end', () => {
      void relayCall(api, created, req.url ?? '', body).then(
        (out) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(out ?? null)),
        (err: unknown) => res.writeHead(500).end(String(err)),
      )
    })
  })
  relay.listen(0, '127.0.0.1')
  await new Promise((resolve) => relay.once('listening', resolve))
  t.teardown(() => close(relay))
  const relayPort = (relay.address() as AddressInfo).port
  await ns.forwardIn(relayPort)

  const dir = mkdtempSync(join(tmpdir(), 'sluice-netns-tests-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const kubeconfig = join(dir, 'config')
  api.writeKubeconfig(kubeconfig)
  const info: RelayInfo = { relay: `http://127.0.0.1:${relayPort}`, url: api.url, kubeconfig }
  // The watchdog ends the child if this process dies without tearing down.
  const [sh, args] = underWatchdog(process.execPath, ['--conditions=sluice-source', file])
  await t.spawn(onPath('ip')!, ['netns', 'exec', ns.name, sh, ...args], { env: { ...process.env, [ENV]: JSON.stringify(info) } }, `[real] in network namespace ${ns.name}`)
}

async function relayCall(api: KubeApi, created: Map<string, { kind: Kind; namespace: string; name: string }>, path: string, body: string): Promise<unknown> {
  const args = JSON.parse(body || '{}') as { kind: Kind; obj: KubeObject; namespace: string; name: string; downMs?: number }
  switch (path) {
    case '/upsert': {
      const namespace = args.obj.metadata.namespace ?? 'default'
      created.set(`${args.kind}/${namespace}/${args.obj.metadata.name}`, { kind: args.kind, namespace, name: args.obj.metadata.name })
      return api.upsert(args.kind, args.obj)
    }
    case '/remove':
      created.delete(`${args.kind}/${args.namespace}/${args.name}`)
      return api.remove(args.kind, args.namespace, args.name)
    case '/restart':
      return api.restart(args.downMs)
    case '/reset': {
      const all = [...created.values()]
      created.clear()
      return Promise.all(all.map((o) => api.remove(o.kind, o.namespace, o.name)))
    }
  }
  throw new Error(`relay: unknown call ${path}`)
}

class RelayedApi implements KubeApi {
  readonly name = 'real'
  readonly fake = undefined
  readonly url: string
  private readonly info: RelayInfo

  constructor(info: RelayInfo) {
    this.info = info
    this.url = info.url
  }

  async call<T>(op: string, args: unknown = {}): Promise<T> {
    const res = await fetch(`${this.info.relay}/${op}`, { method: 'POST', body: JSON.stringify(args) })
    const text = await res.text()
    if (!res.ok) throw new Error(`relayed ${op}: ${text}`)
    return JSON.parse(text) as T
  }

  upsert(kind: Kind, obj: KubeObject): Promise<KubeObject> {
    return this.call('upsert', { kind, obj })
  }

  remove(kind: Kind, namespace: string, name: string): Promise<boolean> {
    return this.call('remove', { kind, namespace, name })
  }

  kubeConfig(): KubeConfig {
    const kc = new KubeConfig()
    kc.loadFromFile(this.info.kubeconfig)
    return kc
  }

  writeKubeconfig(path: string): void {
    copyFileSync(this.info.kubeconfig, path)
  }

  async restart(downMs?: number): Promise<void> {
    await this.call('restart', { downMs })
  }
}

/**
 * Child side: the real backend lent through the relay when this process is
 * the child runInNetns() started, else undefined. Tests use it one at a
 * time (tap's default in a file); each starts with what the previous created removed.
 */
export function relayedBackend(): KubeBackend | undefined {
  const raw = process.env[ENV]
  if (raw === undefined || raw === '') return undefined
  const api = new RelayedApi(JSON.parse(raw) as RelayInfo)
  return {
    name: 'real',
    skip: false,
    async use() {
      await api.call('reset')
      return api
    },
  }
}
