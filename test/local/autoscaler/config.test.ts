// config-autoscaler from a ConfigMap manifest (spec §4.2): Knative's defaults,
// Go parsing, Knative's validation with errors naming the key; and the
// per-revision autoscaling.knative.dev/* annotations merged over it.
import t, { type Test } from 'tap'
import { mkdtemp, writeFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  AnnotationError,
  AutoscalerConfigError,
  autoscalerConfigFromData,
  defaultAutoscalerConfig,
  formatDuration,
  loadAutoscalerConfig,
  parseAutoscalerConfigMap,
  resolveRevisionScaling,
  type AutoscalerConfig,
} from '@sluice/local/autoscaler/config'

const A = 'autoscaling.knative.dev/'

function configError(t: Test, fn: () => unknown, key: string, pattern: RegExp, what: string): void {
  let err: unknown
  try {
    fn()
  } catch (e) {
    err = e
  }
  t.ok(err instanceof AutoscalerConfigError, `${what}: throws AutoscalerConfigError`)
  if (!(err instanceof AutoscalerConfigError)) return
  t.equal(err.key, key, `${what}: names the key`)
  t.match(err.message, new RegExp(`^config-autoscaler: ${key.replace(/[()]/g, '\\$&')}: `), `${what}: message starts with the key`)
  t.match(err.message, pattern, what)
}

function annotationError(t: Test, fn: () => unknown, annotation: string, pattern: RegExp, what: string): void {
  let err: unknown
  try {
    fn()
  } catch (e) {
    err = e
  }
  t.ok(err instanceof AnnotationError, `${what}: throws AnnotationError`)
  if (!(err instanceof AnnotationError)) return
  t.equal(err.annotation, annotation, `${what}: names the annotation`)
  t.match(err.message, pattern, what)
}

t.test('defaults are Knative\'s config-autoscaler defaults', async (t) => {
  const c = defaultAutoscalerConfig()
  t.same(c, {
    enableScaleToZero: true,
    allowZeroInitialScale: false,
    containerConcurrencyTargetFraction: 0.7,
    containerConcurrencyTargetDefault: 100,
    targetUtilization: 0.7,
    rpsTargetDefault: 200,
    targetBurstCapacity: 211,
    activatorCapacity: 100,
    maxScaleUpRate: 1000,
    maxScaleDownRate: 2,
    stableWindowMs: 60_000,
    panicWindowPercentage: 10,
    panicThresholdPercentage: 200,
    scaleToZeroGracePeriodMs: 30_000,
    scaleToZeroPodRetentionPeriodMs: 0,
    initialScale: 1,
    minScale: 0,
    maxScale: 0,
    maxScaleLimit: 0,
    podAutoscalerClass: 'kpa.autoscaling.knative.dev',
  })
  t.same(autoscalerConfigFromData({}), c, 'an empty data map gives the defaults')
  t.same(parseAutoscalerConfigMap('apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: config-autoscaler\n'), c, 'no data: defaults')
  t.same(parseAutoscalerConfigMap(''), c, 'an empty file: defaults')
})

t.test('a ConfigMap manifest in Knative\'s own format is read, _example and unknown keys ignored', async (t) => {
  const c = parseAutoscalerConfigMap(`
apiVersion: v1
kind: ConfigMap
metadata:
  name: config-autoscaler
  namespace: knative-serving
data:
  _example: |
    # stable-window: "60s"
    container-concurrency-target-default: "100"
  stable-window: "2m30s"
  panic-window-percentage: "20.5"
  panic-threshold-percentage: "300"
  container-concurrency-target-percentage: "80"
  container-concurrency-target-default: "50"
  requests-per-second-target-default: "150"
  max-scale-up-rate: "3.5"
  max-scale-down-rate: "4"
  scale-to-zero-grace-period: "45s"
  scale-to-zero-pod-retention-period: "1m"
  enable-scale-to-zero: "false"
  allow-zero-initial-scale: "true"
  initial-scale: "0"
  min-scale: "1"
  max-scale: "10"
  max-scale-limit: "20"
  target-burst-capacity: "-1"
  activator-capacity: "50"
  scale-down-delay: "0s"
  some-future-key: "whatever"
`)
  t.equal(c.stableWindowMs, 150_000, 'stable-window "2m30s"')
  t.equal(c.panicWindowPercentage, 20.5)
  t.equal(c.panicThresholdPercentage, 300)
  t.equal(c.containerConcurrencyTargetFraction, 0.8, 'a percentage above 1 becomes a fraction')
  t.equal(c.containerConcurrencyTargetDefault, 50)
  t.equal(c.rpsTargetDefault, 150)
  t.equal(c.targetUtilization, 0.7, 'the rps utilisation has no key in Knative')
  t.equal(c.maxScaleUpRate, 3.5)
  t.equal(c.maxScaleDownRate, 4)
  t.equal(c.scaleToZeroGracePeriodMs, 45_000)
  t.equal(c.scaleToZeroPodRetentionPeriodMs, 60_000)
  t.equal(c.enableScaleToZero, false)
  t.equal(c.allowZeroInitialScale, true)
  t.equal(c.initialScale, 0, 'initial-scale 0 is fine with allow-zero-initial-scale')
  t.equal(c.minScale, 1)
  t.equal(c.maxScale, 10)
  t.equal(c.maxScaleLimit, 20)
  t.equal(c.targetBurstCapacity, -1)
  t.equal(c.activatorCapacity, 50)
})

t.test('values parse as Go does: ParseBool spellings, legacy fractions, duration syntax', async (t) => {
  t.equal(autoscalerConfigFromData({ 'enable-scale-to-zero': 'F' }).enableScaleToZero, false, '"F"')
  t.equal(autoscalerConfigFromData({ 'enable-scale-to-zero': '0' }).enableScaleToZero, false, '"0"')
  t.equal(autoscalerConfigFromData({ 'enable-scale-to-zero': 'TRUE' }).enableScaleToZero, true, '"TRUE"')
  t.equal(autoscalerConfigFromData({ 'container-concurrency-target-percentage': '0.5' }).containerConcurrencyTargetFraction, 0.5,
    'a value in (0, 1] is already a fraction (legacy)')
  t.equal(autoscalerConfigFromData({ 'container-concurrency-target-percentage': '100' }).containerConcurrencyTargetFraction, 1)
  t.equal(autoscalerConfigFromData({ 'stable-window': '1h' }).stableWindowMs, 3_600_000)
  t.equal(autoscalerConfigFromData({ 'stable-window': '90000ms' }).stableWindowMs, 90_000)
  t.equal(autoscalerConfigFromData({ 'scale-to-zero-grace-period': '1.5s' }).scaleToZeroGracePeriodMs, 1500)
  t.equal(autoscalerConfigFromData({ 'max-scale-up-rate': '1e3' }).maxScaleUpRate, 1000, 'exponent notation')
})

t.test('invalid values are refused with an error naming the key', async (t) => {
  const bad = (data: Record<string, string>) => () => autoscalerConfigFromData(data)
  configError(t, bad({ 'stable-window': 'sixty' }), 'stable-window', /"sixty" is not a duration/, 'unparsable duration')
  configError(t, bad({ 'stable-window': '60' }), 'stable-window', /"60" is not a duration/, 'a bare number is not a Go duration')
  configError(t, bad({ 'stable-window': '5s' }), 'stable-window', /5s must be in the \[6s, 1h0m0s\] range/, 'below the 6 s minimum')
  configError(t, bad({ 'stable-window': '2h' }), 'stable-window', /2h0m0s must be in the \[6s, 1h0m0s\] range/, 'above 1 h')
  configError(t, bad({ 'stable-window': '60500ms' }), 'stable-window', /at most second precision/, 'sub-second precision')
  configError(t, bad({ 'panic-window-percentage': '0.5' }), 'panic-window-percentage', /\[1, 100\]/, 'panic window below 1 %')
  configError(t, bad({ 'panic-window-percentage': '101' }), 'panic-window-percentage', /\[1, 100\]/, 'panic window above 100 %')
  configError(t, bad({ 'max-scale-up-rate': '1' }), 'max-scale-up-rate', /greater than 1\.0/, 'scale-up rate 1')
  configError(t, bad({ 'max-scale-down-rate': '0.5' }), 'max-scale-down-rate', /greater than 1\.0/, 'scale-down rate 0.5')
  configError(t, bad({ 'max-scale-down-rate': 'two' }), 'max-scale-down-rate', /"two" is not a number/, 'not a number')
  configError(t, bad({ 'container-concurrency-target-percentage': '0' }), 'container-concurrency-target-percentage', /\(0, 100\]/, 'utilisation 0')
  configError(t, bad({ 'container-concurrency-target-percentage': '150' }), 'container-concurrency-target-percentage', /150 is outside/, 'utilisation 150 %')
  configError(t, bad({ 'container-concurrency-target-default': '0.001' }), 'container-concurrency-target-default', /can't be less than 0\.01/, 'target below TargetMin')
  configError(t, bad({ 'requests-per-second-target-default': '0' }), 'requests-per-second-target-default', /at least 0\.01/, 'rps target 0')
  configError(t, bad({ 'scale-to-zero-grace-period': '0s' }), 'scale-to-zero-grace-period', /must be positive/, 'grace period 0')
  configError(t, bad({ 'scale-to-zero-pod-retention-period': '-1s' }), 'scale-to-zero-pod-retention-period', /cannot be negative/, 'negative retention')
  configError(t, bad({ 'target-burst-capacity': '-2' }), 'target-burst-capacity', /non-negative or -1/, 'TBC -2')
  configError(t, bad({ 'activator-capacity': '0.5' }), 'activator-capacity', /at least 1/, 'activator capacity')
  configError(t, bad({ 'initial-scale': '0' }), 'initial-scale', /allow-zero-initial-scale/, 'initial-scale 0 without allow-zero-initial-scale')
  configError(t, bad({ 'initial-scale': '-1', 'allow-zero-initial-scale': 'true' }), 'initial-scale', /at least 0/, 'negative initial scale')
  configError(t, bad({ 'initial-scale': '1.5' }), 'initial-scale', /"1.5" is not a 32-bit integer/, 'fractional initial scale')
  configError(t, bad({ 'max-scale': '3000000000' }), 'max-scale', /not a 32-bit integer/, 'beyond int32')
  configError(t, bad({ 'max-scale': '30', 'max-scale-limit': '20' }), 'max-scale', /max-scale-limit \(20\)/, 'max-scale above the limit')
  configError(t, bad({ 'max-scale-limit': '20' }), 'max-scale', /\[1, max-scale-limit/, 'a limit requires a default max-scale')
  configError(t, bad({ 'min-scale': '5', 'max-scale': '3' }), 'min-scale', /\[0, max-scale \(3\)\]/, 'min above max')
  configError(t, bad({ 'enable-scale-to-zero': 'yes' }), 'enable-scale-to-zero', /"yes" is not a boolean/, 'not a Go bool')
})

t.test('the manifest must look like a ConfigMap: string values (errors name the key), a `data` map, valid YAML', async (t) => {
  configError(t, () => parseAutoscalerConfigMap('data:\n  stable-window: 60\n'), 'stable-window',
    /values must be strings, got number \(quote it: stable-window: "60"\)/, 'an unquoted number')
  configError(t, () => parseAutoscalerConfigMap('data:\n  enable-scale-to-zero: false\n'), 'enable-scale-to-zero',
    /got boolean/, 'an unquoted boolean')
  configError(t, () => parseAutoscalerConfigMap('data: [1, 2]\n'), 'data', /mapping/, 'data as a list')
  configError(t, () => parseAutoscalerConfigMap('kind: Secret\ndata: {}\n'), 'kind', /expected ConfigMap/, 'another kind')
  configError(t, () => parseAutoscalerConfigMap('data:\n  a: "1\n'), '(file)', /invalid YAML/, 'broken YAML')
  configError(t, () => parseAutoscalerConfigMap('- 1\n- 2\n'), '(file)', /expected a ConfigMap/, 'a list document')
})

t.test('with several documents, the ConfigMap named config-autoscaler is used', async (t) => {
  const c = parseAutoscalerConfigMap(`
apiVersion: v1
kind: ConfigMap
metadata: { name: config-network }
data: { stable-window: "7s" }
---
apiVersion: v1
kind: ConfigMap
metadata: { name: config-autoscaler }
data: { stable-window: "8s" }
`)
  t.equal(c.stableWindowMs, 8000)
  configError(t, () => parseAutoscalerConfigMap('kind: ConfigMap\nmetadata: {name: a}\n---\nkind: ConfigMap\nmetadata: {name: b}\n'),
    '(file)', /none of the 2 documents/, 'no config-autoscaler among several')
})

t.test('loadAutoscalerConfig reads the file', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-as-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const file = join(dir, 'config-autoscaler.yaml')
  await writeFile(file, 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: config-autoscaler\ndata:\n  stable-window: "30s"\n')
  t.equal((await loadAutoscalerConfig(file)).stableWindowMs, 30_000)
  await t.rejects(loadAutoscalerConfig(join(dir, 'missing.yaml')), { code: 'ENOENT' })
})

t.test('formatDuration prints Go durations', async (t) => {
  t.equal(formatDuration(6000), '6s')
  t.equal(formatDuration(3_600_000), '1h0m0s')
  t.equal(formatDuration(90_000), '1m30s')
  t.equal(formatDuration(60_500), '1m0.5s')
  t.equal(formatDuration(500), '500ms')
  t.equal(formatDuration(0), '0s')
})

// ---- annotations ----

const cfg = (data: Record<string, string> = {}): AutoscalerConfig => autoscalerConfigFromData(data)

t.test('target per instance: cc x utilisation, the default target when cc is 0, rps default for rps', async (t) => {
  const c = cfg()
  t.equal(resolveRevisionScaling(c, { containerConcurrency: 0 }).target, 70, 'cc 0: 100 x 0.7')
  t.equal(resolveRevisionScaling(c, { containerConcurrency: 0 }).total, 100)
  t.equal(resolveRevisionScaling(c, { containerConcurrency: 10 }).target, 7, 'cc 10: 10 x 0.7')
  t.equal(resolveRevisionScaling(c, { containerConcurrency: 10 }).total, 10)
  const rps = resolveRevisionScaling(c, { containerConcurrency: 10, annotations: { [`${A}metric`]: 'rps' } })
  t.equal(rps.metric, 'rps')
  t.equal(rps.target, 140, 'rps: 200 x 0.7, cc plays no part')
  t.equal(resolveRevisionScaling(cfg({ 'container-concurrency-target-percentage': '50' }), { containerConcurrency: 0 }).target, 50,
    'utilisation from the config')
  t.equal(resolveRevisionScaling(cfg({ 'container-concurrency-target-percentage': '50' }), { containerConcurrency: 0, annotations: { [`${A}metric`]: 'rps' } }).target,
    140, 'the concurrency utilisation key does not apply to rps (Knative)')
})

t.test('target and targetUtilizationPercentage annotations; target is capped at cc', async (t) => {
  const c = cfg()
  t.equal(resolveRevisionScaling(c, { containerConcurrency: 0, annotations: { [`${A}target`]: '20' } }).target, 14, '20 x 0.7')
  t.equal(resolveRevisionScaling(c, { containerConcurrency: 10, annotations: { [`${A}target`]: '50' } }).target, 7, 'min(50, cc 10) x 0.7')
  t.equal(resolveRevisionScaling(c, { containerConcurrency: 10, annotations: { [`${A}target`]: '5' } }).target, 3.5, 'min(5, 10) x 0.7')
  t.equal(resolveRevisionScaling(c, { containerConcurrency: 0, annotations: { [`${A}target`]: '20', [`${A}targetUtilizationPercentage`]: '50' } }).target, 10,
    '20 x 50 %')
  t.equal(resolveRevisionScaling(c, { containerConcurrency: 0, annotations: { [`${A}target-utilization-percentage`]: '100' } }).target, 100,
    'lowercase form')
  t.equal(resolveRevisionScaling(c, { containerConcurrency: 0, annotations: { [`${A}metric`]: 'rps', [`${A}target`]: '10' } }).target, 7,
    'rps target 10 x 0.7, not capped by cc')
  t.equal(resolveRevisionScaling(c, { containerConcurrency: 0, annotations: { [`${A}target`]: '0.01', [`${A}targetUtilizationPercentage`]: '1' } }).target,
    0.01, 'never below TargetMin 0.01')
})

t.test('window, panic window and panic threshold annotations', async (t) => {
  const c = cfg()
  const d = resolveRevisionScaling(c, { containerConcurrency: 0 })
  t.equal(d.stableWindowMs, 60_000)
  t.equal(d.panicWindowMs, 6000, '60 s x 10 %')
  t.equal(d.panicThreshold, 2, '200 %')
  const a = resolveRevisionScaling(c, {
    containerConcurrency: 0,
    annotations: { [`${A}window`]: '20s', [`${A}panicWindowPercentage`]: '25', [`${A}panicThresholdPercentage`]: '150' },
  })
  t.equal(a.stableWindowMs, 20_000)
  t.equal(a.panicWindowMs, 5000, '20 s x 25 %')
  t.equal(a.panicThreshold, 1.5)
  t.equal(resolveRevisionScaling(c, { containerConcurrency: 0, annotations: { [`${A}window`]: '6s' } }).panicWindowMs, 1000,
    '6 s x 10 % = 0.6 s: rounded to whole buckets, at least one')
  t.equal(resolveRevisionScaling(c, { containerConcurrency: 0, annotations: { [`${A}window`]: '25s' } }).panicWindowMs, 3000,
    '25 s x 10 % = 2.5 s rounds to 3 s')
})

t.test('scale bounds, initial scale and retention period from annotations, both spellings', async (t) => {
  const c = cfg({ 'min-scale': '1', 'max-scale': '9' })
  const d = resolveRevisionScaling(c, { containerConcurrency: 0 })
  t.same([d.minScale, d.maxScale, d.initialScale, d.scaleToZeroPodRetentionMs], [1, 9, 1, 0], 'config defaults')
  const old = resolveRevisionScaling(c, {
    containerConcurrency: 0,
    annotations: { [`${A}minScale`]: '2', [`${A}maxScale`]: '5', [`${A}initialScale`]: '3', [`${A}scaleToZeroPodRetentionPeriod`]: '1m5s' },
  })
  t.same([old.minScale, old.maxScale, old.initialScale, old.scaleToZeroPodRetentionMs], [2, 5, 3, 65_000], 'camelCase forms')
  const lower = resolveRevisionScaling(c, {
    containerConcurrency: 0,
    annotations: { [`${A}min-scale`]: '0', [`${A}max-scale`]: '0', [`${A}initial-scale`]: '4', [`${A}scale-to-zero-pod-retention-period`]: '10s' },
  })
  t.same([lower.minScale, lower.maxScale, lower.initialScale, lower.scaleToZeroPodRetentionMs], [0, 0, 4, 10_000], 'lowercase forms; maxScale 0 = unbounded')
  const zero = resolveRevisionScaling(cfg({ 'allow-zero-initial-scale': 'true' }), { containerConcurrency: 0, annotations: { [`${A}initialScale`]: '0' } })
  t.equal(zero.initialScale, 0, 'initialScale 0 with allow-zero-initial-scale')
  t.equal(resolveRevisionScaling(cfg({ 'enable-scale-to-zero': 'false' }), { containerConcurrency: 0 }).enableScaleToZero, false)
})

t.test('bad annotations are refused with an error naming the annotation', async (t) => {
  const c = cfg({ 'max-scale-limit': '10', 'max-scale': '10' })
  const bad = (annotations: Record<string, string>, cc = 0) => () => resolveRevisionScaling(c, { containerConcurrency: cc, annotations })
  annotationError(t, bad({ [`${A}minScale`]: 'two' }), `${A}minScale`, /"two" is not an integer/, 'non-integer minScale')
  annotationError(t, bad({ [`${A}min-scale`]: '-1' }), `${A}min-scale`, /at least 0/, 'negative min-scale')
  annotationError(t, bad({ [`${A}minScale`]: '1', [`${A}min-scale`]: '2' }), `${A}min-scale`,
    /conflicts with autoscaling\.knative\.dev\/minScale/, 'both spellings at once')
  annotationError(t, bad({ [`${A}minScale`]: '4', [`${A}maxScale`]: '3' }), `${A}minScale`, /min-scale 4 is greater than max-scale 3/, 'min above max')
  annotationError(t, bad({ [`${A}maxScale`]: '11' }), `${A}maxScale`, /max-scale-limit \(10\)/, 'above max-scale-limit')
  annotationError(t, bad({ [`${A}maxScale`]: '0' }), `${A}maxScale`, /\[1, max-scale-limit/, 'unbounded not allowed under a limit')
  annotationError(t, bad({ [`${A}initialScale`]: '0' }), `${A}initialScale`, /allow-zero-initial-scale/, 'initialScale 0 not allowed')
  annotationError(t, bad({ [`${A}initial-scale`]: '-2' }), `${A}initial-scale`, /at least 0/, 'negative initial-scale')
  annotationError(t, bad({ [`${A}target`]: '0' }), `${A}target`, /at least 0\.01/, 'target 0')
  annotationError(t, bad({ [`${A}target`]: 'lots' }), `${A}target`, /"lots" is not a number/, 'target not a number')
  annotationError(t, bad({ [`${A}targetUtilizationPercentage`]: '0.5' }), `${A}targetUtilizationPercentage`, /\[1, 100\]/, 'utilisation below 1')
  annotationError(t, bad({ [`${A}metric`]: 'cpu' }), `${A}metric`, /"cpu" is not supported by the KPA/, 'an HPA metric')
  annotationError(t, bad({ [`${A}window`]: '5s' }), `${A}window`, /\[6s, 1h0m0s\]/, 'window too short')
  annotationError(t, bad({ [`${A}window`]: '10.5s' }), `${A}window`, /second precision/, 'window precision')
  annotationError(t, bad({ [`${A}window`]: 'soon' }), `${A}window`, /"soon" is not a duration/, 'window not a duration')
  annotationError(t, bad({ [`${A}panicWindowPercentage`]: '0' }), `${A}panicWindowPercentage`, /\[1, 100\]/, 'panic window 0 %')
  annotationError(t, bad({ [`${A}panicThresholdPercentage`]: '100' }), `${A}panicThresholdPercentage`, /\[110, 1000\]/, 'panic threshold 100 %')
  annotationError(t, bad({ [`${A}panic-threshold-percentage`]: '1001' }), `${A}panic-threshold-percentage`, /\[110, 1000\]/, 'panic threshold 1001 %')
  annotationError(t, bad({ [`${A}scaleToZeroPodRetentionPeriod`]: '-1s' }), `${A}scaleToZeroPodRetentionPeriod`, /\[0s, 1h0m0s\]/, 'negative retention')
  annotationError(t, bad({ [`${A}scale-to-zero-pod-retention-period`]: '2h' }), `${A}scale-to-zero-pod-retention-period`, /\[0s, 1h0m0s\]/, 'retention over 1 h')
  annotationError(t, bad({}, -1), 'containerConcurrency', /non-negative integer/, 'negative containerConcurrency')
})
