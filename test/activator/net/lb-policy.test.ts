import t from 'tap'
import {
  firstAvailable, leastLoaded, policyForConcurrency, randomChoice2, roundRobin, PodTracker,
} from '@sluice/activator/net/lb-policy'

function trackers(n: number, cc: number): PodTracker[] {
  return Array.from({ length: n }, (_, i) => new PodTracker(`10.0.0.${i}:8012`, cc))
}

/** Returns the given values in turn (deterministic "random"). */
function seq(...values: number[]): () => number {
  let i = 0
  return () => values[i++ % values.length]!
}

t.test('policy by containerConcurrency: p2c for 0, first-available for 1..3, round-robin above (quirk 7.7)', (t) => {
  t.equal(policyForConcurrency(0), 'random-choice-2')
  t.equal(policyForConcurrency(1), 'first-available')
  t.equal(policyForConcurrency(3), 'first-available')
  t.equal(policyForConcurrency(4), 'round-robin')
  t.equal(policyForConcurrency(100), 'round-robin')
  t.end()
})

t.test('tracker: cc slots reservable, then full until released; cc=0 always reservable', (t) => {
  const tr = new PodTracker('a:1', 2)
  t.ok(tr.tryReserve())
  t.ok(tr.canReserve())
  t.ok(tr.tryReserve())
  t.notOk(tr.canReserve())
  t.notOk(tr.tryReserve())
  t.equal(tr.inFlight, 2)
  tr.release()
  t.equal(tr.inFlight, 1)
  t.ok(tr.tryReserve())
  const open = new PodTracker('b:1', 0)
  t.equal(open.breaker, null)
  for (let i = 0; i < 1000; i++) t.ok(open.tryReserve())
  t.equal(open.inFlight, 1000)
  t.end()
})

t.test('first-available: takes the first tracker with a free slot, null when all are full', (t) => {
  const ts = trackers(3, 1)
  t.equal(firstAvailable(ts), ts[0])
  t.equal(firstAvailable(ts), ts[1])
  ts[0]!.release()
  t.equal(firstAvailable(ts), ts[0], 'a freed earlier pod is preferred again')
  t.equal(firstAvailable(ts), ts[2])
  t.equal(firstAvailable(ts), null)
  t.equal(firstAvailable([]), null)
  t.end()
})

t.test('round-robin: continues after the last pick and skips full trackers', (t) => {
  const ts = trackers(3, 2)
  const st = { index: 0 }
  const picks = Array.from({ length: 6 }, () => roundRobin(ts, st)!.dest)
  t.same(picks, [ts[0], ts[1], ts[2], ts[0], ts[1], ts[2]].map((x) => x!.dest))
  t.equal(roundRobin(ts, st), null, 'all full')
  ts[1]!.release()
  t.equal(roundRobin(ts, st), ts[1], 'only the freed one')
  t.end()
})

t.test('round-robin: resets to index 0 when the tracker list shrank', (t) => {
  const ts = trackers(4, 10)
  const st = { index: 3 }
  t.equal(roundRobin(ts.slice(0, 2), st), ts[0])
  t.equal(st.index, 1)
  t.end()
})

t.test('random-choice-2: the less loaded of two distinct random picks wins', (t) => {
  const ts = trackers(4, 0)
  ts[1]!.inFlight = 5
  ts[3]!.inFlight = 1
  // random 0.3 -> a = 1; 0.9 -> b = floor(0.9*3) = 2, >= a so 3.
  const pick = randomChoice2(ts, seq(0.3, 0.9))
  t.equal(pick, ts[3])
  t.equal(ts[3]!.inFlight, 2, 'weight incremented on pick')
  t.end()
})

t.test('random-choice-2: second index never equals the first', (t) => {
  const ts = trackers(3, 0)
  // a = floor(0.99*3) = 2; b = floor(0.99*2) = 1 (< a, kept) -> compares 2 and 1.
  ts[2]!.inFlight = 9
  t.equal(randomChoice2(ts, seq(0.99, 0.99)), ts[1])
  // a = 0; b = floor(0*2) = 0 >= a -> 1.
  ts[0]!.inFlight = 9
  t.equal(randomChoice2(ts, seq(0, 0)), ts[1])
  t.end()
})

t.test('random-choice-2: one tracker is taken, two are compared, ties broken at random', (t) => {
  const one = trackers(1, 0)
  t.equal(randomChoice2(one, seq(0.5)), one[0])
  const two = trackers(2, 0)
  t.equal(randomChoice2(two, seq(0.7)), two[0], 'tie, random >= 0.5 keeps the first')
  t.equal(randomChoice2(two, seq(0.7)), two[1], 'now lighter')
  t.equal(randomChoice2(two, seq(0.2)), two[1], 'tie, random < 0.5 takes the other')
  t.equal(randomChoice2([], Math.random), null)
  t.end()
})

t.test('random-choice-2 with finite capacity (override): falls back to any pod with a free slot', (t) => {
  const ts = trackers(3, 1)
  ts[0]!.tryReserve()
  ts[1]!.tryReserve()
  // a = 0, b = floor(0.1*2)=0 -> 1: both full, 2 is free.
  t.equal(randomChoice2(ts, seq(0, 0.1, 0.9)), ts[2])
  t.equal(randomChoice2(ts, seq(0, 0.1, 0.9)), null, 'all full')
  t.end()
})

t.test('least-loaded: fewest in-flight among reservable trackers; ties rotate', (t) => {
  const ts = trackers(3, 3)
  const st = { index: 0 }
  ts[0]!.tryReserve()
  ts[0]!.tryReserve()
  ts[1]!.tryReserve()
  t.equal(leastLoaded(ts, st), ts[2], 'idle pod first')
  t.equal(leastLoaded(ts, st), ts[1], 'tie between 1 and 2 (1 each): first after the last pick, wrapping')
  t.equal(leastLoaded(ts, st), ts[2])
  t.equal(leastLoaded(ts, st), ts[0], 'all at 2 in flight: rotation continues')
  t.equal(ts.map((x) => x.inFlight).join(), '3,2,2')
  t.equal(leastLoaded(ts, st), ts[1], 'full pod 0 skipped')
  t.equal(leastLoaded(ts, st), ts[2])
  t.equal(leastLoaded(ts, st), null, 'all full')
  t.end()
})

t.test('least-loaded: equally idle pods take turns', (t) => {
  const ts = trackers(4, 10)
  const st = { index: 0 }
  const got = []
  for (let i = 0; i < 4; i++) {
    const p = leastLoaded(ts, st)!
    got.push(p.dest)
    p.release()
  }
  t.same(got, ts.map((x) => x.dest))
  t.end()
})
