// The runtime's status API on 127.0.0.1: what `sluice get` prints. The
// server itself (apply, delete, logs, the dashboard) is control-server.ts.

export interface RuntimeStatus {
  ingress: string
  domain: string
  services: {
    name: string
    namespace: string
    url: string
    latestCreated: string
    latestReady: string
    ready: boolean
    reason: string
    revisions: {
      name: string
      generation: number
      ready: boolean
      actual: number
      desired: number
      /** Live instances; appStartMs: the app's own time to listen (-1 until it listens). */
      instances: { id: string; state: string; appStartMs: number; restarts: number }[]
      /** The autoscaler's last decision and the target it divides by (NaN observations as null in JSON). */
      autoscaler: { target: number; panicking: boolean; observedStable: number; observedPanic: number; readyPods: number; recommended: number } | null
    }[]
    traffic: { revision: string; percent: number; tag: string; url: string }[]
  }[]
}

