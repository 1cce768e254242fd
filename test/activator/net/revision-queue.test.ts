import t from 'tap'
import {
  Admit, DEFAULT_REVISION_LIMITS, DEFAULT_TOTAL_LIMITS, QueueBudget, RevisionQueue, waitingBodyCharge, type QueueNode,
} from '@sluice/activator/net/revision-queue'

class W implements QueueNode {
  readonly id: number
  queuedIn?: object | null
  queuePrev?: QueueNode | null
  queueNext?: QueueNode | null
  queueBytes?: number
  constructor(id: number) {
    this.id = id
  }
}

function drain(q: RevisionQueue<W>): number[] {
  const out: number[] = []
  for (let w = q.shift(); w !== undefined; w = q.shift()) out.push(w.id)
  return out
}

t.test('defaults: 10 000 requests / 32 MiB per revision, 20 000 / 48 MiB activator-wide', (t) => {
  t.same(DEFAULT_REVISION_LIMITS, { maxQueued: 10_000, maxBufferedBytes: 32 * 1024 * 1024 })
  t.same(DEFAULT_TOTAL_LIMITS, { maxQueued: 20_000, maxBufferedBytes: 48 * 1024 * 1024 })
  const q = new RevisionQueue<W>()
  t.equal(q.maxQueued, 10_000)
  t.equal(q.budget.maxQueued, 20_000)
  t.end()
})

t.test('charges: nothing without a body; a body its read-ahead (at most 64 KiB) plus 64 KiB', (t) => {
  t.equal(waitingBodyCharge(0), 0)
  t.equal(waitingBodyCharge(1000), 1000 + 64 * 1024)
  t.equal(waitingBodyCharge(1024 * 1024), 128 * 1024)
  t.equal(waitingBodyCharge(-1), 128 * 1024, 'unknown length (chunked): a full read')
  t.equal(Math.floor(DEFAULT_TOTAL_LIMITS.maxBufferedBytes / waitingBodyCharge(1024 * 1024)), 384, '384 waiting 1 MiB uploads activator-wide')
  t.end()
})

t.test('FIFO: shift returns waiters in arrival order; peek leaves the head in place', (t) => {
  const q = new RevisionQueue<W>()
  for (let i = 0; i < 5; i++) t.equal(q.enqueue(new W(i), 0, Infinity), Admit.admitted)
  t.equal(q.peek()!.id, 0)
  t.equal(q.peek()!.id, 0)
  t.equal(q.length, 5)
  t.same(drain(q), [0, 1, 2, 3, 4])
  t.equal(q.shift(), undefined)
  t.equal(q.peek(), undefined)
  t.end()
})

t.test('count limit per revision: the request beyond maxQueued is shed as full', (t) => {
  const q = new RevisionQueue<W>({ maxQueued: 2 })
  t.equal(q.enqueue(new W(1), 0, Infinity), Admit.admitted)
  t.equal(q.enqueue(new W(2), 0, Infinity), Admit.admitted)
  t.equal(q.enqueue(new W(3), 0, Infinity), Admit.full)
  t.equal(q.shedFull, 1)
  q.shift()
  t.equal(q.enqueue(new W(4), 0, Infinity), Admit.admitted, 'room again after a dequeue')
  t.end()
})

t.test('byte limit per revision: admitted while buffered bytes stay within maxBufferedBytes', (t) => {
  const q = new RevisionQueue<W>({ maxBufferedBytes: 1000 })
  t.equal(q.enqueue(new W(1), 600, Infinity), Admit.admitted)
  t.equal(q.enqueue(new W(2), 500, Infinity), Admit.full, '1100 > 1000')
  t.equal(q.enqueue(new W(3), 400, Infinity), Admit.admitted, 'exactly 1000')
  t.equal(q.bufferedBytes, 1000)
  t.equal(q.enqueue(new W(4), 0, Infinity), Admit.admitted, 'a bodiless request still fits')
  q.shift()
  t.equal(q.bufferedBytes, 400, 'bytes freed on dequeue')
  t.end()
})

t.test('activator-wide budget: shared by revisions, by count and by bytes', (t) => {
  const budget = new QueueBudget({ maxQueued: 3, maxBufferedBytes: 100 })
  const a = new RevisionQueue<W>({ budget })
  const b = new RevisionQueue<W>({ budget })
  t.equal(a.enqueue(new W(1), 60, Infinity), Admit.admitted)
  t.equal(b.enqueue(new W(2), 50, Infinity), Admit.full, 'bytes: 110 > 100 across revisions')
  t.equal(b.enqueue(new W(3), 40, Infinity), Admit.admitted)
  t.equal(b.enqueue(new W(4), 0, Infinity), Admit.admitted)
  t.equal(a.enqueue(new W(5), 0, Infinity), Admit.full, 'count: 3 queued activator-wide')
  t.equal(budget.queued, 3)
  t.equal(budget.bufferedBytes, 100)
  t.equal(budget.shedFull, 2)
  t.equal(a.shedFull + b.shedFull, 2)
  a.shift()
  t.equal(budget.queued, 2)
  t.equal(budget.bufferedBytes, 40)
  t.end()
})

t.test('remove (cancel): frees the slot and bytes at once, from anywhere in the queue', (t) => {
  const budget = new QueueBudget()
  const q = new RevisionQueue<W>({ maxQueued: 3, budget })
  const ws = [new W(0), new W(1), new W(2)]
  for (const w of ws) q.enqueue(w, 10, Infinity)
  t.ok(q.remove(ws[1]!), 'middle')
  t.equal(q.length, 2)
  t.equal(q.bufferedBytes, 20)
  t.equal(budget.queued, 2)
  t.equal(budget.bufferedBytes, 20)
  t.equal(ws[1]!.queuedIn, null, 'no reference kept to the queue')
  t.notOk(q.remove(ws[1]!), 'twice: false')
  t.equal(q.enqueue(new W(3), 10, Infinity), Admit.admitted, 'its slot is free')
  t.ok(q.remove(ws[0]!), 'head')
  t.ok(q.remove(new W(9)) === false, 'a stranger: false')
  t.same(drain(q), [2, 3])
  t.equal(q.cancelled, 2)
  t.equal(budget.queued, 0)
  t.end()
})

t.test('remove: the tail can be removed and appends still work', (t) => {
  const q = new RevisionQueue<W>()
  const a = new W(1)
  const b = new W(2)
  q.enqueue(a, 0, Infinity)
  q.enqueue(b, 0, Infinity)
  q.remove(b)
  q.enqueue(new W(3), 0, Infinity)
  q.remove(a)
  q.enqueue(new W(4), 0, Infinity)
  t.same(drain(q), [3, 4])
  t.end()
})

t.test('a waiter from another queue cannot be removed here', (t) => {
  const q1 = new RevisionQueue<W>()
  const q2 = new RevisionQueue<W>()
  const w = new W(1)
  q1.enqueue(w, 5, Infinity)
  t.notOk(q2.remove(w))
  t.equal(q1.length, 1)
  t.end()
})

t.test('estimator: wait of the k-th in line = k x mean service time / capacity', (t) => {
  const q = new RevisionQueue<W>({ minSamples: 3 })
  q.capacity = 4
  t.ok(Number.isNaN(q.estimateWaitMs(1)), 'no samples: unknown')
  q.recordService(100)
  q.recordService(100)
  t.ok(Number.isNaN(q.estimateWaitMs(1)), 'fewer than minSamples: unknown')
  q.recordService(100)
  t.equal(q.meanServiceMs, 100)
  t.equal(q.estimateWaitMs(8), 200)
  q.capacity = 0
  t.ok(Number.isNaN(q.estimateWaitMs(1)), 'no pods: unknown (scale from zero waits)')
  t.end()
})

t.test('estimator: exponentially weighted mean, first sample taken as is', (t) => {
  const q = new RevisionQueue<W>({ minSamples: 1 })
  q.recordService(1000)
  t.equal(q.meanServiceMs, 1000)
  q.recordService(0)
  t.equal(q.meanServiceMs, 900, 'alpha 0.1')
  q.recordService(-5)
  q.recordService(NaN)
  t.equal(q.meanServiceMs, 900, 'junk ignored')
  t.end()
})

t.test('deadline (opt-in): shed when the expected wait exceeds the remaining deadline', (t) => {
  const q = new RevisionQueue<W>({ minSamples: 1, shedOnDeadlineEstimate: true })
  q.capacity = 2
  q.recordService(1000) // 2 slots, 1 s each: the k-th waits k * 500 ms
  t.equal(q.enqueue(new W(1), 0, 600), Admit.admitted, 'first in line: 500 ms <= 600')
  t.equal(q.enqueue(new W(2), 0, 600), Admit.deadline, 'second: 1000 ms > 600')
  t.equal(q.enqueue(new W(3), 0, 1000), Admit.admitted, 'second with 1 s left: fits')
  t.equal(q.enqueue(new W(4), 0, Infinity), Admit.admitted, 'no deadline')
  t.equal(q.shedDeadline, 1)
  t.equal(q.budget.shedDeadline, 1)
  t.end()
})

t.test('deadline, default: the estimate never sheds; only a spent deadline is refused', (t) => {
  const q = new RevisionQueue<W>({ minSamples: 1 })
  q.capacity = 1
  q.recordService(1000)
  for (let i = 0; i < 5; i++) t.equal(q.enqueue(new W(i), 0, 600), Admit.admitted, `position ${i + 1}: ${i + 1} s expected, 600 ms left`)
  t.equal(q.enqueue(new W(9), 0, 0), Admit.deadline)
  t.equal(q.shedDeadline, 1)
  t.end()
})

t.test('deadline: with no estimate requests are admitted (wait up to their timeout); a spent deadline is shed', (t) => {
  const q = new RevisionQueue<W>()
  t.equal(q.enqueue(new W(1), 0, 1), Admit.admitted)
  t.equal(q.enqueue(new W(2), 0, 0), Admit.deadline)
  t.end()
})

t.test('full is reported before deadline', (t) => {
  const q = new RevisionQueue<W>({ maxQueued: 1, minSamples: 1 })
  q.capacity = 1
  q.recordService(10_000)
  q.enqueue(new W(1), 0, Infinity)
  t.equal(q.enqueue(new W(2), 0, 1), Admit.full)
  t.end()
})

t.test('Retry-After: backlog drain time in seconds, clamped to [1, max]; default without estimate', (t) => {
  const q = new RevisionQueue<W>({ minSamples: 1, defaultRetryAfterSec: 7, maxRetryAfterSec: 30 })
  t.equal(q.retryAfterSec(), 7, 'no estimate')
  q.capacity = 10
  q.recordService(1000)
  t.equal(q.retryAfterSec(), 1, 'empty queue: at least 1')
  for (let i = 0; i < 25; i++) q.enqueue(new W(i), 0, Infinity)
  t.equal(q.retryAfterSec(), 3, '25 * 1000 / 10 = 2.5 s -> 3')
  for (let i = 0; i < 1000; i++) q.enqueue(new W(i), 0, Infinity)
  t.equal(q.retryAfterSec(), 30, 'capped')
  t.end()
})

t.test('many cancellations under a stuck queue leave no references behind (no growth)', (t) => {
  // The #13211 pattern: a revision never comes up, requests time out and new ones arrive.
  const budget = new QueueBudget({ maxQueued: 100 })
  const q = new RevisionQueue<W>({ budget })
  const live: W[] = []
  for (let i = 0; i < 100; i++) {
    const w = new W(i)
    q.enqueue(w, 1, Infinity)
    live.push(w)
  }
  let removed = 0
  let admitted = 0
  for (let round = 0; round < 1000; round++) {
    if (q.remove(live.shift()!)) removed++
    const w = new W(1000 + round)
    if (q.enqueue(w, 1, Infinity) === Admit.admitted) admitted++
    live.push(w)
  }
  t.equal(removed, 1000)
  t.equal(admitted, 1000, 'each cancellation made room at once')
  t.equal(q.length, 100)
  t.equal(budget.bufferedBytes, 100)
  t.same(drain(q), live.map((w) => w.id), 'exactly the live ones, in order')
  t.end()
})
