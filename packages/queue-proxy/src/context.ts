// What every request of one queue-proxy shares: built once at start-up.

import type { Breaker } from '@sluice/core/breaker'
import type { RequestStats } from '@sluice/core/request-stats'
import type { Logger } from '@sluice/core/logging'
import type { QueueConfig } from './config.ts'
import type { Drainer } from './drainer.ts'
import type { Upstreams } from './upstream.ts'
import type { Exchange } from './exchange.ts'
import type { Timeouts } from '@sluice/core/http/proxy-exchange'
import type { QueueTracing } from './request-tracing.ts'

export interface Prober {
  probe(): Promise<boolean>
}

/** Request metrics and the request log hook in here (null when both are off). */
export interface ExchangeObserver {
  /** The request got its execution slot and goes to the user container. */
  onAppStart(ex: Exchange): void
  /** The response is complete (or the client went away). */
  onDone(ex: Exchange): void
}

export interface QueueContext {
  readonly cfg: QueueConfig
  readonly stats: RequestStats
  readonly breaker: Breaker | null
  readonly upstreams: Upstreams
  readonly drainer: Drainer
  readonly prober: Prober
  readonly log: Logger
  readonly observer: ExchangeObserver | null
  /** Spans (spec §1.15); null when tracing is off. */
  readonly tracing: QueueTracing | null
  /** The revision's timeouts, with Knative's 504 message. */
  readonly timeouts: Timeouts
  /** Requests and tunnels not yet finished; shutdown waits for them. */
  active: number
  onIdle: (() => void) | null
}
