// The per-pod cost table: one row per started target (the Go reference, the Sluice proxies,
// nginx, the node:http floor) with what it costs a pod to run it, then one row per Sluice proxy
// with each figure divided by the Go reference's.
import type { BackpressureKind } from './backpressure.ts';
import { DASH, divide, latency, measured, mib, pointAt, ratio, withRole } from './format.ts';
import { table, type Align } from './markdown.ts';
import type { TargetResult } from './measure.ts';
import type { TargetRole } from './targets.ts';

interface Column {
  header: string;
  value: (r: TargetResult) => number | undefined;
  format: (n: number) => string;
}

const ROW_ORDER: readonly TargetRole[] = ['reference', 'proxy', 'baseline', 'floor'];

function fixed1(n: number): string {
  return n.toFixed(1);
}

function peakOf(kind: BackpressureKind): (r: TargetResult) => number | undefined {
  return (r) => r.backpressure.find((p) => p.kind === kind)?.peakRssKiB;
}

function columns(concurrencies: readonly number[], postConnections: number): Column[] {
  const kib = (n: number): string => mib(n, false);
  const top = concurrencies.includes(200) ? 200 : Math.max(...concurrencies);
  return [
    { header: 'start-up ms', value: (r) => r.startupMs, format: fixed1 },
    { header: 'idle', value: (r) => r.idleRssKiB, format: kib },
    ...concurrencies.map((c): Column => ({ header: `after C=${c}`, value: (r) => pointAt(r, c)?.rssAfterKiB, format: kib })),
    { header: 'after POST', value: (r) => r.post?.rssAfterKiB, format: kib },
    { header: 'VmHWM load', value: (r) => r.loadPeakRssKiB, format: kib },
    { header: 'VmHWM all', value: (r) => r.peakRssKiB, format: kib },
    { header: 'slow reader', value: peakOf('slow-reader'), format: kib },
    { header: 'slow upload', value: peakOf('slow-upload'), format: kib },
    ...concurrencies.map((c): Column => ({ header: `CPU C=${c}`, value: (r) => pointAt(r, c)?.cpuUsPerRequest, format: fixed1 })),
    { header: `CPU POST C=${postConnections}`, value: (r) => r.post?.cpuUsPerRequest, format: fixed1 },
    { header: `p99 C=${top}`, value: (r) => pointAt(r, top)?.wrk.p99Us, format: latency },
    { header: 'POST p99', value: (r) => r.post?.wrk.p99Us, format: latency },
  ];
}

export function costTable(results: readonly TargetResult[], concurrencies: readonly number[], postConnections: number): string | undefined {
  const rows = measured(results)
    .filter((r) => ROW_ORDER.includes(r.spec.role))
    .sort((a, b) => ROW_ORDER.indexOf(a.spec.role) - ROW_ORDER.indexOf(b.spec.role));
  if (rows.length === 0) return undefined;
  const cols = columns(concurrencies, postConnections);
  const cell = (n: number | undefined, format: (n: number) => string): string => (n === undefined ? DASH : format(n));
  const lines = rows.map((r) => [r.spec.name, ...cols.map((c) => cell(c.value(r), c.format))]);
  const reference = withRole(results, 'reference');
  if (reference !== undefined) {
    for (const r of rows.filter((t) => t.spec.role === 'proxy')) {
      lines.push([`${r.spec.name} ÷ ${reference.spec.name}`, ...cols.map((c) => ratio(divide(c.value(r), c.value(reference))))]);
    }
  }
  const align: Align[] = ['left', ...cols.map((): Align => 'right')];
  return table(['target', ...cols.map((c) => c.header)], lines, align);
}
