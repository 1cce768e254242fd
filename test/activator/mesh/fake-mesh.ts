// A fake service mesh: revision pods behind an Istio-like sidecar that
// rejects plain traffic (probes answered 503, as Envoy does when mTLS is
// STRICT and the caller has no mesh identity), which can be made addressable
// later; and a ClusterIP stand-in on its own address that answers probes and
// requests (the mesh's service routing to the pods). With the fake API the
// addresses are 127.0.0.x; the real API server refuses those in Endpoints and
// Services, so there they are cluster-style ones (10.244.0.x pods, a
// 10.96.0.x ClusterIP) inside the network namespace the test runs in
// (netns-tests.ts).

import http from 'node:http'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { pino } from 'pino'
import { Activator } from '@sluice/activator/activator'
import { loadConfig } from '@sluice/activator/config'
import { ConfigMapWatch } from '@sluice/activator/endpoints/config-maps'
import { KubernetesSource } from '@sluice/activator/endpoints/kubernetes-source'
import type { KubeObject } from '../../helpers/fake-kube-api.ts'
import type { KubeApi } from '../../helpers/kube-apis.ts'
import { revision, sksLabels } from '../../helpers/knative-objects.ts'
import { activatorEnv } from '../../helpers/activator.ts'
import { startTestAutoscaler } from '../../helpers/test-autoscaler.ts'
import { waitFor as pollFor } from '../../helpers/servers.ts'

export const NS = 'default'
export const REV = 'hello-00001'
export const SYSTEM_NS = 'knative-serving'
export const CLUSTER_IP = '127.0.0.2'
export const POD_IP = '127.0.0.3'

export interface MeshAddresses {
  clusterIP: string
  podIP: string
  /** Two more pod addresses (nothing listens there). */
  others: [string, string]
}

/** Where the mesh lives with the fake API (host loopback) and with the real one (a network namespace's loopback). */
export const ADDRESSES: Record<KubeApi['name'], MeshAddresses> = {
  fake: { clusterIP: CLUSTER_IP, podIP: POD_IP, others: ['127.0.0.4', '127.0.0.5'] },
  real: { clusterIP: '10.96.0.20', podIP: '10.244.0.3', others: ['10.244.0.4', '10.244.0.5'] },
}

export const ROUTE = { 'Knative-Serving-Namespace': NS, 'Knative-Serving-Revision': REV }

/** An HTTP server counting probes and requests; answers as `answer` says. */
export class MeshServer {
  readonly server: http.Server
  probes = 0
  requests = 0
  /** The headers of the last probe. */
  lastProbe: http.IncomingHttpHeaders = {}
  /** The headers of the last proxied request. */
  lastRequest: http.IncomingHttpHeaders = {}
  /** Sidecar rejecting plain traffic (502/503 to everything), or serving. */
  rejecting: boolean
  readonly name: string

  constructor(name: string, rejecting: boolean) {
    this.name = name
    this.rejecting = rejecting
    this.server = http.createServer((req, res) => {
      const probe = req.headers['k-network-probe'] === 'queue'
      if (probe) {
        this.probes++
        this.lastProbe = req.headers
      } else {
        this.requests++
        this.lastRequest = req.headers
      }
      if (this.rejecting) {
        // Envoy's answer to plain text it will not route: 503, "upstream connect error".
        res.writeHead(503, { 'content-type': 'text/plain', server: 'envoy' })
        res.end('upstream connect error or disconnect/reset before headers. reset reason: connection termination')
        return
      }
      res.writeHead(200, { 'content-type': 'text/plain' })
      res.end(probe ? 'queue' : `served by ${this.name}`)
    })
  }

  async listen(host: string): Promise<number> {
    this.server.listen(0, host)
    await once(this.server, 'listening')
    return (this.server.address() as AddressInfo).port
  }

  close(): Promise<void> {
    this.server.closeAllConnections()
    return new Promise((r) => this.server.close(() => r()))
  }
}

export function configNetwork(data: Record<string, string>): KubeObject {
  return { metadata: { name: 'config-network', namespace: SYSTEM_NS }, data }
}

function privateEndpoints(o: { ready?: string[]; notReady?: string[] }, port: number): KubeObject {
  const subset: Record<string, unknown> = { ports: [{ name: 'http', port, protocol: 'TCP' }] }
  if (o.ready?.length) subset.addresses = o.ready.map((ip) => ({ ip }))
  if (o.notReady?.length) subset.notReadyAddresses = o.notReady.map((ip) => ({ ip }))
  return { metadata: { name: `${REV}-private`, namespace: NS, labels: sksLabels(NS, REV, 'Private') }, subsets: [subset] }
}

function privateService(clusterIP: string, port: number): KubeObject {
  return {
    metadata: { name: `${REV}-private`, namespace: NS, labels: sksLabels(NS, REV, 'Private') },
    spec: { type: 'ClusterIP', clusterIP, ports: [{ name: 'http', port, protocol: 'TCP' }] },
  }
}

export interface MeshSetup extends MeshAddresses {
  api: KubeApi
  pod: MeshServer
  cluster: MeshServer
  activator: Activator
  url: string
  logs: Record<string, unknown>[]
  setPodEndpoints(o: { ready?: string[]; notReady?: string[] }): Promise<unknown>
}

/** Mesh pod (rejecting), ClusterIP stand-in, their objects in `api`, and an activator reading them all through it. */
export async function startMesh(t: { teardown(fn: () => unknown): void }, api: KubeApi, o: { configNetwork?: Record<string, string>; cc?: number; podReady?: boolean }): Promise<MeshSetup> {
  const addresses = ADDRESSES[api.name]
  const pod = new MeshServer('pod', true)
  const podPort = await pod.listen(addresses.podIP)
  t.teardown(() => pod.close())
  const cluster = new MeshServer('clusterip', false)
  const clusterPort = await cluster.listen(addresses.clusterIP)
  t.teardown(() => cluster.close())

  if (o.configNetwork) await api.upsert('configmaps', configNetwork(o.configNetwork))
  await api.upsert('revisions', revision(NS, REV, { containerConcurrency: o.cc ?? 0 }))
  await api.upsert('services', privateService(addresses.clusterIP, clusterPort))
  const setPodEndpoints = (eps: { ready?: string[]; notReady?: string[] }) => api.upsert('endpoints', privateEndpoints(eps, podPort))
  await setPodEndpoints(o.podReady ? { ready: [addresses.podIP] } : { notReady: [addresses.podIP] })

  const logs: Record<string, unknown>[] = []
  const log = pino({ level: 'info' }, { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) })
  const cfg = loadConfig(activatorEnv({ SLUICE_ENDPOINT_SOURCE: 'kubernetes', PROBE_FREQUENCY: '50ms' }))
  const kubeConfig = api.kubeConfig()
  const backoff = { initialMs: 10, maxMs: 40 }
  const source = new KubernetesSource({ kubeConfig, log, backoff })
  const configMaps = new ConfigMapWatch({ kubeConfig, namespace: SYSTEM_NS, log, backoff })
  // A listening autoscaler: the activator gives an absent one a second at start.
  const autoscaler = await startTestAutoscaler()
  t.teardown(() => autoscaler.stop())
  const activator = new Activator(cfg, log, { source, configMaps, autoscalerUrl: autoscaler.url, clusterDomain: 'cluster.local' })
  const ports = await activator.start()
  t.teardown(() => activator.shutdown())
  return { ...addresses, api, pod, cluster, activator, url: `http://127.0.0.1:${ports.http}`, logs, setPodEndpoints }
}

export const waitFor = (cond: () => boolean, ms = 8000): Promise<boolean> => pollFor(cond, ms, 10)
