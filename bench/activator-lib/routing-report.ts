// The routing part's markdown: one row per routing and C over all rounds, with CPU per request
// and p99 as ratios to pod routing (the median of the per-round ratios, each from turns run next
// to each other, and their range), then what showed each routing took its path.
import { table } from '../lib/markdown.ts';
import { NOISY } from '../lib/quiet.ts';
import type { Routing, RoutingPoint, RoutingResult } from './routing.ts';

const DASH = '—';
const LABEL: Record<Routing, string> = {
  pod: 'pod (mesh auto, pod address)',
  'cluster-ip': 'ClusterIP (mesh enabled)',
  tls: 'TLS dialling (system-internal-tls)',
};

export type Metric = 'cpu' | 'p99';

const int = (n: number): string => Math.round(n).toLocaleString('en-US');
const us = (v: number | undefined): string => (v === undefined ? DASH : v.toFixed(1));
const latency = (v: number): string => (v < 1000 ? `${v.toFixed(0)} µs` : `${(v / 1000).toFixed(2)} ms`);
const percent = (share: number): string => `${(share * 100).toFixed(0)}%${share > NOISY ? ' (!)' : ''}`;

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function value(p: RoutingPoint, metric: Metric): number | undefined {
  return metric === 'cpu' ? p.cpuUsPerRequest : p.wrk.p99Us;
}

/** Per-round ratios of `routing` to pod routing at C, sorted (rounds missing either are left out). */
export function roundRatios(r: RoutingResult, routing: Routing, c: number, metric: Metric): number[] {
  const out: number[] = [];
  for (const p of r.points) {
    if (p.routing !== routing || p.connections !== c) continue;
    const base = r.points.find((q) => q.routing === 'pod' && q.connections === c && q.round === p.round);
    const a = value(p, metric);
    const b = base === undefined ? undefined : value(base, metric);
    if (a !== undefined && b !== undefined && b > 0) out.push(a / b);
  }
  return out.sort((x, y) => x - y);
}

function ratioCell(xs: number[]): string {
  if (xs.length === 0) return DASH;
  const head = `${median(xs).toFixed(2)}×`;
  return xs.length === 1 ? head : `${head} (${xs[0]!.toFixed(2)}–${xs.at(-1)!.toFixed(2)})`;
}

/** CPU µs per request over all rounds: total CPU ÷ total requests. */
function pooled(points: RoutingPoint[], pick: (p: RoutingPoint) => number | undefined): number | undefined {
  let cpu = 0;
  let requests = 0;
  for (const p of points) {
    const v = pick(p);
    if (v === undefined) return undefined;
    cpu += v * p.wrk.requests;
    requests += p.wrk.requests;
  }
  return requests === 0 ? undefined : cpu / requests;
}

export interface RoutingReportInput {
  proxyCpu: number;
  loadCpu: number;
  durationS: number;
  warmupS: number;
}

export function routingSection(input: RoutingReportInput, r: RoutingResult): string[] {
  const rounds = new Set(r.points.map((p) => p.round)).size;
  const rows: string[][] = [];
  for (const c of [...new Set(r.points.map((p) => p.connections))]) {
    for (const routing of ['pod', 'cluster-ip', 'tls'] as const) {
      const ps = r.points.filter((p) => p.routing === routing && p.connections === c);
      if (ps.length === 0) continue;
      const pod = routing === 'pod';
      rows.push([
        String(c),
        LABEL[routing],
        int(ps.reduce((sum, p) => sum + p.wrk.requestsPerSecond, 0) / ps.length),
        latency(median(ps.map((p) => p.wrk.p50Us))),
        latency(median(ps.map((p) => p.wrk.p99Us))),
        pod ? DASH : ratioCell(roundRatios(r, routing, c, 'p99')),
        us(pooled(ps, (p) => p.cpuUsPerRequest)),
        pod ? DASH : ratioCell(roundRatios(r, routing, c, 'cpu')),
        us(pooled(ps, (p) => p.qpCpuUsPerRequest)),
        int(ps.reduce((sum, p) => sum + p.wrk.errors, 0)),
        percent(Math.max(...ps.map((p) => p.otherLoad))),
      ]);
    }
  }
  const out = [
    `#### 1b. Warm path by routing (activator → queue-proxy → nginx; wrk -t1, ${input.durationS} s per turn after a ${input.warmupS} s warm-up, ${rounds} round${rounds === 1 ? '' : 's'})`,
    '',
  ];
  if (rows.length > 0) {
    out.push(
      table(
        ['C', 'routing', 'req/s', 'p50', 'p99', 'p99 ÷ pod', `activator CPU µs/req (CPU ${input.proxyCpu})`, 'CPU ÷ pod', `queue-proxy CPU µs/req (CPU ${input.loadCpu})`, 'errors', 'other load'],
        rows,
        ['right', 'left', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right'],
      ),
      '',
      `req/s is the mean over the rounds, p50 and p99 the median, CPU µs/req the total CPU over the rounds ÷ their requests. ` +
        `"÷ pod" is the median of the per-round ratios to the pod row at the same C (each round's turns run one after another), with their range; ` +
        `"other load" is the largest share of the bench CPUs other processes used during a turn.`,
      '',
    );
  }
  const notes = [
    ...r.checks.map((c) => `- path check: ${c}`),
    ...r.skipped.map((s) => `- skipped: ${s}`),
    ...r.failures.map((f) => `- failed: ${f.split('\n')[0]}`),
  ];
  if (r.points.some((p) => p.otherLoad > NOISY)) notes.push(`- (!) other processes used more than ${NOISY * 100}% of the bench CPUs during a turn: treat its numbers as noisy.`);
  return [...out, ...notes];
}
