// Turns the measurements into the markdown report: results per concurrency and for the POST
// run with ratios to the direct connection, nginx and Knative's Go queue-proxy; the backpressure
// points; the per-pod cost table; and the targets (bench/lib/goals.ts).
import type { BackpressureSettings } from './backpressure.ts';
import { costTable } from './cost-table.ts';
import { absentBecause, DASH, divide, int, latency, measured, mib, percent, pointAt, ratio, withRole } from './format.ts';
import { goalsTable } from './goals.ts';
import { table } from './markdown.ts';
import type { Point, TargetResult } from './measure.ts';
import { NOISY } from './quiet.ts';
import type { SystemInfo } from './system-info.ts';

export interface ReportSettings {
  durationS: number;
  warmupS: number;
  concurrencies: number[];
  starts: number;
  postConnections: number;
  /** Undefined when the backpressure points were left out. */
  backpressure: BackpressureSettings | undefined;
  proxyCpu: number;
  loadCpu: number;
  quick: boolean;
  profile: boolean;
  /** Share of the bench CPUs busy with other processes in the second before the run. */
  backgroundLoad: number;
}

const MiB = 1024 * 1024;

function cpuRatio(point: Point | undefined, base: Point | undefined): number | undefined {
  return divide(point?.cpuUsPerRequest, base?.cpuUsPerRequest);
}

function p99Ratio(point: Point | undefined, base: Point | undefined): number | undefined {
  return divide(point?.wrk.p99Us, base?.wrk.p99Us);
}

const POINT_HEADERS = ['C', 'target', 'req/s', 'p50', 'p99', 'p99 ÷ direct', 'p99 ÷ nginx', 'p99 ÷ Go', 'CPU µs/req', 'CPU ÷ nginx', 'CPU ÷ Go', 'errors', 'other load'];

/** One row per target for a load point: `pick` chooses the point from a target (and from the ones compared with). */
function pointRows(results: readonly TargetResult[], label: string, pick: (r: TargetResult | undefined) => Point | undefined): string[][] {
  const direct = withRole(results, 'direct');
  const nginx = withRole(results, 'baseline');
  const go = withRole(results, 'reference');
  const rows: string[][] = [];
  for (const r of measured(results)) {
    const p = pick(r);
    if (p === undefined) continue;
    const isDirect = r.spec.role === 'direct';
    rows.push([
      label,
      r.spec.name,
      int(p.wrk.requestsPerSecond),
      latency(p.wrk.p50Us),
      latency(p.wrk.p99Us),
      isDirect ? DASH : ratio(p99Ratio(p, pick(direct))),
      isDirect || r === nginx ? DASH : ratio(p99Ratio(p, pick(nginx))),
      isDirect || r === go ? DASH : ratio(p99Ratio(p, pick(go))),
      p.cpuUsPerRequest === undefined ? DASH : p.cpuUsPerRequest.toFixed(1),
      isDirect ? DASH : ratio(cpuRatio(p, pick(nginx))),
      isDirect || r === go ? DASH : ratio(cpuRatio(p, pick(go))),
      int(p.wrk.errors),
      percent(p.otherLoad),
    ]);
  }
  return rows;
}

function pointTable(rows: string[][]): string {
  return table(POINT_HEADERS, rows, ['right', 'left', ...POINT_HEADERS.slice(2).map(() => 'right' as const)]);
}

function backpressureTable(results: readonly TargetResult[]): string | undefined {
  const rows: string[][] = [];
  for (const r of measured(results)) {
    for (const p of r.backpressure) {
      rows.push([
        r.spec.name,
        p.kind,
        p.complete ? `all ${int(p.expectedBytes / MiB)} MiB` : `**${(p.bytes / MiB).toFixed(1)} of ${int(p.expectedBytes / MiB)} MiB**`,
        `${p.seconds.toFixed(1)} s`,
        `${((p.complete ? p.bytes : 0) / MiB / p.seconds).toFixed(0)} MiB/s`,
        mib(p.peakRssKiB),
        mib(p.hwmKiB),
        p.error ?? '',
      ]);
    }
  }
  if (rows.length === 0) return undefined;
  return table(
    ['target', 'point', 'arrived', 'time', 'rate', 'peak RSS (sampled every 50 ms)', 'VmHWM after', 'error'],
    rows,
    ['left', 'left', 'right', 'right', 'right', 'right', 'right', 'left'],
  );
}

export function renderReport(results: readonly TargetResult[], info: SystemInfo, settings: ReportSettings): string {
  const out: string[] = [];
  out.push(`### Queue-proxy benchmark, ${info.date}`);
  out.push('');
  out.push(
    `Machine: ${info.nproc} CPUs (${info.cpuModel}), kernel ${info.kernel}, node ${info.nodeVersion}, ` +
      `${info.nginxVersion}, ${info.wrkVersion}.  `,
  );
  out.push(
    `Run: ${settings.quick ? 'quick mode, ' : ''}${settings.durationS} s per point after a ${settings.warmupS} s warm-up, ` +
      `wrk -t1 on CPU ${settings.loadCpu} with the backend, proxies on CPU ${settings.proxyCpu}` +
      `${settings.profile ? ', **--profile on (numbers distorted by the profiler)**' : ''}. ` +
      `Other processes' load on those CPUs before the run: ${percent(settings.backgroundLoad)}.`,
  );
  const go = withRole(results, 'reference');
  out.push(
    go === undefined
      ? `Reference: none (${absentBecause(results, 'reference', 'knative-queue')}), so the ÷ Go figures are empty.`
      : `Reference: ${go.spec.description}. Both queue-proxies get Knative's env for a default revision (bench/lib/knative-env.ts).`,
  );
  out.push('');
  out.push('#### Throughput and latency (GET, 13-byte response)');
  out.push('');
  out.push(pointTable(settings.concurrencies.flatMap((c) => pointRows(results, String(c), (r) => pointAt(r, c)))));
  out.push('');
  out.push(`#### POST, 64 KiB bodies, C=${settings.postConnections}`);
  out.push('');
  out.push(pointTable(pointRows(results, String(settings.postConnections), (r) => r?.post)));
  const bp = settings.backpressure;
  const backpressure = backpressureTable(results);
  if (bp !== undefined && backpressure !== undefined) {
    out.push('');
    out.push('#### Backpressure');
    out.push('');
    out.push(
      `slow-reader: GET of a ${bp.bigBytes / MiB} MiB file, read by the client at ${bp.readerBytesPerSecond / MiB} MiB/s. ` +
        `slow-upload: POST of ${bp.uploadBytes / MiB} MiB, sent as fast as the target takes it, to an app reading ${bp.appBytesPerSecond / MiB} MiB/s.`,
    );
    out.push('');
    out.push(backpressure);
  }
  const cost = costTable(results, settings.concurrencies, settings.postConnections);
  if (cost !== undefined) {
    out.push('');
    out.push('#### Per-pod cost');
    out.push('');
    out.push(
      `Memory in MiB: VmRSS when idle and right after each load run, VmHWM after the load runs and after everything, ` +
        `highest VmRSS sampled during each backpressure point. Start-up: median of ${settings.starts}, exec → first 200. CPU in µs per request.`,
    );
    out.push('');
    out.push(cost);
  }
  const goals = goalsTable(results, bp !== undefined, (bp?.readerBytesPerSecond ?? 0) / MiB, (bp?.appBytesPerSecond ?? 0) / MiB);
  if (goals !== undefined) {
    out.push('');
    out.push("#### Against the issue's targets");
    out.push('');
    out.push(goals);
  }
  const notes = results.flatMap((r) => [
    ...(r.skipped === undefined ? [] : [`- ${r.spec.name}: skipped, ${r.skipped}`]),
    ...(r.failed === undefined ? [] : [`- ${r.spec.name}: failed, ${r.failed.split('\n')[0]}`]),
  ]);
  if (results.some((r) => [...r.points, ...(r.post === undefined ? [] : [r.post])].some((p) => p.otherLoad > NOISY))) {
    notes.push(`- (!) other processes used more than ${NOISY * 100}% of the bench CPUs during that run: treat its numbers as noisy.`);
  }
  if (notes.length > 0) {
    out.push('');
    out.push(...notes);
  }
  return out.join('\n') + '\n';
}
