import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { stringify } from 'yaml'
import {
  ManifestError,
  parseServiceManifest,
  parseServiceManifests,
  servingContainer,
  type ServiceSpec,
} from '@sluice/local/manifest/service'
import { parseReadinessProbe } from '@sluice/queue-proxy/readiness/probe-spec'

// Manifests under test are free-form YAML trees, often deliberately malformed.
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- see above
type Doc = Record<string, any>

const root = join(import.meta.dirname, '../../..')

// A minimal valid Service; tests change what they are about.
function base(): Doc {
  return {
    apiVersion: 'serving.knative.dev/v1',
    kind: 'Service',
    metadata: { name: 'hello' },
    spec: { template: { spec: { containers: [{ image: 'img', command: ['node'], args: ['app.js'] }] } } },
  }
}

function parse(doc: Doc): ServiceSpec {
  return parseServiceManifest(stringify(doc), 'test.yaml')
}

function withContainer(patch: Record<string, unknown>): Doc {
  const doc = base()
  Object.assign(doc.spec.template.spec.containers[0], patch)
  return doc
}

function errorOf(fn: () => unknown): ManifestError | undefined {
  try {
    fn()
  } catch (err) {
    if (err instanceof ManifestError) return err
    throw err
  }
  return undefined
}

t.test('the helloworld sample parses into the expected spec', (t) => {
  const spec = parseServiceManifest(readFileSync(join(root, 'examples/helloworld/service.yaml'), 'utf8'), 'service.yaml')
  t.same(spec, {
    name: 'helloworld',
    namespace: 'default',
    labels: {},
    annotations: {},
    template: {
      name: undefined,
      labels: {},
      annotations: { 'autoscaling.knative.dev/target': '10' },
      autoscaling: {
        minScale: undefined, maxScale: undefined, initialScale: undefined, target: 10, targetUtilizationPercentage: undefined,
        metric: 'concurrency', windowMs: undefined, panicWindowPercentage: undefined, panicThresholdPercentage: undefined,
        scaleToZeroPodRetentionPeriodMs: undefined, scaleDownDelayMs: undefined, targetBurstCapacity: undefined,
      },
      containerConcurrency: 0,
      timeoutSeconds: 300,
      responseStartTimeoutSeconds: undefined,
      idleTimeoutSeconds: undefined,
      containers: [{
        name: 'user-container',
        image: 'ghcr.io/knative/helloworld-go:latest',
        command: ['node'],
        args: ['examples/helloworld/app.js'],
        workingDir: undefined,
        env: [{ name: 'TARGET', value: 'Sluice' }],
        serving: true,
        port: 8080,
        portName: '',
        readinessProbe: '{"tcpSocket":{"port":8080,"host":"127.0.0.1"},"successThreshold":1}',
      }],
    },
    traffic: [{ tag: undefined, revisionName: undefined, latestRevision: true, percent: 100 }],
    source: 'service.yaml',
    warnings: [],
  })
  t.end()
})

t.test('defaults as Knative\'s webhook: namespace default, timeout 300, cc 0, port 8080, 100% to the latest revision', (t) => {
  const spec = parse(base())
  t.equal(spec.namespace, 'default')
  t.equal(spec.template.timeoutSeconds, 300)
  t.equal(spec.template.containerConcurrency, 0)
  const c = servingContainer(spec.template)
  t.equal(c.name, 'user-container')
  t.equal(c.port, 8080)
  t.same(c.env, [])
  t.same(spec.traffic, [{ tag: undefined, revisionName: undefined, latestRevision: true, percent: 100 }])
  t.equal(spec.template.autoscaling.metric, 'concurrency')
  t.end()
})

t.test('explicit values win over defaults; timeout up to 3600 s and cc up to 1000 are accepted', (t) => {
  const doc = withContainer({ ports: [{ containerPort: 3000, name: 'h2c' }], workingDir: '/srv', env: [{ name: 'EMPTY' }] })
  doc.metadata.namespace = 'team-a'
  Object.assign(doc.spec.template.spec, { timeoutSeconds: 3600, containerConcurrency: 1000, responseStartTimeoutSeconds: 30, idleTimeoutSeconds: 60 })
  const spec = parse(doc)
  t.equal(spec.namespace, 'team-a')
  t.equal(spec.template.timeoutSeconds, 3600)
  t.equal(spec.template.containerConcurrency, 1000)
  t.equal(spec.template.responseStartTimeoutSeconds, 30)
  t.equal(spec.template.idleTimeoutSeconds, 60)
  const c = servingContainer(spec.template)
  t.equal(c.port, 3000)
  t.equal(c.portName, 'h2c')
  t.equal(c.workingDir, '/srv')
  t.same(c.env, [{ name: 'EMPTY', value: '' }], 'an env var without value is the empty string')
  t.equal(c.readinessProbe, '{"tcpSocket":{"port":3000,"host":"127.0.0.1"},"successThreshold":1}')
  t.end()
})

t.test('timeoutSeconds 0 is kept (Knative only defaults an absent timeout)', (t) => {
  const doc = base()
  doc.spec.template.spec.timeoutSeconds = 0
  t.equal(parse(doc).template.timeoutSeconds, 0)
  t.end()
})

t.test('ParseOptions change the timeout default and bound', (t) => {
  const doc = base()
  t.equal(parseServiceManifest(stringify(doc), 'x', { defaultTimeoutSeconds: 120 }).template.timeoutSeconds, 120)
  doc.spec.template.spec.timeoutSeconds = 700
  t.match(errorOf(() => parseServiceManifest(stringify(doc), 'x', { maxTimeoutSeconds: 600 }))?.issues,
    [{ path: 'spec.template.spec.timeoutSeconds', message: /0-600/ }])
  t.end()
})

t.test('several containers: the one with a port serves, the others are sidecars without port or probe', (t) => {
  const doc = base()
  doc.spec.template.spec.containers = [
    { command: ['sidecar'] },
    { name: 'web', command: ['node'], args: ['app.js'], ports: [{ containerPort: 9000 }] },
    { command: ['logger'] },
  ]
  const spec = parse(doc)
  t.same(spec.template.containers.map((c) => [c.name, c.serving, c.port, c.readinessProbe !== undefined]), [
    ['user-container-0', false, undefined, false],
    ['web', true, 9000, true],
    ['user-container-2', false, undefined, false],
  ])
  t.equal(servingContainer(spec.template).name, 'web')
  t.end()
})

t.test('SERVING_READINESS_PROBE: Knative defaults, then host 127.0.0.1 and a numeric port as the reconciler writes it', (t) => {
  const cases: [string, unknown, string][] = [
    ['no probe → TCP on the port', undefined, '{"tcpSocket":{"port":8080,"host":"127.0.0.1"},"successThreshold":1}'],
    ['empty probe → TCP on the port', {}, '{"tcpSocket":{"port":8080,"host":"127.0.0.1"},"successThreshold":1}'],
    ['httpGet without port → the user port, scheme HTTP, K-Kubelet-Probe header (1.12)', { httpGet: { path: '/healthz' } },
      '{"httpGet":{"path":"/healthz","port":8080,"host":"127.0.0.1","scheme":"HTTP","httpHeaders":[{"name":"K-Kubelet-Probe","value":"queue"}]},"successThreshold":1}'],
    ['httpGet keeps user headers before the queue header and a numeric port', { httpGet: { path: '/h', port: 9000, host: 'ignored', scheme: 'HTTPS', httpHeaders: [{ name: 'X-A', value: 'b' }] } },
      '{"httpGet":{"path":"/h","port":9000,"host":"127.0.0.1","scheme":"HTTPS","httpHeaders":[{"name":"X-A","value":"b"},{"name":"K-Kubelet-Probe","value":"queue"}]},"successThreshold":1}'],
    ['tcpSocket named port → the user port', { tcpSocket: { port: 'http1' } }, '{"tcpSocket":{"port":8080,"host":"127.0.0.1"},"successThreshold":1}'],
    ['exec → TCP on the port', { exec: { command: ['/ready'] } }, '{"tcpSocket":{"port":8080,"host":"127.0.0.1"},"successThreshold":1}'],
    ['grpc → port filled, service ""', { grpc: {} }, '{"grpc":{"port":8080,"service":""},"successThreshold":1}'],
    ['periodSeconds set → timeout 1 and failureThreshold 3 defaulted', { periodSeconds: 5, successThreshold: 2, initialDelaySeconds: 3 },
      '{"tcpSocket":{"port":8080,"host":"127.0.0.1"},"initialDelaySeconds":3,"timeoutSeconds":1,"periodSeconds":5,"successThreshold":2,"failureThreshold":3}'],
    ['explicit timeout and thresholds kept', { periodSeconds: 10, timeoutSeconds: 4, failureThreshold: 7 },
      '{"tcpSocket":{"port":8080,"host":"127.0.0.1"},"timeoutSeconds":4,"periodSeconds":10,"successThreshold":1,"failureThreshold":7}'],
  ]
  for (const [name, probe, want] of cases) {
    const doc = withContainer(probe === undefined ? { ports: [{ containerPort: 8080, name: 'http1' }] } : { ports: [{ containerPort: 8080, name: 'http1' }], readinessProbe: probe })
    const json = servingContainer(parse(doc).template).readinessProbe!
    t.equal(json, want, name)
    // The queue-proxy must accept what we hand it.
    t.doesNotThrow(() => parseReadinessProbe(json), `${name}: the queue-proxy decodes it`)
  }
  t.end()
})

t.test('an exec probe warns that only a TCP check runs locally', (t) => {
  const spec = parse(withContainer({ readinessProbe: { exec: { command: ['/ready'] } } }))
  t.match(spec.warnings, [/test\.yaml: spec\.template\.spec\.containers\[0\]\.readinessProbe\.exec: .*TCP/])
  t.end()
})

t.test('fields that mean nothing locally are accepted with one warning naming them', (t) => {
  const doc = withContainer({ resources: { limits: { cpu: '1' } }, livenessProbe: { httpGet: { path: '/' } }, imagePullPolicy: 'Always' })
  doc.spec.template.spec.serviceAccountName = 'sa'
  const spec = parse(doc)
  t.same(spec.warnings, [
    'test.yaml: spec.template.spec: ignored locally: serviceAccountName',
    'test.yaml: spec.template.spec.containers[0]: ignored locally: resources, livenessProbe, imagePullPolicy',
  ])
  t.end()
})

t.test('a misspelt autoscaling annotation is a warning with a suggestion', (t) => {
  const doc = base()
  doc.spec.template.metadata = { annotations: { 'autoscaling.knative.dev/minscale': '1' } }
  const spec = parse(doc)
  t.equal(spec.template.autoscaling.minScale, undefined)
  t.match(spec.warnings, [/\["autoscaling\.knative\.dev\/minscale"\]: unknown autoscaling annotation, ignored \(did you mean autoscaling\.knative\.dev\/minScale\?\)/])
  t.end()
})

t.test('status and server-set metadata from `kubectl get -o yaml` are accepted', (t) => {
  const doc = base()
  Object.assign(doc.metadata, { uid: 'u', resourceVersion: '7', generation: 3, creationTimestamp: '2024-01-01T00:00:00Z' })
  doc.spec.template.metadata = { creationTimestamp: null }
  doc.status = { url: 'http://hello.default.example.com' }
  t.equal(parse(doc).name, 'hello')
  t.end()
})

t.test('multiple documents: every Service in order, sources name the document', (t) => {
  const v1 = base()
  const v2 = base()
  v2.spec.template.spec.containers[0].env = [{ name: 'V', value: '2' }]
  const text = `${stringify(v1)}---\n---\n${stringify(v2)}`
  const services = parseServiceManifests(text, 'two.yaml')
  t.equal(services.length, 2)
  t.same(services.map((s) => s.source), ['two.yaml (document 1)', 'two.yaml (document 3)'])
  t.same(services[1]!.template.containers[0]!.env, [{ name: 'V', value: '2' }])
  t.match(errorOf(() => parseServiceManifest(text, 'two.yaml')), { message: /^two\.yaml: expected one Service, found 2 \(default\/hello, default\/hello\)$/ })
  t.end()
})

t.test('an error in a later document names that document', (t) => {
  const bad = base()
  bad.spec.template.spec.containerConcurrency = -1
  const err = errorOf(() => parseServiceManifests(`${stringify(base())}---\n${stringify(bad)}`, 'f.yaml'))
  t.equal(err?.message, 'f.yaml (document 2): spec.template.spec.containerConcurrency: must be an integer 0-1000, got number -1')
  t.end()
})

t.test('other kinds are rejected by name; so are older Knative API versions', (t) => {
  const deployment = { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'd' } }
  t.match(errorOf(() => parseServiceManifests(`${stringify(base())}---\n${stringify(deployment)}`, 'f.yaml'))?.message,
    /^f\.yaml \(document 2\): kind: Deployment \(apps\/v1\) is not supported: sluice runs Knative Services/)
  const k8sService = { apiVersion: 'v1', kind: 'Service', metadata: { name: 's' } }
  t.match(errorOf(() => parseServiceManifest(stringify(k8sService), 'f.yaml'))?.message, /^f\.yaml: kind: Service \(v1\) is not supported/)
  const old = { ...base(), apiVersion: 'serving.knative.dev/v1alpha1' }
  t.match(errorOf(() => parseServiceManifest(stringify(old), 'f.yaml'))?.issues, [{ path: 'apiVersion', message: /v1alpha1 is not supported; use serving\.knative\.dev\/v1/ }])
  t.end()
})

t.test('an empty file and broken YAML give clear errors', (t) => {
  t.match(errorOf(() => parseServiceManifest('', 'empty.yaml'))?.message, /^empty\.yaml: no Knative Service found/)
  t.match(errorOf(() => parseServiceManifest('# only a comment\n', 'c.yaml'))?.message, /^c\.yaml: no Knative Service found/)
  t.match(errorOf(() => parseServiceManifest('metadata:\n  name: [x\nspec: 1\n', 'bad.yaml'))?.message, /^bad\.yaml: invalid YAML: .*line \d+, column \d+$/)
  t.match(errorOf(() => parseServiceManifest('a: 1\na: 2\n', 'dup.yaml'))?.message, /^dup\.yaml: invalid YAML: Map keys must be unique/)
  t.end()
})

t.test('YAML 1.1 as Kubernetes reads it: an unquoted yes is a boolean, not a string', (t) => {
  const text = stringify(withContainer({ env: [{ name: 'DEBUG', value: 'PLACEHOLDER' }] })).replace('PLACEHOLDER', 'yes')
  t.match(errorOf(() => parseServiceManifest(text, 'y.yaml'))?.issues,
    [{ path: 'spec.template.spec.containers[0].env[0].value', message: 'must be a string, got boolean true (quote the value in the YAML)' }])
  t.end()
})

t.test('all problems are reported at once, one line each', (t) => {
  const doc = withContainer({ command: undefined, ports: [{ containerPort: 0 }] })
  delete doc.spec.template.spec.containers[0].command
  doc.spec.template.spec.timeoutSeconds = 9999
  const err = errorOf(() => parse(doc))
  t.equal(err?.issues.length, 3)
  t.equal(err?.message.split('\n').length, 3)
  t.end()
})
