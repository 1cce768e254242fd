// Activator start-up and idle memory (issue 8, item 4): exec → the first 200 to a
// kubelet probe, with the Kubernetes endpoint source listing a (stub) API server,
// then VmRSS once idle. Sluice's activator and, when KNATIVE_ACTIVATOR_BIN names
// its binary, Knative's own, alternately, in one run. Knative's activator needs its
// fixed ports (8012, 8013, 8008, 9090), the autoscaler Service name resolving to
// loopback and a stat server on :8080; its rows are skipped, with the reason, when
// any of that is missing. Knative's readiness waits for the autoscaler websocket,
// so both get one.
import { accessSync, constants } from 'node:fs';
import { lookup } from 'node:dns/promises';
import http from 'node:http';
import { join } from 'node:path';
import { start, stop, sleep, logTail, type Child } from '../lib/children.ts';
import { freePort } from '../lib/net.ts';
import { memory, listeningPorts } from '../lib/proc.ts';
import type { BenchContext } from './context.ts';
import { startKubeApiStub } from './kube-api-stub.ts';
import { percentile } from './percentile.ts';
import { ACTIVATOR_MAIN } from './processes.ts';
import { startStatServer, type StatServer } from './stat-server.ts';

const SYSTEM_NAMESPACE = 'knative-serving';
const AUTOSCALER_HOST = `autoscaler.${SYSTEM_NAMESPACE}.svc.cluster.local`;
const KNATIVE_PORTS = [8012, 8013, 8008, 9090];
const PROBE = { 'K-Kubelet-Probe': 'queue', 'User-Agent': 'kube-probe/1.30' };
/** Idle: start-up garbage settled, watches open. */
export const SETTLE_MS = 2000;
const READY_TIMEOUT_MS = 15_000;

export interface StartupRow {
  name: string;
  description: string;
  startupsMs: number[];
  idleRssKiB: number[];
}

export interface StartupResult {
  rows: StartupRow[];
  /** Why Knative's activator was not measured, when it was not. */
  knativeSkipped?: string;
  failures: string[];
}

interface Candidate {
  row: StartupRow;
  argv: string[];
  env: NodeJS.ProcessEnv;
  httpPort: number;
}

function probeOnce(port: number): Promise<number> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', headers: PROBE, agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', () => resolve(0));
    req.setTimeout(1000, () => req.destroy());
  });
}

/** performance.now() at the first 200; rejects when the process exits or the deadline passes. */
async function waitReady(child: Child, port: number): Promise<number> {
  const deadline = performance.now() + READY_TIMEOUT_MS;
  for (;;) {
    if ((await probeOnce(port)) === 200) return performance.now();
    if (child.exitStatus !== undefined) throw new Error(`exited with ${child.exitStatus}\n${logTail(child)}`);
    if (performance.now() > deadline) throw new Error(`no 200 to the kubelet probe within ${READY_TIMEOUT_MS} ms\n${logTail(child)}`);
    await sleep(2);
  }
}

async function whyNotKnative(): Promise<string | undefined> {
  const bin = process.env.KNATIVE_ACTIVATOR_BIN;
  if (bin === undefined || bin === '') return 'KNATIVE_ACTIVATOR_BIN is not set';
  try {
    accessSync(bin, constants.X_OK);
  } catch {
    return `KNATIVE_ACTIVATOR_BIN=${bin} is not an executable file`;
  }
  try {
    const { address } = await lookup(AUTOSCALER_HOST);
    if (!address.startsWith('127.')) return `${AUTOSCALER_HOST} resolves to ${address}, not loopback (add "127.0.0.1 ${AUTOSCALER_HOST}" to /etc/hosts)`;
  } catch {
    return `${AUTOSCALER_HOST} does not resolve (add "127.0.0.1 ${AUTOSCALER_HOST}" to /etc/hosts)`;
  }
  const busy = [...KNATIVE_PORTS, 8080].filter((p) => listeningPorts().has(p));
  if (busy.length > 0) return `ports ${busy.join(', ')} are taken (Knative's activator and autoscaler ports are fixed)`;
  return undefined;
}

export async function runStartup(ctx: BenchContext, opts: { starts: number }): Promise<StartupResult> {
  const result: StartupResult = { rows: [], failures: [] };
  const knativeSkipped = await whyNotKnative();
  if (knativeSkipped !== undefined) {
    result.knativeSkipped = knativeSkipped;
    ctx.log(`start-up: Knative's activator skipped: ${knativeSkipped}`);
  }
  // Knative's activator dials the autoscaler Service on :8080; Sluice's gets the same server by URL.
  let stats: StatServer;
  try {
    stats = knativeSkipped === undefined ? await startStatServer(8080) : ctx.stats;
  } catch (err) {
    result.failures.push(`stat server on :8080: ${(err as Error).message}`);
    return result;
  }
  const api = await startKubeApiStub(join(ctx.workDir, 'kubeconfig.json'), SYSTEM_NAMESPACE);
  const common = { ...process.env, KUBECONFIG: api.kubeconfig, POD_NAME: 'activator-bench', POD_IP: '127.0.0.1', SYSTEM_NAMESPACE };
  const sluicePort = await freePort();
  const candidates: Candidate[] = [{
    row: { name: 'sluice-activator', description: "Sluice's activator, Kubernetes endpoint source", startupsMs: [], idleRssKiB: [] },
    argv: [ctx.node, join(ctx.repo, ACTIVATOR_MAIN)],
    env: { ...common, SLUICE_AUTOSCALER_URL: stats.url, SLUICE_BIND_ADDRESS: '127.0.0.1', SLUICE_HTTP_PORT: String(sluicePort), SLUICE_H2C_PORT: '0', SLUICE_METRICS_PORT: '0', SLUICE_PROFILING_PORT: '0', SLUICE_DRAIN_PERIOD: '0s', SLUICE_LOG_LEVEL: 'warn' },
    httpPort: sluicePort,
  }];
  if (knativeSkipped === undefined) {
    candidates.push({
      row: { name: 'knative-activator', description: "Knative's activator (KNATIVE_ACTIVATOR_BIN)", startupsMs: [], idleRssKiB: [] },
      argv: [process.env.KNATIVE_ACTIVATOR_BIN!],
      env: { ...common, CONFIG_LOGGING_NAME: 'config-logging', CONFIG_OBSERVABILITY_NAME: 'config-observability', METRICS_DOMAIN: 'knative.dev/internal/serving' },
      httpPort: 8012,
    });
  }
  try {
    // Alternate, so a slow phase of the machine hits both alike.
    for (let i = 0; i < opts.starts; i++) {
      for (const c of candidates) {
        const busy = listeningPorts().has(c.httpPort);
        if (busy) await sleep(200); // the previous process's sockets are going away
        const spawnedAt = performance.now();
        const child = start([ctx.tools.taskset, '-c', String(ctx.proxyCpu), ...c.argv], { env: c.env, cwd: ctx.repo, logFile: join(ctx.workDir, `startup-${c.row.name}.log`) });
        try {
          const readyAt = await waitReady(child, c.httpPort);
          c.row.startupsMs.push(readyAt - spawnedAt);
          await sleep(SETTLE_MS);
          c.row.idleRssKiB.push(memory([child.pid]).rssKiB);
        } catch (err) {
          result.failures.push(`${c.row.name}: ${(err as Error).message}`);
        } finally {
          await stop(child);
        }
      }
    }
  } finally {
    await api.close();
    if (stats !== ctx.stats) await stats.close();
  }
  for (const c of candidates) {
    result.rows.push(c.row);
    const med = percentile(c.row.startupsMs, 50);
    ctx.log(`start-up ${c.row.name}: median ${med.toFixed(0)} ms, idle RSS ${(percentile(c.row.idleRssKiB, 50) / 1024).toFixed(1)} MiB`);
  }
  return result;
}
