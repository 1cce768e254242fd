// The Configuration side of a Service: each change of spec.template is a new
// generation and creates a new, immutable Revision named {service}-{generation
// as 5 digits} (Knative's configuration reconciler), unless the template names
// its revision itself. Traffic-only changes create nothing.

import { ManifestError, type RevisionTemplate, type ServiceSpec } from './service.ts'

export interface RevisionRecord {
  readonly name: string
  readonly service: string
  readonly namespace: string
  /** The configuration generation that created it (label serving.knative.dev/configurationGeneration). */
  readonly generation: number
  readonly template: RevisionTemplate
}

export interface ApplyResult {
  revision: RevisionRecord
  /** False when the template did not change (the latest revision stays). */
  created: boolean
}

/** {service}-00001, {service}-00002, ... */
export function revisionName(service: string, generation: number): string {
  return `${service}-${String(generation).padStart(5, '0')}`
}

export class RevisionTracker {
  readonly service: string
  readonly namespace: string
  #generation = 0
  readonly #revisions: RevisionRecord[] = []
  readonly #byName = new Map<string, RevisionRecord>()

  constructor(service: string, namespace = 'default') {
    this.service = service
    this.namespace = namespace
  }

  /** Applies one version of the Service; creates a revision when its template changed. */
  apply(spec: ServiceSpec): ApplyResult {
    if (spec.name !== this.service || spec.namespace !== this.namespace) {
      throw new Error(`RevisionTracker for ${this.namespace}/${this.service} was given ${spec.namespace}/${spec.name}`)
    }
    const latest = this.latestCreated
    if (latest && templatesEqual(latest.template, spec.template)) return { revision: latest, created: false }
    this.check(spec)
    const generation = this.#generation + 1
    const name = spec.template.name ?? revisionName(this.service, generation)
    this.#generation = generation
    const revision: RevisionRecord = { name, service: this.service, namespace: this.namespace, generation, template: spec.template }
    this.#revisions.push(revision)
    this.#byName.set(name, revision)
    return { revision, created: true }
  }

  /** Throws the ManifestError apply() would, without changing anything (a live apply checks every document first). */
  check(spec: ServiceSpec): void {
    const latest = this.latestCreated
    if (latest && templatesEqual(latest.template, spec.template)) return
    const explicit = spec.template.name
    if (explicit !== undefined && this.#byName.has(explicit)) {
      // A revision is immutable: a changed template needs a new name (Knative: "Saw the following changes without a name change").
      throw new ManifestError(spec.source, [{
        path: 'spec.template.metadata.name',
        message: `revision ${JSON.stringify(explicit)} already exists and revisions are immutable: change the name (or remove it) when changing the template`,
      }])
    }
    const generation = this.#generation + 1
    const name = explicit ?? revisionName(this.service, generation)
    if (this.#byName.has(name)) {
      throw new ManifestError(spec.source, [{
        path: 'spec.template.metadata.name',
        message: `revision ${JSON.stringify(name)} already exists (named explicitly earlier); name this revision explicitly too`,
      }])
    }
  }

  /** The configuration generation (number of template changes so far). */
  get generation(): number {
    return this.#generation
  }

  get latestCreated(): RevisionRecord | undefined {
    return this.#revisions[this.#revisions.length - 1]
  }

  /** All revisions, oldest first. */
  list(): readonly RevisionRecord[] {
    return this.#revisions
  }

  get(name: string): RevisionRecord | undefined {
    return this.#byName.get(name)
  }
}

/** Deep equality of two templates (the revision name, labels, annotations and spec all count). */
export function templatesEqual(a: RevisionTemplate, b: RevisionTemplate): boolean {
  return deepEqual(a, b)
}

// Plain-data equality: key order does not matter, an undefined property
// equals an absent one.
function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false
  if (Array.isArray(a) !== Array.isArray(b)) return false
  if (Array.isArray(a)) {
    const bs = b as unknown[]
    return a.length === bs.length && a.every((x, i) => deepEqual(x, bs[i]))
  }
  const ao = a as Record<string, unknown>
  const bo = b as Record<string, unknown>
  const keys = new Set([...Object.keys(ao), ...Object.keys(bo)])
  for (const k of keys) if (!deepEqual(ao[k], bo[k])) return false
  return true
}
