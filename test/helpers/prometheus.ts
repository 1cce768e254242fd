// A real Prometheus for tests (Debian's `prometheus` package, or
// SLUICE_PROMETHEUS_BIN): started on a free port with a 1 s scrape and rule
// evaluation interval, scraping targets from a file_sd file the test rewrites,
// stopped at teardown; plus the few HTTP API calls the tests make.

import { spawn } from 'node:child_process'
import { existsSync, renameSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { freePort } from './process.ts'
import { waitFor } from './local.ts'

function which(cmd: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (dir !== '' && existsSync(join(dir, cmd))) return join(dir, cmd)
  }
  return undefined
}

export const PROMETHEUS_BIN = process.env.SLUICE_PROMETHEUS_BIN ?? which('prometheus')
/** promtool next to prometheus, else on PATH. */
export const PROMTOOL_BIN = PROMETHEUS_BIN === undefined
  ? undefined
  : [join(dirname(PROMETHEUS_BIN), 'promtool'), which('promtool')].find((p) => p !== undefined && existsSync(p))
/** false, or why tests that need Prometheus are skipped. */
export const PROMETHEUS_SKIP: string | false = PROMETHEUS_BIN === undefined || PROMTOOL_BIN === undefined || !existsSync(PROMETHEUS_BIN)
  ? 'no prometheus/promtool here (apt-get install prometheus, or set SLUICE_PROMETHEUS_BIN)'
  : false

export interface PromSeries {
  metric: Record<string, string>
  values: [number, string][]
}

export interface PromResult {
  error?: string
  series: PromSeries[]
}

/** One scrape target group of a file_sd file. */
export interface TargetGroup {
  targets: string[]
  labels: Record<string, string>
}

export interface Prometheus {
  /** Instant query now. */
  query(expr: string): Promise<PromResult>
  /** Range query at a 1 s step (start, end: Unix seconds). */
  queryRange(expr: string, start: number, end: number): Promise<PromResult>
  labelValues(label: string, match: string): Promise<string[]>
  /** Addresses of the targets whose last scrape succeeded. */
  targetsUp(): Promise<string[]>
  /** The targets kept after relabelling, with their final labels. */
  activeTargets(): Promise<{ labels: Record<string, string>; health: string }[]>
  ruleHealth(): Promise<{ name: string; health: string; lastError?: string }[]>
  /** Rewrites the file_sd file (Prometheus rereads it within about a second). */
  setTargets(groups: TargetGroup[]): void
}

interface Teardown {
  teardown(fn: () => void | Promise<void>): void
  passing(): boolean
  comment(...args: unknown[]): void
}

/**
 * Prometheus with `ruleFiles` loaded, scraping the groups last given to setTargets
 * (or, given scrapeConfigs, those jobs instead).
 */
export async function startPrometheus(t: Teardown, dir: string, ruleFiles: string[], scrapeConfigs?: unknown[]): Promise<Prometheus> {
  const port = await freePort()
  const config = join(dir, 'prometheus.yml')
  const targetsFile = join(dir, 'targets.json')
  let lastTargets = ''
  const setTargets = (groups: TargetGroup[]) => {
    const text = JSON.stringify(groups)
    if (text === lastTargets) return
    // Whole files only: Prometheus may read while we write.
    writeFileSync(`${targetsFile}.tmp`, lastTargets = text)
    renameSync(`${targetsFile}.tmp`, targetsFile)
  }
  setTargets([])
  writeFileSync(config, JSON.stringify({
    global: { scrape_interval: '1s', scrape_timeout: '1s', evaluation_interval: '1s' },
    rule_files: ruleFiles,
    scrape_configs: scrapeConfigs ?? [{ job_name: 'sluice', file_sd_configs: [{ files: [targetsFile], refresh_interval: '1s' }] }],
  }))
  let output = ''
  const child = spawn(PROMETHEUS_BIN!, [
    `--config.file=${config}`,
    `--storage.tsdb.path=${join(dir, 'prometheus-data')}`,
    `--web.listen-address=127.0.0.1:${port}`,
    '--log.level=warn',
  ], { stdio: ['ignore', 'pipe', 'pipe'] })
  for (const s of [child.stdout, child.stderr]) s.setEncoding('utf8').on('data', (d: string) => { output = (output + d).slice(-8000) })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  t.teardown(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return
    child.kill('SIGTERM')
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
    await exited
    clearTimeout(timer)
  })
  t.teardown(() => {
    if (!t.passing()) t.comment(`prometheus output:\n${output}`)
  })

  const base = `http://127.0.0.1:${port}`
  const api = async (path: string, form?: Record<string, string>): Promise<{ status: string; error?: string; data: unknown }> => {
    const res = await fetch(`${base}${path}`, form === undefined ? {} : { method: 'POST', body: new URLSearchParams(form) })
    return await res.json() as { status: string; error?: string; data: unknown }
  }
  const ready = await waitFor(async () => {
    if (child.exitCode !== null) return true
    try {
      return (await fetch(`${base}/-/ready`)).status === 200
    } catch {
      return false
    }
  }, 30_000, 100)
  if (!ready || child.exitCode !== null) throw new Error(`prometheus did not become ready:\n${output}`)

  const vector = async (path: string, form: Record<string, string>): Promise<PromResult> => {
    const r = await api(path, form)
    if (r.status !== 'success') return { error: r.error ?? r.status, series: [] }
    const result = (r.data as { result: { metric: Record<string, string>; value?: [number, string]; values?: [number, string][] }[] }).result
    return { series: result.map((s) => ({ metric: s.metric, values: s.values ?? (s.value !== undefined ? [s.value] : []) })) }
  }
  const activeTargets = async () => {
    const r = await api('/api/v1/targets?state=active')
    return (r.data as { activeTargets: { labels: Record<string, string>; health: string }[] }).activeTargets
  }
  return {
    query: (expr) => vector('/api/v1/query', { query: expr }),
    queryRange: (expr, start, end) => vector('/api/v1/query_range', { query: expr, start: String(start), end: String(end), step: '1' }),
    labelValues: async (label, match) => {
      const r = await api(`/api/v1/label/${label}/values?${new URLSearchParams({ 'match[]': match })}`)
      return r.status === 'success' ? r.data as string[] : []
    },
    targetsUp: async () => (await activeTargets()).filter((a) => a.health === 'up').map((a) => a.labels.instance!),
    activeTargets,
    ruleHealth: async () => {
      const r = await api('/api/v1/rules')
      return (r.data as { groups: { rules: { name: string; health: string; lastError?: string }[] }[] }).groups.flatMap((g) => g.rules)
    },
    setTargets,
  }
}
