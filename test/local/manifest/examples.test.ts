import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseServiceManifests } from '@sluice/local/manifest/service'
import { RevisionTracker } from '@sluice/local/manifest/revisions'
import { resolveRoute, RouteTable } from '@sluice/local/manifest/routes'

const root = join(import.meta.dirname, '../../..')
const read = (p: string) => readFileSync(join(root, p), 'utf8')

t.test('examples/traffic-split: two versions make two revisions split 50/50 with tag hosts', (t) => {
  const versions = parseServiceManifests(read('examples/traffic-split/service.yaml'), 'service.yaml')
  t.equal(versions.length, 2)
  const tracker = new RevisionTracker('traffic-split', 'default')
  const names = versions.map((v) => tracker.apply(v)).map((r) => [r.revision.name, r.created])
  t.same(names, [['traffic-split-00001', true], ['traffic-split-00002', true]])
  t.same(tracker.list().map((r) => r.template.containers[0]!.env), [[{ name: 'TARGET', value: 'blue' }], [{ name: 'TARGET', value: 'green' }]])
  t.same(tracker.list().map((r) => r.template.containers[0]!.args), [['examples/helloworld/app.js'], ['examples/helloworld/app.js']], 'both run the helloworld app')

  const revisions = tracker.list().map((r) => ({ name: r.name, ready: true }))
  const route = resolveRoute(versions[1]!, revisions)
  t.same(route.weights, [{ revision: 'traffic-split-00001', percent: 50 }, { revision: 'traffic-split-00002', percent: 50 }])
  const table = new RouteTable()
  table.set(route)
  t.equal(table.routeForHost('blue-traffic-split.default.example.com')?.revision, 'traffic-split-00001')
  t.equal(table.routeForHost('green-traffic-split.default.example.com')?.revision, 'traffic-split-00002')
  t.equal(table.routeForHost('traffic-split.default.example.com')?.revision, undefined, 'the main host splits')
  t.end()
})

t.test('examples/helloworld: one revision taking all traffic, also reachable as localhost', (t) => {
  const [spec] = parseServiceManifests(read('examples/helloworld/service.yaml'), 'service.yaml')
  const tracker = new RevisionTracker('helloworld')
  const { revision } = tracker.apply(spec!)
  const table = new RouteTable()
  table.set(resolveRoute(spec!, [{ name: revision.name, ready: true }]))
  t.same(table.routeForHost('localhost:8080')?.route.weights, [{ revision: 'helloworld-00001', percent: 100 }])
  t.end()
})
