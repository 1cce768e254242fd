// Real servers on loopback for tests: a user-container stand-in, and a
// queue-proxy started in-process from a Knative-style environment.

import http from 'node:http'
import type http2 from 'node:http2'
import net from 'node:net'
import { once } from 'node:events'
import { createLogger } from '@sluice/core/logging'
import { loadConfig } from '@sluice/queue-proxy/config'
import { QueueProxy, type QueueProxyOptions } from '@sluice/queue-proxy/queue-proxy'
import { openSync } from 'node:fs'

export async function listen(server: net.Server, port = 0): Promise<number> {
  server.listen(port, '127.0.0.1')
  await once(server, 'listening')
  return (server.address() as net.AddressInfo).port
}

export async function close(server: net.Server): Promise<void> {
  if (!server.listening) return
  const s = server as http.Server
  if (typeof s.closeAllConnections === 'function') s.closeAllConnections()
  await new Promise<void>((resolve) => server.close(() => resolve()))
}

/** A user container: the handler decides; listens on 127.0.0.1. */
export async function startApp(handler: http.RequestListener): Promise<{ server: http.Server; port: number }> {
  const server = http.createServer(handler)
  const port = await listen(server)
  return { server, port }
}

/** The environment Knative's reconciler gives a queue-proxy (spec §1.3), on ephemeral ports. */
export function knativeEnv(userPort: number, extra: Record<string, string> = {}): Record<string, string> {
  return {
    SERVING_NAMESPACE: 'default',
    SERVING_SERVICE: 'hello',
    SERVING_CONFIGURATION: 'hello',
    SERVING_REVISION: 'hello-00001',
    SERVING_POD: 'hello-00001-deployment-abc',
    SERVING_POD_IP: '127.0.0.1',
    QUEUE_SERVING_PORT: '0',
    QUEUE_SERVING_TLS_PORT: '0',
    USER_PORT: String(userPort),
    CONTAINER_CONCURRENCY: '0',
    REVISION_TIMEOUT_SECONDS: '300',
    SERVING_LOGGING_CONFIG: '',
    SERVING_LOGGING_LEVEL: 'fatal',
    SERVING_READINESS_PROBE: `{"tcpSocket":{"port":${userPort},"host":"127.0.0.1"},"successThreshold":1}`,
    SLUICE_ADMIN_PORT: '0',
    SLUICE_METRICS_PORT: '0',
    SLUICE_USER_METRICS_PORT: '0',
    SLUICE_BIND_ADDRESS: '127.0.0.1',
    ...extra,
  }
}

let devNull: number | undefined

/** Starts a queue-proxy in this process; `stop()` closes it without the drain wait. */
export async function startQueueProxy(env: Record<string, string>, opts: QueueProxyOptions = {}) {
  const cfg = loadConfig({ SLUICE_DRAIN_QUIET_PERIOD: '0s', ...env })
  devNull ??= openSync('/dev/null', 'w')
  const log = createLogger({ name: 'queueproxy', level: cfg.loggingLevel, fd: devNull })
  const qp = await QueueProxy.create(cfg, log, { certsDir: '/nonexistent', ...opts })
  const ports = await qp.start()
  return {
    qp,
    ports,
    url: `http://127.0.0.1:${ports.serving}`,
    stop: () => qp.shutdown(),
  }
}

export interface RawResponse {
  status: number
  headers: http.IncomingHttpHeaders
  body: string
}

/** A plain HTTP/1.1 request with a fresh connection (no pooling surprises). */
export function request(url: string, opts: http.RequestOptions & { body?: string | Buffer } = {}): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { agent: false, ...opts }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString() }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(opts.body)
  })
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

/** Polls `cond` every `stepMs` until it holds (true) or `timeoutMs` passes (false). */
export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs = 2000, stepMs = 5): Promise<boolean> {
  const deadline = performance.now() + timeoutMs
  while (!(await cond())) {
    if (performance.now() > deadline) return false
    await sleep(stepMs)
  }
  return true
}

/** One request on an HTTP/2 session: status and the body as text. */
export function h2Get(session: http2.ClientHttp2Session, path: string, headers: http2.OutgoingHttpHeaders = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const s = session.request({ ':path': path, ...headers })
    let status = 0
    let body = ''
    s.on('response', (h) => { status = Number(h[':status']) })
    s.setEncoding('utf8').on('data', (d: string) => { body += d })
    s.on('end', () => resolve({ status, body }))
    s.on('error', reject)
    s.end()
  })
}
