// Tracing settings from the three places Knative puts them (spec §1.15, §4.7, §5):
// the 1.12 queue-proxy TRACING_CONFIG_* variables, the 1.12 config-tracing
// ConfigMap (activator), and the 1.19+ OBSERVABILITY_CONFIG `tracing` block.
// Pure parsing only: nothing here loads OpenTelemetry, so importing this file
// costs nothing when tracing is off.
import { EnvError, type Env, optionalBool, optionalFloat, parseGoBool } from '../env.ts'

/** Where spans go. 'discard' = tracing code path on (propagation, sampling) but no exporter. */
export type TracingExporter = 'zipkin' | 'otlp-http' | 'otlp-grpc' | 'discard'

export interface TracingSettings {
  readonly exporter: TracingExporter
  readonly endpoint: string
  /** Probability in [0, 1]; 1 when debug (always sample). */
  readonly sampleRate: number
}

/** 1.12 queue-proxy env. Returns undefined when off (backend `none`). */
export function tracingFromEnv(env: Env): TracingSettings | undefined {
  const backend = env.TRACING_CONFIG_BACKEND ?? 'none'
  // Parse every variable even when off, so a bad value fails fast at start.
  const debug = optionalBool(env, 'TRACING_CONFIG_DEBUG', false)
  const rate = optionalFloat(env, 'TRACING_CONFIG_SAMPLE_RATE', 0)
  if (backend === 'none') return undefined
  if (rate < 0 || rate > 1) throw new EnvError('TRACING_CONFIG_SAMPLE_RATE', `must be in [0, 1], got ${rate}`)
  // 1.12 quirk (spec quirk 15): any backend but `none`, even empty, enables the
  // tracing code path; only `zipkin` has an exporter.
  const zipkin = backend === 'zipkin'
  return {
    exporter: zipkin ? 'zipkin' : 'discard',
    endpoint: zipkin ? (env.TRACING_CONFIG_ZIPKIN_ENDPOINT ?? '') : '',
    sampleRate: debug ? 1 : rate,
  }
}

/** 1.12 config-tracing ConfigMap data (activator). Throws Error naming the key. */
export function tracingFromConfigMap(data: Readonly<Record<string, string | undefined>>): TracingSettings | undefined {
  let backend = data.backend
  if (backend === undefined) backend = parseGoBool(data.enable ?? '') === true ? 'zipkin' : 'none'
  if (backend !== 'none' && backend !== 'zipkin') throw new Error(`config-tracing: unsupported backend ${JSON.stringify(backend)}`)
  const debug = data.debug === undefined ? false : parseGoBool(data.debug)
  if (debug === undefined) throw new Error(`config-tracing: debug: cannot parse ${JSON.stringify(data.debug)} as a boolean`)
  const rate = data['sample-rate'] === undefined ? 0.1 : Number(data['sample-rate'])
  if (!Number.isFinite(rate) || rate < 0 || rate > 1 || data['sample-rate'] === '') {
    throw new Error(`config-tracing: sample-rate must be a number in [0, 1], got ${JSON.stringify(data['sample-rate'])}`)
  }
  if (backend === 'none') return undefined
  const endpoint = data['zipkin-endpoint'] ?? ''
  if (endpoint === '') throw new Error('config-tracing: zipkin-endpoint is required when backend is zipkin')
  return { exporter: 'zipkin', endpoint, sampleRate: debug ? 1 : rate }
}

/** 1.19+ OBSERVABILITY_CONFIG `tracing` block: {protocol, endpoint, samplingRate}. */
export function tracingFromObservability(block: unknown): TracingSettings | undefined {
  if (block === undefined || block === null) return undefined
  if (typeof block !== 'object' || Array.isArray(block)) throw new EnvError('OBSERVABILITY_CONFIG', 'tracing must be a JSON object')
  const { protocol = 'none', endpoint = '', samplingRate = 0 } = block as Record<string, unknown>
  if (typeof endpoint !== 'string') throw new EnvError('OBSERVABILITY_CONFIG', 'tracing.endpoint must be a string')
  if (typeof samplingRate !== 'number' || !(samplingRate >= 0 && samplingRate <= 1)) {
    throw new EnvError('OBSERVABILITY_CONFIG', 'tracing.samplingRate must be a number in [0, 1]')
  }
  let exporter: TracingExporter
  switch (protocol) {
    case 'none':
    case '':
      return undefined
    case 'http/protobuf':
      exporter = 'otlp-http'
      break
    case 'grpc':
      exporter = 'otlp-grpc'
      break
    default:
      throw new EnvError('OBSERVABILITY_CONFIG', `tracing.protocol ${JSON.stringify(protocol)} is not one of none, http/protobuf, grpc`)
  }
  return { exporter, endpoint: withScheme(endpoint), sampleRate: samplingRate }
}

/** As Knative's endpointFor (knative.dev/pkg observability/tracing): an endpoint without a scheme means https. */
function withScheme(endpoint: string): string {
  return endpoint === '' || /^[a-z][a-z0-9+.-]*:\/\//i.test(endpoint) ? endpoint : `https://${endpoint}`
}

/**
 * HEAD's config-observability ConfigMap (activator, watched live): keys
 * `tracing-protocol`, `tracing-endpoint`, `tracing-sampling-rate`. Returns
 * null when it leaves tracing to config-tracing (no tracing-protocol key),
 * undefined when it turns tracing off. Throws Error naming the key.
 */
export function tracingFromObservabilityConfigMap(data: Readonly<Record<string, string | undefined>>): TracingSettings | undefined | null {
  const protocol = data['tracing-protocol']
  if (protocol === undefined) return null
  const raw = data['tracing-sampling-rate']
  const samplingRate = raw === undefined || raw === '' ? 0 : Number(raw)
  if (!Number.isFinite(samplingRate) || samplingRate < 0 || samplingRate > 1) {
    throw new Error(`config-observability: tracing-sampling-rate must be a number in [0, 1], got ${JSON.stringify(raw)}`)
  }
  try {
    return tracingFromObservability({ protocol, endpoint: data['tracing-endpoint'] ?? '', samplingRate })
  } catch (err) {
    throw new Error(`config-observability: ${(err as Error).message.replace(/^OBSERVABILITY_CONFIG: tracing\./, 'tracing-')}`, { cause: err })
  }
}
