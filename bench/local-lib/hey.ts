// Runs hey against the ingress and reads its summary.
import { start } from '../lib/children.ts';

export interface HeyResult {
  requests: number;
  rps: number;
  /** Response counts by status code. */
  statuses: Record<string, number>;
  /** Error messages with their counts (connection failures, timeouts). */
  errors: Record<string, number>;
  latencyMs: { mean: number; p50: number; p95: number; p99: number };
  exit: number | string;
  raw: string;
}

export async function runHey(hey: string, url: string, host: string, seconds: number, concurrency: number): Promise<HeyResult> {
  const child = start([hey, '-z', `${seconds}s`, '-c', String(concurrency), '-host', host, url]);
  let raw = '';
  child.process.stdout!.setEncoding('utf8').on('data', (d: string) => (raw += d));
  child.process.stderr!.setEncoding('utf8').on('data', (d: string) => (raw += d));
  const exit = await child.exited;
  return { ...parseHey(raw), exit, raw };
}

export function parseHey(raw: string): Omit<HeyResult, 'exit' | 'raw'> {
  const statuses: Record<string, number> = {};
  const errors: Record<string, number> = {};
  let section = '';
  for (const line of raw.split('\n')) {
    if (/^\S/.test(line)) section = line.trim();
    const status = /^\s+\[(\d+)\]\s+(\d+) responses/.exec(line);
    if (section.startsWith('Status code distribution') && status) statuses[status[1]!] = Number(status[2]);
    const error = /^\s+\[(\d+)\]\s+(.+)$/.exec(line);
    if (section.startsWith('Error distribution') && error) errors[error[2]!.trim()] = Number(error[1]);
  }
  const latency = (p: number): number => {
    const m = new RegExp(`^\\s+${p}% in ([\\d.]+) secs`, 'm').exec(raw);
    return m ? Number(m[1]) * 1000 : Number.NaN;
  };
  const requests = Object.values(statuses).reduce((a, b) => a + b, 0) + Object.values(errors).reduce((a, b) => a + b, 0);
  return {
    requests,
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(raw)?.[1] ?? Number.NaN),
    statuses,
    errors,
    latencyMs: { mean: Number(/Average:\s+([\d.]+) secs/.exec(raw)?.[1] ?? Number.NaN) * 1000, p50: latency(50), p95: latency(95), p99: latency(99) },
  };
}
