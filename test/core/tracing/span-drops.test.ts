// Span drops: counted into the metric at once, reported in one warn line per
// window (a dead collector cannot flood the log), and flushed at shutdown.
import t, { type Test } from 'tap'
import { closeSync, openSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { createLogger } from '@sluice/core/logging'
import { SpanDrops } from '@sluice/core/tracing/span-drops'
import { sleep } from '../../helpers/servers.ts'

function fileLogger(t: Test) {
  const path = join(t.testdir(), 'log.jsonl')
  const fd = openSync(path, 'w')
  t.teardown(() => closeSync(fd))
  return { log: createLogger({ name: 'test', level: 'info', fd }), lines: () => readFileSync(path, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>) }
}

t.test('drops in one window make one warn line with the window\'s count and the total', async (t) => {
  const { log, lines } = fileLogger(t)
  const drops = new SpanDrops(log, 100)
  let counted = 0
  drops.countInto({ inc: (n) => { counted += n } })
  for (let i = 0; i < 50; i++) drops.add(3)
  t.equal(counted, 150, 'the metric counts at once')
  t.same(lines(), [], 'nothing logged before the window ends')
  const deadline = Date.now() + 5000
  while (lines().length === 0 && Date.now() < deadline) await sleep(20)
  const [line, ...rest] = lines()
  t.equal(rest.length, 0, 'one line for the window')
  t.equal(line?.severity, 'WARN')
  t.equal(line?.dropped, 150)
  t.equal(line?.droppedTotal, 150)
  t.match(line?.message, /spans dropped/)
  drops.add(2)
  drops.flush()
  t.equal(lines()[1]?.dropped, 2, 'flush reports the pending count at once')
  t.equal(lines()[1]?.droppedTotal, 152)
})

t.test('drops before the metric existed are carried into it', async (t) => {
  const { log } = fileLogger(t)
  const drops = new SpanDrops(log, 60_000)
  drops.add(7)
  let counted = 0
  drops.countInto({ inc: (n) => { counted += n } })
  t.equal(counted, 7)
  drops.add(0)
  t.equal(drops.total, 7, 'zero is not a drop')
  drops.flush()
})
