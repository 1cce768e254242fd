// Pod trackers and the activator's load-balancing policies (spec §2.6, quirk
// §7.7): plain functions over the trackers assigned to this activator. A policy
// either reserves a slot on one tracker and returns it, or returns null ("no
// tracker": every assigned pod is at containerConcurrency).

import { Breaker } from '@sluice/core/breaker'

/** One healthy pod destination ("ip:port") of a revision. */
export class PodTracker {
  readonly dest: string
  /** Capacity cc per pod; null for cc = 0 (unlimited: always reservable). */
  readonly breaker: Breaker | null
  /** Requests proxied to this pod right now (the policies' "weight"). */
  inFlight = 0

  constructor(dest: string, containerConcurrency: number) {
    this.dest = dest
    // Only the non-blocking tryAcquire is used, so the queue depth never matters.
    this.breaker = containerConcurrency > 0 ? new Breaker({ queueDepth: 1, maxConcurrency: containerConcurrency }) : null
  }

  /** True if tryReserve would succeed now. */
  canReserve(): boolean {
    return this.breaker === null || this.breaker.inFlight < this.breaker.capacity
  }

  /** Takes a slot if one is free right now (Knative's Reserve). */
  tryReserve(): boolean {
    if (this.breaker !== null && !this.breaker.tryAcquire()) return false
    this.inFlight++
    return true
  }

  /** Gives back a slot taken by tryReserve. */
  release(): void {
    this.inFlight--
    if (this.breaker !== null) this.breaker.release()
  }
}

/** Where round-robin (and least-loaded's tie-break) starts next. */
export interface RotationState {
  index: number
}

export type PolicyName = 'first-available' | 'round-robin' | 'random-choice-2' | 'least-loaded'

export const POLICY_NAMES: readonly PolicyName[] = ['first-available', 'round-robin', 'random-choice-2', 'least-loaded']

/** Knative's choice by containerConcurrency: p2c for 0, first-available up to 3, round-robin above. */
export function policyForConcurrency(containerConcurrency: number): PolicyName {
  if (containerConcurrency === 0) return 'random-choice-2'
  return containerConcurrency <= 3 ? 'first-available' : 'round-robin'
}

/** Scans in order; the first tracker with a free slot wins. */
export function firstAvailable(trackers: readonly PodTracker[]): PodTracker | null {
  for (let i = 0; i < trackers.length; i++) {
    const t = trackers[i]!
    if (t.tryReserve()) return t
  }
  return null
}

/** Starts after the last pick and takes the next tracker with a free slot. */
export function roundRobin(trackers: readonly PodTracker[], state: RotationState): PodTracker | null {
  const n = trackers.length
  if (state.index >= n) state.index = 0 // the list shrank
  for (let i = 0; i < n; i++) {
    let p = state.index + i
    if (p >= n) p -= n
    const t = trackers[p]!
    if (t.tryReserve()) {
      state.index = p + 1
      return t
    }
  }
  return null
}

/**
 * Power of two choices: two distinct random trackers, the one with fewer
 * in-flight requests wins, ties broken at random. Meant for cc = 0 (trackers
 * always reservable). With finite per-pod capacity (only via a policy
 * override) it tries the other candidate and then any tracker, so it never
 * returns null while some pod has a free slot.
 */
export function randomChoice2(trackers: readonly PodTracker[], random: () => number): PodTracker | null {
  const n = trackers.length
  if (n === 0) return null
  if (n === 1) return trackers[0]!.tryReserve() ? trackers[0]! : null
  let a = 0
  let b = 1
  if (n > 2) {
    a = Math.floor(random() * n)
    b = Math.floor(random() * (n - 1))
    if (b >= a) b++ // b ranges over every index except a
  }
  let pick = trackers[a]!
  let alt = trackers[b]!
  if (pick.inFlight > alt.inFlight || (pick.inFlight === alt.inFlight && random() < 0.5)) {
    pick = alt
    alt = trackers[a]!
  }
  if (pick.tryReserve()) return pick
  if (alt.tryReserve()) return alt
  return firstAvailable(trackers)
}

/**
 * Fewest in-flight requests among the trackers with a free slot (join the
 * shortest queue). Ties go to the first candidate after the previous pick, so
 * equally idle pods take turns instead of the lowest index taking everything.
 */
export function leastLoaded(trackers: readonly PodTracker[], state: RotationState): PodTracker | null {
  const n = trackers.length
  if (state.index >= n) state.index = 0
  let best = -1
  let bestLoad = Infinity
  for (let i = 0; i < n; i++) {
    let p = state.index + i
    if (p >= n) p -= n
    const t = trackers[p]!
    if (t.inFlight < bestLoad && t.canReserve()) {
      best = p
      bestLoad = t.inFlight
      if (bestLoad === 0) break // cannot do better
    }
  }
  if (best < 0) return null
  const t = trackers[best]!
  t.tryReserve()
  state.index = best + 1
  return t
}
