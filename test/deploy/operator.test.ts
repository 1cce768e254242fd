// deploy/operator/: the KnativeServing resource validates against the Knative
// Operator's own CRD schema (fixtures/operator/, copied from knative/operator
// at knative-v1.12.4), and carries exactly the images, env, resources and
// probe settings of the kustomize patches in deploy/, so the two install forms
// cannot drift. A broken document must fail validation with its path named.

import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import YAML from 'yaml'
import { REPO_ROOT } from './dockerfile.ts'
import { crdValidator } from '../helpers/crd-schema.ts'

type Obj = Record<string, unknown>

const DEPLOY = join(REPO_ROOT, 'deploy')
const CRD_FILE = join(REPO_ROOT, 'test/deploy/fixtures/operator/operator.knative.dev_knativeservings.yaml')

const load = (path: string): Obj => YAML.parse(readFileSync(path, 'utf8')) as Obj

interface EnvVar { name: string; value?: string; valueFrom?: Obj }
interface Probe { periodSeconds?: number; failureThreshold?: number; initialDelaySeconds?: number }
interface Resources { requests: Record<string, string>; limits: Record<string, string> }
interface KnativeServing {
  apiVersion: string
  kind: string
  metadata: { name: string; namespace: string }
  spec: {
    version: string
    config: Record<string, Record<string, string>>
    registry: { override: Record<string, string> }
    workloads: {
      name: string
      replicas?: number
      resources: (Resources & { container: string })[]
      env: { container: string; envVars: EnvVar[] }[]
      readinessProbes: (Probe & { container: string })[]
      livenessProbes: (Probe & { container: string })[]
    }[]
  }
}

const { crd, version, errorsOf } = crdValidator(CRD_FILE, 'v1beta1')

const ks = load(join(DEPLOY, 'operator/knative-serving.yaml')) as unknown as KnativeServing
const configPatch = load(join(DEPLOY, 'config-deployment-patch.yaml')) as { data: Record<string, string> }
const imageCachePatch = load(join(DEPLOY, 'queue-proxy-image-patch.yaml')) as { spec: { image: string } }
const activatorPatch = load(join(DEPLOY, 'activator-patch.yaml')) as {
  spec: { template: { spec: { containers: { name: string; image: string; env: EnvVar[]; resources: Resources; readinessProbe: Probe & Obj; livenessProbe: Probe & Obj }[] } } }
}
const activator = activatorPatch.spec.template.spec.containers.find((c) => c.name === 'activator')!
const workload = ks.spec.workloads.find((w) => w.name === 'activator')!

t.test('the CRD fixture is the Operator\'s KnativeServing CRD, with its source named', async (t) => {
  const head = readFileSync(CRD_FILE, 'utf8').split('\n').slice(0, 3).join('\n')
  t.match(head, /https:\/\/github\.com\/knative\/operator/)
  t.match(head, /config\/crd\/bases\/operator\.knative\.dev_knativeservings\.yaml/)
  t.match(head, /knative-v1\.12\.\d+ \(commit [0-9a-f]{40}\)/)
  t.equal(crd.kind, 'CustomResourceDefinition')
  t.equal(crd.spec.group, 'operator.knative.dev')
  t.equal(crd.spec.names.kind, 'KnativeServing')
  t.equal(version, 'v1beta1', 'v1beta1 is served')
})

t.test('deploy/operator/knative-serving.yaml validates against the CRD schema', async (t) => {
  t.equal(ks.apiVersion, `${crd.spec.group}/${version}`)
  t.equal(ks.kind, 'KnativeServing')
  t.same(ks.metadata, { name: 'knative-serving', namespace: 'knative-serving' })
  t.match(ks.spec.version, /^1\.12(\.\d+)?$/, 'the Knative release whose contract Sluice implements')
  t.same(errorsOf(ks), [])
})

t.test('the validator rejects wrong types, unknown fields and bad quantities, naming the path', async (t) => {
  const broken = (edit: (d: KnativeServing) => void): KnativeServing => {
    const d = structuredClone(ks)
    edit(d)
    return d
  }
  t.match(errorsOf(broken((d) => { d.spec.workloads[0]!.replicas = 'two' as unknown as number })),
    ['/spec/workloads/0/replicas must be integer'])
  t.match(errorsOf(broken((d) => { d.spec.config.deployment!['queue-sidecar-memory-limit'] = 256 as unknown as string })),
    ['/spec/config/deployment/queue-sidecar-memory-limit must be string'], 'ConfigMap values are strings')
  t.match(errorsOf(broken((d) => { d.spec.workloads[0]!.resources[0]!.limits.memory = '600 MiB' })),
    ['/spec/workloads/0/resources/0/limits/memory must match pattern'])
  t.match(errorsOf(broken((d) => { (d.spec.registry as Obj).overrides = d.spec.registry.override })),
    ['/spec/registry must NOT have additional properties (overrides)'], 'a typo the API server would prune silently')
  t.match(errorsOf(broken((d) => { (d.spec.workloads[0]!.env[0]!.envVars[0] as unknown as Obj).valueFrom = 'metadata.name' })),
    ['/spec/workloads/0/env/0/envVars/0/valueFrom must be object'])
})

t.test('x-kubernetes-int-or-string takes integers and strings only; preserved fields stay open', async (t) => {
  const withPdb = (minAvailable: unknown) => ({ ...ks, spec: { ...ks.spec, podDisruptionBudgets: [{ name: 'activator-pdb', minAvailable }] } })
  t.same(errorsOf(withPdb(1)), [])
  t.same(errorsOf(withPdb('80%')), [])
  t.ok(errorsOf(withPdb(true)).some((e) => e.startsWith('/spec/podDisruptionBudgets/0/minAvailable')), 'a boolean is refused')
  t.same(errorsOf({ ...ks, metadata: { ...ks.metadata, labels: { a: 'b' } } }), [], 'metadata is not checked field by field')
})

t.test('config.deployment sets exactly what config-deployment-patch.yaml sets', async (t) => {
  t.same(Object.keys(ks.spec.config), ['deployment'], 'no other ConfigMap touched')
  t.same(ks.spec.config.deployment, configPatch.data)
})

t.test('registry.override names the activator image and the queue-proxy image-cache hint of the patches', async (t) => {
  t.same(ks.spec.registry.override, { activator: activator.image, 'queue-proxy': imageCachePatch.spec.image })
  t.equal(ks.spec.registry.override['queue-proxy'], configPatch.data['queue-sidecar-image'], 'the hint equals the sidecar image')
})

t.test('workloads: the activator gets the patch\'s resources, env and probe thresholds, and no replica count', async (t) => {
  t.same(ks.spec.workloads.map((w) => w.name), ['activator'])
  t.equal(workload.replicas, undefined, 'the HPA scales the activator, as with the kustomize form')
  t.same(workload.resources, [{ container: 'activator', ...activator.resources }])
  t.same(workload.env, [{ container: 'activator', envVars: activator.env }], 'same names, values and references, same order')
  const thresholds = (p: Obj): Probe => {
    const { periodSeconds, failureThreshold, initialDelaySeconds } = p as Probe
    return JSON.parse(JSON.stringify({ periodSeconds, failureThreshold, initialDelaySeconds })) as Probe
  }
  t.same(workload.readinessProbes, [{ container: 'activator', ...thresholds(activator.readinessProbe) }])
  t.same(workload.livenessProbes, [{ container: 'activator', ...thresholds(activator.livenessProbe) }])
})
