// What the dashboard shows, sampled once a second per revision: instances
// (actual, desired, the autoscaler's recommendation, panic), observed
// concurrency against the target, request rate and latency percentiles at
// the ingress, requests waiting in the activator; plus each cold start and
// each scale decision with its inputs. A bounded history per revision lets a
// page opened late draw the last minutes.

import type { ScaleEvent } from '../autoscaler/autoscaler.ts'
import type { RuntimeStatus } from './status-server.ts'

export interface Sample {
  /** Date.now() of the sample. */
  t: number
  actual: number
  desired: number
  /** The KPA math's own answer; null before it had data. */
  recommended: number | null
  panicking: boolean
  /** Observed concurrency (or rps) over the stable and the panic window; null without data. */
  observed: number | null
  observedPanic: number | null
  /** Requests answered per second at the ingress over the last second, and how many were not 2xx/3xx/4xx. */
  rps: number
  errors: number
  /** Latency percentiles (ms) of the last second's requests; null when there were none. */
  p50: number | null
  p90: number | null
  p99: number | null
  /** Requests waiting for capacity in the activator. */
  buffered: number
}

export interface ColdStart {
  at: number
  instance: string
  /** Spawn to ready. */
  ms: number
}

export interface DecisionRow {
  at: number
  from: number
  to: number
  cause: string
  panicking: boolean
  observedStable: number | null
  observedPanic: number | null
  readyPods: number
  recommended: number
  target: number
  reason: string
}

export interface DashboardRevision {
  name: string
  ready: boolean
  /** Percent of the main host's traffic; tags reaching it. */
  percent: number
  tags: string[]
  target: number | null
  metric: string
  latest: Sample
  coldStarts: ColdStart[]
  decisions: DecisionRow[]
}

export interface DashboardService {
  key: string
  name: string
  namespace: string
  url: string
  ready: boolean
  revisions: DashboardRevision[]
}

export interface DashboardTick {
  t: number
  ingress: string
  services: DashboardService[]
}

export const HISTORY_SAMPLES = 600
const MAX_LATENCIES = 4096
const MAX_LIST = 50

interface RevisionData {
  history: Sample[]
  coldStarts: ColdStart[]
  count: number
  errors: number
  latencies: number[]
}

export interface DashboardSources {
  status(): RuntimeStatus
  scaleEvents(key: string): readonly ScaleEvent[]
  /** Requests waiting in the activator per "<namespace>/<revision>" (last scrape). */
  buffered(key: string): number
  metric(key: string): string
}

export class DashboardData {
  private readonly revisions = new Map<string, RevisionData>()
  private readonly sources: DashboardSources

  constructor(sources: DashboardSources) {
    this.sources = sources
  }

  private data(key: string): RevisionData {
    let d = this.revisions.get(key)
    if (d === undefined) {
      d = { history: [], coldStarts: [], count: 0, errors: 0, latencies: [] }
      this.revisions.set(key, d)
    }
    return d
  }

  /** One request through the ingress finished (per request: no allocation beyond the array slot). */
  requestDone(key: string, ms: number, status: number): void {
    const d = this.revisions.get(key)
    if (d === undefined) return
    d.count++
    if (status >= 500 || status === 0) d.errors++
    if (d.latencies.length < MAX_LATENCIES) d.latencies.push(ms)
  }

  coldStart(key: string, instance: string, ms: number): void {
    const list = this.data(key).coldStarts
    if (list.push({ at: Date.now(), instance, ms: Math.round(ms) }) > MAX_LIST) list.shift()
  }

  forget(key: string): void {
    this.revisions.delete(key)
  }

  /** Takes this second's sample of every revision (call once a second) and returns the whole picture. */
  tick(): DashboardTick {
    const t = Date.now()
    const st = this.sources.status()
    const services: DashboardService[] = []
    for (const s of st.services) {
      const revisions: DashboardRevision[] = []
      for (const r of s.revisions) {
        const key = `${s.namespace}/${r.name}`
        const d = this.data(key)
        const a = r.autoscaler
        const lat = d.latencies.sort((x, y) => x - y)
        const sample: Sample = {
          t,
          actual: r.actual,
          desired: r.desired,
          recommended: a === null || a.recommended < 0 ? null : a.recommended,
          panicking: a?.panicking ?? false,
          observed: finite(a?.observedStable),
          observedPanic: finite(a?.observedPanic),
          rps: d.count,
          errors: d.errors,
          p50: percentile(lat, 0.5),
          p90: percentile(lat, 0.9),
          p99: percentile(lat, 0.99),
          buffered: this.sources.buffered(key),
        }
        d.count = 0
        d.errors = 0
        d.latencies = []
        if (d.history.push(sample) > HISTORY_SAMPLES) d.history.shift()
        let percent = 0
        const tags: string[] = []
        for (const tr of s.traffic) {
          if (tr.revision !== r.name) continue
          percent += tr.percent
          if (tr.tag !== '') tags.push(tr.tag)
        }
        revisions.push({
          name: r.name,
          ready: r.ready,
          percent,
          tags,
          target: a?.target ?? null,
          metric: this.sources.metric(key),
          latest: sample,
          coldStarts: d.coldStarts,
          decisions: this.sources.scaleEvents(key).slice(-MAX_LIST).map(decisionRow),
        })
      }
      services.push({ key: `${s.namespace}/${s.name}`, name: s.name, namespace: s.namespace, url: s.url, ready: s.ready, revisions })
    }
    return { t, ingress: st.ingress, services }
  }

  /** The kept samples of every revision, by "<namespace>/<revision>". */
  history(): Record<string, Sample[]> {
    const out: Record<string, Sample[]> = {}
    for (const [k, d] of this.revisions) out[k] = d.history
    return out
  }
}

function decisionRow(e: ScaleEvent): DecisionRow {
  const d = e.decision
  return {
    at: e.at, from: e.from, to: e.to, cause: e.cause, panicking: d.panicking,
    observedStable: finite(d.observedStable), observedPanic: finite(d.observedPanic),
    readyPods: d.readyPods, recommended: d.recommended, target: e.target, reason: d.reason,
  }
}

function finite(n: number | undefined | null): number | null {
  return typeof n === 'number' && Number.isFinite(n) ? Math.round(n * 100) / 100 : null
}

/** Nearest-rank percentile of sorted values; null for none. */
export function percentile(sorted: readonly number[], q: number): number | null {
  if (sorted.length === 0) return null
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))
  return Math.round(sorted[i]! * 10) / 10
}
