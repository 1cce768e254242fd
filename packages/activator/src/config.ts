// The activator's configuration: the environment Knative's activator
// Deployment gets (spec §2.1) plus Sluice's SLUICE_* settings.

import { EnvError, type Env, optionalBool, optionalDurationMs, optionalInt, optionalPort, optionalString, requireString } from '@sluice/core/env'
import { Port } from '@sluice/core/constants'
import { loadConnectionLimits, type ConnectionLimits } from '@sluice/core/http/connection-limits'
import { DEFAULT_MESH, parseMeshMode, type MeshSettings } from './net/mesh-config.ts'
import { tracingFromConfigMap, type TracingSettings } from '@sluice/core/tracing/settings'

export type EndpointSourceKind = 'kubernetes' | 'local'

export interface ActivatorConfig {
  podName: string
  podIP: string
  systemNamespace: string
  clusterDomain: string | undefined
  maxIdleProxyConns: number
  maxIdleProxyConnsPerHost: number
  probeTimeoutMs: number
  probeFrequencyMs: number
  httpPort: number
  h2cPort: number
  metricsPort: number
  profilingPort: number
  profiling: boolean
  bindHost: string
  endpointSource: EndpointSourceKind
  /** Port of the local endpoint source's HTTP API (local mode). */
  localApiPort: number
  useEndpointSlices: boolean
  /** Knative: not Ready until the autoscaler websocket is up. Sluice default: stay Ready. */
  readinessRequiresAutoscaler: boolean
  drainMs: number
  /** Bounded buffering (per revision and activator-wide; net/revision-queue.ts has the arithmetic). */
  maxQueuedPerRevision: number
  maxQueuedTotal: number
  maxBufferedBytesPerRevision: number
  maxBufferedBytesTotal: number
  /** Shed a request at once when the queue's wait estimate exceeds its deadline (opt-in). */
  shedOnDeadlineEstimate: boolean
  /** Pool of extra read-ahead for waiting uploads, activator-wide (handler/waiting-uploads.ts). */
  maxReadAheadBytes: number
  loggingConfig: string
  loggingLevel: string
  maxHeaderBytes: number
  /** Per-connection limits of the serving ports (SLUICE_READ_HEADER_TIMEOUT, ...). */
  connection: ConnectionLimits
  /**
   * system-internal-tls from SLUICE_SYSTEM_INTERNAL_TLS; undefined when unset: then config-network's
   * `system-internal-tls` (or legacy `internal-encryption`) decides at start, as Knative reads it once.
   */
  systemInternalTls: boolean | undefined
  /** The TLS serving port (Knative: 8112, only with system-internal-tls). */
  httpsPort: number
  /** The queue-proxies' TLS port dialled with system-internal-tls (Knative: fixed 8112). */
  queueTlsPort: number
  /**
   * config-network mesh settings before (or without) the ConfigMap: the local
   * source's only values; under Kubernetes, config-network overrides them.
   */
  mesh: MeshSettings
  /**
   * config-tracing before (or without) the ConfigMap, from SLUICE_TRACING_*:
   * the local source's only values; under Kubernetes, config-tracing overrides them.
   */
  tracing: TracingSettings | null
}

export function loadConfig(env: Env): ActivatorConfig {
  const systemNamespace = requireString(env, 'SYSTEM_NAMESPACE')
  if (systemNamespace === '') throw new EnvError('SYSTEM_NAMESPACE', 'must not be empty')
  const source = optionalString(env, 'SLUICE_ENDPOINT_SOURCE', 'kubernetes')
  if (source !== 'kubernetes' && source !== 'local') {
    throw new EnvError('SLUICE_ENDPOINT_SOURCE', `must be "kubernetes" or "local", got ${JSON.stringify(source)}`)
  }
  const positive = (name: string, fallback: number): number => {
    const n = optionalInt(env, name, fallback)
    if (n < 1) throw new EnvError(name, `must be at least 1, got ${n}`)
    return n
  }
  const nonNegative = (name: string, fallback: number): number => {
    const n = optionalInt(env, name, fallback)
    if (n < 0) throw new EnvError(name, `must not be negative, got ${n}`)
    return n
  }
  const connection = loadConnectionLimits(env)
  return {
    podName: requireString(env, 'POD_NAME'),
    podIP: requireString(env, 'POD_IP'),
    systemNamespace,
    clusterDomain: env.CLUSTER_DOMAIN,
    maxIdleProxyConns: positive('MAX_IDLE_PROXY_CONNS', 1000),
    maxIdleProxyConnsPerHost: positive('MAX_IDLE_PROXY_CONNS_PER_HOST', 100),
    probeTimeoutMs: optionalDurationMs(env, 'PROBE_TIMEOUT', 300),
    probeFrequencyMs: optionalDurationMs(env, 'PROBE_FREQUENCY', 200),
    httpPort: optionalPort(env, 'SLUICE_HTTP_PORT', Port.activatorHttp, true),
    h2cPort: optionalPort(env, 'SLUICE_H2C_PORT', Port.activatorH2c, true),
    metricsPort: optionalPort(env, 'SLUICE_METRICS_PORT', optionalPort(env, 'METRICS_PROMETHEUS_PORT', Port.activatorMetrics, true), true),
    profilingPort: optionalPort(env, 'SLUICE_PROFILING_PORT', optionalPort(env, 'PROFILING_PORT', Port.profiling, true), true),
    profiling: optionalBool(env, 'SLUICE_PROFILING', false),
    bindHost: optionalString(env, 'SLUICE_BIND_ADDRESS', ''),
    endpointSource: source,
    localApiPort: optionalPort(env, 'SLUICE_LOCAL_API_PORT', 0, true),
    useEndpointSlices: optionalBool(env, 'SLUICE_USE_ENDPOINTSLICES', false),
    readinessRequiresAutoscaler: optionalBool(env, 'SLUICE_READINESS_REQUIRES_AUTOSCALER', false),
    drainMs: optionalDurationMs(env, 'SLUICE_DRAIN_PERIOD', 45_000),
    maxQueuedPerRevision: positive('SLUICE_MAX_QUEUED_PER_REVISION', 10_000),
    maxQueuedTotal: positive('SLUICE_MAX_QUEUED', 20_000),
    maxBufferedBytesPerRevision: positive('SLUICE_MAX_BUFFERED_BYTES_PER_REVISION', 32 << 20),
    maxBufferedBytesTotal: positive('SLUICE_MAX_BUFFERED_BYTES', 48 << 20),
    shedOnDeadlineEstimate: optionalBool(env, 'SLUICE_SHED_ON_DEADLINE_ESTIMATE', false),
    maxReadAheadBytes: nonNegative('SLUICE_MAX_READ_AHEAD_BYTES', 8 << 20),
    loggingConfig: optionalString(env, 'SLUICE_LOGGING_CONFIG'),
    loggingLevel: optionalString(env, 'SLUICE_LOG_LEVEL', 'info'),
    maxHeaderBytes: connection.maxHeaderBytes,
    connection,
    systemInternalTls: internalTls(env),
    httpsPort: optionalPort(env, 'SLUICE_HTTPS_PORT', Port.queueTls, true),
    queueTlsPort: optionalPort(env, 'SLUICE_QUEUE_TLS_PORT', Port.queueTls),
    mesh: loadMesh(env),
    tracing: loadTracing(env),
  }
}

/** SLUICE_TRACING_{BACKEND,ZIPKIN_ENDPOINT,SAMPLE_RATE,DEBUG}: config-tracing's keys, as the local runtime passes them. */
function loadTracing(env: Env): TracingSettings | null {
  // backend last: the error for a missing endpoint names both keys, and the endpoint is the one to fix.
  const names = { 'zipkin-endpoint': 'SLUICE_TRACING_ZIPKIN_ENDPOINT', 'sample-rate': 'SLUICE_TRACING_SAMPLE_RATE', debug: 'SLUICE_TRACING_DEBUG', backend: 'SLUICE_TRACING_BACKEND' } as const
  const data: Record<string, string> = {}
  for (const [key, name] of Object.entries(names)) if (env[name] !== undefined) data[key] = env[name]
  if (data.backend === undefined) data.backend = 'none'
  try {
    return tracingFromConfigMap(data) ?? null
  } catch (err) {
    // "config-tracing: sample-rate must be ..." → the variable that holds the key.
    const key = Object.keys(names).find((k) => (err as Error).message.includes(k)) as keyof typeof names | undefined
    throw new EnvError(key === undefined ? names.backend : names[key], (err as Error).message.replace('config-tracing: ', ''))
  }
}

/** SLUICE_MESH_COMPATIBILITY_MODE and SLUICE_ENABLE_MESH_POD_ADDRESSABILITY (config-network's keys). */
function loadMesh(env: Env): MeshSettings {
  const name = 'SLUICE_MESH_COMPATIBILITY_MODE'
  const raw = optionalString(env, name, DEFAULT_MESH.mode)
  const mode = parseMeshMode(raw)
  if (mode === undefined) throw new EnvError(name, `must be "auto", "enabled" or "disabled", got ${JSON.stringify(raw)}`)
  return { mode, passthroughLb: optionalBool(env, 'SLUICE_ENABLE_MESH_POD_ADDRESSABILITY', DEFAULT_MESH.passthroughLb) }
}

/** Knative's values of config-network `system-internal-tls`, and the legacy `internal-encryption` boolean. */
function internalTls(env: Env): boolean | undefined {
  const name = 'SLUICE_SYSTEM_INTERNAL_TLS'
  const raw = optionalString(env, name, '')
  if (raw === '') return undefined
  const on = internalTlsValue(raw)
  if (on === undefined) throw new EnvError(name, `must be "enabled" or "disabled", got ${JSON.stringify(raw)}`)
  return on
}

/** "Enabled"/"Disabled" (any case) or the legacy booleans; undefined when it is neither. */
export function internalTlsValue(raw: string): boolean | undefined {
  const v = raw.trim().toLowerCase()
  if (v === 'enabled' || v === 'true') return true
  if (v === 'disabled' || v === 'false' || v === '') return false
  return undefined
}

/** config-network's setting: `system-internal-tls`, else the deprecated `internal-encryption`. */
export function internalTlsFromConfigNetwork(data: Record<string, string> | undefined): boolean | undefined {
  const v = data?.['system-internal-tls'] ?? data?.['internal-encryption']
  return v === undefined ? false : internalTlsValue(v)
}
