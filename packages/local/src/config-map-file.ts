// A ConfigMap manifest file (YAML or JSON) as the local runtime reads its
// settings (config-autoscaler, config-tracing): `data` holds the keys, every
// value a string as Kubernetes requires. With several documents, the
// ConfigMap with the wanted name is used.

import { parseAllDocuments } from 'yaml'

/** Builds the caller's error for `key` ('(file)', 'kind', 'data' or a data key). */
export type ConfigMapErrorFactory = (key: string, message: string) => Error

/** The ConfigMap's data; undefined for an empty file or a ConfigMap without data. */
export function configMapData(text: string, name: string, error: ConfigMapErrorFactory): Record<string, string> | undefined {
  const objects: unknown[] = []
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0) throw error('(file)', `invalid YAML: ${doc.errors[0]!.message.split('\n')[0]}`)
    const value: unknown = doc.toJS()
    if (value !== null && value !== undefined) objects.push(value)
  }
  if (objects.length === 0) return undefined
  let cm: unknown = objects[0]
  if (objects.length > 1) {
    cm = objects.find((o) => isRecord(o) && o['kind'] === 'ConfigMap' && isRecord(o['metadata']) && o['metadata']['name'] === name)
    if (cm === undefined) throw error('(file)', `none of the ${objects.length} documents is the ConfigMap ${name}`)
  }
  if (!isRecord(cm)) throw error('(file)', 'expected a ConfigMap (a mapping with `data:`)')
  if (cm['kind'] !== undefined && cm['kind'] !== 'ConfigMap') {
    throw error('kind', `expected ConfigMap, got "${String(cm['kind'])}"`)
  }
  const raw = cm['data']
  if (raw === undefined || raw === null) return undefined
  if (!isRecord(raw)) throw error('data', 'must be a mapping of keys to string values')
  const data: Record<string, string> = {}
  for (const [key, value] of Object.entries(raw)) {
    if (typeof value !== 'string') {
      throw error(key, `ConfigMap values must be strings, got ${value === null ? 'null' : typeof value} (quote it: ${key}: "${String(value)}")`)
    }
    data[key] = value
  }
  return data
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}
