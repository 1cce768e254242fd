// Drain state (knative.dev/pkg network/handlers/drain.go, spec §1.17): once
// draining, probes fail and every ordinary request restarts the quiet period;
// drain() resolves after a full quiet period with no request.

export class Drainer {
  readonly quietMs: number
  private timer: NodeJS.Timeout | null = null
  private waiters: (() => void)[] = []

  constructor(quietMs: number) {
    this.quietMs = quietMs
  }

  get draining(): boolean {
    return this.timer !== null
  }

  /** Starts draining (if not already) and resolves when the quiet period ends. */
  drain(): Promise<void> {
    const p = new Promise<void>((resolve) => this.waiters.push(resolve))
    if (this.timer === null) this.timer = setTimeout(onQuiet, this.quietMs, this)
    return p
  }

  /** An ordinary request arrived: while draining, the quiet period starts over. */
  touch(): void {
    if (this.timer !== null) this.timer.refresh()
  }

  /** Leaves draining state and releases every drain() waiter. */
  reset(): void {
    if (this.timer !== null) clearTimeout(this.timer)
    this.timer = null
    this.release()
  }

  /** @internal */
  release(): void {
    const w = this.waiters
    this.waiters = []
    for (const resolve of w) resolve()
  }
}

function onQuiet(d: Drainer): void {
  // The timer stays set: a drained queue-proxy keeps failing probes.
  d.release()
}
