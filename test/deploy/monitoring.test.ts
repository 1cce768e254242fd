// deploy/monitoring/ against a real Prometheus (Debian's `prometheus`
// package; SLUICE_PROMETHEUS_BIN overrides where it is). promtool checks and
// unit-tests the alerting rules. Then a local stack (activator with small
// buffering bounds, queue-proxies with request metrics, apps) gets real
// traffic while Prometheus scrapes it every second with the rules loaded:
// warm requests, 503s from a full queue-proxy queue, requests held in and shed
// by the activator, a revision scaling to zero (its queue-proxy drains) and a
// cold start; a second activator that cannot reach the autoscaler; the
// activators dropped from the scrape for a moment. Every dashboard query
// (Grafana variables filled in) and every alert expression must parse and
// return series over the run, every variable must list values, and Prometheus
// itself must have put each alert the scenario triggers in pending state.
// Skipped with a message where prometheus is not installed (.ci/run installs it).

import t from 'tap'
import { spawnSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import { join } from 'node:path'
import YAML from 'yaml'
import { ROOT, send, sleep, startRuntime, tempDir, waitFor, writeService } from '../helpers/local.ts'
import { ensureStopped, freePort } from '../helpers/process.ts'
import { activatorEnv, spawnActivator } from '../helpers/activator.ts'
import { PROMETHEUS_SKIP, PROMTOOL_BIN, startPrometheus, type PromSeries, type TargetGroup } from '../helpers/prometheus.ts'

t.setTimeout(150_000)
// The README's scrape-job check (its own Prometheus, mostly waiting on discovery) runs beside the scenario.
t.jobs = 2

const MONITORING = join(ROOT, 'deploy/monitoring')
const RULES = join(MONITORING, 'sluice-alerts.yaml')
const DASHBOARDS = ['sluice-revisions.json', 'sluice-activator.json'].map((f) => join(MONITORING, f))

// Two local revisions, each one instance with one request at a time: warm stays up, cold scales to zero.
const WARM = 'warm-00001'
const COLD = 'cold-00001'
const host = (svc: string) => `${svc}.default.example.com`
// What Grafana puts in for the variables: both revisions chosen, every activator.
const VARIABLES: [RegExp, string][] = [
  [/\$__rate_interval\b/g, '1m'],
  [/\$namespace\b/g, 'default'],
  [/\$revision\b/g, `(${WARM}|${COLD})`],
  [/\$instance\b/g, '.*'],
]
/** Alerts whose threshold a short local run cannot reach; their expression without the threshold must return series. */
const NOT_TRIGGERED: Record<string, string> = {
  SluiceSlowColdStarts: 'a p95 wait above 10 s would need a 10 s cold start',
}

interface Panel { title: string; type: string; targets?: { expr: string; refId: string }[]; panels?: Panel[] }
interface Dashboard { title: string; panels: Panel[]; templating: { list: { name: string; type: string; definition?: string }[] } }
interface Query { dashboard: string; panel: string; refId: string; expr: string }

const substitute = (expr: string) => VARIABLES.reduce((out, [re, v]) => out.replace(re, v), expr)

function dashboardQueries(): { queries: Query[]; variables: { dashboard: string; name: string; definition: string }[] } {
  const queries: Query[] = []
  const variables: { dashboard: string; name: string; definition: string }[] = []
  for (const file of DASHBOARDS) {
    const d = JSON.parse(readFileSync(file, 'utf8')) as Dashboard
    const walk = (ps: Panel[]) => {
      for (const p of ps) {
        for (const tg of p.targets ?? []) queries.push({ dashboard: d.title, panel: p.title, refId: tg.refId, expr: substitute(tg.expr) })
        walk(p.panels ?? [])
      }
    }
    walk(d.panels)
    for (const v of d.templating.list) if (v.type === 'query') variables.push({ dashboard: d.title, name: v.name, definition: substitute(v.definition!) })
  }
  return { queries, variables }
}

interface Rule { alert: string; expr: string }
const alertRules = (): Rule[] => (YAML.parse(readFileSync(RULES, 'utf8')) as { groups: { rules: Rule[] }[] }).groups.flatMap((g) => g.rules)

t.test('promtool: the rules file parses and its unit tests pass', { skip: PROMETHEUS_SKIP }, async (t) => {
  const check = spawnSync(PROMTOOL_BIN!, ['check', 'rules', RULES], { encoding: 'utf8' })
  t.equal(check.status, 0, `promtool check rules: ${check.stdout}${check.stderr}`)
  t.match(check.stdout, new RegExp(`SUCCESS: ${alertRules().length} rules found`))
  const unit = spawnSync(PROMTOOL_BIN!, ['test', 'rules', 'sluice-alerts.test.yaml'], { cwd: join(MONITORING, 'tests'), encoding: 'utf8' })
  t.equal(unit.status, 0, `promtool test rules (each alert fires on its case, quiet below its threshold): ${unit.stdout}${unit.stderr}`)
})

// Pods as Kubernetes service discovery describes them (one target per container port): Knative's
// activator and autoscaler, and a revision pod with its queue-proxy and user container.
const PODS: { ns: string; pod: string; app?: string; container: string; ports: [string, number][] }[] = [
  { ns: 'knative-serving', pod: 'activator-7d9c', app: 'activator', container: 'activator', ports: [['http1', 8012], ['h2c', 8013], ['metrics', 9090], ['profiling', 8008], ['https', 8112]] },
  { ns: 'knative-serving', pod: 'autoscaler-5f4b', app: 'autoscaler', container: 'autoscaler', ports: [['metrics', 9090], ['websocket', 8080]] },
  { ns: 'default', pod: 'hello-00001-deployment-6b8f', container: 'queue-proxy', ports: [['http-queueadm', 8022], ['http-autometric', 9090], ['http-usermetric', 9091], ['queue-port', 8012], ['https-port', 8112]] },
  { ns: 'default', pod: 'hello-00001-deployment-6b8f', container: 'user-container', ports: [['user-port', 8080]] },
]

t.test('the README scrape jobs keep exactly the activator\'s and the queue-proxies\' metrics ports', { skip: PROMETHEUS_SKIP }, async (t) => {
  const dir = tempDir(t)
  const readme = readFileSync(join(MONITORING, 'README.md'), 'utf8')
  const block = /```yaml\n(# prometheus\.yml[^\n]*\n[\s\S]*?)```/.exec(readme)
  t.ok(block, 'README has a prometheus.yml block')
  const config = YAML.parse(block![1]!) as { scrape_configs: ({ job_name: string; kubernetes_sd_configs?: { role: string; namespaces?: { names: string[] } }[] } & Record<string, unknown>)[] }
  // Debian's Prometheus is built without Kubernetes discovery: each job reads the same pods from a file instead.
  const jobs = config.scrape_configs.map((job) => {
    const sd = job.kubernetes_sd_configs
    t.equal(sd?.length, 1, `${job.job_name}: one kubernetes_sd_config`)
    t.equal(sd![0]!.role, 'pod', `${job.job_name}: discovers pods`)
    const names = sd![0]!.namespaces?.names
    const groups = PODS.filter((p) => names === undefined || names.includes(p.ns)).flatMap((p, i) => p.ports.map(([name, port]) => ({
      targets: [`192.0.2.${i + 1}:${port}`],
      labels: {
        __meta_kubernetes_namespace: p.ns,
        __meta_kubernetes_pod_name: p.pod,
        __meta_kubernetes_pod_container_name: p.container,
        __meta_kubernetes_pod_container_port_name: name,
        ...(p.app === undefined ? {} : { __meta_kubernetes_pod_label_app: p.app }),
      },
    })))
    const file = join(dir, `${job.job_name}.json`)
    writeFileSync(file, JSON.stringify(groups))
    const { kubernetes_sd_configs: _, ...rest } = job
    return { ...rest, file_sd_configs: [{ files: [file] }] }
  })
  const checked = join(dir, 'prometheus.yml')
  writeFileSync(checked, JSON.stringify({ ...config, scrape_configs: jobs, rule_files: [RULES] }))
  const r = spawnSync(PROMTOOL_BIN!, ['check', 'config', checked], { encoding: 'utf8' })
  t.equal(r.status, 0, `promtool check config: ${r.stdout}${r.stderr}`)

  const prom = await startPrometheus(t, dir, [], jobs)
  const kept = async () => (await prom.activeTargets()).map((a) => `${a.labels.job} ${a.labels.instance} ${a.labels.namespace ?? '-'} ${a.labels.pod}`).sort()
  const want = [
    'sluice-activator 192.0.2.1:9090 - activator-7d9c',
    'sluice-queue-proxy 192.0.2.3:9091 default hello-00001-deployment-6b8f',
  ]
  await waitFor(async () => (await kept()).length >= want.length, 20_000, 100)
  t.same(await kept(), want, 'the activator\'s metrics port and the queue-proxy\'s http-usermetric port, nothing else')
})

t.test('dashboards and alerts against a live stack scraped by Prometheus', { skip: PROMETHEUS_SKIP }, async (t) => {
  const started = performance.now()
  const dir = tempDir(t)
  writeService(dir, { name: 'warm', containerConcurrency: 1, annotations: { 'autoscaling.knative.dev/min-scale': '1', 'autoscaling.knative.dev/max-scale': '1' } })
  writeService(dir, { name: 'cold', containerConcurrency: 1, annotations: { 'autoscaling.knative.dev/max-scale': '1' } })
  const run = await startRuntime(dir, {
    autoscalerConfigPath: join(ROOT, 'test/local/fixtures/config-autoscaler-fast.yaml'),
    requestMetrics: true,
    // The cold queue-proxy's drain is held open by requests until Prometheus saw it (below).
    drainQuiet: '2s',
    // Two waiting requests fill the activator (per revision and in total): the buffer alerts can fire.
    activatorEnv: { SLUICE_MAX_QUEUED_PER_REVISION: '2', SLUICE_MAX_QUEUED: '2' },
  }, 30_000)
  t.teardown(() => run.stop())
  const { rt, url } = run
  const lone = await startLoneActivator(t)

  const prom = await startPrometheus(t, dir, [RULES])
  const promStart = Date.now() / 1000 - 1
  // Instances come and go: the file_sd file follows the runtime.
  let scrapeActivators = true
  const targets = (): TargetGroup[] => {
    const groups = rt.metricsTargets().map((m) => ({ targets: [m.address], labels: { job: m.component, pod: m.pod } }))
    groups.push({ targets: [lone.metrics], labels: { job: 'activator', pod: 'activator-lone' } })
    return scrapeActivators ? groups : groups.filter((g) => g.labels.job !== 'activator')
  }
  const sd = setInterval(() => prom.setTargets(targets()), 200)
  t.teardown(() => clearInterval(sd))
  prom.setTargets(targets())
  const allUp = async () => {
    const up = new Set(await prom.targetsUp())
    return targets().every((g) => up.has(g.targets[0]!))
  }
  // Requests keep the cold revision up until Prometheus scrapes it (it scales to zero ~8 s after its last one).
  let warming = true
  const coldWarmer = (async () => {
    while (warming) {
      await send(url, { host: host('cold') }).catch(() => undefined)
      await sleep(500)
    }
  })()
  t.ok(await waitFor(allUp, 40_000, 250), 'Prometheus scrapes both activators and both queue-proxies')
  // Left alone now, the cold revision scales to zero during what follows. While its queue-proxy drains,
  // requests straight to it restart the quiet period, until Prometheus has scraped the draining state.
  const coldQp = rt.metricsTargets().find((m) => m.revision === COLD)
  t.ok(coldQp?.serving, 'the cold queue-proxy\'s addresses')
  const drainWatch = (async () => {
    if (!(await waitFor(() => drainingNow(coldQp!.address), 60_000, 100))) return 'the cold queue-proxy never drained'
    let pinging = true
    const pinger = (async () => {
      while (pinging) {
        await directGet(coldQp!.serving!, host('cold'), '/').catch(() => 0)
        await sleep(300)
      }
    })()
    // Below the runtime's 10 s stop grace, which ends the drain regardless.
    const seen = await waitFor(async () => (await prom.query(`sluice_queue_proxy_draining{revision_name="${COLD}"} == 1`)).series.length > 0, 7000, 200)
    pinging = false
    await pinger
    return seen ? '' : 'Prometheus did not see the drain within 7 s'
  })()
  warming = false
  await coldWarmer
  t.comment(`stack and Prometheus up at ${((performance.now() - started) / 1000).toFixed(1)} s`)
  const pending = (alert: string) => waitFor(async () => (await prom.query(`ALERTS{alertname="${alert}"}`)).series.length > 0, 30_000, 250)

  // Warm traffic through the ingress and the activator.
  for (let i = 0; i < 10; i++) t.equal((await send(url, { host: host('warm'), path: '/?delay=10' })).status, 200)

  // Straight at the warm queue-proxy (as an ingress does with the activator out of the path): 1 running + 10
  // waiting fit, the rest get 503. Two bursts, the second once Prometheus has the 5xx series, so rates rise.
  const warmQp = rt.metricsTargets().find((m) => m.revision === WARM)
  t.ok(warmQp?.serving, 'the warm queue-proxy\'s serving address')
  const burst = async () => {
    const replies = await Promise.all(Array.from({ length: 20 }, () => directGet(warmQp!.serving!, host('warm'), '/?delay=200')))
    t.equal(replies.filter((s) => s === 200 || s === 503).length, 20, `every burst request answered 200 or 503 (${replies.join(' ')})`)
    return replies.filter((s) => s === 503).length
  }
  const rejected1 = await burst()
  t.ok(rejected1 > 0, `the full queue-proxy queue answered 503 (${rejected1} of 20)`)
  t.ok(await waitFor(async () => (await prom.query(`revision_request_count{revision_name="${WARM}", response_code_class="5xx"}`)).series.length > 0, 30_000, 250), 'Prometheus has the 5xx count')
  t.ok(await burst() > 0, 'the second burst got 503s too')

  // Through the activator: one request runs, two wait (its bounds), the rest are shed. The held requests
  // stay until Prometheus has seen the buffer full; then the clients go away.
  const held = Array.from({ length: 5 }, () => holdGet(url, host('warm'), '/?delay=60000'))
  t.ok(await waitFor(async () => (await prom.query(`activator_request_count{revision_name="${WARM}", response_code_class="5xx"}`)).series.length > 0, 30_000, 250), 'Prometheus has the activator\'s 5xx count')
  // Enough shed requests for the alerts' rates over 5 min (more than 0.1/s).
  const shed = []
  for (let i = 0; i < 60; i++) shed.push((await send(url, { host: host('warm') })).status)
  t.equal(shed.filter((s) => s === 503).length, 60, 'every request is shed while the activator\'s buffer is full')
  t.comment(`buffer full and shedding at ${((performance.now() - started) / 1000).toFixed(1)} s`)
  for (const alert of ['SluiceActivatorBufferNearLimit', 'SluiceActivatorTotalBufferNearLimit', 'SluiceActivatorShedding503', 'SluiceActivatorHighErrorRate', 'SluiceQueueFull503', 'SluiceRevisionHighErrorRate']) {
    t.ok(await pending(alert), `${alert} is pending in Prometheus`)
  }
  for (const h of held) h.abort()
  const heldStatuses = await Promise.all(held.map((h) => h.done))
  t.ok(heldStatuses.filter((s) => s === 503).length >= 2, `the activator shed the held burst's extra requests (${heldStatuses.join(' ')})`)
  t.ok(await pending('SluiceActivatorAutoscalerLinkDown'), 'the activator without an autoscaler: SluiceActivatorAutoscalerLinkDown is pending')

  t.comment(`activator alerts pending at ${((performance.now() - started) / 1000).toFixed(1)} s`)

  // The cold revision scales to zero once left alone.
  t.equal(await drainWatch, '', 'Prometheus scraped the cold queue-proxy draining')
  t.ok(await waitFor(() => !rt.metricsTargets().some((m) => m.revision === COLD), 30_000, 100), 'the cold revision scaled to zero')
  const cold = await send(url, { host: host('cold'), timeoutMs: 30_000 })
  t.equal(cold.status, 200, `the request at zero was answered after a cold start (${cold.ms.toFixed(0)} ms)`)
  for (let i = 0; i < 5; i++) t.equal((await send(url, { host: host('cold') })).status, 200)
  t.ok(await waitFor(allUp, 30_000, 250), 'Prometheus scrapes the cold-started queue-proxy')
  t.ok(await waitFor(async () => (await prom.query(`increase(sluice_activator_cold_starts_total{revision_name="${COLD}"}[5m]) > 0`)).series.length > 0, 30_000, 250), 'the cold start reached Prometheus')

  t.comment(`cold start seen at ${((performance.now() - started) / 1000).toFixed(1)} s`)

  // Last: no activator scraped any more.
  scrapeActivators = false
  prom.setTargets(targets())
  t.ok(await pending('SluiceActivatorMetricsAbsent'), 'activators out of the scrape: SluiceActivatorMetricsAbsent is pending')
  const end = Date.now() / 1000

  const { queries, variables } = dashboardQueries()
  t.ok(queries.length >= 30, `${queries.length} dashboard queries`)
  const results = new Map<string, PromSeries[]>()
  for (const q of queries) {
    t.notMatch(q.expr, /\$/, `no variable left in ${q.panel} ${q.refId}`)
    const r = await prom.queryRange(q.expr, promStart, end)
    t.equal(r.error, undefined, `${q.dashboard} / ${q.panel} (${q.refId}) parses: ${r.error ?? ''}`)
    t.ok(r.series.length > 0, `${q.dashboard} / ${q.panel} (${q.refId}) returns ${r.series.length} series`)
    results.set(`${q.dashboard}/${q.panel}/${q.refId}`, r.series)
  }
  // The numbers behind the scenario, not only non-empty answers.
  const peak = (key: string, match: Record<string, string> = {}) => Math.max(0, ...(results.get(`Sluice: revisions/${key}`) ?? [])
    .filter((s) => Object.entries(match).every(([k, v]) => s.metric[k] === v))
    .flatMap((s) => s.values.map(([, v]) => Number(v))).filter((v) => Number.isFinite(v)))
  const classes = new Set((results.get('Sluice: revisions/Request rate by status class/A') ?? []).map((s) => s.metric.response_code_class))
  t.ok(classes.has('2xx') && classes.has('5xx'), `request rate by status class shows 2xx and 5xx (${[...classes].join(', ')})`)
  t.ok(peak('Rejected with 503: full queues/A', { revision_name: WARM }) > 0, 'breaker rejections show for the warm revision')
  t.ok(peak('Rejected with 503: full queues/B', { revision_name: WARM, reason: 'full' }) > 0, 'activator shedding shows for the warm revision')
  t.ok(peak('Cold starts/A', { revision_name: COLD }) > 0, 'the cold start shows for the cold revision')
  t.ok(peak('Pods scraped and draining/B', { revision_name: COLD }) >= 1, 'the draining queue-proxy shows while it drained')
  t.equal(peak('Requests buffered in the activator/A', { revision_name: WARM }), 2, 'the activator buffer filled to its bound for the warm revision')
  t.ok(peak('Wait for capacity (p50, p99)/B', { revision_name: COLD }) > 0, 'the cold start\'s wait for capacity shows')

  for (const v of variables) {
    const m = /^label_values\((.*), *(\w+)\)$/.exec(v.definition)
    t.ok(m, `${v.dashboard}: variable ${v.name} is label_values(selector, label)`)
    const values = await prom.labelValues(m![2]!, m![1]!)
    t.ok(values.length > 0, `${v.dashboard}: variable ${v.name} lists ${values.join(', ')}`)
  }

  // Every alert expression parses and returns series over the run; Prometheus put each one in pending state.
  const rules = alertRules()
  for (const r of rules) {
    const why = NOT_TRIGGERED[r.alert]
    const expr = why === undefined ? r.expr : r.expr.replace(/\s*>\s*[\d.]+\s*$/, '')
    const res = await prom.queryRange(expr, promStart, end)
    t.equal(res.error, undefined, `alert ${r.alert} parses: ${res.error ?? ''}`)
    t.ok(res.series.length > 0, `alert ${r.alert}${why === undefined ? '' : ` without its threshold (${why})`} returns ${res.series.length} series`)
    if (why !== undefined) continue
    const alerts = await prom.queryRange(`ALERTS{alertname="${r.alert}"}`, promStart, end)
    t.ok(alerts.series.length > 0, `Prometheus evaluated ${r.alert} to pending`)
  }
  const health = await prom.ruleHealth()
  t.equal(health.length, rules.length, 'Prometheus loaded every rule')
  for (const h of health) t.equal(h.health, 'ok', `rule ${h.name} evaluates without error ${h.lastError ?? ''}`)
  t.comment(`scenario took ${((performance.now() - started) / 1000).toFixed(1)} s`)
})

/** A GET straight to a queue-proxy's serving port; the status code. */
function directGet(address: string, hostHeader: string, path: string): Promise<number> {
  const [h, p] = address.split(':') as [string, string]
  return new Promise((resolve, reject) => {
    const req = http.get({ host: h, port: Number(p), path, agent: false, headers: { host: hostHeader } }, (res) => {
      res.resume()
      res.on('end', () => resolve(res.statusCode!))
    })
    req.setTimeout(30_000, () => req.destroy(new Error('timeout')))
    req.on('error', reject)
  })
}

/** Whether the queue-proxy whose metrics are at `address` reports sluice_queue_proxy_draining 1 now. */
function drainingNow(address: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get(`http://${address}/metrics`, { agent: false }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => { text += c })
      res.on('end', () => resolve(/^sluice_queue_proxy_draining\{[^}]*\} 1$/m.test(text)))
      res.on('error', () => resolve(false))
    })
    req.setTimeout(2000, () => req.destroy())
    req.on('error', () => resolve(false))
  })
}

/** A GET through the ingress that may be left waiting: abort() ends it; done is its status (0: aborted). */
function holdGet(base: string, hostHeader: string, path: string): { abort(): void; done: Promise<number> } {
  let req!: http.ClientRequest
  const done = new Promise<number>((resolve) => {
    req = http.get(`${base}${path}`, { agent: false, headers: { host: hostHeader } }, (res) => {
      res.resume()
      res.on('end', () => resolve(res.statusCode!))
      res.on('error', () => resolve(0))
    })
    req.on('error', () => resolve(0))
    req.on('close', () => resolve(0))
  })
  return { abort: () => req.destroy(), done }
}

/** A second activator (no revisions) whose autoscaler URL has nothing listening: its link stays down. */
async function startLoneActivator(t: { teardown(fn: () => Promise<void>): void }): Promise<{ metrics: string }> {
  const act = await spawnActivator({ ...activatorEnv(), PATH: process.env.PATH ?? '', POD_NAME: 'activator-lone', SLUICE_AUTOSCALER_URL: `ws://127.0.0.1:${await freePort()}` })
  t.teardown(() => ensureStopped(act))
  return { metrics: `127.0.0.1:${act.ports.metrics}` }
}

