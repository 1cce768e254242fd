// Knative data-plane contract constants, defined once (spec §0, §1.6, §1.11, §2).
// Header names are lower-case: Node's http module hands them to us that way.

export const Header = {
  networkProbe: 'k-network-probe',
  networkHash: 'k-network-hash',
  kubeletProbe: 'k-kubelet-probe',
  proxyRequest: 'k-proxy-request',
  originalHost: 'k-original-host',
  passthroughLb: 'k-passthrough-lb',
  revision: 'knative-serving-revision',
  namespace: 'knative-serving-namespace',
  routeTag: 'knative-serving-tag',
  defaultRoute: 'knative-serving-default-route',
  userAgent: 'user-agent',
  forwarded: 'forwarded',
  xForwardedFor: 'x-forwarded-for',
  xForwardedProto: 'x-forwarded-proto',
  xForwardedHost: 'x-forwarded-host',
  retryAfter: 'retry-after',
} as const

/** Values of K-Network-Probe. */
export const ProbeValue = {
  queue: 'queue',
  activator: 'activator',
  kprobe: 'probe',
} as const

/** Value of K-Proxy-Request set by the activator. */
export const ProxyRequestActivator = 'activator'

/** User-Agent prefixes (spec §1.6). */
export const UserAgent = {
  kubeProbePrefix: 'kube-probe/',
  activatorProbe: 'Knative-Activator-Probe',
  autoscalingProbe: 'Knative-Autoscaling-Probe',
  /** What the QP's own HTTP readiness probes send (quirk §7.12). */
  queueHttpProbe: 'kube-probe//',
} as const

/** Default ports (spec §0). */
export const Port = {
  queueHttp: 8012,
  queueH2c: 8013,
  queueTls: 8112,
  queueAdmin: 8022,
  queueMetrics: 9090,
  queueUserMetrics: 9091,
  profiling: 8008,
  activatorHttp: 8012,
  activatorH2c: 8013,
  activatorMetrics: 9090,
  autoscalerWebsocket: 8080,
} as const

/** Exact response bodies (Go http.Error appends "\n"). */
export const Body = {
  shuttingDown: 'shutting down\n',
  queueFull: 'pending request queue full\n',
  deadlineExceeded: 'context deadline exceeded\n',
  requestTimeout: 'request timeout',
  activatorRequestTimeout: 'activator request timeout',
  noProbe: 'no probe\n',
  kprobeMissingHash: 'a probe request must contain a non-empty "K-Network-Hash" header\n',
} as const

/** Go's http.Error headers. */
export const GoErrorHeaders = {
  'content-type': 'text/plain; charset=utf-8',
  'x-content-type-options': 'nosniff',
} as const
