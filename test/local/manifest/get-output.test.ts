import t from 'tap'
import {
  noResourcesFound,
  renderRevisions,
  renderRoutes,
  renderServices,
  renderTable,
} from '@sluice/local/manifest/get-output'

// Expected tables are written out by hand in kubectl's layout: each column but
// the last is as wide as its widest cell plus 3 spaces (6 at least).

t.test('get ksvc: NAME URL LATESTCREATED LATESTREADY READY REASON, as kubectl prints it', (t) => {
  const out = renderServices([
    { name: 'helloworld', namespace: 'default', url: 'http://helloworld.default.example.com', latestCreatedRevisionName: 'helloworld-00001', latestReadyRevisionName: 'helloworld-00001', ready: 'True', reason: '' },
  ])
  t.equal(out,
    'NAME         URL                                     LATESTCREATED      LATESTREADY        READY   REASON\n' +
    'helloworld   http://helloworld.default.example.com   helloworld-00001   helloworld-00001   True    \n')
  t.end()
})

t.test('get ksvc: a not-ready Service shows its reason; rows sorted by name', (t) => {
  const out = renderServices([
    { name: 'zeta', namespace: 'default', url: 'http://zeta.default.example.com', latestCreatedRevisionName: 'zeta-00002', latestReadyRevisionName: 'zeta-00001', ready: 'False', reason: 'RevisionMissing' },
    { name: 'a', namespace: 'default', url: 'http://a.default.example.com', latestCreatedRevisionName: 'a-00001', latestReadyRevisionName: '', ready: 'Unknown', reason: 'RevisionMissing' },
  ])
  t.equal(out,
    'NAME   URL                               LATESTCREATED   LATESTREADY   READY     REASON\n' +
    'a      http://a.default.example.com      a-00001                       Unknown   RevisionMissing\n' +
    'zeta   http://zeta.default.example.com   zeta-00002      zeta-00001    False     RevisionMissing\n')
  t.end()
})

t.test('get revisions: NAME CONFIG NAME K8S SERVICE NAME GENERATION READY REASON ACTUAL REPLICAS DESIRED REPLICAS', (t) => {
  const out = renderRevisions([
    { name: 'helloworld-00002', namespace: 'default', configurationName: 'helloworld', generation: 2, ready: 'True', reason: '', actualReplicas: 1, desiredReplicas: 1 },
    { name: 'helloworld-00001', namespace: 'default', configurationName: 'helloworld', generation: 1, ready: 'True', reason: '', actualReplicas: 0, desiredReplicas: 0 },
  ])
  t.equal(out,
    'NAME               CONFIG NAME   K8S SERVICE NAME   GENERATION   READY   REASON   ACTUAL REPLICAS   DESIRED REPLICAS\n' +
    'helloworld-00001   helloworld                       1            True             0                 0\n' +
    'helloworld-00002   helloworld                       2            True             1                 1\n')
  t.end()
})

t.test('get revisions: unknown replica counts are empty cells, as for a missing status field', (t) => {
  const out = renderRevisions([{ name: 'h-00001', namespace: 'default', configurationName: 'h', generation: 1, ready: 'Unknown', reason: 'Deploying' }])
  t.equal(out.split('\n')[1], 'h-00001   h             ' + '                   ' + '1            Unknown   Deploying   ' + '                  ')
  t.end()
})

t.test('get routes: NAME URL READY REASON', (t) => {
  const out = renderRoutes([{ name: 'helloworld', namespace: 'default', url: 'http://helloworld.default.example.com', ready: 'True', reason: '' }])
  t.equal(out,
    'NAME         URL                                     READY   REASON\n' +
    'helloworld   http://helloworld.default.example.com   True    \n')
  t.end()
})

t.test('-A adds a NAMESPACE column first and sorts by namespace, then name', (t) => {
  const out = renderRoutes([
    { name: 'b', namespace: 'team-b', url: 'http://b.team-b.example.com', ready: 'True', reason: '' },
    { name: 'z', namespace: 'default', url: 'http://z.default.example.com', ready: 'True', reason: '' },
    { name: 'a', namespace: 'team-b', url: 'http://a.team-b.example.com', ready: 'True', reason: '' },
  ], { allNamespaces: true })
  t.equal(out,
    'NAMESPACE   NAME   URL                            READY   REASON\n' +
    'default     z      http://z.default.example.com   True    \n' +
    'team-b      a      http://a.team-b.example.com    True    \n' +
    'team-b      b      http://b.team-b.example.com    True    \n')
  t.end()
})

t.test('--no-headers: widths come from the rows alone', (t) => {
  const out = renderRoutes([{ name: 'a', namespace: 'default', url: 'http://a.default.example.com', ready: 'True', reason: '' }], { noHeaders: true })
  t.equal(out, 'a     http://a.default.example.com   True   \n', 'READY is 4+3 wide without its header')
  t.end()
})

t.test('renderTable: minimum column width 6, padding 3, last column unpadded, widths counted in characters', (t) => {
  t.equal(renderTable(['A', 'B', 'C'], [['x', 'é', 'last']]), 'A     B     C\nx     é     last\n')
  t.equal(renderTable(['LONGHEADER', 'B'], [['1', '2']]), 'LONGHEADER   B\n1            2\n')
  t.end()
})

t.test('an empty list: no table, kubectl\'s message', (t) => {
  t.equal(noResourcesFound('default'), 'No resources found in default namespace.\n')
  t.equal(noResourcesFound(), 'No resources found\n')
  t.end()
})
