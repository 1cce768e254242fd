// The endpoint source of the single-machine runtime: revisions and endpoints
// are pushed in, programmatically or over a small HTTP API (the local
// runtime runs the activator as its own process, so it speaks HTTP):
//   PUT    /revisions/{ns}/{name}   RevisionInfo JSON
//   DELETE /revisions/{ns}/{name}
//   PUT    /endpoints/{ns}/{name}   {"ready": ["ip:port"], "notReady": [...]}
//   GET    /revisions               list (for debugging)

import http from 'node:http'
import { once } from 'node:events'
import type net from 'node:net'
import { revisionKey, splitRevisionKey, type RevisionInfo } from '../revision.ts'
import type { EndpointEvents, EndpointSource, RevisionEndpoints } from './source.ts'

export class LocalSource implements EndpointSource {
  private readonly revisions = new Map<string, RevisionInfo>()
  private readonly endpoints = new Map<string, RevisionEndpoints>()
  private events: EndpointEvents | null = null
  private server: http.Server | null = null

  async start(events: EndpointEvents): Promise<void> {
    this.events = events
    for (const rev of this.revisions.values()) events.revisionUpserted(rev)
    for (const [key, eps] of this.endpoints) {
      const [ns, name] = splitRevisionKey(key)
      events.endpointsUpdated(ns, name, eps)
    }
  }

  async stop(): Promise<void> {
    this.events = null
    if (this.server !== null) {
      this.server.closeAllConnections()
      await new Promise<void>((resolve) => this.server!.close(() => resolve()))
      this.server = null
    }
  }

  getRevision(namespace: string, name: string): RevisionInfo | undefined {
    return this.revisions.get(revisionKey(namespace, name))
  }

  upsertRevision(rev: RevisionInfo): void {
    validateRevision(rev)
    this.revisions.set(revisionKey(rev.namespace, rev.name), rev)
    this.events?.revisionUpserted(rev)
  }

  deleteRevision(namespace: string, name: string): void {
    const key = revisionKey(namespace, name)
    this.revisions.delete(key)
    if (this.endpoints.delete(key)) this.events?.endpointsDeleted(namespace, name)
    this.events?.revisionDeleted(namespace, name)
  }

  setEndpoints(namespace: string, name: string, eps: RevisionEndpoints): void {
    const clean = { ready: [...eps.ready], notReady: [...(eps.notReady ?? [])] }
    this.endpoints.set(revisionKey(namespace, name), clean)
    this.events?.endpointsUpdated(namespace, name, clean)
  }

  /** Serves the HTTP API on 127.0.0.1:port (0 = ephemeral); returns the port. */
  async listen(port: number, host = '127.0.0.1'): Promise<number> {
    this.server = http.createServer((req, res) => this.handle(req, res))
    this.server.listen(port, host)
    await once(this.server, 'listening')
    return (this.server.address() as net.AddressInfo).port
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const parts = (req.url ?? '').split('?')[0]!.split('/').filter((p) => p !== '').map(decodeURIComponent)
    if (req.method === 'GET' && parts.length === 1 && parts[0] === 'revisions') {
      return reply(res, 200, JSON.stringify([...this.revisions.values()]))
    }
    if (parts.length !== 3 || (parts[0] !== 'revisions' && parts[0] !== 'endpoints')) return reply(res, 404, '{"error":"not found"}')
    const [kind, ns, name] = parts as [string, string, string]
    if (req.method === 'DELETE' && kind === 'revisions') {
      this.deleteRevision(ns, name)
      return reply(res, 200, '{}')
    }
    if (req.method !== 'PUT') return reply(res, 405, '{"error":"method not allowed"}')
    readJson(req).then((body) => {
      if (kind === 'revisions') this.upsertRevision({ ...(body as RevisionInfo), namespace: ns, name })
      else this.setEndpoints(ns, name, validateEndpoints(body))
      reply(res, 200, '{}')
    }).catch((err: Error) => reply(res, 400, JSON.stringify({ error: err.message })))
  }
}

function reply(res: http.ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'application/json' })
  res.end(body)
}

async function readJson(req: http.IncomingMessage): Promise<unknown> {
  let text = ''
  for await (const chunk of req) {
    text += chunk
    if (text.length > 1 << 20) throw new Error('body too large')
  }
  try {
    return JSON.parse(text)
  } catch (err) {
    throw new Error(`invalid JSON: ${(err as Error).message}`, { cause: err })
  }
}

const DEST = /^(\[[0-9a-fA-F:.]+\]|[0-9.]+|[A-Za-z0-9.-]+):\d{1,5}$/

function validateEndpoints(body: unknown): RevisionEndpoints {
  const b = body as Partial<RevisionEndpoints> | null
  if (b === null || typeof b !== 'object' || !Array.isArray(b.ready)) throw new Error('endpoints: "ready" must be an array of "ip:port"')
  const notReady = b.notReady ?? []
  if (!Array.isArray(notReady)) throw new Error('endpoints: "notReady" must be an array')
  for (const d of [...b.ready, ...notReady]) {
    if (typeof d !== 'string' || !DEST.test(d)) throw new Error(`endpoints: invalid destination ${JSON.stringify(d)}`)
  }
  return { ready: b.ready, notReady }
}

function validateRevision(rev: RevisionInfo): void {
  if (!Number.isInteger(rev.containerConcurrency) || rev.containerConcurrency < 0) throw new Error('revision: containerConcurrency must be an integer >= 0')
  if (rev.protocol !== 'http1' && rev.protocol !== 'h2c') throw new Error('revision: protocol must be "http1" or "h2c"')
  if (!(rev.timeoutSeconds > 0)) throw new Error('revision: timeoutSeconds must be > 0')
  rev.responseStartTimeoutSeconds ??= 0
  rev.idleTimeoutSeconds ??= 0
  rev.serviceName ??= ''
  rev.configurationName ??= ''
  rev.execReadinessProbe ??= false
}
