// Drives hey (rate-limited load: -q is per worker) pinned to the load CPU and parses its summary.
import { collectOutput, start, stop } from '../lib/children.ts';

export interface HeyResult {
  requestsPerSecond: number;
  /** Latency percentiles (hey prints 10, 25, 50, 75, 90, 95, 99), microseconds; 0.1 ms resolution. */
  percentilesUs: Record<number, number>;
  /** Responses per HTTP status. */
  statuses: Record<number, number>;
  /** Requests that got no response (connect, read, timeout errors). */
  errors: number;
  /** First error line, if any, for the log. */
  firstError: string | undefined;
}

export interface HeyRun {
  hey: string;
  taskset: string;
  cpu: number;
  url: string;
  workers: number;
  /** Requests per second per worker (hey -q). */
  perWorkerRate: number;
  durationS: number;
  headers: Record<string, string>;
}

/** Parses hey's text summary. Throws if no latency distribution was printed (no response at all). */
export function parseHey(text: string): HeyResult {
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(text);
  const percentilesUs: Record<number, number> = {};
  for (const m of text.matchAll(/^\s*(\d+)% in ([\d.]+) secs/gm)) percentilesUs[Number(m[1])] = Number(m[2]) * 1e6;
  const statuses: Record<number, number> = {};
  const statusBlock = /Status code distribution:\n([\s\S]*?)(?:\n\s*\n|\nError distribution:|$)/.exec(text)?.[1] ?? '';
  for (const m of statusBlock.matchAll(/\[(\d+)\]\s+(\d+) responses/g)) statuses[Number(m[1])] = Number(m[2]);
  let errors = 0;
  let firstError: string | undefined;
  const errorBlock = /Error distribution:\n([\s\S]*)$/.exec(text)?.[1] ?? '';
  for (const m of errorBlock.matchAll(/^\s*\[(\d+)\]\s+(.*)$/gm)) {
    errors += Number(m[1]);
    firstError ??= m[2];
  }
  if (rps === null || percentilesUs[50] === undefined || percentilesUs[95] === undefined || percentilesUs[99] === undefined) {
    throw new Error(`cannot parse hey output (no response at all?):\n${text.slice(0, 2000)}`);
  }
  return { requestsPerSecond: Number(rps[1]), percentilesUs, statuses, errors, firstError };
}

/** Runs `taskset -c cpu hey -z Ns -c W -q R -cpus 1 [-H ...] url` and parses the summary. */
export async function runHey(run: HeyRun): Promise<HeyResult> {
  const argv = [run.taskset, '-c', String(run.cpu), run.hey, '-z', `${run.durationS}s`, '-c', String(run.workers), '-q', String(run.perWorkerRate), '-cpus', '1'];
  for (const [name, value] of Object.entries(run.headers)) argv.push('-H', `${name}: ${value}`);
  argv.push(run.url);
  const child = start(argv);
  const output = collectOutput(child);
  const guard = setTimeout(() => void stop(child), (run.durationS + 30) * 1000);
  const status = await child.exited;
  clearTimeout(guard);
  const text = await output;
  if (status !== 0) throw new Error(`hey exited with ${status}:\n${text.slice(0, 2000)}`);
  return parseHey(text);
}
