// Revision identification (spec §2.5): the Knative-Serving-* headers, else a
// `<rev>.<ns>.svc.<cluster domain>[:port]` Host; Knative's 404 and 500 bodies.
import t from 'tap'
import { identifyRevision, type RevisionLookup } from '@sluice/activator/handler/context-handler'
import { revisionInfo } from '../../helpers/activator.ts'

const known = new Map([['default/hello-00001', revisionInfo('hello-00001')], ['team/api-00002', revisionInfo('api-00002', { namespace: 'team' })]])
const lookup: RevisionLookup = { getRevision: (ns, name) => known.get(`${ns}/${name}`) }
const found = (ns: string, rev: string, host: string, domain = 'cluster.local') => {
  const r = identifyRevision(lookup, ns, rev, host, domain)
  return r.ok ? `${r.revision.namespace}/${r.revision.name}` : `${r.status} ${r.body}`
}

t.test('both headers name the revision; the Host is then ignored', async (t) => {
  t.equal(found('default', 'hello-00001', 'api-00002.team.svc.cluster.local'), 'default/hello-00001')
})

t.test('a missing header falls back to the cluster-local Host, with or without a port', async (t) => {
  t.equal(found('', '', 'api-00002.team.svc.cluster.local'), 'team/api-00002')
  t.equal(found('default', '', 'api-00002.team.svc.cluster.local:80'), 'team/api-00002')
  t.equal(found('', 'hello-00001', 'api-00002.team.svc.cluster.local:8012'), 'team/api-00002')
  t.equal(found('', '', 'api-00002.team.svc.corp.internal', 'corp.internal'), 'team/api-00002', 'the configured cluster domain')
})

t.test('Host forms that do not name a revision: 404 with the (empty) name as Knative prints it', async (t) => {
  const notFound = (name: string) => `404 Error getting active endpoint: revision.serving.knative.dev "${name}" not found\n`
  t.equal(found('', '', 'api-00002.team.svc.example.org'), notFound(''), 'other cluster domain')
  t.equal(found('', '', 'api-00002.team.cluster.local'), notFound(''), 'no svc label')
  t.equal(found('', '', 'api-00002.team.svc'), notFound(''), 'too few labels')
  t.equal(found('', '', 'api-00002.team.svc.cluster.local.'), notFound(''), 'trailing dot is not the domain')
  t.equal(found('', '', 'nope-00001.team.svc.cluster.local'), notFound('nope-00001'))
  t.equal(found('default', 'nope-00001', ''), notFound('nope-00001'))
  t.equal(found('other', 'hello-00001', ''), notFound('hello-00001'), 'the namespace is part of the key')
})

t.test('a lookup that fails -> 500 "Error getting active endpoint: <err>"', async (t) => {
  const failing: RevisionLookup = { getRevision: () => { throw new Error('informer not synced') } }
  t.same(identifyRevision(failing, 'default', 'hello-00001', '', 'cluster.local'), { ok: false, status: 500, body: 'Error getting active endpoint: informer not synced\n' })
})
