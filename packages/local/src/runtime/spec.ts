// What the runtime needs to run one revision (filled from the Service manifest).

export interface AppSpec {
  command: string
  args: string[]
  env: Record<string, string>
  cwd: string
  /** corev1.Probe for SERVING_READINESS_PROBE; its port is set per instance. null: TCP on the app port. */
  readinessProbe: Record<string, unknown> | null
}

export interface RevisionSpec {
  namespace: string
  name: string
  service: string
  configuration: string
  containerConcurrency: number
  timeoutSeconds: number
  responseStartTimeoutSeconds: number
  idleTimeoutSeconds: number
  protocol: 'http1' | 'h2c'
  annotations: Record<string, string>
  app: AppSpec
}
