// The environment Knative 1.12's revision reconciler gives a queue-proxy container for a default
// revision (pkg/reconciler/revision/resources/queue.go, spec §1.2–1.3), with the stock
// config maps' defaults: both queue-proxies (Knative's Go one and Sluice's) get exactly this,
// so they run the same feature set on the same input. Placeholders as in targets.ts.

/** Port-independent part: names, timeouts and the config-observability/-tracing defaults. */
export const KNATIVE_QUEUE_ENV: Readonly<Record<string, string>> = {
  SERVING_NAMESPACE: 'bench',
  SERVING_SERVICE: 'bench',
  SERVING_CONFIGURATION: 'bench',
  SERVING_REVISION: 'bench-00001',
  QUEUE_SERVING_PORT: '{port}',
  QUEUE_SERVING_TLS_PORT: '8112', // only bound when certificates are mounted: never here
  CONTAINER_CONCURRENCY: '0',
  REVISION_TIMEOUT_SECONDS: '300', // config-defaults revision-timeout-seconds
  REVISION_RESPONSE_START_TIMEOUT_SECONDS: '0',
  REVISION_IDLE_TIMEOUT_SECONDS: '0',
  SERVING_POD: 'bench-00001-deployment-0',
  SERVING_POD_IP: '127.0.0.1',
  SERVING_LOGGING_CONFIG: '',
  SERVING_LOGGING_LEVEL: '',
  SERVING_REQUEST_LOG_TEMPLATE: '',
  SERVING_ENABLE_REQUEST_LOG: 'false',
  // config-observability's default: request metrics on, served as Prometheus text on :9091.
  SERVING_REQUEST_METRICS_BACKEND: 'prometheus',
  SERVING_REQUEST_METRICS_REPORTING_PERIOD_SECONDS: '5',
  // config-tracing's defaults (backend none: no tracer, no trace propagation).
  TRACING_CONFIG_BACKEND: 'none',
  TRACING_CONFIG_ZIPKIN_ENDPOINT: '',
  TRACING_CONFIG_DEBUG: 'false',
  TRACING_CONFIG_SAMPLE_RATE: '0.1',
  USER_PORT: '{backend_port}',
  SYSTEM_NAMESPACE: 'knative-serving',
  METRICS_DOMAIN: 'knative.dev/internal/serving',
  // The webhook's default probe for a container without one, as the reconciler rewrites it.
  SERVING_READINESS_PROBE: '{"tcpSocket":{"port":{backend_port},"host":"127.0.0.1"},"successThreshold":1}',
  ENABLE_PROFILING: 'false',
  SERVING_ENABLE_PROBE_REQUEST_LOG: 'false',
  METRICS_COLLECTOR_ADDRESS: '',
  HOST_IP: '127.0.0.1',
  ENABLE_HTTP2_AUTO_DETECTION: 'false',
  ROOT_CA: '',
};

/** Ports Knative's Go queue-proxy always binds, whatever its env: admin and autoscaler metrics. */
export const KNATIVE_QUEUE_FIXED_PORTS: readonly number[] = [8022, 9090];
