// Measures one target: start-up (median of N exec -> first 200), idle RSS, a wrk run per
// concurrency with proxy CPU per request, the 64 KiB POST run, and peak RSS.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { sleep } from './children.ts';
import { launchTarget, type LaunchContext, type RunningTarget } from './launch.ts';
import { BACKEND_BODY } from './nginx-config.ts';
import { clockTicksPerSecond, cpuBusyTicks, cpuTicks, memory, processTree, selfAndReapedTicks } from './proc.ts';
import { median } from './stats.ts';
import { waitForQuiet } from './quiet.ts';
import type { TargetSpec } from './targets.ts';
import { runWrk, type WrkResult } from './wrk.ts';

export interface MeasureOptions {
  concurrencies: number[];
  durationS: number;
  warmupS: number;
  starts: number;
  /** Pause between "answers" and the idle RSS reading. */
  settleMs: number;
  postConnections: number;
  /** Lua script for the POST runs. */
  postScript: string;
  /** CPU wrk is pinned to. */
  loadCpu: number;
  /** CPUs the bench uses (proxy and load), watched for other processes' load. */
  cpus: number[];
  /** The backend nginx master, whose tree's CPU is ours, not foreign load. */
  backendPid: number;
  /** Before each point, wait up to this long for other processes to leave the CPUs alone. */
  maxQuietWaitMs: number;
  log: (line: string) => void;
}

export interface Point {
  connections: number;
  wrk: WrkResult;
  /** Target CPU (utime+stime) per request served, microseconds; undefined for direct. */
  cpuUsPerRequest: number | undefined;
  /**
   * Share of the bench CPUs' time used during the run by processes other than the target,
   * the backend, wrk and the harness (other work on the machine): a noise indicator, 0..1.
   */
  otherLoad: number;
}

export interface TargetResult {
  spec: TargetSpec;
  /** Why the target was not measured (e.g. dist/main.js not built yet). */
  skipped?: string;
  /** Why the measurement stopped part-way; points measured before stay. */
  failed?: string;
  startupRunsMs: number[];
  startupMs?: number;
  idleRssKiB?: number;
  peakRssKiB?: number;
  points: Point[];
  post?: Point;
}

export async function measureTarget(spec: TargetSpec, ctx: LaunchContext, opts: MeasureOptions): Promise<TargetResult> {
  const result: TargetResult = { spec, startupRunsMs: [], points: [] };
  const missing = (spec.requires ?? []).filter((path) => !existsSync(join(ctx.repo, path)));
  if (missing.length > 0) {
    result.skipped = `${missing.join(', ')} not found (run \`npm run build\` once it exists)`;
    opts.log(`${spec.name}: skipped, ${result.skipped}`);
    return result;
  }
  let target: RunningTarget | undefined;
  try {
    if (spec.launch !== undefined && !ctx.profile) {
      await waitForQuiet(opts.cpus, opts.maxQuietWaitMs, opts.log);
      for (let i = 0; i < opts.starts; i++) {
        const { target: t, startupMs } = await launchTarget(spec, ctx);
        await t.stop();
        result.startupRunsMs.push(startupMs);
      }
      result.startupMs = median(result.startupRunsMs);
      opts.log(`${spec.name}: start-up ${result.startupRunsMs.map((ms) => ms.toFixed(1)).join(', ')} ms -> median ${result.startupMs.toFixed(1)} ms`);
    }
    const launched = await launchTarget(spec, ctx);
    target = launched.target;
    if (launched.body !== BACKEND_BODY) {
      throw new Error(`answered 200 with ${JSON.stringify(launched.body.slice(0, 200))}, not the backend's ${JSON.stringify(BACKEND_BODY)}`);
    }
    await sleep(opts.settleMs);
    if (target.child !== undefined) result.idleRssKiB = memory(target.memoryPids()).rssKiB;

    const url = `http://127.0.0.1:${target.port}/`;
    for (const connections of opts.concurrencies) {
      const point = await loadPoint(target, spec, ctx, opts, { url, connections });
      result.points.push(point);
      opts.log(`${spec.name} C=${connections}: ${describe(point)}`);
    }
    result.post = await loadPoint(target, spec, ctx, opts, { url, connections: opts.postConnections, script: opts.postScript });
    opts.log(`${spec.name} POST 64 KiB C=${opts.postConnections}: ${describe(result.post)}`);
    if (target.child !== undefined) result.peakRssKiB = memory(target.memoryPids()).hwmKiB;
  } catch (err) {
    result.failed = (err as Error).message;
    opts.log(`${spec.name}: FAILED: ${result.failed}`);
  } finally {
    await target?.stop();
  }
  return result;
}

async function loadPoint(
  target: RunningTarget,
  spec: TargetSpec,
  ctx: LaunchContext,
  opts: MeasureOptions,
  run: { url: string; connections: number; script?: string },
): Promise<Point> {
  const wrkRun = {
    wrk: ctx.tools.wrk,
    taskset: ctx.tools.taskset,
    cpu: opts.loadCpu,
    url: run.url,
    connections: run.connections,
    headers: spec.headers ?? {},
    ...(run.script === undefined ? {} : { script: run.script }),
  };
  await waitForQuiet(opts.cpus, opts.maxQuietWaitMs, opts.log);
  await runWrk({ ...wrkRun, durationS: opts.warmupS });
  assertAlive(target, spec);
  const pids = target.cpuPids();
  const backendPids = processTree(opts.backendPid);
  const before = snapshot(pids, backendPids, opts.cpus);
  const wrk = await runWrk({ ...wrkRun, durationS: opts.durationS });
  const after = snapshot(pids, backendPids, opts.cpus);
  assertAlive(target, spec);
  const targetTicks = after.target - before.target;
  const cpuUsPerRequest =
    target.child === undefined || wrk.requests === 0 ? undefined : (targetTicks * 1e6) / clockTicksPerSecond() / wrk.requests;
  const ours = targetTicks + after.backend - before.backend + after.self - before.self;
  const total = after.cpus.total - before.cpus.total;
  const otherLoad = total <= 0 ? 0 : Math.max(0, (after.cpus.busy - before.cpus.busy - ours) / total);
  return { connections: run.connections, wrk, cpuUsPerRequest, otherLoad };
}

function snapshot(targetPids: number[], backendPids: number[], cpus: number[]) {
  return {
    target: cpuTicks(targetPids),
    backend: cpuTicks(backendPids),
    self: selfAndReapedTicks(),
    cpus: cpuBusyTicks(cpus),
  };
}

function assertAlive(target: RunningTarget, spec: TargetSpec): void {
  if (target.child?.exitStatus !== undefined) throw new Error(`${spec.name} exited (${target.child.exitStatus}) during the load run`);
}

function describe(point: Point): string {
  const w = point.wrk;
  const cpu = point.cpuUsPerRequest === undefined ? '' : `, ${point.cpuUsPerRequest.toFixed(1)} µs CPU/req`;
  const errors = w.errors > 0 ? `, ${w.errors} errors` : '';
  const other = point.otherLoad >= 0.02 ? `, other load ${(point.otherLoad * 100).toFixed(0)}%` : '';
  return `${Math.round(w.requestsPerSecond)} req/s, p50 ${(w.p50Us / 1000).toFixed(3)} ms, p99 ${(w.p99Us / 1000).toFixed(3)} ms${cpu}${errors}${other}`;
}
