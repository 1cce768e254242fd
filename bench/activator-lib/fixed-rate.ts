// Part 2, latency at a fixed rate against an app that answers after 100 ms, directly, through
// the queue-proxy, and through activator -> queue-proxy (same CPU layout as the warm path).
// Two load shapes at the same rate: hey (workers x per-worker rate, the issue's method; its
// workers fire together) and the evenly paced client (one request every 1000/rate ms).
import { launchTarget, type RunningTarget } from '../lib/launch.ts';
import { pollUntilOk } from '../lib/net.ts';
import { BACKEND_BODY } from '../lib/nginx-config.ts';
import { waitForQuiet } from '../lib/quiet.ts';
import { launchContext, type BenchContext } from './context.ts';
import { openCpuWindow } from './cpu-window.ts';
import { runHey } from './hey.ts';
import { runPaced } from './paced-client.ts';
import { waitForPort } from './port-wait.ts';
import { NAMESPACE, queueProxySpec, revisionHeaders, spawnApp, startActivator, type ActivatorProcess, type AppProcess } from './processes.ts';

export type RateTarget = 'direct' | 'queue-proxy' | 'activator';

export type RateTool = 'hey' | 'paced';

/** What both load generators report. */
export interface LatencyResult {
  requestsPerSecond: number;
  /** At least 50, 95 and 99; microseconds. */
  percentilesUs: Record<number, number>;
  statuses: Record<number, number>;
  errors: number;
  firstError: string | undefined;
}

export interface RateRow {
  target: RateTarget;
  tool: RateTool;
  result: LatencyResult;
  otherLoad: number;
}

export interface RateResult {
  rows: RateRow[];
  failures: string[];
}

export interface RateOptions {
  workers: number;
  perWorkerRate: number;
  durationS: number;
  warmupS: number;
  appDelayMs: number;
}

const REVISION = 'slow-00001';

export async function runFixedRate(ctx: BenchContext, opts: RateOptions): Promise<RateResult> {
  const result: RateResult = { rows: [], failures: [] };
  const rate = opts.workers * opts.perWorkerRate;
  const app: AppProcess = await spawnApp({ ...ctx, taskset: ctx.tools.taskset, cpu: ctx.loadCpu, delayMs: opts.appDelayMs, label: 'slow' });
  let soloQp: RunningTarget | undefined;
  let behindQp: RunningTarget | undefined;
  let activator: ActivatorProcess | undefined;
  const measure = async (tool: RateTool, target: RateTarget, port: number, headers: Record<string, string>, pids: Record<string, number[]>) => {
    const hey = { hey: ctx.tools.hey, taskset: ctx.tools.taskset, cpu: ctx.loadCpu, url: `http://127.0.0.1:${port}/`, workers: opts.workers, perWorkerRate: opts.perWorkerRate, headers };
    const paced = { port, headers, rate, maxSockets: opts.workers };
    await waitForQuiet(ctx.cpus, ctx.maxQuietWaitMs, ctx.log);
    if (tool === 'hey') await runHey({ ...hey, durationS: opts.warmupS });
    else await runPaced({ ...paced, durationS: opts.warmupS });
    const close = openCpuWindow(pids, ctx.cpus);
    const latency = tool === 'hey' ? await runHey({ ...hey, durationS: opts.durationS }) : await runPaced({ ...paced, durationS: opts.durationS });
    const otherLoad = close().otherLoad;
    result.rows.push({ target, tool, result: latency, otherLoad });
    const p = latency.percentilesUs;
    ctx.log(
      `fixed rate ${target} (${tool}): ${latency.requestsPerSecond.toFixed(0)} req/s, p50 ${ms(p[50])}, p95 ${ms(p[95])}, p99 ${ms(p[99])}` +
        `${latency.errors > 0 ? `, ${latency.errors} errors (${latency.firstError})` : ''}, other load ${(otherLoad * 100).toFixed(0)}%`,
    );
  };
  try {
    await waitForPort(app.port, 10_000, () => (app.child.exitStatus === undefined ? undefined : `app exited with ${app.child.exitStatus}`));
    // All set-ups first; then the targets take turns, per load generator (as in the warm path).
    try {
      soloQp = (await launchTarget(queueProxySpec(REVISION, 0), launchContext(ctx, ctx.proxyCpu, app.port))).target;
    } catch (err) {
      soloQp = undefined;
      result.failures.push(`queue-proxy: ${(err as Error).message}`);
      ctx.log(`fixed rate queue-proxy: FAILED: ${(err as Error).message}`);
    }
    try {
      behindQp = (await launchTarget(queueProxySpec(REVISION, 0), launchContext(ctx, ctx.loadCpu, app.port))).target;
      activator = await startActivator({ ...ctx, taskset: ctx.tools.taskset, cpu: ctx.proxyCpu, autoscalerUrl: ctx.stats.url, label: 'rate' });
      await activator.api.putRevision(NAMESPACE, REVISION, { containerConcurrency: 0, timeoutSeconds: 300 });
      await activator.api.putEndpoints(NAMESPACE, REVISION, { ready: [`127.0.0.1:${behindQp.port}`], notReady: [] });
      const a = activator;
      const reply = await pollUntilOk(a.httpPort, revisionHeaders(REVISION), 10_000, () =>
        a.child.exitStatus === undefined ? undefined : `activator exited with ${a.child.exitStatus}`,
      );
      if (reply.body !== BACKEND_BODY) throw new Error(`activator answered ${JSON.stringify(reply.body.slice(0, 100))}`);
    } catch (err) {
      await activator?.stop();
      await behindQp?.stop();
      activator = undefined;
      behindQp = undefined;
      result.failures.push(`activator: ${(err as Error).message}`);
      ctx.log(`fixed rate activator: FAILED: ${(err as Error).message}`);
    }
    // Every process the bench started counts as ours, busy or idle, not as "other load".
    const pids = { app: [app.child.pid], ours: [soloQp?.child?.pid, behindQp?.child?.pid, activator?.child.pid].filter((pid) => pid !== undefined) };
    for (const tool of ['hey', 'paced'] as const) {
      await measure(tool, 'direct', app.port, {}, pids);
      if (soloQp !== undefined) await measure(tool, 'queue-proxy', soloQp.port, {}, pids);
      if (activator !== undefined) await measure(tool, 'activator', activator.httpPort, revisionHeaders(REVISION), pids);
    }
  } catch (err) {
    result.failures.push((err as Error).message);
    ctx.log(`fixed rate: FAILED: ${(err as Error).message}`);
  } finally {
    await activator?.stop();
    await behindQp?.stop();
    await soloQp?.stop();
    await app.stop();
  }
  return result;
}

function ms(us: number | undefined): string {
  return us === undefined ? '—' : `${(us / 1000).toFixed(1)} ms`;
}
