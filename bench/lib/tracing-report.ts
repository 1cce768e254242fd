// The tracing part's report section: load points and per-pod cost of the queue-proxy with
// tracing on at each sample rate, each divided by the tracing-off figure of the same run, and
// the tracing goals (on at 0.1: CPU/req within +15 % of off).
import { DASH, divide, int, latency, mib, percent, ratio } from './format.ts';
import { table } from './markdown.ts';
import { median } from './stats.ts';
import type { SystemInfo } from './system-info.ts';
import type { PairedSide, TracedPoint, TracingResult, VariantResult } from './tracing-part.ts';

/** The goal: CPU/req with tracing on at this rate at most this multiple of off's. */
export const GOAL_RATE = 0.1;
export const GOAL_CPU_RATIO = 1.15;

export interface Pooled {
  requestsPerSecond: number;
  /** Total CPU over total requests of every round. */
  cpuUsPerRequest: number | undefined;
  /** Median over the rounds. */
  p99Us: number;
  cpuPerRound: (number | undefined)[];
  spansPerRequest: number | undefined;
  errors: number;
  otherLoad: number;
}

/** The rounds of one variant at one concurrency, pooled. */
export function pooled(points: readonly TracedPoint[]): Pooled | undefined {
  if (points.length === 0) return undefined;
  const requests = points.reduce((s, p) => s + p.wrk.requests, 0);
  const cpuKnown = points.every((p) => p.cpuUsPerRequest !== undefined);
  const cpuUs = points.reduce((s, p) => s + (p.cpuUsPerRequest ?? 0) * p.wrk.requests, 0);
  const spansKnown = points.every((p) => p.spans !== undefined);
  const spans = points.reduce((s, p) => s + (p.spans ?? 0), 0);
  return {
    requestsPerSecond: points.reduce((s, p) => s + p.wrk.requestsPerSecond, 0) / points.length,
    cpuUsPerRequest: cpuKnown && requests > 0 ? cpuUs / requests : undefined,
    p99Us: median(points.map((p) => p.wrk.p99Us)),
    cpuPerRound: points.map((p) => p.cpuUsPerRequest),
    spansPerRequest: spansKnown && requests > 0 ? spans / requests : undefined,
    errors: points.reduce((s, p) => s + p.wrk.errors, 0),
    otherLoad: Math.max(...points.map((p) => p.otherLoad)),
  };
}

function label(v: VariantResult): string {
  return v.rate === undefined ? 'off' : `zipkin, rate ${v.rate}`;
}

function at(v: VariantResult | undefined, c: number): Pooled | undefined {
  return v === undefined ? undefined : pooled(v.points.filter((p) => p.connections === c));
}

/**
 * CPU/req ÷ off's for each round (the points of a round at one C ran back to back, so they met
 * the same other work on the machine), and their median: the figure least moved by a burst of
 * load during one point.
 */
export function pairedCpuRatios(v: VariantResult, off: VariantResult, c: number): { perRound: (number | undefined)[]; median: number | undefined } {
  const perRound = v.points
    .filter((p) => p.connections === c)
    .map((p) => divide(p.cpuUsPerRequest, off.points.find((o) => o.connections === c && o.round === p.round)?.cpuUsPerRequest));
  const known = perRound.filter((r): r is number => r !== undefined);
  return { perRound, median: known.length === 0 ? undefined : median(known) };
}

function loadTable(result: TracingResult): string {
  const off = result.variants.find((v) => v.rate === undefined);
  const rows: string[][] = [];
  for (const c of result.settings.concurrencies) {
    const base = at(off, c);
    for (const v of result.variants) {
      const p = at(v, c);
      if (p === undefined) continue;
      const isOff = v === off;
      const paired = isOff || off === undefined ? undefined : pairedCpuRatios(v, off, c);
      rows.push([
        String(c),
        label(v),
        int(p.requestsPerSecond),
        latency(p.p99Us),
        isOff ? DASH : ratio(divide(p.p99Us, base?.p99Us)),
        p.cpuUsPerRequest === undefined ? DASH : p.cpuUsPerRequest.toFixed(1),
        isOff ? DASH : ratio(divide(p.cpuUsPerRequest, base?.cpuUsPerRequest)),
        p.cpuPerRound.map((x) => (x === undefined ? DASH : x.toFixed(1))).join(', '),
        paired === undefined ? DASH : paired.perRound.map((r) => (r === undefined ? DASH : r.toFixed(2))).join(', '),
        paired === undefined ? DASH : ratio(paired.median),
        p.spansPerRequest === undefined ? DASH : p.spansPerRequest.toFixed(3),
        int(p.errors),
        percent(p.otherLoad),
      ]);
    }
  }
  return table(
    ['C', 'tracing', 'req/s', 'p99', 'p99 ÷ off', 'CPU µs/req', 'CPU ÷ off', 'CPU per round', 'CPU ÷ off per round', 'median', 'spans/req', 'errors', 'other load'],
    rows,
    ['right', 'left', ...Array<'right'>(11).fill('right')],
  );
}

/** The paired points' CPU/req ÷ off's from the same window, round by round, and their median. */
export function pairedPointRatios(v: VariantResult, c: number): { perRound: number[]; median: number | undefined } {
  const perRound = v.paired
    .filter((p) => p.connections === c)
    .map((p) => p.on.cpuUsPerRequest / p.off.cpuUsPerRequest)
    .filter((r) => Number.isFinite(r));
  return { perRound, median: perRound.length === 0 ? undefined : median(perRound) };
}

function pairedTable(result: TracingResult): string | undefined {
  const rows: string[][] = [];
  const perRound = (points: readonly PairedSide[]): string => points.map((p) => p.cpuUsPerRequest.toFixed(1)).join(', ');
  const rps = (points: readonly PairedSide[]): string => int(points.reduce((n, p) => n + p.requestsPerSecond, 0) / points.length);
  for (const c of result.settings.concurrencies) {
    for (const v of result.variants) {
      const points = v.paired.filter((p) => p.connections === c);
      if (points.length === 0) continue;
      const on = points.map((p) => p.on);
      const off = points.map((p) => p.off);
      const r = pairedPointRatios(v, c);
      rows.push([
        String(c),
        label(v),
        `${rps(on)} / ${rps(off)}`,
        `${latency(median(on.map((p) => p.p99Us)))} / ${latency(median(off.map((p) => p.p99Us)))}`,
        perRound(on),
        perRound(off),
        r.perRound.map((x) => x.toFixed(2)).join(', '),
        ratio(r.median),
        int(points.reduce((n, p) => n + p.on.errors + p.off.errors, 0)),
      ]);
    }
  }
  if (rows.length === 0) return undefined;
  return table(
    ['C', 'tracing', 'req/s on / off', 'p99 on / off', 'CPU µs/req per round, on', 'off, same windows', 'on ÷ off per round', 'median', 'errors'],
    rows,
    ['right', 'left', ...Array<'right'>(7).fill('right')],
  );
}

function costTable(result: TracingResult): string {
  const off = result.variants.find((v) => v.rate === undefined);
  const rows = result.variants.map((v) => {
    const isOff = v === off;
    return [
      label(v),
      v.startupMs === undefined ? DASH : v.startupMs.toFixed(1),
      isOff ? DASH : ratio(divide(v.startupMs, off?.startupMs)),
      v.startupRunsMs.length === 0 ? DASH : Math.min(...v.startupRunsMs).toFixed(1),
      isOff || v.startupRunsMs.length === 0 || off === undefined || off.startupRunsMs.length === 0
        ? DASH
        : ratio(Math.min(...v.startupRunsMs) / Math.min(...off.startupRunsMs)),
      v.startupRunsMs.map((ms) => ms.toFixed(0)).join(', '),
      mib(v.idleRssKiB, false),
      isOff ? DASH : ratio(divide(v.idleRssKiB, off?.idleRssKiB)),
      mib(v.peakRssKiB, false),
      v.spansReceived === undefined ? DASH : int(v.spansReceived),
      v.droppedSpans === undefined ? DASH : int(v.droppedSpans),
    ];
  });
  return table(
    ['tracing', 'start-up ms', 'start-up ÷ off', 'fastest ms', 'fastest ÷ off', 'start-ups (ms)', 'idle RSS MiB', 'idle RSS ÷ off', 'VmHWM after load MiB', 'spans received', 'spans dropped'],
    rows,
    ['left', ...Array<'right'>(10).fill('right')],
  );
}

function goalsTable(result: TracingResult): string | undefined {
  const off = result.variants.find((v) => v.rate === undefined);
  const on = result.variants.find((v) => v.rate === GOAL_RATE);
  if (off === undefined || on === undefined) return undefined;
  const verdict = (r: number | undefined): string => (r === undefined ? DASH : r <= GOAL_CPU_RATIO ? 'yes' : '**no**');
  const rows: string[][] = [];
  for (const c of result.settings.concurrencies) {
    const r = pairedPointRatios(on, c).median;
    if (r !== undefined) {
      rows.push([`CPU/req at C=${c}, on at ${GOAL_RATE} ÷ off, loaded together with off at ${int(result.settings.pairedRps)} req/s each (median of the rounds)`, `≤ ${GOAL_CPU_RATIO.toFixed(2)}×`, ratio(r), verdict(r)]);
    }
  }
  for (const c of result.settings.concurrencies) {
    const r = pairedCpuRatios(on, off, c).median;
    rows.push([`CPU/req at C=${c}, on at ${GOAL_RATE} ÷ off, wrk points taking turns (median of the rounds' ratios)`, `≤ ${GOAL_CPU_RATIO.toFixed(2)}×`, ratio(r), verdict(r)]);
  }
  return table(['goal', 'limit', 'measured', 'met'], rows, ['left', 'right', 'right', 'left']);
}

export function renderTracingSection(result: TracingResult, info: SystemInfo, settings: { durationS: number; warmupS: number }): string {
  const s = result.settings;
  const out: string[] = [];
  out.push(`### Tracing off and on, ${info.date}`);
  out.push('');
  out.push(`Machine: ${info.nproc} CPUs (${info.cpuModel}), kernel ${info.kernel}, node ${info.nodeVersion}, ${info.wrkVersion}.  `);
  out.push(
    `Run: the queue-proxy with tracing off (backend \`none\`) and with \`TRACING_CONFIG_BACKEND=zipkin\` at sample rate ` +
      `${s.rates.join(' and ')}, exporting to the harness's receiver; ${s.rounds} round${s.rounds === 1 ? '' : 's'} of ` +
      `C = ${s.concurrencies.join(', ')}, ${settings.durationS} s per point after a ${settings.warmupS} s warm-up, the variants taking turns ` +
      `point by point; start-up: median of ${result.starts} per variant, round-robin.`,
  );
  if (result.skipped !== undefined) {
    out.push('');
    out.push(`Skipped: ${result.skipped}.`);
    return out.join('\n') + '\n';
  }
  out.push('');
  out.push(loadTable(result));
  out.push('');
  const paired = pairedTable(result);
  if (paired !== undefined) {
    out.push(
      `Paired: each tracing-on variant and the off one loaded at the same time, each by its own \`hey\` at ${int(s.pairedRps)} req/s ` +
        `(fixed rate), CPU read from both over the same ${settings.durationS} s window after a ${settings.warmupS} s warm-up; ` +
        `${s.rounds} round${s.rounds === 1 ? '' : 's'} per C and pair.`,
    );
    out.push('');
    out.push(paired);
  } else if (result.pairedSkipped !== undefined) {
    out.push(`Paired points skipped: ${result.pairedSkipped}.`);
  }
  out.push('');
  out.push(costTable(result));
  const goals = goalsTable(result);
  if (goals !== undefined) {
    out.push('');
    out.push(goals);
  }
  if (result.failed !== undefined) {
    out.push('');
    out.push(`- failed part-way: ${result.failed.split('\n')[0]}`);
  }
  return out.join('\n') + '\n';
}
