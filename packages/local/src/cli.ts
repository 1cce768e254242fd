#!/usr/bin/env node
// `sluice`: run a Knative Service on this machine, and look at it.
//   sluice run <service.yaml>          ingress, activator, queue-proxies, app processes, autoscaler
//   sluice get ksvc|revisions|routes   the columns `kubectl get` prints
// Settings: SLUICE_INGRESS_PORT (8080), SLUICE_INGRESS_HOST (127.0.0.1), SLUICE_DOMAIN (example.com),
// SLUICE_STATUS_PORT (18081), SLUICE_AUTOSCALER_CONFIG (a config-autoscaler ConfigMap YAML),
// SLUICE_SHOW_OUTPUT=true (print app and queue-proxy output).

import { join } from 'node:path'
import { EnvError, optionalBool, optionalPort, optionalString } from '@sluice/core/env'
import { renderRevisions, renderRoutes, renderServices } from './manifest/get-output.ts'
import { ManifestError } from './manifest/service.ts'
import { killAllChildren } from './runtime/processes.ts'
import { LocalRuntime } from './runtime/runtime.ts'
import type { RuntimeStatus } from './runtime/status-server.ts'

const root = join(import.meta.dirname, '..', '..', '..')
const USAGE = 'usage: sluice run <service.yaml> | sluice get ksvc|revisions|routes'

async function run(file: string): Promise<void> {
  const env = process.env
  const rt = new LocalRuntime({
    manifestPath: file,
    root,
    nodePath: process.execPath,
    ingressPort: optionalPort(env, 'SLUICE_INGRESS_PORT', 8080, true),
    ingressHost: optionalString(env, 'SLUICE_INGRESS_HOST', '127.0.0.1'),
    statusPort: optionalPort(env, 'SLUICE_STATUS_PORT', 18081, true),
    domain: optionalString(env, 'SLUICE_DOMAIN', 'example.com'),
    autoscalerConfigPath: env.SLUICE_AUTOSCALER_CONFIG,
    showOutput: optionalBool(env, 'SLUICE_SHOW_OUTPUT', false),
  })
  let stopping = false
  const stop = (code: number): void => {
    if (stopping) {
      killAllChildren()
      process.exit(1)
    }
    stopping = true
    rt.log('stopping: draining and stopping every process')
    rt.stop().then(() => process.exit(code), () => {
      killAllChildren()
      process.exit(1)
    })
  }
  process.on('SIGINT', () => stop(0))
  process.on('SIGTERM', () => stop(0))
  process.on('exit', killAllChildren)
  await rt.start()
  // The route exists once a revision became ready (initial scale 1): wait for it.
  const deadline = Date.now() + 60_000
  while (rt.status().services.some((s) => !s.ready) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
  const st = rt.status()
  for (const s of st.services) {
    rt.log('')
    rt.log(`service ${s.namespace}/${s.name} is served at ${s.url} through ${st.ingress}`)
    rt.log(`  curl -H 'Host: ${s.url.replace(/^https?:\/\//, '')}' ${st.ingress}/`)
    if (st.services.length === 1) rt.log(`  curl ${st.ingress}/          # localhost maps to the only service`)
    rt.log(`  sluice get ksvc              # (npx sluice get ksvc) status, as kubectl prints it`)
  }
  rt.log('It scales to zero after the grace period; the next request starts it again. Ctrl-C stops everything.')
}

async function get(what: string): Promise<void> {
  const port = optionalPort(process.env, 'SLUICE_STATUS_PORT', 18081)
  let st: RuntimeStatus
  try {
    st = await (await fetch(`http://127.0.0.1:${port}/status`)).json() as RuntimeStatus
  } catch {
    throw new Error(`no sluice runtime answers on 127.0.0.1:${port} (start one with: sluice run service.yaml)`)
  }
  const ready = (b: boolean) => (b ? 'True' : 'Unknown') as 'True' | 'Unknown'
  switch (what) {
    case 'ksvc': case 'ksvcs': case 'service': case 'services':
      process.stdout.write(renderServices(st.services.map((s) => ({ name: s.name, namespace: s.namespace, url: s.url, latestCreatedRevisionName: s.latestCreated, latestReadyRevisionName: s.latestReady, ready: ready(s.ready), reason: s.reason }))))
      return
    case 'revisions': case 'revision': case 'rev':
      process.stdout.write(renderRevisions(st.services.flatMap((s) => s.revisions.map((r) => ({ name: r.name, namespace: s.namespace, configurationName: s.name, generation: r.generation, ready: ready(r.ready), reason: '', actualReplicas: r.actual, desiredReplicas: r.desired })))))
      return
    case 'routes': case 'route':
      process.stdout.write(renderRoutes(st.services.map((s) => ({ name: s.name, namespace: s.namespace, url: s.url, ready: ready(s.ready), reason: s.reason }))))
      return
    default:
      throw new Error(`unknown resource ${JSON.stringify(what)}; ${USAGE}`)
  }
}

async function main(argv: string[]): Promise<void> {
  const [cmd, arg] = argv
  if (cmd === 'run' && arg !== undefined) return run(arg)
  if (cmd === 'get' && arg !== undefined) return get(arg)
  throw new Error(USAGE)
}

main(process.argv.slice(2)).catch((err: Error) => {
  const msg = err instanceof ManifestError || err instanceof EnvError ? err.message : err.message
  process.stderr.write(`sluice: ${msg}\n`)
  killAllChildren()
  process.exit(1)
})
