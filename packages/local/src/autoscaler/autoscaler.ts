// The local KPA autoscaler: per registered revision it collects observed
// concurrency (or rps) from the queue-proxies it scrapes and the activator's
// websocket stats, decides every tick (2 s) and at once when the activator
// pokes a revision sitting at zero, and reports each change of the desired
// instance count through onScale, with one readable log line.

import type { Stat } from '@sluice/core/stat-proto'
import { defaultAutoscalerConfig, resolveRevisionScaling, type AutoscalerConfig, type RevisionScaling } from './config.ts'
import { Decider, type Decision } from './decider.ts'
import { RevisionMetrics } from './metric-buckets.ts'
import { Scraper, type ScrapeTarget } from './scraper.ts'
import { StatServer } from './stat-server.ts'

export interface RevisionRegistration {
  /** "<namespace>/<name>", as the activator's stats name it. */
  key: string
  /** spec.containerConcurrency; 0 = unlimited. */
  containerConcurrency: number
  annotations?: Readonly<Record<string, string>>
}

export interface InstanceInfo {
  id: string
  /** Port of the instance's queue-proxy autoscaler metrics endpoint (:9090 in Knative). */
  metricsPort: number
  ready: boolean
}

export type DecisionCause = 'initial' | 'tick' | 'poke'

/** A change of the desired instance count, with the exact inputs behind it (the log line rounds them). */
export interface ScaleEvent {
  /** When it was decided (the autoscaler's clock, Date.now() by default). */
  at: number
  from: number
  to: number
  cause: DecisionCause
  /** The target per instance the decision divided by. */
  target: number
  decision: Decision
}

/** Scale events kept per revision. */
const MAX_EVENTS = 200

export interface AutoscalerOptions {
  /** Desired instance count changed (also called once on register with the initial scale). */
  onScale: (key: string, desired: number) => void
  config?: AutoscalerConfig
  /** One line per scale decision change and per problem; stdout by default. */
  log?: (line: string) => void
  /** Evaluation period; 2 s as Knative's tickInterval. */
  tickIntervalMs?: number
  /** Queue-proxy scrape period; 1 s. Stats land in 1 s buckets, so keep it at 1 s outside tests. */
  scrapeIntervalMs?: number
  scrapeTimeoutMs?: number
  /** Stat server address; 127.0.0.1 and any free port by default. */
  host?: string
  statServerPort?: number
  activationTimeoutMs?: number
  now?: () => number
}

interface Revision {
  readonly key: string
  readonly spec: RevisionScaling
  readonly metrics: RevisionMetrics
  readonly decider: Decider
  instances: readonly InstanceInfo[]
  /** The ready instances, kept for the scraper. */
  targets: ScrapeTarget[]
  desired: number
  last: Decision | undefined
  readonly events: ScaleEvent[]
}

const fmt = (n: number): string => (Number.isInteger(n) ? String(n) : String(Math.round(n * 100) / 100))

/** The log line's explanation of a decision. */
export function describeDecision(spec: RevisionScaling, d: Decision): string {
  if (!d.hasData && d.recommended < 0) return d.reason || 'no metrics yet'
  const observed = d.panicking ? d.observedPanic : d.observedStable
  const what = Number.isNaN(observed)
    ? 'no new metrics'
    : `observed ${spec.metric === 'rps' ? 'rps' : 'concurrency'} ${observed.toFixed(1)}, target ${fmt(spec.target)}`
  return `${d.panicking ? 'panic' : 'stable'}, ${what}${d.reason ? `; ${d.reason}` : ''}`
}

export class Autoscaler {
  readonly config: AutoscalerConfig
  readonly tickIntervalMs: number
  private readonly opts: AutoscalerOptions
  private readonly log: (line: string) => void
  private readonly now: () => number
  private readonly revisions = new Map<string, Revision>()
  private readonly statServer: StatServer
  private readonly scraper: Scraper
  private tickTimer: NodeJS.Timeout | undefined

  constructor(opts: AutoscalerOptions) {
    this.opts = opts
    this.config = opts.config ?? defaultAutoscalerConfig()
    this.tickIntervalMs = opts.tickIntervalMs ?? 2000
    this.log = opts.log ?? ((line) => process.stdout.write(`${line}\n`))
    this.now = opts.now ?? Date.now
    const host = opts.host ?? '127.0.0.1'
    this.statServer = new StatServer({
      host,
      port: opts.statServerPort ?? 0,
      log: this.log,
      now: this.now,
      onStat: (namespace, name, stat) => this.statReceived(`${namespace}/${name}`, stat),
    })
    this.scraper = new Scraper({
      intervalMs: opts.scrapeIntervalMs ?? 1000,
      timeoutMs: opts.scrapeTimeoutMs ?? 3000,
      now: this.now,
      targets: () => this.scrapeTargets(),
      onStat: (key, stat, at) => this.record(key, stat, at),
      onError: (key, target, err) => this.log(`autoscaler: ${key}: scraping instance ${target.id} failed: ${err.message}`),
      onRecovered: (key, target) => this.log(`autoscaler: ${key}: scraping instance ${target.id} works again`),
    })
  }

  /** ws:// URL of the stat server, for the activator (valid after start()). */
  get statServerUrl(): string {
    return this.statServer.url
  }

  get statServerStats(): Pick<StatServer, 'frames' | 'stats' | 'decodeErrors' | 'textFrames' | 'connectionsAccepted'> {
    return this.statServer
  }

  /** Starts the stat server, the scraper and the decision tick. */
  async start(): Promise<void> {
    await this.statServer.start()
    await this.scraper.start()
    if (this.tickTimer === undefined) {
      this.tickTimer = setInterval(() => this.tick(), this.tickIntervalMs)
      this.tickTimer.unref()
    }
  }

  async stop(): Promise<void> {
    if (this.tickTimer !== undefined) clearInterval(this.tickTimer)
    this.tickTimer = undefined
    await this.scraper.stop()
    await this.statServer.stop()
  }

  /**
   * Starts autoscaling a revision: validates its annotations (throwing an
   * AnnotationError naming the bad one) and reports the initial scale.
   */
  register(reg: RevisionRegistration): RevisionScaling {
    if (this.revisions.has(reg.key)) throw new Error(`autoscaler: revision ${reg.key} is already registered`)
    const spec = resolveRevisionScaling(this.config, { containerConcurrency: reg.containerConcurrency, annotations: reg.annotations })
    const decider = new Decider(spec, this.opts.activationTimeoutMs === undefined ? {} : { activationTimeoutMs: this.opts.activationTimeoutMs })
    const rev: Revision = {
      key: reg.key,
      spec,
      metrics: new RevisionMetrics(spec.stableWindowMs, spec.panicWindowMs),
      decider,
      instances: [],
      targets: [],
      desired: decider.desired,
      last: undefined,
      events: [],
    }
    this.revisions.set(reg.key, rev)
    this.log(`autoscaler: ${reg.key} registered: ${spec.metric} target ${fmt(spec.target)} per instance, ` +
      `min ${spec.minScale}, max ${spec.maxScale === 0 ? 'unbounded' : spec.maxScale}, initial scale ${rev.desired}`)
    this.emit(rev.key, rev.desired)
    return spec
  }

  unregister(key: string): void {
    this.revisions.delete(key)
  }

  /** The revision's instances; ready ones are scraped and counted as ready pods. */
  setInstances(key: string, instances: readonly InstanceInfo[]): void {
    const rev = this.revisions.get(key)
    if (rev === undefined) return
    rev.instances = instances
    const targets: ScrapeTarget[] = []
    for (const i of instances) if (i.ready) targets.push({ id: i.id, metricsPort: i.metricsPort })
    rev.targets = targets
  }

  /** Whether a route sends the revision traffic (Knative's PA reachability); unreachable ones ignore min-scale. */
  setReachable(key: string, reachable: boolean): void {
    const rev = this.revisions.get(key)
    if (rev === undefined || rev.decider.reachable === reachable) return
    rev.decider.reachable = reachable
    this.log(`autoscaler: ${key} is ${reachable ? 'reachable again' : 'unreachable (no route sends it traffic): min-scale no longer applies'}`)
  }

  /** Current desired count, undefined for an unknown revision. */
  desiredScale(key: string): number | undefined {
    return this.revisions.get(key)?.desired
  }

  /** The last decision taken for the revision. */
  /** The latest changes of the desired count for a revision, oldest first. */
  scaleEvents(key: string): readonly ScaleEvent[] {
    return this.revisions.get(key)?.events ?? []
  }

  lastDecision(key: string): Decision | undefined {
    return this.revisions.get(key)?.last
  }

  /** Records a stat observed at `atMs` (Knative collector.Record); unknown revisions are ignored. */
  record(key: string, stat: Stat, atMs: number): void {
    this.revisions.get(key)?.metrics.record(atMs, stat)
  }

  /** Knative MultiScaler.Poke: a revision at zero that sees concurrency is evaluated at once. */
  poke(key: string, stat: Stat): void {
    const rev = this.revisions.get(key)
    if (rev !== undefined && rev.desired === 0 && stat.averageConcurrentRequests !== 0) this.evaluateRevision(rev, 'poke')
  }

  /** Decides for one revision now. */
  evaluate(key: string, cause: DecisionCause = 'tick'): Decision | undefined {
    const rev = this.revisions.get(key)
    return rev === undefined ? undefined : this.evaluateRevision(rev, cause)
  }

  /** Evaluates every revision (what each tick does). */
  tick(): void {
    for (const rev of this.revisions.values()) this.evaluateRevision(rev, 'tick')
  }

  private statReceived(key: string, stat: Stat): void {
    this.record(key, stat, stat.timestamp * 1000)
    this.poke(key, stat)
  }

  private *scrapeTargets(): Generator<readonly [string, readonly ScrapeTarget[]]> {
    for (const rev of this.revisions.values()) yield [rev.key, rev.targets]
  }

  private evaluateRevision(rev: Revision, cause: DecisionCause): Decision {
    const now = this.now()
    const ready = rev.targets.length
    const decision = rev.decider.decide(now, ready, rev.metrics.observe(rev.spec.metric, now))
    rev.last = decision
    if (decision.desired !== rev.desired) {
      const from = rev.desired
      rev.desired = decision.desired
      if (rev.events.push({ at: now, from, to: decision.desired, cause, target: rev.spec.target, decision }) > MAX_EVENTS) rev.events.shift()
      this.log(`autoscaler: ${rev.key} ${from} -> ${decision.desired} (${describeDecision(rev.spec, decision)}${cause === 'poke' ? '; activator poke' : ''})`)
      this.emit(rev.key, decision.desired)
    }
    return decision
  }

  private emit(key: string, desired: number): void {
    try {
      this.opts.onScale(key, desired)
    } catch (err) {
      this.log(`autoscaler: ${key}: onScale(${desired}) failed: ${(err as Error).message}`)
    }
  }
}
