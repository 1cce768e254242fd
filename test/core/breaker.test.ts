import t from 'tap'
import { Acquire, Breaker, type BreakerWaiter } from '@sluice/core/breaker'

class Waiter implements BreakerWaiter {
  breakerQueued?: boolean
  acquired = 0
  readonly id: number
  constructor(id = 0) {
    this.id = id
  }
  onAcquire(): void {
    this.acquired++
  }
}

t.test('constructor: queue depth must be > 0', (t) => {
  t.throws(() => new Breaker({ queueDepth: 0, maxConcurrency: 1 }), RangeError)
  t.throws(() => new Breaker({ queueDepth: -1, maxConcurrency: 1 }), RangeError)
  t.throws(() => new Breaker({ queueDepth: NaN, maxConcurrency: 1 }), RangeError)
  t.end()
})

t.test('constructor: max concurrency must be >= 0', (t) => {
  t.throws(() => new Breaker({ queueDepth: 1, maxConcurrency: -1 }), RangeError)
  t.doesNotThrow(() => new Breaker({ queueDepth: 1, maxConcurrency: 0 }))
  t.end()
})

t.test('constructor: initial capacity must be within [0, maxConcurrency]', (t) => {
  t.throws(() => new Breaker({ queueDepth: 1, maxConcurrency: 2, initialCapacity: -1 }), RangeError)
  t.throws(() => new Breaker({ queueDepth: 1, maxConcurrency: 2, initialCapacity: 3 }), RangeError)
  t.equal(new Breaker({ queueDepth: 1, maxConcurrency: 2, initialCapacity: 0 }).capacity, 0)
  t.equal(new Breaker({ queueDepth: 1, maxConcurrency: 2 }).capacity, 2, 'defaults to maxConcurrency')
  t.end()
})

t.test('cc=1, depth=1: first acquired, second queued, third full', (t) => {
  const b = new Breaker({ queueDepth: 1, maxConcurrency: 1 })
  const [w1, w2, w3] = [new Waiter(1), new Waiter(2), new Waiter(3)]
  t.equal(b.acquire(w1), Acquire.acquired)
  t.equal(b.acquire(w2), Acquire.queued)
  t.equal(b.acquire(w3), Acquire.full)
  t.equal(b.inFlight, 1)
  t.equal(b.pending, 1)
  t.equal(b.load, 2)
  t.equal(w1.acquired + w2.acquired + w3.acquired, 0, 'an immediate acquire does not call onAcquire')
  t.end()
})

t.test('release hands the slot to the queued waiter, calling onAcquire once', (t) => {
  const b = new Breaker({ queueDepth: 1, maxConcurrency: 1 })
  const w2 = new Waiter()
  b.acquire(new Waiter())
  b.acquire(w2)
  b.release()
  t.equal(w2.acquired, 1)
  t.equal(b.inFlight, 1, 'the slot went straight to the waiter')
  t.equal(b.pending, 0)
  b.release()
  t.equal(w2.acquired, 1, 'not woken again')
  t.equal(b.inFlight, 0)
  t.equal(b.load, 0)
  t.end()
})

t.test('waiters are woken in arrival order', (t) => {
  const b = new Breaker({ queueDepth: 10, maxConcurrency: 1 })
  const order: number[] = []
  const mk = (id: number): BreakerWaiter => ({ onAcquire: () => order.push(id) })
  b.acquire(mk(0))
  for (let i = 1; i <= 5; i++) t.equal(b.acquire(mk(i)), Acquire.queued)
  for (let i = 0; i < 5; i++) b.release()
  t.same(order, [1, 2, 3, 4, 5])
  t.end()
})

t.test('cancel of a queued waiter frees its queue slot and it is never woken', (t) => {
  const b = new Breaker({ queueDepth: 1, maxConcurrency: 1 })
  const [w1, w2, w3] = [new Waiter(1), new Waiter(2), new Waiter(3)]
  b.acquire(w1)
  t.equal(b.acquire(w2), Acquire.queued)
  t.equal(b.cancel(w2), true)
  t.equal(b.pending, 0)
  t.equal(b.load, 1)
  t.equal(b.acquire(w3), Acquire.queued, 'the freed queue slot is usable')
  b.release()
  t.equal(w2.acquired, 0, 'cancelled waiter never woken')
  t.equal(w3.acquired, 1)
  b.release()
  t.equal(w2.acquired, 0)
  t.equal(b.load, 0)
  t.end()
})

t.test('cancel returns false for a waiter that is not queued', (t) => {
  const b = new Breaker({ queueDepth: 1, maxConcurrency: 1 })
  const w1 = new Waiter()
  const w2 = new Waiter()
  b.acquire(w1)
  t.equal(b.cancel(w1), false, 'acquired at once: nothing to cancel')
  b.acquire(w2)
  b.release()
  t.equal(w2.acquired, 1)
  t.equal(b.cancel(w2), false, 'already woken: nothing to cancel')
  t.equal(b.inFlight, 1, 'a late cancel does not touch the counters')
  t.equal(b.pending, 0)
  t.equal(b.cancel(w2), false)
  t.end()
})

t.test('a cancelled waiter object can queue again and is woken exactly once', (t) => {
  const b = new Breaker({ queueDepth: 3, maxConcurrency: 1 })
  const w = new Waiter()
  const other = new Waiter()
  b.acquire(new Waiter())
  b.acquire(w)
  b.acquire(other) // keeps pending > 0 so w's stale entry stays in the ring
  b.cancel(w)
  t.equal(b.acquire(w), Acquire.queued)
  t.equal(b.pending, 2)
  b.release()
  b.release()
  b.release()
  t.equal(w.acquired, 1)
  t.equal(other.acquired, 1)
  t.equal(b.inFlight, 0)
  t.equal(b.pending, 0)
  t.end()
})

t.test('tryAcquire takes a free slot only, never queues', (t) => {
  const b = new Breaker({ queueDepth: 1, maxConcurrency: 2 })
  t.equal(b.tryAcquire(), true)
  t.equal(b.tryAcquire(), true)
  t.equal(b.tryAcquire(), false)
  t.equal(b.inFlight, 2)
  t.equal(b.pending, 0)
  b.release()
  t.equal(b.tryAcquire(), true)
  t.end()
})

t.test('updateConcurrency up wakes as many waiters as new slots', (t) => {
  const b = new Breaker({ queueDepth: 10, maxConcurrency: 5, initialCapacity: 0 })
  const ws = Array.from({ length: 4 }, (_, i) => new Waiter(i))
  for (const w of ws) t.equal(b.acquire(w), Acquire.queued)
  b.updateConcurrency(3)
  t.same(ws.map((w) => w.acquired), [1, 1, 1, 0])
  t.equal(b.inFlight, 3)
  t.equal(b.pending, 1)
  b.updateConcurrency(100) // clamped to maxConcurrency
  t.equal(b.capacity, 5)
  t.same(ws.map((w) => w.acquired), [1, 1, 1, 1])
  t.end()
})

t.test('updateConcurrency down limits new admissions; running requests keep their slots', (t) => {
  const b = new Breaker({ queueDepth: 10, maxConcurrency: 3 })
  t.equal(b.tryAcquire(), true)
  t.equal(b.tryAcquire(), true)
  b.updateConcurrency(1)
  t.equal(b.capacity, 1)
  t.equal(b.inFlight, 2)
  const w = new Waiter()
  t.equal(b.acquire(w), Acquire.queued)
  b.release()
  t.equal(w.acquired, 0, 'inFlight 1 is not below capacity 1')
  b.release()
  t.equal(w.acquired, 1)
  t.equal(b.inFlight, 1)
  b.updateConcurrency(-4)
  t.equal(b.capacity, 0, 'negative capacity clamps to 0')
  t.end()
})

t.test('pending limit is queueDepth + maxConcurrency in total, even with capacity below max', (t) => {
  // Knative's totalSlots (spec §1.8, §2.6 and quirk 8): the activator's breaker
  // with capacity 0 lets queueDepth + maxConcurrency requests wait.
  const b = new Breaker({ queueDepth: 2, maxConcurrency: 3, initialCapacity: 0 })
  for (let i = 0; i < 5; i++) t.equal(b.acquire(new Waiter()), Acquire.queued, `waiter ${i} queued`)
  t.equal(b.acquire(new Waiter()), Acquire.full)
  t.equal(b.load, 5)
  b.updateConcurrency(3)
  t.equal(b.inFlight, 3)
  t.equal(b.pending, 2)
  t.equal(b.acquire(new Waiter()), Acquire.full)
  t.end()
})

t.test('onAcquire may release synchronously: the slot passes on to the next waiter', (t) => {
  const b = new Breaker({ queueDepth: 5, maxConcurrency: 1 })
  const woken: number[] = []
  // A waiter whose client went away gives its slot straight back.
  const quitter: BreakerWaiter = { onAcquire: () => { woken.push(1); b.release() } }
  const keeper = new Waiter()
  b.acquire(new Waiter())
  b.acquire(quitter)
  b.acquire(keeper)
  b.release()
  t.same(woken, [1])
  t.equal(keeper.acquired, 1)
  t.equal(b.inFlight, 1)
  t.equal(b.pending, 0)
  t.end()
})

t.test('maxConcurrency 0: everything waits, nothing runs', (t) => {
  const b = new Breaker({ queueDepth: 2, maxConcurrency: 0 })
  t.equal(b.acquire(new Waiter()), Acquire.queued)
  t.equal(b.acquire(new Waiter()), Acquire.queued)
  t.equal(b.acquire(new Waiter()), Acquire.full)
  t.equal(b.tryAcquire(), false)
  t.end()
})

// Deterministic PRNG so a failure reproduces.
function mulberry32(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

t.test('stress: random acquire/release/cancel/resize keeps the invariants', (t) => {
  for (const seed of [1, 2, 3, 42, 1234]) {
    const rand = mulberry32(seed)
    const maxConcurrency = 1 + Math.floor(rand() * 5)
    const queueDepth = 1 + Math.floor(rand() * 10)
    const b = new Breaker({ queueDepth, maxConcurrency })
    const running: Waiter[] = [] // holders of a slot (acquired at once or woken)
    const queued = new Set<Waiter>()
    const cancelled: Waiter[] = []
    const all: Waiter[] = []
    let violations = 0
    const check = (what: string, ok: boolean): void => {
      if (!ok && violations++ < 5) t.fail(`seed ${seed}: ${what}`)
    }
    class StressWaiter extends Waiter {
      override onAcquire(): void {
        super.onAcquire()
        check('woken waiter was queued', queued.delete(this))
        running.push(this)
      }
    }
    for (let op = 0; op < 20_000; op++) {
      const before = b.inFlight
      const r = rand()
      if (r < 0.45) {
        const w = new StressWaiter(op)
        all.push(w)
        const res = b.acquire(w)
        if (res === Acquire.acquired) running.push(w)
        else if (res === Acquire.queued) queued.add(w)
        else check('full only when load is at the limit', b.load === queueDepth + maxConcurrency)
      } else if (r < 0.8) {
        if (running.length > 0) {
          running.splice(Math.floor(rand() * running.length), 1)
          b.release()
        }
      } else if (r < 0.95) {
        const list = [...queued]
        if (list.length > 0) {
          const w = list[Math.floor(rand() * list.length)]!
          check('cancel of a queued waiter succeeds', b.cancel(w))
          queued.delete(w)
          cancelled.push(w)
        }
      } else {
        b.updateConcurrency(Math.floor(rand() * (maxConcurrency + 2)))
      }
      check('inFlight matches slot holders', b.inFlight === running.length)
      check('pending matches queued waiters', b.pending === queued.size)
      check('inFlight <= maxConcurrency', b.inFlight <= maxConcurrency)
      check('no new admission above capacity', b.inFlight <= before || b.inFlight <= b.capacity)
      check('load <= queueDepth + maxConcurrency', b.load <= queueDepth + maxConcurrency)
      check('pending <= queueDepth at full capacity', b.capacity < maxConcurrency || b.pending <= queueDepth)
      check('nobody waits while a slot is free', b.pending === 0 || b.inFlight >= b.capacity)
    }
    // Drain: restore full capacity and finish everything.
    b.updateConcurrency(maxConcurrency)
    while (running.length > 0) {
      running.pop()
      b.release()
    }
    t.equal(violations, 0, `seed ${seed}: no invariant violated`)
    t.equal(b.load, 0, `seed ${seed}: drained`)
    t.equal(queued.size, 0, `seed ${seed}: every non-cancelled waiter acquired`)
    t.ok(cancelled.every((w) => w.acquired === 0), `seed ${seed}: no cancelled waiter was woken`)
    t.ok(all.every((w) => w.acquired <= 1), `seed ${seed}: no waiter woken twice`)
  }
  t.end()
})
