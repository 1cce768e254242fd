// Scrapes each ready instance's queue-proxy autoscaler endpoint
// (:<metricsPort>/metrics, spec §1.12, §3.2) once a second, as Knative's
// stats scraper does pod-direct: GET with Accept: application/protobuf, a 3 s
// timeout, 2xx only, Content-Type exactly application/protobuf, at most 336
// bytes of body decoded as a Stat. Locally every ready instance is scraped
// (n = N); the per-revision result is Knative's estimate sum/n x N over the
// instances that answered, so a failed scrape is skipped without
// under-counting, and a tick where none answered records nothing.

import type { Agent as AgentType, Dispatcher } from 'undici'
import { decodeStat, emptyStat, ProtoDecodeError, type Stat } from '@sluice/core/stat-proto'

/** Knative httpScrapeClient: 6 doubles/ints x 10 bytes + 256 for the pod name + 20. */
export const MAX_STAT_BYTES = 6 * 10 + 256 + 20
export const PROTOBUF_CONTENT_TYPE = 'application/protobuf'
/** pod_name of an aggregated stat, as Knative's scraper sets it. */
export const SCRAPER_POD_NAME = 'service-scraper'

const ACCEPT = { accept: PROTOBUF_CONTENT_TYPE }

export type ScrapeErrorKind = 'transport' | 'timeout' | 'status' | 'content-type' | 'decode'

export class ScrapeError extends Error {
  override name = 'ScrapeError'
  readonly kind: ScrapeErrorKind
  constructor(kind: ScrapeErrorKind, message: string) {
    super(message)
    this.kind = kind
  }
}

/**
 * Knative's sample size for a population of N pods (95 % confidence, 5 %
 * error): N when N <= 3, else ceil(N X / (N + X - 1)) with X = 1.96² x 100 / 5².
 * Not used to pick instances here (all are scraped); kept as the reference.
 */
export function sampleSize(population: number): number {
  if (population <= 3) return Math.max(0, population)
  const x = (1.96 * 1.96 * 100) / (5 * 5)
  return Math.ceil((population * x) / (population + x - 1))
}

/** Sum of the sampled stats divided by n and multiplied by N; the exact sum when n = N. */
export function aggregateStats(sample: readonly Stat[], population: number): Stat {
  const out = emptyStat(SCRAPER_POD_NAME)
  for (const s of sample) {
    out.averageConcurrentRequests += s.averageConcurrentRequests
    out.averageProxiedConcurrentRequests += s.averageProxiedConcurrentRequests
    out.requestCount += s.requestCount
    out.proxiedRequestCount += s.proxiedRequestCount
  }
  if (sample.length > 0 && sample.length !== population) {
    const f = population / sample.length
    out.averageConcurrentRequests *= f
    out.averageProxiedConcurrentRequests *= f
    out.requestCount *= f
    out.proxiedRequestCount *= f
  }
  return out
}

export interface ScrapeTarget {
  /** The instance, for error reports. */
  id: string
  metricsPort: number
}

export interface ScraperOptions {
  /** Revision key -> its ready instances, asked on every tick. */
  targets: () => Iterable<readonly [string, readonly ScrapeTarget[]]>
  /** One aggregated stat per revision and tick, stamped with the tick's time. */
  onStat: (key: string, stat: Stat, atMs: number) => void
  onError?: (key: string, target: ScrapeTarget, err: ScrapeError) => void
  /** An instance scraped fine again after failing. */
  onRecovered?: (key: string, target: ScrapeTarget) => void
  host?: string
  /** 1 s, as Knative's scrapeTickInterval. */
  intervalMs?: number
  /** 3 s, as Knative's scrape client. */
  timeoutMs?: number
  now?: () => number
}

export class Scraper {
  readonly host: string
  readonly intervalMs: number
  readonly timeoutMs: number
  private readonly opts: ScraperOptions
  private readonly now: () => number
  private agent: AgentType | undefined
  private request: typeof import('undici').request | undefined
  private timer: NodeJS.Timeout | undefined
  private running = false
  /** Revisions whose previous tick is still out (a slow instance must not pile scrapes up). */
  private readonly inFlight = new Set<string>()
  /** "key id" of instances whose last scrape failed, to report changes only. */
  private readonly failing = new Set<string>()

  constructor(opts: ScraperOptions) {
    this.opts = opts
    this.host = opts.host ?? '127.0.0.1'
    this.intervalMs = opts.intervalMs ?? 1000
    this.timeoutMs = opts.timeoutMs ?? 3000
    this.now = opts.now ?? Date.now
  }

  /** Starts ticking; ticks fall mid-interval of the wall clock so each lands in its own 1 s bucket. */
  async start(): Promise<void> {
    if (this.running) return
    await this.ensureClient()
    this.running = true
    this.schedule()
  }

  async stop(): Promise<void> {
    this.running = false
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
    const agent = this.agent
    this.agent = undefined
    this.request = undefined
    this.inFlight.clear()
    this.failing.clear()
    // In-flight scrapes fail fast; their results are dropped (running is false).
    if (agent !== undefined) await agent.destroy()
  }

  /** One scrape of one queue-proxy; throws ScrapeError. */
  async scrape(metricsPort: number): Promise<Stat> {
    const request = this.request ?? (await this.ensureClient())
    const url = `http://${this.host}:${metricsPort}/metrics`
    const signal = AbortSignal.timeout(this.timeoutMs)
    let res: Dispatcher.ResponseData
    try {
      res = await request(url, { dispatcher: this.agent, headers: ACCEPT, signal })
    } catch (err) {
      throw failure(signal, url, err)
    }
    const { statusCode, headers, body } = res
    if (statusCode < 200 || statusCode >= 300) {
      body.dump().catch(() => {})
      throw new ScrapeError('status', `GET ${url} returned HTTP ${statusCode}`)
    }
    const raw = headers['content-type']
    const contentType = Array.isArray(raw) ? raw[0] : raw
    if (contentType !== PROTOBUF_CONTENT_TYPE) {
      body.dump().catch(() => {})
      throw new ScrapeError('content-type', `GET ${url}: unsupported metric type ${JSON.stringify(contentType ?? '')}, want ${PROTOBUF_CONTENT_TYPE}`)
    }
    // Only the first MAX_STAT_BYTES are read (an io.LimitReader in Knative); the rest is dropped.
    const buf = Buffer.allocUnsafe(MAX_STAT_BYTES)
    let len = 0
    try {
      for await (const chunk of body as AsyncIterable<Buffer>) {
        len += chunk.copy(buf, len, 0, Math.min(chunk.length, MAX_STAT_BYTES - len))
        if (len >= MAX_STAT_BYTES) break
      }
    } catch (err) {
      throw failure(signal, url, err)
    }
    try {
      return decodeStat(buf.subarray(0, len))
    } catch (err) {
      if (err instanceof ProtoDecodeError) throw new ScrapeError('decode', `GET ${url}: cannot decode Stat: ${err.message}`)
      throw err
    }
  }

  /**
   * Scrapes every target of one revision at once: the aggregated stat, or
   * undefined when none answered (or there was nothing to scrape).
   */
  async scrapeRevision(key: string, targets: readonly ScrapeTarget[]): Promise<Stat | undefined> {
    if (targets.length === 0) return undefined
    const results = await Promise.allSettled(targets.map((t) => this.scrape(t.metricsPort)))
    const stats: Stat[] = []
    for (let i = 0; i < results.length; i++) {
      const r = results[i]!
      const target = targets[i]!
      const id = `${key} ${target.id}`
      if (r.status === 'fulfilled') {
        stats.push(r.value)
        if (this.failing.delete(id)) this.opts.onRecovered?.(key, target)
      } else if (!this.failing.has(id)) {
        this.failing.add(id)
        const err = r.reason instanceof ScrapeError ? r.reason : new ScrapeError('transport', String(r.reason))
        this.opts.onError?.(key, target, err)
      }
    }
    return stats.length === 0 ? undefined : aggregateStats(stats, targets.length)
  }

  private async ensureClient(): Promise<typeof import('undici').request> {
    if (this.request !== undefined) return this.request
    // Loaded on first use: undici is big and only needed once instances exist.
    // One connection per queue-proxy: one scrape a second needs no more, and
    // with more undici alternates between two.
    const undici = await import('undici')
    this.agent ??= new undici.Agent({ connections: 1, keepAliveTimeout: 30_000, headersTimeout: this.timeoutMs, bodyTimeout: this.timeoutMs })
    this.request = undici.request
    return this.request
  }

  private schedule(): void {
    if (!this.running) return
    const half = this.intervalMs / 2
    const delay = this.intervalMs - ((Date.now() - half) % this.intervalMs)
    this.timer = setTimeout(() => this.tick(), delay)
    this.timer.unref()
  }

  private tick(): void {
    this.schedule()
    const at = this.now()
    for (const [key, targets] of this.opts.targets()) {
      if (targets.length === 0 || this.inFlight.has(key)) continue
      this.inFlight.add(key)
      this.scrapeRevision(key, targets).then((stat) => {
        this.inFlight.delete(key)
        if (stat !== undefined && this.running) this.opts.onStat(key, stat, at)
      }, () => this.inFlight.delete(key))
    }
  }
}

function failure(signal: AbortSignal, url: string, err: unknown): ScrapeError {
  if (signal.aborted) return new ScrapeError('timeout', `GET ${url}: timed out`)
  const e = err as { code?: string; message?: string }
  if (e.code === 'UND_ERR_HEADERS_TIMEOUT' || e.code === 'UND_ERR_BODY_TIMEOUT') return new ScrapeError('timeout', `GET ${url}: timed out`)
  return new ScrapeError('transport', `GET ${url}: ${e.message ?? String(err)}${e.code ? ` (${e.code})` : ''}`)
}
