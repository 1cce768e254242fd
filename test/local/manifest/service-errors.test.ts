import t from 'tap'
import { stringify } from 'yaml'
import { ManifestError, parseServiceManifest, type ParseOptions } from '@sluice/local/manifest/service'

// Manifests under test are free-form YAML trees, often deliberately malformed.
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- see above
type Doc = Record<string, any>

function base(): Doc {
  return {
    apiVersion: 'serving.knative.dev/v1',
    kind: 'Service',
    metadata: { name: 'hello' },
    spec: { template: { spec: { containers: [{ image: 'img', command: ['node'], args: ['app.js'] }] } } },
  }
}

const container = (d: Doc) => d.spec.template.spec.containers[0]
const annotate = (key: string, value: unknown) => (d: Doc) => {
  d.spec.template.metadata = { annotations: { ...d.spec.template.metadata?.annotations, [key]: value } }
}
const AS = 'autoscaling.knative.dev/'
const ann = (key: string) => `spec.template.metadata.annotations["${AS}${key}"]`
const C0 = 'spec.template.spec.containers[0]'

function issuesOf(change: (d: Doc) => void, options?: ParseOptions): readonly { path: string; message: string }[] {
  const doc = base()
  change(doc)
  try {
    parseServiceManifest(stringify(doc), 'svc.yaml', options)
  } catch (err) {
    if (err instanceof ManifestError) return err.issues
    throw err
  }
  return []
}

// [what is wrong, how to make it wrong, the field path the error must name, what it must say]
const cases: [string, (d: Doc) => void, string, RegExp][] = [
  // metadata
  ['no name', (d) => { delete d.metadata.name }, 'metadata.name', /^required$/],
  ['generateName instead of a name', (d) => { d.metadata = { generateName: 'h-' } }, 'metadata.name', /generateName is not supported/],
  ['a name that is no DNS label', (d) => { d.metadata.name = 'Hello_World' }, 'metadata.name', /must be a DNS label/],
  ['a name starting with a digit', (d) => { d.metadata.name = '1hello' }, 'metadata.name', /starting with a letter/],
  ['a bad namespace', (d) => { d.metadata.namespace = 'Team A' }, 'metadata.namespace', /must be a DNS label/],
  ['a label value that is not a string', (d) => { d.metadata.labels = { tier: 1 } }, 'metadata.labels["tier"]', /must be a string, got number 1 \(quote the value/],
  ['autoscaling annotations on the Service', (d) => { d.metadata.annotations = { [`${AS}minScale`]: '1' } },
    `metadata.annotations["${AS}minScale"]`, /move it to spec\.template\.metadata\.annotations/],
  ['an unknown top-level field', (d) => { d.sepc = {} }, 'sepc', /unknown field \(did you mean spec\?\)/],
  // spec
  ['no spec', (d) => { delete d.spec }, 'spec', /^required$/],
  ['no template', (d) => { d.spec = {} }, 'spec.template', /^required$/],
  ['a misspelt spec field', (d) => { d.spec.trafic = [] }, 'spec.trafic', /did you mean traffic\?/],
  ['no template spec', (d) => { d.spec.template = { metadata: {} } }, 'spec.template.spec', /^required$/],
  ['a revision name without the Service prefix', (d) => { d.spec.template.metadata = { name: 'other-v1' } },
    'spec.template.metadata.name', /must start with the Service name and a dash \("hello-"\)/],
  ['an unsupported template metadata field', (d) => { d.spec.template.metadata = { namespace: 'x' } }, 'spec.template.metadata.namespace', /unknown field/],
  ['timeoutSeconds above 3600', (d) => { d.spec.template.spec.timeoutSeconds = 4000 }, 'spec.template.spec.timeoutSeconds', /must be an integer 0-3600 \(seconds\), got number 4000/],
  ['negative timeoutSeconds', (d) => { d.spec.template.spec.timeoutSeconds = -1 }, 'spec.template.spec.timeoutSeconds', /0-3600/],
  ['timeoutSeconds as a string', (d) => { d.spec.template.spec.timeoutSeconds = '300' }, 'spec.template.spec.timeoutSeconds', /got string "300"/],
  ['containerConcurrency above 1000', (d) => { d.spec.template.spec.containerConcurrency = 1001 }, 'spec.template.spec.containerConcurrency', /0-1000/],
  ['fractional containerConcurrency', (d) => { d.spec.template.spec.containerConcurrency = 1.5 }, 'spec.template.spec.containerConcurrency', /must be an integer 0-1000/],
  ['responseStartTimeoutSeconds above the max', (d) => { d.spec.template.spec.responseStartTimeoutSeconds = 5000 }, 'spec.template.spec.responseStartTimeoutSeconds', /0-3600/],
  ['no containers', (d) => { d.spec.template.spec.containers = [] }, 'spec.template.spec.containers', /at least one container/],
  ['containers not a list', (d) => { d.spec.template.spec.containers = { image: 'x' } }, 'spec.template.spec.containers', /must be a list, got an object/],
  // containers
  ['only an image', (d) => { d.spec.template.spec.containers = [{ image: 'ghcr.io/x/app' }] }, `${C0}.command`,
    /required locally: sluice runs each container as a process .*image ghcr\.io\/x\/app is not pulled or run.*command \(and args\)/],
  ['an empty command', (d) => { container(d).command = [] }, `${C0}.command`, /required locally/],
  ['a misspelt command field', (d) => { container(d).comand = container(d).command; delete container(d).command }, `${C0}.comand`, /did you mean command\?/],
  ['a number in args', (d) => { container(d).args = ['--port', 8080] }, `${C0}.args[1]`, /must be a string, got number 8080/],
  ['command as a string', (d) => { container(d).command = 'node app.js' }, `${C0}.command`, /must be a list of strings, got string "node app.js"; write it as a list, e.g. \["node", "app\.js"\]$/],
  ['a container name that is no DNS label', (d) => { container(d).name = 'Web' }, `${C0}.name`, /must be a DNS label/],
  ['duplicate container names', (d) => {
    d.spec.template.spec.containers = [{ name: 'a', command: ['x'], ports: [{ containerPort: 8080 }] }, { name: 'a', command: ['worker'] }]
  }, 'spec.template.spec.containers[1].name', /duplicate container name "a"/],
  ['several containers, none with a port', (d) => { d.spec.template.spec.containers = [{ command: ['web'] }, { command: ['worker'] }] },
    'spec.template.spec.containers', /with 2 containers, exactly one must set ports\[0\]\.containerPort/],
  ['several containers with ports', (d) => {
    d.spec.template.spec.containers = [{ command: ['x'], ports: [{ containerPort: 8080 }] }, { command: ['worker'], ports: [{ containerPort: 9000 }] }]
  }, 'spec.template.spec.containers[1].ports', /only one container may set ports/],
  // ports
  ['containerPort 0', (d) => { container(d).ports = [{ containerPort: 0 }] }, `${C0}.ports[0].containerPort`, /^must be an integer 1-65535, got number 0$/],
  ['containerPort above 65535', (d) => { container(d).ports = [{ containerPort: 70000 }] }, `${C0}.ports[0].containerPort`, /must be an integer 1-65535/],
  ['containerPort as a string', (d) => { container(d).ports = [{ containerPort: '8080' }] }, `${C0}.ports[0].containerPort`, /must be an integer 1-65535, got string "8080"/],
  ['a port without containerPort', (d) => { container(d).ports = [{ name: 'http1' }] }, `${C0}.ports[0].containerPort`, /required/],
  ['a queue-proxy port', (d) => { container(d).ports = [{ containerPort: 8012 }] }, `${C0}.ports[0].containerPort`, /port 8012 is reserved for the queue-proxy/],
  ['two ports', (d) => { container(d).ports = [{ containerPort: 8080 }, { containerPort: 8081 }] }, `${C0}.ports`, /at most one port per container/],
  ['a port name other than http1/h2c', (d) => { container(d).ports = [{ containerPort: 8080, name: 'http2' }] }, `${C0}.ports[0].name`, /must be "http1" or "h2c"/],
  ['UDP', (d) => { container(d).ports = [{ containerPort: 8080, protocol: 'UDP' }] }, `${C0}.ports[0].protocol`, /must be TCP/],
  ['a host port', (d) => { container(d).ports = [{ containerPort: 8080, hostPort: 80 }] }, `${C0}.ports[0].hostPort`, /must not be set/],
  // env
  ['valueFrom', (d) => { container(d).env = [{ name: 'A', value: 'a' }, { name: 'B', valueFrom: { secretKeyRef: { name: 's', key: 'k' } } }] },
    `${C0}.env[1].valueFrom`, /not supported locally .*set value instead/],
  ['envFrom', (d) => { container(d).envFrom = [{ configMapRef: { name: 'cm' } }] }, `${C0}.envFrom`, /not supported locally/],
  ['a reserved variable', (d) => { container(d).env = [{ name: 'PORT', value: '1' }] }, `${C0}.env[0].name`, /PORT is a reserved environment variable/],
  ['K_REVISION set by hand', (d) => { container(d).env = [{ name: 'K_REVISION', value: 'x' }] }, `${C0}.env[0].name`, /reserved/],
  ['an unquoted number as value', (d) => { container(d).env = [{ name: 'NUM', value: 3 }] }, `${C0}.env[0].value`, /must be a string, got number 3/],
  ['an env var without name', (d) => { container(d).env = [{ value: 'x' }] }, `${C0}.env[0].name`, /required/],
  ['an env name with a space', (d) => { container(d).env = [{ name: 'MY VAR', value: 'x' }] }, `${C0}.env[0].name`, /letters, digits/],
  // readiness probe
  ['two probe handlers', (d) => { container(d).readinessProbe = { httpGet: { path: '/' }, tcpSocket: {} } }, `${C0}.readinessProbe`, /set only one of .*got httpGet, tcpSocket/],
  ['a probe timeout with periodSeconds 0', (d) => { container(d).readinessProbe = { timeoutSeconds: 2 } }, `${C0}.readinessProbe.timeoutSeconds`, /periodSeconds is 0/],
  ['a failureThreshold with periodSeconds 0', (d) => { container(d).readinessProbe = { failureThreshold: 2 } }, `${C0}.readinessProbe.failureThreshold`, /periodSeconds is 0/],
  ['a named probe port that is not the container port', (d) => {
    container(d).ports = [{ containerPort: 8080, name: 'http1' }]
    container(d).readinessProbe = { httpGet: { port: 'metrics' } }
  }, `${C0}.readinessProbe.httpGet.port`, /must be the container port's name \("http1"\); got "metrics"/],
  ['a probe scheme other than HTTP(S)', (d) => { container(d).readinessProbe = { httpGet: { scheme: 'FTP' } } }, `${C0}.readinessProbe.httpGet.scheme`, /HTTP or HTTPS/],
  ['a negative period', (d) => { container(d).readinessProbe = { periodSeconds: -1 } }, `${C0}.readinessProbe.periodSeconds`, /must be an integer/],
  ['an unknown probe field', (d) => { container(d).readinessProbe = { httpGet: { paht: '/' } } }, `${C0}.readinessProbe.httpGet.paht`, /did you mean path\?/],
  // traffic
  ['percentages not summing to 100', (d) => { d.spec.traffic = [{ latestRevision: true, percent: 90 }] }, 'spec.traffic', /percent values sum to 90, want 100/],
  ['percent above 100', (d) => { d.spec.traffic = [{ latestRevision: true, percent: 101 }] }, 'spec.traffic[0].percent', /must be an integer 0-100/],
  ['revisionName with latestRevision: true', (d) => { d.spec.traffic = [{ revisionName: 'hello-00001', latestRevision: true, percent: 100 }] },
    'spec.traffic[0].revisionName', /must not be set when latestRevision is true/],
  ['latestRevision: false without a revision', (d) => { d.spec.traffic = [{ latestRevision: false, percent: 100 }] }, 'spec.traffic[0]', /set revisionName, or latestRevision: true/],
  ['a duplicate tag', (d) => { d.spec.traffic = [{ tag: 'a', percent: 50 }, { tag: 'a', revisionName: 'hello-00001', percent: 50 }] }, 'spec.traffic[1].tag', /duplicate tag "a"/],
  ['a tag that is no DNS label', (d) => { d.spec.traffic = [{ tag: 'Blue', percent: 100 }] }, 'spec.traffic[0].tag', /must be a DNS label/],
  ['a tag making the host label too long', (d) => { d.spec.traffic = [{ tag: 'x'.repeat(60), percent: 100 }] }, 'spec.traffic[0].tag', /exceed 63 characters/],
  ['configurationName in a Service', (d) => { d.spec.traffic = [{ configurationName: 'hello', percent: 100 }] }, 'spec.traffic[0].configurationName', /must not be set in a Service/],
  ['latestRevision as a string', (d) => { d.spec.traffic = [{ latestRevision: 'true', percent: 100 }] }, 'spec.traffic[0].latestRevision', /must be true or false/],
  // autoscaling annotations
  ['minScale negative', annotate(`${AS}minScale`, '-1'), ann('minScale'), /must be a whole number >= 0, got "-1"/],
  ['minScale not a number', annotate(`${AS}min-scale`, 'two'), ann('min-scale'), /whole number/],
  ['maxScale fractional', annotate(`${AS}maxScale`, '2.5'), ann('maxScale'), /whole number >= 0 \(0 = no limit\)/],
  ['maxScale below minScale', (d) => { annotate(`${AS}minScale`, '3')(d); annotate(`${AS}maxScale`, '2')(d) }, ann('maxScale'), /maxScale=2 is less than minScale=3/],
  ['both min-scale and minScale', (d) => { annotate(`${AS}min-scale`, '1')(d); annotate(`${AS}minScale`, '1')(d) }, ann('minScale'), /set only one of .*min-scale, .*minScale/],
  ['initialScale 0 without allow-zero-initial-scale', annotate(`${AS}initialScale`, '0'), ann('initialScale'), />= 1 \(0 needs allow-zero-initial-scale\)/],
  ['target below 0.01', annotate(`${AS}target`, '0'), ann('target'), /must be a number >= 0\.01/],
  ['target unquoted in YAML', annotate(`${AS}target`, 10), ann('target'), /must be a string, got number 10 \(quote the value/],
  ['targetUtilizationPercentage above 100', annotate(`${AS}targetUtilizationPercentage`, '101'), ann('targetUtilizationPercentage'), /1-100/],
  ['metric cpu', annotate(`${AS}metric`, 'cpu'), ann('metric'), /must be "concurrency" or "rps"/],
  ['window below 6s', annotate(`${AS}window`, '5s'), ann('window'), /from 6s to 1h/],
  ['window above 1h', annotate(`${AS}window`, '61m'), ann('window'), /from 6s to 1h/],
  ['window with sub-second precision', annotate(`${AS}window`, '6500ms'), ann('window'), /whole seconds/],
  ['window that is no Go duration', annotate(`${AS}window`, '60'), ann('window'), /got "60"/],
  ['panicWindowPercentage below 1', annotate(`${AS}panicWindowPercentage`, '0.5'), ann('panicWindowPercentage'), /1-100/],
  ['panicThresholdPercentage below 110', annotate(`${AS}panicThresholdPercentage`, '100'), ann('panicThresholdPercentage'), /110-1000/],
  ['scaleToZeroPodRetentionPeriod above 1h', annotate(`${AS}scaleToZeroPodRetentionPeriod`, '2h'), ann('scaleToZeroPodRetentionPeriod'), /from 0s to 1h/],
  ['scaleToZeroPodRetentionPeriod negative', annotate(`${AS}scale-to-zero-pod-retention-period`, '-1s'), ann('scale-to-zero-pod-retention-period'), /from 0s to 1h/],
  ['targetBurstCapacity -2', annotate(`${AS}target-burst-capacity`, '-2'), ann('target-burst-capacity'), /or -1 for unlimited/],
  ['the HPA class', annotate(`${AS}class`, 'hpa.autoscaling.knative.dev'), ann('class'), /only kpa\.autoscaling\.knative\.dev runs locally/],
]

// A misspelt field is two problems: the unknown field and the missing one.
const TWO_ISSUES = new Set(['a misspelt command field'])

t.test('each validation error names its field path, once, without follow-on noise', async (t) => {
  for (const [what, change, path, message] of cases) {
    const issues = issuesOf(change)
    const hit = issues.find((i) => i.path === path)
    t.ok(hit, `${what}: names ${path} (got ${JSON.stringify(issues)})`)
    if (hit) t.match(hit.message, message, `${what}: says ${message}`)
    t.equal(issues.length, TWO_ISSUES.has(what) ? 2 : 1, `${what}: issue count`)
  }
})

t.test('the error message is "<file>: <field path>: <problem>"', (t) => {
  const doc = base()
  doc.spec.template.spec.containers[0].ports = [{ containerPort: 0 }]
  try {
    parseServiceManifest(stringify(doc), 'svc.yaml')
    t.fail('expected an error')
  } catch (err) {
    t.equal((err as Error).message, 'svc.yaml: spec.template.spec.containers[0].ports[0].containerPort: must be an integer 1-65535, got number 0')
  }
  t.end()
})

t.test('annotation values Knative accepts parse into the autoscaling settings', (t) => {
  const doc = base()
  doc.spec.template.metadata = {
    annotations: {
      [`${AS}min-scale`]: '1',
      [`${AS}maxScale`]: '0',
      [`${AS}initial-scale`]: '2',
      [`${AS}target`]: '0.5',
      [`${AS}targetUtilizationPercentage`]: '85',
      [`${AS}metric`]: 'rps',
      [`${AS}window`]: '1m30s',
      [`${AS}panicWindowPercentage`]: '5.5',
      [`${AS}panicThresholdPercentage`]: '1e3',
      [`${AS}scaleToZeroPodRetentionPeriod`]: '1m5s',
      [`${AS}scale-down-delay`]: '15m',
      [`${AS}targetBurstCapacity`]: '-1',
      [`${AS}class`]: 'kpa.autoscaling.knative.dev',
    },
  }
  t.same(parseServiceManifest(stringify(doc), 'svc.yaml').template.autoscaling, {
    minScale: 1,
    maxScale: 0,
    initialScale: 2,
    target: 0.5,
    targetUtilizationPercentage: 85,
    metric: 'rps',
    windowMs: 90_000,
    panicWindowPercentage: 5.5,
    panicThresholdPercentage: 1000,
    scaleToZeroPodRetentionPeriodMs: 65_000,
    scaleDownDelayMs: 900_000,
    targetBurstCapacity: -1,
  })
  t.end()
})

t.test('maxScale 0 means no limit, so it is never below minScale', (t) => {
  t.same(issuesOf((d) => { annotate(`${AS}minScale`, '5')(d); annotate(`${AS}maxScale`, '0')(d) }), [])
  t.end()
})

t.test('initialScale 0 is accepted when allow-zero-initial-scale is set', (t) => {
  t.same(issuesOf(annotate(`${AS}initialScale`, '0'), { allowZeroInitialScale: true }), [])
  t.end()
})

t.test('window bounds are inclusive: 6s and 1h are accepted', (t) => {
  t.same(issuesOf(annotate(`${AS}window`, '6s')), [])
  t.same(issuesOf(annotate(`${AS}window`, '1h')), [])
  t.end()
})
