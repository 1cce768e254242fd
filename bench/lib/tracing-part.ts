// The tracing part: the queue-proxy with tracing off next to the same queue-proxy exporting to
// Zipkin at each sample rate, measured alternately in one run so that other work on the machine
// falls on every variant alike: start-ups round-robin, then for each round and concurrency one
// load point per variant, the order rotated from point to point. Every variant stays up for
// the whole part (all on the proxy CPU; the ones not being loaded are idle).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { sleep } from './children.ts';
import { launchTarget, type LaunchContext, type RunningTarget } from './launch.ts';
import { describe, loadPoint, type MeasureOptions, type Point } from './measure.ts';
import { freePort } from './net.ts';
import { BACKEND_BODY } from './nginx-config.ts';
import { memory } from './proc.ts';
import { waitForQuiet } from './quiet.ts';
import { median } from './stats.ts';
import { QUEUE_PROXY_MAIN, QUEUE_PROXY_TARGET, type CommandLaunch, type TargetSpec } from './targets.ts';
import { startZipkinReceiver, type ZipkinReceiver } from './zipkin-receiver.ts';

export interface TracingPartSettings {
  /** Sample rates of the tracing-on variants; the off variant is always measured. */
  rates: number[];
  concurrencies: number[];
  rounds: number;
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
  return { result: { name, rate, startupRunsMs: [], points: [] }, spec, metricsPort, receiver };
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
