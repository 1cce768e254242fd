// Sluice's queue-proxy process (packages/queue-proxy/src/serve.ts) with the certificate directory
// taken from BENCH_QP_CERTS_DIR instead of Knative's fixed /var/lib/knative/certs, so the routing
// part can serve the TLS port (QUEUE_SERVING_TLS_PORT) without touching the machine's /var/lib.
// Without BENCH_QP_CERTS_DIR (or with a directory lacking tls.crt/tls.key) it serves plain only.
// Run as `node bench/activator-lib/certs-queue-proxy.ts`: it loads packages/queue-proxy/dist.
import { capYoungGeneration } from '@sluice/core/heap-tuning';
import { createLogger, zapConfigLevel } from '@sluice/core/logging';
import { loadConfig } from '@sluice/queue-proxy/config';
import { QueueProxy } from '@sluice/queue-proxy/queue-proxy';

async function main(): Promise<void> {
  const cfg = loadConfig(process.env);
  capYoungGeneration();
  const log = createLogger({
    name: 'queueproxy',
    level: cfg.loggingLevel || zapConfigLevel(cfg.loggingConfig),
    bindings: { 'knative.dev/key': `${cfg.namespace}/${cfg.revision}`, 'knative.dev/pod': cfg.pod },
  });
  const qp = await QueueProxy.create(cfg, log, { certsDir: process.env.BENCH_QP_CERTS_DIR || '/nonexistent' });
  const onSignal = (): void => {
    qp.shutdown().then(() => process.exit(0), () => process.exit(1));
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  const ports = await qp.start();
  log.info({ ports }, 'queue-proxy started');
}

main().catch((err: unknown) => {
  process.stderr.write(`certs-queue-proxy: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
