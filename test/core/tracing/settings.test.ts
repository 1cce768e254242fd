import t from 'tap'
import { EnvError } from '@sluice/core/env'
import { tracingFromConfigMap, tracingFromEnv, tracingFromObservability } from '@sluice/core/tracing/settings'

t.test('TRACING_CONFIG_* (1.12 queue-proxy env)', async (t) => {
  t.equal(tracingFromEnv({}), undefined, 'absent backend is none')
  t.equal(tracingFromEnv({ TRACING_CONFIG_BACKEND: 'none', TRACING_CONFIG_SAMPLE_RATE: '0.5' }), undefined)
  t.same(
    tracingFromEnv({
      TRACING_CONFIG_BACKEND: 'zipkin',
      TRACING_CONFIG_ZIPKIN_ENDPOINT: 'http://z:9411/api/v2/spans',
      TRACING_CONFIG_SAMPLE_RATE: '0.1',
    }),
    { exporter: 'zipkin', endpoint: 'http://z:9411/api/v2/spans', sampleRate: 0.1 },
  )
  t.same(
    tracingFromEnv({ TRACING_CONFIG_BACKEND: 'zipkin', TRACING_CONFIG_DEBUG: 'true', TRACING_CONFIG_SAMPLE_RATE: '0' }),
    { exporter: 'zipkin', endpoint: '', sampleRate: 1 },
    'debug always samples',
  )
  t.same(tracingFromEnv({ TRACING_CONFIG_BACKEND: '' }), { exporter: 'discard', endpoint: '', sampleRate: 0 }, 'empty backend enables the code path without an exporter')
  t.throws(() => tracingFromEnv({ TRACING_CONFIG_SAMPLE_RATE: 'x' }), { name: 'EnvError', variable: 'TRACING_CONFIG_SAMPLE_RATE' }, 'bad values fail even when off')
  t.throws(() => tracingFromEnv({ TRACING_CONFIG_DEBUG: 'maybe' }), { name: 'EnvError', variable: 'TRACING_CONFIG_DEBUG' })
  t.throws(() => tracingFromEnv({ TRACING_CONFIG_BACKEND: 'zipkin', TRACING_CONFIG_SAMPLE_RATE: '2' }), { name: 'EnvError', variable: 'TRACING_CONFIG_SAMPLE_RATE' })
})

t.test('config-tracing ConfigMap (activator)', async (t) => {
  t.equal(tracingFromConfigMap({}), undefined, 'default backend none')
  t.same(tracingFromConfigMap({ backend: 'zipkin', 'zipkin-endpoint': 'http://z/' }), { exporter: 'zipkin', endpoint: 'http://z/', sampleRate: 0.1 }, 'sample-rate defaults to 0.1')
  t.same(tracingFromConfigMap({ enable: 'true', 'zipkin-endpoint': 'http://z/', debug: 'true' }), { exporter: 'zipkin', endpoint: 'http://z/', sampleRate: 1 }, 'legacy enable means zipkin')
  t.equal(tracingFromConfigMap({ enable: 'false', 'zipkin-endpoint': 'http://z/' }), undefined)
  t.throws(() => tracingFromConfigMap({ backend: 'jaeger' }), /unsupported backend/)
  t.throws(() => tracingFromConfigMap({ backend: 'zipkin' }), /zipkin-endpoint is required/)
  t.throws(() => tracingFromConfigMap({ debug: 'nope' }), /debug/)
  for (const bad of ['', '1.5', '-0.1', 'x']) t.throws(() => tracingFromConfigMap({ 'sample-rate': bad }), /sample-rate/, `sample-rate ${JSON.stringify(bad)}`)
})

t.test('OBSERVABILITY_CONFIG tracing block (1.19+)', async (t) => {
  t.equal(tracingFromObservability(undefined), undefined)
  t.equal(tracingFromObservability({}), undefined, 'empty block (what the reconciler writes by default) is off')
  t.equal(tracingFromObservability({ protocol: 'none' }), undefined)
  t.equal(tracingFromObservability({ protocol: '' }), undefined)
  t.same(tracingFromObservability({ protocol: 'http/protobuf', endpoint: 'http://c:4318/v1/traces', samplingRate: 0.25 }), {
    exporter: 'otlp-http',
    endpoint: 'http://c:4318/v1/traces',
    sampleRate: 0.25,
  })
  t.same(tracingFromObservability({ protocol: 'grpc', endpoint: 'c:4317' }), { exporter: 'otlp-grpc', endpoint: 'https://c:4317', sampleRate: 0 }, 'no scheme: https, as Knative')
  const bad = [[1], 'x', { protocol: 'zipkin' }, { protocol: 'grpc', samplingRate: 2 }, { protocol: 'grpc', samplingRate: '0.1' }, { protocol: 'grpc', endpoint: 4 }]
  for (const b of bad) {
    t.throws(() => tracingFromObservability(b), EnvError, JSON.stringify(b))
  }
})

// knative.dev/pkg observability/tracing endpointFor: an endpoint without a
// scheme ("host:port/path" parses as an opaque URL) gets "https://" in front,
// for grpc and http/protobuf alike. The gRPC exporter does the same itself;
// the OTLP/HTTP exporter does not (it sends nothing: "collector:" is taken as
// the URL scheme), so settings.ts adds it.
t.test('OBSERVABILITY_CONFIG endpoint without a scheme means https (as Knative)', async (t) => {
  const s = tracingFromObservability({ protocol: 'http/protobuf', endpoint: 'collector.observability.svc:4318/v1/traces', samplingRate: 1 })
  t.equal(s?.endpoint, 'https://collector.observability.svc:4318/v1/traces')
})
