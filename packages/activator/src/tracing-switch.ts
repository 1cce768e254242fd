// The activator's tracer, switched at run time as config-tracing changes
// (Knative's activator updates its OpenCensus exporter from the ConfigMap;
// spec §2.2). Requests started under the old tracer end their spans on it; the
// old one is then flushed and shut down. Off means the tracer was never loaded
// (the first `on` imports it) or is closed again.

import type { Logger } from '@sluice/core/logging'
import type { Registry } from 'prom-client'
import type { TracingSettings } from '@sluice/core/tracing/settings'
import type { Tracer } from '@sluice/core/tracing/tracer'
import type { SpanDrops } from '@sluice/core/tracing/span-drops'

/** Knative's activator exports as this service (tracing.NewOpenCensusTracer in cmd/activator). */
export const ACTIVATOR_SERVICE = 'activator-service'

export interface TracingHolder {
  tracing: Tracer | null
}

export class TracingSwitch {
  readonly #holder: TracingHolder
  readonly #log: Logger
  readonly #registry: Registry
  #settings: TracingSettings | null = null
  #drops: SpanDrops | null = null
  /** Applies run one after another: a change arriving mid-switch waits its turn. */
  #chain: Promise<void> = Promise.resolve()

  constructor(holder: TracingHolder, log: Logger, registry: Registry) {
    this.#holder = holder
    this.#log = log
    this.#registry = registry
  }

  /** Turns tracing on, off, or to new settings; `from` names where they came from (logged). */
  apply(settings: TracingSettings | null, from: string): Promise<void> {
    this.#chain = this.#chain.then(() => this.#switch(settings, from)).catch((err: Error) => {
      this.#log.error({ err: err.message, from }, 'tracing: could not apply the settings; keeping those in force')
    })
    return this.#chain
  }

  /** Resolves once every apply so far has taken effect. */
  settled(): Promise<void> {
    return this.#chain
  }

  async #switch(settings: TracingSettings | null, from: string): Promise<void> {
    if (same(settings, this.#settings)) return
    const old = this.#holder.tracing
    let next: Tracer | null = null
    if (settings !== null) {
      const [{ createTracer }, drops] = await Promise.all([import('@sluice/core/tracing/tracer'), this.#dropCounter()])
      next = await createTracer(settings, { serviceName: ACTIVATOR_SERVICE, onDropped: drops.add })
    }
    this.#holder.tracing = next
    this.#settings = settings
    this.#log.info(settings === null ? { tracing: 'off', from } : { tracing: 'on', exporter: settings.exporter, endpoint: settings.endpoint, sampleRate: settings.sampleRate, from }, 'tracing settings')
    if (old !== null) await old.shutdownWithin()
  }

  async #dropCounter(): Promise<SpanDrops> {
    if (this.#drops === null) {
      const { SpanDrops } = await import('@sluice/core/tracing/span-drops')
      const drops = new SpanDrops(this.#log)
      drops.countInRegistry(this.#registry)
      this.#drops = drops
    }
    return this.#drops
  }

  /** Shutdown: exports what is queued (bounded) and reports pending drops. */
  async close(): Promise<void> {
    await this.#chain
    const t = this.#holder.tracing
    this.#holder.tracing = null
    if (t !== null) await t.shutdownWithin()
    this.#drops?.flush()
  }
}

function same(a: TracingSettings | null, b: TracingSettings | null): boolean {
  if (a === null || b === null) return a === b
  return a.exporter === b.exporter && a.endpoint === b.endpoint && a.sampleRate === b.sampleRate
}
