// One interface over where revisions and their endpoints come from: the
// Kubernetes API (informers) in a cluster, or the local runtime on one machine.

import type { RevisionInfo } from '../revision.ts'

/** Pod destinations of a revision's private service, as "ip:port" (IPv6 bracketed). */
export interface RevisionEndpoints {
  ready: string[]
  notReady: string[]
}

/** The private service's ClusterIP destination ("ip:port"), for the ClusterIP fallback. */
export interface PrivateService {
  clusterDest: string
}

export interface EndpointEvents {
  revisionUpserted(rev: RevisionInfo): void
  revisionDeleted(namespace: string, name: string): void
  /** Private endpoints of a revision changed (Endpoints label serviceType=Private). */
  endpointsUpdated(namespace: string, name: string, eps: RevisionEndpoints): void
  /** Private endpoints object deleted. */
  endpointsDeleted(namespace: string, name: string): void
  /** Activator IPs listed in the revision's public endpoints (subsetting, spec §2.8). */
  activatorsUpdated(namespace: string, name: string, activatorIPs: string[]): void
  /** Private service seen (ClusterIP fallback); absent for the local source. */
  privateServiceUpdated?(namespace: string, name: string, svc: PrivateService | null): void
}

export interface EndpointSource {
  /** Starts watching; resolves once the initial state has been delivered (caches synced). */
  start(events: EndpointEvents): Promise<void>
  stop(): Promise<void>
  /** Revision lookup for the context handler (from the cache). */
  getRevision(namespace: string, name: string): RevisionInfo | undefined
}

/** ConfigMaps of the system namespace (endpoints/config-maps.ts over the API). */
export interface ConfigMapFeed {
  /** `listener` hears the data now (once started) and on every change; undefined = absent. */
  onConfigMap(name: string, listener: (data: Record<string, string> | undefined) => void): void
  /** Resolves once the first list was delivered. */
  start(): Promise<void>
  stop(): Promise<void>
}
