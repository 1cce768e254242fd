// Per-second metric buckets with Knative's TimedFloat64Buckets semantics
// (linear average), and the per-revision collection that subtracts the
// proxied part of queue-proxy stats.
import t from 'tap'
import { emptyStat, type Stat } from '@sluice/core/stat-proto'
import { RevisionMetrics, TimedBuckets } from '@sluice/local/autoscaler/metric-buckets'

const S = 1000
const stat = (fields: Partial<Stat>): Stat => ({ ...emptyStat('p'), ...fields })

t.test('values in the same second add up; the average is over the seconds since the first write', async (t) => {
  const b = new TimedBuckets(10 * S)
  t.ok(b.isEmpty(0), 'empty before any write')
  t.equal(b.windowAverage(0), 0)
  b.record(100 * S + 100, 3)
  b.record(100 * S + 900, 4) // same second: bucket 100 holds 7
  t.equal(b.windowAverage(100 * S + 999), 7, 'one second of data: 7 / 1')
  b.record(101 * S, 1)
  // buckets 100..101 = 7, 1 -> 8 / 2
  t.equal(b.windowAverage(101 * S + 500), 4, 'a partial window divides by the seconds that have data')
  t.notOk(b.isEmpty(101 * S))
})

t.test('seconds without data between writes count as zero', async (t) => {
  const b = new TimedBuckets(10 * S)
  b.record(0, 6)
  b.record(3 * S, 6)
  // buckets 0..3 = 6, 0, 0, 6 -> 12 / 4
  t.equal(b.windowAverage(3 * S), 3)
})

t.test('seconds after the last write are not counted; buckets that left the window are', async (t) => {
  const b = new TimedBuckets(10 * S)
  for (let s = 0; s < 10; s++) b.record(s * S, s + 1) // buckets 0..9 = 1..10
  t.equal(b.windowAverage(9 * S), 5.5, 'full window 1..10: 55 / 10')
  // At second 12 the window is 3..12; data ends at 9: buckets 3..9 = 4..10 -> 49 / 7
  t.equal(b.windowAverage(12 * S), 7, 'average over the seconds of the window that had data')
  // At second 19 the window is 10..19: no data in it
  t.equal(b.windowAverage(19 * S), 0, 'nothing left in the window: 0')
  t.notOk(b.isEmpty(19 * S), 'IsEmpty only after MORE than a window since the last write (10 s)')
  t.ok(b.isEmpty(20 * S), '11 s after the last write: empty')
})

t.test('after a full window without data the window starts afresh', async (t) => {
  const b = new TimedBuckets(10 * S)
  b.record(0, 100)
  b.record(10 * S, 2) // 10 s later: the first write is reset
  t.equal(b.windowAverage(10 * S), 2, 'not (100 + 2) / 11 nor 2 / 11: one fresh bucket')
  const c = new TimedBuckets(10 * S)
  c.record(0, 100)
  c.record(9 * S, 2)
  // window 0..9: 102 / 10
  t.equal(c.windowAverage(9 * S), 10.2, 'still within the window: kept')
})

t.test('late values within the window land in their bucket; older ones are dropped', async (t) => {
  const b = new TimedBuckets(5 * S)
  b.record(10 * S, 5)
  b.record(8 * S, 5) // before the first write but within the window: first write moves back
  // buckets 8..10 = 5, 0, 5 -> 10 / 3
  t.equal(b.windowAverage(10 * S).toFixed(4), (10 / 3).toFixed(4))
  b.record(5 * S, 1000) // 10 - 5 >= window: dropped
  t.equal(b.windowAverage(10 * S).toFixed(4), (10 / 3).toFixed(4), 'a value a whole window old changes nothing')
})

t.test('a bucket slot reused for a later second starts from zero', async (t) => {
  const b = new TimedBuckets(3 * S)
  b.record(0, 9)
  b.record(1 * S, 9)
  b.record(2 * S, 9)
  b.record(3 * S, 3) // same slot as second 0
  // window 1..3: 9 + 9 + 3 = 21 / 3
  t.equal(b.windowAverage(3 * S), 7)
})

t.test('RevisionMetrics: queue-proxy stats count minus their proxied part, activator stats in full', async (t) => {
  const m = new RevisionMetrics(60 * S, 6 * S)
  t.equal(m.observe('concurrency', 0), undefined, 'no data: no signal')
  // Second 0: two queue-proxies and the activator.
  m.record(0, stat({ averageConcurrentRequests: 5, averageProxiedConcurrentRequests: 3, requestCount: 10, proxiedRequestCount: 4 }))
  m.record(300, stat({ averageConcurrentRequests: 2, averageProxiedConcurrentRequests: 0, requestCount: 6 }))
  m.record(600, stat({ averageConcurrentRequests: 3, requestCount: 4 })) // activator: proxied fields 0
  // concurrency = (5 - 3) + 2 + 3 = 7; rps = (10 - 4) + 6 + 4 = 16
  t.same(m.observe('concurrency', 999), { stable: 7, panic: 7 })
  t.same(m.observe('rps', 999), { stable: 16, panic: 16 })
})

t.test('RevisionMetrics: stable and panic windows average separately; no signal after a silent stable window', async (t) => {
  const m = new RevisionMetrics(60 * S, 6 * S)
  for (let s = 0; s < 60; s++) m.record(s * S, stat({ averageConcurrentRequests: s < 54 ? 1 : 11 }))
  // stable: 54 x 1 + 6 x 11 = 120 / 60 = 2; panic (54..59): 66 / 6 = 11
  t.same(m.observe('concurrency', 59 * S + 500), { stable: 2, panic: 11 })
  t.same(m.observe('concurrency', 119 * S), { stable: 0, panic: 0 }, 'a window after the last data: 0, still a signal')
  t.equal(m.observe('concurrency', 120 * S), undefined, 'more than a window: no signal')
  m.record(200 * S, stat({ averageConcurrentRequests: Number.NaN, requestCount: 2 }))
  t.equal(m.observe('concurrency', 200 * S), undefined, 'a NaN concurrency is not recorded')
  t.same(m.observe('rps', 200 * S), { stable: 2, panic: 2 })
})
