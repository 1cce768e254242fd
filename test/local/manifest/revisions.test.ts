import t from 'tap'
import { stringify } from 'yaml'
import { ManifestError, parseServiceManifest, type ServiceSpec } from '@sluice/local/manifest/service'
import { RevisionTracker, revisionName } from '@sluice/local/manifest/revisions'

// Manifests under test are free-form YAML trees, often deliberately malformed.
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- see above
type Doc = Record<string, any>

function base(): Doc {
  return {
    apiVersion: 'serving.knative.dev/v1',
    kind: 'Service',
    metadata: { name: 'hello' },
    spec: {
      template: {
        metadata: { annotations: { 'autoscaling.knative.dev/target': '10' } },
        spec: { containers: [{ image: 'img', command: ['node'], args: ['app.js'], env: [{ name: 'TARGET', value: 'one' }] }] },
      },
    },
  }
}

// Every version goes through YAML and the parser, as `sluice run` would.
function spec(change: (d: Doc) => void = () => {}): ServiceSpec {
  const doc = base()
  change(doc)
  return parseServiceManifest(stringify(doc), 'svc.yaml')
}

const setEnv = (value: string) => (d: Doc) => { d.spec.template.spec.containers[0].env[0].value = value }

t.test('revision names are {service}-{generation as 5 digits}', (t) => {
  t.equal(revisionName('hello', 1), 'hello-00001')
  t.equal(revisionName('hello', 42), 'hello-00042')
  t.equal(revisionName('hello', 123456), 'hello-123456')
  t.end()
})

t.test('the first version creates {name}-00001 at generation 1', (t) => {
  const tracker = new RevisionTracker('hello')
  const r = tracker.apply(spec())
  t.equal(r.created, true)
  t.match(r.revision, { name: 'hello-00001', service: 'hello', namespace: 'default', generation: 1 })
  t.equal(tracker.latestCreated?.name, 'hello-00001')
  t.equal(tracker.generation, 1)
  t.end()
})

t.test('applying the same template again creates nothing', (t) => {
  const tracker = new RevisionTracker('hello')
  const first = tracker.apply(spec()).revision
  const again = tracker.apply(spec())
  t.equal(again.created, false)
  t.equal(again.revision, first)
  t.equal(tracker.list().length, 1)
  t.equal(tracker.generation, 1)
  t.end()
})

t.test('a traffic-only or Service-metadata change creates no revision', (t) => {
  const tracker = new RevisionTracker('hello')
  tracker.apply(spec())
  t.equal(tracker.apply(spec((d) => { d.spec.traffic = [{ latestRevision: true, percent: 100, tag: 'current' }] })).created, false)
  t.equal(tracker.apply(spec((d) => { d.metadata.labels = { team: 'a' } })).created, false)
  t.equal(tracker.list().length, 1)
  t.end()
})

t.test('field order in the YAML does not matter', (t) => {
  const tracker = new RevisionTracker('hello')
  tracker.apply(spec())
  const reordered = parseServiceManifest(`
kind: Service
apiVersion: serving.knative.dev/v1
metadata: {name: hello}
spec:
  template:
    spec:
      containers:
        - env: [{value: one, name: TARGET}]
          args: [app.js]
          command: [node]
          image: img
    metadata: {annotations: {autoscaling.knative.dev/target: "10"}}
`, 'reordered.yaml')
  t.equal(tracker.apply(reordered).created, false)
  t.end()
})

t.test('each template change creates the next revision: spec, annotations and labels all count', (t) => {
  const tracker = new RevisionTracker('hello')
  tracker.apply(spec())
  const changes: [string, (d: Doc) => void][] = [
    ['env value', setEnv('two')],
    ['annotation', (d) => { setEnv('two')(d); d.spec.template.metadata.annotations['autoscaling.knative.dev/target'] = '20' }],
    ['label', (d) => { setEnv('two')(d); d.spec.template.metadata.annotations['autoscaling.knative.dev/target'] = '20'; d.spec.template.metadata.labels = { v: '3' } }],
  ]
  changes.forEach(([what, change], i) => {
    const r = tracker.apply(spec(change))
    t.equal(r.created, true, `${what}: created`)
    t.equal(r.revision.name, revisionName('hello', i + 2), `${what}: named by generation`)
  })
  t.same(tracker.list().map((r) => [r.name, r.generation]), [['hello-00001', 1], ['hello-00002', 2], ['hello-00003', 3], ['hello-00004', 4]])
  t.end()
})

t.test('going back to an earlier template is a new revision (Knative compares with the current one only)', (t) => {
  const tracker = new RevisionTracker('hello')
  tracker.apply(spec())
  tracker.apply(spec(setEnv('two')))
  const back = tracker.apply(spec())
  t.equal(back.created, true)
  t.equal(back.revision.name, 'hello-00003')
  t.end()
})

t.test('an explicit spec.template.metadata.name is the revision name; generations still count', (t) => {
  const tracker = new RevisionTracker('hello')
  tracker.apply(spec())
  const byo = tracker.apply(spec((d) => { setEnv('two')(d); d.spec.template.metadata.name = 'hello-blue' }))
  t.match(byo, { created: true, revision: { name: 'hello-blue', generation: 2 } })
  const next = tracker.apply(spec(setEnv('three')))
  t.match(next.revision, { name: 'hello-00003', generation: 3 })
  t.same(tracker.list().map((r) => r.name), ['hello-00001', 'hello-blue', 'hello-00003'])
  t.equal(tracker.get('hello-blue')?.template.containers[0]!.env[0]!.value, 'two')
  t.end()
})

t.test('changing the template but keeping an explicit name is an error naming spec.template.metadata.name', (t) => {
  const tracker = new RevisionTracker('hello')
  tracker.apply(spec((d) => { d.spec.template.metadata.name = 'hello-v1' }))
  const err = t.throws(() => tracker.apply(spec((d) => { setEnv('two')(d); d.spec.template.metadata.name = 'hello-v1' }))) as unknown
  t.ok(err instanceof ManifestError)
  t.match(err, { message: /^svc\.yaml: spec\.template\.metadata\.name: revision "hello-v1" already exists and revisions are immutable/ })
  t.equal(tracker.list().length, 1, 'nothing was created')
  t.equal(tracker.generation, 1)
  t.end()
})

t.test('an explicit name that the next generated name would repeat is an error, not a silent clash', (t) => {
  const tracker = new RevisionTracker('hello')
  tracker.apply(spec((d) => { d.spec.template.metadata.name = 'hello-00002' }))
  t.throws(() => tracker.apply(spec(setEnv('two'))), { name: 'ManifestError', message: /revision "hello-00002" already exists/ })
  t.end()
})

t.test('a tracker refuses another Service\'s spec', (t) => {
  const tracker = new RevisionTracker('other', 'default')
  t.throws(() => tracker.apply(spec()), /RevisionTracker for default\/other was given default\/hello/)
  t.end()
})
