// The pair under system-internal TLS: a real activator (in this process, with
// its Secret watched through a Kubernetes API, fake or real) in front of a real
// queue-proxy serving its TLS port from a certificate directory, in front of
// an app. Every request the queue-proxy receives is recorded with whether it
// arrived over TLS.

import { mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import type http from 'node:http'
import http2 from 'node:http2'
import { once } from 'node:events'
import type net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { TLSSocket } from 'node:tls'
import { Activator } from '@sluice/activator/activator'
import { loadConfig } from '@sluice/activator/config'
import { CertificateSource } from '@sluice/activator/endpoints/certificate-source'
import { ConfigMapWatch } from '@sluice/activator/endpoints/config-maps'
import { LocalSource } from '@sluice/activator/endpoints/local-source'
import type { DualListener } from '@sluice/core/http/listener'
import { createLogger } from '@sluice/core/logging'
import { activatorEnv, revisionInfo } from '../../helpers/activator.ts'
import type { KubeApi } from '../../helpers/kube-apis.ts'
import { startTestAutoscaler } from '../../helpers/test-autoscaler.ts'
import { close, knativeEnv, startApp, startQueueProxy } from '../../helpers/servers.ts'
import { issue, routingSecret, type Ca, type Leaf } from './certs.ts'

export const SYSTEM_NAMESPACE = 'knative-serving'
export const SERVER_NAME = 'data-plane.knative.dev'
export const REVISION = 'hello-00001'

async function startH2cApp(): Promise<{ server: net.Server; port: number }> {
  const server = http2.createServer((req, res) => res.end(`app ${req.url}`))
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return { server, port: (server.address() as net.AddressInfo).port }
}

export interface Seen {
  url: string
  tls: boolean
  probe: boolean
}

export interface Pair {
  api: KubeApi
  activator: Activator
  /** The activator's TLS port. */
  httpsPort: number
  seen: Seen[]
  certsDir: string
  /** The activator's log lines, parsed. */
  logs(): Array<Record<string, unknown>>
  setSecret(caBundle: string, leaf: Leaf): Promise<void>
  /** The activator's certificate as first issued (kn-routing). */
  routing: Leaf
  /** Replaces the queue-proxy's certificate files (picked up by its reload poll). */
  setQueueCert(leaf: Leaf): void
  stop(): Promise<void>
}

export interface PairOptions {
  /** The app speaks h2c (the queue-proxy forwards HTTP/2 requests as h2c, as Knative's). */
  h2cApp?: boolean
  /** Create the Secret before the activator starts (default true). */
  secret?: boolean
  /** Leave SLUICE_SYSTEM_INTERNAL_TLS unset: config-network (these data, through the API) decides. */
  configNetwork?: Record<string, string>
}

/** The pair, its Secret and config-network in `api` (the caller's: it outlives stop()). */
export async function startPair(api: KubeApi, ca: Ca, queueCa: Ca = ca, o: PairOptions = {}): Promise<Pair> {
  const h2cApp = o.h2cApp ?? false
  const routing = issue(ca, 'activator', ['kn-routing', SERVER_NAME])
  const setSecret = async (bundle: string, leaf: Leaf): Promise<void> => { await api.upsert('secrets', routingSecret(SYSTEM_NAMESPACE, bundle, leaf)) }
  if (o.secret ?? true) await setSecret(ca.cert, routing)

  const app = h2cApp ? await startH2cApp() : await startApp((req, res) => res.end(`app ${req.url}`))
  // Upgrades: switch protocols, then echo.
  app.server.on('upgrade', (_req, socket: net.Socket) => {
    socket.write('HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: echo\r\n\r\n')
    socket.pipe(socket)
  })
  const certsDir = mkdtempSync(join(tmpdir(), 'sluice-qp-certs-'))
  const setQueueCert = (leaf: Leaf): void => {
    writeFileSync(join(certsDir, 'tls.key'), leaf.key)
    writeFileSync(join(certsDir, 'tls.crt'), leaf.cert)
  }
  setQueueCert(issue(queueCa, 'queue-proxy', ['kn-user-default', SERVER_NAME]))
  const qp = await startQueueProxy(knativeEnv(app.port, { SERVING_REVISION: REVISION }), { certsDir, certReloadMs: 100 })
  const seen: Seen[] = []
  const listener = (qp.qp as unknown as { listener: DualListener }).listener
  const record = (req: http.IncomingMessage | http2.Http2ServerRequest): void => {
    seen.push({ url: req.url ?? '', tls: (req.socket as TLSSocket).encrypted === true, probe: req.headers['k-network-probe'] !== undefined })
  }
  listener.h1.prependListener('request', record)
  listener.h2.prependListener('request', record)
  listener.h1.prependListener('upgrade', record)

  const logFile = join(certsDir, 'activator.log')
  if (o.configNetwork !== undefined) {
    await api.upsert('configmaps', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'config-network', namespace: SYSTEM_NAMESPACE }, data: o.configNetwork })
  }
  const env = activatorEnv({
    ...(o.configNetwork === undefined ? { SLUICE_SYSTEM_INTERNAL_TLS: 'enabled' } : {}),
    SLUICE_HTTPS_PORT: '0',
    SLUICE_QUEUE_TLS_PORT: String(qp.ports.tls),
    SLUICE_LOG_LEVEL: 'info',
  })
  const cfg = loadConfig(env)
  const log = createLogger({ name: 'activator', level: 'info', fd: openSync(logFile, 'a') })
  const source = new LocalSource()
  source.upsertRevision(revisionInfo(REVISION))
  const certificates = new CertificateSource({ kubeConfig: api.kubeConfig(), namespace: SYSTEM_NAMESPACE, log, backoff: { initialMs: 50, maxMs: 200 } })
  const configMaps = o.configNetwork === undefined ? undefined : new ConfigMapWatch({ kubeConfig: api.kubeConfig(), namespace: SYSTEM_NAMESPACE, log })
  // A listening autoscaler: the activator gives an absent one a second at start.
  const autoscaler = await startTestAutoscaler()
  const activator = new Activator(cfg, log, { source, autoscalerUrl: autoscaler.url, clusterDomain: 'cluster.local', certificates, configMaps })
  const ports = await activator.start()
  source.setEndpoints('default', REVISION, { ready: [`127.0.0.1:${qp.ports.serving}`], notReady: [] })
  return {
    api,
    activator,
    httpsPort: ports.https ?? 0,
    seen,
    certsDir,
    logs: () => readFileSync(logFile, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>),
    setSecret,
    routing,
    setQueueCert,
    async stop() {
      await activator.shutdown()
      await autoscaler.stop()
      await qp.stop()
      await close(app.server)
      rmSync(certsDir, { recursive: true, force: true })
    },
  }
}
