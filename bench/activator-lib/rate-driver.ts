// An open-loop load generator for the backpressure run: sends requests at a fixed rate no
// matter how many are still waiting (a closed-loop tool such as wrk, or autocannon with a
// fixed connection count, stops sending once every connection waits, which hides the queue
// build-up being measured). One connection per request (keepAlive off): thousands of
// requests wait at once, each on its own socket, as from many independent clients. Only
// counters and two small arrays are kept per request, so the driver itself stays small.
import { Agent, request, type ClientRequest } from 'node:http';

export interface DriverCounts {
  sent: number;
  /** Responses by status. */
  statuses: Map<number, number>;
  /** 503s carrying a Retry-After header, and the values seen. */
  retryAfter503: number;
  retryAfterMin: number;
  retryAfterMax: number;
  /** Connection errors (refused, reset) before a response. */
  errors: number;
  firstError: string | undefined;
  /** Requests the driver itself aborted when the run ended. */
  aborted: number;
  /** Time to the 503 answers, ms (to see sheds are immediate). */
  shedMs: number[];
  /** Largest delay between a request's scheduled and actual send, ms. */
  maxSendLagMs: number;
}

export class OpenLoopDriver {
  readonly counts: DriverCounts = {
    sent: 0,
    statuses: new Map(),
    retryAfter503: 0,
    retryAfterMin: Infinity,
    retryAfterMax: 0,
    errors: 0,
    firstError: undefined,
    aborted: 0,
    shedMs: [],
    maxSendLagMs: 0,
  };
  private readonly pending = new Set<ClientRequest>();
  private readonly agent = new Agent({ keepAlive: false, maxSockets: Infinity });
  private readonly port: number;
  private readonly headers: Record<string, string>;
  private readonly rate: number;
  private timer: NodeJS.Timeout | undefined;
  private startedAt = 0;
  private stopping = false;

  constructor(port: number, headers: Record<string, string>, ratePerSecond: number) {
    this.port = port;
    this.headers = headers;
    this.rate = ratePerSecond;
  }

  /** Requests sent and not yet answered. */
  get waiting(): number {
    return this.pending.size;
  }

  get answered(): number {
    let n = 0;
    for (const count of this.counts.statuses.values()) n += count;
    return n;
  }

  /** Starts sending; the schedule is absolute, so a late tick sends what is due at once. */
  start(): void {
    this.startedAt = performance.now();
    this.timer = setInterval(() => this.tick(), 2);
  }

  /** Stops sending new requests; those in flight continue. */
  stopSending(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Aborts every request still waiting (they count as aborted, not as errors). */
  abortWaiting(): number {
    this.stopping = true;
    const n = this.pending.size;
    for (const req of this.pending) req.destroy();
    this.counts.aborted += n;
    this.pending.clear();
    this.agent.destroy();
    return n;
  }

  private tick(): void {
    const now = performance.now();
    const due = Math.floor(((now - this.startedAt) * this.rate) / 1000);
    if (due > this.counts.sent) {
      const lag = now - this.startedAt - (this.counts.sent * 1000) / this.rate;
      if (lag > this.counts.maxSendLagMs) this.counts.maxSendLagMs = lag;
    }
    while (this.counts.sent < due) this.send();
  }

  private send(): void {
    this.counts.sent++;
    const sentAt = performance.now();
    const req = request({ host: '127.0.0.1', port: this.port, path: '/', headers: this.headers, agent: this.agent });
    this.pending.add(req);
    req.on('response', (res) => {
      this.pending.delete(req);
      const status = res.statusCode ?? 0;
      this.counts.statuses.set(status, (this.counts.statuses.get(status) ?? 0) + 1);
      if (status === 503) {
        this.counts.shedMs.push(performance.now() - sentAt);
        const retryAfter = Number(res.headers['retry-after']);
        if (res.headers['retry-after'] !== undefined && Number.isFinite(retryAfter)) {
          this.counts.retryAfter503++;
          if (retryAfter < this.counts.retryAfterMin) this.counts.retryAfterMin = retryAfter;
          if (retryAfter > this.counts.retryAfterMax) this.counts.retryAfterMax = retryAfter;
        }
      }
      res.resume();
    });
    req.on('error', (err) => {
      if (this.stopping || !this.pending.delete(req)) return; // aborted by us, or after its response
      this.counts.errors++;
      this.counts.firstError ??= err.message;
    });
    req.end();
  }
}
