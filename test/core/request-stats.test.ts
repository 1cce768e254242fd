import t from 'tap'
import { RequestStats } from '@sluice/core/request-stats'

t.test('2 requests of 500 ms each in a 1 s window -> average concurrency 1', (t) => {
  // Back to back.
  const s = new RequestStats(0)
  s.requestIn(0, false)
  s.requestOut(500, false)
  s.requestIn(500, false)
  s.requestOut(1000, false)
  t.same(s.report(1000), {
    averageConcurrency: 1,
    averageProxiedConcurrency: 0,
    requestCount: 2,
    proxiedRequestCount: 0,
  })

  // Overlapping: two at once for half the window.
  const o = new RequestStats(0)
  o.requestIn(0, false)
  o.requestIn(0, false)
  o.requestOut(500, false)
  o.requestOut(500, false)
  t.equal(o.report(1000).averageConcurrency, 1)
  t.end()
})

t.test('averages are time-weighted over the window since the last report', (t) => {
  const s = new RequestStats(1000)
  s.requestIn(1250, false) // one request for the last 750 ms of a 1 s window
  t.equal(s.report(2000).averageConcurrency, 0.75)
  t.end()
})

t.test('proxied requests count towards both total and proxied figures', (t) => {
  const s = new RequestStats(0)
  s.requestIn(0, true) // via the activator for the whole window
  s.requestIn(0, false)
  s.requestIn(500, false)
  s.requestOut(1000, false)
  t.same(s.report(1000), {
    averageConcurrency: 2.5,
    averageProxiedConcurrency: 1,
    requestCount: 3,
    proxiedRequestCount: 1,
  })
  t.equal(s.inFlight, 2)
  t.end()
})

t.test('counts reset per report, current concurrency carries over', (t) => {
  const s = new RequestStats(0)
  s.requestIn(0, true)
  s.requestIn(0, false)
  const first = s.report(1000)
  t.equal(first.requestCount, 2)
  t.equal(first.proxiedRequestCount, 1)
  // No events in the second window: still two in flight, nobody arrived.
  t.same(s.report(2000), {
    averageConcurrency: 2,
    averageProxiedConcurrency: 1,
    requestCount: 0,
    proxiedRequestCount: 0,
  })
  s.requestOut(2500, true)
  s.requestOut(2500, false)
  t.same(s.report(3000), {
    averageConcurrency: 1,
    averageProxiedConcurrency: 0.5,
    requestCount: 0,
    proxiedRequestCount: 0,
  })
  t.equal(s.report(4000).averageConcurrency, 0, 'idle window')
  t.equal(s.inFlight, 0)
  t.end()
})

t.test('negative time deltas are ignored', (t) => {
  const s = new RequestStats(0)
  s.requestIn(500, false)
  // An event stamped before the last change adds no (negative) area; it still counts.
  s.requestIn(400, false)
  s.requestOut(300, false)
  // 500..1000 with one in flight, the out/in pair at 300/400 cancel out.
  const r = s.report(1000)
  t.equal(r.averageConcurrency, 0.5)
  t.equal(r.requestCount, 2)
  t.equal(s.inFlight, 1)
  t.end()
})

t.test('a report stamped earlier than the last change does not shrink the next window', (t) => {
  const s = new RequestStats(0)
  s.requestIn(0, false)
  s.report(1000)
  // Out of order: a report stamped before the previous one integrates nothing...
  s.report(900)
  // ...and the next window is the 1000 ms actually integrated, at concurrency 1.
  t.equal(s.report(2000).averageConcurrency, 1)
  t.end()
})

t.test('report with zero elapsed time returns the current concurrency, no NaN', (t) => {
  const s = new RequestStats(100)
  s.requestIn(100, true)
  s.requestIn(100, false)
  const r = s.report(100)
  t.same(r, {
    averageConcurrency: 2,
    averageProxiedConcurrency: 1,
    requestCount: 2,
    proxiedRequestCount: 1,
  })
  const again = s.report(100)
  t.equal(again.averageConcurrency, 2)
  t.equal(again.requestCount, 0)
  t.end()
})

t.test('fractional millisecond timestamps (performance.now) integrate exactly enough', (t) => {
  const s = new RequestStats(10.25)
  s.requestIn(10.25, false)
  s.requestOut(510.25, false)
  t.equal(Math.round(s.report(1010.25).averageConcurrency * 1e9) / 1e9, 0.5)
  t.end()
})
