#!/usr/bin/env node
// `sluice`: run Knative Services on this machine, change them, and look at them.
//   sluice run [--watch] <file|dir>    ingress, activator, queue-proxies, app processes, autoscaler
//                                      (--watch: re-applies the files when they change)
//   sluice apply -f <file|dir>         creates/updates Services in the running runtime
//   sluice delete ksvc NAME [-n NS]    deletes a Service and stops its processes
//   sluice logs NAME [-f] [--revision R] [-n NS]   app, queue-proxy and activator lines
//   sluice get ksvc|revisions|routes   the columns `kubectl get` prints
//   sluice load [NAME] [-c 8] [-d 30s] a closed-loop load on a Service, one line a second
// Settings: SLUICE_INGRESS_PORT (8080), SLUICE_INGRESS_HOST (127.0.0.1), SLUICE_DOMAIN (example.com),
// SLUICE_STATUS_PORT (18081), SLUICE_AUTOSCALER_CONFIG (a config-autoscaler ConfigMap YAML),
// SLUICE_TRACING_CONFIG (a config-tracing ConfigMap YAML: every process traces with it),
// SLUICE_SHOW_OUTPUT=true (print app and queue-proxy output).

import { join } from 'node:path'
import { EnvError, optionalBool, optionalPort, optionalString, parseGoDuration } from '@sluice/core/env'
import { runLoad } from './load.ts'
import { readManifestPath } from './manifest/files.ts'
import { noResourcesFound, renderRevisions, renderRoutes, renderServices } from './manifest/get-output.ts'
import { ManifestError } from './manifest/service.ts'
import type { ApplyOutcome } from './runtime/control-server.ts'
import { watchManifests } from './runtime/manifest-watcher.ts'
import { killAllChildren } from './runtime/processes.ts'
import { LocalRuntime } from './runtime/runtime.ts'
import type { RuntimeStatus } from './runtime/status-server.ts'

const root = join(import.meta.dirname, '..', '..', '..')
const USAGE = 'usage: sluice run [--watch] <file|dir> | sluice apply -f <file|dir> | sluice delete ksvc NAME [-n NS] | ' +
  'sluice logs NAME [-f] [--revision R] [-n NS] | sluice get ksvc|revisions|routes | sluice load [NAME] [-c N] [-d 30s]'

async function run(file: string, watchFiles: boolean): Promise<void> {
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
    tracingConfigPath: env.SLUICE_TRACING_CONFIG,
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
  }
  rt.log(`dashboard: ${rt.dashboardUrl}   (live: instances, concurrency, requests, cold starts, scale decisions)`)
  rt.log('')
  rt.log('  sluice get ksvc               (npx sluice get ksvc) status, as kubectl prints it')
  rt.log('  sluice apply -f FILE|DIR      apply a change: a new revision, a traffic split')
  rt.log('  sluice logs NAME -f           the apps\' output and their queue-proxy and activator lines')
  if (watchFiles) {
    await watchManifests(file, async (files) => {
      for (const o of await rt.syncFiles(files)) if (o.action !== 'unchanged') rt.log(applyLine(o))
    }, (err) => rt.log(`watch: ${err.message}`))
    rt.log(`watching ${file}: changes are applied as they are saved`)
  }
  rt.log('It scales to zero after the grace period; the next request starts it again. Ctrl-C stops everything.')
}

function statusPort(): number {
  return optionalPort(process.env, 'SLUICE_STATUS_PORT', 18081)
}

/** A request to the running runtime's control server. */
async function control(method: string, path: string, body?: unknown): Promise<Response> {
  const port = statusPort()
  try {
    return await fetch(`http://127.0.0.1:${port}${path}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    })
  } catch {
    throw new Error(`no sluice runtime answers on 127.0.0.1:${port} (start one with: sluice run service.yaml)`)
  }
}

async function failed(res: Response): Promise<never> {
  const text = await res.text()
  let msg = text
  try {
    msg = (JSON.parse(text) as { error: string }).error
  } catch {}
  throw new Error(msg)
}

function applyLine(o: ApplyOutcome): string {
  return `service.serving.knative.dev/${o.name} ${o.action}${o.revision !== '' ? ` (revision ${o.revision})` : ''}`
}

async function apply(paths: string[]): Promise<void> {
  const files = (await Promise.all(paths.map((p) => readManifestPath(p)))).flat()
  const res = await control('POST', '/apply', { files })
  if (!res.ok) return failed(res)
  for (const o of (await res.json() as { results: ApplyOutcome[] }).results) process.stdout.write(applyLine(o) + '\n')
}

async function remove(kind: string, name: string, namespace: string): Promise<void> {
  if (!['ksvc', 'ksvcs', 'service', 'services'].includes(kind)) throw new Error(`only Services can be deleted (sluice delete ksvc NAME), not ${JSON.stringify(kind)}`)
  const res = await control('DELETE', `/services/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}`)
  if (!res.ok) return failed(res)
  process.stdout.write(`service.serving.knative.dev "${name}" deleted\n`)
}

async function logs(name: string, namespace: string, follow: boolean, revision: string | undefined): Promise<void> {
  const q = new URLSearchParams({ service: `${namespace}/${name}` })
  if (revision !== undefined) q.set('revision', revision)
  if (follow) q.set('follow', '1')
  const res = await control('GET', `/logs?${q}`)
  if (!res.ok) return failed(res)
  for await (const chunk of res.body!) process.stdout.write(chunk)
}

async function load(name: string | undefined, namespace: string, concurrency: string, duration: string): Promise<void> {
  const st = await (await control('GET', '/status')).json() as RuntimeStatus
  const svc = name === undefined
    ? (st.services.length === 1 ? st.services[0] : undefined)
    : st.services.find((s) => s.name === name && s.namespace === namespace)
  if (svc === undefined) throw new Error(name === undefined ? 'name the Service to load (several run)' : `services.serving.knative.dev "${name}" not found`)
  const c = Number(concurrency)
  const ms = parseGoDuration(duration)
  if (!Number.isInteger(c) || c < 1 || c > 1000) throw new Error(`-c must be an integer 1-1000, got ${JSON.stringify(concurrency)}`)
  if (ms === undefined || ms <= 0) throw new Error(`-d must be a duration such as 30s or 2m, got ${JSON.stringify(duration)}`)
  const host = svc.url.replace(/^https?:\/\//, '')
  process.stdout.write(`${c} workers on ${host} through ${st.ingress} for ${duration}\n`)
  await runLoad({ url: `${st.ingress}/`, host, concurrency: c, durationMs: ms, print: (l) => process.stdout.write(`${l}\n`) })
}

/** Flags and positional arguments; `takesValue` names the flags followed by a value. */
function parseArgs(args: string[], takesValue: string[]): { flags: Map<string, string[]>; rest: string[] } {
  const flags = new Map<string, string[]>()
  const rest: string[] = []
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!
    if (!a.startsWith('-') || a === '-') {
      rest.push(a)
      continue
    }
    const eq = a.indexOf('=')
    const name = eq === -1 ? a : a.slice(0, eq)
    let value = eq === -1 ? '' : a.slice(eq + 1)
    if (takesValue.includes(name) && eq === -1) {
      if (i + 1 >= args.length) throw new Error(`${name} needs a value; ${USAGE}`)
      value = args[++i]!
    }
    flags.set(name, [...(flags.get(name) ?? []), value])
  }
  return { flags, rest }
}

const one = (f: Map<string, string[]>, ...names: string[]): string | undefined => names.flatMap((n) => f.get(n) ?? []).at(-1)

async function get(what: string): Promise<void> {
  const st = await (await control('GET', '/status')).json() as RuntimeStatus
  if (st.services.length === 0) {
    process.stderr.write(noResourcesFound('default'))
    return
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
  const [cmd, ...args] = argv
  // -f: a file for apply, "follow" for logs.
  const { flags, rest } = parseArgs(args, cmd === 'logs' ? ['-n', '--namespace', '--revision'] : ['-f', '--filename', '-n', '--namespace', '-c', '-d'])
  const ns = one(flags, '-n', '--namespace') ?? 'default'
  if (cmd === 'run' && rest.length === 1) return run(rest[0]!, flags.has('--watch') || flags.has('-w'))
  if (cmd === 'get' && rest.length === 1) return get(rest[0]!)
  if (cmd === 'apply' && rest.length === 0 && (flags.has('-f') || flags.has('--filename'))) return apply([...(flags.get('-f') ?? []), ...(flags.get('--filename') ?? [])])
  if (cmd === 'delete' && rest.length === 2) return remove(rest[0]!, rest[1]!, ns)
  if (cmd === 'load' && rest.length <= 1) return load(rest[0], ns, one(flags, '-c') ?? '8', one(flags, '-d') ?? '30s')
  if (cmd === 'logs' && rest.length === 1) return logs(rest[0]!, ns, flags.has('-f') || flags.has('--follow'), one(flags, '--revision'))
  throw new Error(USAGE)
}

main(process.argv.slice(2)).catch((err: Error) => {
  const msg = err instanceof ManifestError || err instanceof EnvError ? err.message : err.message
  process.stderr.write(`sluice: ${msg}\n`)
  killAllChildren()
  process.exit(1)
})
