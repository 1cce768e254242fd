// Which revision is this request for (spec §2.5)? The Knative-Serving-Namespace
// and -Revision headers the ingress adds, else a `<rev>.<ns>.svc.<cluster-domain>`
// Host. Unknown revisions get Knative's 404 body.

import type { RevisionInfo } from '../revision.ts'

export interface RevisionLookup {
  getRevision(namespace: string, name: string): RevisionInfo | undefined
}

export type ContextResult =
  | { ok: true; revision: RevisionInfo }
  | { ok: false; status: 404 | 500; body: string }

export function identifyRevision(lookup: RevisionLookup, nsHeader: string, revHeader: string, host: string, clusterDomain: string): ContextResult {
  let namespace = nsHeader
  let name = revHeader
  if (namespace === '' || name === '') {
    const parts = splitN(host, '.', 4)
    if (parts.length === 4 && parts[2] === 'svc' && stripPort(parts[3]!) === clusterDomain) {
      name = parts[0]!
      namespace = parts[1]!
    }
  }
  let revision: RevisionInfo | undefined
  try {
    revision = lookup.getRevision(namespace, name)
  } catch (err) {
    return { ok: false, status: 500, body: `Error getting active endpoint: ${(err as Error).message}\n` }
  }
  if (revision === undefined) {
    return { ok: false, status: 404, body: `Error getting active endpoint: revision.serving.knative.dev "${name}" not found\n` }
  }
  return { ok: true, revision }
}

/** Go's strings.SplitN: the last part keeps the rest of the string. */
function splitN(s: string, sep: string, n: number): string[] {
  const out: string[] = []
  let start = 0
  while (out.length < n - 1) {
    const i = s.indexOf(sep, start)
    if (i === -1) break
    out.push(s.slice(start, i))
    start = i + sep.length
  }
  out.push(s.slice(start))
  return out
}

function stripPort(hostPart: string): string {
  const i = hostPart.lastIndexOf(':')
  return i === -1 ? hostPart : hostPart.slice(0, i)
}
