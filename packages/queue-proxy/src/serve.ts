// The queue-proxy process (started by main.ts): parse the environment, build,
// start, wait for a signal, drain. Exit 1 on bad configuration or a server failure; exit 0
// after a graceful drain; a second signal exits 1 at once (as Knative).

import { capYoungGeneration } from '@sluice/core/heap-tuning'
import { createLogger, zapConfigLevel } from '@sluice/core/logging'
import { loadConfig } from './config.ts'
import { QueueProxy } from './queue-proxy.ts'

async function main(): Promise<void> {
  let cfg
  try {
    cfg = loadConfig(process.env)
  } catch (err) {
    process.stderr.write(`queue-proxy: invalid configuration: ${(err as Error).message}\n`)
    process.exit(1)
  }
  capYoungGeneration()
  const log = createLogger({
    name: 'queueproxy',
    level: cfg.loggingLevel || zapConfigLevel(cfg.loggingConfig),
    bindings: { 'knative.dev/key': `${cfg.namespace}/${cfg.revision}`, 'knative.dev/pod': cfg.pod },
  })
  const qp = await QueueProxy.create(cfg, log)
  let signals = 0
  const onSignal = (sig: NodeJS.Signals): void => {
    if (++signals > 1) process.exit(1)
    log.info({ signal: sig }, 'received signal')
    qp.shutdown().then(() => process.exit(0), (err: Error) => {
      log.error({ err: err.message }, 'shutdown failed')
      process.exit(1)
    })
  }
  process.on('SIGTERM', onSignal)
  process.on('SIGINT', onSignal)
  const ports = await qp.start()
  log.info({ ports }, 'queue-proxy started')
}

main().catch((err: Error) => {
  process.stderr.write(`queue-proxy: ${err.stack ?? err.message}\n`)
  process.exit(1)
})
