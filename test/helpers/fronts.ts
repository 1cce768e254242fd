// The two serving fronts of Sluice behind one interface, so a connection-level
// test runs against both: a queue-proxy in front of the app, or an activator in
// front of a queue-proxy pod in front of the app (the revision's pod already
// healthy, so requests pass straight through).

import type { RevisionInfo } from '@sluice/activator/revision'
import { revisionInfo, startActivator, startPod } from './activator.ts'
import { accounting, waitFor } from './request-path.ts'
import { knativeEnv, startQueueProxy } from './servers.ts'

export type FrontKind = 'queue-proxy' | 'activator'
export const FRONTS: readonly FrontKind[] = ['queue-proxy', 'activator']

export interface Front {
  kind: FrontKind
  /** The serving port (the queue-proxy's main port, the activator's http port). */
  port: number
  url: string
  /** Headers every request needs to reach the app (the activator's revision routing). */
  headers: Record<string, string>
  /** The same as raw header lines ("Name: value\r\n..."), for hand-written requests. */
  rawHeaders: string
  /** The text a revision timeout answers with. */
  timeoutMessage: string
  /** Requests (and tunnels) the front still accounts as in flight. */
  inFlight(): number
  /** Waits until nothing is in flight. */
  settled(timeoutMs?: number): Promise<boolean>
  stop(): Promise<void>
}

export interface FrontOptions {
  /** The front's environment (SLUICE_* limits, Knative's timeouts for the queue-proxy). */
  env?: Record<string, string>
  /** The revision as the activator sees it (timeouts, cc). */
  revision?: Partial<RevisionInfo>
}

const REV = 'front-00001'

export async function startFront(kind: FrontKind, appPort: number, o: FrontOptions = {}): Promise<Front> {
  if (kind === 'queue-proxy') {
    const qp = await startQueueProxy(knativeEnv(appPort, o.env))
    const inFlight = (): number => {
      const a = accounting(qp)
      return a.active + a.stats + a.running + a.waiting
    }
    return {
      kind,
      port: qp.ports.serving,
      url: qp.url,
      headers: {},
      rawHeaders: '',
      timeoutMessage: 'request timeout',
      inFlight,
      settled: (ms = 3000) => waitFor(() => inFlight() === 0, ms),
      stop: qp.stop,
    }
  }
  const pod = await startPod(appPort, { revision: REV })
  const act = await startActivator({ env: o.env, revisions: [revisionInfo(REV, o.revision)] })
  act.source.setEndpoints('default', REV, { ready: [pod.dest], notReady: [] })
  const rt = act.activator.ctx.throttler.get(`default/${REV}`)
  if (!(await waitFor(() => (rt?.capacity ?? 0) > 0, 5000))) throw new Error('the activator never found the pod healthy')
  const headers = { 'Knative-Serving-Namespace': 'default', 'Knative-Serving-Revision': REV }
  const inFlight = (): number => act.activator.ctx.active + pod.qp.qp.ctx.active
  return {
    kind,
    port: act.ports.http,
    url: act.url,
    headers,
    rawHeaders: Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join(''),
    timeoutMessage: 'activator request timeout',
    inFlight,
    settled: (ms = 3000) => waitFor(() => inFlight() === 0, ms),
    stop: async () => {
      await act.stop()
      await pod.stop()
    },
  }
}
