// Drain state (knative.dev/pkg network/handlers/drain.go, spec §1.17): once
// draining, probes fail and every ordinary request restarts the quiet period;
// drain() resolves after a full quiet period with no request; once that has
// happened, later drain() calls resolve at once (Go's closed drain channel).

export class Drainer {
  readonly quietMs: number
  private timer: NodeJS.Timeout | null = null
  private drained = false
  private waiters: (() => void)[] = []

  constructor(quietMs: number) {
    this.quietMs = quietMs
  }

  get draining(): boolean {
    return this.timer !== null
  }

  /** Starts draining (if not already) and resolves when the quiet period ends. */
  drain(): Promise<void> {
    if (this.drained) return Promise.resolve()
    const p = new Promise<void>((resolve) => this.waiters.push(resolve))
    if (this.timer === null) this.timer = setTimeout(onQuiet, this.quietMs, this)
    return p
  }

  /** An ordinary request arrived: while draining, the quiet period starts over. */
  touch(): void {
    // After the quiet period has passed, requests no longer matter (Go's timer.Stop() is false).
    if (this.timer !== null && !this.drained) this.timer.refresh()
  }

  /** Leaves draining state and releases every drain() waiter. */
  reset(): void {
    if (this.timer !== null) clearTimeout(this.timer)
    this.timer = null
    this.drained = false
    this.release()
  }

  /** @internal The quiet period passed. */
  quiet(): void {
    this.drained = true
    this.release()
  }

  private release(): void {
    const w = this.waiters
    this.waiters = []
    for (const resolve of w) resolve()
  }
}

function onQuiet(d: Drainer): void {
  // The timer stays set: a drained queue-proxy keeps failing probes.
  d.quiet()
}
