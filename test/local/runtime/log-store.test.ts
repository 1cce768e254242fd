// The log buffers behind `sluice logs`: bounded per instance (the oldest line
// goes first), a bounded number of instance buffers per service, merged in
// arrival order, filtered by revision, followed live.

import t from 'tap'
import { BUFFERS_PER_SERVICE, formatLogLine, LogStore, type LogLine } from '@sluice/local/runtime/log-store'

const line = (t: number, revision: string, source: string, text: string): LogLine => ({ t, revision, source, text })

t.test('each instance keeps its last N lines; lines merge by time', async (t) => {
  const store = new LogStore(3)
  for (let i = 1; i <= 5; i++) store.add('ns/a', 'a-1-001', line(i * 10, 'a-1', 'a-1-001', `one ${i}`))
  store.add('ns/a', 'a-2-002', line(25, 'a-2', 'a-2-002', 'two'))
  store.add('ns/b', 'b-1-003', line(30, 'b-1', 'b-1-003', 'other service'))
  t.same(store.read({ service: 'ns/a' }).map(formatLogLine), ['[a-2-002] two', '[a-1-001] one 3', '[a-1-001] one 4', '[a-1-001] one 5'], 'the 3 newest of the first instance, merged with the second by time')
  t.same(store.read({ service: 'ns/a', revision: 'a-2' }).map((l) => l.text), ['two'], 'filtered by revision')
  store.dropService('ns/a')
  t.same(store.read({ service: 'ns/a' }), [], 'a deleted service has no lines')
  t.equal(store.read({ service: 'ns/b' }).length, 1, 'others keep theirs')
})

t.test('the number of instance buffers per service is bounded, the oldest dropped', async (t) => {
  const store = new LogStore(10)
  for (let i = 0; i < BUFFERS_PER_SERVICE + 5; i++) store.add('ns/a', `inst-${i}`, line(i, 'r', `inst-${i}`, `hello ${i}`))
  const lines = store.read({ service: 'ns/a' })
  t.equal(lines.length, BUFFERS_PER_SERVICE)
  t.equal(lines[0]!.text, 'hello 5', 'the five oldest buffers went')
})

t.test('follow sees new lines of its service and revision until stopped', async (t) => {
  const store = new LogStore()
  const seen: string[] = []
  const stop = store.follow({ service: 'ns/a', revision: 'r2' }, (l) => seen.push(l.text))
  store.add('ns/a', 'i1', line(1, 'r1', 'i1', 'not this revision'))
  store.add('ns/a', 'i2', line(2, 'r2', 'i2', 'this'))
  store.add('ns/b', 'i3', line(3, 'r2', 'i3', 'not this service'))
  stop()
  store.add('ns/a', 'i2', line(4, 'r2', 'i2', 'after stop'))
  t.same(seen, ['this'])
})
