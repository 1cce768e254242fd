// `sluice get ksvc|revisions|routes`: the tables `kubectl get` prints for
// Knative's resources (the CRDs' additionalPrinterColumns), laid out the way
// kubectl's tabwriter does it: every column but the last is padded to its
// widest cell plus 3 spaces (at least 6 wide); the last column is not padded.

export type ConditionStatus = 'True' | 'False' | 'Unknown'

export interface ServiceRow {
  name: string
  namespace: string
  url: string
  latestCreatedRevisionName: string
  latestReadyRevisionName: string
  ready: ConditionStatus
  reason: string
}

export interface RevisionRow {
  name: string
  namespace: string
  configurationName: string
  /** status.serviceName: not set by current Knative, so usually empty. */
  k8sServiceName?: string
  /** Label serving.knative.dev/configurationGeneration. */
  generation: number
  ready: ConditionStatus
  reason: string
  actualReplicas?: number
  desiredReplicas?: number
}

export interface RouteRow {
  name: string
  namespace: string
  url: string
  ready: ConditionStatus
  reason: string
}

export interface TableOptions {
  /** -A: a NAMESPACE column first. */
  allNamespaces?: boolean
  /** --no-headers. */
  noHeaders?: boolean
}

const MIN_WIDTH = 6
const PADDING = 3

/** Rows as text, one line each ending in a newline, columns aligned like kubectl. */
export function renderTable(headers: readonly string[], rows: readonly (readonly string[])[], noHeaders = false): string {
  const all = noHeaders ? rows : [headers, ...rows]
  const widths = headers.map((_, col) => Math.max(MIN_WIDTH, ...all.map((r) => width(r[col] ?? '') + PADDING)))
  let out = ''
  for (const r of all) {
    let line = ''
    for (let col = 0; col < headers.length; col++) {
      const cell = r[col] ?? ''
      line += col === headers.length - 1 ? cell : cell + ' '.repeat(widths[col]! - width(cell))
    }
    out += line + '\n'
  }
  return out
}

export function renderServices(rows: readonly ServiceRow[], options: TableOptions = {}): string {
  return table(['NAME', 'URL', 'LATESTCREATED', 'LATESTREADY', 'READY', 'REASON'], rows, options,
    (s) => [s.name, s.url, s.latestCreatedRevisionName, s.latestReadyRevisionName, s.ready, s.reason])
}

export function renderRevisions(rows: readonly RevisionRow[], options: TableOptions = {}): string {
  return table(['NAME', 'CONFIG NAME', 'K8S SERVICE NAME', 'GENERATION', 'READY', 'REASON', 'ACTUAL REPLICAS', 'DESIRED REPLICAS'], rows, options,
    (r) => [r.name, r.configurationName, r.k8sServiceName ?? '', String(r.generation), r.ready, r.reason, count(r.actualReplicas), count(r.desiredReplicas)])
}

export function renderRoutes(rows: readonly RouteRow[], options: TableOptions = {}): string {
  return table(['NAME', 'URL', 'READY', 'REASON'], rows, options, (r) => [r.name, r.url, r.ready, r.reason])
}

/** What kubectl writes (to stderr) when the list is empty. */
export function noResourcesFound(namespace?: string): string {
  return namespace === undefined ? 'No resources found\n' : `No resources found in ${namespace} namespace.\n`
}

// Sorted by namespace, then name: the order the API server lists objects in.
function table<T extends { name: string; namespace: string }>(headers: string[], rows: readonly T[], options: TableOptions, cells: (row: T) => string[]): string {
  const sorted = [...rows].sort((a, b) => compare(a.namespace, b.namespace) || compare(a.name, b.name))
  const lines = sorted.map((r) => options.allNamespaces ? [r.namespace, ...cells(r)] : cells(r))
  const head = options.allNamespaces ? ['NAMESPACE', ...headers] : headers
  return renderTable(head, lines, options.noHeaders)
}

function count(n: number | undefined): string {
  return n === undefined ? '' : String(n)
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

/** Display width as Go's tabwriter counts it: one per code point. */
function width(s: string): number {
  let n = 0
  for (const _ of s) n++
  return n
}
