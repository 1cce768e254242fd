// One revision's scaling decisions, pure and clocked by the caller: Knative's
// KPA math (pkg/autoscaler/scaling/autoscaler.go: stable and panic pod
// counts, rate limits, panic mode) followed by what the KPA reconciler does
// with its answer (kpa/scaler.go: initial scale, min/max bounds, and the
// scale-to-zero rules: enable-scale-to-zero, a stable window of activity,
// then the grace period and pod retention period of inactivity).

import type { RevisionScaling } from './config.ts'
import type { ObservedMetric } from './metric-buckets.ts'

/** Knative's activation timeout: progress-deadline (600 s) + 30 s buffer. */
export const DEFAULT_ACTIVATION_TIMEOUT_MS = 630_000

export interface Decision {
  /** Instances wanted now. */
  desired: number
  /** What the KPA math alone asked for; -1 until it first had data. */
  recommended: number
  /** Whether this evaluation had data (false: the last recommendation stands). */
  hasData: boolean
  panicking: boolean
  /** Window averages behind the decision (NaN without data). */
  observedStable: number
  observedPanic: number
  /** Ready instances the math used (at least 1). */
  readyPods: number
  /** Why `desired` differs from `recommended`; '' when it does not. */
  reason: string
}

export interface DeciderOptions {
  activationTimeoutMs?: number
}

/** applyBounds of kpa/scaler.go; max 0 = unbounded. */
export function applyBounds(min: number, max: number, x: number): number {
  if (x < min) return min
  if (max !== 0 && x > max) return max
  return x
}

const seconds = (ms: number): string => `${Math.round(ms / 100) / 10}s`

export class Decider {
  readonly spec: RevisionScaling
  private readonly activationTimeoutMs: number
  // Panic state (autoscaler.go): when the panic condition last held, and
  // the most pods asked for since panicking began.
  private panicTime: number | undefined
  private maxPanicPods = 0
  private lastRecommended = -1
  /** Initial scale reached once (Knative's ScaleTargetInitialized). */
  private initialized: boolean
  /** Since when some instance has been ready (the PA's Active condition). */
  private activeSince: number | undefined
  /** Since when instances have been wanted but none is ready (Activating). */
  private activatingSince: number | undefined
  /** Since when the decision has been 0 after the active period (Inactive). */
  private inactiveSince: number | undefined
  private current: number
  /**
   * Knative's PA reachability: false once no route sends traffic to the
   * revision; min-scale then no longer holds it up, and it may drop at once.
   */
  reachable: boolean

  constructor(spec: RevisionScaling, opts: DeciderOptions = {}) {
    this.spec = spec
    this.reachable = spec.reachable
    this.activationTimeoutMs = opts.activationTimeoutMs ?? DEFAULT_ACTIVATION_TIMEOUT_MS
    this.initialized = spec.initialScale <= 1
    this.current = applyBounds(spec.minScale, spec.maxScale, spec.initialScale)
  }

  /** The last decision's desired count (the bounded initial scale before the first). */
  get desired(): number {
    return this.current
  }

  get panicking(): boolean {
    return this.panicTime !== undefined
  }

  /**
   * Decides at `now` with `readyCount` ready instances; `observed` is
   * undefined when the metric has no data in the stable window, in which
   * case the previous recommendation stands (Knative: invalid scale result).
   */
  decide(now: number, readyCount: number, observed: ObservedMetric | undefined): Decision {
    const spec = this.spec
    if (readyCount >= spec.initialScale) this.initialized = true
    if (readyCount > 0) {
      this.activeSince ??= now
      this.activatingSince = undefined
    } else {
      this.activeSince = undefined
      if (this.current > 0) this.activatingSince ??= now
      else this.activatingSince = undefined
    }
    const readyPods = Math.max(1, readyCount)

    let recommended = this.lastRecommended
    if (observed !== undefined) {
      recommended = this.recommend(now, readyPods, observed)
      this.lastRecommended = recommended
    }

    let desired = this.current
    let reason = ''
    if (recommended < 0) {
      reason = 'no metrics yet'
    } else {
      let min = this.reachable ? spec.minScale : 0
      // Until the initial scale has been reached once, it acts as a minimum.
      const initialFloor = spec.initialScale > 1 && !this.initialized && spec.initialScale > min
      if (initialFloor) min = spec.initialScale
      desired = applyBounds(min, spec.maxScale, recommended)
      if (desired > recommended) reason = initialFloor ? `initial-scale ${min}` : `min-scale ${min}`
      else if (desired < recommended) reason = `max-scale ${spec.maxScale}`
      if (desired === 0) [desired, reason] = this.towardsZero(now, readyCount)
      else this.inactiveSince = undefined
    }
    this.current = desired
    return {
      desired,
      recommended,
      hasData: observed !== undefined,
      panicking: this.panicTime !== undefined,
      observedStable: observed?.stable ?? NaN,
      observedPanic: observed?.panic ?? NaN,
      readyPods,
      reason,
    }
  }

  /** The KPA math: desired pods from the observed averages, with panic mode. */
  private recommend(now: number, readyPods: number, observed: ObservedMetric): number {
    const spec = this.spec
    // At least one more pod is always allowed up; down, at most by the rate.
    const maxScaleUp = Math.ceil(spec.maxScaleUpRate * readyPods)
    const maxScaleDown = this.reachable ? Math.floor(readyPods / spec.maxScaleDownRate) : 0
    const stablePods = Math.ceil(observed.stable / spec.target)
    const panicPods = Math.ceil(observed.panic / spec.target)
    const desiredStable = Math.min(Math.max(stablePods, maxScaleDown), maxScaleUp)
    const desiredPanic = Math.min(Math.max(panicPods, maxScaleDown), maxScaleUp)

    if (panicPods / readyPods >= spec.panicThreshold) {
      // Enter panic, or stay in it: the window restarts at every breach.
      this.panicTime = now
    } else if (this.panicTime !== undefined && this.panicTime + spec.stableWindowMs < now) {
      // A whole stable window without a breach: the surge is in the stable metric now.
      this.panicTime = undefined
      this.maxPanicPods = 0
    }
    if (this.panicTime === undefined) return desiredStable
    // In panic: provision for the larger of the two, and never scale down.
    const want = Math.max(desiredStable, desiredPanic)
    if (want > this.maxPanicPods) this.maxPanicPods = want
    return this.maxPanicPods
  }

  /** kpa/scaler.go handleScaleToZero: what a decision of 0 really means now. */
  private towardsZero(now: number, readyCount: number): [number, string] {
    const spec = this.spec
    if (!spec.enableScaleToZero) return [1, 'enable-scale-to-zero is false']
    if (this.current === 0) return [0, '']
    if (readyCount === 0) {
      // Wanted but never ready (Activating): give up only after the activation timeout.
      const waited = now - (this.activatingSince ?? now)
      if (waited >= this.activationTimeoutMs) {
        this.inactiveSince = undefined
        return [0, `scale to zero: no instance became ready within ${seconds(this.activationTimeoutMs)}`]
      }
      return [this.current, 'activating']
    }
    const activeFor = now - (this.activeSince ?? now)
    if (activeFor < spec.stableWindowMs) {
      return [1, `keeping 1: active for ${seconds(activeFor)} < stable window ${seconds(spec.stableWindowMs)}`]
    }
    this.inactiveSince ??= now
    const inactiveFor = now - this.inactiveSince
    const wait = Math.max(spec.scaleToZeroGracePeriodMs, spec.scaleToZeroPodRetentionMs)
    if (inactiveFor >= wait) {
      this.inactiveSince = undefined
      return [0, `scale to zero: inactive for ${seconds(inactiveFor)}`]
    }
    return [1, `keeping 1: inactive for ${seconds(inactiveFor)} < ${seconds(wait)}`]
  }
}
