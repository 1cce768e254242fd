// Turns the measurements into the markdown report: results per concurrency with ratios to
// nginx (CPU) and to the direct connection (p99), footprint and start-up, and the goals.
import { table } from './markdown.ts';
import type { Point, TargetResult } from './measure.ts';
import { NOISY } from './quiet.ts';
import type { SystemInfo } from './system-info.ts';

/** The targets for a Sluice proxy. */
export const GOALS = {
  cpuVsNginxAtC50: 3.1,
  p99VsDirectAtC200: 1.5,
  startupMs: 60,
  idleRssMiB: 35,
  peakRssMiB: 60,
} as const;

export interface ReportSettings {
  durationS: number;
  warmupS: number;
  concurrencies: number[];
  starts: number;
  postConnections: number;
  proxyCpu: number;
  loadCpu: number;
  quick: boolean;
  profile: boolean;
  /** Share of the bench CPUs busy with other processes in the second before the run. */
  backgroundLoad: number;
}

const DASH = '—';

function int(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

function latency(us: number): string {
  return us < 1000 ? `${us.toFixed(0)} µs` : `${(us / 1000).toFixed(2)} ms`;
}

function mib(kib: number | undefined): string {
  return kib === undefined ? DASH : `${(kib / 1024).toFixed(1)} MiB`;
}

function ratio(r: number | undefined): string {
  return r === undefined || !Number.isFinite(r) ? DASH : `${r.toFixed(2)}×`;
}

function percent(share: number): string {
  const text = `${(share * 100).toFixed(0)}%`;
  return share > NOISY ? `${text} (!)` : text;
}

function pointAt(result: TargetResult | undefined, connections: number): Point | undefined {
  return result?.points.find((p) => p.connections === connections);
}

function cpuRatio(point: Point | undefined, base: Point | undefined): number | undefined {
  if (point?.cpuUsPerRequest === undefined || base?.cpuUsPerRequest === undefined || base.cpuUsPerRequest === 0) return undefined;
  return point.cpuUsPerRequest / base.cpuUsPerRequest;
}

function p99Ratio(point: Point | undefined, base: Point | undefined): number | undefined {
  if (point === undefined || base === undefined || base.wrk.p99Us === 0) return undefined;
  return point.wrk.p99Us / base.wrk.p99Us;
}

function measured(results: readonly TargetResult[]): TargetResult[] {
  return results.filter((r) => r.skipped === undefined && (r.points.length > 0 || r.startupMs !== undefined));
}

function loadTable(results: readonly TargetResult[], settings: ReportSettings): string {
  const direct = results.find((r) => r.spec.role === 'direct');
  const nginx = results.find((r) => r.spec.role === 'baseline');
  const rows: string[][] = [];
  for (const c of settings.concurrencies) {
    for (const r of measured(results)) {
      const p = pointAt(r, c);
      if (p === undefined) continue;
      const isDirect = r.spec.role === 'direct';
      rows.push([
        String(c),
        r.spec.name,
        int(p.wrk.requestsPerSecond),
        latency(p.wrk.p50Us),
        latency(p.wrk.p99Us),
        isDirect ? DASH : ratio(p99Ratio(p, pointAt(direct, c))),
        isDirect || r === nginx ? DASH : ratio(p99Ratio(p, pointAt(nginx, c))),
        p.cpuUsPerRequest === undefined ? DASH : p.cpuUsPerRequest.toFixed(1),
        isDirect ? DASH : ratio(cpuRatio(p, pointAt(nginx, c))),
        int(p.wrk.errors),
        percent(p.otherLoad),
      ]);
    }
  }
  return table(
    ['C', 'target', 'req/s', 'p50', 'p99', 'p99 ÷ direct', 'p99 ÷ nginx', 'CPU µs/req', 'CPU ÷ nginx', 'errors', 'other load'],
    rows,
    ['right', 'left', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right'],
  );
}

function footprintTable(results: readonly TargetResult[], settings: ReportSettings): string {
  const rows = measured(results).map((r) => [
    r.spec.name,
    r.startupMs === undefined ? DASH : `${r.startupMs.toFixed(1)} ms`,
    mib(r.idleRssKiB),
    mib(r.peakRssKiB),
    r.post === undefined ? DASH : int(r.post.wrk.requestsPerSecond),
    r.post === undefined ? DASH : latency(r.post.wrk.p99Us),
    r.post?.cpuUsPerRequest === undefined ? DASH : r.post.cpuUsPerRequest.toFixed(1),
    r.post === undefined ? DASH : int(r.post.wrk.errors),
  ]);
  return table(
    [
      'target',
      `start-up (median of ${settings.starts})`,
      'idle RSS',
      'peak RSS',
      `POST 64 KiB req/s (C=${settings.postConnections})`,
      'POST p99',
      'POST CPU µs/req',
      'POST errors',
    ],
    rows,
    ['left', 'right', 'right', 'right', 'right', 'right', 'right', 'right'],
  );
}

function verdict(value: number | undefined, limit: number): string {
  if (value === undefined || !Number.isFinite(value)) return 'n/a';
  return value <= limit ? 'yes' : '**no**';
}

function goalsTable(results: readonly TargetResult[]): string | undefined {
  const direct = results.find((r) => r.spec.role === 'direct');
  const nginx = results.find((r) => r.spec.role === 'baseline');
  const rows: string[][] = [];
  for (const r of measured(results)) {
    if (r.spec.role !== 'proxy') continue;
    const cpu = cpuRatio(pointAt(r, 50), pointAt(nginx, 50));
    const p99 = p99Ratio(pointAt(r, 200), pointAt(direct, 200));
    const idle = r.idleRssKiB === undefined ? undefined : r.idleRssKiB / 1024;
    const peak = r.peakRssKiB === undefined ? undefined : r.peakRssKiB / 1024;
    rows.push(
      [r.spec.name, 'CPU/req at C=50 vs nginx', `≤ ${GOALS.cpuVsNginxAtC50}×`, ratio(cpu), verdict(cpu, GOALS.cpuVsNginxAtC50)],
      [r.spec.name, 'p99 at C=200 vs direct', `≤ ${GOALS.p99VsDirectAtC200}×`, ratio(p99), verdict(p99, GOALS.p99VsDirectAtC200)],
      [r.spec.name, 'start-up (exec → first proxied 200)', `≤ ${GOALS.startupMs} ms`, r.startupMs === undefined ? DASH : `${r.startupMs.toFixed(1)} ms`, verdict(r.startupMs, GOALS.startupMs)],
      [r.spec.name, 'idle RSS', `≤ ${GOALS.idleRssMiB} MiB`, mib(r.idleRssKiB), verdict(idle, GOALS.idleRssMiB)],
      [r.spec.name, 'peak RSS under load', `≤ ${GOALS.peakRssMiB} MiB`, mib(r.peakRssKiB), verdict(peak, GOALS.peakRssMiB)],
    );
  }
  if (rows.length === 0) return undefined;
  return table(['target', 'goal', 'limit', 'measured', 'met'], rows, ['left', 'left', 'right', 'right', 'left']);
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
  out.push('');
  out.push('#### Throughput and latency (GET, 13-byte response)');
  out.push('');
  out.push(loadTable(results, settings));
  out.push('');
  out.push('#### Start-up, memory and POST');
  out.push('');
  out.push(footprintTable(results, settings));
  const goals = goalsTable(results);
  if (goals !== undefined) {
    out.push('');
    out.push('#### Against the issue\'s targets');
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
