// Part 4, backpressure (knative/serving#13583): a fixed request rate into a revision with
// containerConcurrency 2 and one pod whose requests take 30 s, far more than it can serve.
// The activator must queue within its limits, shed the excess with 503 + Retry-After, stay
// alive, and keep its memory under the ceiling documented in revision-queue.ts.
import { request } from 'node:http';
import { logTail, sleep } from '../lib/children.ts';
import { spawnTarget, type RunningTarget } from '../lib/launch.ts';
import { get } from '../lib/net.ts';
import { memory } from '../lib/proc.ts';
import { launchContext, type BenchContext } from './context.ts';
import { waitForPort } from './port-wait.ts';
import { NAMESPACE, queueProxySpec, revisionHeaders, spawnApp, startActivator, type ActivatorProcess, type AppProcess } from './processes.ts';
import { OpenLoopDriver, type DriverCounts } from './rate-driver.ts';

export interface Sample {
  atS: number;
  sent: number;
  answered: number;
  waiting: number;
  /** 503s so far: 0 while the queue is still filling. */
  shed: number;
  rssKiB: number;
}

export interface BackpressureResult {
  rate: number;
  durationS: number;
  appDelayMs: number;
  containerConcurrency: number;
  timeoutSeconds: number;
  /** SLUICE_MAX_QUEUED_PER_REVISION given to the activator, or undefined for its default. */
  maxQueuedPerRevision: number | undefined;
  samples: Sample[];
  counts?: DriverCounts;
  baselineRssKiB?: number;
  maxRssKiB?: number;
  maxWaiting?: number;
  /** Requests still waiting when the load stopped (then aborted by the driver). */
  waitingAtEnd?: number;
  /** The activator's own figures after the run, from its /metrics. */
  queueDepthAfterAbort?: number;
  shedByReason?: Record<string, number>;
  rssAfterAbortKiB?: number;
  /** VmHWM at the end: the peak over the whole run, the aborts included. */
  peakRssKiB?: number;
  /** Set if the activator exited during the run. */
  crashed?: string;
  failures: string[];
}

export interface BackpressureOptions {
  rate: number;
  durationS: number;
  appDelayMs: number;
  containerConcurrency: number;
  timeoutSeconds: number;
  maxQueuedPerRevision: number | undefined;
}

const REVISION = 'stuck-00001';
const PROBE_HEADERS = { 'K-Network-Probe': 'queue', 'User-Agent': 'Knative-Activator-Probe' };

export async function runBackpressure(ctx: BenchContext, opts: BackpressureOptions): Promise<BackpressureResult> {
  const result: BackpressureResult = { ...opts, samples: [], failures: [] };
  let app: AppProcess | undefined;
  let qp: RunningTarget | undefined;
  let activator: ActivatorProcess | undefined;
  let driver: OpenLoopDriver | undefined;
  try {
    app = await spawnApp({ ...ctx, taskset: ctx.tools.taskset, cpu: ctx.loadCpu, delayMs: opts.appDelayMs, label: 'stuck' });
    const appRef = app;
    await waitForPort(app.port, 10_000, () => (appRef.child.exitStatus === undefined ? undefined : `app exited with ${appRef.child.exitStatus}`));
    qp = await spawnTarget(queueProxySpec(REVISION, opts.containerConcurrency), launchContext(ctx, ctx.loadCpu, app.port));
    await waitForQueueProxyReady(qp);
    const env: Record<string, string> = opts.maxQueuedPerRevision === undefined ? {} : { SLUICE_MAX_QUEUED_PER_REVISION: String(opts.maxQueuedPerRevision) };
    activator = await startActivator({ ...ctx, taskset: ctx.tools.taskset, cpu: ctx.proxyCpu, autoscalerUrl: ctx.stats.url, label: 'backpressure', env });
    await activator.api.putRevision(NAMESPACE, REVISION, { containerConcurrency: opts.containerConcurrency, timeoutSeconds: opts.timeoutSeconds });
    await activator.api.putEndpoints(NAMESPACE, REVISION, { ready: [`127.0.0.1:${qp.port}`], notReady: [] });
    await sleep(1000); // the activator probes the pod and settles
    result.baselineRssKiB = activator.rssKiB();
    ctx.log(`backpressure: ${opts.rate} req/s for ${opts.durationS} s, cc=${opts.containerConcurrency}, app ${opts.appDelayMs / 1000} s per request, baseline RSS ${(result.baselineRssKiB / 1024).toFixed(1)} MiB`);

    driver = new OpenLoopDriver(activator.httpPort, revisionHeaders(REVISION), opts.rate);
    const began = performance.now();
    driver.start();
    let maxRss = result.baselineRssKiB;
    let maxWaiting = 0;
    for (let second = 1; second <= opts.durationS; second++) {
      await sleep(Math.max(0, began + second * 1000 - performance.now()));
      const sample = {
        atS: second,
        sent: driver.counts.sent,
        answered: driver.answered,
        waiting: driver.waiting,
        shed: driver.counts.statuses.get(503) ?? 0,
        rssKiB: activator.rssKiB(),
      };
      result.samples.push(sample);
      maxRss = Math.max(maxRss, sample.rssKiB);
      maxWaiting = Math.max(maxWaiting, sample.waiting);
      if (activator.child.exitStatus !== undefined) {
        result.crashed = `activator exited with ${activator.child.exitStatus} after ${second} s\n${logTail(activator.child)}`;
        break;
      }
      if (second % 10 === 0 || second === opts.durationS) {
        const c = driver.counts;
        ctx.log(
          `backpressure ${second} s: sent ${c.sent}, waiting ${sample.waiting}, 200: ${c.statuses.get(200) ?? 0}, ` +
            `503: ${c.statuses.get(503) ?? 0} (${c.retryAfter503} with Retry-After), 504: ${c.statuses.get(504) ?? 0}, ` +
            `errors ${c.errors}, RSS ${(sample.rssKiB / 1024).toFixed(1)} MiB`,
        );
      }
    }
    driver.stopSending();
    result.maxRssKiB = maxRss;
    result.maxWaiting = maxWaiting;
    result.waitingAtEnd = driver.waiting;
    driver.abortWaiting();
    result.counts = driver.counts;
    if (result.crashed === undefined) {
      await sleep(2000); // the activator sees the aborts and frees their slots
      if (activator.child.exitStatus !== undefined) result.crashed = `activator exited with ${activator.child.exitStatus} after the run\n${logTail(activator.child)}`;
      else {
        result.rssAfterAbortKiB = activator.rssKiB();
        result.peakRssKiB = memory([activator.child.pid]).hwmKiB;
        const metrics = await getText(activator.metricsPort, '/metrics');
        result.queueDepthAfterAbort = metricValue(metrics, 'sluice_activator_queue_depth', REVISION);
        result.shedByReason = {};
        for (const m of metrics.matchAll(/^sluice_activator_requests_shed_total\{([^}]*)\} (\S+)$/gm)) {
          if (!m[1]!.includes(`revision_name="${REVISION}"`)) continue;
          const reason = /reason="([^"]*)"/.exec(m[1]!)?.[1] ?? '?';
          result.shedByReason[reason] = Number(m[2]);
        }
      }
    }
  } catch (err) {
    result.failures.push((err as Error).message);
    ctx.log(`backpressure: FAILED: ${(err as Error).message}`);
    if (driver !== undefined && result.counts === undefined) {
      driver.stopSending();
      driver.abortWaiting();
    }
  } finally {
    await activator?.stop();
    await qp?.stop();
    await app?.stop();
  }
  return result;
}

/** Polls the queue-proxy's activator-probe answer until the app behind it is ready. */
async function waitForQueueProxyReady(qp: RunningTarget): Promise<void> {
  const deadline = performance.now() + 15_000;
  let last = '';
  while (performance.now() < deadline) {
    if (qp.child?.exitStatus !== undefined) throw new Error(`queue-proxy exited with ${qp.child.exitStatus}`);
    try {
      const reply = await get(qp.port, PROBE_HEADERS, 1000);
      if (reply.status === 200 && reply.body === 'queue') return;
      last = `HTTP ${reply.status} ${JSON.stringify(reply.body.slice(0, 80))}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await sleep(20);
  }
  throw new Error(`queue-proxy not ready within 15 s (last: ${last})`);
}

function getText(port: number, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false, timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve(body));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${path} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

function metricValue(text: string, name: string, revision: string): number | undefined {
  for (const m of text.matchAll(new RegExp(`^${name}\\{([^}]*)\\} (\\S+)$`, 'gm'))) {
    if (m[1]!.includes(`revision_name="${revision}"`)) return Number(m[2]);
  }
  return undefined;
}
