// The local autoscaler end to end over the real wire protocols: fake
// instances are HTTP servers serving protobuf Stats that it scrapes, the
// activator side is a real websocket client sending WireStatMessages; the
// desired count it reports follows the KPA formula. Scraping tests run on a
// clock that goes 5x faster than real time (one stat second = 200 ms, one
// scrape in the middle of each), so windows of seconds pass in a fraction of that.
import t, { type Test } from 'tap'
import http from 'node:http'
import type net from 'node:net'
import { once } from 'node:events'
import { WebSocket } from 'ws'
import { emptyStat, encodeStat, encodeWireStatMessages, type Stat } from '@sluice/core/stat-proto'
import { autoscalerConfigFromData, AnnotationError } from '@sluice/local/autoscaler/config'
import { Autoscaler, type AutoscalerOptions } from '@sluice/local/autoscaler/autoscaler'

const KEY = 'default/hello-00001'
const A = 'autoscaling.knative.dev/'

interface Harness {
  autoscaler: Autoscaler
  /** Every onScale(KEY, n), in order. */
  scales: number[]
  logs: string[]
}

async function start(t: Test, opts: Partial<AutoscalerOptions> & { data?: Record<string, string> } = {}): Promise<Harness> {
  const scales: number[] = []
  const logs: string[] = []
  const autoscaler = new Autoscaler({
    config: autoscalerConfigFromData(opts.data ?? {}),
    log: (l) => logs.push(l),
    ...opts,
    onScale: (key, n) => {
      if (key === KEY) scales.push(n)
    },
  })
  await autoscaler.start()
  t.teardown(() => autoscaler.stop())
  return { autoscaler, scales, logs }
}

/** A fake instance: its queue-proxy metrics endpoint serving whatever `stat` holds. */
async function fakeInstance(t: Test, id: string): Promise<{ id: string; port: number; stat: Stat; failing: boolean }> {
  const inst = { id, port: 0, stat: emptyStat(id), failing: false }
  const sockets = new Set<net.Socket>()
  const server = http.createServer((_req, res) => {
    if (inst.failing) res.writeHead(503).end()
    else res.writeHead(200, { 'content-type': 'application/protobuf' }).end(encodeStat(inst.stat))
  })
  server.on('connection', (s: net.Socket) => {
    sockets.add(s)
    s.once('close', () => sockets.delete(s))
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  inst.port = (server.address() as net.AddressInfo).port
  t.teardown(async () => {
    for (const s of sockets) s.destroy()
    await new Promise<void>((r) => server.close(() => r()))
  })
  return inst
}

/** A clock `factor` times faster than real time whose seconds start where the scraper's real intervals do. */
function warpedClock(factor: number): () => number {
  const realMsPerSecond = 1000 / factor
  const origin = Math.floor(Date.now() / realMsPerSecond) * realMsPerSecond
  return () => 1_800_000_000_000 + (Date.now() - origin) * factor
}

async function until(check: () => boolean, what: string, timeoutMs = 4000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 5))
  }
}

const setConcurrency = (inst: { stat: Stat }, conc: number, proxied = 0): void => {
  inst.stat = { ...inst.stat, averageConcurrentRequests: conc, averageProxiedConcurrentRequests: proxied }
}

t.test('register reports the initial scale; bad annotations are refused naming the annotation', async (t) => {
  const { autoscaler, scales, logs } = await start(t, { data: { 'initial-scale': '2' } })
  const spec = autoscaler.register({ key: KEY, containerConcurrency: 10, annotations: { [`${A}maxScale`]: '5' } })
  t.equal(spec.target, 7)
  t.same(scales, [2], 'onScale(initial scale) at once')
  t.equal(autoscaler.desiredScale(KEY), 2)
  t.match(logs.at(-1), /^autoscaler: default\/hello-00001 registered: concurrency target 7 per instance, min 0, max 5, initial scale 2$/)
  t.throws(() => autoscaler.register({ key: KEY, containerConcurrency: 10 }), /already registered/)
  t.throws(() => autoscaler.register({ key: 'default/bad', containerConcurrency: 0, annotations: { [`${A}minScale`]: 'x' } }),
    AnnotationError)
  t.equal(autoscaler.desiredScale('default/bad'), undefined, 'a refused revision is not registered')
})

t.test('an activator stat with concurrency for a revision at zero scales it to 1 at once (poke), not at the next tick', async (t) => {
  // Ticks an hour apart: only the poke can explain a decision.
  const { autoscaler, scales, logs } = await start(t, { tickIntervalMs: 3_600_000, data: { 'allow-zero-initial-scale': 'true', 'initial-scale': '0' } })
  autoscaler.register({ key: KEY, containerConcurrency: 10 })
  t.same(scales, [0])
  const ws = new WebSocket(autoscaler.statServerUrl)
  t.teardown(() => ws.terminate())
  await once(ws, 'open')
  const frame = (name: string, conc: number) => encodeWireStatMessages([{ namespace: 'default', name, stat: { ...emptyStat('activator-0'), averageConcurrentRequests: conc, requestCount: conc } }])

  ws.send(frame('hello-00001', 0))
  ws.send(frame('unknown-00001', 5))
  await until(() => autoscaler.statServerStats.stats === 2, 'two stats')
  t.same(scales, [0], 'concurrency 0 does not poke; other revisions are ignored')

  // The activator's first-request message: concurrency 1, count 1.
  // ceil(1 / 7) = 1 with 0 ready (counted as 1), no panic (1 / 1 < 2).
  ws.send(frame('hello-00001', 1))
  await until(() => scales.length === 2, 'the poke decision', 2000)
  t.same(scales, [0, 1])
  // The 0 and the 1 share a second (1.0) or straddle two (0.5).
  t.match(logs.at(-1), /^autoscaler: default\/hello-00001 0 -> 1 \(stable, observed concurrency (1\.0|0\.5), target 7; activator poke\)$/)

  ws.send(frame('hello-00001', 30))
  await new Promise((r) => setTimeout(r, 100))
  t.same(scales, [0, 1], 'at 1 a stat is recorded but does not poke: the tick decides')
  const d = autoscaler.evaluate(KEY)
  // Buckets: second(s) with 0 + 1 + 30 over the seconds since the first write; at most 31 -> ceil(31 / 7) = 5.
  t.ok(d !== undefined && d.desired >= 1 && d.desired <= 5, `the tick evaluates the recorded stats (desired ${d?.desired})`)
})

t.test('scraped instances: the desired count follows ceil(total concurrency / target), down again, then to zero', async (t) => {
  const i1 = await fakeInstance(t, 'i1')
  const i2 = await fakeInstance(t, 'i2')
  const i3 = await fakeInstance(t, 'i3')
  const { autoscaler, scales, logs } = await start(t, {
    now: warpedClock(5),
    scrapeIntervalMs: 200,
    tickIntervalMs: 100,
    data: { 'scale-to-zero-grace-period': '2s' },
  })
  // Target 10 x 0.7 = 7; stable window 6 s, panic window 6 s x 10 % -> 1 s.
  autoscaler.register({ key: KEY, containerConcurrency: 10, annotations: { [`${A}window`]: '6s' } })
  t.same(scales, [1])

  // Two ready instances at 10.5 each: 21 / 7 = 3; panic? 3 / 2 ready = 1.5 < 2: no.
  setConcurrency(i1, 10.5)
  setConcurrency(i2, 10.5)
  autoscaler.setInstances(KEY, [{ id: 'i1', metricsPort: i1.port, ready: true }, { id: 'i2', metricsPort: i2.port, ready: true }, { id: 'i3', metricsPort: i3.port, ready: false }])
  await until(() => scales.at(-1) === 3, 'scale to 3')
  t.same(scales, [1, 3], 'straight to 3')
  t.ok(logs.includes('autoscaler: default/hello-00001 1 -> 3 (stable, observed concurrency 21.0, target 7)'), 'the decision is logged readably')

  // Three ready; 7 in total, half of i1's through the activator: the queue-proxies
  // count 14 - 7 + 0 + 0 = 7 -> ceil(7 / 7) = 1 once the 6 s window has only these.
  setConcurrency(i1, 14, 7)
  setConcurrency(i2, 0)
  autoscaler.setInstances(KEY, [{ id: 'i1', metricsPort: i1.port, ready: true }, { id: 'i2', metricsPort: i2.port, ready: true }, { id: 'i3', metricsPort: i3.port, ready: true }])
  await until(() => scales.at(-1) === 1, 'back to 1')
  t.ok(scales.slice(2).every((n) => n < 3), `only down from 3 (${scales.join(', ')})`)

  // The runner stops the other two (down to the 1 asked for). Idle from now:
  // 0 is wanted once the window holds only zeros (with 1 ready, floor(1 / 2) = 0
  // allows it); active long enough; then 2 s of grace.
  autoscaler.setInstances(KEY, [{ id: 'i1', metricsPort: i1.port, ready: true }])
  setConcurrency(i1, 0)
  await until(() => scales.at(-1) === 0, 'scale to zero')
  t.match(logs.at(-1), /^autoscaler: default\/hello-00001 1 -> 0 \(stable, observed concurrency 0\.0, target 7; scale to zero: inactive for 2(\.\d)?s\)$/)
})

t.test('a failing instance is skipped: the others stand in for it (sum / n x N)', async (t) => {
  const i1 = await fakeInstance(t, 'i1')
  const i2 = await fakeInstance(t, 'i2')
  const { autoscaler, scales, logs } = await start(t, { now: warpedClock(5), scrapeIntervalMs: 200, tickIntervalMs: 100 })
  autoscaler.register({ key: KEY, containerConcurrency: 10, annotations: { [`${A}window`]: '6s' } })
  // i1 answers 14, i2 fails: 14 / 1 x 2 = 28 -> ceil(28 / 7) = 4; panic? 4 / 2 = 2 >= 2: yes, max(4, 4) = 4.
  setConcurrency(i1, 14)
  i2.failing = true
  autoscaler.setInstances(KEY, [{ id: 'i1', metricsPort: i1.port, ready: true }, { id: 'i2', metricsPort: i2.port, ready: true }])
  await until(() => scales.at(-1) === 4, 'scale to 4')
  t.same(scales, [1, 4])
  t.ok(logs.some((l) => l === 'autoscaler: default/hello-00001: scraping instance i2 failed: GET http://127.0.0.1:' + i2.port + '/metrics returned HTTP 503'),
    'the failure is logged once')
  t.equal(logs.filter((l) => /scraping instance i2 failed/.test(l)).length, 1)
})
