// Scraping queue-proxy stats (spec §3.2) from real HTTP servers: protobuf
// Stats decoded; wrong status, wrong Content-Type, oversized bodies and
// timeouts refused as Knative's scrape client does; per-revision results
// aggregated over the instances that answered; the 1 s scrape loop.
import t, { type Test } from 'tap'
import http from 'node:http'
import type net from 'node:net'
import { once } from 'node:events'
import { emptyStat, encodeStat, type Stat } from '@sluice/core/stat-proto'
import {
  MAX_STAT_BYTES,
  ScrapeError,
  Scraper,
  aggregateStats,
  sampleSize,
  type ScrapeTarget,
} from '@sluice/local/autoscaler/scraper'

type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void

/** A real HTTP server on 127.0.0.1 standing in for a queue-proxy's metrics port. */
async function fakeQueueProxy(t: Test, handler: Handler): Promise<{ port: number; requests: http.IncomingMessage[] }> {
  const requests: http.IncomingMessage[] = []
  const sockets = new Set<net.Socket>()
  const server = http.createServer((req, res) => {
    requests.push(req)
    handler(req, res)
  })
  server.on('connection', (s: net.Socket) => {
    sockets.add(s)
    s.once('close', () => sockets.delete(s))
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(async () => {
    for (const s of sockets) s.destroy()
    await new Promise<void>((r) => server.close(() => r()))
  })
  return { port: (server.address() as net.AddressInfo).port, requests }
}

const stat = (fields: Partial<Stat>): Stat => ({ ...emptyStat('hello-00001-pod'), ...fields })

/** Serves `s` as the queue-proxy does. */
const serving = (s: Stat): Handler => (_req, res) => {
  res.writeHead(200, { 'content-type': 'application/protobuf' }).end(encodeStat(s))
}

function newScraper(t: Test, opts: Partial<ConstructorParameters<typeof Scraper>[0]> = {}): Scraper {
  const s = new Scraper({ targets: () => [], onStat: () => {}, ...opts })
  t.teardown(() => s.stop())
  return s
}

async function scrapeError(t: Test, p: Promise<unknown>, kind: string, pattern: RegExp): Promise<void> {
  const err = await p.then(() => undefined, (e: unknown) => e)
  t.ok(err instanceof ScrapeError, 'a ScrapeError')
  if (err instanceof ScrapeError) {
    t.equal(err.kind, kind)
    t.match(err.message, pattern)
  }
}

t.test('decodes the Stat a queue-proxy serves, asking for application/protobuf', async (t) => {
  const s = stat({ averageConcurrentRequests: 2.5, averageProxiedConcurrentRequests: 1, requestCount: 10, proxiedRequestCount: 4, processUptime: 123.4 })
  const qp = await fakeQueueProxy(t, serving(s))
  const got = await newScraper(t).scrape(qp.port)
  t.same(got, s)
  t.equal(qp.requests[0]!.method, 'GET')
  t.equal(qp.requests[0]!.url, '/metrics')
  t.equal(qp.requests[0]!.headers.accept, 'application/protobuf')
})

t.test('an empty body is an empty Stat (a queue-proxy before its first report)', async (t) => {
  const qp = await fakeQueueProxy(t, (_req, res) => res.writeHead(200, { 'content-type': 'application/protobuf' }).end())
  t.same(await newScraper(t).scrape(qp.port), emptyStat(''))
})

t.test('keep-alive: consecutive scrapes reuse one connection', async (t) => {
  const qp = await fakeQueueProxy(t, serving(stat({ averageConcurrentRequests: 1 })))
  const scraper = newScraper(t)
  await scraper.scrape(qp.port)
  await scraper.scrape(qp.port)
  await scraper.scrape(qp.port)
  t.equal(qp.requests.length, 3)
  t.equal(new Set(qp.requests.map((r) => r.socket)).size, 1, 'one socket for all three')
})

t.test('the Content-Type must be exactly application/protobuf', async (t) => {
  const body = encodeStat(stat({ averageConcurrentRequests: 1 }))
  for (const ct of ['application/protobuf; charset=utf-8', 'text/plain', 'application/x-protobuf', 'Application/Protobuf']) {
    const qp = await fakeQueueProxy(t, (_req, res) => res.writeHead(200, { 'content-type': ct }).end(body))
    await scrapeError(t, newScraper(t).scrape(qp.port), 'content-type', new RegExp(`unsupported metric type "${ct.replace(/[+.;/]/g, '\\$&')}"`))
  }
  const none = await fakeQueueProxy(t, (_req, res) => {
    res.removeHeader('content-type')
    res.writeHead(200).end(body)
  })
  await scrapeError(t, newScraper(t).scrape(none.port), 'content-type', /unsupported metric type ""/)
})

t.test('a non-2xx status is a failed scrape', async (t) => {
  for (const status of [503, 404, 302]) {
    const qp = await fakeQueueProxy(t, (_req, res) => res.writeHead(status, { 'content-type': 'application/protobuf' }).end(encodeStat(stat({}))))
    await scrapeError(t, newScraper(t).scrape(qp.port), 'status', new RegExp(`returned HTTP ${status}`))
  }
})

t.test('only the first 336 bytes are read: a long pod name fits, the rest of a big body is never decoded', async (t) => {
  t.equal(MAX_STAT_BYTES, 336)
  const long = stat({ podName: 'p'.repeat(253), averageConcurrentRequests: 3, averageProxiedConcurrentRequests: 1, requestCount: 9, proxiedRequestCount: 2, processUptime: 99 })
  t.ok(encodeStat(long).length <= 336, `a 253-character pod name encodes to ${encodeStat(long).length} bytes`)
  const qpLong = await fakeQueueProxy(t, serving(long))
  t.same(await newScraper(t).scrape(qpLong.port), long)

  // A valid Stat padded with unknown varint fields (field 15: 0x78 0x01) to exactly
  // 336 bytes, then 1 MiB of bytes that would never decode.
  const head = encodeStat(stat({ averageConcurrentRequests: 4 }))
  const pad = Buffer.alloc(336 - head.length)
  t.equal(pad.length % 2, 0, 'the padding is whole 2-byte fields')
  for (let i = 0; i + 1 < pad.length; i += 2) pad.set([0x78, 0x01], i)
  const big = Buffer.concat([head, pad, Buffer.alloc(1 << 20, 0xff)])
  const qpBig = await fakeQueueProxy(t, (_req, res) => res.writeHead(200, { 'content-type': 'application/protobuf' }).end(big))
  t.same(await newScraper(t).scrape(qpBig.port), stat({ averageConcurrentRequests: 4 }), 'decoded from the first 336 bytes')

  // A body whose 336th byte falls inside a field: the truncated Stat does not decode.
  const cut = Buffer.concat([head, Buffer.from([0x7a, 0xf4, 0x03]), Buffer.alloc(500, 0x41)]) // field 15, 500 bytes long
  const qpCut = await fakeQueueProxy(t, (_req, res) => res.writeHead(200, { 'content-type': 'application/protobuf' }).end(cut))
  await scrapeError(t, newScraper(t).scrape(qpCut.port), 'decode', /cannot decode Stat/)
})

t.test('a queue-proxy that does not answer in time is a timeout', async (t) => {
  const qp = await fakeQueueProxy(t, () => {})
  const started = performance.now()
  await scrapeError(t, newScraper(t, { timeoutMs: 200 }).scrape(qp.port), 'timeout', /timed out/)
  const took = performance.now() - started
  t.ok(took >= 180 && took < 1500, `gave up after ~200 ms (${took.toFixed(0)} ms)`)

  const slowBody = await fakeQueueProxy(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/protobuf' })
    res.write(Buffer.from([0x0a, 0x05])) // a pod name that never arrives
  })
  await scrapeError(t, newScraper(t, { timeoutMs: 200 }).scrape(slowBody.port), 'timeout', /timed out/)
})

t.test('nothing listening is a transport error', async (t) => {
  // A port that was just free: listen, note it, close.
  const closed = http.createServer()
  closed.listen(0, '127.0.0.1')
  await once(closed, 'listening')
  const deadPort = (closed.address() as net.AddressInfo).port
  await new Promise<void>((r) => closed.close(() => r()))
  await scrapeError(t, newScraper(t).scrape(deadPort), 'transport', /ECONNREFUSED/)
})

t.test('sampleSize is Knative\'s formula (kept for reference; every instance is scraped)', async (t) => {
  t.same([0, 1, 2, 3].map(sampleSize), [0, 1, 2, 3], 'N <= 3: all')
  // ceil(N x 15.3664 / (N + 14.3664))
  t.equal(sampleSize(4), 4, '61.47 / 18.37 = 3.35 -> 4')
  t.equal(sampleSize(10), 7, '153.66 / 24.37 = 6.31 -> 7')
  t.equal(sampleSize(100), 14, '1536.6 / 114.4 = 13.4 -> 14')
})

t.test('aggregateStats: the sum when all answered, sum / n x N otherwise', async (t) => {
  const a = stat({ averageConcurrentRequests: 2, averageProxiedConcurrentRequests: 1, requestCount: 4, proxiedRequestCount: 2, processUptime: 50 })
  const b = stat({ averageConcurrentRequests: 4, averageProxiedConcurrentRequests: 0, requestCount: 8, proxiedRequestCount: 0, timestamp: 7 })
  t.same(aggregateStats([a, b], 2), { ...emptyStat('service-scraper'), averageConcurrentRequests: 6, averageProxiedConcurrentRequests: 1, requestCount: 12, proxiedRequestCount: 2 },
    'sums; pod name service-scraper, uptime and timestamp not carried')
  t.same(aggregateStats([a, b], 3), { ...emptyStat('service-scraper'), averageConcurrentRequests: 9, averageProxiedConcurrentRequests: 1.5, requestCount: 18, proxiedRequestCount: 3 },
    '2 of 3 answered: x 3/2')
})

t.test('scrapeRevision: all instances at once, failures skipped and reported once, recovery reported', async (t) => {
  let failing = true
  const q1 = await fakeQueueProxy(t, serving(stat({ averageConcurrentRequests: 2, averageProxiedConcurrentRequests: 1 })))
  const q2 = await fakeQueueProxy(t, serving(stat({ averageConcurrentRequests: 4 })))
  const q3 = await fakeQueueProxy(t, (req, res) => (failing ? res.writeHead(200, { 'content-type': 'text/plain' }).end('nope') : serving(stat({ averageConcurrentRequests: 3 }))(req, res)))
  const errors: string[] = []
  const recovered: string[] = []
  const scraper = newScraper(t, {
    onError: (key, target, err) => errors.push(`${key} ${target.id} ${err.kind}`),
    onRecovered: (key, target) => recovered.push(`${key} ${target.id}`),
  })
  const targets: ScrapeTarget[] = [{ id: 'i1', metricsPort: q1.port }, { id: 'i2', metricsPort: q2.port }, { id: 'i3', metricsPort: q3.port }]
  // i1 + i2 = 6 concurrency (1 proxied) from 2 of 3: x 3/2 = 9 (1.5 proxied).
  let s = await scraper.scrapeRevision('ns/rev', targets)
  t.equal(s?.averageConcurrentRequests, 9)
  t.equal(s?.averageProxiedConcurrentRequests, 1.5)
  t.same(errors, ['ns/rev i3 content-type'])
  await scraper.scrapeRevision('ns/rev', targets)
  t.same(errors, ['ns/rev i3 content-type'], 'a persisting failure is reported once')
  failing = false
  s = await scraper.scrapeRevision('ns/rev', targets)
  t.equal(s?.averageConcurrentRequests, 9, 'all three: 2 + 4 + 3')
  t.same(recovered, ['ns/rev i3'])
  t.equal(await scraper.scrapeRevision('ns/rev', []), undefined, 'no ready instances: nothing')
  failing = true
  t.equal(await scraper.scrapeRevision('ns/other', [targets[2]!]), undefined, 'none answered: nothing to record')
})

t.test('the loop scrapes every revision once per interval and stamps each stat with the tick time', async (t) => {
  const q1 = await fakeQueueProxy(t, serving(stat({ averageConcurrentRequests: 1.5 })))
  const q2 = await fakeQueueProxy(t, serving(stat({ averageConcurrentRequests: 2.5 })))
  const q3 = await fakeQueueProxy(t, serving(stat({ requestCount: 7 })))
  const got: Array<{ key: string; stat: Stat; at: number }> = []
  let clock = 1_000_000
  const scraper = newScraper(t, {
    intervalMs: 100,
    now: () => (clock += 1000),
    targets: () => [['ns/a', [{ id: 'a1', metricsPort: q1.port }, { id: 'a2', metricsPort: q2.port }]], ['ns/b', [{ id: 'b1', metricsPort: q3.port }]], ['ns/empty', []]],
    onStat: (key, stat, at) => got.push({ key, stat, at }),
  })
  await scraper.start()
  const deadline = Date.now() + 2000
  while (got.filter((g) => g.key === 'ns/a').length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
  await scraper.stop()
  const a = got.filter((g) => g.key === 'ns/a')
  const b = got.filter((g) => g.key === 'ns/b')
  t.ok(a.length >= 3, `revision a scraped ${a.length} times`)
  t.ok(b.length >= 2, `revision b scraped ${b.length} times`)
  t.ok(a.every((g) => g.stat.averageConcurrentRequests === 4), 'a: 1.5 + 2.5 each time')
  t.ok(b.every((g) => g.stat.requestCount === 7))
  t.notOk(got.some((g) => g.key === 'ns/empty'), 'a revision without ready instances records nothing')
  const ticks = [...new Set(got.map((g) => g.at))]
  t.ok(ticks.every((at) => at % 1000 === 0), 'stamped with the injected clock at the tick')
  const count = got.length
  await new Promise((r) => setTimeout(r, 250))
  t.equal(got.length, count, 'nothing after stop()')
})
