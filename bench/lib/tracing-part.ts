// The tracing part: the queue-proxy with tracing off next to the same queue-proxy exporting to
// Zipkin at each sample rate, measured alternately in one run so that other work on the machine
// falls on every variant alike: start-ups round-robin, then for each round and concurrency one
// load point per variant, the order rotated from point to point. Every variant stays up for
// the whole part (all on the proxy CPU; the ones not being loaded are idle).
//
// Then, unless --tracing-paired-rps is 0, the paired points: each tracing-on variant and the
// off variant loaded at once, each by its own hey at the same fixed request rate, CPU read
// from both over the same window. Both meet the same other work on the machine, and neither is
// offered fewer requests for being slower (wrk's closed loop does that, and a lower rate
// batches fewer responses per write).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { runHey } from '../activator-lib/hey.ts';
import { sleep } from './children.ts';
import { launchTarget, type LaunchContext, type RunningTarget } from './launch.ts';
import { describe, loadPoint, type MeasureOptions, type Point } from './measure.ts';
import { freePort } from './net.ts';
import { BACKEND_BODY } from './nginx-config.ts';
import { clockTicksPerSecond, cpuTicks, memory } from './proc.ts';
import { which } from './tools.ts';
import { waitForQuiet } from './quiet.ts';
import { median } from './stats.ts';
import { QUEUE_PROXY_MAIN, QUEUE_PROXY_TARGET, type CommandLaunch, type TargetSpec } from './targets.ts';
import { startZipkinReceiver, type ZipkinReceiver } from './zipkin-receiver.ts';

export interface TracingPartSettings {
  /** Sample rates of the tracing-on variants; the off variant is always measured. */
  rates: number[];
  concurrencies: number[];
  rounds: number;
  /** Requests per second each variant is offered in the paired points (0: none). */
  pairedRps: number;
}

/** One variant's side of a paired point. */
export interface PairedSide {
  /** Responses with status 200. */
  requests: number;
  requestsPerSecond: number;
  p99Us: number;
  errors: number;
  cpuUsPerRequest: number;
}

/** A tracing-on variant and the off variant loaded at the same time, at the same rate. */
export interface PairedPoint {
  round: number;
  connections: number;
  on: PairedSide;
  off: PairedSide;
}

export interface TracedPoint extends Point {
  round: number;
  /** Spans the receiver got while the measured run lasted (export lags by up to 1 s, as it does at the start). */
  spans: number | undefined;
}

export interface VariantResult {
  name: string;
  /** undefined: tracing off (backend none). */
  rate: number | undefined;
  startupRunsMs: number[];
  startupMs?: number;
  idleRssKiB?: number;
  /** VmHWM after every load point. */
  peakRssKiB?: number;
  points: TracedPoint[];
  paired: PairedPoint[];
  /** Spans received over the whole part (warm-ups and start-up probes included). */
  spansReceived?: number;
  /** sluice_tracing_dropped_spans_total at the end. */
  droppedSpans?: number;
}

export interface TracingResult {
  settings: TracingPartSettings;
  starts: number;
  variants: VariantResult[];
  skipped?: string;
  /** Why the paired points were not run. */
  pairedSkipped?: string;
  failed?: string;
}

interface Variant {
  result: VariantResult;
  spec: TargetSpec;
  metricsPort: number;
  receiver: ZipkinReceiver | undefined;
  target?: RunningTarget;
}

async function makeVariant(rate: number | undefined): Promise<Variant> {
  const base = QUEUE_PROXY_TARGET.launch as CommandLaunch;
  const metricsPort = await freePort();
  const receiver = rate === undefined ? undefined : await startZipkinReceiver();
  const env: Record<string, string> = { ...base.env, SLUICE_USER_METRICS_PORT: String(metricsPort) };
  if (receiver !== undefined) {
    env.TRACING_CONFIG_BACKEND = 'zipkin';
    env.TRACING_CONFIG_ZIPKIN_ENDPOINT = receiver.endpoint;
    env.TRACING_CONFIG_SAMPLE_RATE = String(rate);
  }
  const name = rate === undefined ? 'queue-proxy-tracing-off' : `queue-proxy-tracing-${rate}`;
  const spec: TargetSpec = {
    ...QUEUE_PROXY_TARGET,
    name,
    description: rate === undefined ? 'Sluice queue-proxy, tracing off' : `Sluice queue-proxy, Zipkin at sample rate ${rate}`,
    launch: { ...base, env },
  };
  return { result: { name, rate, startupRunsMs: [], points: [], paired: [] }, spec, metricsPort, receiver };
}

/** `list` rotated left by `by`: the order the variants take their turn in. */
function rotated<T>(list: readonly T[], by: number): T[] {
  const k = by % list.length;
  return [...list.slice(k), ...list.slice(0, k)];
}

async function droppedSpans(port: number): Promise<number | undefined> {
  try {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const match = /^sluice_tracing_dropped_spans_total(?:\{[^}]*\})? (\S+)$/m.exec(text);
    return match === null ? 0 : Number(match[1]);
  } catch {
    return undefined;
  }
}

export async function runTracingPart(
  settings: TracingPartSettings,
  ctx: LaunchContext,
  opts: MeasureOptions,
): Promise<TracingResult> {
  const result: TracingResult = { settings, starts: opts.starts, variants: [] };
  if (!existsSync(join(ctx.repo, QUEUE_PROXY_MAIN))) {
    result.skipped = `${QUEUE_PROXY_MAIN} not found (run \`npm run build\`)`;
    opts.log(`tracing: skipped, ${result.skipped}`);
    return result;
  }
  const variants: Variant[] = [];
  for (const rate of [undefined, ...settings.rates]) variants.push(await makeVariant(rate));
  result.variants = variants.map((v) => v.result);
  try {
    if (!ctx.profile) {
      await waitForQuiet(opts.cpus, opts.maxQuietWaitMs, opts.log);
      for (let i = 0; i < opts.starts; i++) {
        for (const v of rotated(variants, i)) {
          const { target, startupMs } = await launchTarget(v.spec, ctx);
          await target.stop();
          v.result.startupRunsMs.push(startupMs);
        }
      }
      for (const v of variants) {
        v.result.startupMs = median(v.result.startupRunsMs);
        opts.log(`${v.spec.name}: start-up ${v.result.startupRunsMs.map((ms) => ms.toFixed(1)).join(', ')} ms -> median ${v.result.startupMs.toFixed(1)} ms`);
      }
    }
    for (const v of variants) {
      const launched = await launchTarget(v.spec, ctx);
      v.target = launched.target;
      if (launched.body !== BACKEND_BODY) throw new Error(`${v.spec.name} answered 200 with ${JSON.stringify(launched.body.slice(0, 200))}`);
    }
    await sleep(opts.settleMs);
    for (const v of variants) v.result.idleRssKiB = memory(v.target!.memoryPids()).rssKiB;

    let turn = 0;
    for (let round = 1; round <= settings.rounds; round++) {
      for (const connections of settings.concurrencies) {
        for (const v of rotated(variants, turn++)) {
          const receiver = v.receiver;
          let spansAtStart = 0;
          let spans: number | undefined;
          const onMeasure = (edge: 'start' | 'end'): void => {
            if (receiver === undefined) return;
            if (edge === 'start') spansAtStart = receiver.spans();
            else spans = receiver.spans() - spansAtStart;
          };
          const url = `http://127.0.0.1:${v.target!.port}/`;
          const point = await loadPoint(v.target!, v.spec, ctx, opts, { url, connections, onMeasure });
          v.result.points.push({ ...point, round, spans });
          const spanText = spans === undefined ? '' : `, ${(spans / Math.max(1, point.wrk.requests)).toFixed(3)} spans/req`;
          opts.log(`${v.spec.name} round ${round} C=${connections}: ${describe(point)}${spanText}`);
        }
      }
    }
    const hey = which('hey');
    if (settings.pairedRps === 0) result.pairedSkipped = '--tracing-paired-rps 0';
    else if (hey === undefined) result.pairedSkipped = 'no hey on PATH (Debian package hey)';
    else await pairedRounds(variants, settings, hey, ctx, opts);
    if (result.pairedSkipped !== undefined) opts.log(`tracing: paired points skipped, ${result.pairedSkipped}`);
    await sleep(1500); // the batch processor exports every second: let the last batch arrive
    for (const v of variants) {
      v.result.peakRssKiB = memory(v.target!.memoryPids()).hwmKiB;
      if (v.receiver === undefined) continue;
      v.result.spansReceived = v.receiver.spans();
      const dropped = await droppedSpans(v.metricsPort);
      if (dropped !== undefined) v.result.droppedSpans = dropped;
    }
  } catch (err) {
    result.failed = (err as Error).message;
    opts.log(`tracing: FAILED: ${result.failed}`);
  } finally {
    for (const v of variants) await v.target?.stop();
    for (const v of variants) await v.receiver?.close();
  }
  return result;
}

/**
 * Each tracing-on variant with the off one, at once, each by its own hey at `pairedRps` (both
 * hey on the load CPU): a warm-up, then the measured run with both CPUs read at the same two
 * instants. Pairs rather than all variants at once: two queue-proxies at the default rate
 * stay well within the proxy CPU, so both are offered, and serve, the same rate.
 */
async function pairedRounds(variants: Variant[], settings: TracingPartSettings, hey: string, ctx: LaunchContext, opts: MeasureOptions): Promise<void> {
  const ticks = clockTicksPerSecond();
  const off = variants.find((v) => v.result.rate === undefined)!;
  for (let round = 1; round <= settings.rounds; round++) {
    for (const connections of settings.concurrencies) {
      for (const on of variants) {
        if (on === off) continue;
        const pair = [on, off];
        const load = (durationS: number) => Promise.all(pair.map((v) => runHey({
          hey, taskset: ctx.tools.taskset, cpu: opts.loadCpu, url: `http://127.0.0.1:${v.target!.port}/`,
          workers: connections, perWorkerRate: Math.max(1, Math.round(settings.pairedRps / connections)), durationS, headers: v.spec.headers ?? {},
        })));
        await waitForQuiet(opts.cpus, opts.maxQuietWaitMs, opts.log);
        await load(opts.warmupS);
        const before = pair.map((v) => cpuTicks(v.target!.cpuPids()));
        const results = await load(opts.durationS);
        const after = pair.map((v) => cpuTicks(v.target!.cpuPids()));
        const sides = pair.map((v, i): PairedSide => {
          if (v.target!.child?.exitStatus !== undefined) throw new Error(`${v.spec.name} exited during the paired run`);
          const h = results[i]!;
          const requests = h.statuses[200] ?? 0;
          const errors = h.errors + Object.entries(h.statuses).reduce((n, [code, count]) => (code === '200' ? n : n + count), 0);
          const cpuUsPerRequest = requests === 0 ? NaN : ((after[i]! - before[i]!) * 1e6) / ticks / requests;
          return { requests, requestsPerSecond: h.requestsPerSecond, p99Us: h.percentilesUs[99]!, errors, cpuUsPerRequest };
        });
        const point: PairedPoint = { round, connections, on: sides[0]!, off: sides[1]! };
        on.result.paired.push(point);
        const side = (x: PairedSide): string => `${Math.round(x.requestsPerSecond)} req/s, p99 ${(x.p99Us / 1000).toFixed(2)} ms, ${x.cpuUsPerRequest.toFixed(1)} µs CPU/req${x.errors > 0 ? `, ${x.errors} errors` : ''}`;
        opts.log(`paired round ${round} C=${connections}: ${on.spec.name} ${side(point.on)} | off ${side(point.off)} | ${(point.on.cpuUsPerRequest / point.off.cpuUsPerRequest).toFixed(2)}x`);
      }
    }
  }
}
