// The activator's environment (spec §2.1 plus SLUICE_*): Knative's variables
// with Knative's defaults, Sluice's own settings, and errors that name the
// variable (main.ts prints them and exits 1).
import t from 'tap'
import { EnvError } from '@sluice/core/env'
import { loadConfig } from '@sluice/activator/config'

const REQUIRED = { POD_NAME: 'activator-abc', POD_IP: '10.0.0.5', SYSTEM_NAMESPACE: 'knative-serving' }

t.test('Knative\'s Deployment environment alone: Knative\'s ports and probe timings, Sluice\'s defaults', async (t) => {
  const cfg = loadConfig(REQUIRED)
  t.match(cfg, {
    podName: 'activator-abc',
    podIP: '10.0.0.5',
    systemNamespace: 'knative-serving',
    clusterDomain: undefined,
    httpPort: 8012,
    h2cPort: 8013,
    metricsPort: 9090,
    profilingPort: 8008,
    profiling: false,
    bindHost: '',
    probeTimeoutMs: 300,
    probeFrequencyMs: 200,
    maxIdleProxyConns: 1000,
    maxIdleProxyConnsPerHost: 100,
    endpointSource: 'kubernetes',
    useEndpointSlices: false,
    readinessRequiresAutoscaler: false,
    drainMs: 45_000,
    maxQueuedPerRevision: 10_000,
    maxQueuedTotal: 20_000,
    maxBufferedBytesPerRevision: 32 << 20,
    maxBufferedBytesTotal: 48 << 20,
    shedOnDeadlineEstimate: false,
    maxReadAheadBytes: 8 << 20,
    loggingLevel: 'info',
    maxHeaderBytes: 1 << 20,
  })
})

t.test('Knative variables: PROBE_* as Go durations, METRICS_PROMETHEUS_PORT, PROFILING_PORT, CLUSTER_DOMAIN, idle conns', async (t) => {
  const cfg = loadConfig({
    ...REQUIRED,
    PROBE_TIMEOUT: '1s', PROBE_FREQUENCY: '150ms', METRICS_PROMETHEUS_PORT: '9191', PROFILING_PORT: '8118',
    CLUSTER_DOMAIN: 'corp.internal', MAX_IDLE_PROXY_CONNS: '50', MAX_IDLE_PROXY_CONNS_PER_HOST: '5',
  })
  t.equal(cfg.probeTimeoutMs, 1000)
  t.equal(cfg.probeFrequencyMs, 150)
  t.equal(cfg.metricsPort, 9191)
  t.equal(cfg.profilingPort, 8118)
  t.equal(cfg.clusterDomain, 'corp.internal')
  t.equal(cfg.maxIdleProxyConns, 50)
  t.equal(cfg.maxIdleProxyConnsPerHost, 5)
})

t.test('SLUICE_* settings, and SLUICE_ ports win over Knative\'s', async (t) => {
  const cfg = loadConfig({
    ...REQUIRED,
    METRICS_PROMETHEUS_PORT: '9191', PROFILING_PORT: '8118',
    SLUICE_HTTP_PORT: '0', SLUICE_H2C_PORT: '18013', SLUICE_METRICS_PORT: '19090', SLUICE_PROFILING_PORT: '0',
    SLUICE_PROFILING: 'true', SLUICE_BIND_ADDRESS: '127.0.0.1', SLUICE_ENDPOINT_SOURCE: 'local', SLUICE_LOCAL_API_PORT: '18080',
    SLUICE_USE_ENDPOINTSLICES: '1', SLUICE_READINESS_REQUIRES_AUTOSCALER: 'T', SLUICE_DRAIN_PERIOD: '1m30s',
    SLUICE_MAX_QUEUED_PER_REVISION: '2', SLUICE_MAX_QUEUED: '0x10', SLUICE_MAX_BUFFERED_BYTES_PER_REVISION: '1024',
    SLUICE_MAX_BUFFERED_BYTES: '2048', SLUICE_SHED_ON_DEADLINE_ESTIMATE: 'true', SLUICE_MAX_READ_AHEAD_BYTES: '0', SLUICE_LOG_LEVEL: 'debug',
    SLUICE_LOGGING_CONFIG: '{"level":"warn"}', SLUICE_MAX_HEADER_BYTES: '8192',
  })
  t.match(cfg, {
    httpPort: 0, h2cPort: 18013, metricsPort: 19090, profilingPort: 0, profiling: true, bindHost: '127.0.0.1',
    endpointSource: 'local', localApiPort: 18080, useEndpointSlices: true, readinessRequiresAutoscaler: true,
    drainMs: 90_000, maxQueuedPerRevision: 2, maxQueuedTotal: 16, maxBufferedBytesPerRevision: 1024,
    maxBufferedBytesTotal: 2048, shedOnDeadlineEstimate: true, maxReadAheadBytes: 0, loggingLevel: 'debug', loggingConfig: '{"level":"warn"}',
    maxHeaderBytes: 8192,
  })
  t.equal(loadConfig({ ...REQUIRED, SLUICE_DRAIN_PERIOD: '0s' }).drainMs, 0)
  t.equal(loadConfig({ ...REQUIRED, SLUICE_DRAIN_PERIOD: '2' }).drainMs, 2000, 'plain number = seconds')
})

t.test('SLUICE_TRACING_*: config-tracing\'s keys for the local source (off by default)', async (t) => {
  t.equal(loadConfig(REQUIRED).tracing, null)
  t.same(loadConfig({ ...REQUIRED, SLUICE_TRACING_BACKEND: 'zipkin', SLUICE_TRACING_ZIPKIN_ENDPOINT: 'http://zipkin:9411/api/v2/spans' }).tracing,
    { exporter: 'zipkin', endpoint: 'http://zipkin:9411/api/v2/spans', sampleRate: 0.1 }, 'config-tracing\'s default rate 0.1')
  t.equal(loadConfig({ ...REQUIRED, SLUICE_TRACING_BACKEND: 'zipkin', SLUICE_TRACING_ZIPKIN_ENDPOINT: 'http://z', SLUICE_TRACING_DEBUG: 'true' }).tracing?.sampleRate, 1)
})

t.test('errors name the variable', async (t) => {
  const cases: Array<[Record<string, string | undefined>, string, RegExp]> = [
    [{ ...REQUIRED, POD_NAME: undefined }, 'POD_NAME', /not set/],
    [{ ...REQUIRED, POD_IP: undefined }, 'POD_IP', /not set/],
    [{ ...REQUIRED, SYSTEM_NAMESPACE: undefined }, 'SYSTEM_NAMESPACE', /not set/],
    [{ ...REQUIRED, SYSTEM_NAMESPACE: '' }, 'SYSTEM_NAMESPACE', /must not be empty/],
    [{ ...REQUIRED, SLUICE_ENDPOINT_SOURCE: 'consul' }, 'SLUICE_ENDPOINT_SOURCE', /"kubernetes" or "local", got "consul"/],
    [{ ...REQUIRED, SLUICE_MAX_QUEUED_PER_REVISION: '0' }, 'SLUICE_MAX_QUEUED_PER_REVISION', /at least 1/],
    [{ ...REQUIRED, SLUICE_MAX_QUEUED: 'lots' }, 'SLUICE_MAX_QUEUED', /integer/],
    [{ ...REQUIRED, MAX_IDLE_PROXY_CONNS: '-1' }, 'MAX_IDLE_PROXY_CONNS', /at least 1/],
    [{ ...REQUIRED, PROBE_TIMEOUT: 'soon' }, 'PROBE_TIMEOUT', /duration/],
    [{ ...REQUIRED, PROBE_FREQUENCY: '-1s' }, 'PROBE_FREQUENCY', /duration/],
    [{ ...REQUIRED, SLUICE_HTTP_PORT: '70000' }, 'SLUICE_HTTP_PORT', /out of range/],
    [{ ...REQUIRED, METRICS_PROMETHEUS_PORT: 'x' }, 'METRICS_PROMETHEUS_PORT', /integer/],
    [{ ...REQUIRED, SLUICE_READINESS_REQUIRES_AUTOSCALER: 'yes' }, 'SLUICE_READINESS_REQUIRES_AUTOSCALER', /boolean/],
    [{ ...REQUIRED, SLUICE_MAX_READ_AHEAD_BYTES: '-1' }, 'SLUICE_MAX_READ_AHEAD_BYTES', /must not be negative/],
    [{ ...REQUIRED, SLUICE_SHED_ON_DEADLINE_ESTIMATE: 'sometimes' }, 'SLUICE_SHED_ON_DEADLINE_ESTIMATE', /cannot parse "sometimes" as a boolean/],
    [{ ...REQUIRED, SLUICE_TRACING_BACKEND: 'jaeger' }, 'SLUICE_TRACING_BACKEND', /unsupported backend "jaeger"/],
    [{ ...REQUIRED, SLUICE_TRACING_BACKEND: 'zipkin' }, 'SLUICE_TRACING_ZIPKIN_ENDPOINT', /zipkin-endpoint is required/],
    [{ ...REQUIRED, SLUICE_TRACING_BACKEND: 'zipkin', SLUICE_TRACING_ZIPKIN_ENDPOINT: 'http://z', SLUICE_TRACING_SAMPLE_RATE: '1.5' }, 'SLUICE_TRACING_SAMPLE_RATE', /sample-rate must be a number in \[0, 1\]/],
    [{ ...REQUIRED, SLUICE_TRACING_DEBUG: 'maybe' }, 'SLUICE_TRACING_DEBUG', /debug: cannot parse "maybe"/],
  ]
  for (const [env, variable, message] of cases) {
    try {
      loadConfig(env)
      t.fail(`${variable}: no error`)
    } catch (err) {
      t.type(err, EnvError, variable)
      t.equal((err as EnvError).variable, variable)
      t.match((err as Error).message, message)
      t.ok((err as Error).message.startsWith(`${variable}: `), 'the message starts with the variable')
    }
  }
})
