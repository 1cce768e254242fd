// examples/traffic-split through the real local stack: two revisions of one
// Service, both running; the main host splits 50/50 between them and each
// tag host always reaches its own revision.

import t from 'tap'
import http from 'node:http'
import { join } from 'node:path'
import { revision, ROOT, send, startRuntime, waitFor } from '../../helpers/local.ts'

const MAIN = 'traffic-split.default.example.com'

t.test('examples/traffic-split: both revisions serve the main host, tag hosts reach their revision', async (t) => {
  const run = await startRuntime(join(ROOT, 'examples/traffic-split/service.yaml'))
  t.teardown(() => run.stop())
  t.teardown(() => { if (!t.passing()) t.comment(run.lines.join('\n')) })
  const { rt, url } = run
  t.ok(await waitFor(() => revision(rt, 'traffic-split-00001').ready && revision(rt, 'traffic-split-00002').ready, 15_000), 'both revisions become ready')

  const svc = rt.status().services[0]!
  t.same(svc.traffic, [
    { revision: 'traffic-split-00001', percent: 50, tag: 'blue', url: 'http://blue-traffic-split.default.example.com' },
    { revision: 'traffic-split-00002', percent: 50, tag: 'green', url: 'http://green-traffic-split.default.example.com' },
  ], 'the route\'s traffic as status reports it')

  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 })
  t.teardown(() => agent.destroy())
  const bodies = async (host: string, n: number) => {
    const seen: Record<string, number> = {}
    for (let i = 0; i < n; i++) {
      const r = await send(url, { host, agent })
      const key = r.status === 200 ? r.body.trim() : `status ${r.status}`
      seen[key] = (seen[key] ?? 0) + 1
    }
    return seen
  }

  // 60 requests at 50/50: fewer than 15 for either side has odds below 1 in 10^4.
  const split = await bodies(MAIN, 60)
  t.same(Object.keys(split).sort(), ['Hello blue!', 'Hello green!'], `the main host reaches both revisions (${JSON.stringify(split)})`)
  t.ok(split['Hello blue!']! >= 15 && split['Hello green!']! >= 15, 'about half each')

  t.same(await bodies('blue-traffic-split.default.example.com', 10), { 'Hello blue!': 10 }, 'the blue tag host always reaches traffic-split-00001')
  t.same(await bodies('green-traffic-split.default.example.com', 10), { 'Hello green!': 10 }, 'the green tag host always reaches traffic-split-00002')
  t.same(await bodies('Blue-Traffic-Split.default.example.com:80', 2), { 'Hello blue!': 2 }, 'hosts match case-insensitively, port ignored')
  t.equal((await send(url, { host: 'other.default.example.com' })).status, 404, 'an unknown host gets 404')
})
