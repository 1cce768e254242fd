// Validates documents against a CustomResourceDefinition's structural schema
// the way the API server would, so deploy/ manifests for CRD kinds (the
// Operator's KnativeServing, Prometheus Operator PodMonitors) are checked
// against the real upstream schema stored in test/deploy/fixtures.

import { readFileSync } from 'node:fs'
import YAML from 'yaml'
import { Ajv, type ErrorObject } from 'ajv'

type Schema = Record<string, unknown>

export interface Crd {
  kind: string
  spec: { group: string; names: { kind: string }; versions: { name: string; served: boolean; schema: { openAPIV3Schema: Schema } }[] }
}

export interface CrdValidator {
  crd: Crd
  /** The served version the validator checks (`<group>/<version>` is its apiVersion). */
  version: string
  /** One line per error, `<instance path> <message>`; empty when the document is valid. */
  errorsOf(doc: unknown): string[]
}

/**
 * Turns a CRD's structural schema into one Ajv checks as the API server would:
 * x-kubernetes-int-or-string becomes integer-or-string; objects that declare
 * properties reject unknown fields (the API server prunes them silently, so a
 * typo would be lost without an error) unless x-kubernetes-preserve-unknown-fields
 * keeps them. Ajv ignores the other x-kubernetes-* keywords (strict: false).
 */
function toAjv(s: Schema): Schema {
  const out: Schema = {}
  for (const [k, v] of Object.entries(s)) {
    if (k === 'properties') {
      out[k] = Object.fromEntries(Object.entries(v as Record<string, Schema>).map(([p, ps]) => [p, toAjv(ps)]))
    } else if (k === 'items' || (k === 'additionalProperties' && typeof v === 'object')) {
      out[k] = toAjv(v as Schema)
    } else if (k === 'anyOf' || k === 'allOf' || k === 'oneOf') {
      out[k] = (v as Schema[]).map(toAjv)
    } else if (k !== 'description') {
      out[k] = v
    }
  }
  if (s['x-kubernetes-int-or-string'] === true && !s.anyOf) out.anyOf = [{ type: 'integer' }, { type: 'string' }]
  if (s.properties && s.additionalProperties === undefined && s['x-kubernetes-preserve-unknown-fields'] !== true) {
    out.additionalProperties = false
  }
  return out
}

/** A validator for the CRD in `file`, at its served `version`. */
export function crdValidator(file: string, version: string): CrdValidator {
  const crd = YAML.parse(readFileSync(file, 'utf8')) as Crd
  const served = crd.spec.versions.find((v) => v.served && v.name === version)
  if (served === undefined) throw new Error(`${file}: no served version ${version}`)
  // Formats (int32, string) are informational in Kubernetes' schemas; not checked here.
  const validate = new Ajv({ strict: false, allErrors: true, validateFormats: false }).compile(toAjv(served.schema.openAPIV3Schema))
  const errorsOf = (doc: unknown): string[] =>
    validate(doc) ? [] : (validate.errors ?? []).map((e: ErrorObject) => `${e.instancePath || '/'} ${e.message ?? ''}${e.keyword === 'additionalProperties' ? ` (${String(e.params.additionalProperty)})` : ''}`)
  return { crd, version, errorsOf }
}
