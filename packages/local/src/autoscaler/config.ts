// config-autoscaler (spec §4.2; Knative pkg/autoscaler/config) read from a
// file in the ConfigMap's own format, and the per-revision
// autoscaling.knative.dev/* annotations merged over it into what one
// revision's autoscaler works with. Parsing follows Go (strconv,
// time.ParseDuration), defaults and validation follow Knative; every error
// names the key or annotation it is about.

import { readFile } from 'node:fs/promises'
import { configMapData } from '../config-map-file.ts'
import { parseGoBool, parseGoDuration } from '@sluice/core/env'

export const CONFIG_MAP_NAME = 'config-autoscaler'

const SECOND = 1000
/** Knative autoscaling.WindowMin / WindowMax. */
export const WINDOW_MIN_MS = 6 * SECOND
export const WINDOW_MAX_MS = 3600 * SECOND
/** Knative autoscaling.TargetMin: no target below this. */
export const TARGET_MIN = 0.01
/** Stat buckets are one second wide (Knative config.BucketSize). */
export const BUCKET_MS = SECOND

export type ScalingMetric = 'concurrency' | 'rps'

export interface AutoscalerConfig {
  enableScaleToZero: boolean
  allowZeroInitialScale: boolean
  /** container-concurrency-target-percentage as a fraction (70 -> 0.7). */
  containerConcurrencyTargetFraction: number
  containerConcurrencyTargetDefault: number
  /** Utilisation for the rps metric: 0.7 and no key in Knative, only the annotation changes it. */
  targetUtilization: number
  rpsTargetDefault: number
  targetBurstCapacity: number
  activatorCapacity: number
  maxScaleUpRate: number
  maxScaleDownRate: number
  stableWindowMs: number
  panicWindowPercentage: number
  panicThresholdPercentage: number
  scaleToZeroGracePeriodMs: number
  scaleToZeroPodRetentionPeriodMs: number
  initialScale: number
  minScale: number
  maxScale: number
  maxScaleLimit: number
  podAutoscalerClass: string
}

export function defaultAutoscalerConfig(): AutoscalerConfig {
  return {
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
    stableWindowMs: 60 * SECOND,
    panicWindowPercentage: 10,
    panicThresholdPercentage: 200,
    scaleToZeroGracePeriodMs: 30 * SECOND,
    scaleToZeroPodRetentionPeriodMs: 0,
    initialScale: 1,
    minScale: 0,
    maxScale: 0,
    maxScaleLimit: 0,
    podAutoscalerClass: 'kpa.autoscaling.knative.dev',
  }
}

/** A bad config-autoscaler key; `key` is the data key. */
export class AutoscalerConfigError extends Error {
  override name = 'AutoscalerConfigError'
  readonly key: string
  constructor(key: string, message: string) {
    super(`${CONFIG_MAP_NAME}: ${key}: ${message}`)
    this.key = key
  }
}

/** A bad autoscaling annotation (or revision field); `annotation` is its full name. */
export class AnnotationError extends Error {
  override name = 'AnnotationError'
  readonly annotation: string
  constructor(annotation: string, message: string) {
    super(`annotation ${annotation}: ${message}`)
    this.annotation = annotation
  }
}

// ---- Go-style scalar parsing ----

/** strconv.ParseFloat for decimal input; non-finite values are refused. */
export function parseGoFloat(value: string): number | undefined {
  if (!/^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$/.test(value)) return undefined
  const n = Number(value)
  return Number.isFinite(n) ? n : undefined
}

/** strconv.ParseInt(v, 10, 32). */
export function parseGoInt32(value: string): number | undefined {
  if (!/^[+-]?[0-9]+$/.test(value)) return undefined
  const n = Number(value)
  return n >= -2147483648 && n <= 2147483647 ? n : undefined
}

/** Go's time.Duration.String for the values these messages show ("6s", "1h0m0s", "500ms"). */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s'
  const sign = ms < 0 ? '-' : ''
  let rest = Math.abs(ms)
  if (rest < SECOND) return `${sign}${rest}ms`
  const h = Math.floor(rest / 3_600_000)
  rest -= h * 3_600_000
  const m = Math.floor(rest / 60_000)
  rest -= m * 60_000
  const s = `${Number((rest / SECOND).toFixed(9))}s`
  if (h > 0) return `${sign}${h}h${m}m${s}`
  if (m > 0) return `${sign}${m}m${s}`
  return `${sign}${s}`
}

const q = (v: string): string => JSON.stringify(v)

// ---- the ConfigMap ----

/**
 * Knative's NewConfigFromMap: defaults, overridden by the keys present in
 * `data`, then validated. Unknown keys are ignored, as Knative does.
 */
export function autoscalerConfigFromData(data: Readonly<Record<string, string>>): AutoscalerConfig {
  const c = defaultAutoscalerConfig()
  const get = (key: string): string | undefined => (Object.hasOwn(data, key) ? data[key] : undefined)
  const bool = (key: string, fallback: boolean): boolean => {
    const v = get(key)
    if (v === undefined) return fallback
    const b = parseGoBool(v)
    if (b === undefined) throw new AutoscalerConfigError(key, `${q(v)} is not a boolean (true or false)`)
    return b
  }
  const float = (key: string, fallback: number): number => {
    const v = get(key)
    if (v === undefined) return fallback
    const n = parseGoFloat(v)
    if (n === undefined) throw new AutoscalerConfigError(key, `${q(v)} is not a number`)
    return n
  }
  const int32 = (key: string, fallback: number): number => {
    const v = get(key)
    if (v === undefined) return fallback
    const n = parseGoInt32(v)
    if (n === undefined) throw new AutoscalerConfigError(key, `${q(v)} is not a 32-bit integer`)
    return n
  }
  const duration = (key: string, fallback: number): number => {
    const v = get(key)
    if (v === undefined) return fallback
    const ms = parseGoDuration(v)
    if (ms === undefined) throw new AutoscalerConfigError(key, `${q(v)} is not a duration (e.g. "60s", "1m30s")`)
    return ms
  }

  c.podAutoscalerClass = get('pod-autoscaler-class') ?? c.podAutoscalerClass
  c.enableScaleToZero = bool('enable-scale-to-zero', c.enableScaleToZero)
  c.allowZeroInitialScale = bool('allow-zero-initial-scale', c.allowZeroInitialScale)
  c.maxScaleUpRate = float('max-scale-up-rate', c.maxScaleUpRate)
  c.maxScaleDownRate = float('max-scale-down-rate', c.maxScaleDownRate)
  c.containerConcurrencyTargetFraction = float('container-concurrency-target-percentage', 70)
  c.containerConcurrencyTargetDefault = float('container-concurrency-target-default', c.containerConcurrencyTargetDefault)
  c.rpsTargetDefault = float('requests-per-second-target-default', c.rpsTargetDefault)
  c.targetBurstCapacity = float('target-burst-capacity', c.targetBurstCapacity)
  c.panicWindowPercentage = float('panic-window-percentage', c.panicWindowPercentage)
  c.activatorCapacity = float('activator-capacity', c.activatorCapacity)
  c.panicThresholdPercentage = float('panic-threshold-percentage', c.panicThresholdPercentage)
  c.initialScale = int32('initial-scale', c.initialScale)
  c.minScale = int32('min-scale', c.minScale)
  c.maxScale = int32('max-scale', c.maxScale)
  c.maxScaleLimit = int32('max-scale-limit', c.maxScaleLimit)
  c.stableWindowMs = duration('stable-window', c.stableWindowMs)
  c.scaleToZeroGracePeriodMs = duration('scale-to-zero-grace-period', c.scaleToZeroGracePeriodMs)
  c.scaleToZeroPodRetentionPeriodMs = duration('scale-to-zero-pod-retention-period', c.scaleToZeroPodRetentionPeriodMs)

  // Legacy: values in (0, 1] are fractions already, larger ones percentages.
  if (c.containerConcurrencyTargetFraction > 1) c.containerConcurrencyTargetFraction /= 100
  validateConfig(c)
  return c
}

function validateConfig(c: AutoscalerConfig): void {
  const fail = (key: string, message: string): never => {
    throw new AutoscalerConfigError(key, message)
  }
  if (c.scaleToZeroGracePeriodMs <= 0) {
    fail('scale-to-zero-grace-period', `must be positive, was ${formatDuration(c.scaleToZeroGracePeriodMs)}`)
  }
  if (c.scaleToZeroPodRetentionPeriodMs < 0) {
    fail('scale-to-zero-pod-retention-period', `cannot be negative, was ${formatDuration(c.scaleToZeroPodRetentionPeriodMs)}`)
  }
  if (c.targetBurstCapacity < 0 && c.targetBurstCapacity !== -1) {
    fail('target-burst-capacity', `must be either non-negative or -1 (for unlimited), was ${c.targetBurstCapacity}`)
  }
  const fraction = c.containerConcurrencyTargetFraction
  if (fraction <= 0 || fraction > 1) {
    fail('container-concurrency-target-percentage', `${fraction * 100} is outside of the valid range (0, 100]`)
  }
  if (fraction * c.containerConcurrencyTargetDefault < TARGET_MIN) {
    fail('container-concurrency-target-default',
      `with container-concurrency-target-percentage yields a target concurrency of ${fraction * c.containerConcurrencyTargetDefault}, can't be less than ${TARGET_MIN}`)
  }
  if (c.rpsTargetDefault < TARGET_MIN) {
    fail('requests-per-second-target-default', `must be at least ${TARGET_MIN}, was ${c.rpsTargetDefault}`)
  }
  if (c.activatorCapacity < 1) fail('activator-capacity', `must be at least 1, was ${c.activatorCapacity}`)
  if (c.maxScaleUpRate <= 1) fail('max-scale-up-rate', `must be greater than 1.0, was ${c.maxScaleUpRate}`)
  if (c.maxScaleDownRate <= 1) fail('max-scale-down-rate', `must be greater than 1.0, was ${c.maxScaleDownRate}`)
  checkWindow(c.stableWindowMs, (m) => fail('stable-window', m))
  if (c.panicWindowPercentage < 1 || c.panicWindowPercentage > 100) {
    fail('panic-window-percentage', `must be in the [1, 100] interval, was ${c.panicWindowPercentage}`)
  }
  if (c.initialScale < 0 || (c.initialScale === 0 && !c.allowZeroInitialScale)) {
    fail('initial-scale', `must be at least 0 (or at least 1 when allow-zero-initial-scale is false), was ${c.initialScale}`)
  }
  if (c.maxScaleLimit < 0) fail('max-scale-limit', `must be at least 0, was ${c.maxScaleLimit}`)
  // A max-scale-limit requires a default max-scale within it.
  const minMaxScale = c.maxScaleLimit > 0 ? 1 : 0
  if (c.maxScale < minMaxScale || (c.maxScaleLimit > 0 && c.maxScale > c.maxScaleLimit)) {
    fail('max-scale', `must be in the [${minMaxScale}, max-scale-limit (${c.maxScaleLimit})] range, was ${c.maxScale}`)
  }
  if (c.minScale < 0 || (c.maxScale > 0 && c.minScale > c.maxScale)) {
    fail('min-scale', `must be in the [0, max-scale (${c.maxScale})] range, was ${c.minScale}`)
  }
}

/** Stable windows: [6s, 1h] with at most second precision. */
function checkWindow(ms: number, fail: (message: string) => never): void {
  if (ms < WINDOW_MIN_MS || ms > WINDOW_MAX_MS) {
    fail(`${formatDuration(ms)} must be in the [${formatDuration(WINDOW_MIN_MS)}, ${formatDuration(WINDOW_MAX_MS)}] range`)
  }
  if (ms % SECOND !== 0) fail(`${formatDuration(ms)} must be specified with at most second precision`)
}

/**
 * Parses a config-autoscaler ConfigMap manifest (YAML or JSON): `data` holds
 * the keys, every value a string as Kubernetes requires. With several
 * documents, the ConfigMap named config-autoscaler is used.
 */
export function parseAutoscalerConfigMap(text: string): AutoscalerConfig {
  const data = configMapData(text, CONFIG_MAP_NAME, (key, message) => new AutoscalerConfigError(key, message))
  return data === undefined ? defaultAutoscalerConfig() : autoscalerConfigFromData(data)
}

/** Reads and parses a config-autoscaler manifest file. */
export async function loadAutoscalerConfig(path: string): Promise<AutoscalerConfig> {
  return parseAutoscalerConfigMap(await readFile(path, 'utf8'))
}

// ---- per-revision annotations ----

export const ANNOTATION_PREFIX = 'autoscaling.knative.dev/'

/** Each setting's annotation names, newer lowercase form first (Knative kmap.KeyPriority). */
export const Annotation = {
  minScale: ['min-scale', 'minScale'],
  maxScale: ['max-scale', 'maxScale'],
  initialScale: ['initial-scale', 'initialScale'],
  target: ['target'],
  targetUtilizationPercentage: ['target-utilization-percentage', 'targetUtilizationPercentage'],
  metric: ['metric'],
  window: ['window'],
  panicWindowPercentage: ['panic-window-percentage', 'panicWindowPercentage'],
  panicThresholdPercentage: ['panic-threshold-percentage', 'panicThresholdPercentage'],
  scaleToZeroPodRetentionPeriod: ['scale-to-zero-pod-retention-period', 'scaleToZeroPodRetentionPeriod'],
} as const satisfies Record<string, readonly string[]>

/** What one revision's autoscaler works with: config and annotations merged. */
export interface RevisionScaling {
  metric: ScalingMetric
  /** Per-instance target of the metric (Knative DeciderSpec.TargetValue). */
  target: number
  /** Per-instance maximum of the metric (TotalValue): cc, or the default. */
  total: number
  /** panic-threshold-percentage / 100. */
  panicThreshold: number
  stableWindowMs: number
  panicWindowMs: number
  maxScaleUpRate: number
  maxScaleDownRate: number
  minScale: number
  /** 0 = unbounded. */
  maxScale: number
  initialScale: number
  enableScaleToZero: boolean
  scaleToZeroGracePeriodMs: number
  scaleToZeroPodRetentionMs: number
  /** Knative PA reachability: an unreachable revision may scale below min-scale. Always true locally. */
  reachable: boolean
}

export interface RevisionScalingInput {
  /** spec.containerConcurrency; 0 = unlimited. */
  containerConcurrency: number
  annotations?: Readonly<Record<string, string>> | undefined
}

/** Knative MakeMetric: the panic window in whole buckets, at least one. */
export function panicWindowMs(stableWindowMs: number, percentage: number): number {
  return Math.max(BUCKET_MS, Math.round((stableWindowMs * percentage) / 100 / BUCKET_MS) * BUCKET_MS)
}

/**
 * Merges a revision's annotations over the config (Knative's
 * ResolveMetricTarget, ScaleBounds, GetInitialScale, StableWindow,
 * MakeMetric), validating them as Knative's webhook does.
 */
export function resolveRevisionScaling(config: AutoscalerConfig, rev: RevisionScalingInput): RevisionScaling {
  const annotations = rev.annotations ?? {}
  const cc = rev.containerConcurrency
  if (!Number.isInteger(cc) || cc < 0) {
    throw new AnnotationError('containerConcurrency', `must be a non-negative integer, was ${cc}`)
  }

  /** The annotation's value and full name, refusing two spellings of one setting. */
  const lookup = (names: readonly string[]): { name: string; value: string } | undefined => {
    let found: { name: string; value: string } | undefined
    for (const short of names) {
      const name = ANNOTATION_PREFIX + short
      if (!Object.hasOwn(annotations, name)) continue
      if (found !== undefined) throw new AnnotationError(found.name, `conflicts with ${name}: set only one of them`)
      found = { name, value: annotations[name]! }
    }
    return found
  }
  const int = (names: readonly string[]): { name: string; n: number } | undefined => {
    const a = lookup(names)
    if (a === undefined) return undefined
    const n = parseGoInt32(a.value)
    if (n === undefined) throw new AnnotationError(a.name, `${q(a.value)} is not an integer`)
    return { name: a.name, n }
  }
  const float = (names: readonly string[], min: number, max: number): number | undefined => {
    const a = lookup(names)
    if (a === undefined) return undefined
    const n = parseGoFloat(a.value)
    if (n === undefined) throw new AnnotationError(a.name, `${q(a.value)} is not a number`)
    if (n < min || n > max) {
      throw new AnnotationError(a.name, `${a.value} must be ${max === Infinity ? `at least ${min}` : `in the [${min}, ${max}] interval`}`)
    }
    return n
  }
  const duration = (names: readonly string[]): { name: string; ms: number } | undefined => {
    const a = lookup(names)
    if (a === undefined) return undefined
    const ms = parseGoDuration(a.value)
    if (ms === undefined) throw new AnnotationError(a.name, `${q(a.value)} is not a duration (e.g. "60s")`)
    return { name: a.name, ms }
  }

  // metric
  const metricA = lookup(Annotation.metric)
  let metric: ScalingMetric = 'concurrency'
  if (metricA !== undefined) {
    if (metricA.value !== 'concurrency' && metricA.value !== 'rps') {
      throw new AnnotationError(metricA.name, `${q(metricA.value)} is not supported by the KPA autoscaler (concurrency or rps)`)
    }
    metric = metricA.value
  }

  // target and utilisation (ResolveMetricTarget)
  const annotationTarget = float(Annotation.target, TARGET_MIN, Infinity)
  const utilisationPct = float(Annotation.targetUtilizationPercentage, 1, 100)
  let total: number
  let utilisation: number
  if (metric === 'rps') {
    total = config.rpsTargetDefault
    utilisation = config.targetUtilization
  } else {
    total = cc === 0 ? config.containerConcurrencyTargetDefault : cc
    utilisation = config.containerConcurrencyTargetFraction
  }
  if (annotationTarget !== undefined) {
    // Never aim above what one instance is allowed to take.
    total = metric === 'concurrency' && cc !== 0 ? Math.min(annotationTarget, cc) : annotationTarget
  }
  if (utilisationPct !== undefined) utilisation = utilisationPct / 100
  const target = Math.max(TARGET_MIN, total * utilisation)

  // windows
  let stableWindowMs = config.stableWindowMs
  const windowA = duration(Annotation.window)
  if (windowA !== undefined) {
    checkWindow(windowA.ms, (m) => {
      throw new AnnotationError(windowA.name, m)
    })
    stableWindowMs = windowA.ms
  }
  const panicPct = float(Annotation.panicWindowPercentage, 1, 100) ?? config.panicWindowPercentage
  const panicThresholdPct = float(Annotation.panicThresholdPercentage, 110, 1000) ?? config.panicThresholdPercentage

  // scale bounds
  const minA = int(Annotation.minScale)
  const maxA = int(Annotation.maxScale)
  const initialA = int(Annotation.initialScale)
  if (minA !== undefined && minA.n < 0) throw new AnnotationError(minA.name, `must be at least 0, was ${minA.n}`)
  if (maxA !== undefined) {
    if (maxA.n < 0) throw new AnnotationError(maxA.name, `must be at least 0, was ${maxA.n}`)
    if (config.maxScaleLimit > 0 && (maxA.n < 1 || maxA.n > config.maxScaleLimit)) {
      throw new AnnotationError(maxA.name, `must be in the [1, max-scale-limit (${config.maxScaleLimit})] range, was ${maxA.n}`)
    }
  }
  const minScale = minA?.n ?? config.minScale
  const maxScale = maxA?.n ?? config.maxScale
  if (maxScale !== 0 && minScale > maxScale) {
    throw new AnnotationError(minA?.name ?? maxA!.name, `min-scale ${minScale} is greater than max-scale ${maxScale}`)
  }
  let initialScale = config.initialScale
  if (initialA !== undefined) {
    if (initialA.n < 0) throw new AnnotationError(initialA.name, `must be at least 0, was ${initialA.n}`)
    if (initialA.n === 0 && !config.allowZeroInitialScale) {
      throw new AnnotationError(initialA.name, '0 is not allowed unless allow-zero-initial-scale is true in config-autoscaler')
    }
    initialScale = initialA.n
  }

  // scale to zero
  let retentionMs = config.scaleToZeroPodRetentionPeriodMs
  const retentionA = duration(Annotation.scaleToZeroPodRetentionPeriod)
  if (retentionA !== undefined) {
    if (retentionA.ms < 0 || retentionA.ms > WINDOW_MAX_MS) {
      throw new AnnotationError(retentionA.name, `${formatDuration(retentionA.ms)} must be in the [0s, ${formatDuration(WINDOW_MAX_MS)}] range`)
    }
    retentionMs = retentionA.ms
  }

  return {
    metric,
    target,
    total,
    panicThreshold: panicThresholdPct / 100,
    stableWindowMs,
    panicWindowMs: panicWindowMs(stableWindowMs, panicPct),
    maxScaleUpRate: config.maxScaleUpRate,
    maxScaleDownRate: config.maxScaleDownRate,
    minScale,
    maxScale,
    initialScale,
    enableScaleToZero: config.enableScaleToZero,
    scaleToZeroGracePeriodMs: config.scaleToZeroGracePeriodMs,
    scaleToZeroPodRetentionMs: retentionMs,
    reachable: true,
  }
}
