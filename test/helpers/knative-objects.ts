// Builders for the Kubernetes objects Knative Serving creates for a revision,
// with the labels its reconcilers set (revision, SKS private/public services
// and their Endpoints / EndpointSlices).

import type { KubeObject } from './fake-kube-api.ts'

export interface RevisionOptions {
  containerConcurrency?: number
  /** Serving container port named h2c. */
  h2c?: boolean
  timeoutSeconds?: number
  responseStartTimeoutSeconds?: number
  idleTimeoutSeconds?: number
  service?: string
  configuration?: string
  execReadinessProbe?: boolean
  /** Replaces the generated containers. */
  containers?: unknown[]
}

export function revision(namespace: string, name: string, o: RevisionOptions = {}): KubeObject {
  const service = o.service ?? name.replace(/-\d+$/, '')
  const configuration = o.configuration ?? service
  const spec: Record<string, unknown> = {
    containers: o.containers ?? [
      {
        name: 'user-container',
        image: 'example.com/app@sha256:0',
        ports: [{ name: o.h2c ? 'h2c' : 'http1', containerPort: 8080, protocol: 'TCP' }],
        readinessProbe: o.execReadinessProbe
          ? { exec: { command: ['/ready'] }, successThreshold: 1 }
          : { tcpSocket: { port: 0 }, successThreshold: 1 },
      },
    ],
  }
  if (o.containerConcurrency !== undefined) spec.containerConcurrency = o.containerConcurrency
  if (o.timeoutSeconds !== undefined) spec.timeoutSeconds = o.timeoutSeconds
  if (o.responseStartTimeoutSeconds !== undefined) spec.responseStartTimeoutSeconds = o.responseStartTimeoutSeconds
  if (o.idleTimeoutSeconds !== undefined) spec.idleTimeoutSeconds = o.idleTimeoutSeconds
  return {
    apiVersion: 'serving.knative.dev/v1',
    kind: 'Revision',
    metadata: {
      name,
      namespace,
      uid: `uid-${namespace}-${name}`,
      labels: {
        'serving.knative.dev/configuration': configuration,
        'serving.knative.dev/configurationGeneration': '1',
        'serving.knative.dev/configurationUID': `uid-${configuration}`,
        'serving.knative.dev/routingState': 'active',
        'serving.knative.dev/service': service,
        'serving.knative.dev/serviceUID': `uid-${service}`,
      },
    },
    spec,
    status: { observedGeneration: 1 },
  }
}

type ServiceType = 'Private' | 'Public'

/** The labels the SKS reconciler puts on a revision's services and Endpoints. */
export function sksLabels(namespace: string, rev: string, type: ServiceType): Record<string, string> {
  const service = rev.replace(/-\d+$/, '')
  return {
    'app': rev,
    'networking.internal.knative.dev/serverlessservice': rev,
    'networking.internal.knative.dev/serviceType': type,
    'serving.knative.dev/configuration': service,
    'serving.knative.dev/configurationGeneration': '1',
    'serving.knative.dev/revision': rev,
    'serving.knative.dev/revisionUID': `uid-${namespace}-${rev}`,
    'serving.knative.dev/service': service,
  }
}

/** Ports of a revision pod behind its private service (targetPorts), as in Endpoints. */
function podPorts(h2c: boolean) {
  return [
    h2c ? { name: 'http2', port: 8013, protocol: 'TCP' } : { name: 'http', port: 8012, protocol: 'TCP' },
    { name: 'https', port: 8112, protocol: 'TCP' },
    { name: 'http-autometric', port: 9090, protocol: 'TCP' },
    { name: 'http-usermetric', port: 9091, protocol: 'TCP' },
  ]
}

/** Ports of the activator endpoints the SKS copies into a public Endpoints (proxy mode). */
const ACTIVATOR_PORTS = [
  { name: 'http', port: 8012, protocol: 'TCP' },
  { name: 'http2', port: 8013, protocol: 'TCP' },
  { name: 'https', port: 8112, protocol: 'TCP' },
]

function addresses(ips: string[]) {
  return ips.map((ip, i) => ({ ip, targetRef: { kind: 'Pod', name: `pod-${i}` } }))
}

export interface PrivateEndpointsOptions {
  ready?: string[]
  notReady?: string[]
  h2c?: boolean
  /** Replaces the generated subsets. */
  subsets?: unknown[]
}

/** `<rev>-private` Endpoints (pods of the revision). */
export function privateEndpoints(namespace: string, rev: string, o: PrivateEndpointsOptions = {}): KubeObject {
  const subset: Record<string, unknown> = { ports: podPorts(o.h2c ?? false) }
  if (o.ready?.length) subset.addresses = addresses(o.ready)
  if (o.notReady?.length) subset.notReadyAddresses = addresses(o.notReady)
  const empty = !o.ready?.length && !o.notReady?.length
  return {
    apiVersion: 'v1',
    kind: 'Endpoints',
    metadata: { name: `${rev}-private`, namespace, labels: sksLabels(namespace, rev, 'Private') },
    subsets: o.subsets ?? (empty ? [] : [subset]),
  }
}

/** `<rev>` public Endpoints holding activator IPs (SKS proxy mode). */
export function publicEndpoints(namespace: string, rev: string, activatorIPs: string[]): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Endpoints',
    metadata: { name: rev, namespace, labels: sksLabels(namespace, rev, 'Public') },
    subsets: activatorIPs.length ? [{ addresses: addresses(activatorIPs), ports: ACTIVATOR_PORTS }] : [],
  }
}

/** `<rev>-private` Service: ClusterIP, port http (or http2) 80. */
export function privateService(namespace: string, rev: string, clusterIP: string, o: { h2c?: boolean } = {}): KubeObject {
  const name = o.h2c ? 'http2' : 'http'
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: `${rev}-private`, namespace, labels: sksLabels(namespace, rev, 'Private') },
    spec: {
      type: 'ClusterIP',
      clusterIP,
      clusterIPs: [clusterIP],
      ports: [
        { name, port: 80, protocol: 'TCP', targetPort: o.h2c ? 8013 : 8012 },
        { name: 'https', port: 443, protocol: 'TCP', targetPort: 8112 },
        { name: 'http-autometric', port: 9090, protocol: 'TCP', targetPort: 9090 },
        { name: 'http-usermetric', port: 9091, protocol: 'TCP', targetPort: 9091 },
      ],
      selector: { 'serving.knative.dev/revisionUID': `uid-${namespace}-${rev}` },
    },
  }
}

export interface SliceEndpoint {
  ip: string
  ready?: boolean | null
  terminating?: boolean
}

export interface EndpointSliceOptions {
  type?: ServiceType
  h2c?: boolean
  addressType?: 'IPv4' | 'IPv6' | 'FQDN'
}

/**
 * One EndpointSlice of a revision's service; the EndpointSlice controller copies
 * the service's labels and adds kubernetes.io/service-name.
 */
export function endpointSlice(namespace: string, rev: string, sliceName: string, endpoints: SliceEndpoint[], o: EndpointSliceOptions = {}): KubeObject {
  const type = o.type ?? 'Private'
  const service = type === 'Private' ? `${rev}-private` : rev
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      name: sliceName,
      namespace,
      labels: {
        ...sksLabels(namespace, rev, type),
        'kubernetes.io/service-name': service,
        'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io',
      },
    },
    addressType: o.addressType ?? 'IPv4',
    endpoints: endpoints.map((e, i) => {
      const conditions: Record<string, boolean> = {}
      if (e.ready !== null) conditions.ready = e.ready ?? true
      if (e.terminating !== undefined) conditions.terminating = e.terminating
      return { addresses: [e.ip], conditions, targetRef: { kind: 'Pod', name: `pod-${i}`, namespace } }
    }),
    ports: type === 'Private' ? podPorts(o.h2c ?? false) : ACTIVATOR_PORTS,
  }
}
