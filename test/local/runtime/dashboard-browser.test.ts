// The dashboard in a real browser: Debian's chromium, headless, driven by
// playwright-core (no browser download). The page loads without console
// errors, updates live, its instance chart rises under load and falls back to
// zero, the cold start is listed, nothing scrolls sideways at 800 px; a
// screenshot is saved (.tap/dashboard.png, or SLUICE_DASHBOARD_SCREENSHOT).
// Skipped when no chromium is installed (.ci/run installs it).

import t from 'tap'
import { existsSync, mkdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { chromium, type Browser } from 'playwright-core'
import { ROOT, send, startLoad, startRuntime, tempDir, waitFor, writeService } from '../../helpers/local.ts'

const CHROMIUM = process.env.SLUICE_CHROMIUM ?? '/usr/bin/chromium'
const SCREENSHOT = process.env.SLUICE_DASHBOARD_SCREENSHOT ?? join(ROOT, '.tap/dashboard.png')
const REV = 'dash-00001'
// Real processes and windows of several seconds: more than the default 60 s on a busy machine.
t.setTimeout(120_000)

interface PageView {
  ticks: number
  actual: number[]
  desired: number[]
  coldStarts: number
  overflow: number
}

t.test('the dashboard in headless chromium: live charts, cold start, narrow window', { skip: existsSync(CHROMIUM) ? false : `no chromium at ${CHROMIUM} (apt-get install chromium, or set SLUICE_CHROMIUM)` }, async (t) => {
  const dir = tempDir(t)
  // The whole-cycle service's shape: 2 in flight per instance, target 1.4, answers in 100 ms.
  const manifest = writeService(dir, {
    name: 'dash', containerConcurrency: 2, env: { DELAY_MS: '100' },
    annotations: { 'autoscaling.knative.dev/target': '2', 'autoscaling.knative.dev/target-utilization-percentage': '70', 'autoscaling.knative.dev/max-scale': '6' },
  })
  const run = await startRuntime(manifest, { autoscalerConfigPath: join(ROOT, 'test/local/fixtures/config-autoscaler-fast.yaml') })
  t.teardown(() => run.stop())
  t.teardown(() => { if (!t.passing()) t.comment(run.lines.join('\n')) })
  const { rt, url } = run

  const browser: Browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'], timeout: 60_000 })
  t.teardown(() => browser.close())
  const page = await browser.newPage({ viewport: { width: 800, height: 1000 } })
  const errors: string[] = []
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()) })
  page.on('pageerror', (e) => errors.push(e.message))
  page.setDefaultTimeout(30_000)
  await page.goto(rt.dashboardUrl)

  const view = (): Promise<PageView> => page.evaluate((rev) => {
    // Runs in the page (the test's tsconfig has no DOM types: the little used is typed here).
    const g = globalThis as unknown as {
      sluice: { ticks: number; revisions: Map<string, { charts: { instances: { plot: { data: (number | null)[][] } | null } } }> }
      document: { querySelectorAll(sel: string): { length: number }; documentElement: { scrollWidth: number; clientWidth: number } }
    }
    const plot = g.sluice.revisions.get(`default/${rev}`)?.charts.instances.plot
    return {
      ticks: g.sluice.ticks,
      actual: (plot?.data[1] ?? []) as number[],
      desired: (plot?.data[2] ?? []) as number[],
      coldStarts: g.document.querySelectorAll(`[data-revision="${rev}"] [data-cold-start]`).length,
      overflow: g.document.documentElement.scrollWidth - g.document.documentElement.clientWidth,
    }
  }, REV)

  await page.waitForSelector(`[data-revision="${REV}"] .chart-instances canvas`)
  const first = await view()
  const firstAt = performance.now()
  t.ok(await waitFor(async () => (await view()).actual.at(-1) === 0, 30_000, 250), 'the instance chart reaches zero with no traffic')
  await new Promise((r) => setTimeout(r, Math.max(0, 4000 - (performance.now() - firstAt))))
  const seconds = (performance.now() - firstAt) / 1000
  const updates = (await view()).ticks - first.ticks
  t.ok(updates >= Math.floor(seconds) - 1, `the page got ${updates} updates in ${seconds.toFixed(1)} s over server-sent events (one a second)`)

  // Load from zero: a cold start, then more instances.
  const load = startLoad(url, { concurrency: 8, host: 'dash.default.example.com' })
  let loadStopped = false
  t.teardown(async () => { if (!loadStopped) await load.stop() })
  t.ok(await waitFor(async () => Math.max(...(await view()).actual) >= 2, 30_000, 250), 'the instance chart rises under load')
  t.ok(await waitFor(async () => (await view()).coldStarts >= 1, 10_000, 250), 'the cold start is listed with its duration')
  t.match(await page.textContent(`[data-revision="${REV}"] [data-cold-start]`) ?? '', /dash-00001-\d+\s+\d+ ms/, 'as instance and milliseconds')
  await new Promise((r) => setTimeout(r, 3000))
  const result = await load.stop()
  loadStopped = true
  t.equal(result.failed, 0, `no request failed (${result.ok} answered)`)
  t.ok(await waitFor(async () => (await view()).actual.at(-1) === 0, 40_000, 250), 'and falls back to zero after the load')

  const decisions = await page.$$eval(`[data-revision="${REV}"] .decisions li`, (li) => li.map((x) => x.textContent ?? ''))
  t.ok(decisions.some((d) => /0 → [1-9].*observed .*target/.test(d)), 'the scale-up from zero is in the decision log with its inputs')
  t.ok(decisions.some((d) => /→ 0 /.test(d)), 'so is the scale to zero')
  t.equal(await page.textContent(`[data-split="${REV}"]`), `${REV} 100%`, 'the traffic split shows the revision\'s share')
  const v = await view()
  t.ok(v.overflow <= 0, `no horizontal scrolling at 800 px (overflow ${v.overflow} px)`)
  mkdirSync(dirname(SCREENSHOT), { recursive: true })
  await page.screenshot({ path: SCREENSHOT, fullPage: true })
  t.ok(existsSync(SCREENSHOT), `screenshot saved to ${SCREENSHOT}`)
  t.same(errors, [], 'no console errors')
  t.equal((await send(url, { host: 'dash.default.example.com' })).status, 200, 'the service still answers')
})
