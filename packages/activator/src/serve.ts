// The activator, started by main.ts (from the bundle or as modules): parse the
// environment, pick the endpoint source, start, drain on SIGTERM. Bad
// configuration exits 1 naming the variable.

import { EnvError } from '@sluice/core/env'
import { createLogger, zapConfigLevel } from '@sluice/core/logging'
import { Activator } from './activator.ts'
import { loadConfig, type ActivatorConfig } from './config.ts'
import type { EndpointSource } from './endpoints/source.ts'
import { POLICY_NAMES, type PolicyName } from './net/lb-policy.ts'
import { autoscalerUrl, clusterDomainName } from './stats/autoscaler-url.ts'

async function createSource(cfg: ActivatorConfig, log: ReturnType<typeof createLogger>): Promise<EndpointSource> {
  if (cfg.endpointSource === 'local') {
    const { LocalSource } = await import('./endpoints/local-source.ts')
    const src = new LocalSource()
    const port = await src.listen(cfg.localApiPort)
    log.info({ port }, 'local endpoint API listening')
    return src
  }
  // Only here is @kubernetes/client-node loaded (its own bundle: see bundle.mjs).
  const { KubernetesSource, loadKubeConfig } = await import('./endpoints/kubernetes.ts')
  return new KubernetesSource({ kubeConfig: loadKubeConfig(process.env), log, useEndpointSlices: cfg.useEndpointSlices })
}

function lbPolicy(): PolicyName | undefined {
  const v = process.env.SLUICE_LB_POLICY
  if (v === undefined || v === '' || v === 'knative') return undefined
  if (!(POLICY_NAMES as readonly string[]).includes(v)) throw new EnvError('SLUICE_LB_POLICY', `must be "knative" or one of ${POLICY_NAMES.join(', ')}, got ${JSON.stringify(v)}`)
  return v as PolicyName
}

async function main(): Promise<void> {
  let cfg: ActivatorConfig
  let url: string
  let policy: PolicyName | undefined
  let clusterDomain: string
  try {
    cfg = loadConfig(process.env)
    url = autoscalerUrl(process.env)
    policy = lbPolicy()
    clusterDomain = clusterDomainName(process.env)
  } catch (err) {
    process.stderr.write(`activator: invalid configuration: ${(err as Error).message}\n`)
    process.exit(1)
  }
  const log = createLogger({
    name: 'activator',
    level: cfg.loggingLevel || zapConfigLevel(cfg.loggingConfig),
    bindings: { 'knative.dev/controller': 'activator', 'knative.dev/pod': cfg.podName },
  })
  const source = await createSource(cfg, log)
  const activator = new Activator(cfg, log, { source, autoscalerUrl: url, clusterDomain, policy })
  let signals = 0
  const onSignal = (sig: NodeJS.Signals): void => {
    if (++signals > 1) process.exit(1)
    log.info({ signal: sig }, 'received signal')
    activator.shutdown().then(() => process.exit(0), (err: Error) => {
      log.error({ err: err.message }, 'shutdown failed')
      process.exit(1)
    })
  }
  process.on('SIGTERM', onSignal)
  process.on('SIGINT', onSignal)
  const ports = await activator.start()
  log.info({ ports, autoscaler: url }, 'activator started')
}

main().catch((err: Error) => {
  process.stderr.write(`activator: ${err.stack ?? err.message}\n`)
  process.exit(1)
})
