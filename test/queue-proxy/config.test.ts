// loadConfig: the queue-proxy's environment (spec §1.2, §1.3, §5) with Go
// envconfig semantics — required means present, ints and bools must parse,
// every error names its variable — plus OBSERVABILITY_CONFIG and the SLUICE_*
// additions.
import t from 'tap'
import { EnvError } from '@sluice/core/env'
import { loadConfig } from '@sluice/queue-proxy/config'

/** What the reconciler sets (spec §1.3), with the 1.12 observability variables. */
function reconcilerEnv(extra: Record<string, string | undefined> = {}): Record<string, string | undefined> {
  return {
    SERVING_NAMESPACE: 'default',
    SERVING_SERVICE: 'hello',
    SERVING_CONFIGURATION: 'hello',
    SERVING_REVISION: 'hello-00001',
    QUEUE_SERVING_PORT: '8012',
    QUEUE_SERVING_TLS_PORT: '8112',
    CONTAINER_CONCURRENCY: '0',
    REVISION_TIMEOUT_SECONDS: '300',
    REVISION_RESPONSE_START_TIMEOUT_SECONDS: '0',
    REVISION_IDLE_TIMEOUT_SECONDS: '0',
    SERVING_POD: 'hello-00001-deployment-abc',
    SERVING_POD_IP: '10.0.0.7',
    SERVING_LOGGING_CONFIG: '{"level":"info"}',
    SERVING_LOGGING_LEVEL: '',
    SERVING_REQUEST_LOG_TEMPLATE: '',
    SERVING_ENABLE_REQUEST_LOG: 'false',
    SERVING_REQUEST_METRICS_BACKEND: 'prometheus',
    SERVING_REQUEST_METRICS_REPORTING_PERIOD_SECONDS: '5',
    TRACING_CONFIG_BACKEND: 'none',
    TRACING_CONFIG_ZIPKIN_ENDPOINT: '',
    TRACING_CONFIG_DEBUG: 'false',
    TRACING_CONFIG_SAMPLE_RATE: '0.1',
    USER_PORT: '8080',
    SYSTEM_NAMESPACE: 'knative-serving',
    METRICS_DOMAIN: 'knative.dev/internal/serving',
    SERVING_READINESS_PROBE: '{"tcpSocket":{"port":8080,"host":"127.0.0.1"},"successThreshold":1}',
    ENABLE_PROFILING: 'false',
    SERVING_ENABLE_PROBE_REQUEST_LOG: 'false',
    METRICS_COLLECTOR_ADDRESS: '',
    HOST_IP: '10.0.0.1',
    ENABLE_HTTP2_AUTO_DETECTION: 'false',
    ROOT_CA: '',
    ...extra,
  }
}

/** An env without `name`. */
function without(name: string, env = reconcilerEnv()): Record<string, string | undefined> {
  const { [name]: _, ...rest } = env
  return rest
}

function errorOf(env: Record<string, string | undefined>): EnvError | undefined {
  try {
    loadConfig(env)
  } catch (err) {
    if (err instanceof EnvError) return err
    throw err
  }
  return undefined
}

const naming = (variable: string) => ({ name: 'EnvError', variable, message: new RegExp(`^${variable}: `) })

t.test('the reconciler\'s environment parses into the expected config', async (t) => {
  const c = loadConfig(reconcilerEnv())
  t.match(c, {
    containerConcurrency: 0,
    servingPort: 8012,
    tlsPort: 8112,
    userPort: 8080,
    userHost: '127.0.0.1',
    revisionTimeoutMs: 300_000,
    responseStartTimeoutMs: 0,
    idleTimeoutMs: 0,
    http2AutoDetect: false,
    namespace: 'default',
    service: 'hello',
    configuration: 'hello',
    revision: 'hello-00001',
    pod: 'hello-00001-deployment-abc',
    podIP: '10.0.0.7',
    loggingConfig: '{"level":"info"}',
    loggingLevel: '',
    requestLog: { enabled: false, template: '', probes: false },
    userMetrics: { host: '', port: 9091 },
    tracing: null,
    profiling: { enabled: false, port: 8008 },
    adminPort: 8022,
    metricsPort: 9090,
    bindHost: '',
    drainQuietMs: 30_000,
    websocketDrainMs: 60_000,
    maxHeaderBytes: 1 << 20,
  })
  t.equal(c.readinessProbe, '{"tcpSocket":{"port":8080,"host":"127.0.0.1"},"successThreshold":1}')
})

t.test('every required variable, when missing, gives an EnvError naming it', async (t) => {
  const required = [
    'CONTAINER_CONCURRENCY', 'QUEUE_SERVING_PORT', 'QUEUE_SERVING_TLS_PORT', 'USER_PORT', 'REVISION_TIMEOUT_SECONDS',
    'SERVING_NAMESPACE', 'SERVING_CONFIGURATION', 'SERVING_REVISION', 'SERVING_POD', 'SERVING_POD_IP',
    'SERVING_LOGGING_CONFIG', 'SERVING_LOGGING_LEVEL',
  ]
  for (const name of required) {
    const err = errorOf(without(name))
    t.match(err, naming(name), `${name} missing`)
    t.match(err?.message, /required environment variable is not set/)
  }
})

t.test('optional variables may be missing', async (t) => {
  const optional = [
    'SERVING_SERVICE', 'REVISION_RESPONSE_START_TIMEOUT_SECONDS', 'REVISION_IDLE_TIMEOUT_SECONDS', 'SERVING_READINESS_PROBE',
    'ENABLE_PROFILING', 'ENABLE_HTTP2_AUTO_DETECTION', 'SERVING_REQUEST_LOG_TEMPLATE', 'SERVING_ENABLE_REQUEST_LOG',
    'SERVING_ENABLE_PROBE_REQUEST_LOG', 'SERVING_REQUEST_METRICS_BACKEND', 'SERVING_REQUEST_METRICS_REPORTING_PERIOD_SECONDS',
    'TRACING_CONFIG_BACKEND', 'TRACING_CONFIG_DEBUG', 'TRACING_CONFIG_SAMPLE_RATE', 'METRICS_COLLECTOR_ADDRESS',
  ]
  let env = reconcilerEnv()
  for (const name of optional) env = without(name, env)
  const c = loadConfig(env)
  t.equal(c.service, '')
  t.equal(c.readinessProbe, '')
  t.equal(c.responseStartTimeoutMs, 0)
  t.equal(c.userMetrics, null, 'no backend: user metrics off')
})

t.test('required strings may be present but empty (envconfig only wants them set)', async (t) => {
  const c = loadConfig(reconcilerEnv({ SERVING_CONFIGURATION: '', SERVING_LOGGING_CONFIG: '', SERVING_POD_IP: '' }))
  t.equal(c.configuration, '')
  t.equal(c.loggingConfig, '')
})

t.test('unparsable ints and bools give an EnvError naming the variable', async (t) => {
  const bad: [string, string][] = [
    ['CONTAINER_CONCURRENCY', 'abc'],
    ['CONTAINER_CONCURRENCY', ''],
    ['CONTAINER_CONCURRENCY', '1.5'],
    ['REVISION_TIMEOUT_SECONDS', ''],
    ['REVISION_TIMEOUT_SECONDS', '30s'],
    ['REVISION_RESPONSE_START_TIMEOUT_SECONDS', 'x'],
    ['REVISION_IDLE_TIMEOUT_SECONDS', ' 1'],
    ['SERVING_REQUEST_METRICS_REPORTING_PERIOD_SECONDS', 'five'],
    ['SERVING_ENABLE_REQUEST_LOG', 'yes'],
    ['SERVING_ENABLE_REQUEST_LOG', ''],
    ['SERVING_ENABLE_PROBE_REQUEST_LOG', 'on'],
    ['ENABLE_PROFILING', 'enabled'],
    ['ENABLE_HTTP2_AUTO_DETECTION', '2'],
    ['ENABLE_HTT_P2_AUTO_DETECTION', 'y'],
    ['ENABLE_MULTI_CONTAINER_PROBES', 'Yes'],
    ['TRACING_CONFIG_DEBUG', 'TRUE!'],
    ['TRACING_CONFIG_SAMPLE_RATE', 'often'],
    ['QUEUE_SERVING_PORT', 'http'],
    ['QUEUE_SERVING_TLS_PORT', '70000'],
    ['USER_PORT', '-1'],
  ]
  for (const [name, value] of bad) t.match(errorOf(reconcilerEnv({ [name]: value })), naming(name), `${name}=${JSON.stringify(value)}`)
})

t.test('negative timeouts are rejected', async (t) => {
  t.match(errorOf(reconcilerEnv({ REVISION_TIMEOUT_SECONDS: '-1' })), naming('REVISION_TIMEOUT_SECONDS'))
  t.match(errorOf(reconcilerEnv({ REVISION_IDLE_TIMEOUT_SECONDS: '-5' })), naming('REVISION_IDLE_TIMEOUT_SECONDS'))
})

t.test('ints parse like strconv.ParseInt(v, 0, 64): 0x, 0o, 0b and legacy octal', async (t) => {
  t.equal(loadConfig(reconcilerEnv({ CONTAINER_CONCURRENCY: '0x10' })).containerConcurrency, 16)
  t.equal(loadConfig(reconcilerEnv({ CONTAINER_CONCURRENCY: '0o17' })).containerConcurrency, 15)
  t.equal(loadConfig(reconcilerEnv({ CONTAINER_CONCURRENCY: '0b11' })).containerConcurrency, 3)
  t.equal(loadConfig(reconcilerEnv({ CONTAINER_CONCURRENCY: '010' })).containerConcurrency, 8)
  t.equal(loadConfig(reconcilerEnv({ CONTAINER_CONCURRENCY: '+4' })).containerConcurrency, 4)
  t.equal(loadConfig(reconcilerEnv({ REVISION_TIMEOUT_SECONDS: '0x3c' })).revisionTimeoutMs, 60_000)
  t.equal(loadConfig(reconcilerEnv({ REVISION_IDLE_TIMEOUT_SECONDS: '1_000' })).idleTimeoutMs, 1_000_000)
  t.equal(loadConfig(reconcilerEnv({ USER_PORT: '0x1f90' })).userPort, 8080)
})

t.test('containerConcurrency < 1 means unlimited (0)', async (t) => {
  for (const v of ['0', '-1', '-100']) t.equal(loadConfig(reconcilerEnv({ CONTAINER_CONCURRENCY: v })).containerConcurrency, 0, v)
  t.equal(loadConfig(reconcilerEnv({ CONTAINER_CONCURRENCY: '1' })).containerConcurrency, 1)
})

t.test('bools parse like strconv.ParseBool', async (t) => {
  for (const v of ['1', 't', 'T', 'TRUE', 'true', 'True']) {
    t.equal(loadConfig(reconcilerEnv({ ENABLE_PROFILING: v })).profiling.enabled, true, v)
  }
  for (const v of ['0', 'f', 'F', 'FALSE', 'false', 'False']) {
    t.equal(loadConfig(reconcilerEnv({ ENABLE_PROFILING: v })).profiling.enabled, false, v)
  }
})

t.test('HTTP/2 auto-detection: the name the reconciler sets, and the misspelt name 1.12 read', async (t) => {
  t.equal(loadConfig(reconcilerEnv({ ENABLE_HTTP2_AUTO_DETECTION: 'true' })).http2AutoDetect, true)
  t.equal(loadConfig(reconcilerEnv({ ENABLE_HTTP2_AUTO_DETECTION: 'false', ENABLE_HTT_P2_AUTO_DETECTION: 'true' })).http2AutoDetect, true)
  t.equal(loadConfig(without('ENABLE_HTTP2_AUTO_DETECTION')).http2AutoDetect, false)
})

t.test('1.12 observability variables', async (t) => {
  t.test('request log: enabled with template and probe flag', async (t) => {
    const c = loadConfig(reconcilerEnv({ SERVING_ENABLE_REQUEST_LOG: 'true', SERVING_REQUEST_LOG_TEMPLATE: '{{.Request.Method}}', SERVING_ENABLE_PROBE_REQUEST_LOG: 'true' }))
    t.same(c.requestLog, { enabled: true, template: '{{.Request.Method}}', probes: true })
  })
  t.test('request metrics: only the prometheus backend serves on 9091; METRICS_PROMETHEUS_HOST is the bind host', async (t) => {
    t.same(loadConfig(reconcilerEnv({ METRICS_PROMETHEUS_HOST: '0.0.0.0' })).userMetrics, { host: '0.0.0.0', port: 9091 })
    for (const backend of ['', 'none', 'opencensus']) {
      t.equal(loadConfig(reconcilerEnv({ SERVING_REQUEST_METRICS_BACKEND: backend })).userMetrics, null, JSON.stringify(backend))
    }
  })
  t.test('tracing: the TRACING_CONFIG_* variables; on unless the backend is none (1.12: empty is on, without an exporter)', async (t) => {
    t.same(loadConfig(reconcilerEnv({ TRACING_CONFIG_BACKEND: 'zipkin', TRACING_CONFIG_ZIPKIN_ENDPOINT: 'http://zipkin:9411/api/v2/spans', TRACING_CONFIG_SAMPLE_RATE: '0.25' })).tracing,
      { exporter: 'zipkin', endpoint: 'http://zipkin:9411/api/v2/spans', sampleRate: 0.25 })
    t.same(loadConfig(reconcilerEnv({ TRACING_CONFIG_BACKEND: 'zipkin', TRACING_CONFIG_DEBUG: 'true' })).tracing?.sampleRate, 1, 'debug samples everything')
    t.same(loadConfig(reconcilerEnv({ TRACING_CONFIG_BACKEND: '' })).tracing, { exporter: 'discard', endpoint: '', sampleRate: 0.1 })
    t.equal(loadConfig(reconcilerEnv({ TRACING_CONFIG_BACKEND: 'none' })).tracing, null)
    t.match(errorOf(reconcilerEnv({ TRACING_CONFIG_BACKEND: 'zipkin', TRACING_CONFIG_SAMPLE_RATE: '2' })), naming('TRACING_CONFIG_SAMPLE_RATE'))
    t.match(errorOf(reconcilerEnv({ TRACING_CONFIG_BACKEND: 'none', TRACING_CONFIG_DEBUG: 'maybe' })), naming('TRACING_CONFIG_DEBUG'), 'parsed even when off')
  })
  t.test('profiling: ENABLE_PROFILING with PROFILING_PORT', async (t) => {
    t.same(loadConfig(reconcilerEnv({ ENABLE_PROFILING: 'true', PROFILING_PORT: '18008' })).profiling, { enabled: true, port: 18008 })
    t.match(errorOf(reconcilerEnv({ PROFILING_PORT: 'x' })), naming('PROFILING_PORT'))
  })
})

t.test('OBSERVABILITY_CONFIG (HEAD)', async (t) => {
  // HEAD's reconciler no longer sets the 1.12 variables.
  const head = (obs: string, extra: Record<string, string> = {}) => {
    let env = reconcilerEnv({ OBSERVABILITY_CONFIG: obs, ...extra })
    for (const name of ['SERVING_REQUEST_LOG_TEMPLATE', 'SERVING_ENABLE_REQUEST_LOG', 'SERVING_ENABLE_PROBE_REQUEST_LOG', 'SERVING_REQUEST_METRICS_BACKEND', 'TRACING_CONFIG_BACKEND', 'ENABLE_PROFILING']) env = without(name, env)
    return { ...env, ...extra }
  }

  t.test('the reconciler\'s default JSON: everything off', async (t) => {
    const c = loadConfig(head('{"tracing":{},"metrics":{},"runtime":{},"requestMetrics":{}}'))
    t.same(c.requestLog, { enabled: false, template: '', probes: false })
    t.equal(c.userMetrics, null)
    t.equal(c.tracing, null)
    t.equal(c.profiling.enabled, false)
  })

  t.test('request log fields, requestMetrics endpoint, runtime.profiling, tracing', async (t) => {
    const c = loadConfig(head(JSON.stringify({
      tracing: { protocol: 'grpc', endpoint: 'otel:4317', samplingRate: 0.1 },
      metrics: { protocol: 'prometheus' },
      runtime: { profiling: 'enabled' },
      requestMetrics: { protocol: 'prometheus', endpoint: '0.0.0.0:9555' },
      enableRequestLog: true,
      requestLogTemplate: '{{.Request.URL}}',
      enableProbeRequestLog: true,
    })))
    t.same(c.requestLog, { enabled: true, template: '{{.Request.URL}}', probes: true })
    t.same(c.userMetrics, { host: '0.0.0.0', port: 9555 })
    t.equal(c.profiling.enabled, true)
    t.same(c.tracing, { exporter: 'otlp-grpc', endpoint: 'https://otel:4317', sampleRate: 0.1 }, 'no scheme: https, as Knative')
  })

  t.test('requestMetrics endpoint forms: none → :9091, ":9092", "[::1]:9093"', async (t) => {
    t.same(loadConfig(head('{"requestMetrics":{"protocol":"prometheus"}}')).userMetrics, { host: '', port: 9091 })
    t.same(loadConfig(head('{"requestMetrics":{"protocol":"prometheus","endpoint":":9092"}}')).userMetrics, { host: '', port: 9092 })
    t.same(loadConfig(head('{"requestMetrics":{"protocol":"prometheus","endpoint":"[::1]:9093"}}')).userMetrics, { host: '::1', port: 9093 })
    t.match(errorOf(head('{"requestMetrics":{"protocol":"prometheus","endpoint":"host:port"}}')), naming('OBSERVABILITY_CONFIG'))
  })

  t.test('SLUICE_USER_METRICS_PORT overrides the endpoint port', async (t) => {
    t.same(loadConfig(head('{"requestMetrics":{"protocol":"prometheus","endpoint":"0.0.0.0:9555"}}', { SLUICE_USER_METRICS_PORT: '0' })).userMetrics, { host: '0.0.0.0', port: 0 })
  })

  t.test('OTLP request metrics protocols serve no Prometheus listener', async (t) => {
    for (const protocol of ['none', 'grpc', 'http/protobuf']) {
      t.equal(loadConfig(head(JSON.stringify({ requestMetrics: { protocol } }))).userMetrics, null, protocol)
    }
  })

  t.test('when present it wins over the 1.12 variables', async (t) => {
    const c = loadConfig(reconcilerEnv({ OBSERVABILITY_CONFIG: '{}', SERVING_ENABLE_REQUEST_LOG: 'true', SERVING_REQUEST_LOG_TEMPLATE: 'x', ENABLE_PROFILING: 'true' }))
    t.equal(c.requestLog.enabled, false)
    t.equal(c.userMetrics, null)
    t.equal(c.profiling.enabled, false)
  })

  t.test('an empty value means absent (1.12 variables are read)', async (t) => {
    t.same(loadConfig(reconcilerEnv({ OBSERVABILITY_CONFIG: '' })).userMetrics, { host: '', port: 9091 })
  })

  t.test('logging variables are optional with it', async (t) => {
    const c = loadConfig(without('SERVING_LOGGING_LEVEL', without('SERVING_LOGGING_CONFIG', head('{}'))))
    t.equal(c.loggingConfig, '')
    t.equal(c.loggingLevel, '')
  })

  t.test('invalid JSON or a non-object → EnvError naming OBSERVABILITY_CONFIG', async (t) => {
    for (const v of ['{not json', '[]', 'null', '"text"', '42']) {
      t.match(errorOf(head(v)), naming('OBSERVABILITY_CONFIG'), v)
    }
  })
})

t.test('SLUICE_* overrides', async (t) => {
  t.test('ports, bind address, upstream host, drain timings, header limit', async (t) => {
    const c = loadConfig(reconcilerEnv({
      SLUICE_ADMIN_PORT: '18022',
      SLUICE_METRICS_PORT: '19090',
      SLUICE_USER_METRICS_PORT: '19091',
      SLUICE_BIND_ADDRESS: '127.0.0.1',
      SLUICE_USER_HOST: '::1',
      SLUICE_DRAIN_QUIET_PERIOD: '500ms',
      SLUICE_DRAIN_WEBSOCKET_TIMEOUT: '1m30s',
      SLUICE_MAX_HEADER_BYTES: '0x10000',
    }))
    t.match(c, { adminPort: 18022, metricsPort: 19090, userMetrics: { port: 19091 }, bindHost: '127.0.0.1', userHost: '::1', drainQuietMs: 500, websocketDrainMs: 90_000, maxHeaderBytes: 65536 })
  })

  t.test('port 0 (ephemeral) is allowed for the Sluice ports', async (t) => {
    const c = loadConfig(reconcilerEnv({ SLUICE_ADMIN_PORT: '0', SLUICE_METRICS_PORT: '0', QUEUE_SERVING_PORT: '0' }))
    t.equal(c.adminPort, 0)
    t.equal(c.metricsPort, 0)
    t.equal(c.servingPort, 0)
  })

  t.test('durations: Go syntax or plain seconds', async (t) => {
    t.equal(loadConfig(reconcilerEnv({ SLUICE_DRAIN_QUIET_PERIOD: '2' })).drainQuietMs, 2000)
    t.equal(loadConfig(reconcilerEnv({ SLUICE_DRAIN_QUIET_PERIOD: '0s' })).drainQuietMs, 0)
    t.equal(loadConfig(reconcilerEnv({ SLUICE_DRAIN_QUIET_PERIOD: '1.5s' })).drainQuietMs, 1500)
  })

  t.test('invalid values give an EnvError naming the variable', async (t) => {
    const bad: [string, string][] = [
      ['SLUICE_ADMIN_PORT', '70000'],
      ['SLUICE_ADMIN_PORT', 'admin'],
      ['SLUICE_METRICS_PORT', '-1'],
      ['SLUICE_USER_METRICS_PORT', ''],
      ['SLUICE_DRAIN_QUIET_PERIOD', 'soon'],
      ['SLUICE_DRAIN_QUIET_PERIOD', '-1s'],
      ['SLUICE_DRAIN_QUIET_PERIOD', ''],
      ['SLUICE_DRAIN_WEBSOCKET_TIMEOUT', '10 s'],
      ['SLUICE_MAX_HEADER_BYTES', '100'],
      ['SLUICE_MAX_HEADER_BYTES', 'big'],
    ]
    for (const [name, value] of bad) t.match(errorOf(reconcilerEnv({ [name]: value })), naming(name), `${name}=${JSON.stringify(value)}`)
  })
})
