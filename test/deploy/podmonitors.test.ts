// deploy/monitoring/podmonitors.yaml validates against the Prometheus
// Operator's own PodMonitor CRD (fixtures/prometheus-operator/, v0.93.0) and
// selects what Knative actually runs: the activator pods by their label and
// metrics port, every revision pod's queue-proxy by its user-metrics port
// name. A broken document must fail validation with its path named.

import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import YAML from 'yaml'
import { REPO_ROOT } from './dockerfile.ts'
import { crdValidator } from '../helpers/crd-schema.ts'

type Obj = Record<string, unknown>
interface PodMonitor {
  apiVersion: string
  kind: string
  metadata: { name: string; namespace: string }
  spec: {
    namespaceSelector?: { any?: boolean }
    selector: { matchLabels?: Record<string, string>; matchExpressions?: { key: string; operator: string }[] }
    podMetricsEndpoints: { port: string; interval: string }[]
  }
}

// Knative's names (pkg/apis/serving/v1/revision_helpers.go, config/core/deployments/activator.yaml).
const USER_METRICS_PORT_NAME = 'http-usermetric'
const REVISION_LABEL = 'serving.knative.dev/revision'

const CRD_FILE = join(REPO_ROOT, 'test/deploy/fixtures/prometheus-operator/monitoring.coreos.com_podmonitors.yaml')
const { crd, version, errorsOf } = crdValidator(CRD_FILE, 'v1')
const docs = YAML.parseAllDocuments(readFileSync(join(REPO_ROOT, 'deploy/monitoring/podmonitors.yaml'), 'utf8')).map((d) => d.toJS() as PodMonitor)
const byName = (name: string): PodMonitor => docs.find((d) => d.metadata.name === name)!
const activatorPatch = YAML.parse(readFileSync(join(REPO_ROOT, 'deploy/activator-patch.yaml'), 'utf8')) as {
  spec: { template: { spec: { containers: { ports: { name: string; containerPort: number }[] }[] } } }
}

t.test('the stored CRD is the Prometheus Operator\'s PodMonitor', async (t) => {
  const head = readFileSync(CRD_FILE, 'utf8').split('\n').slice(0, 2).join('\n')
  t.match(head, /https:\/\/github\.com\/prometheus-operator\/prometheus-operator/)
  t.match(head, /tag v\d+\.\d+\.\d+ \(commit [0-9a-f]{40}\)/)
  t.equal(crd.kind, 'CustomResourceDefinition')
  t.equal(crd.spec.group, 'monitoring.coreos.com')
  t.equal(crd.spec.names.kind, 'PodMonitor')
})

t.test('both PodMonitors validate against the CRD schema', async (t) => {
  t.same(docs.map((d) => d.metadata.name), ['sluice-activator', 'sluice-queue-proxy'])
  for (const d of docs) {
    t.equal(d.apiVersion, `${crd.spec.group}/${version}`, `${d.metadata.name}: apiVersion`)
    t.equal(d.kind, 'PodMonitor', `${d.metadata.name}: kind`)
    t.same(errorsOf(d), [], `${d.metadata.name}: no schema errors`)
  }
})

t.test('the activator monitor selects Knative\'s activator pods on the port Sluice serves metrics on', async (t) => {
  const m = byName('sluice-activator')
  t.equal(m.metadata.namespace, 'knative-serving')
  t.same(m.spec.selector.matchLabels, { app: 'activator' })
  const ports = activatorPatch.spec.template.spec.containers[0]!.ports
  const scraped = ports.find((p) => p.name === m.spec.podMetricsEndpoints[0]!.port)
  t.equal(scraped?.containerPort, 9090, 'the named port is the activator\'s :9090 in deploy/activator-patch.yaml')
})

t.test('the queue-proxy monitor selects every revision pod in every namespace, on the user-metrics port', async (t) => {
  const m = byName('sluice-queue-proxy')
  t.same(m.spec.namespaceSelector, { any: true })
  t.same(m.spec.selector.matchExpressions, [{ key: REVISION_LABEL, operator: 'Exists' }])
  t.same(m.spec.podMetricsEndpoints.map((e) => e.port), [USER_METRICS_PORT_NAME])
})

t.test('broken PodMonitors are refused with the path of the mistake', async (t) => {
  const broken = (edit: (d: PodMonitor) => void): PodMonitor => {
    const d = structuredClone(byName('sluice-queue-proxy'))
    edit(d)
    return d
  }
  t.match(errorsOf(broken((d) => { d.spec.podMetricsEndpoints[0]!.interval = '15 seconds' })),
    [/^\/spec\/podMetricsEndpoints\/0\/interval must match pattern/], 'an interval Prometheus cannot parse')
  t.match(errorsOf(broken((d) => { (d.spec.podMetricsEndpoints[0] as unknown as Obj).port = 9091 })),
    [/^\/spec\/podMetricsEndpoints\/0\/port must be string/], 'a port number where the name belongs')
  t.match(errorsOf(broken((d) => { (d.spec as unknown as Obj).podMetricEndpoints = d.spec.podMetricsEndpoints })),
    [/^\/spec must NOT have additional properties \(podMetricEndpoints\)/], 'a misspelt field')
  t.match(errorsOf(broken((d) => { (d.spec.namespaceSelector as Obj).any = 'yes' })),
    [/^\/spec\/namespaceSelector\/any must be boolean/], 'a string where a boolean belongs')
})
