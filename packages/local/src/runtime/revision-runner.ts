// Keeps one revision at its desired number of instances (the local stand-in
// for the revision's Deployment) and publishes their endpoints: ready
// instances as ready, starting ones as not-ready so the activator probes them
// (Knative's probe optimisation: traffic flows before "Kubernetes" says Ready).

import { Instance, type InstanceOptions, type InstanceState } from './instance.ts'
import type { RevisionSpec } from './spec.ts'

export interface RevisionEndpointsOut {
  ready: string[]
  notReady: string[]
}

export interface RevisionRunnerEvents {
  endpointsChanged(rev: RevisionSpec, eps: RevisionEndpointsOut): void
  instancesChanged(rev: RevisionSpec, instances: readonly Instance[]): void
  log(line: string): void
  output?(inst: Instance, from: 'app' | 'queue-proxy', line: string): void
  /** An instance started with no other ready became ready after `ms` (spawn to ready). */
  coldStart?(rev: RevisionSpec, inst: Instance, ms: number): void
}

export class RevisionRunner {
  readonly rev: RevisionSpec
  desired = 0
  private readonly instances = new Set<Instance>()
  private readonly events: RevisionRunnerEvents
  private readonly opts: InstanceOptions
  private readonly graceMs: number

  constructor(rev: RevisionSpec, events: RevisionRunnerEvents, opts: InstanceOptions, graceMs: number) {
    this.rev = rev
    this.events = events
    this.opts = opts
    this.graceMs = graceMs
  }

  /** Instances that count (not stopping): what the autoscaler sees. */
  get live(): Instance[] {
    return [...this.instances].filter((i) => i.state !== 'stopping' && i.state !== 'stopped')
  }

  /** Instances with processes, including those draining (metrics targets). */
  get running(): Instance[] {
    return [...this.instances].filter((i) => i.state !== 'stopped')
  }

  get readyCount(): number {
    let n = 0
    for (const i of this.instances) if (i.state === 'ready') n++
    return n
  }

  scaleTo(n: number): void {
    this.desired = n
    const live = this.live
    if (live.length < n) {
      for (let k = live.length; k < n; k++) this.add()
    } else if (live.length > n) {
      // Stop the youngest first: not-ready ones before ready ones.
      const victims = live.sort((a, b) => rank(a) - rank(b)).slice(0, live.length - n)
      for (const v of victims) void this.remove(v)
    }
  }

  private add(): void {
    const output = this.events.output === undefined ? undefined : this.events.output.bind(this.events)
    const inst = new Instance(this.rev, { onState: (i, s) => this.onState(i, s), log: (l) => this.events.log(l), output }, this.opts)
    inst.cold = this.readyCount === 0
    this.instances.add(inst)
    inst.start().then(() => this.publish(), (err: Error) => {
      this.events.log(`instance ${inst.id}: failed to start: ${err.message}`)
      this.instances.delete(inst)
      this.publish()
    })
  }

  private async remove(inst: Instance): Promise<void> {
    // Endpoints first (as the SKS would), then drain and stop.
    const stopping = inst.stop(this.graceMs)
    this.publish()
    await stopping
    this.instances.delete(inst)
    this.publish()
  }

  private onState(inst: Instance, s: InstanceState): void {
    if (s === 'ready') {
      this.events.log(`instance ${inst.id}: ready (app listened after ${inst.appStartMs >= 0 ? inst.appStartMs.toFixed(0) : '?'} ms)`)
      if (inst.cold && inst.restarts === 0) this.events.coldStart?.(this.rev, inst, inst.readyAt - inst.startedAt)
    }
    this.publish()
  }

  private publish(): void {
    const ready: string[] = []
    const notReady: string[] = []
    for (const i of this.instances) {
      if (i.servingPort === 0) continue
      if (i.state === 'ready') ready.push(i.dest)
      else if (i.state === 'starting') notReady.push(i.dest)
    }
    this.events.endpointsChanged(this.rev, { ready, notReady })
    this.events.instancesChanged(this.rev, this.live)
  }

  async stopAll(): Promise<void> {
    this.desired = 0
    await Promise.all([...this.instances].map((i) => this.remove(i)))
  }
}

function rank(i: Instance): number {
  return i.state === 'ready' ? 1 : 0
}
