import t from 'tap'
import { assignSlice, pickIndices } from '@sluice/activator/net/assignment'

t.test('pickIndices: TestPickIndices examples (spec §2.8)', (t) => {
  const cases: [string, number, number, number, [number, number, number]][] = [
    ['1 pod, 1 activator', 1, 1, 0, [0, 1, 0]],
    ['1 pod, 2 activators, index 0', 1, 2, 0, [0, 1, 0]],
    ['1 pod, 2 activators, index 1', 1, 2, 1, [0, 1, 0]],
    ['2 pods, 3 activators, index 1', 2, 3, 1, [1, 2, 0]],
    ['2 pods, 3 activators, index 2 wraps', 2, 3, 2, [0, 1, 0]],
    ['3 pods, 3 activators, index 2', 3, 3, 2, [2, 3, 0]],
    ['10 pods, 3 activators, index 0', 10, 3, 0, [0, 3, 1]],
    ['10 pods, 3 activators, index 1', 10, 3, 1, [3, 6, 1]],
    ['10 pods, 3 activators, index 2', 10, 3, 2, [6, 9, 1]],
    ['150 pods, 5 activators, index 0', 150, 5, 0, [0, 30, 0]],
    ['150 pods, 5 activators, index 1', 150, 5, 1, [30, 60, 0]],
    ['150 pods, 5 activators, index 4', 150, 5, 4, [120, 150, 0]],
  ]
  for (const [name, pods, acts, idx, [b, e, r]] of cases) {
    t.same(pickIndices(pods, idx, acts), { begin: b, end: e, remnants: r }, name)
  }
  t.end()
})

const pods = (n: number) => Array.from({ length: n }, (_, i) => `p${String(i).padStart(2, '0')}`)

t.test('assignSlice: unknown index, one pod or one activator -> all pods', (t) => {
  t.same(assignSlice(pods(5), -1, 3), pods(5))
  t.same(assignSlice(pods(1), 2, 3), pods(1))
  t.same(assignSlice(pods(5), 0, 1), pods(5))
  t.same(assignSlice([], 0, 3), [])
  t.end()
})

t.test('assignSlice: 10 pods over 3 activators; the remainder pod goes to index 0 only', (t) => {
  const all = pods(10)
  const a0 = assignSlice(all, 0, 3)
  const a1 = assignSlice(all, 1, 3)
  const a2 = assignSlice(all, 2, 3)
  t.same(a0, ['p00', 'p01', 'p02', 'p09'])
  t.same(a1, ['p03', 'p04', 'p05'])
  t.same(a2, ['p06', 'p07', 'p08'])
  t.same([...a0, ...a1, ...a2].sort(), all, 'every pod assigned exactly once')
  t.end()
})

t.test('assignSlice: 20 pods over 3 activators; remainders to indexes 0 and 1 exclusively', (t) => {
  const all = pods(20)
  const got = [0, 1, 2].map((i) => assignSlice(all, i, 3))
  t.same(got.map((g) => g.length), [7, 7, 6])
  t.same(got.flat().sort(), all)
  t.end()
})

t.test('assignSlice: more activators than pods -> exactly one pod each, wrapping', (t) => {
  const all = pods(2)
  t.same([0, 1, 2, 3].map((i) => assignSlice(all, i, 4)), [['p00'], ['p01'], ['p00'], ['p01']])
  t.end()
})

t.test('assignSlice: returns a copy, never the input array', (t) => {
  const all = pods(3)
  const got = assignSlice(all, -1, 2)
  t.not(got, all)
  t.end()
})
