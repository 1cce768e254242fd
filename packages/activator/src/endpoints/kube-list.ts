// One list request to the Kubernetes API, made the way client-node's Watch makes
// its watch request (the kubeconfig's authentication and TLS dispatcher, undici's
// fetch) and answered as plain JSON, as watch events are. client-node's
// generated API clients are not used: they pull in ~900 model classes and the
// serializer (~25 MiB resident, ~0.3 s to load) to give back objects whose
// fields we read by their JSON names anyway.

import { HttpMethod, RequestContext, type KubeConfig } from '@kubernetes/client-node'
import { fetch } from 'undici'

export interface KubeList<T> {
  metadata?: { resourceVersion?: string }
  items?: T[]
}

/** A non-200 answer; `code` as client-node's ApiException carries it (410 Gone relists). */
export class StatusError extends Error {
  readonly code: number
  constructor(code: number, message: string) {
    super(message)
    this.code = code
  }
}

export async function listObjects<T>(kc: KubeConfig, path: string, labelSelector: string | undefined, signal: AbortSignal): Promise<KubeList<T>> {
  const cluster = kc.getCurrentCluster()
  if (!cluster) throw new Error('No currently active cluster')
  const url = new URL(cluster.server + path)
  if (labelSelector !== undefined) url.searchParams.set('labelSelector', labelSelector)
  const ctx = new RequestContext(url.toString(), HttpMethod.GET)
  await kc.applySecurityAuthentication(ctx)
  const res = await fetch(url, { method: 'GET', headers: ctx.getHeaders(), dispatcher: ctx.getDispatcher(), signal })
  if (res.status !== 200) {
    const body = await res.text().catch(() => '')
    throw new StatusError(res.status, `list ${path}: HTTP ${res.status} ${body.slice(0, 200)}`)
  }
  return (await res.json()) as KubeList<T>
}
