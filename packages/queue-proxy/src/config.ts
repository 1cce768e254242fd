// The queue-proxy's configuration, read only from the environment Knative's
// revision reconciler sets (spec §1.2, §1.3), in both the 1.12-era variables
// and the current OBSERVABILITY_CONFIG JSON (spec §5). SLUICE_* variables are
// Sluice's own additions. Every error names its variable.

import { loadConnectionLimits, type ConnectionLimits } from '@sluice/core/http/connection-limits'
import {
  EnvError, type Env, optionalBool, optionalDurationMs, optionalInt, optionalPort, optionalString,
  requireInt, requirePort, requireString,
} from '@sluice/core/env'
import { Port } from '@sluice/core/constants'
import { tracingFromEnv, tracingFromObservability, type TracingSettings } from '@sluice/core/tracing/settings'

export interface QueueConfig {
  containerConcurrency: number
  servingPort: number
  tlsPort: number
  userPort: number
  /** Upstream host; Knative always uses 127.0.0.1. */
  userHost: string
  revisionTimeoutMs: number
  responseStartTimeoutMs: number
  idleTimeoutMs: number
  readinessProbe: string
  http2AutoDetect: boolean
  multiContainerProbes: boolean
  namespace: string
  service: string
  configuration: string
  revision: string
  pod: string
  podIP: string
  loggingConfig: string
  loggingLevel: string
  requestLog: { enabled: boolean; template: string; probes: boolean }
  /** null: user metrics off; otherwise where Prometheus is served. */
  userMetrics: { host: string; port: number } | null
  /** Where spans go; null when tracing is off (nothing of it is loaded). */
  tracing: TracingSettings | null
  profiling: { enabled: boolean; port: number }
  adminPort: number
  metricsPort: number
  bindHost: string
  drainQuietMs: number
  websocketDrainMs: number
  maxHeaderBytes: number
  /** Per-connection limits of the serving ports (SLUICE_READ_HEADER_TIMEOUT, ...). */
  connection: ConnectionLimits
}

interface ObservabilityConfig {
  tracing?: unknown
  metrics?: { protocol?: string }
  runtime?: { profiling?: string }
  requestMetrics?: { protocol?: string; endpoint?: string }
  enableRequestLog?: boolean
  requestLogTemplate?: string
  enableProbeRequestLog?: boolean
}

function parseObservability(env: Env): ObservabilityConfig | undefined {
  const raw = env.OBSERVABILITY_CONFIG
  if (raw === undefined || raw === '') return undefined
  let parsed: unknown
  try {
    parsed = JSON.parse(raw)
  } catch (err) {
    throw new EnvError('OBSERVABILITY_CONFIG', `invalid JSON: ${(err as Error).message}`)
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new EnvError('OBSERVABILITY_CONFIG', 'must be a JSON object')
  }
  return parsed as ObservabilityConfig
}

/** ":9091", "0.0.0.0:9091", "9091" → host/port. */
function parseEndpoint(name: string, endpoint: string, fallbackPort: number): { host: string; port: number } {
  if (endpoint === '') return { host: '', port: fallbackPort }
  const i = endpoint.lastIndexOf(':')
  const host = i >= 0 ? endpoint.slice(0, i) : ''
  const portText = i >= 0 ? endpoint.slice(i + 1) : endpoint
  const port = Number(portText)
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new EnvError(name, `invalid endpoint ${JSON.stringify(endpoint)}`)
  return { host: host.replace(/^\[|\]$/g, ''), port }
}

function seconds(env: Env, name: string, required: boolean): number {
  const s = required ? requireInt(env, name) : optionalInt(env, name, 0)
  if (s < 0) throw new EnvError(name, `must not be negative, got ${s}`)
  return s * 1000
}

export function loadConfig(env: Env): QueueConfig {
  const obs = parseObservability(env)

  const cc = requireInt(env, 'CONTAINER_CONCURRENCY')
  const servingPort = requirePort(env, 'QUEUE_SERVING_PORT')
  const tlsPort = requirePort(env, 'QUEUE_SERVING_TLS_PORT')
  const userPort = requirePort(env, 'USER_PORT')
  const revisionTimeoutMs = seconds(env, 'REVISION_TIMEOUT_SECONDS', true)
  const responseStartTimeoutMs = seconds(env, 'REVISION_RESPONSE_START_TIMEOUT_SECONDS', false)
  const idleTimeoutMs = seconds(env, 'REVISION_IDLE_TIMEOUT_SECONDS', false)

  // 1.12 read the misspelt name (quirk §7.1); the reconciler sets the right one. Honour either.
  const http2AutoDetect = optionalBool(env, 'ENABLE_HTTP2_AUTO_DETECTION', false) ||
    optionalBool(env, 'ENABLE_HTT_P2_AUTO_DETECTION', false)

  // Request log: OBSERVABILITY_CONFIG (HEAD) wins over the 1.12 variables.
  const requestLog = obs
    ? { enabled: obs.enableRequestLog === true, template: obs.requestLogTemplate ?? '', probes: obs.enableProbeRequestLog === true }
    : {
        enabled: optionalBool(env, 'SERVING_ENABLE_REQUEST_LOG', false),
        template: optionalString(env, 'SERVING_REQUEST_LOG_TEMPLATE'),
        probes: optionalBool(env, 'SERVING_ENABLE_PROBE_REQUEST_LOG', false),
      }

  const userMetricsPort = optionalPort(env, 'SLUICE_USER_METRICS_PORT', Port.queueUserMetrics, true)
  let userMetrics: QueueConfig['userMetrics'] = null
  if (obs) {
    if (obs.requestMetrics?.protocol === 'prometheus') {
      const ep = parseEndpoint('OBSERVABILITY_CONFIG', obs.requestMetrics.endpoint ?? '', userMetricsPort)
      userMetrics = { host: ep.host, port: env.SLUICE_USER_METRICS_PORT !== undefined ? userMetricsPort : ep.port }
    }
  } else {
    const backend = optionalString(env, 'SERVING_REQUEST_METRICS_BACKEND')
    optionalInt(env, 'SERVING_REQUEST_METRICS_REPORTING_PERIOD_SECONDS', 0) // validated as Knative does
    if (backend === 'prometheus') userMetrics = { host: optionalString(env, 'METRICS_PROMETHEUS_HOST', ''), port: userMetricsPort }
  }

  // Spans (spec §1.15): OBSERVABILITY_CONFIG's tracing block (HEAD) wins over
  // the 1.12 variables; every variable is parsed either way (Go's envconfig
  // exits on unparsable values).
  const envTracing = tracingFromEnv(env)
  const tracing = (obs !== undefined ? tracingFromObservability(obs.tracing) : envTracing) ?? null

  const profilingEnabled = obs ? obs.runtime?.profiling === 'enabled' : optionalBool(env, 'ENABLE_PROFILING', false)

  const connection = loadConnectionLimits(env)

  return {
    containerConcurrency: cc < 1 ? 0 : cc,
    servingPort,
    tlsPort,
    userPort,
    userHost: optionalString(env, 'SLUICE_USER_HOST', '127.0.0.1'),
    revisionTimeoutMs,
    responseStartTimeoutMs,
    idleTimeoutMs,
    readinessProbe: optionalString(env, 'SERVING_READINESS_PROBE'),
    http2AutoDetect,
    multiContainerProbes: optionalBool(env, 'ENABLE_MULTI_CONTAINER_PROBES', false),
    namespace: requireString(env, 'SERVING_NAMESPACE'),
    service: optionalString(env, 'SERVING_SERVICE'),
    configuration: requireString(env, 'SERVING_CONFIGURATION'),
    revision: requireString(env, 'SERVING_REVISION'),
    pod: requireString(env, 'SERVING_POD'),
    podIP: requireString(env, 'SERVING_POD_IP'),
    // Required in 1.12; the HEAD reconciler still sets both.
    loggingConfig: obs ? optionalString(env, 'SERVING_LOGGING_CONFIG') : requireString(env, 'SERVING_LOGGING_CONFIG'),
    loggingLevel: obs ? optionalString(env, 'SERVING_LOGGING_LEVEL') : requireString(env, 'SERVING_LOGGING_LEVEL'),
    requestLog,
    userMetrics,
    tracing,
    profiling: { enabled: profilingEnabled, port: optionalPort(env, 'PROFILING_PORT', Port.profiling, true) },
    adminPort: optionalPort(env, 'SLUICE_ADMIN_PORT', Port.queueAdmin, true),
    metricsPort: optionalPort(env, 'SLUICE_METRICS_PORT', Port.queueMetrics, true),
    bindHost: optionalString(env, 'SLUICE_BIND_ADDRESS', ''),
    drainQuietMs: optionalDurationMs(env, 'SLUICE_DRAIN_QUIET_PERIOD', 30_000),
    websocketDrainMs: optionalDurationMs(env, 'SLUICE_DRAIN_WEBSOCKET_TIMEOUT', 60_000),
    maxHeaderBytes: connection.maxHeaderBytes,
    connection,
  }
}
