// Reads a Knative Service manifest (serving.knative.dev/v1) for a local run:
// YAML in, a validated ServiceSpec out, with the defaults Knative's webhook
// applies (pkg/apis/serving/v1 *_defaults.go) and its validation rules
// (*_validation.go, pkg/apis/autoscaling/annotation_validation.go), plus the
// one local rule: a container runs as a process, so it needs a command.
// Every problem is reported with the field path it is about, all at once.

import { parseAllDocuments } from 'yaml'
import { parseGoDuration } from '@sluice/core/env'

export type Metric = 'concurrency' | 'rps'

/** The autoscaling.knative.dev/* annotations; undefined = the config-autoscaler default applies. */
export interface AutoscalingSettings {
  minScale: number | undefined
  /** 0 = unbounded. */
  maxScale: number | undefined
  initialScale: number | undefined
  target: number | undefined
  targetUtilizationPercentage: number | undefined
  metric: Metric
  windowMs: number | undefined
  panicWindowPercentage: number | undefined
  panicThresholdPercentage: number | undefined
  scaleToZeroPodRetentionPeriodMs: number | undefined
  scaleDownDelayMs: number | undefined
  /** -1 = unlimited. */
  targetBurstCapacity: number | undefined
}

export interface EnvVar {
  name: string
  value: string
}

export interface ContainerSpec {
  name: string
  /** Kept for reference; locally nothing is pulled. */
  image: string | undefined
  command: string[]
  args: string[]
  workingDir: string | undefined
  env: EnvVar[]
  /** The container that receives traffic (the one with a port, or the only one). */
  serving: boolean
  /** containerPort of the serving container (8080 when none is given); undefined for sidecars. */
  port: number | undefined
  /** '' | 'http1' | 'h2c' (h2c: the queue-proxy speaks HTTP/2 cleartext to the app). */
  portName: string
  /** SERVING_READINESS_PROBE for the queue-proxy (serving container only). */
  readinessProbe: string | undefined
}

export interface RevisionTemplate {
  /** spec.template.metadata.name: an explicit revision name. */
  name: string | undefined
  labels: Record<string, string>
  annotations: Record<string, string>
  autoscaling: AutoscalingSettings
  containerConcurrency: number
  timeoutSeconds: number
  responseStartTimeoutSeconds: number | undefined
  idleTimeoutSeconds: number | undefined
  containers: ContainerSpec[]
}

export interface TrafficTarget {
  tag: string | undefined
  revisionName: string | undefined
  latestRevision: boolean
  percent: number
}

export interface ServiceSpec {
  name: string
  namespace: string
  labels: Record<string, string>
  annotations: Record<string, string>
  template: RevisionTemplate
  traffic: TrafficTarget[]
  /** File name (and document number when the file holds several), for messages. */
  source: string
  /** Fields accepted but without effect locally, one line each. */
  warnings: string[]
}

export interface ParseOptions {
  /** config-defaults revision-timeout-seconds. */
  defaultTimeoutSeconds?: number
  /** config-defaults max-revision-timeout-seconds (3600 locally). */
  maxTimeoutSeconds?: number
  /** config-autoscaler allow-zero-initial-scale. */
  allowZeroInitialScale?: boolean
}

export interface FieldIssue {
  /** Field path, e.g. spec.template.spec.containers[0].ports[0].containerPort ('' = the document). */
  path: string
  message: string
}

export class ManifestError extends Error {
  readonly source: string
  readonly issues: readonly FieldIssue[]
  constructor(source: string, issues: readonly FieldIssue[]) {
    super(issues.map((i) => `${source}: ${i.path ? `${i.path}: ` : ''}${i.message}`).join('\n'))
    this.name = 'ManifestError'
    this.source = source
    this.issues = issues
  }
}

export const API_VERSION = 'serving.knative.dev/v1'
export const DEFAULT_NAMESPACE = 'default'
export const DEFAULT_PORT = 8080
export const DEFAULT_TIMEOUT_SECONDS = 300
export const MAX_TIMEOUT_SECONDS = 3600
export const MAX_CONTAINER_CONCURRENCY = 1000
const USER_CONTAINER = 'user-container'
// Ports the queue-proxy owns inside a pod (spec §0, §1.3).
const RESERVED_PORTS = new Set([8008, 8012, 8013, 8022, 8112, 9090, 9091])
const RESERVED_ENV = new Set(['PORT', 'K_SERVICE', 'K_CONFIGURATION', 'K_REVISION'])
const PORT_NAMES = new Set(['', 'http1', 'h2c'])
const INT32_MAX = 2 ** 31 - 1
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/
const DNS_1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/
const ENV_NAME = /^[-._a-zA-Z][-._a-zA-Z0-9]*$/

/** Every Service in the file, in document order (a Service may appear again as a later version). */
export function parseServiceManifests(text: string, sourceName: string, options: ParseOptions = {}): ServiceSpec[] {
  const docs = parseAllDocuments(text, { version: '1.1' }) // Kubernetes reads YAML 1.1 (yes/no are booleans)
  const list = Array.isArray(docs) ? docs : []
  const services: ServiceSpec[] = []
  list.forEach((doc, i) => {
    const source = list.length > 1 ? `${sourceName} (document ${i + 1})` : sourceName
    if (doc.errors.length > 0) {
      const first = doc.errors[0]!.message.split('\n')[0]!.replace(/:$/, '')
      throw new ManifestError(source, [{ path: '', message: `invalid YAML: ${first}` }])
    }
    const value: unknown = doc.toJS()
    if (value === null || value === undefined) return // an empty document ("---" twice)
    const reader = new ManifestReader(source, options)
    const spec = reader.document(value)
    if (reader.issues.length > 0 || !spec) throw new ManifestError(source, reader.issues)
    services.push(spec)
  })
  if (services.length === 0) {
    throw new ManifestError(sourceName, [{ path: '', message: `no Knative Service found (expected apiVersion: ${API_VERSION}, kind: Service)` }])
  }
  return services
}

/** The one Service of a file; errors when the file holds none or several documents of Services. */
export function parseServiceManifest(text: string, sourceName: string, options: ParseOptions = {}): ServiceSpec {
  const services = parseServiceManifests(text, sourceName, options)
  if (services.length > 1) {
    const names = services.map((s) => `${s.namespace}/${s.name}`).join(', ')
    throw new ManifestError(sourceName, [{ path: '', message: `expected one Service, found ${services.length} (${names})` }])
  }
  return services[0]!
}

/** The container that receives traffic. */
export function servingContainer(template: RevisionTemplate): ContainerSpec {
  return template.containers.find((c) => c.serving) ?? template.containers[0]!
}

type Json = Record<string, unknown>

// Field sets: known fields are read, `ignored` ones are accepted with a
// warning (they mean something on a cluster, nothing to a local process),
// anything else is an unknown field, as kubectl's strict validation says.
const SERVICE_FIELDS = ['apiVersion', 'kind', 'metadata', 'spec', 'status']
const META_FIELDS = ['name', 'namespace', 'labels', 'annotations', 'generateName', 'uid', 'resourceVersion', 'generation',
  'creationTimestamp', 'deletionTimestamp', 'deletionGracePeriodSeconds', 'managedFields', 'selfLink', 'finalizers', 'ownerReferences']
const TEMPLATE_META_FIELDS = ['name', 'labels', 'annotations', 'creationTimestamp']
const REVISION_FIELDS = ['containers', 'containerConcurrency', 'timeoutSeconds', 'responseStartTimeoutSeconds', 'idleTimeoutSeconds']
const POD_IGNORED = ['volumes', 'serviceAccountName', 'serviceAccount', 'imagePullSecrets', 'enableServiceLinks',
  'automountServiceAccountToken', 'nodeSelector', 'nodeName', 'tolerations', 'affinity', 'securityContext',
  'priorityClassName', 'priority', 'preemptionPolicy', 'runtimeClassName', 'dnsPolicy', 'dnsConfig', 'hostAliases',
  'hostname', 'subdomain', 'setHostnameAsFQDN', 'initContainers', 'schedulerName', 'topologySpreadConstraints',
  'hostIPC', 'hostPID', 'hostNetwork', 'hostUsers', 'shareProcessNamespace', 'overhead', 'readinessGates', 'os',
  'resourceClaims', 'schedulingGates', 'terminationGracePeriodSeconds', 'activeDeadlineSeconds', 'restartPolicy']
const CONTAINER_FIELDS = ['name', 'image', 'command', 'args', 'workingDir', 'ports', 'env', 'envFrom', 'readinessProbe']
const CONTAINER_IGNORED = ['resources', 'resizePolicy', 'restartPolicy', 'volumeMounts', 'volumeDevices', 'livenessProbe',
  'startupProbe', 'lifecycle', 'terminationMessagePath', 'terminationMessagePolicy', 'imagePullPolicy', 'securityContext',
  'stdin', 'stdinOnce', 'tty']
const PORT_FIELDS = ['containerPort', 'name', 'protocol', 'hostPort', 'hostIP']
const ENV_FIELDS = ['name', 'value', 'valueFrom']
const PROBE_FIELDS = ['httpGet', 'tcpSocket', 'exec', 'grpc', 'initialDelaySeconds', 'timeoutSeconds', 'periodSeconds',
  'successThreshold', 'failureThreshold', 'terminationGracePeriodSeconds']
const TRAFFIC_FIELDS = ['tag', 'revisionName', 'latestRevision', 'percent', 'configurationName', 'url']

// autoscaling.knative.dev/* keys: each setting accepts its kebab-case key and
// the older camelCase one (Knative's kmap.KeyPriority), never both at once.
const AS = 'autoscaling.knative.dev/'
const ANN = {
  class: [`${AS}class`],
  minScale: [`${AS}min-scale`, `${AS}minScale`],
  maxScale: [`${AS}max-scale`, `${AS}maxScale`],
  initialScale: [`${AS}initial-scale`, `${AS}initialScale`],
  target: [`${AS}target`],
  targetUtilizationPercentage: [`${AS}target-utilization-percentage`, `${AS}targetUtilizationPercentage`],
  metric: [`${AS}metric`],
  window: [`${AS}window`],
  panicWindowPercentage: [`${AS}panic-window-percentage`, `${AS}panicWindowPercentage`],
  panicThresholdPercentage: [`${AS}panic-threshold-percentage`, `${AS}panicThresholdPercentage`],
  scaleToZeroPodRetentionPeriod: [`${AS}scale-to-zero-pod-retention-period`, `${AS}scaleToZeroPodRetentionPeriod`],
  scaleDownDelay: [`${AS}scale-down-delay`],
  targetBurstCapacity: [`${AS}target-burst-capacity`, `${AS}targetBurstCapacity`],
} as const
const ANN_IGNORED = [`${AS}activation-scale`, `${AS}metric-aggregation-algorithm`]
const KNOWN_ANNOTATIONS: string[] = Object.values(ANN).flat()
const KPA = 'kpa.autoscaling.knative.dev'
const WINDOW_MIN_MS = 6_000
const WINDOW_MAX_MS = 3_600_000

/** Collects issues for one document while reading it. */
class ManifestReader {
  readonly issues: FieldIssue[] = []
  readonly warnings: string[] = []
  readonly source: string
  readonly options: Required<ParseOptions>

  constructor(source: string, options: ParseOptions) {
    this.source = source
    this.options = {
      defaultTimeoutSeconds: options.defaultTimeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS,
      maxTimeoutSeconds: options.maxTimeoutSeconds ?? MAX_TIMEOUT_SECONDS,
      allowZeroInitialScale: options.allowZeroInitialScale ?? false,
    }
  }

  document(value: unknown): ServiceSpec | undefined {
    if (!isObject(value)) return this.bad('', `expected a Kubernetes object, got ${describe(value)}`)
    const apiVersion = value['apiVersion']
    const kind = value['kind']
    if (kind === 'Service' && apiVersion === API_VERSION) return this.service(value)
    if (kind === 'Service' && typeof apiVersion === 'string' && apiVersion.startsWith('serving.knative.dev/')) {
      return this.bad('apiVersion', `${apiVersion} is not supported; use ${API_VERSION}`)
    }
    const expected = `sluice runs Knative Services (apiVersion: ${API_VERSION}, kind: Service)`
    if (typeof kind !== 'string' || kind === '') return this.bad('kind', `required: ${expected}`)
    return this.bad('kind', `${kind}${typeof apiVersion === 'string' ? ` (${apiVersion})` : ''} is not supported: ${expected}`)
  }

  private service(doc: Json): ServiceSpec | undefined {
    this.fields(doc, '', SERVICE_FIELDS)
    const meta = this.obj(doc, 'metadata', '')
    const spec = this.obj(doc, 'spec', '')
    if (!meta) this.issue('metadata', 'required')
    if (!spec) this.issue('spec', 'required')
    const name = meta ? this.serviceName(meta) : ''
    const namespace = meta ? this.namespace(meta) : DEFAULT_NAMESPACE
    const labels = (meta && this.stringMap(meta, 'labels', 'metadata')) ?? {}
    const annotations = (meta && this.stringMap(meta, 'annotations', 'metadata')) ?? {}
    for (const key of Object.keys(annotations)) {
      if (key.startsWith(AS)) {
        this.issue(`metadata.annotations[${JSON.stringify(key)}]`, 'autoscaling annotations only work on the revision template: move it to spec.template.metadata.annotations')
      }
    }
    if (!spec) return undefined
    this.fields(spec, 'spec', ['template', 'traffic'])
    const rawTemplate = this.obj(spec, 'template', 'spec')
    if (!rawTemplate) return this.bad('spec.template', 'required')
    const template = this.template(rawTemplate, 'spec.template', name)
    const traffic = this.traffic(spec, name)
    if (this.issues.length > 0) return undefined
    return { name, namespace, labels, annotations, template, traffic, source: this.source, warnings: this.warnings }
  }

  private serviceName(meta: Json): string {
    this.fields(meta, 'metadata', META_FIELDS)
    const name = this.str(meta, 'name', 'metadata')
    if (name === undefined) {
      const hint = meta['generateName'] !== undefined ? ' (generateName is not supported: a Service needs a fixed name for its host)' : ''
      this.issue('metadata.name', `required${hint}`)
      return ''
    }
    if (!DNS_1035_LABEL.test(name) || name.length > 63) {
      this.issue('metadata.name', `must be a DNS label: lowercase letters, digits and '-', starting with a letter, at most 63 characters; got ${JSON.stringify(name)}`)
    }
    return name
  }

  private namespace(meta: Json): string {
    const ns = this.str(meta, 'namespace', 'metadata')
    if (ns === undefined || ns === '') return DEFAULT_NAMESPACE
    if (!DNS_LABEL.test(ns) || ns.length > 63) {
      this.issue('metadata.namespace', `must be a DNS label (lowercase letters, digits and '-', at most 63 characters); got ${JSON.stringify(ns)}`)
    }
    return ns
  }

  private template(t: Json, path: string, service: string): RevisionTemplate {
    this.fields(t, path, ['metadata', 'spec'])
    const meta = this.obj(t, 'metadata', path) ?? {}
    const mp = `${path}.metadata`
    this.fields(meta, mp, TEMPLATE_META_FIELDS)
    const name = this.str(meta, 'name', mp)
    if (name !== undefined && !name.startsWith(`${service}-`)) {
      this.issue(`${mp}.name`, `a revision name must start with the Service name and a dash ("${service}-"); got ${JSON.stringify(name)}`)
    } else if (name !== undefined && (!DNS_LABEL.test(name) || name.length > 63)) {
      this.issue(`${mp}.name`, `must be a DNS label (lowercase letters, digits and '-', at most 63 characters); got ${JSON.stringify(name)}`)
    }
    const labels = this.stringMap(meta, 'labels', mp) ?? {}
    const annotations = this.stringMap(meta, 'annotations', mp) ?? {}
    const autoscaling = this.autoscaling(annotations, `${mp}.annotations`)
    const spec = this.obj(t, 'spec', path)
    const sp = `${path}.spec`
    if (!spec) this.issue(sp, 'required')
    const s = spec ?? {}
    const ignored = this.fields(s, sp, REVISION_FIELDS, POD_IGNORED)
    if (ignored.length > 0) this.warn(sp, `ignored locally: ${ignored.join(', ')}`)
    const max = this.options.maxTimeoutSeconds
    const timeoutSeconds = this.int(s, 'timeoutSeconds', sp, 0, max, ' (seconds)') ?? this.options.defaultTimeoutSeconds
    return {
      name,
      labels,
      annotations,
      autoscaling,
      containerConcurrency: this.int(s, 'containerConcurrency', sp, 0, MAX_CONTAINER_CONCURRENCY) ?? 0,
      timeoutSeconds,
      responseStartTimeoutSeconds: this.int(s, 'responseStartTimeoutSeconds', sp, 0, max, ' (seconds)'),
      idleTimeoutSeconds: this.int(s, 'idleTimeoutSeconds', sp, 0, max, ' (seconds)'),
      containers: spec ? this.containers(s, sp) : [],
    }
  }

  private containers(spec: Json, path: string): ContainerSpec[] {
    const raw = this.list(spec, 'containers', path)
    const cp = `${path}.containers`
    if (!raw || raw.length === 0) {
      if (raw || spec['containers'] === undefined || spec['containers'] === null) this.issue(cp, 'at least one container is required')
      return []
    }
    const single = raw.length === 1
    const containers: ContainerSpec[] = []
    const probes: (Json | undefined)[] = []
    const names = new Set<string>()
    raw.forEach((c, i) => {
      const p = `${cp}[${i}]`
      if (!isObject(c)) return this.issue(p, `expected a container object, got ${describe(c)}`)
      const container = this.container(c, p, single ? USER_CONTAINER : `${USER_CONTAINER}-${i}`)
      if (names.has(container.name)) this.issue(`${p}.name`, `duplicate container name ${JSON.stringify(container.name)}`)
      names.add(container.name)
      containers.push(container)
      probes.push(this.obj(c, 'readinessProbe', p))
    })
    if (containers.length !== raw.length) return containers
    // The serving container: the only one, or the one container with a port.
    const withPorts = containers.filter((c) => c.port !== undefined)
    if (single) {
      containers[0]!.serving = true
      containers[0]!.port ??= DEFAULT_PORT
    } else if (withPorts.length === 0) {
      this.issue(cp, `with ${raw.length} containers, exactly one must set ports[0].containerPort (the one that receives traffic)`)
    } else if (withPorts.length > 1) {
      this.issue(`${cp}[${containers.indexOf(withPorts[1]!)}].ports`, 'only one container may set ports: the one that receives traffic')
    } else {
      withPorts[0]!.serving = true
    }
    containers.forEach((c, i) => {
      if (c.serving) c.readinessProbe = this.readinessProbe(probes[i], `${cp}[${i}].readinessProbe`, c.port!, c.portName)
    })
    return containers
  }

  private container(c: Json, path: string, defaultName: string): ContainerSpec {
    const ignored = this.fields(c, path, CONTAINER_FIELDS, CONTAINER_IGNORED)
    if (ignored.length > 0) this.warn(path, `ignored locally: ${ignored.join(', ')}`)
    const name = this.str(c, 'name', path) || defaultName
    if (!DNS_LABEL.test(name) || name.length > 63) {
      this.issue(`${path}.name`, `must be a DNS label (lowercase letters, digits and '-', at most 63 characters); got ${JSON.stringify(name)}`)
    }
    const image = this.str(c, 'image', path)
    const command = this.strings(c, 'command', path)
    const rawCommand = c['command']
    if (rawCommand === undefined || rawCommand === null || (Array.isArray(rawCommand) && rawCommand.length === 0)) {
      const from = image ? ` (image ${image} is not pulled or run)` : ''
      this.issue(`${path}.command`, `required locally: sluice runs each container as a process on this machine${from}, ` +
        'so give the command (and args) that start the app, e.g. command: ["node"], args: ["app.js"]')
    } else if (command?.[0] === '') {
      this.issue(`${path}.command[0]`, 'must not be empty')
    }
    if (c['envFrom'] !== undefined && c['envFrom'] !== null) {
      this.issue(`${path}.envFrom`, 'not supported locally (there are no ConfigMaps or Secrets here); list the variables under env with a value')
    }
    const { port, portName } = this.port(c, path)
    return {
      name,
      image,
      command: command ?? [],
      args: this.strings(c, 'args', path) ?? [],
      workingDir: this.str(c, 'workingDir', path) || undefined,
      env: this.env(c, path),
      serving: false,
      port,
      portName,
      readinessProbe: undefined,
    }
  }

  private port(c: Json, path: string): { port: number | undefined; portName: string } {
    const ports = this.list(c, 'ports', path)
    if (!ports || ports.length === 0) return { port: undefined, portName: '' }
    if (ports.length > 1) this.issue(`${path}.ports`, `at most one port per container (Knative sends traffic to a single port); got ${ports.length}`)
    const pp = `${path}.ports[0]`
    const p = ports[0]
    if (!isObject(p)) {
      this.issue(pp, `expected a port object, got ${describe(p)}`)
      return { port: undefined, portName: '' }
    }
    this.fields(p, pp, PORT_FIELDS)
    for (const key of ['hostPort', 'hostIP']) {
      if (p[key] !== undefined && p[key] !== null) this.issue(`${pp}.${key}`, 'must not be set (Knative does not allow host ports)')
    }
    const protocol = this.str(p, 'protocol', pp)
    if (protocol !== undefined && protocol !== 'TCP') this.issue(`${pp}.protocol`, `must be TCP; got ${JSON.stringify(protocol)}`)
    const portName = this.str(p, 'name', pp) ?? ''
    if (!PORT_NAMES.has(portName)) this.issue(`${pp}.name`, `must be "http1" or "h2c" (or left out); got ${JSON.stringify(portName)}`)
    if (p['containerPort'] === undefined || p['containerPort'] === null) {
      this.issue(`${pp}.containerPort`, 'required (an integer 1-65535)')
      return { port: undefined, portName }
    }
    const port = this.int(p, 'containerPort', pp, 1, 65535)
    if (port !== undefined && RESERVED_PORTS.has(port)) {
      this.issue(`${pp}.containerPort`, `port ${port} is reserved for the queue-proxy (reserved: ${[...RESERVED_PORTS].join(', ')})`)
    }
    return { port: port ?? DEFAULT_PORT, portName }
  }

  private env(c: Json, path: string): EnvVar[] {
    const raw = this.list(c, 'env', path) ?? []
    const env: EnvVar[] = []
    raw.forEach((e, i) => {
      const p = `${path}.env[${i}]`
      if (!isObject(e)) return this.issue(p, `expected {name, value}, got ${describe(e)}`)
      this.fields(e, p, ENV_FIELDS)
      const name = this.str(e, 'name', p)
      if (name === undefined || name === '') return this.issue(`${p}.name`, 'required')
      if (!ENV_NAME.test(name)) this.issue(`${p}.name`, `must consist of letters, digits, '_', '-' or '.', not starting with a digit; got ${JSON.stringify(name)}`)
      if (RESERVED_ENV.has(name)) this.issue(`${p}.name`, `${name} is a reserved environment variable (Knative sets it)`)
      if (e['valueFrom'] !== undefined && e['valueFrom'] !== null) {
        return this.issue(`${p}.valueFrom`, 'not supported locally (there are no ConfigMaps, Secrets or pod fields here); set value instead')
      }
      env.push({ name, value: this.str(e, 'value', p) ?? '' })
    })
    return env
  }

  // Knative's webhook defaults (revision_defaults.go applyProbes), its
  // validation (k8s_validation.go validateReadinessProbe), then the
  // reconciler's rewrite into SERVING_READINESS_PROBE (spec §1.3): host
  // 127.0.0.1, numeric port, exec turned into TCP. Key order is Go's.
  private readinessProbe(raw: Json | undefined, path: string, userPort: number, portName: string): string {
    const p = raw ?? {}
    this.fields(p, path, PROBE_FIELDS)
    if (p['terminationGracePeriodSeconds'] !== undefined) this.issue(`${path}.terminationGracePeriodSeconds`, 'must not be set on a readiness probe')
    const handlers = ['exec', 'httpGet', 'tcpSocket', 'grpc'].filter((h) => p[h] !== undefined && p[h] !== null)
    if (handlers.length > 1) this.issue(path, `set only one of httpGet, tcpSocket, exec, grpc; got ${handlers.join(', ')}`)
    const num = (key: string) => this.int(p, key, path, 0, INT32_MAX) ?? 0
    const initialDelaySeconds = num('initialDelaySeconds')
    const periodSeconds = num('periodSeconds')
    let timeoutSeconds = num('timeoutSeconds')
    let failureThreshold = num('failureThreshold')
    const successThreshold = num('successThreshold') || 1
    if (periodSeconds === 0) {
      // periodSeconds 0 selects the queue-proxy's aggressive probing, which has its own timing.
      if (failureThreshold !== 0) this.issue(`${path}.failureThreshold`, 'must not be set when periodSeconds is 0 (aggressive probing)')
      if (timeoutSeconds !== 0) this.issue(`${path}.timeoutSeconds`, 'must not be set when periodSeconds is 0 (aggressive probing)')
    } else {
      failureThreshold ||= 3
      timeoutSeconds ||= 1
    }
    const handler = handlers[0] ?? 'tcpSocket'
    const h = this.obj(p, handler, path) ?? {}
    const hp = `${path}.${handler}`
    const out: Json = {}
    if (handler === 'httpGet') {
      this.fields(h, hp, ['path', 'port', 'host', 'scheme', 'httpHeaders'])
      const probePath = this.str(h, 'path', hp)
      const scheme = this.str(h, 'scheme', hp) || 'HTTP'
      if (scheme !== 'HTTP' && scheme !== 'HTTPS') this.issue(`${hp}.scheme`, `must be HTTP or HTTPS; got ${JSON.stringify(scheme)}`)
      const get: Json = {}
      if (probePath) get['path'] = probePath
      get['port'] = this.probePort(h, hp, userPort, portName)
      get['host'] = '127.0.0.1'
      get['scheme'] = scheme
      // knative-v1.12 marks the queue-proxy's HTTP probes of the app this way.
      get['httpHeaders'] = [...this.headers(h, hp), { name: 'K-Kubelet-Probe', value: 'queue' }]
      out['httpGet'] = get
    } else if (handler === 'grpc') {
      this.fields(h, hp, ['port', 'service'])
      const port = h['port'] === undefined || h['port'] === null ? userPort : this.int(h, 'port', hp, 1, 65535) ?? userPort
      out['grpc'] = { port, service: this.str(h, 'service', hp) ?? '' }
    } else {
      if (handler === 'exec') {
        this.fields(h, hp, ['command'])
        this.strings(h, 'command', hp)
        this.warn(hp, 'the command does not run locally; the queue-proxy checks a TCP connection to the port instead')
      } else {
        this.fields(h, hp, ['port', 'host'])
      }
      const port = handler === 'exec' ? userPort : this.probePort(h, hp, userPort, portName)
      out['tcpSocket'] = { port, host: '127.0.0.1' }
    }
    if (initialDelaySeconds) out['initialDelaySeconds'] = initialDelaySeconds
    if (timeoutSeconds) out['timeoutSeconds'] = timeoutSeconds
    if (periodSeconds) out['periodSeconds'] = periodSeconds
    out['successThreshold'] = successThreshold
    if (failureThreshold) out['failureThreshold'] = failureThreshold
    return JSON.stringify(out)
  }

  /** IntOrString probe port: a number is used as is, a name must be the container port's name. */
  private probePort(h: Json, path: string, userPort: number, portName: string): number {
    const raw = h['port']
    if (raw === undefined || raw === null || raw === 0) return userPort
    if (typeof raw === 'string') {
      if (raw !== portName || raw === '') this.issue(`${path}.port`, `a named probe port must be the container port's name${portName ? ` (${JSON.stringify(portName)})` : ''}; got ${JSON.stringify(raw)}`)
      return userPort
    }
    return this.int(h, 'port', path, 1, 65535) ?? userPort
  }

  private headers(h: Json, path: string): Json[] {
    const raw = this.list(h, 'httpHeaders', path) ?? []
    const out: Json[] = []
    raw.forEach((x, i) => {
      const p = `${path}.httpHeaders[${i}]`
      if (!isObject(x)) return this.issue(p, `expected {name, value}, got ${describe(x)}`)
      this.fields(x, p, ['name', 'value'])
      const name = this.str(x, 'name', p)
      if (!name) return this.issue(`${p}.name`, 'required')
      out.push({ name, value: this.str(x, 'value', p) ?? '' })
    })
    return out
  }

  private autoscaling(anns: Record<string, string>, path: string): AutoscalingSettings {
    for (const key of Object.keys(anns)) {
      if (!key.startsWith(AS) || KNOWN_ANNOTATIONS.includes(key)) continue
      if (ANN_IGNORED.includes(key)) {
        this.warn(`${path}[${JSON.stringify(key)}]`, 'ignored locally')
        continue
      }
      const near = closest(key, KNOWN_ANNOTATIONS)
      this.warn(`${path}[${JSON.stringify(key)}]`, `unknown autoscaling annotation, ignored${near ? ` (did you mean ${near}?)` : ''}`)
    }
    const get = (keys: readonly string[]): [key: string, value: string, path: string] | undefined => {
      const present = keys.filter((k) => anns[k] !== undefined)
      if (present.length > 1) this.issue(`${path}[${JSON.stringify(present[1])}]`, `set only one of ${present.join(', ')}`)
      const key = present[0]
      return key === undefined ? undefined : [key, anns[key]!, `${path}[${JSON.stringify(key)}]`]
    }
    const int = (keys: readonly string[], min: number, what: string): number | undefined => {
      const a = get(keys)
      if (!a) return undefined
      const n = /^[+-]?[0-9]+$/.test(a[1]) ? Number(a[1]) : NaN
      if (!Number.isInteger(n) || n < min || n > INT32_MAX) return this.bad(a[2], `${what}, got ${JSON.stringify(a[1])}`)
      return n
    }
    const float = (keys: readonly string[], ok: (n: number) => boolean, what: string): number | undefined => {
      const a = get(keys)
      if (!a) return undefined
      const n = /^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$/.test(a[1]) ? Number(a[1]) : NaN
      if (!Number.isFinite(n) || !ok(n)) return this.bad(a[2], `${what}, got ${JSON.stringify(a[1])}`)
      return n
    }
    const duration = (keys: readonly string[], min: number, max: number, wholeSeconds: boolean, what: string): number | undefined => {
      const a = get(keys)
      if (!a) return undefined
      const ms = parseGoDuration(a[1])
      if (ms === undefined || ms < min || ms > max || (wholeSeconds && ms % 1000 !== 0)) return this.bad(a[2], `${what}, got ${JSON.stringify(a[1])}`)
      return ms
    }

    const cls = get(ANN.class)
    if (cls && cls[1] !== KPA) this.issue(cls[2], `only ${KPA} runs locally (the HPA and other autoscalers need a cluster); got ${JSON.stringify(cls[1])}`)
    const minScale = int(ANN.minScale, 0, 'must be a whole number >= 0')
    const maxScale = int(ANN.maxScale, 0, 'must be a whole number >= 0 (0 = no limit)')
    if (minScale !== undefined && maxScale !== undefined && maxScale !== 0 && maxScale < minScale) {
      const key = ANN.maxScale.find((k) => anns[k] !== undefined)!
      this.issue(`${path}[${JSON.stringify(key)}]`, `maxScale=${maxScale} is less than minScale=${minScale}`)
    }
    const zero = this.options.allowZeroInitialScale
    const initialScale = int(ANN.initialScale, zero ? 0 : 1, zero ? 'must be a whole number >= 0'
      : 'must be a whole number >= 1 (0 needs allow-zero-initial-scale)')
    const metricAnn = get(ANN.metric)
    let metric: Metric = 'concurrency'
    if (metricAnn) {
      if (metricAnn[1] === 'concurrency' || metricAnn[1] === 'rps') metric = metricAnn[1]
      else this.issue(metricAnn[2], `must be "concurrency" or "rps" (cpu and memory need the HPA, which does not run locally); got ${JSON.stringify(metricAnn[1])}`)
    }
    return {
      minScale,
      maxScale,
      initialScale,
      target: float(ANN.target, (n) => n >= 0.01, 'must be a number >= 0.01'),
      targetUtilizationPercentage: float(ANN.targetUtilizationPercentage, (n) => n >= 1 && n <= 100, 'must be a number 1-100'),
      metric,
      windowMs: duration(ANN.window, WINDOW_MIN_MS, WINDOW_MAX_MS, true, 'must be a duration from 6s to 1h in whole seconds (e.g. "60s", "2m")'),
      panicWindowPercentage: float(ANN.panicWindowPercentage, (n) => n >= 1 && n <= 100, 'must be a number 1-100'),
      panicThresholdPercentage: float(ANN.panicThresholdPercentage, (n) => n >= 110 && n <= 1000, 'must be a number 110-1000'),
      scaleToZeroPodRetentionPeriodMs: duration(ANN.scaleToZeroPodRetentionPeriod, 0, WINDOW_MAX_MS, false, 'must be a duration from 0s to 1h (e.g. "1m5s")'),
      scaleDownDelayMs: duration(ANN.scaleDownDelay, 0, WINDOW_MAX_MS, true, 'must be a duration from 0s to 1h in whole seconds (e.g. "15m")'),
      targetBurstCapacity: float(ANN.targetBurstCapacity, (n) => n >= 0 || n === -1, 'must be a number >= 0, or -1 for unlimited'),
    }
  }

  private traffic(spec: Json, service: string): TrafficTarget[] {
    const raw = this.list(spec, 'traffic', 'spec')
    if (!raw || raw.length === 0) return [{ tag: undefined, revisionName: undefined, latestRevision: true, percent: 100 }]
    const targets: TrafficTarget[] = []
    const tags = new Set<string>()
    let sum = 0
    let percentsValid = true
    raw.forEach((t, i) => {
      const p = `spec.traffic[${i}]`
      if (!isObject(t)) return this.issue(p, `expected a traffic target object, got ${describe(t)}`)
      this.fields(t, p, TRAFFIC_FIELDS)
      if (t['configurationName'] !== undefined) this.issue(`${p}.configurationName`, 'must not be set in a Service (use latestRevision: true)')
      if (t['url'] !== undefined) this.issue(`${p}.url`, 'must not be set (the URL is status, computed from the tag)')
      const tag = this.str(t, 'tag', p) || undefined
      if (tag !== undefined) {
        if (!DNS_LABEL.test(tag)) this.issue(`${p}.tag`, `must be a DNS label (lowercase letters, digits and '-'); got ${JSON.stringify(tag)}`)
        else if (tag.length + 1 + service.length > 63) this.issue(`${p}.tag`, `the host label "${tag}-${service}" would exceed 63 characters`)
        if (tags.has(tag)) this.issue(`${p}.tag`, `duplicate tag ${JSON.stringify(tag)}`)
        tags.add(tag)
      }
      const revisionName = this.str(t, 'revisionName', p) || undefined
      const latestRevision = this.bool(t, 'latestRevision', p) ?? revisionName === undefined
      if (latestRevision && revisionName !== undefined) this.issue(`${p}.revisionName`, 'must not be set when latestRevision is true')
      if (!latestRevision && revisionName === undefined) this.issue(p, 'set revisionName, or latestRevision: true')
      const percent = this.int(t, 'percent', p, 0, 100)
      if (percent === undefined && t['percent'] !== undefined && t['percent'] !== null) percentsValid = false
      sum += percent ?? 0
      targets.push({ tag, revisionName, latestRevision, percent: percent ?? 0 })
    })
    if (sum !== 100 && percentsValid && targets.length === raw.length) this.issue('spec.traffic', `percent values sum to ${sum}, want 100`)
    return targets
  }

  // --- typed field access: wrong types become issues, absent (or null) is undefined ---

  /** Reports unknown fields; returns the present ignored ones. */
  private fields(v: Json, path: string, known: readonly string[], ignored: readonly string[] = []): string[] {
    const seen: string[] = []
    for (const key of Object.keys(v)) {
      if (known.includes(key)) continue
      if (ignored.includes(key)) {
        seen.push(key)
        continue
      }
      const near = closest(key, [...known, ...ignored])
      this.issue(path ? `${path}.${key}` : key, `unknown field${near ? ` (did you mean ${near}?)` : ''}`)
    }
    return seen
  }

  private str(v: Json, key: string, path: string): string | undefined {
    const raw = v[key]
    if (raw === undefined || raw === null) return undefined
    if (typeof raw === 'string') return raw
    return this.bad(join(path, key), mustBeString(raw))
  }

  private bool(v: Json, key: string, path: string): boolean | undefined {
    const raw = v[key]
    if (raw === undefined || raw === null) return undefined
    if (typeof raw === 'boolean') return raw
    return this.bad(join(path, key), `must be true or false, got ${describe(raw)}`)
  }

  private int(v: Json, key: string, path: string, min: number, max: number, unit = ''): number | undefined {
    const raw = v[key]
    if (raw === undefined || raw === null) return undefined
    if (typeof raw === 'number' && Number.isInteger(raw) && raw >= min && raw <= max) return raw
    return this.bad(join(path, key), `must be an integer ${min}-${max}${unit}, got ${describe(raw)}`)
  }

  private obj(v: Json, key: string, path: string): Json | undefined {
    const raw = v[key]
    if (raw === undefined || raw === null) return undefined
    if (isObject(raw)) return raw
    return this.bad(join(path, key), `must be an object, got ${describe(raw)}`)
  }

  private list(v: Json, key: string, path: string): unknown[] | undefined {
    const raw = v[key]
    if (raw === undefined || raw === null) return undefined
    if (Array.isArray(raw)) return raw
    return this.bad(join(path, key), `must be a list, got ${describe(raw)}`)
  }

  private strings(v: Json, key: string, path: string): string[] | undefined {
    const value = v[key]
    if (typeof value === 'string') {
      const words = value.split(/\s+/).filter((w) => w !== '').map((w) => JSON.stringify(w))
      return this.bad(join(path, key), `must be a list of strings, got string ${JSON.stringify(value)}; write it as a list, e.g. [${words.join(', ')}]`)
    }
    const raw = this.list(v, key, path)
    if (!raw) return undefined
    raw.forEach((s, i) => { if (typeof s !== 'string') this.issue(`${join(path, key)}[${i}]`, mustBeString(s)) })
    return raw.filter((s): s is string => typeof s === 'string')
  }

  private stringMap(v: Json, key: string, path: string): Record<string, string> | undefined {
    const raw = this.obj(v, key, path)
    if (!raw) return undefined
    const out: Record<string, string> = {}
    for (const [k, value] of Object.entries(raw)) {
      if (typeof value === 'string') out[k] = value
      else this.issue(`${join(path, key)}[${JSON.stringify(k)}]`, mustBeString(value))
    }
    return out
  }

  private issue(path: string, message: string): void {
    this.issues.push({ path, message })
  }

  private bad(path: string, message: string): undefined {
    this.issue(path, message)
    return undefined
  }

  private warn(path: string, message: string): void {
    this.warnings.push(`${this.source}: ${path}: ${message}`)
  }
}

function mustBeString(v: unknown): string {
  // The usual cause: YAML reads an unquoted 8080, true or yes as a number or boolean.
  if (typeof v === 'number' || typeof v === 'boolean') return `must be a string, got ${typeof v} ${String(v)} (quote the value in the YAML)`
  return `must be a string, got ${describe(v)}`
}

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function describe(v: unknown): string {
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'a list'
  if (typeof v === 'object') return 'an object'
  return `${typeof v} ${JSON.stringify(v)}`
}

function join(path: string, key: string): string {
  return path ? `${path}.${key}` : key
}

/** A known name within edit distance 2 (or differing only in case), for "did you mean". */
function closest(name: string, known: readonly string[]): string | undefined {
  let best: string | undefined
  let bestDistance = 3
  for (const k of known) {
    const d = k.toLowerCase() === name.toLowerCase() ? 0 : editDistance(k, name)
    if (d < bestDistance) {
      best = k
      bestDistance = d
    }
  }
  return best
}

function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 2) return 3
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const row = [i]
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1))
    }
    prev = row
  }
  return prev[b.length]!
}
