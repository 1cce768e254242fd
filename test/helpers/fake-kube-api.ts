// A small fake Kubernetes API server on 127.0.0.1 speaking real list/watch for
// the collections the activator reads: list responses with a resourceVersion,
// watch streams of newline-delimited JSON events resumed from a
// resourceVersion, label selectors (with selector-transition semantics: an
// object leaving the selector is DELETED for that watch, entering it is ADDED),
// bookmarks, and 410 Gone for compacted resourceVersions. Test controls
// inject failures.

import http from 'node:http'
import { writeFileSync } from 'node:fs'
import { randomUUID } from 'node:crypto'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { KubeConfig } from '@kubernetes/client-node'

export type Kind = 'revisions' | 'endpoints' | 'services' | 'endpointslices' | 'secrets' | 'configmaps'

const KINDS: Record<Kind, { path: string; apiVersion: string; kind: string }> = {
  revisions: { path: '/apis/serving.knative.dev/v1/revisions', apiVersion: 'serving.knative.dev/v1', kind: 'Revision' },
  endpoints: { path: '/api/v1/endpoints', apiVersion: 'v1', kind: 'Endpoints' },
  services: { path: '/api/v1/services', apiVersion: 'v1', kind: 'Service' },
  endpointslices: { path: '/apis/discovery.k8s.io/v1/endpointslices', apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice' },
  secrets: { path: '/api/v1/secrets', apiVersion: 'v1', kind: 'Secret' },
  configmaps: { path: '/api/v1/configmaps', apiVersion: 'v1', kind: 'ConfigMap' },
}

export interface KubeObject {
  apiVersion?: string
  kind?: string
  metadata: {
    name: string
    namespace?: string
    labels?: Record<string, string>
    resourceVersion?: string
    uid?: string
    [k: string]: unknown
  }
  [k: string]: unknown
}

type EventType = 'ADDED' | 'MODIFIED' | 'DELETED'

interface Change {
  rv: number
  type: EventType
  obj: KubeObject
  /** The object before this change (undefined for ADDED). */
  prev: KubeObject | undefined
}

interface Watcher {
  kind: Kind
  selector: Requirement[]
  bookmarks: boolean
  res: http.ServerResponse
}

// ---- label selectors --------------------------------------------------------

interface Requirement {
  key: string
  op: 'eq' | 'neq' | 'in' | 'notin' | 'exists' | 'notexists'
  values: string[]
}

export function parseSelector(s: string | null): Requirement[] {
  if (!s) return []
  const parts: string[] = []
  let depth = 0
  let cur = ''
  for (const ch of s) {
    if (ch === '(') depth++
    if (ch === ')') depth--
    if (ch === ',' && depth === 0) {
      parts.push(cur)
      cur = ''
    } else cur += ch
  }
  parts.push(cur)
  return parts.map((raw) => {
    const p = raw.trim()
    let m = /^!\s*([^\s=!(),]+)$/.exec(p)
    if (m) return { key: m[1]!, op: 'notexists', values: [] }
    m = /^([^\s=!(),]+)\s+(in|notin)\s*\(([^)]*)\)$/.exec(p)
    if (m) return { key: m[1]!, op: m[2] as 'in' | 'notin', values: m[3]!.split(',').map((v) => v.trim()) }
    m = /^([^\s=!(),]+)\s*(==|=|!=)\s*([^\s=!(),]*)$/.exec(p)
    if (m) return { key: m[1]!, op: m[2] === '!=' ? 'neq' : 'eq', values: [m[3]!] }
    m = /^([^\s=!(),]+)$/.exec(p)
    if (m) return { key: m[1]!, op: 'exists', values: [] }
    throw new Error(`unparsable label selector: ${JSON.stringify(s)}`)
  })
}

function matches(sel: Requirement[], obj: KubeObject | undefined): boolean {
  if (!obj) return false
  const labels = obj.metadata.labels ?? {}
  return sel.every((r) => {
    const v = labels[r.key]
    switch (r.op) {
      case 'eq':
        return v === r.values[0]
      case 'neq':
        return v !== r.values[0]
      case 'in':
        return v !== undefined && r.values.includes(v)
      case 'notin':
        return v === undefined || !r.values.includes(v)
      case 'exists':
        return v !== undefined
      case 'notexists':
        return v === undefined
    }
  })
}

/** The event a watcher with this selector sees for a change, if any. */
function eventFor(sel: Requirement[], c: Change): { type: EventType; object: KubeObject } | undefined {
  const now = c.type !== 'DELETED' && matches(sel, c.obj)
  const before = matches(sel, c.prev)
  if (now && before) return { type: 'MODIFIED', object: c.obj }
  if (now) return { type: 'ADDED', object: c.obj }
  if (before) return { type: 'DELETED', object: c.obj }
  return undefined
}

function status(code: number, reason: string, message: string) {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code }
}

// ---- the server -------------------------------------------------------------

export class FakeKubeApi {
  readonly url: string
  /**
   * How a watch from a compacted resourceVersion is refused: 'event' = 200 and
   * an ERROR event with code 410 (what the API server's watch cache does),
   * 'status' = an HTTP 410 response.
   */
  goneAs: 'event' | 'status' = 'event'
  /** Every list and watch request received, in order. */
  readonly requests: { kind: Kind; watch: boolean; resourceVersion: string | null; labelSelector: string | null }[] = []
  /** Watches refused with 410 Gone (either way). */
  gone = 0

  private readonly server: http.Server
  private rv = 100
  /** Watches from a resourceVersion older than this get 410 Gone. */
  private oldestRv = 0
  private readonly stores = new Map<Kind, Map<string, KubeObject>>()
  private readonly changes = new Map<Kind, Change[]>()
  private readonly watchers = new Set<Watcher>()
  private readonly listFailures: { status: number; kind: Kind | undefined }[] = []
  private watchFailure: number | undefined
  private stalling = false
  private readonly stalled = new Set<http.ServerResponse>()

  private constructor(server: http.Server, url: string) {
    this.server = server
    this.url = url
    for (const k of Object.keys(KINDS) as Kind[]) {
      this.stores.set(k, new Map())
      this.changes.set(k, [])
    }
  }

  static async start(): Promise<FakeKubeApi> {
    // Assigned once the server listens; the handler only runs after that.
    // eslint-disable-next-line prefer-const
    let api: FakeKubeApi | undefined
    const server = http.createServer((req, res) => api!.handle(req, res))
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    api = new FakeKubeApi(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`)
    return api
  }

  // -- test controls

  /** Creates or replaces an object; returns the stored copy (with its new resourceVersion). */
  upsert(kind: Kind, obj: KubeObject): KubeObject {
    const store = this.stores.get(kind)!
    const key = `${obj.metadata.namespace ?? ''}/${obj.metadata.name}`
    const prev = store.get(key)
    const stored = structuredClone(obj)
    stored.apiVersion ??= KINDS[kind].apiVersion
    stored.kind ??= KINDS[kind].kind
    stored.metadata.uid = prev?.metadata.uid ?? stored.metadata.uid ?? randomUUID()
    stored.metadata.resourceVersion = String(++this.rv)
    store.set(key, stored)
    this.record(kind, { rv: this.rv, type: prev ? 'MODIFIED' : 'ADDED', obj: stored, prev })
    return stored
  }

  remove(kind: Kind, namespace: string, name: string): boolean {
    const store = this.stores.get(kind)!
    const key = `${namespace}/${name}`
    const prev = store.get(key)
    if (!prev) return false
    store.delete(key)
    const obj = structuredClone(prev)
    obj.metadata.resourceVersion = String(++this.rv)
    this.record(kind, { rv: this.rv, type: 'DELETED', obj, prev })
    return true
  }

  /** Closes every open watch: abruptly (connection reset, the default) or by ending the stream. */
  dropWatches(how: 'reset' | 'end' = 'reset'): void {
    for (const w of this.watchers) {
      this.watchers.delete(w)
      if (how === 'end') w.res.end()
      else w.res.destroy()
    }
  }

  /** Sends every open watch an ERROR event with code 410 and closes it (watch cache expiry). */
  expireWatches(): void {
    for (const w of this.watchers) {
      this.watchers.delete(w)
      w.res.end(JSON.stringify({ type: 'ERROR', object: status(410, 'Expired', 'too old resource version') }) + '\n')
    }
  }

  /** The next list (of `kind`, or of any kind) fails with this HTTP status. Calls queue up. */
  failNextList(status: number, kind?: Kind): void {
    this.listFailures.push({ status, kind })
  }

  /** While set, every watch request fails with this HTTP status; undefined ends it. */
  failWatches(status: number | undefined): void {
    this.watchFailure = status
  }

  /** While on, list requests get no answer at all (until the client gives up). */
  stallLists(on: boolean): void {
    this.stalling = on
  }

  /** Unanswered list requests whose client is still connected. */
  stalledLists(): number {
    return this.stalled.size
  }

  /** Forgets history: every resourceVersion older than the current one is now too old (410). */
  compact(): void {
    this.oldestRv = this.rv
    for (const [kind, log] of this.changes) this.changes.set(kind, log.filter((c) => c.rv > this.rv))
  }

  /** Sends a BOOKMARK with the current resourceVersion to watches that asked for bookmarks. */
  bookmark(): void {
    for (const w of this.watchers) {
      if (!w.bookmarks) continue
      const { apiVersion, kind } = KINDS[w.kind]
      this.send(w.res, 'BOOKMARK', { apiVersion, kind, metadata: { name: '', resourceVersion: String(this.rv) } })
    }
  }

  /** Bumps the resourceVersion without a change any selector sees (another object changed). */
  tick(): void {
    ++this.rv
  }

  openWatches(kind?: Kind): number {
    let n = 0
    for (const w of this.watchers) if (kind === undefined || w.kind === kind) n++
    return n
  }

  lists(kind: Kind): number {
    return this.requests.filter((r) => r.kind === kind && !r.watch).length
  }

  watches(kind: Kind): number {
    return this.requests.filter((r) => r.kind === kind && r.watch).length
  }

  async close(): Promise<void> {
    this.dropWatches()
    for (const res of this.stalled) res.destroy()
    this.server.closeAllConnections()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }

  // -- HTTP

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://fake')
    // A namespaced collection (/api/v1/namespaces/<ns>/secrets) is served as the
    // cluster-wide one: tests keep such objects in one namespace.
    const path = url.pathname.replace(/^\/api\/v1\/namespaces\/[^/]+\/([a-z]+)$/, '/api/v1/$1')
    const kind = (Object.keys(KINDS) as Kind[]).find((k) => KINDS[k].path === path)
    if (req.method !== 'GET' || !kind) return this.reply(res, 404, status(404, 'NotFound', `${req.method} ${url.pathname}`))
    const watch = url.searchParams.get('watch') === 'true' || url.searchParams.get('watch') === '1'
    const labelSelector = url.searchParams.get('labelSelector')
    const resourceVersion = url.searchParams.get('resourceVersion')
    this.requests.push({ kind, watch, resourceVersion, labelSelector })
    let selector: Requirement[]
    try {
      selector = parseSelector(labelSelector)
    } catch (err) {
      return this.reply(res, 400, status(400, 'BadRequest', String(err)))
    }
    if (watch) this.serveWatch(kind, selector, resourceVersion, url.searchParams.get('allowWatchBookmarks') === 'true', res)
    else this.serveList(kind, selector, res)
  }

  private serveList(kind: Kind, selector: Requirement[], res: http.ServerResponse): void {
    if (this.stalling) {
      this.stalled.add(res)
      res.on('close', () => this.stalled.delete(res))
      return
    }
    const i = this.listFailures.findIndex((f) => f.kind === undefined || f.kind === kind)
    if (i >= 0) {
      const [f] = this.listFailures.splice(i, 1)
      return this.reply(res, f!.status, status(f!.status, 'InternalError', 'injected list failure'))
    }
    const items = [...this.stores.get(kind)!.values()].filter((o) => matches(selector, o))
    this.reply(res, 200, {
      kind: `${KINDS[kind].kind}List`,
      apiVersion: KINDS[kind].apiVersion,
      metadata: { resourceVersion: String(this.rv) },
      items,
    })
  }

  private serveWatch(kind: Kind, selector: Requirement[], rvParam: string | null, bookmarks: boolean, res: http.ServerResponse): void {
    if (this.watchFailure !== undefined) {
      return this.reply(res, this.watchFailure, status(this.watchFailure, 'ServiceUnavailable', 'injected watch failure'))
    }
    const fromStart = rvParam === null || rvParam === '' || rvParam === '0'
    const from = fromStart ? 0 : Number(rvParam)
    const gone = !fromStart && (!Number.isFinite(from) || from < this.oldestRv)
    const message = `too old resource version: ${rvParam} (${this.oldestRv})`
    if (gone) this.gone++
    if (gone && this.goneAs === 'status') return this.reply(res, 410, status(410, 'Expired', message))

    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' })
    res.flushHeaders()
    if (gone) {
      res.end(JSON.stringify({ type: 'ERROR', object: status(410, 'Expired', message) }) + '\n')
      return
    }
    if (fromStart) {
      // No resourceVersion: the current state as synthetic ADDED events, then changes.
      for (const o of this.stores.get(kind)!.values()) if (matches(selector, o)) this.send(res, 'ADDED', o)
    } else {
      for (const c of this.changes.get(kind)!) {
        if (c.rv <= from) continue
        const ev = eventFor(selector, c)
        if (ev) this.send(res, ev.type, ev.object)
      }
    }
    const w: Watcher = { kind, selector, bookmarks, res }
    this.watchers.add(w)
    res.on('close', () => this.watchers.delete(w))
  }

  private record(kind: Kind, c: Change): void {
    this.changes.get(kind)!.push(c)
    for (const w of this.watchers) {
      if (w.kind !== kind) continue
      const ev = eventFor(w.selector, c)
      if (ev) this.send(w.res, ev.type, ev.object)
    }
  }

  private send(res: http.ServerResponse, type: string, object: unknown): void {
    res.write(JSON.stringify({ type, object }) + '\n')
  }

  private reply(res: http.ServerResponse, code: number, body: unknown): void {
    res.writeHead(code, { 'content-type': 'application/json' })
    res.end(JSON.stringify(body))
  }
}

/** A KubeConfig pointing at the fake server (plain HTTP, no credentials). */
export function kubeConfigFor(api: { url: string }): KubeConfig {
  const kc = new KubeConfig()
  kc.loadFromOptions({
    // client-node refuses http:// servers unless TLS verification is off.
    clusters: [{ name: 'fake', server: api.url, skipTLSVerify: true }],
    users: [{ name: 'fake' }],
    contexts: [{ name: 'fake', cluster: 'fake', user: 'fake' }],
    currentContext: 'fake',
  })
  return kc
}

/** The same configuration as a kubeconfig file at `path`, for processes (KUBECONFIG). */
export function writeKubeconfigFor(api: { url: string }, path: string): void {
  writeFileSync(path, JSON.stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'fake', cluster: { server: api.url, 'insecure-skip-tls-verify': true } }],
    users: [{ name: 'fake', user: {} }],
    contexts: [{ name: 'fake', context: { cluster: 'fake', user: 'fake' } }],
    'current-context': 'fake',
  }))
}
