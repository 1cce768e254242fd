// Tracing for the local runtime: a config-tracing ConfigMap file
// (SLUICE_TRACING_CONFIG, Knative's keys: backend, zipkin-endpoint,
// sample-rate, debug) gives every process the same settings, as Knative does:
// queue-proxies get the TRACING_CONFIG_* variables the revision reconciler
// copies from config-tracing, the activator its SLUICE_TRACING_* equivalents
// (in a cluster it watches the ConfigMap). So one cold start is one trace.

import { readFile } from 'node:fs/promises'
import { parseGoBool } from '@sluice/core/env'
import { tracingFromConfigMap, type TracingSettings } from '@sluice/core/tracing/settings'
import { configMapData } from '../config-map-file.ts'

export const TRACING_CONFIG_MAP = 'config-tracing'

export class TracingConfigError extends Error {
  constructor(key: string, message: string) {
    super(`${TRACING_CONFIG_MAP} ${key}: ${message}`)
  }
}

export interface TracingEnvs {
  settings: TracingSettings
  /** What Knative's reconciler puts into every queue-proxy. */
  queueProxy: Record<string, string>
  activator: Record<string, string>
}

/** The environments for config-tracing's data; undefined when tracing is off (backend none). */
export function tracingEnvs(data: Record<string, string>): TracingEnvs | undefined {
  let settings: TracingSettings | undefined
  try {
    settings = tracingFromConfigMap(data)
  } catch (err) {
    throw new TracingConfigError('(data)', (err as Error).message.replace('config-tracing: ', ''))
  }
  if (settings === undefined) return undefined
  // Validated above: debug parses, the rate is a number in [0, 1].
  const debug = String(parseGoBool(data.debug ?? 'false') === true)
  const rate = String(data['sample-rate'] === undefined ? 0.1 : Number(data['sample-rate']))
  return {
    settings,
    queueProxy: { TRACING_CONFIG_BACKEND: 'zipkin', TRACING_CONFIG_ZIPKIN_ENDPOINT: settings.endpoint, TRACING_CONFIG_SAMPLE_RATE: rate, TRACING_CONFIG_DEBUG: debug },
    activator: { SLUICE_TRACING_BACKEND: 'zipkin', SLUICE_TRACING_ZIPKIN_ENDPOINT: settings.endpoint, SLUICE_TRACING_SAMPLE_RATE: rate, SLUICE_TRACING_DEBUG: debug },
  }
}

/** Reads a config-tracing manifest file; undefined when it turns tracing off. */
export async function loadTracingConfig(path: string): Promise<TracingEnvs | undefined> {
  try {
    const data = configMapData(await readFile(path, 'utf8'), TRACING_CONFIG_MAP, (key, message) => new TracingConfigError(key, message))
    return data === undefined ? undefined : tracingEnvs(data)
  } catch (err) {
    throw new Error(`SLUICE_TRACING_CONFIG (${path}): ${(err as Error).message}`, { cause: err })
  }
}
