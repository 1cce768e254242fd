// The Route side of a Service: spec.traffic resolved to revisions, the hosts
// Knative gives it ({name}.{namespace}.{domain}; {tag}-{name}.{namespace}.{domain}
// per tag, the default domain template and tag template), weighted picking
// and Host-header lookup for the local ingress.

import { ManifestError, type ServiceSpec } from './service.ts'

export const DEFAULT_DOMAIN = 'example.com'

export function serviceHost(name: string, namespace: string, domain = DEFAULT_DOMAIN): string {
  return `${name}.${namespace}.${domain}`
}

export function tagHost(tag: string, name: string, namespace: string, domain = DEFAULT_DOMAIN): string {
  return `${tag}-${name}.${namespace}.${domain}`
}

/** What the route needs to know about each revision, oldest first. */
export interface RevisionState {
  name: string
  ready: boolean
}

/** One entry of the Route's status.traffic. */
export interface ResolvedTarget {
  tag: string | undefined
  revisionName: string
  latestRevision: boolean
  percent: number
  /** The tag's URL; undefined for untagged targets. */
  url: string | undefined
}

export interface RevisionWeight {
  revision: string
  percent: number
}

export interface TagRoute {
  tag: string
  revision: string
  host: string
  url: string
}

export interface ResolvedRoute {
  name: string
  namespace: string
  host: string
  url: string
  traffic: ResolvedTarget[]
  /** Revisions with a share of the main host's traffic (> 0%), merged, in first-target order. */
  weights: RevisionWeight[]
  tags: TagRoute[]
}

/** The route cannot be programmed yet; Knative keeps the previous one and reports the reason. */
export class RouteError extends Error {
  readonly reason: 'RevisionMissing'
  constructor(message: string) {
    super(message)
    this.name = 'RouteError'
    this.reason = 'RevisionMissing'
  }
}

export type RouteSpec = Pick<ServiceSpec, 'name' | 'namespace' | 'traffic'> & { source?: string }

/**
 * Resolves spec.traffic against the revisions: latestRevision targets go to the
 * newest ready revision (so an update that never becomes ready takes no traffic).
 * Throws ManifestError for invalid traffic, RouteError for a missing or unready revision.
 */
export function resolveRoute(spec: RouteSpec, revisions: readonly RevisionState[], domain = DEFAULT_DOMAIN): ResolvedRoute {
  checkTraffic(spec)
  const { name, namespace } = spec
  let latestReady: string | undefined
  for (let i = revisions.length - 1; i >= 0 && latestReady === undefined; i--) if (revisions[i]!.ready) latestReady = revisions[i]!.name
  const host = serviceHost(name, namespace, domain)
  const route: ResolvedRoute = { name, namespace, host, url: `http://${host}`, traffic: [], weights: [], tags: [] }
  for (const t of spec.traffic) {
    let revision: string
    if (t.latestRevision) {
      if (latestReady === undefined) throw new RouteError(`Configuration "${name}" is waiting for a Revision to become ready.`)
      revision = latestReady
    } else {
      revision = t.revisionName!
      const state = revisions.find((r) => r.name === revision)
      if (!state) throw new RouteError(`Revision "${revision}" referenced in traffic not found.`)
      if (!state.ready) throw new RouteError(`Revision "${revision}" is not yet ready.`)
    }
    let url: string | undefined
    if (t.tag !== undefined) {
      const th = tagHost(t.tag, name, namespace, domain)
      url = `http://${th}`
      route.tags.push({ tag: t.tag, revision, host: th, url })
    }
    route.traffic.push({ tag: t.tag, revisionName: revision, latestRevision: t.latestRevision, percent: t.percent, url })
    if (t.percent === 0) continue
    const w = route.weights.find((x) => x.revision === revision)
    if (w) w.percent += t.percent
    else route.weights.push({ revision, percent: t.percent })
  }
  return route
}

// The parser checks these too; routes may also be built from specs made in code.
function checkTraffic(spec: RouteSpec): void {
  const source = spec.source ?? `${spec.namespace}/${spec.name}`
  let sum = 0
  const tags = new Set<string>()
  spec.traffic.forEach((t, i) => {
    if (!Number.isInteger(t.percent) || t.percent < 0 || t.percent > 100) {
      throw new ManifestError(source, [{ path: `spec.traffic[${i}].percent`, message: `must be an integer 0-100, got ${t.percent}` }])
    }
    if (t.latestRevision === (t.revisionName !== undefined)) {
      throw new ManifestError(source, [{ path: `spec.traffic[${i}]`, message: 'set exactly one of revisionName and latestRevision: true' }])
    }
    if (t.tag !== undefined && tags.has(t.tag)) {
      throw new ManifestError(source, [{ path: `spec.traffic[${i}].tag`, message: `duplicate tag ${JSON.stringify(t.tag)}` }])
    }
    if (t.tag !== undefined) tags.add(t.tag)
    sum += t.percent
  })
  if (sum !== 100) throw new ManifestError(source, [{ path: 'spec.traffic', message: `percent values sum to ${sum}, want 100` }])
}

/** Weighted choice of a revision for one request to the main host; random() in [0, 1). */
export function pickRevision(route: ResolvedRoute, random: () => number = Math.random): string {
  const weights = route.weights
  let r = random() * 100
  for (let i = 0; i < weights.length - 1; i++) {
    r -= weights[i]!.percent
    if (r < 0) return weights[i]!.revision
  }
  return weights[weights.length - 1]!.revision
}

export interface HostMatch {
  route: ResolvedRoute
  /** Set for a tag host: all of its traffic goes to this revision. */
  revision: string | undefined
  tag: string | undefined
}

const LOCAL_HOSTS = ['localhost', '127.0.0.1', '[::1]']

/** Host → route for the local ingress; keys are lower-case hosts without port. */
export class RouteTable {
  readonly #routes = new Map<string, ResolvedRoute>()
  #byHost = new Map<string, HostMatch>()

  /** Adds or replaces the route of one Service. Throws if a host belongs to another Service. */
  set(route: ResolvedRoute): void {
    const key = `${route.namespace}/${route.name}`
    const previous = this.#routes.get(key)
    this.#routes.set(key, route)
    try {
      this.#reindex()
    } catch (err) {
      if (previous) this.#routes.set(key, previous)
      else this.#routes.delete(key)
      this.#reindex()
      throw err
    }
  }

  delete(namespace: string, name: string): boolean {
    const deleted = this.#routes.delete(`${namespace}/${name}`)
    if (deleted) this.#reindex()
    return deleted
  }

  get(namespace: string, name: string): ResolvedRoute | undefined {
    return this.#routes.get(`${namespace}/${name}`)
  }

  routes(): ResolvedRoute[] {
    return [...this.#routes.values()]
  }

  /** The route for a Host header value (port ignored, case-insensitive); localhost means the only Service. */
  routeForHost(host: string): HostMatch | undefined {
    return this.#byHost.get(normaliseHost(host))
  }

  #reindex(): void {
    const byHost = new Map<string, HostMatch>()
    const claim = (host: string, match: HostMatch) => {
      const key = host.toLowerCase()
      const owner = byHost.get(key)
      if (owner && owner.route !== match.route) {
        throw new Error(`host ${host} of Service ${match.route.namespace}/${match.route.name} is already used by Service ${owner.route.namespace}/${owner.route.name}`)
      }
      byHost.set(key, match)
    }
    for (const route of this.#routes.values()) {
      claim(route.host, { route, revision: undefined, tag: undefined })
      for (const t of route.tags) claim(t.host, { route, revision: t.revision, tag: t.tag })
    }
    if (this.#routes.size === 1) {
      const route = this.#routes.values().next().value!
      for (const h of LOCAL_HOSTS) if (!byHost.has(h)) byHost.set(h, { route, revision: undefined, tag: undefined })
    }
    this.#byHost = byHost
  }
}

/** "Foo.Example.com:8080" → "foo.example.com"; "[::1]:80" → "[::1]"; a trailing dot is dropped. */
export function normaliseHost(host: string): string {
  let end = host.length
  if (host.startsWith('[')) {
    const close = host.indexOf(']')
    if (close !== -1) end = close + 1
  } else {
    const colon = host.lastIndexOf(':')
    if (colon !== -1) end = colon
  }
  if (end > 0 && host.charCodeAt(end - 1) === 46 /* . */) end--
  return (end === host.length ? host : host.slice(0, end)).toLowerCase()
}
