// What every request through one activator shares: built once at start-up.

import type { Logger } from '@sluice/core/logging'
import type { Dispatcher } from 'undici'
import type { ActivatorConfig } from './config.ts'
import type { EndpointSource } from './endpoints/source.ts'
import type { InternalTls } from './tls/internal-tls.ts'
import type { ActivatorMetrics } from './metrics.ts'
import type { Throttler } from './net/throttler.ts'
import type { ConcurrencyReporter } from './stats/concurrency-reporter.ts'
import type { HealthState } from './handler/health-handler.ts'
import type { WaitingUploads } from './handler/waiting-uploads.ts'
import type { Tracer } from '@sluice/core/tracing/tracer'

export interface Upstreams {
  readonly h1: Dispatcher
  /** Created on the first HTTP/2 request or h2c revision. */
  readonly h2: Dispatcher
  /** system-internal-tls: dialling of the queue-proxies' TLS port (null when off). */
  tls: InternalTls | null
  close(): Promise<void>
}

export interface ActivatorContext {
  readonly cfg: ActivatorConfig
  readonly clusterDomain: string
  readonly source: EndpointSource
  readonly throttler: Throttler
  readonly reporter: ConcurrencyReporter
  readonly metrics: ActivatorMetrics
  readonly upstreams: Upstreams
  /** Read-ahead and liveness of waiting HTTP/1.1 uploads. */
  readonly uploads: WaitingUploads
  readonly health: HealthState
  readonly log: Logger
  /** The tracer in force (config-tracing, switched at run time: tracing-switch.ts); null when off. */
  tracing: Tracer | null
  /** Requests and tunnels not yet finished; shutdown waits for them. */
  active: number
  onIdle: (() => void) | null
}
