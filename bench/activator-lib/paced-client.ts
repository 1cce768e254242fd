// A keep-alive HTTP client that sends at evenly spaced instants (open loop), for latency at a
// fixed rate without bursts: hey's -q starts one ticker per worker, all at the same moment,
// so its 200 workers fire together every 200 ms; this client sends one request every
// 1000/rate ms instead. Latency is measured from the scheduled instant, so a late send (the
// client's own event loop, a pool with no free socket) counts against the target, not lost.
import { Agent, request } from 'node:http';
import { percentile } from './percentile.ts';

export interface PacedResult {
  sent: number;
  requestsPerSecond: number;
  /** Latency percentiles, microseconds, over responses with any status. */
  percentilesUs: Record<number, number>;
  statuses: Record<number, number>;
  errors: number;
  firstError: string | undefined;
}

export interface PacedRun {
  port: number;
  headers: Record<string, string>;
  rate: number;
  durationS: number;
  /** Connection pool size (the in-flight requests at rate × latency need a socket each). */
  maxSockets: number;
}

export async function runPaced(run: PacedRun): Promise<PacedResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: run.maxSockets, maxFreeSockets: run.maxSockets, scheduling: 'fifo' });
  const latenciesMs: number[] = [];
  const statuses: Record<number, number> = {};
  let errors = 0;
  let firstError: string | undefined;
  let sent = 0;
  let outstanding = 0;
  const total = Math.round(run.rate * run.durationS);
  const intervalMs = 1000 / run.rate;
  const startedAt = performance.now() + 5;
  let finish: () => void = () => {};
  const done = new Promise<void>((resolve) => (finish = resolve));
  const send = (scheduledAt: number): void => {
    outstanding++;
    const req = request({ host: '127.0.0.1', port: run.port, path: '/', headers: run.headers, agent }, (res) => {
      res.resume();
      res.on('end', () => {
        latenciesMs.push(performance.now() - scheduledAt);
        statuses[res.statusCode ?? 0] = (statuses[res.statusCode ?? 0] ?? 0) + 1;
        if (--outstanding === 0 && sent === total) finish();
      });
    });
    req.on('error', (err) => {
      errors++;
      firstError ??= err.message;
      if (--outstanding === 0 && sent === total) finish();
    });
    req.end();
  };
  // A 1 ms timer catches up on whatever is due: each request keeps its own scheduled instant.
  const timer = setInterval(() => {
    const now = performance.now();
    while (sent < total && startedAt + sent * intervalMs <= now) send(startedAt + sent++ * intervalMs);
    if (sent === total) {
      clearInterval(timer);
      if (outstanding === 0) finish();
    }
  }, 1);
  await done;
  const elapsedS = (performance.now() - startedAt) / 1000;
  agent.destroy();
  const percentilesUs: Record<number, number> = {};
  for (const p of [50, 95, 99]) percentilesUs[p] = percentile(latenciesMs, p) * 1000;
  return { sent, requestsPerSecond: latenciesMs.length / elapsedS, percentilesUs, statuses, errors, firstError };
}
