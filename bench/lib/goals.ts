// The targets for a Sluice proxy, each with the measured value and whether it is met.
// Absolute limits (memory), limits relative to the node:http floor (start-up) and to Knative's
// Go queue-proxy (CPU, tails); a relative row without its reference says why it is n/a.
import type { BackpressureKind } from './backpressure.ts';
import { absentBecause, divide, latency, measured, mib, pointAt, ratio, withRole } from './format.ts';
import { table } from './markdown.ts';
import type { TargetResult } from './measure.ts';

export const GOALS = {
  startupVsFloor: 1.25,
  idleRssMiB: 50,
  peakRssMiB: 96,
  backpressurePeakMiB: 128,
  /** CPU per request, at each of CPU_GOAL_CONCURRENCIES and for POST. */
  cpuVsReference: 1,
  p99VsReferenceAtC200: 1,
  postP99VsReference: 1.2,
} as const;

export const CPU_GOAL_CONCURRENCIES = [10, 50, 200] as const;

type Row = [goal: string, limit: string, measured: string, met: string];

function verdict(value: number | undefined, limit: number): string {
  if (value === undefined || !Number.isFinite(value)) return 'n/a';
  return value <= limit ? 'yes' : '**no**';
}

function memoryRow(goal: string, limitMiB: number, kib: number | undefined, why: string): Row {
  if (kib === undefined) return [goal, `≤ ${limitMiB} MiB`, `n/a (${why})`, 'n/a'];
  return [goal, `≤ ${limitMiB} MiB`, mib(kib), verdict(kib / 1024, limitMiB)];
}

/** A ratio row: mine ÷ theirs against `limit`, showing both figures. */
function relativeRow(
  goal: string,
  limit: number,
  mine: number | undefined,
  theirs: number | undefined,
  format: (n: number) => string,
  whyMine: string,
  whyTheirs: string,
): Row {
  const limitText = `≤ ${limit.toFixed(2)}×`;
  // The missing reference first: it is the reason for a whole group of rows.
  if (theirs === undefined) return [goal, limitText, `n/a (${whyTheirs})`, 'n/a'];
  if (mine === undefined) return [goal, limitText, `n/a (${whyMine})`, 'n/a'];
  const r = divide(mine, theirs);
  return [goal, limitText, `${ratio(r)} (${format(mine)} vs ${format(theirs)})`, verdict(r, limit)];
}

function backpressureRow(r: TargetResult, kind: BackpressureKind, what: string, why: string): Row {
  const point = r.backpressure.find((p) => p.kind === kind);
  const goal = `${kind} peak RSS (${what})`;
  const limit = `≤ ${GOALS.backpressurePeakMiB} MiB`;
  if (point === undefined) return [goal, limit, `n/a (${why})`, 'n/a'];
  if (!point.complete) {
    const got = `${(point.bytes / 1048576).toFixed(0)} of ${(point.expectedBytes / 1048576).toFixed(0)} MiB`;
    return [goal, limit, `${mib(point.peakRssKiB)}, incomplete: ${point.error ?? got}`, '**no**'];
  }
  return [goal, limit, mib(point.peakRssKiB), verdict(point.peakRssKiB / 1024, GOALS.backpressurePeakMiB)];
}

export function goalsTable(results: readonly TargetResult[], backpressureRan: boolean, readerMiBs: number, appMiBs: number): string | undefined {
  const floor = withRole(results, 'floor');
  const reference = withRole(results, 'reference');
  const noFloor = floor?.startupMs === undefined ? absentBecause(results, 'floor', 'node-http') : '';
  const noReference = absentBecause(results, 'reference', 'knative-queue');
  const goPoint = (c: number): string => (reference === undefined ? noReference : `C=${c} not run`);
  const ms = (n: number): string => `${n.toFixed(1)} ms`;
  const us = (n: number): string => `${n.toFixed(1)} µs`;
  const noBackpressure = backpressureRan ? 'not measured' : '--skip-backpressure';
  const rows: string[][] = [];
  for (const r of measured(results)) {
    if (r.spec.role !== 'proxy') continue;
    const own: Row[] = [
      relativeRow('start-up (exec → first proxied 200) vs node-http', GOALS.startupVsFloor, r.startupMs, floor?.startupMs, ms, 'not timed', noFloor),
      memoryRow('idle RSS', GOALS.idleRssMiB, r.idleRssKiB, 'not measured'),
      memoryRow('peak RSS under load (VmHWM after the load runs and POST)', GOALS.peakRssMiB, r.loadPeakRssKiB, 'not measured'),
      backpressureRow(r, 'slow-reader', `1 GiB response read at ${readerMiBs} MiB/s`, noBackpressure),
      backpressureRow(r, 'slow-upload', `256 MiB body, app reads ${appMiBs} MiB/s`, noBackpressure),
      ...CPU_GOAL_CONCURRENCIES.map((c) =>
        relativeRow(`CPU/req at C=${c} vs Go`, GOALS.cpuVsReference, pointAt(r, c)?.cpuUsPerRequest, pointAt(reference, c)?.cpuUsPerRequest, us, `C=${c} not run`, goPoint(c)),
      ),
      relativeRow('CPU/req of the POST run vs Go', GOALS.cpuVsReference, r.post?.cpuUsPerRequest, reference?.post?.cpuUsPerRequest, us, 'no POST run', reference === undefined ? noReference : 'no POST run'),
      relativeRow('p99 at C=200 vs Go', GOALS.p99VsReferenceAtC200, pointAt(r, 200)?.wrk.p99Us, pointAt(reference, 200)?.wrk.p99Us, latency, 'C=200 not run', goPoint(200)),
      relativeRow('POST p99 vs Go', GOALS.postP99VsReference, r.post?.wrk.p99Us, reference?.post?.wrk.p99Us, latency, 'no POST run', reference === undefined ? noReference : 'no POST run'),
    ];
    rows.push(...own.map((row) => [r.spec.name, ...row]));
  }
  if (rows.length === 0) return undefined;
  return table(['target', 'goal', 'limit', 'measured', 'met'], rows, ['left', 'left', 'right', 'right', 'left']);
}
