import t from 'tap'
import { FixedQueue } from '@sluice/core/fixed-queue'

t.test('FIFO: items come out in the order they went in', (t) => {
  const q = new FixedQueue<number>(4)
  for (let i = 0; i < 3; i++) q.push(i)
  t.equal(q.length, 3)
  t.same([q.shift(), q.shift(), q.shift()], [0, 1, 2])
  t.equal(q.length, 0)
  t.end()
})

t.test('shift and peek on an empty queue return undefined', (t) => {
  const q = new FixedQueue<string>()
  t.equal(q.shift(), undefined)
  t.equal(q.peek(), undefined)
  t.equal(q.length, 0)
  q.push('a')
  q.shift()
  t.equal(q.shift(), undefined, 'empty again after draining')
  t.equal(q.length, 0, 'shift on empty does not make length negative')
  t.end()
})

t.test('peek returns the head without removing it', (t) => {
  const q = new FixedQueue<string>()
  q.push('a')
  q.push('b')
  t.equal(q.peek(), 'a')
  t.equal(q.peek(), 'a')
  t.equal(q.length, 2)
  t.equal(q.shift(), 'a')
  t.equal(q.peek(), 'b')
  t.end()
})

t.test('grows past its initial capacity, keeping FIFO order', (t) => {
  const q = new FixedQueue<number>(2)
  for (let i = 0; i < 100; i++) q.push(i)
  t.equal(q.length, 100)
  const out: number[] = []
  while (q.length > 0) out.push(q.shift()!)
  t.same(out, Array.from({ length: 100 }, (_, i) => i))
  t.end()
})

t.test('grows correctly while the ring is wrapped around', (t) => {
  // Capacity 4: fill, drain two, push three more so the tail wraps and the
  // fourth extra push forces a grow with head in the middle of the buffer.
  const q = new FixedQueue<number>(4)
  for (let i = 0; i < 4; i++) q.push(i)
  t.equal(q.shift(), 0)
  t.equal(q.shift(), 1)
  for (let i = 4; i < 10; i++) q.push(i)
  t.equal(q.length, 8)
  const out: number[] = []
  while (q.length > 0) out.push(q.shift()!)
  t.same(out, [2, 3, 4, 5, 6, 7, 8, 9])
  t.end()
})

t.test('interleaved push/shift over many wrap-arounds stays FIFO', (t) => {
  const q = new FixedQueue<number>(8)
  let next = 0
  let expect = 0
  let ok = true
  for (let round = 0; round < 1000; round++) {
    // Push 1..5 items, shift 1..5 items: the length drifts and the ring wraps often.
    const pushes = (round % 5) + 1
    for (let i = 0; i < pushes; i++) q.push(next++)
    const shifts = ((round * 7) % 5) + 1
    for (let i = 0; i < shifts && q.length > 0; i++) if (q.shift() !== expect++) ok = false
  }
  while (q.length > 0) if (q.shift() !== expect++) ok = false
  t.ok(ok, 'every item came out in order')
  t.equal(expect, next, 'every pushed item came out exactly once')
  t.end()
})

t.test('clear empties the queue and it stays usable', (t) => {
  const q = new FixedQueue<number>(4)
  for (let i = 0; i < 6; i++) q.push(i) // grown and wrapped
  q.shift()
  q.clear()
  t.equal(q.length, 0)
  t.equal(q.peek(), undefined)
  t.equal(q.shift(), undefined)
  for (let i = 10; i < 20; i++) q.push(i)
  const out: number[] = []
  while (q.length > 0) out.push(q.shift()!)
  t.same(out, [10, 11, 12, 13, 14, 15, 16, 17, 18, 19])
  t.end()
})

t.test('a non-power-of-two initial capacity still works', (t) => {
  const q = new FixedQueue<number>(5)
  for (let i = 0; i < 12; i++) q.push(i)
  for (let i = 0; i < 12; i++) t.equal(q.shift(), i)
  t.end()
})
