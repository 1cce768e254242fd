// The activator as its own process — the very same code that runs in a
// cluster — with the local endpoint source: revisions and endpoints are
// pushed to it over its small HTTP API.

import http from 'node:http'
import { join } from 'node:path'
import type { ChildProcess } from 'node:child_process'
import { freePort } from './ports.ts'
import { spawnChild, stopChild } from './processes.ts'
import type { RevisionSpec } from './spec.ts'
import type { RevisionEndpointsOut } from './revision-runner.ts'

export interface ActivatorProcessOptions {
  root: string
  nodePath: string
  autoscalerUrl: string
  showOutput: boolean
  /** Every line the activator writes (for `sluice logs`). */
  onLine?: (line: string) => void
  /** Extra environment, e.g. SLUICE_MAX_QUEUED* bounds (tests set small ones). */
  env?: Record<string, string>
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 4 })

export class ActivatorProcess {
  httpPort = 0
  metricsPort = 0
  private apiPort = 0
  private child: ChildProcess | null = null
  private readonly opts: ActivatorProcessOptions

  constructor(opts: ActivatorProcessOptions) {
    this.opts = opts
  }

  async start(): Promise<void> {
    const [httpPort, h2cPort, metricsPort, profilingPort, apiPort] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort()])
    this.httpPort = httpPort
    this.metricsPort = metricsPort
    this.apiPort = apiPort
    const { root, nodePath } = this.opts
    this.child = spawnChild({
      command: nodePath,
      args: [join(root, 'packages/activator/dist/main.js')],
      cwd: root,
      env: {
        PATH: process.env.PATH ?? '',
        POD_NAME: 'activator-local',
        POD_IP: '127.0.0.1',
        SYSTEM_NAMESPACE: 'knative-serving',
        SLUICE_ENDPOINT_SOURCE: 'local',
        SLUICE_LOCAL_API_PORT: String(apiPort),
        SLUICE_HTTP_PORT: String(httpPort),
        SLUICE_H2C_PORT: String(h2cPort),
        SLUICE_METRICS_PORT: String(metricsPort),
        SLUICE_PROFILING_PORT: String(profilingPort),
        SLUICE_BIND_ADDRESS: '127.0.0.1',
        SLUICE_AUTOSCALER_URL: this.opts.autoscalerUrl,
        SLUICE_DRAIN_PERIOD: '0s',
        SLUICE_LOG_LEVEL: 'warn',
        // Locally a starting instance is probed more often than Knative's 200 ms.
        PROBE_FREQUENCY: '25ms',
        ...this.opts.env,
      },
      label: this.opts.showOutput ? '[activator]' : null,
      onLine: this.opts.onLine,
    })
    const deadline = Date.now() + 15_000
    while (!(await this.healthy())) {
      if (this.child.exitCode !== null) throw new Error(`activator exited during start-up (code ${this.child.exitCode})`)
      if (Date.now() > deadline) throw new Error('activator did not become healthy within 15 s')
      await new Promise((r) => setTimeout(r, 20))
    }
  }

  private healthy(): Promise<boolean> {
    return new Promise((resolve) => {
      const req = http.get({ host: '127.0.0.1', port: this.httpPort, path: '/', agent: false, headers: { 'user-agent': 'kube-probe/1.30' } }, (res) => {
        res.resume()
        resolve(res.statusCode === 200)
      })
      req.once('error', () => resolve(false))
    })
  }

  upsertRevision(rev: RevisionSpec): Promise<void> {
    return this.put(`/revisions/${rev.namespace}/${rev.name}`, {
      namespace: rev.namespace,
      name: rev.name,
      containerConcurrency: rev.containerConcurrency,
      protocol: rev.protocol,
      timeoutSeconds: rev.timeoutSeconds,
      responseStartTimeoutSeconds: rev.responseStartTimeoutSeconds,
      idleTimeoutSeconds: rev.idleTimeoutSeconds,
      serviceName: rev.service,
      configurationName: rev.configuration,
      execReadinessProbe: false,
    })
  }

  deleteRevision(namespace: string, name: string): Promise<void> {
    return this.send('DELETE', `/revisions/${namespace}/${name}`, undefined)
  }

  /** Requests waiting for capacity per "<namespace>/<revision>" (its sluice_activator_queue_depth gauge). */
  queueDepths(): Promise<Map<string, number>> {
    return new Promise((resolve) => {
      const out = new Map<string, number>()
      const req = http.get({ host: '127.0.0.1', port: this.metricsPort, path: '/metrics', agent, timeout: 2000 }, (res) => {
        let text = ''
        res.setEncoding('utf8')
        res.on('data', (c: string) => { text += c })
        res.on('end', () => {
          for (const m of text.matchAll(/^sluice_activator_queue_depth\{([^}]*)\} (\S+)$/gm)) {
            const ns = /namespace_name="([^"]*)"/.exec(m[1]!)?.[1]
            const rev = /revision_name="([^"]*)"/.exec(m[1]!)?.[1]
            if (ns !== undefined && rev !== undefined) out.set(`${ns}/${rev}`, Number(m[2]))
          }
          resolve(out)
        })
      })
      req.once('timeout', () => req.destroy())
      req.once('error', () => resolve(out))
    })
  }

  setEndpoints(rev: RevisionSpec, eps: RevisionEndpointsOut): Promise<void> {
    return this.put(`/endpoints/${rev.namespace}/${rev.name}`, eps)
  }

  private put(path: string, body: unknown): Promise<void> {
    return this.send('PUT', path, body)
  }

  private send(method: string, path: string, body: unknown): Promise<void> {
    const data = body === undefined ? '' : JSON.stringify(body)
    return new Promise((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: this.apiPort, path, method, agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } }, (res) => {
        let text = ''
        res.on('data', (c) => { text += c })
        res.on('end', () => res.statusCode === 200 ? resolve() : reject(new Error(`activator API ${path}: ${res.statusCode} ${text}`)))
      })
      req.once('error', reject)
      req.end(data)
    })
  }

  async stop(): Promise<void> {
    agent.destroy()
    if (this.child !== null) await stopChild(this.child, 5000)
  }
}
