// Part 3, scale from zero: the revision has no endpoints; a request plus a burst of more
// concurrent ones go to the activator; the driver plays autoscaler and kubelet: on the
// activator's poke for the revision it spawns the app and a queue-proxy and PUTs the pod as a
// not-ready endpoint (a pod has its IP once scheduled, before its containers listen), then
// times the app's port (polled every 1 ms) against the first response. Between runs the pod
// is torn down and the driver waits until the activator has forgotten the revision (no stat
// for it for over a reporting period), so every run pokes again.
import { request } from 'node:http';
import { logTail, sleep } from '../lib/children.ts';
import type { RunningTarget } from '../lib/launch.ts';
import { freePort } from '../lib/net.ts';
import { BACKEND_BODY } from '../lib/nginx-config.ts';
import { launchContext, type BenchContext } from './context.ts';
import { waitForPort } from './port-wait.ts';
import { NAMESPACE, revisionHeaders, spawnApp, spawnQueueProxy, startActivator, type ActivatorProcess, type AppProcess } from './processes.ts';

export interface ColdRun {
  /** Request sent -> the poke reached the autoscaler (driver), ms. */
  pokeMs: number;
  /** Poke -> app spawned (the driver's own reaction), ms. */
  spawnDelayMs: number;
  /** App spawn -> its port accepts connections, ms. */
  appListenMs: number;
  /** Queue-proxy spawn -> its port accepts connections, ms. */
  qpListenMs: number;
  /** First request sent -> its 200 read, ms. */
  firstResponseMs: number;
  /** Later of (app, queue-proxy) accepting -> first response, ms: the activator's reaction once the pod can answer. */
  afterPodUpMs: number;
  /** Slowest of all the run's requests, ms. */
  slowestMs: number;
  requests: number;
  ok: number;
  /** Anything but 200 with the app's body, for the log. */
  problems: string[];
}

export interface ColdResult {
  runs: ColdRun[];
  burst: number;
  probeFrequency: string | undefined;
  failures: string[];
}

export interface ColdOptions {
  starts: number;
  /** Concurrent requests sent right after the first one. */
  burst: number;
  /** The activator's PROBE_FREQUENCY (a Go duration, e.g. "25ms"); its default (200ms) if undefined. */
  probeFrequency: string | undefined;
}

const REVISION = 'cold-00001';
/** A reporting period (1 s) plus margin without a stat: the activator dropped the revision. */
const FORGOTTEN_AFTER_MS = 1200;
const MIN_GAP_MS = 1500;

interface Reply {
  status: number;
  body: string;
  ms: number;
}

function timedGet(port: number, headers: Record<string, string>, timeoutMs: number): Promise<Reply> {
  const sent = performance.now();
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: '/', headers, agent: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, ms: performance.now() - sent }));
      res.on('error', (err) => resolve({ status: 0, body: err.message, ms: performance.now() - sent }));
    });
    req.on('timeout', () => req.destroy(new Error(`no response within ${timeoutMs} ms`)));
    req.on('error', (err) => resolve({ status: 0, body: err.message, ms: performance.now() - sent }));
    req.end();
  });
}

export async function runColdStarts(ctx: BenchContext, opts: ColdOptions): Promise<ColdResult> {
  const result: ColdResult = { runs: [], burst: opts.burst, probeFrequency: opts.probeFrequency, failures: [] };
  let lastStatAt = 0;
  let onPoke: ((at: number) => void) | undefined;
  ctx.stats.onStat = (namespace, name, stat, at) => {
    if (namespace !== NAMESPACE || name !== REVISION) return;
    lastStatAt = at;
    if (onPoke !== undefined && (stat.averageConcurrentRequests > 0 || stat.requestCount > 0)) {
      const fire = onPoke;
      onPoke = undefined;
      fire(at);
    }
  };
  let activator: ActivatorProcess | undefined;
  try {
    const env: Record<string, string> = opts.probeFrequency === undefined ? {} : { PROBE_FREQUENCY: opts.probeFrequency };
    activator = await startActivator({ ...ctx, taskset: ctx.tools.taskset, cpu: ctx.proxyCpu, autoscalerUrl: ctx.stats.url, label: 'cold', env });
    await activator.api.putRevision(NAMESPACE, REVISION, { containerConcurrency: 0, timeoutSeconds: 300 });
    await activator.api.putEndpoints(NAMESPACE, REVISION, { ready: [], notReady: [] });
    let lastDone = 0;
    for (let i = 1; i <= opts.starts; i++) {
      // Every run must start from "revision unknown to the reporter", or no poke is sent.
      const deadline = performance.now() + 10_000;
      while (performance.now() - lastStatAt < FORGOTTEN_AFTER_MS || performance.now() - lastDone < MIN_GAP_MS) {
        if (performance.now() > deadline) throw new Error('the activator kept reporting the revision for 10 s after the run');
        await sleep(50);
      }
      const run = await coldStart(ctx, activator, opts, i, (fire) => (onPoke = fire));
      onPoke = undefined;
      lastDone = performance.now();
      result.runs.push(run);
      ctx.log(
        `cold start ${i}/${opts.starts}: poke ${run.pokeMs.toFixed(1)} ms, app listening after ${run.appListenMs.toFixed(1)} ms, ` +
          `queue-proxy after ${run.qpListenMs.toFixed(1)} ms, first response ${run.firstResponseMs.toFixed(1)} ms ` +
          `(share ${(run.firstResponseMs - run.appListenMs).toFixed(1)} ms), ${run.ok}/${run.requests} ok` +
          (run.problems.length > 0 ? `; ${run.problems.slice(0, 3).join('; ')}` : ''),
      );
      if (activator.child.exitStatus !== undefined) throw new Error(`activator exited with ${activator.child.exitStatus}\n${logTail(activator.child)}`);
    }
  } catch (err) {
    result.failures.push((err as Error).message);
    ctx.log(`cold start: FAILED: ${(err as Error).message}`);
  } finally {
    ctx.stats.onStat = undefined;
    await activator?.stop();
  }
  return result;
}

async function coldStart(
  ctx: BenchContext,
  activator: ActivatorProcess,
  opts: ColdOptions,
  index: number,
  armPoke: (fire: (at: number) => void) => void,
): Promise<ColdRun> {
  const appPort = await freePort();
  // Filled in by the "kubelet" below; read by the teardown whatever happened.
  const spawned: { app?: AppProcess; qp?: RunningTarget } = {};
  let pokeAt = 0;
  let noPoke: NodeJS.Timeout | undefined;
  // The "kubelet": runs inside the stat callback, so the spawn follows the poke at once.
  const pod = new Promise<{ app: AppProcess; qp: RunningTarget; appUp: number; qpUp: number }>((resolve, reject) => {
    noPoke = setTimeout(() => reject(new Error('no poke from the activator within 30 s')), 30_000);
    armPoke((at) => {
      clearTimeout(noPoke);
      pokeAt = at;
      (async () => {
        const app = await spawnApp({ ...ctx, taskset: ctx.tools.taskset, cpu: ctx.loadCpu, delayMs: 0, label: `cold-${index}`, port: appPort });
        spawned.app = app;
        const qp = await spawnQueueProxy(launchContext(ctx, ctx.loadCpu, appPort), appPort, REVISION, 0);
        spawned.qp = qp;
        const appUp = waitForPort(appPort, 15_000, () => (app.child.exitStatus === undefined ? undefined : `app exited with ${app.child.exitStatus}`));
        const qpUp = waitForPort(qp.port, 15_000, () => (qp.child!.exitStatus === undefined ? undefined : `queue-proxy exited with ${qp.child!.exitStatus}`));
        await activator.api.putEndpoints(NAMESPACE, REVISION, { ready: [], notReady: [`127.0.0.1:${qp.port}`] });
        resolve({ app, qp, appUp: await appUp, qpUp: await qpUp });
      })().catch(reject);
    });
  });
  try {
    const headers = revisionHeaders(REVISION);
    const sentAt = performance.now();
    const first = timedGet(activator.httpPort, headers, 30_000);
    const burst: Promise<Reply>[] = [];
    for (let i = 0; i < opts.burst; i++) burst.push(timedGet(activator.httpPort, headers, 30_000));
    const [up, firstReply, burstReplies] = await Promise.all([pod, first, Promise.all(burst)]);
    const firstAt = sentAt + firstReply.ms;
    const replies = [firstReply, ...burstReplies];
    const problems = replies
      .filter((r) => r.status !== 200 || r.body !== BACKEND_BODY)
      .map((r) => `HTTP ${r.status} ${JSON.stringify(r.body.slice(0, 80))}`);
    return {
      pokeMs: pokeAt - sentAt,
      spawnDelayMs: up.app.spawnedAt - pokeAt,
      appListenMs: up.appUp - up.app.spawnedAt,
      qpListenMs: up.qpUp - up.qp.spawnedAt,
      firstResponseMs: firstReply.ms,
      afterPodUpMs: firstAt - Math.max(up.appUp, up.qpUp),
      slowestMs: Math.max(...replies.map((r) => r.ms)),
      requests: replies.length,
      ok: replies.length - problems.length,
      problems,
    };
  } finally {
    // The pod goes away: endpoints first (as the endpoints controller would), then the processes.
    clearTimeout(noPoke);
    await activator.api.putEndpoints(NAMESPACE, REVISION, { ready: [], notReady: [] });
    await spawned.qp?.stop();
    await spawned.app?.stop();
  }
}
