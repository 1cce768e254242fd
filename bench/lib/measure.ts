// Measures one target: start-up (median of N exec -> first 200), idle RSS, a wrk run per
// concurrency with proxy CPU per request and RSS after it, the 64 KiB POST run, the
// backpressure points (Sluice proxies and the Go reference), and peak RSS. The floor target is
// only started: start-up and idle RSS.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { backpressurePoint, type BackpressurePoint, type BackpressureSettings } from './backpressure.ts';
import { sleep } from './children.ts';
import { launchTarget, type LaunchContext, type RunningTarget } from './launch.ts';
import { BACKEND_BODY } from './nginx-config.ts';
import { clockTicksPerSecond, cpuBusyTicks, cpuTicks, listeningPorts, memory, processTree, selfAndReapedTicks } from './proc.ts';
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
  /** Undefined: no backpressure points. */
  backpressure: BackpressureSettings | undefined;
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
  /** The target's VmRSS right after the measured run, KiB; undefined for direct. */
  rssAfterKiB: number | undefined;
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
  /** VmHWM after the load points and the POST run, before the backpressure points. */
  loadPeakRssKiB?: number;
  /** VmHWM after everything the target was put through. */
  peakRssKiB?: number;
  points: Point[];
  post?: Point;
  backpressure: BackpressurePoint[];
}

/** Why the target cannot be measured here, or undefined. */
function skipReason(spec: TargetSpec, repo: string): string | undefined {
  if (spec.unavailable !== undefined) return spec.unavailable;
  const missing = (spec.requires ?? []).filter((path) => !existsSync(join(repo, path)));
  if (missing.length > 0) return `${missing.join(', ')} not found (run \`npm run build\` once it exists)`;
  const listening = listeningPorts();
  const busy = (spec.fixedPorts ?? []).filter((port) => listening.has(port));
  if (busy.length > 0) return `port ${busy.join(', ')} already in use; it always binds ${spec.fixedPorts!.join(' and ')}`;
  return undefined;
}

export async function measureTarget(spec: TargetSpec, ctx: LaunchContext, opts: MeasureOptions): Promise<TargetResult> {
  const result: TargetResult = { spec, startupRunsMs: [], points: [], backpressure: [] };
  const skipped = skipReason(spec, ctx.repo);
  if (skipped !== undefined) {
    result.skipped = skipped;
    opts.log(`${spec.name}: skipped, ${skipped}`);
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
    if (spec.role === 'floor') return result;

    const url = `http://127.0.0.1:${target.port}/`;
    for (const connections of opts.concurrencies) {
      const point = await loadPoint(target, spec, ctx, opts, { url, connections });
      result.points.push(point);
      opts.log(`${spec.name} C=${connections}: ${describe(point)}`);
    }
    result.post = await loadPoint(target, spec, ctx, opts, { url, connections: opts.postConnections, script: opts.postScript });
    opts.log(`${spec.name} POST 64 KiB C=${opts.postConnections}: ${describe(result.post)}`);
    if (target.child !== undefined) result.loadPeakRssKiB = memory(target.memoryPids()).hwmKiB;
    if (opts.backpressure !== undefined && (spec.role === 'proxy' || spec.role === 'reference')) {
      const pids = target.memoryPids();
      for (const kind of ['slow-reader', 'slow-upload'] as const) {
        await waitForQuiet(opts.cpus, opts.maxQuietWaitMs, opts.log);
        const point = await backpressurePoint(kind, { port: target.port, headers: spec.headers ?? {}, pids }, opts.backpressure);
        result.backpressure.push(point);
        opts.log(`${spec.name} ${kind}: ${describeBackpressure(point)}`);
        assertAlive(target, spec);
      }
    }
    // Read last, so the lifetime peak covers every point above.
    if (target.child !== undefined) result.peakRssKiB = memory(target.memoryPids()).hwmKiB;
  } catch (err) {
    result.failed = (err as Error).message;
    opts.log(`${spec.name}: FAILED: ${result.failed}`);
  } finally {
    await target?.stop();
  }
  return result;
}

/** One warm-up + measured wrk run against a started target; `onMeasure` is called as the measured run starts and ends. */
export async function loadPoint(
  target: RunningTarget,
  spec: TargetSpec,
  ctx: LaunchContext,
  opts: MeasureOptions,
  run: { url: string; connections: number; script?: string; onMeasure?: (edge: 'start' | 'end') => void },
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
  run.onMeasure?.('start');
  const wrk = await runWrk({ ...wrkRun, durationS: opts.durationS });
  run.onMeasure?.('end');
  const after = snapshot(pids, backendPids, opts.cpus);
  assertAlive(target, spec);
  const targetTicks = after.target - before.target;
  const cpuUsPerRequest =
    target.child === undefined || wrk.requests === 0 ? undefined : (targetTicks * 1e6) / clockTicksPerSecond() / wrk.requests;
  const ours = targetTicks + after.backend - before.backend + after.self - before.self;
  const total = after.cpus.total - before.cpus.total;
  const otherLoad = total <= 0 ? 0 : Math.max(0, (after.cpus.busy - before.cpus.busy - ours) / total);
  const rssAfterKiB = target.child === undefined ? undefined : memory(target.memoryPids()).rssKiB;
  return { connections: run.connections, wrk, cpuUsPerRequest, otherLoad, rssAfterKiB };
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

export function describe(point: Point): string {
  const w = point.wrk;
  const cpu = point.cpuUsPerRequest === undefined ? '' : `, ${point.cpuUsPerRequest.toFixed(1)} µs CPU/req`;
  const errors = w.errors > 0 ? `, ${w.errors} errors` : '';
  const other = point.otherLoad >= 0.02 ? `, other load ${(point.otherLoad * 100).toFixed(0)}%` : '';
  return `${Math.round(w.requestsPerSecond)} req/s, p50 ${(w.p50Us / 1000).toFixed(3)} ms, p99 ${(w.p99Us / 1000).toFixed(3)} ms${cpu}${errors}${other}`;
}

function describeBackpressure(point: BackpressurePoint): string {
  const mib = (n: number): string => (n / 1048576).toFixed(1);
  const arrived = point.complete ? `all ${mib(point.expectedBytes)} MiB` : `${mib(point.bytes)} of ${mib(point.expectedBytes)} MiB`;
  const error = point.error === undefined ? '' : `, ${point.error}`;
  return `${arrived} in ${point.seconds.toFixed(1)} s, peak RSS ${mib(point.peakRssKiB * 1024)} MiB, VmHWM ${mib(point.hwmKiB * 1024)} MiB${error}`;
}
