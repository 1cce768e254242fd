// The images' runtime trees, built without Docker: each Dockerfile's
// runtime-tree stage is replayed in a temp dir (its COPY lines from the repo,
// its RUN line with npm ci made offline, its COPY --from=build of dist), then
// the final stage's CMD is started there, on the repo's Node 24, with nothing
// but the stage's ENV and the environment Knative gives the component. So a
// runtime dependency declared only as a devDependency, a file missing from
// the tree, or a write to the (read-only in the cluster) filesystem fails here.

import t, { type Test } from 'tap'
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, dirname, join, relative } from 'node:path'
import { all, execForm, parseCopy, parseEnv, readDockerfile, REPO_ROOT, stage, workdir } from './dockerfile.ts'
import { close, knativeEnv, request, sleep, startApp } from '../helpers/servers.ts'
import { freePort } from '../helpers/process.ts'
import { FakeKubeApi, writeKubeconfigFor } from '../helpers/fake-kube-api.ts'
import { traceReceiver } from '../helpers/trace-receiver.ts'

const NODE = join(REPO_ROOT, 'node_modules/.bin/node')
const QUEUE_BUNDLER = join(REPO_ROOT, 'packages/queue-proxy/bundle.mjs')
const QUEUE_BUNDLE = 'queue-proxy.bundle.cjs'
const ACTIVATOR_BUNDLER = join(REPO_ROOT, 'packages/activator/bundle.mjs')
const ACTIVATOR_BUNDLES = ['activator.bundle.cjs', 'kubernetes.bundle.cjs']
const KUBELET_QP = { 'User-Agent': 'kube-probe/1.30', 'K-Network-Probe': 'queue' }
const KUBELET_ACTIVATOR = { 'User-Agent': 'kube-probe/1.30', 'K-Kubelet-Probe': 'activator' }
/** Root devDependencies that must never reach an image. */
const DEV_TOOLS = ['tap', 'typescript', 'typescript-eslint', 'eslint', '@eslint/js', 'node', 'esbuild']

interface Lock {
  packages: Record<string, { dev?: boolean; link?: boolean }>
}
const lock = JSON.parse(readFileSync(join(REPO_ROOT, 'package-lock.json'), 'utf8')) as Lock

// ---- building a tree ---------------------------------------------------------

/** Compiles the workspaces if a test run comes without `npm run build` first. */
function ensureBuilt(): void {
  const outputs = ['core/dist/constants.js', 'queue-proxy/dist/main.js', `queue-proxy/dist/${QUEUE_BUNDLE}`, 'activator/dist/main.js',
    ...ACTIVATOR_BUNDLES.map((b) => `activator/dist/${b}`)]
  if (outputs.every((o) => existsSync(join(REPO_ROOT, 'packages', o)))) return
  const r = spawnSync(NODE, [join(REPO_ROOT, 'node_modules/typescript/bin/tsc'), '-b', 'packages/queue-proxy', 'packages/activator'],
    { cwd: REPO_ROOT, encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`tsc -b failed:\n${r.stdout}${r.stderr}`)
  // The Dockerfile's build stage bundles right after tsc, as `npm run build` does.
  for (const bundler of [QUEUE_BUNDLER, ACTIVATOR_BUNDLER]) {
    const b = spawnSync(NODE, [bundler], { cwd: REPO_ROOT, encoding: 'utf8' })
    if (b.status !== 0) throw new Error(`bundling failed:\n${b.stdout}${b.stderr}`)
  }
}

/** The environment for npm: ours minus what an enclosing `npm test` exported (npm_config_* would steer the child). */
function npmEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k)))
}

/** A RUN line; its npm ci goes to the cache (warm after the repo's own npm ci), the registry only for what is missing. */
function run(cmd: string, cwd: string): void {
  let out = ''
  for (const mode of ['--offline', '--prefer-offline']) {
    const r = spawnSync('sh', ['-c', cmd.replace(/\bnpm ci\b/, `npm ci ${mode}`)], { cwd, env: npmEnv(), encoding: 'utf8' })
    if (r.status === 0) return
    out += `${mode}: exit ${r.status}\n${r.stdout}${r.stderr}\n`
    if (!/ENOTCACHED/.test(r.stdout + r.stderr)) break
  }
  throw new Error(`RUN ${cmd} failed:\n${out}`)
}

interface Tree {
  dir: string
  /** The final stage's CMD, run with `node` as the distroless entrypoint does. */
  cmd: string[]
  env: Record<string, string>
}

/** Replays the runtime-tree stage of `dockerfile` under `root`. */
function buildTree(dockerfile: string, root: string): Tree {
  const stages = readDockerfile(dockerfile)
  const buildDir = workdir(stage(stages, 'build'))
  const rt = stage(stages, 'runtime-tree')
  const dir = join(root, 'app')
  if (workdir(rt) !== '/app') throw new Error(`runtime-tree WORKDIR is ${workdir(rt)}, expected /app`)
  mkdirSync(dir)
  for (const ins of rt.instructions) {
    if (ins.keyword === 'WORKDIR') continue
    if (ins.keyword === 'RUN') {
      run(ins.args, dir)
      continue
    }
    if (ins.keyword !== 'COPY') throw new Error(`${dockerfile}:${ins.line}: ${ins.keyword} is not replayed by this test`)
    const c = parseCopy(ins.args)
    for (const src of c.sources) {
      let from: string
      if (c.from === undefined) from = join(REPO_ROOT, src)
      else if (c.from === 'build' && src.startsWith(`${buildDir}/`)) from = join(REPO_ROOT, src.slice(buildDir.length + 1))
      else throw new Error(`${dockerfile}:${ins.line}: cannot map ${src} from stage ${c.from}`)
      // Docker: a destination ending in / (or ./) receives the source by name.
      const to = c.dest.endsWith('/') ? join(dir, c.dest, basename(src)) : join(dir, c.dest)
      mkdirSync(dirname(to), { recursive: true })
      cpSync(from, to, { recursive: true })
    }
  }
  const final = stages.at(-1)!
  const cmd = execForm(all(final, 'CMD')[0]!.args)
  if (!cmd) throw new Error(`${dockerfile}: CMD is not in exec form`)
  return { dir, cmd, env: Object.assign({}, ...all(final, 'ENV').map((e) => parseEnv(e.args))) as Record<string, string> }
}

/** Builds the tree once for a test file's subtests; removed at the end. */
function treeFor(t: Test, dockerfile: string): () => Tree {
  let tree: Tree | undefined
  const root = mkdtempSync(join(tmpdir(), 'sluice-runtime-tree-'))
  t.teardown(() => rmSync(root, { recursive: true, force: true }))
  return () => (tree ??= buildTree(dockerfile, root))
}

// ---- inspecting a tree -------------------------------------------------------

/** Every path under dir (symlinks not followed) with its type, size and mtime. */
function snapshot(dir: string): Map<string, string> {
  const out = new Map<string, string>()
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name)
      const st = lstatSync(p)
      out.set(relative(dir, p), `${e.isDirectory() ? 'd' : e.isSymbolicLink() ? 'l' : 'f'} ${st.size} ${st.mtimeMs}`)
      if (e.isDirectory()) walk(p)
    }
  }
  walk(dir)
  return out
}

/** Installed packages as lockfile paths (node_modules/x, packages/core/node_modules/undici, …). */
function installedPackages(dir: string): string[] {
  const out: string[] = []
  const scan = (nm: string): void => {
    if (!existsSync(nm)) return
    for (const e of readdirSync(nm, { withFileTypes: true })) {
      if (e.name.startsWith('.')) continue
      const names = e.name.startsWith('@') ? readdirSync(join(nm, e.name)).map((n) => `${e.name}/${n}`) : [e.name]
      for (const n of names) {
        const p = join(nm, n)
        out.push(relative(dir, p))
        if (!lstatSync(p).isSymbolicLink()) scan(join(p, 'node_modules'))
      }
    }
  }
  scan(join(dir, 'node_modules'))
  for (const ws of readdirSync(join(dir, 'packages'))) scan(join(dir, 'packages', ws, 'node_modules'))
  return out.sort()
}

function checkProductionOnly(t: Test, tree: Tree): string[] {
  const installed = installedPackages(tree.dir)
  t.ok(installed.length > 0, `${installed.length} packages installed`)
  const unknown = installed.filter((p) => lock.packages[p] === undefined)
  t.same(unknown, [], 'every installed package is in the lockfile')
  const dev = installed.filter((p) => lock.packages[p]?.dev === true)
  t.same(dev, [], 'no dev-only package (lockfile "dev": true) was installed')
  const names = new Set(installed.map((p) => p.slice(p.lastIndexOf('node_modules/') + 'node_modules/'.length)))
  for (const tool of DEV_TOOLS) t.notOk(names.has(tool), `no ${tool}`)
  t.notOk(existsSync(join(tree.dir, 'node_modules/.bin/tsc')), 'no tsc on the tree')
  return [...names]
}

// ---- running a tree ----------------------------------------------------------

interface Proc {
  child: ChildProcess
  exited: Promise<number | null>
  output(): string
}

/** Starts the image CMD in the tree with exactly `env`; resolves once `ready` answers 200. */
async function start(t: Test, tree: Tree, env: Record<string, string>, ready: { url: string; headers?: Record<string, string> }): Promise<Proc> {
  const child = spawn(NODE, tree.cmd, { cwd: tree.dir, env: { ...tree.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout!.setEncoding('utf8').on('data', (d: string) => { out += d })
  child.stderr!.setEncoding('utf8').on('data', (d: string) => { out += d })
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    await exited
  })
  const deadline = Date.now() + 10_000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${tree.cmd.join(' ')} exited with ${child.exitCode} during start-up:\n${out}`)
    try {
      if ((await request(ready.url, { headers: ready.headers ?? {} })).status === 200) break
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) throw new Error(`${tree.cmd.join(' ')} did not become ready:\n${out}`)
    await sleep(25)
  }
  return { child, exited, output: () => out }
}

async function stop(t: Test, p: Proc): Promise<void> {
  p.child.kill('SIGTERM')
  const code = await Promise.race([p.exited, sleep(5000).then(() => 'timeout' as const)])
  t.equal(code, 0, `SIGTERM: clean exit (output:\n${p.output()})`)
}

async function ports<K extends string>(names: readonly K[]): Promise<Record<K, number>> {
  const out = {} as Record<K, number>
  for (const n of names) out[n] = await freePort()
  return out
}

const QUEUE_PORTS = ['serving', 'tls', 'admin', 'metrics', 'userMetrics'] as const

/** Knative's queue-proxy environment on the given free ports, no drain wait. */
function queueEnv(appPort: number, p: Record<(typeof QUEUE_PORTS)[number], number>, extra: Record<string, string>): Record<string, string> {
  return knativeEnv(appPort, {
    QUEUE_SERVING_PORT: String(p.serving),
    QUEUE_SERVING_TLS_PORT: String(p.tls),
    SLUICE_ADMIN_PORT: String(p.admin),
    SLUICE_METRICS_PORT: String(p.metrics),
    SLUICE_USER_METRICS_PORT: String(p.userMetrics),
    SLUICE_DRAIN_QUIET_PERIOD: '0s',
    ...extra,
  })
}

// ---- the tests ---------------------------------------------------------------

ensureBuilt()

t.test('Dockerfile.queue runtime tree', async (t) => {
  const tree = treeFor(t, 'Dockerfile.queue')

  t.test('holds production dependencies only, and no Kubernetes client', async (t) => {
    const names = checkProductionOnly(t, tree())
    t.notOk(names.includes('@kubernetes/client-node'), 'no @kubernetes/client-node')
    t.notOk(existsSync(join(tree().dir, 'packages/activator')), 'no activator workspace')
    t.ok(existsSync(join(tree().dir, 'packages/queue-proxy/dist/main.js')), 'the CMD file is there')
    t.ok(existsSync(join(tree().dir, `packages/queue-proxy/dist/${QUEUE_BUNDLE}`)), 'the bundle main.js starts is there')
    t.notOk(existsSync(join(tree().dir, 'packages/queue-proxy/tsconfig.tsbuildinfo')), 'no build info, so main.js takes the bundle')
  })

  t.test('the image CMD starts with the Knative env, proxies to the app, answers the kubelet probe and writes nothing', async (t) => {
    // /big: 24 MiB, enough for the body-memory scavenges (core/http/body-memory.ts) to run in this tree.
    const big = Buffer.alloc(24 << 20, 120)
    const app = await startApp((req, res) => res.end(req.url === '/big' ? big : `app saw ${req.url}`))
    t.teardown(() => close(app.server))
    const p = await ports(QUEUE_PORTS)
    const before = snapshot(tree().dir)
    const qp = await start(t, tree(), queueEnv(app.port, p, {
      SERVING_LOGGING_LEVEL: 'info',
      SERVING_REQUEST_METRICS_BACKEND: 'prometheus',
    }), { url: `http://127.0.0.1:${p.metrics}/metrics` })

    const proxied = await request(`http://127.0.0.1:${p.serving}/hello`)
    t.equal(proxied.status, 200)
    t.equal(proxied.body, 'app saw /hello')
    const bulk = await request(`http://127.0.0.1:${p.serving}/big`)
    t.equal(bulk.body.length, big.length, 'a 24 MiB response arrives whole')
    // prom-client's classes load from the tree by path (queue-proxy/src/prom-parts.ts).
    const metrics = await request(`http://127.0.0.1:${p.userMetrics}/metrics`)
    t.match(metrics.body, /revision_request_count\{[^}]*response_code="200"[^}]*\} 2\b/, 'request metrics served from the tree')
    const probe = await request(`http://127.0.0.1:${p.serving}/`, { headers: KUBELET_QP })
    t.equal(probe.status, 200)
    t.equal(probe.body, 'queue')

    await stop(t, qp)
    t.same(snapshot(tree().dir), before, 'the tree is unchanged (read-only root filesystem in the cluster)')
  })

  t.test('with tracing on, the image CMD loads the tracer and the Zipkin exporter from the tree', async (t) => {
    const rx = await traceReceiver(t)
    const app = await startApp((_req, res) => res.end('ok'))
    t.teardown(() => close(app.server))
    const p = await ports(QUEUE_PORTS)
    const qp = await start(t, tree(), queueEnv(app.port, p, {
      TRACING_CONFIG_BACKEND: 'zipkin',
      TRACING_CONFIG_ZIPKIN_ENDPOINT: rx.zipkinUrl,
      TRACING_CONFIG_DEBUG: 'true',
    }), { url: `http://127.0.0.1:${p.metrics}/metrics` })
    t.equal((await request(`http://127.0.0.1:${p.serving}/traced`)).status, 200)
    const spans = await rx.waitFor((s) => s.some((x) => x.name === '/traced'))
    t.ok(spans.some((s) => s.name === 'queue_proxy'), 'spans exported from the image tree')
    await stop(t, qp)
  })
})

t.test('Dockerfile.activator runtime tree', async (t) => {
  const tree = treeFor(t, 'Dockerfile.activator')
  const activatorPorts = ['http', 'h2c', 'metrics', 'profiling'] as const
  const activatorEnv = (p: Record<(typeof activatorPorts)[number], number>, closedPort: number) => ({
    SYSTEM_NAMESPACE: 'knative-serving',
    POD_NAME: 'activator-7d9f8b6c5-x2x4k',
    POD_IP: '127.0.0.1',
    SLUICE_AUTOSCALER_URL: `ws://127.0.0.1:${closedPort}`,
    SLUICE_HTTP_PORT: String(p.http),
    SLUICE_H2C_PORT: String(p.h2c),
    SLUICE_METRICS_PORT: String(p.metrics),
    SLUICE_PROFILING_PORT: String(p.profiling),
    SLUICE_BIND_ADDRESS: '127.0.0.1',
    SLUICE_DRAIN_PERIOD: '0s',
    CLUSTER_DOMAIN: 'cluster.local',
  })

  t.test('holds production dependencies only, with the Kubernetes client', async (t) => {
    const names = checkProductionOnly(t, tree())
    t.ok(names.includes('@kubernetes/client-node'), '@kubernetes/client-node (the kubernetes endpoint source needs it)')
    t.notOk(existsSync(join(tree().dir, 'packages/queue-proxy')), 'no queue-proxy workspace')
    t.ok(existsSync(join(tree().dir, 'packages/activator/dist/main.js')), 'the CMD file is there')
    for (const b of ACTIVATOR_BUNDLES) t.ok(existsSync(join(tree().dir, `packages/activator/dist/${b}`)), `${b} (main.js starts the bundles) is there`)
    t.notOk(existsSync(join(tree().dir, 'packages/activator/tsconfig.tsbuildinfo')), 'no build info, so main.js takes the bundle')
  })

  t.test('the image CMD starts with the local endpoint source, answers the kubelet probe and writes nothing', async (t) => {
    const p = await ports(activatorPorts)
    const before = snapshot(tree().dir)
    const act = await start(t, tree(), { ...activatorEnv(p, await freePort()), SLUICE_ENDPOINT_SOURCE: 'local' },
      { url: `http://127.0.0.1:${p.http}/`, headers: KUBELET_ACTIVATOR })

    const probe = await request(`http://127.0.0.1:${p.http}/`, { headers: KUBELET_ACTIVATOR })
    t.equal(probe.status, 200, 'kubelet probe 200 with the autoscaler unreachable (Sluice default)')
    const metrics = await request(`http://127.0.0.1:${p.metrics}/metrics`)
    t.equal(metrics.status, 200)
    t.match(metrics.body, /^sluice_activator_autoscaler_connected 0$/m, 'the unreachable autoscaler shows as a metric')

    await stop(t, act)
    t.same(snapshot(tree().dir), before, 'the tree is unchanged (read-only root filesystem in the cluster)')
  })

  t.test('with SLUICE_TRACING_* on, the image CMD loads the tracer from the tree', async (t) => {
    const rx = await traceReceiver(t)
    const p = await ports(activatorPorts)
    const act = await start(t, tree(), { ...activatorEnv(p, await freePort()), SLUICE_ENDPOINT_SOURCE: 'local', SLUICE_LOG_LEVEL: 'info', SLUICE_TRACING_BACKEND: 'zipkin', SLUICE_TRACING_ZIPKIN_ENDPOINT: rx.zipkinUrl },
      { url: `http://127.0.0.1:${p.http}/`, headers: KUBELET_ACTIVATOR })
    t.match(act.output(), /"tracing":"on","exporter":"zipkin"/, 'the tracer loaded (log line "tracing settings")')
    await stop(t, act)
  })

  t.test('the image CMD loads the Kubernetes client from the tree and lists from the API named by KUBECONFIG', async (t) => {
    const api = await FakeKubeApi.start()
    t.teardown(() => api.close())
    // Outside the tree: in the cluster this is the service account mount.
    const kubeconfig = join(dirname(tree().dir), 'kubeconfig.yaml')
    writeKubeconfigFor(api, kubeconfig)
    const p = await ports(activatorPorts)
    const before = snapshot(tree().dir)
    const act = await start(t, tree(), { ...activatorEnv(p, await freePort()), KUBECONFIG: kubeconfig },
      { url: `http://127.0.0.1:${p.http}/`, headers: KUBELET_ACTIVATOR })

    for (const kind of ['revisions', 'endpoints', 'services'] as const) t.ok(api.lists(kind) >= 1, `listed ${kind}`)
    await stop(t, act)
    t.same(snapshot(tree().dir), before, 'the tree is unchanged')
  })
})

// A workspace that imports a package it does not declare works in the repo
// (hoisting) and in these trees only by luck of what else is installed.
// Known and reported (package.json is not ours to edit): the queue-proxy's
// request-log writer imports pino, which only @sluice/core declares. The
// check stays a todo while that is the only finding, and fails on any other.
const KNOWN_UNDECLARED = 'queue-proxy: request-log-writer.js imports pino'
t.test('every package a workspace build imports is declared in its dependencies', async (t) => {
  const bare = /(?:\bfrom\s*|\bimport\s*\(\s*)['"]((?:@[^/'"]+\/)?[^/'"]+)[^'"]*['"]/g
  const undeclared: string[] = []
  const workspaces = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { workspaces: string[] }).workspaces
  for (const dir of workspaces) {
    const ws = basename(dir)
    const pkg = JSON.parse(readFileSync(join(REPO_ROOT, dir, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> }
    const declared = new Set(Object.keys(pkg.dependencies ?? {}))
    const dist = join(REPO_ROOT, dir, 'dist')
    // ensureBuilt() guarantees the images' workspaces; others are checked once built.
    if (!existsSync(dist)) {
      t.comment(`${dir} is not built; skipped`)
      continue
    }
    for (const f of readdirSync(dist, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.js'))) {
      for (const m of readFileSync(join(dist, f), 'utf8').matchAll(bare)) {
        const name = m[1]!
        if (name.startsWith('node:') || name.startsWith('.')) continue
        if (!declared.has(name)) undeclared.push(`${ws}: ${f} imports ${name}`)
      }
    }
  }
  const found = [...new Set(undeclared)].sort()
  const knownOnly = found.length === 1 && found[0] === KNOWN_UNDECLARED
  t.same(found, [], 'no undeclared imports', knownOnly ? { todo: 'add "pino" to packages/queue-proxy/package.json dependencies' } : {})
})
