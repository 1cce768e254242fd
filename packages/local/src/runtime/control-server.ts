// The runtime's control server on 127.0.0.1 (SLUICE_STATUS_PORT):
//   GET    /status                         what `sluice get` prints
//   POST   /apply                          {"files":[{"path","text"}]}: `sluice apply -f`
//   DELETE /services/{namespace}/{name}    `sluice delete ksvc`
//   GET    /logs?service=ns/name[&revision=R][&follow=1]   `sluice logs`
//   GET    /                               the dashboard page (dashboard-server.ts)
//   GET    /events                         its server-sent events
// Only requests addressed to a loopback host are served, and changes need a
// JSON body or DELETE: a web page elsewhere cannot drive it from a browser.

import http from 'node:http'
import { formatLogLine, type LogStore } from './log-store.ts'
import type { RuntimeStatus } from './status-server.ts'
import type { DashboardServer } from './dashboard-server.ts'

export interface ManifestFile {
  /** Absolute path (relative workingDir in a manifest is resolved from its folder). */
  path: string
  text: string
}

export interface ApplyOutcome {
  namespace: string
  name: string
  /** As kubectl says it. */
  action: 'created' | 'configured' | 'unchanged'
  /** The revision a template change created. */
  revision: string
}

export interface ControlApi {
  status(): RuntimeStatus
  /** Applies all documents or none; throws an Error whose message names the field. */
  applyFiles(files: ManifestFile[]): Promise<ApplyOutcome[]>
  deleteService(namespace: string, name: string): Promise<boolean>
  readonly logs: LogStore
  readonly dashboard: DashboardServer
}

const MAX_BODY = 4 << 20
const LOOPBACK = /^(127\.0\.0\.1|localhost|\[::1\])(:\d+)?$/i

export function createControlServer(api: ControlApi): http.Server {
  return http.createServer((req, res) => {
    if (!LOOPBACK.test(req.headers.host ?? '')) return reply(res, 403, { error: 'only loopback hosts are served' })
    const url = new URL(req.url ?? '/', 'http://localhost')
    const path = url.pathname
    if (req.method === 'GET' && path === '/status') return reply(res, 200, api.status())
    if (req.method === 'POST' && path === '/apply') return void apply(api, req, res)
    if (req.method === 'DELETE' && path.startsWith('/services/')) return void remove(api, path, res)
    if (req.method === 'GET' && path === '/logs') return logs(api, url, req, res)
    if (req.method === 'GET' && api.dashboard.handle(path, req, res)) return
    reply(res, 404, { error: `no such endpoint: ${req.method} ${path}` })
  })
}

async function apply(api: ControlApi, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  if (!(req.headers['content-type'] ?? '').startsWith('application/json')) return reply(res, 415, { error: 'send application/json' })
  let body = ''
  let size = 0
  req.setEncoding('utf8')
  for await (const chunk of req as AsyncIterable<string>) {
    size += chunk.length
    if (size > MAX_BODY) return reply(res, 413, { error: 'manifests larger than 4 MiB' })
    body += chunk
  }
  let files: ManifestFile[]
  try {
    files = (JSON.parse(body) as { files: ManifestFile[] }).files
    if (!Array.isArray(files) || files.some((f) => typeof f?.path !== 'string' || typeof f?.text !== 'string')) throw new Error('bad shape')
  } catch {
    return reply(res, 400, { error: 'the body must be {"files":[{"path":"...","text":"..."}]}' })
  }
  try {
    reply(res, 200, { results: await api.applyFiles(files) })
  } catch (err) {
    reply(res, 400, { error: (err as Error).message })
  }
}

async function remove(api: ControlApi, path: string, res: http.ServerResponse): Promise<void> {
  const parts = path.split('/').filter((p) => p !== '').map(decodeURIComponent)
  if (parts.length !== 3) return reply(res, 404, { error: 'DELETE /services/{namespace}/{name}' })
  const deleted = await api.deleteService(parts[1]!, parts[2]!)
  if (deleted) reply(res, 200, { deleted: `${parts[1]}/${parts[2]}` })
  else reply(res, 404, { error: `services.serving.knative.dev "${parts[2]}" not found in namespace ${parts[1]}` })
}

function logs(api: ControlApi, url: URL, req: http.IncomingMessage, res: http.ServerResponse): void {
  const service = url.searchParams.get('service') ?? ''
  const revision = url.searchParams.get('revision') ?? undefined
  const svc = api.status().services.find((s) => `${s.namespace}/${s.name}` === service)
  if (svc === undefined) return reply(res, 404, { error: `services.serving.knative.dev "${service.split('/')[1] ?? service}" not found` })
  if (revision !== undefined && !svc.revisions.some((r) => r.name === revision)) {
    return reply(res, 404, { error: `revision "${revision}" of service ${service} not found` })
  }
  const q = { service, revision }
  res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' })
  const text = api.logs.read(q).map((l) => formatLogLine(l) + '\n').join('')
  if (url.searchParams.get('follow') !== '1') return void res.end(text)
  res.write(text)
  const stop = api.logs.follow(q, (l) => res.write(formatLogLine(l) + '\n'))
  req.socket.setTimeout(0)
  res.once('close', stop)
}

function reply(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
  res.end(text)
}
