// Spans the tracer could not deliver (its queue was full, or the collector
// refused, failed or timed out): counted in a metric where the component has
// one, and reported in one warn line per window rather than one per batch,
// so a dead collector cannot flood the log.
import type { Registry } from 'prom-client'
import type { Logger } from '../logging.ts'
import { loadPromParts } from '../prom-parts.ts'

export interface DropCounter {
  inc(n: number): void
}

export class SpanDrops {
  /** Spans dropped since start. */
  total = 0
  readonly #log: Logger
  readonly #windowMs: number
  #counter: DropCounter | null = null
  #pending = 0
  #timer: NodeJS.Timeout | null = null

  constructor(log: Logger, windowMs = 10_000) {
    this.#log = log
    this.#windowMs = windowMs
  }

  /** The metric to count into (set once the component's registry exists). */
  countInto(counter: DropCounter): void {
    this.#counter = counter
    if (this.total > 0) counter.inc(this.total)
  }

  /** Counts into sluice_tracing_dropped_spans_total, registered in the component's registry. */
  countInRegistry(registry: Registry): void {
    const { Counter } = loadPromParts()
    const counter = new Counter({ name: 'sluice_tracing_dropped_spans_total', help: 'Spans not delivered to the trace collector (its queue of 2048 full, or the export failed)', registers: [registry] })
    this.countInto({ inc: (n) => counter.inc(n) })
  }

  readonly add = (n: number): void => {
    if (n <= 0) return
    this.total += n
    this.#counter?.inc(n)
    if (this.#pending === 0) {
      this.#timer = setTimeout(this.#report, this.#windowMs)
      this.#timer.unref()
    }
    this.#pending += n
  }

  readonly #report = (): void => {
    this.#log.warn({ dropped: this.#pending, droppedTotal: this.total, windowMs: this.#windowMs }, 'tracing: spans dropped (collector down or slow, or the span queue full)')
    this.#pending = 0
    this.#timer = null
  }

  /** Reports what is pending now (shutdown). */
  flush(): void {
    if (this.#timer !== null) {
      clearTimeout(this.#timer)
      this.#report()
    }
  }
}
