// deploy/: every YAML parses; the kustomization names the Knative release and
// the patches; the config-deployment patch sets queue-sidecar-image (and the
// image-cache hint agrees); the activator patch carries what Knative's
// activator Deployment has (spec §2.1) and what Sluice's activator reads,
// cross-checked against the activator's own code: the env names it reads, its
// config parser, its ports, its probe header. deploy/README.md documents every
// SLUICE_* setting.

import t from 'tap'
import { spawnSync } from 'node:child_process'
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import YAML from 'yaml'
import { Header, Port } from '@sluice/core/constants'
import { loadConfig } from '@sluice/activator/config'
import { REPO_ROOT } from './dockerfile.ts'

const DEPLOY = join(REPO_ROOT, 'deploy')
const ACTIVATOR_SRC = join(REPO_ROOT, 'packages/activator/src')

type Obj = Record<string, unknown>

interface EnvVar {
  name: string
  value?: string
  valueFrom?: { fieldRef?: { fieldPath: string }; configMapKeyRef?: { name: string; key: string; optional?: boolean } }
}
interface Probe {
  httpGet?: { port: number | string; path?: string; httpHeaders?: { name: string; value: string }[] }
  periodSeconds?: number
  failureThreshold?: number
  initialDelaySeconds?: number
}
interface Container {
  name: string
  image: string
  env: EnvVar[]
  ports: { name: string; containerPort: number }[]
  resources: { requests: Record<string, string>; limits: Record<string, string> }
  securityContext: Obj
  readinessProbe: Probe
  livenessProbe: Probe
}

function yamlFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => /\.ya?ml$/.test(f)).sort()
}

function load(file: string): Obj {
  const docs = YAML.parseAllDocuments(readFileSync(join(DEPLOY, file), 'utf8'))
  if (docs.length !== 1) throw new Error(`${file}: expected one document, got ${docs.length}`)
  return docs[0]!.toJS() as Obj
}

/** Kubernetes quantities as bytes (only the forms we use). */
function bytes(q: string): number {
  const m = /^(\d+)(Ki|Mi|Gi)?$/.exec(q)
  if (!m) throw new Error(`unsupported quantity ${q}`)
  const unit: Record<string, number> = { '': 1, Ki: 1 << 10, Mi: 1 << 20, Gi: 1 << 30 }
  return Number(m[1]) * unit[m[2] ?? '']!
}

/** Every environment variable name the activator's code reads: 'NAME' literals and env.NAME / env['NAME']. */
function envNamesReadByActivator(): Set<string> {
  const names = new Set<string>()
  const re = /'([A-Z][A-Z0-9_]{2,})'|\benv\.([A-Z][A-Z0-9_]{2,})\b/g
  for (const f of readdirSync(ACTIVATOR_SRC, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts'))) {
    for (const m of readFileSync(join(ACTIVATOR_SRC, f), 'utf8').matchAll(re)) names.add(m[1] ?? m[2]!)
  }
  return names
}

const kustomization = load('kustomization.yaml') as { apiVersion: string; kind: string; resources: string[]; patches: { path: string }[] }
const configPatch = load('config-deployment-patch.yaml') as { apiVersion: string; kind: string; metadata: Obj; data: Record<string, unknown> }
const imageCachePatch = load('queue-proxy-image-patch.yaml') as { apiVersion: string; kind: string; metadata: Obj; spec: { image: string } }
const activatorPatch = load('activator-patch.yaml') as {
  apiVersion: string
  kind: string
  metadata: Obj
  spec: { template: { spec: { terminationGracePeriodSeconds: number; containers: Container[] } } }
}
const podSpec = activatorPatch.spec.template.spec
const activator = podSpec.containers.find((c) => c.name === 'activator')!
const env = new Map(activator.env.map((e) => [e.name, e]))

t.test('every YAML file under deploy/ parses without errors or warnings', async (t) => {
  const files = yamlFiles(DEPLOY)
  t.ok(files.length >= 3, files.join(', '))
  for (const f of files) {
    for (const doc of YAML.parseAllDocuments(readFileSync(join(DEPLOY, f), 'utf8'))) {
      t.same(doc.errors.map((e) => e.message), [], `${f}: no errors`)
      t.same(doc.warnings.map((e) => e.message), [], `${f}: no warnings`)
      t.type(doc.toJS(), 'object', `${f}: a mapping`)
    }
  }
})

t.test('the kustomization renders a released serving-core.yaml with both patches, and every YAML is used', async (t) => {
  t.equal(kustomization.apiVersion, 'kustomize.config.k8s.io/v1beta1')
  t.equal(kustomization.kind, 'Kustomization')
  t.equal(kustomization.resources.length, 1)
  t.match(kustomization.resources[0], /^https:\/\/github\.com\/knative\/serving\/releases\/download\/knative-v\d+\.\d+\.\d+\/serving-core\.yaml$/)
  const paths = kustomization.patches.map((p) => p.path)
  t.same([...paths].sort(), ['activator-patch.yaml', 'config-deployment-patch.yaml', 'queue-proxy-image-patch.yaml'])
  for (const p of paths) t.ok(existsSync(join(DEPLOY, p)), `${p} exists`)
  // deploy/operator/ is the Knative Operator form of the same settings (test/deploy/operator.test.ts);
  // deploy/monitoring/ is Prometheus's and Grafana's, applied separately (test/deploy/monitoring.test.ts).
  t.same(yamlFiles(DEPLOY).filter((f) => f !== 'kustomization.yaml' && !paths.includes(f) && !f.startsWith('operator/') && !f.startsWith('monitoring/')), [],
    'no YAML file left out of the kustomization')
})

t.test('the config-deployment patch sets queue-sidecar-image and only string data', async (t) => {
  t.equal(configPatch.apiVersion, 'v1')
  t.equal(configPatch.kind, 'ConfigMap')
  t.same(configPatch.metadata, { name: 'config-deployment', namespace: 'knative-serving' })
  t.match(configPatch.data['queue-sidecar-image'], /^[a-z0-9.-]+(:\d+)?\/[a-z0-9/._-]+(:[\w.-]+|@sha256:[0-9a-f]{64})$/)
  t.notOk('queueSidecarImage' in configPatch.data, 'not the legacy key (the new key wins anyway)')
  for (const [k, v] of Object.entries(configPatch.data)) t.type(v, 'string', `data.${k} is a string (ConfigMap data)`)
})

t.test('the queue-proxy image-cache hint names the same image as queue-sidecar-image', async (t) => {
  t.equal(imageCachePatch.apiVersion, 'caching.internal.knative.dev/v1alpha1')
  t.equal(imageCachePatch.kind, 'Image')
  t.same(imageCachePatch.metadata, { name: 'queue-proxy', namespace: 'knative-serving' })
  t.equal(imageCachePatch.spec.image, configPatch.data['queue-sidecar-image'])
})

t.test('both images come from the same registry path and tag', async (t) => {
  const split = (image: string) => /^(.*)\/([^/:@]+)([:@].+)$/.exec(image)!.slice(1)
  const [qpRepo, qpName, qpTag] = split(configPatch.data['queue-sidecar-image'] as string)
  const [actRepo, actName, actTag] = split(activator.image)
  t.equal(actRepo, qpRepo)
  t.equal(actTag, qpTag)
  t.equal(qpName, 'queue-proxy')
  t.equal(actName, 'activator')
  t.not(qpTag, ':latest', 'a pinned tag')
})

t.test('the activator patch targets Knative\'s activator container', async (t) => {
  t.equal(activatorPatch.apiVersion, 'apps/v1')
  t.equal(activatorPatch.kind, 'Deployment')
  t.same(activatorPatch.metadata, { name: 'activator', namespace: 'knative-serving' })
  t.same(podSpec.containers.map((c) => c.name), ['activator'], 'one container, merged by name')
  t.ok(activator.image, 'image set')
})

t.test('activator ports are the ones Knative names and Sluice listens on', async (t) => {
  t.same(activator.ports, [
    { name: 'metrics', containerPort: Port.activatorMetrics },
    { name: 'profiling', containerPort: Port.profiling },
    { name: 'http1', containerPort: Port.activatorHttp },
    { name: 'h2c', containerPort: Port.activatorH2c },
  ])
  const cfg = loadConfig({ SYSTEM_NAMESPACE: 'knative-serving', POD_NAME: 'p', POD_IP: '10.0.0.1' })
  t.same([cfg.metricsPort, cfg.profilingPort, cfg.httpPort, cfg.h2cPort], activator.ports.map((p) => p.containerPort),
    'the activator\'s default ports, in the same order')
})

t.test('activator probes: kubelet GET on :8012 with k-kubelet-probe, Knative\'s periods and thresholds', async (t) => {
  const kubeletGet = { port: Port.activatorHttp, httpHeaders: [{ name: 'k-kubelet-probe', value: 'activator' }] }
  t.same(activator.readinessProbe, { httpGet: kubeletGet, periodSeconds: 5, failureThreshold: 5 })
  t.same(activator.livenessProbe, { httpGet: kubeletGet, periodSeconds: 10, failureThreshold: 12, initialDelaySeconds: 15 })
  t.equal(kubeletGet.httpHeaders[0]!.name, Header.kubeletProbe, 'the header the activator recognises')
})

t.test('activator env: identity from the downward API as in Knative\'s manifest', async (t) => {
  t.same(env.get('POD_NAME'), { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } })
  t.same(env.get('POD_IP'), { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } })
  t.same(env.get('SYSTEM_NAMESPACE'), { name: 'SYSTEM_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } })
  t.equal(env.size, activator.env.length, 'no name twice')
})

t.test('activator env: every variable is one the activator reads (or NODE_OPTIONS), and the values parse', async (t) => {
  const read = envNamesReadByActivator()
  t.ok(read.has('SLUICE_DRAIN_PERIOD') && read.has('POD_NAME'), 'the scan finds names in the activator source')
  for (const name of env.keys()) {
    if (name !== 'NODE_OPTIONS') t.ok(read.has(name), `${name} is read by packages/activator/src`)
  }
  // Literal values as given; references as the cluster would fill them.
  const sample: Record<string, string> = { POD_NAME: 'activator-abc', POD_IP: '10.0.0.9', SYSTEM_NAMESPACE: 'knative-serving', SLUICE_LOG_LEVEL: 'debug' }
  const values: Record<string, string> = {}
  for (const e of activator.env) {
    if (e.value !== undefined) values[e.name] = e.value
    else if (sample[e.name] !== undefined) values[e.name] = sample[e.name]!
    else t.fail(`${e.name}: no sample value for ${JSON.stringify(e.valueFrom)}`)
  }
  for (const [k, v] of Object.entries(values)) t.type(v, 'string', `${k} is a string`)
  const cfg = loadConfig(values)
  t.equal(cfg.podName, 'activator-abc')
  t.equal(cfg.systemNamespace, 'knative-serving')
  t.equal(cfg.endpointSource, 'kubernetes', 'the kubernetes endpoint source in the cluster')
  t.equal(cfg.loggingLevel, 'debug', 'SLUICE_LOG_LEVEL reaches the config')
  t.equal(cfg.drainMs, 45_000)
  t.equal(cfg.readinessRequiresAutoscaler, false)
  t.equal(cfg.maxQueuedTotal, 20_000)
  t.equal(cfg.maxBufferedBytesTotal, 48 << 20)
  t.equal(cfg.useEndpointSlices, false)
  t.same(env.get('SLUICE_LOG_LEVEL')?.valueFrom, { configMapKeyRef: { name: 'config-logging', key: 'loglevel.activator', optional: true } },
    'the level follows config-logging, and a missing key does not block the pod')
  t.notOk(env.has('SLUICE_ENDPOINT_SOURCE') || env.has('SLUICE_AUTOSCALER_URL'), 'no local-runtime settings in the cluster')
})

t.test('activator security context as Knative\'s (non-root, read-only root filesystem, no capabilities)', async (t) => {
  t.same(activator.securityContext, {
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    runAsNonRoot: true,
    capabilities: { drop: ['ALL'] },
    seccompProfile: { type: 'RuntimeDefault' },
  })
})

t.test('activator grace period covers the longest revision timeout and outlasts the drain period', async (t) => {
  t.equal(podSpec.terminationGracePeriodSeconds, 600, 'Knative\'s 600 s = default max-revision-timeout-seconds')
  const drainMs = loadConfig({ SYSTEM_NAMESPACE: 'x', POD_NAME: 'p', POD_IP: 'i', SLUICE_DRAIN_PERIOD: env.get('SLUICE_DRAIN_PERIOD')!.value! }).drainMs
  t.ok(drainMs < podSpec.terminationGracePeriodSeconds * 1000, `drain ${drainMs} ms < grace period`)
})

t.test('activator resources: requests and limits set; the memory limit holds the heap cap plus the buffering cap', async (t) => {
  const { requests, limits } = activator.resources
  for (const k of ['cpu', 'memory']) {
    t.ok(requests[k], `requests.${k}`)
    t.ok(limits[k], `limits.${k}`)
  }
  t.ok(bytes(requests.memory!) <= bytes(limits.memory!), 'memory request <= limit')
  const heap = /--max-old-space-size=(\d+)/.exec(env.get('NODE_OPTIONS')?.value ?? '')
  t.ok(heap, 'NODE_OPTIONS caps the heap')
  const heapBytes = Number(heap![1]) << 20
  const buffered = Number(env.get('SLUICE_MAX_BUFFERED_BYTES')!.value)
  t.ok(heapBytes + buffered < bytes(limits.memory!), `${heap![1]} MiB heap + ${buffered >> 20} MiB bodies < ${limits.memory}`)
})

t.test('deploy/README.md documents every SLUICE_* setting the activator reads', async (t) => {
  const readme = readFileSync(join(DEPLOY, 'README.md'), 'utf8')
  const sluice = [...envNamesReadByActivator()].filter((n) => n.startsWith('SLUICE_')).sort()
  t.ok(sluice.length > 10, sluice.join(' '))
  for (const name of sluice) t.ok(readme.includes(`\`${name}\``), name)
})

// The objects of serving-core.yaml the patches touch, in the shape Knative
// releases them (activator probes as on HEAD: no k-kubelet-probe header).
const KNATIVE_IMAGE = 'gcr.io/knative-releases/knative.dev/serving/cmd'
const SHA = `@sha256:${'0'.repeat(64)}`
const knativeBase: Obj[] = [
  {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'config-deployment', namespace: 'knative-serving' },
    data: { 'queue-sidecar-image': `${KNATIVE_IMAGE}/queue${SHA}`, _example: 'progress-deadline: "600s"\n' },
  },
  {
    apiVersion: 'caching.internal.knative.dev/v1alpha1',
    kind: 'Image',
    metadata: { name: 'queue-proxy', namespace: 'knative-serving' },
    spec: { image: `${KNATIVE_IMAGE}/queue${SHA}` },
  },
  {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'activator', namespace: 'knative-serving' },
    spec: {
      selector: { matchLabels: { app: 'activator', role: 'activator' } },
      template: {
        metadata: { labels: { app: 'activator', role: 'activator' } },
        spec: {
          serviceAccountName: 'activator',
          terminationGracePeriodSeconds: 600,
          containers: [{
            name: 'activator',
            image: `${KNATIVE_IMAGE}/activator${SHA}`,
            resources: { requests: { cpu: '300m', memory: '60Mi' }, limits: { cpu: '1000m', memory: '600Mi' } },
            env: [
              { name: 'GOGC', value: '500' },
              { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
              { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
              { name: 'SYSTEM_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
              { name: 'METRICS_DOMAIN', value: 'knative.dev/internal/serving' },
            ],
            ports: [
              { name: 'metrics', containerPort: 9090 },
              { name: 'profiling', containerPort: 8008 },
              { name: 'http1', containerPort: 8012 },
              { name: 'h2c', containerPort: 8013 },
            ],
            readinessProbe: { httpGet: { port: 8012 }, periodSeconds: 5, failureThreshold: 5 },
            livenessProbe: { httpGet: { port: 8012 }, periodSeconds: 10, failureThreshold: 12, initialDelaySeconds: 15 },
          }],
        },
      },
    },
  },
]

const hasKubectl = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' }).status === 0

t.test('kubectl kustomize merges the patches into Knative-shaped objects: images replaced, Knative entries kept, nothing doubled',
  { skip: hasKubectl ? false : 'kubectl is not installed' }, async (t) => {
    // The release URL is swapped for a local copy of the objects the patches touch (no network here).
    const dir = mkdtempSync(join(tmpdir(), 'sluice-kustomize-'))
    t.teardown(() => rmSync(dir, { recursive: true, force: true }))
    for (const p of kustomization.patches) copyFileSync(join(DEPLOY, p.path), join(dir, p.path))
    writeFileSync(join(dir, 'serving-core.yaml'), knativeBase.map((o) => YAML.stringify(o)).join('---\n'))
    writeFileSync(join(dir, 'kustomization.yaml'), YAML.stringify({ ...kustomization, resources: ['serving-core.yaml'] }))
    const r = spawnSync('kubectl', ['kustomize', dir], { encoding: 'utf8' })
    t.equal(r.status, 0, r.stderr)
    const out = YAML.parseAllDocuments(r.stdout).map((d) => d.toJS() as Obj)
    const find = (kind: string): unknown => out.find((o) => o.kind === kind)

    const cm = find('ConfigMap') as { data: Record<string, string> }
    t.equal(cm.data['queue-sidecar-image'], configPatch.data['queue-sidecar-image'])
    t.ok(cm.data._example, 'the rest of config-deployment is kept')
    t.equal((find('Image') as { spec: { image: string } }).spec.image, configPatch.data['queue-sidecar-image'])

    const dep = find('Deployment') as typeof activatorPatch & { spec: { selector: Obj; template: { spec: { serviceAccountName: string } } } }
    const pod = dep.spec.template.spec
    t.equal(pod.containers.length, 1)
    const c = pod.containers[0]!
    t.equal(c.image, activator.image)
    const names = c.env.map((e) => e.name)
    t.equal(new Set(names).size, names.length, 'no env entry doubled')
    t.same([...names].sort(), [...new Set([...activator.env.map((e) => e.name), 'GOGC', 'METRICS_DOMAIN'])].sort(),
      'Sluice\'s entries plus Knative\'s untouched ones')
    t.same(c.env.find((e) => e.name === 'POD_IP'), { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } })
    t.same(c.ports, activator.ports, 'ports merged by containerPort, not doubled')
    t.same(c.readinessProbe, activator.readinessProbe, 'the probe header is added on a base without it')
    t.same(c.livenessProbe, activator.livenessProbe)
    t.same(c.resources, activator.resources)
    t.same(c.securityContext, activator.securityContext)
    t.equal(pod.terminationGracePeriodSeconds, 600)
    t.equal(pod.serviceAccountName, 'activator', 'Knative\'s service account (and so its RBAC) kept')
    t.same(dep.spec.selector, { matchLabels: { app: 'activator', role: 'activator' } })
  })
