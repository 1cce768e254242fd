// Part 1, warm path: wrk against the nginx backend directly, through the queue-proxy alone
// (on the proxy CPU, as in bench/run.ts), and through activator -> queue-proxy with the
// activator alone on the proxy CPU and the queue-proxy on the load CPU, so the activator's
// CPU per request is read from a CPU nothing else uses.
import { startBackend } from '../lib/backend.ts';
import { stop } from '../lib/children.ts';
import { launchTarget, type RunningTarget } from '../lib/launch.ts';
import { pollUntilOk } from '../lib/net.ts';
import { BACKEND_BODY } from '../lib/nginx-config.ts';
import { memory } from '../lib/proc.ts';
import { waitForQuiet } from '../lib/quiet.ts';
import { runWrk, type WrkResult } from '../lib/wrk.ts';
import { launchContext, type BenchContext } from './context.ts';
import { openCpuWindow } from './cpu-window.ts';
import { NAMESPACE, queueProxySpec, revisionHeaders, startActivator, type ActivatorProcess } from './processes.ts';

export type WarmTarget = 'direct' | 'queue-proxy' | 'activator';

export interface WarmPoint {
  target: WarmTarget;
  connections: number;
  wrk: WrkResult;
  /** CPU µs per request of the process under test on the proxy CPU (queue-proxy or activator). */
  cpuUsPerRequest: number | undefined;
  /** The queue-proxy's CPU µs per request when it sits behind the activator (on the load CPU). */
  qpCpuUsPerRequest: number | undefined;
  otherLoad: number;
}

export interface WarmResult {
  points: WarmPoint[];
  /** The activator's VmRSS once it answered, before load, and VmHWM after all load, KiB. */
  activatorIdleRssKiB?: number;
  activatorPeakRssKiB?: number;
  failures: string[];
}

export interface WarmOptions {
  concurrencies: number[];
  durationS: number;
  warmupS: number;
}

const REVISION = 'warm-00001';

export async function runWarmPath(ctx: BenchContext, opts: WarmOptions): Promise<WarmResult> {
  const result: WarmResult = { points: [], failures: [] };
  const backend = await startBackend(ctx.tools, ctx.workDir, ctx.loadCpu);
  ctx.log(`warm path: backend nginx on 127.0.0.1:${backend.port} (CPU ${ctx.loadCpu})`);
  let soloQp: RunningTarget | undefined;
  let behindQp: RunningTarget | undefined;
  let activator: ActivatorProcess | undefined;
  try {
    // Both set-ups start first and the targets take turns at each C, so rows compared with
    // each other are measured minutes apart at most, not across the whole part.
    try {
      const launched = await launchTarget(queueProxySpec(REVISION, 0), launchContext(ctx, ctx.proxyCpu, backend.port));
      soloQp = launched.target;
      if (launched.body !== BACKEND_BODY) throw new Error(`queue-proxy answered ${JSON.stringify(launched.body.slice(0, 100))}`);
    } catch (err) {
      await soloQp?.stop();
      soloQp = undefined;
      result.failures.push(`queue-proxy: ${(err as Error).message}`);
      ctx.log(`warm path queue-proxy: FAILED: ${(err as Error).message}`);
    }
    try {
      // activator (proxy CPU, alone) -> queue-proxy (load CPU) -> backend (load CPU).
      behindQp = (await launchTarget(queueProxySpec(REVISION, 0), launchContext(ctx, ctx.loadCpu, backend.port))).target;
      activator = await startActivator({ ...ctx, taskset: ctx.tools.taskset, cpu: ctx.proxyCpu, autoscalerUrl: ctx.stats.url, label: 'warm' });
      await activator.api.putRevision(NAMESPACE, REVISION, { containerConcurrency: 0, timeoutSeconds: 300 });
      await activator.api.putEndpoints(NAMESPACE, REVISION, { ready: [`127.0.0.1:${behindQp.port}`], notReady: [] });
      const a = activator;
      const reply = await pollUntilOk(a.httpPort, revisionHeaders(REVISION), 10_000, () =>
        a.child.exitStatus === undefined ? undefined : `activator exited with ${a.child.exitStatus}`,
      );
      if (reply.body !== BACKEND_BODY) throw new Error(`activator answered ${JSON.stringify(reply.body.slice(0, 100))}`);
      result.activatorIdleRssKiB = activator.rssKiB();
    } catch (err) {
      await activator?.stop();
      await behindQp?.stop();
      activator = undefined;
      behindQp = undefined;
      result.failures.push(`activator: ${(err as Error).message}`);
      ctx.log(`warm path activator: FAILED: ${(err as Error).message}`);
    }
    // Idle set-ups are ours too, not "other load".
    const idle = [soloQp?.child?.pid, behindQp?.child?.pid, activator?.child.pid].filter((pid) => pid !== undefined);
    for (const connections of opts.concurrencies) {
      const targets: [WarmTarget, number, Record<string, string>, Record<string, number[]>][] = [['direct', backend.port, {}, {}]];
      if (soloQp !== undefined) targets.push(['queue-proxy', soloQp.port, {}, { target: [soloQp.child!.pid] }]);
      if (activator !== undefined && behindQp !== undefined) {
        targets.push(['activator', activator.httpPort, revisionHeaders(REVISION), { target: [activator.child.pid], qp: [behindQp.child!.pid] }]);
      }
      for (const [target, port, headers, groups] of targets) {
        const busy = new Set(Object.values(groups).flat());
        const point = await wrkPoint(ctx, opts, target, `http://127.0.0.1:${port}/`, headers, connections, {
          ...groups,
          backend: [backend.child.pid],
          idle: idle.filter((pid) => !busy.has(pid)),
        });
        result.points.push(point);
        ctx.log(`warm path ${target} C=${connections}: ${describe(point)}`);
        for (const [name, t] of [['queue-proxy', soloQp?.child], ['activator', activator?.child], ['queue-proxy behind the activator', behindQp?.child]] as const) {
          if (t !== undefined && t.exitStatus !== undefined) throw new Error(`${name} exited (${t.exitStatus}) during the load runs`);
        }
      }
    }
    if (activator !== undefined) result.activatorPeakRssKiB = memory([activator.child.pid]).hwmKiB;
  } catch (err) {
    result.failures.push((err as Error).message);
    ctx.log(`warm path: FAILED: ${(err as Error).message}`);
  } finally {
    await activator?.stop();
    await behindQp?.stop();
    await soloQp?.stop();
    await stop(backend.child);
  }
  return result;
}

async function wrkPoint(
  ctx: BenchContext,
  opts: WarmOptions,
  target: WarmTarget,
  url: string,
  headers: Record<string, string>,
  connections: number,
  groups: Record<string, number[]>,
): Promise<WarmPoint> {
  return { target, ...(await measureWrk(ctx, opts, url, headers, connections, groups)) };
}

/** What one load point measures, whichever part runs it. */
export type WrkMeasurement = Omit<WarmPoint, 'target'>;

/**
 * One load point: wrk warm-up, then the measured run with the CPU of `groups`
 * read over exactly that run; CPU per request for the `target` and `qp` groups.
 */
export async function measureWrk(
  ctx: BenchContext,
  opts: { warmupS: number; durationS: number },
  url: string,
  headers: Record<string, string>,
  connections: number,
  groups: Record<string, number[]>,
): Promise<WrkMeasurement> {
  const run = { wrk: ctx.tools.wrk, taskset: ctx.tools.taskset, cpu: ctx.loadCpu, url, connections, headers };
  await waitForQuiet(ctx.cpus, ctx.maxQuietWaitMs, ctx.log);
  await runWrk({ ...run, durationS: opts.warmupS });
  const close = openCpuWindow(groups, ctx.cpus);
  const wrk = await runWrk({ ...run, durationS: opts.durationS });
  const window = close();
  const perRequest = (seconds: number | undefined): number | undefined =>
    seconds === undefined || wrk.requests === 0 ? undefined : (seconds * 1e6) / wrk.requests;
  return {
    connections,
    wrk,
    cpuUsPerRequest: perRequest(window.cpuSeconds.target),
    qpCpuUsPerRequest: perRequest(window.cpuSeconds.qp),
    otherLoad: window.otherLoad,
  };
}

function describe(p: WarmPoint): string {
  const cpu = p.cpuUsPerRequest === undefined ? '' : `, ${p.cpuUsPerRequest.toFixed(1)} µs CPU/req`;
  const qp = p.qpCpuUsPerRequest === undefined ? '' : ` (queue-proxy behind it ${p.qpCpuUsPerRequest.toFixed(1)})`;
  const errors = p.wrk.errors > 0 ? `, ${p.wrk.errors} errors` : '';
  return `${Math.round(p.wrk.requestsPerSecond)} req/s, p50 ${(p.wrk.p50Us / 1000).toFixed(3)} ms, p99 ${(p.wrk.p99Us / 1000).toFixed(3)} ms${cpu}${qp}${errors}, other load ${(p.otherLoad * 100).toFixed(0)}%`;
}
