// Tracing settings that point each exporter at a test receiver, parsed the way
// an operator configures them (1.12 TRACING_CONFIG_* for Zipkin, the 1.19+
// OBSERVABILITY_CONFIG block for OTLP).
import { type TracingSettings, tracingFromEnv, tracingFromObservability } from '@sluice/core/tracing/settings'
import type { TraceReceiver, Transport } from '../../helpers/trace-receiver.ts'

export const TRANSPORTS: readonly Transport[] = ['zipkin', 'otlp-http', 'otlp-grpc']

export function settingsFor(receiver: TraceReceiver, transport: Transport): TracingSettings {
  let settings: TracingSettings | undefined
  switch (transport) {
    case 'zipkin':
      settings = tracingFromEnv({ TRACING_CONFIG_BACKEND: 'zipkin', TRACING_CONFIG_ZIPKIN_ENDPOINT: receiver.zipkinUrl, TRACING_CONFIG_DEBUG: 'true' })
      break
    case 'otlp-http':
      settings = tracingFromObservability({ protocol: 'http/protobuf', endpoint: receiver.otlpHttpUrl, samplingRate: 1 })
      break
    case 'otlp-grpc':
      settings = tracingFromObservability({ protocol: 'grpc', endpoint: receiver.otlpGrpcUrl, samplingRate: 1 })
      break
  }
  if (settings === undefined) throw new Error(`${transport}: tracing settings parsed as off`)
  return settings
}
