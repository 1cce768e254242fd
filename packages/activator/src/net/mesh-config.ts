// config-network's mesh settings (spec §2.7, the config table): which values
// Knative accepts, and how a ConfigMap's data maps onto them.

import type { MeshMode } from './revision-backends.ts'

export const MESH_MODE_KEY = 'mesh-compatibility-mode'
export const POD_ADDRESSABILITY_KEY = 'enable-mesh-pod-addressability'

export interface MeshSettings {
  mode: MeshMode
  passthroughLb: boolean
}

export const DEFAULT_MESH: MeshSettings = { mode: 'auto', passthroughLb: false }
export const MESH_MODES: readonly MeshMode[] = ['auto', 'enabled', 'disabled']

export function parseMeshMode(v: string): MeshMode | undefined {
  const m = v.trim().toLowerCase()
  return m === 'auto' || m === 'enabled' || m === 'disabled' ? m : undefined
}

/** strconv.ParseBool's spellings, as Knative's cm.AsBool reads them. */
export function parseBoolValue(v: string): boolean | undefined {
  switch (v.trim()) {
    case '1': case 't': case 'T': case 'true': case 'TRUE': case 'True': return true
    case '0': case 'f': case 'F': case 'false': case 'FALSE': case 'False': return false
    default: return undefined
  }
}

/**
 * The mesh settings of config-network's data (undefined: the ConfigMap is
 * absent, so `defaults` apply). Throws on a value Knative would refuse; the
 * caller keeps the settings in force, as Knative's config store keeps the
 * last valid config.
 */
export function meshFromConfigMap(data: Record<string, string> | undefined, defaults: MeshSettings): MeshSettings {
  const out = { ...defaults }
  const mode = data?.[MESH_MODE_KEY]
  if (mode !== undefined && mode !== '') {
    const m = parseMeshMode(mode)
    if (m === undefined) throw new Error(`${MESH_MODE_KEY}: must be auto, enabled or disabled, got ${JSON.stringify(mode)}`)
    out.mode = m
  }
  const pa = data?.[POD_ADDRESSABILITY_KEY]
  if (pa !== undefined && pa !== '') {
    const b = parseBoolValue(pa)
    if (b === undefined) throw new Error(`${POD_ADDRESSABILITY_KEY}: must be a boolean, got ${JSON.stringify(pa)}`)
    out.passthroughLb = b
  }
  return out
}
