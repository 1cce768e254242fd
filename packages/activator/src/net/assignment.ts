// Which of a revision's pods this activator sends to (spec §2.8): with N
// activators in the revision's subset, each takes an equal contiguous slice of
// the trackers sorted by destination, and the remainder is handed out one pod
// each to the lowest indexes. Only used for cc > 0; cc = 0 uses every pod.

export interface SliceIndices {
  /** Slice [begin, end) of the sorted trackers. */
  begin: number
  end: number
  /** Trackers left over after equal slices (the last `remnants` of the list). */
  remnants: number
}

/** Knative's pickIndices: this activator's slice, given numTrackers >= 1. */
export function pickIndices(numTrackers: number, selfIndex: number, numActivators: number): SliceIndices {
  if (numActivators > numTrackers) {
    // Fewer pods than activators: one pod each, wrapping around.
    const begin = selfIndex % numTrackers
    return { begin, end: begin + 1, remnants: 0 }
  }
  const size = Math.floor(numTrackers / numActivators)
  const begin = selfIndex * size
  return { begin, end: begin + size, remnants: numTrackers % numActivators }
}

/**
 * The trackers assigned to activator `selfIndex` of `numActivators`; the input
 * must already be sorted by destination. Index -1 (own position unknown), at
 * most one tracker, or a single activator: all of them.
 */
export function assignSlice<T>(sorted: readonly T[], selfIndex: number, numActivators: number): T[] {
  const n = sorted.length
  if (selfIndex < 0 || n <= 1 || numActivators <= 1) return sorted.slice()
  const { begin, end, remnants } = pickIndices(n, selfIndex, numActivators)
  const out = sorted.slice(begin, end)
  // Remainder pod i (of the last `remnants`) goes exclusively to activator i.
  if (remnants > 0 && selfIndex < remnants) out.push(sorted[n - remnants + selfIndex]!)
  return out
}
