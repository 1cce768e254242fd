// Starts the processes the activator bench runs besides the nginx backend: the activator
// (local endpoint source, pinned to its own CPU), the delay app, and a queue-proxy in front
// of either. Everything goes through bench/lib/children.ts, so nothing outlives the bench.
import { join } from 'node:path';
import { start, stop, logTail, type Child } from '../lib/children.ts';
import { spawnTarget, type LaunchContext, type RunningTarget } from '../lib/launch.ts';
import { freePort } from '../lib/net.ts';
import { memory } from '../lib/proc.ts';
import { QUEUE_PROXY_TARGET, type CommandLaunch, type TargetSpec } from '../lib/targets.ts';
import { LocalApi } from './local-api.ts';
import { waitForPort } from './port-wait.ts';

export const ACTIVATOR_MAIN = 'packages/activator/dist/main.js';
export const NAMESPACE = 'bench';

/** The headers the activator routes on. */
export function revisionHeaders(name: string): Record<string, string> {
  return { 'Knative-Serving-Namespace': NAMESPACE, 'Knative-Serving-Revision': name };
}

export interface ActivatorProcess {
  child: Child;
  httpPort: number;
  metricsPort: number;
  api: LocalApi;
  /** VmRSS of the activator process, KiB (0 once it is gone). */
  rssKiB(): number;
  stop(): Promise<void>;
}

export interface ActivatorStart {
  node: string;
  repo: string;
  taskset: string;
  cpu: number;
  workDir: string;
  autoscalerUrl: string;
  /** Extra environment, e.g. SLUICE_MAX_QUEUED_PER_REVISION. */
  env?: Record<string, string>;
  /** Names the log file. */
  label: string;
  /**
   * A kubeconfig (e.g. of kube-api-stub.ts): the Kubernetes endpoint source instead of the local
   * one; `api` then has nothing listening and the cluster's objects come from that API server.
   */
  kubeconfig?: string;
}

/** Spawns the activator and waits until its local API and its HTTP port accept connections. */
export async function startActivator(opts: ActivatorStart): Promise<ActivatorProcess> {
  const [httpPort, h2cPort, metricsPort, profilingPort, apiPort] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort()]);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    POD_NAME: 'activator-bench',
    POD_IP: '127.0.0.1',
    SYSTEM_NAMESPACE: 'knative-serving',
    SLUICE_ENDPOINT_SOURCE: 'local',
    SLUICE_LOCAL_API_PORT: String(apiPort),
    SLUICE_HTTP_PORT: String(httpPort),
    SLUICE_H2C_PORT: String(h2cPort),
    SLUICE_METRICS_PORT: String(metricsPort),
    SLUICE_PROFILING_PORT: String(profilingPort),
    SLUICE_BIND_ADDRESS: '127.0.0.1',
    SLUICE_AUTOSCALER_URL: opts.autoscalerUrl,
    SLUICE_DRAIN_PERIOD: '0s',
    SLUICE_LOG_LEVEL: 'warn',
    ...(opts.kubeconfig === undefined ? {} : { SLUICE_ENDPOINT_SOURCE: 'kubernetes', KUBECONFIG: opts.kubeconfig }),
    ...opts.env,
  };
  const child = start([opts.taskset, '-c', String(opts.cpu), opts.node, join(opts.repo, ACTIVATOR_MAIN)], {
    env,
    cwd: opts.repo,
    logFile: join(opts.workDir, `activator-${opts.label}.log`),
  });
  const exited = (): string | undefined =>
    child.exitStatus === undefined ? undefined : `activator exited with ${child.exitStatus}\n${logTail(child)}`;
  try {
    if (opts.kubeconfig === undefined) await waitForPort(apiPort, 15_000, exited);
    await waitForPort(httpPort, 15_000, exited);
  } catch (err) {
    await stop(child);
    throw new Error(`activator did not come up: ${(err as Error).message}`, { cause: err });
  }
  return {
    child,
    httpPort,
    metricsPort,
    api: new LocalApi(apiPort),
    rssKiB: () => memory([child.pid]).rssKiB,
    stop: () => stop(child),
  };
}

export interface AppProcess {
  child: Child;
  port: number;
  /** performance.now() just before the spawn. */
  spawnedAt: number;
  stop(): Promise<void>;
}

/** Spawns bench/activator-lib/delay-app.ts pinned to `cpu`; does not wait for it to listen. */
export async function spawnApp(o: {
  node: string;
  repo: string;
  taskset: string;
  cpu: number;
  workDir: string;
  delayMs: number;
  label: string;
  /** A port chosen beforehand (the cold-start driver spawns without awaiting anything). */
  port?: number;
}): Promise<AppProcess> {
  const port = o.port ?? (await freePort());
  const spawnedAt = performance.now();
  const child = start([o.taskset, '-c', String(o.cpu), o.node, join(o.repo, 'bench', 'activator-lib', 'delay-app.ts')], {
    env: { ...process.env, PORT: String(port), DELAY_MS: String(o.delayMs) },
    cwd: o.repo,
    logFile: join(o.workDir, `app-${o.label}.log`),
  });
  return { child, port, spawnedAt, stop: () => stop(child) };
}

/** The queue-proxy target of bench/lib/targets.ts, for another revision name and container concurrency. */
export function queueProxySpec(revision: string, containerConcurrency: number): TargetSpec {
  const base = QUEUE_PROXY_TARGET;
  if (base.launch?.kind !== 'command') throw new Error('bench/lib/targets.ts has no queue-proxy command target');
  const launch: CommandLaunch = base.launch;
  return {
    ...base,
    launch: {
      ...launch,
      env: {
        ...launch.env,
        SERVING_NAMESPACE: NAMESPACE,
        SERVING_REVISION: revision,
        CONTAINER_CONCURRENCY: String(containerConcurrency),
      },
    },
  };
}

/** Spawns a queue-proxy in front of `userPort`, pinned to ctx.cpu; does not wait for it. */
export function spawnQueueProxy(ctx: LaunchContext, userPort: number, revision: string, containerConcurrency: number): Promise<RunningTarget> {
  return spawnTarget(queueProxySpec(revision, containerConcurrency), { ...ctx, backendPort: userPort });
}
