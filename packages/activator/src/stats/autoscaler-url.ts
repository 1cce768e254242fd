// Where the autoscaler's stat server is: SLUICE_AUTOSCALER_URL, or the URL
// Knative's activator builds (spec §2.2 step 9):
// ws://autoscaler.<SYSTEM_NAMESPACE>.svc.<cluster domain>:8080.

import { readFileSync } from 'node:fs'
import { EnvError, type Env } from '@sluice/core/env'

export const AUTOSCALER_URL_ENV = 'SLUICE_AUTOSCALER_URL'
export const AUTOSCALER_PORT = 8080
export const DEFAULT_CLUSTER_DOMAIN = 'cluster.local'
export const RESOLV_CONF = '/etc/resolv.conf'

/**
 * The cluster domain from the first `search` entry `svc.<domain>` of a
 * resolv.conf (the pod's DNS config), or undefined.
 */
export function clusterDomainFromResolvConf(text: string): string | undefined {
  for (const line of text.split('\n')) {
    const fields = line.trim().split(/\s+/)
    if (fields[0] !== 'search') continue
    for (let i = 1; i < fields.length; i++) {
      const f = fields[i]!
      if (f.startsWith('svc.') && f.length > 4) return f.endsWith('.') ? f.slice(4, -1) : f.slice(4)
    }
  }
  return undefined
}

/** knative.dev/pkg network.GetClusterDomainName: CLUSTER_DOMAIN, resolv.conf, cluster.local. */
export function clusterDomainName(env: Env, resolvConfPath: string = RESOLV_CONF): string {
  const fromEnv = env['CLUSTER_DOMAIN']
  if (fromEnv) return fromEnv
  let text: string
  try {
    text = readFileSync(resolvConfPath, 'utf8')
  } catch {
    // No resolv.conf (not in a pod): the default, as Knative.
    return DEFAULT_CLUSTER_DOMAIN
  }
  return clusterDomainFromResolvConf(text) ?? DEFAULT_CLUSTER_DOMAIN
}

export interface AutoscalerUrlOptions {
  /** Injectable for tests; /etc/resolv.conf by default. */
  resolvConfPath?: string
}

export function autoscalerUrl(env: Env, opts: AutoscalerUrlOptions = {}): string {
  const override = env[AUTOSCALER_URL_ENV]
  if (override) return validateUrl(override)
  const namespace = env['SYSTEM_NAMESPACE']
  // Knative's system.Namespace() panics on an unset or empty value.
  if (!namespace) throw new EnvError('SYSTEM_NAMESPACE', 'required environment variable is not set')
  const domain = clusterDomainName(env, opts.resolvConfPath)
  return `ws://autoscaler.${namespace}.svc.${domain}:${AUTOSCALER_PORT}`
}

function validateUrl(value: string): string {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    throw new EnvError(AUTOSCALER_URL_ENV, `not a URL: ${JSON.stringify(value)}`)
  }
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') {
    throw new EnvError(AUTOSCALER_URL_ENV, `must be a ws:// or wss:// URL, got ${JSON.stringify(value)}`)
  }
  return value
}
