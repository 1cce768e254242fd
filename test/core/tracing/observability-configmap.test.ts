// HEAD's config-observability tracing-* keys, as the activator reads them live:
// absent → config-tracing decides (null), none → off, errors name the key.
import t from 'tap'
import { tracingFromObservabilityConfigMap } from '@sluice/core/tracing/settings'

t.test('the three keys', async (t) => {
  t.equal(tracingFromObservabilityConfigMap({}), null, 'no tracing-protocol: left to config-tracing')
  t.equal(tracingFromObservabilityConfigMap({ 'tracing-protocol': 'none' }), undefined, 'none: off')
  t.same(tracingFromObservabilityConfigMap({ 'tracing-protocol': 'grpc', 'tracing-endpoint': 'http://otel:4317', 'tracing-sampling-rate': '0.25' }),
    { exporter: 'otlp-grpc', endpoint: 'http://otel:4317', sampleRate: 0.25 })
  t.same(tracingFromObservabilityConfigMap({ 'tracing-protocol': 'http/protobuf', 'tracing-endpoint': 'http://otel:4318/v1/traces' }),
    { exporter: 'otlp-http', endpoint: 'http://otel:4318/v1/traces', sampleRate: 0 }, 'the sampling rate defaults to 0, as HEAD\'s does')
})

t.test('errors name the key', async (t) => {
  t.throws(() => tracingFromObservabilityConfigMap({ 'tracing-protocol': 'zipkin' }), /^config-observability: tracing-protocol "zipkin" is not one of none, http\/protobuf, grpc$/)
  t.throws(() => tracingFromObservabilityConfigMap({ 'tracing-protocol': 'grpc', 'tracing-sampling-rate': 'half' }), /^config-observability: tracing-sampling-rate must be a number in \[0, 1\], got "half"$/)
  t.throws(() => tracingFromObservabilityConfigMap({ 'tracing-protocol': 'grpc', 'tracing-sampling-rate': '1.5' }), /tracing-sampling-rate/)
})
