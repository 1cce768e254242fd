import t from 'tap'
import type { TrafficTarget } from '@sluice/local/manifest/service'
import {
  normaliseHost,
  pickRevision,
  resolveRoute,
  RouteError,
  RouteTable,
  serviceHost,
  tagHost,
  type ResolvedRoute,
} from '@sluice/local/manifest/routes'

const latest = (percent: number, tag?: string): TrafficTarget => ({ tag, revisionName: undefined, latestRevision: true, percent })
const pinned = (revisionName: string, percent: number, tag?: string): TrafficTarget => ({ tag, revisionName, latestRevision: false, percent })
const ready = (...names: string[]) => names.map((name) => ({ name, ready: true }))

function route(traffic: TrafficTarget[], revisions = ready('hello-00001', 'hello-00002'), name = 'hello', namespace = 'default', domain?: string): ResolvedRoute {
  return resolveRoute({ name, namespace, traffic }, revisions, domain)
}

// mulberry32: a small seeded PRNG so the distribution test is repeatable.
function seeded(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let x = a
    x = Math.imul(x ^ (x >>> 15), x | 1)
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61)
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

t.test('hosts follow Knative\'s default templates: {name}.{ns}.{domain} and {tag}-{name}.{ns}.{domain}', (t) => {
  t.equal(serviceHost('hello', 'default'), 'hello.default.example.com')
  t.equal(serviceHost('hello', 'team-a', 'local.dev'), 'hello.team-a.local.dev')
  t.equal(tagHost('candidate', 'hello', 'default'), 'candidate-hello.default.example.com')
  t.end()
})

t.test('the default traffic sends 100% to the latest ready revision', (t) => {
  const r = route([latest(100)])
  t.equal(r.host, 'hello.default.example.com')
  t.equal(r.url, 'http://hello.default.example.com')
  t.same(r.weights, [{ revision: 'hello-00002', percent: 100 }])
  t.same(r.traffic, [{ tag: undefined, revisionName: 'hello-00002', latestRevision: true, percent: 100, url: undefined }])
  t.same(r.tags, [])
  t.end()
})

t.test('latestRevision skips a newer revision that is not ready yet', (t) => {
  const r = route([latest(100)], [{ name: 'hello-00001', ready: true }, { name: 'hello-00002', ready: false }])
  t.same(r.weights, [{ revision: 'hello-00001', percent: 100 }])
  t.end()
})

t.test('no ready revision yet: RouteError RevisionMissing, as Knative\'s route reports it', (t) => {
  t.throws(() => route([latest(100)], [{ name: 'hello-00001', ready: false }]),
    { name: 'RouteError', reason: 'RevisionMissing', message: 'Configuration "hello" is waiting for a Revision to become ready.' })
  t.end()
})

t.test('a revisionName that does not exist or is not ready is a RouteError', (t) => {
  t.throws(() => route([pinned('hello-00009', 100)]), { reason: 'RevisionMissing', message: 'Revision "hello-00009" referenced in traffic not found.' })
  const err = t.throws(() => route([pinned('hello-00002', 100)], [{ name: 'hello-00002', ready: false }]))
  t.ok(err instanceof RouteError)
  t.match(err, { message: 'Revision "hello-00002" is not yet ready.' })
  t.end()
})

t.test('percent split and tags resolve to per-revision weights and tag hosts', (t) => {
  const r = route([pinned('hello-00001', 50, 'blue'), latest(50, 'green')], ready('hello-00001', 'hello-00002'), 'hello', 'default', 'apps.test')
  t.same(r.weights, [{ revision: 'hello-00001', percent: 50 }, { revision: 'hello-00002', percent: 50 }])
  t.same(r.tags, [
    { tag: 'blue', revision: 'hello-00001', host: 'blue-hello.default.apps.test', url: 'http://blue-hello.default.apps.test' },
    { tag: 'green', revision: 'hello-00002', host: 'green-hello.default.apps.test', url: 'http://green-hello.default.apps.test' },
  ])
  t.same(r.traffic.map((x) => [x.revisionName, x.percent, x.url]), [
    ['hello-00001', 50, 'http://blue-hello.default.apps.test'],
    ['hello-00002', 50, 'http://green-hello.default.apps.test'],
  ])
  t.end()
})

t.test('a 0% tagged target is reachable only through its tag host', (t) => {
  const r = route([latest(100), pinned('hello-00001', 0, 'old')])
  t.same(r.weights, [{ revision: 'hello-00002', percent: 100 }])
  t.same(r.tags.map((x) => [x.host, x.revision]), [['old-hello.default.example.com', 'hello-00001']])
  t.end()
})

t.test('targets naming the same revision merge their percentages', (t) => {
  const r = route([pinned('hello-00002', 30, 'a'), latest(40, 'b'), pinned('hello-00001', 30)])
  t.same(r.weights, [{ revision: 'hello-00002', percent: 70 }, { revision: 'hello-00001', percent: 30 }])
  t.end()
})

t.test('traffic that does not sum to 100 is an error naming spec.traffic', (t) => {
  t.throws(() => route([latest(60), pinned('hello-00001', 30)]), { name: 'ManifestError', message: 'default/hello: spec.traffic: percent values sum to 90, want 100' })
  t.throws(() => resolveRoute({ name: 'hello', namespace: 'default', traffic: [latest(101)], source: 'svc.yaml' }, ready('hello-00001')),
    { message: /^svc\.yaml: spec\.traffic\[0\]\.percent: must be an integer 0-100/ })
  t.throws(() => route([latest(50, 'x'), pinned('hello-00001', 50, 'x')]), { message: /spec\.traffic\[1\]\.tag: duplicate tag "x"/ })
  t.end()
})

t.test('pickRevision: boundaries of the cumulative weights', (t) => {
  const r = route([pinned('hello-00001', 50), latest(50)])
  t.equal(pickRevision(r, () => 0), 'hello-00001')
  t.equal(pickRevision(r, () => 0.4999), 'hello-00001')
  t.equal(pickRevision(r, () => 0.5), 'hello-00002')
  t.equal(pickRevision(r, () => 0.999999), 'hello-00002')
  const only = route([latest(100)])
  t.equal(pickRevision(only, () => 0.7), 'hello-00002')
  t.end()
})

t.test('pickRevision: 100,000 seeded picks follow 50/50 and 90/10 within half a percent', (t) => {
  for (const [a, b] of [[50, 50], [90, 10], [1, 99]] as const) {
    const r = route([pinned('hello-00001', a), latest(b)])
    const random = seeded(42)
    let first = 0
    const n = 100_000
    for (let i = 0; i < n; i++) if (pickRevision(r, random) === 'hello-00001') first++
    t.ok(Math.abs((first / n) * 100 - a) < 0.5, `${a}/${b}: ${((first / n) * 100).toFixed(2)}% to the first`)
  }
  t.end()
})

t.test('normaliseHost drops the port and a trailing dot, lower-cases, keeps IPv6 brackets', (t) => {
  t.equal(normaliseHost('Hello.Default.Example.COM:8080'), 'hello.default.example.com')
  t.equal(normaliseHost('hello.default.example.com.'), 'hello.default.example.com')
  t.equal(normaliseHost('hello.default.example.com.:80'), 'hello.default.example.com')
  t.equal(normaliseHost('[::1]:8080'), '[::1]')
  t.equal(normaliseHost('[::1]'), '[::1]')
  t.equal(normaliseHost('localhost'), 'localhost')
  t.end()
})

t.test('routeForHost: main host, tag hosts, case and port ignored', (t) => {
  const table = new RouteTable()
  const r = route([pinned('hello-00001', 50, 'blue'), latest(50, 'green')])
  table.set(r)
  t.same(table.routeForHost('hello.default.example.com'), { route: r, revision: undefined, tag: undefined })
  t.same(table.routeForHost('HELLO.default.example.com:31080'), { route: r, revision: undefined, tag: undefined })
  t.same(table.routeForHost('blue-hello.default.example.com'), { route: r, revision: 'hello-00001', tag: 'blue' })
  t.same(table.routeForHost('green-hello.default.example.com:80'), { route: r, revision: 'hello-00002', tag: 'green' })
  t.equal(table.routeForHost('red-hello.default.example.com'), undefined)
  t.equal(table.routeForHost('hello.other.example.com'), undefined)
  t.end()
})

t.test('localhost and 127.0.0.1 map to the only Service, and to nothing once there are two', (t) => {
  const table = new RouteTable()
  const hello = route([latest(100)])
  table.set(hello)
  for (const h of ['localhost', 'localhost:8080', '127.0.0.1:8080', '[::1]:8080', 'LOCALHOST']) {
    t.equal(table.routeForHost(h)?.route, hello, h)
  }
  table.set(route([latest(100)], ready('bye-00001'), 'bye'))
  t.equal(table.routeForHost('localhost:8080'), undefined, 'ambiguous with two Services')
  t.equal(table.routeForHost('bye.default.example.com')?.route.name, 'bye')
  t.equal(table.delete('default', 'bye'), true)
  t.equal(table.routeForHost('localhost')?.route, hello, 'single again after a delete')
  t.end()
})

t.test('set replaces a Service\'s route; its old tag hosts go away', (t) => {
  const table = new RouteTable()
  table.set(route([latest(100, 'old')]))
  const next = route([latest(100, 'new')])
  table.set(next)
  t.equal(table.routeForHost('old-hello.default.example.com'), undefined)
  t.equal(table.routeForHost('new-hello.default.example.com')?.route, next)
  t.equal(table.routes().length, 1)
  t.equal(table.get('default', 'hello'), next)
  t.end()
})

t.test('a host claimed by another Service is refused and the table is unchanged', (t) => {
  const table = new RouteTable()
  // Tag "a" of Service "b" and Service "a-b" both want a-b.default.example.com.
  const tagged = route([latest(100, 'a')], ready('b-00001'), 'b')
  table.set(tagged)
  t.throws(() => table.set(route([latest(100)], ready('a-b-00001'), 'a-b')), /host a-b\.default\.example\.com of Service default\/a-b is already used by Service default\/b/)
  t.equal(table.routes().length, 1)
  t.equal(table.routeForHost('a-b.default.example.com')?.route, tagged)
  t.end()
})
