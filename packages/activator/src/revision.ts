// What the activator knows about a revision: the fields of serving.knative.dev/v1
// Revision that the data plane uses (spec §2.5, §2.6, §2.10, §2.12).

export type RevisionProtocol = 'http1' | 'h2c'

export interface RevisionInfo {
  namespace: string
  name: string
  /** 0 = unlimited. */
  containerConcurrency: number
  /** h2c when the serving container's port is named h2c (port name http2 on services). */
  protocol: RevisionProtocol
  timeoutSeconds: number
  responseStartTimeoutSeconds: number
  idleTimeoutSeconds: number
  /** Labels serving.knative.dev/service and /configuration ('' if absent). */
  serviceName: string
  configurationName: string
  /** An exec readiness probe disables the probe optimisation (spec §2.7 2c). */
  execReadinessProbe: boolean
}

export function revisionKey(namespace: string, name: string): string {
  return `${namespace}/${name}`
}

/** revisionKey's parts: [namespace, name]. */
export function splitRevisionKey(key: string): [string, string] {
  const i = key.indexOf('/')
  return [key.slice(0, i), key.slice(i + 1)]
}
