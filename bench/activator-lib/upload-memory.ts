// Part 5, waiting uploads: what requests with bodies cost the activator while they wait for a
// revision with no pods, and whether the default queue limits keep the process under Knative's
// 600 Mi activator limit in the worst case they admit.
//  A. Two cold revisions, 1,100 waiting 1 MiB uploads each (every upload a connection of its
//     own). Peak and settled RSS, RSS per waiting upload, how the excess was shed (a complete
//     503 with Retry-After, or a connection broken without an answer), then every client
//     resets its connection: how long until the activator has released them all (they are not
//     read: it learns it from the kernel's connection table) and reports concurrency 0. (A
//     client that closes with a FIN after sending its whole body cannot be noticed early: the
//     FIN waits behind the body, see packages/activator/src/handler/waiting-uploads.ts.)
//  B. The defaults' worst case, over two cold revisions: first uploads the byte budget admits
//     (RSS per waiting upload without shedding), then more, up to 2,048 (the rest is shed),
//     then 14,000 waiting GETs (RSS per waiting GET). Peak RSS, and projected to 20,000 waiting.
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { logTail, sleep } from '../lib/children.ts';
import { memory } from '../lib/proc.ts';
import type { BenchContext } from './context.ts';
import { HeldClients, type HeldCounts } from './held-clients.ts';
import { NAMESPACE, revisionHeaders, startActivator, type ActivatorProcess } from './processes.ts';

export interface PhaseFigures {
  /** Requests sent in the phase. */
  sent: number;
  /** Waiting in the activator once settled (its queue-depth gauges). */
  admitted: number;
  counts: HeldCounts;
  /** RSS before the phase, once settled after it, and VmHWM then. */
  rssBeforeKiB: number;
  rssSettledKiB: number;
  hwmKiB: number;
  settleMs: number;
  /** Bytes the activator read (read(2) and recv, /proc/<pid>/io rchar) during the phase. */
  readBytes: number;
}

export interface UploadMemoryResult {
  uploadBytes: number;
  /** A: two cold revisions with waiting uploads. */
  cold?: PhaseFigures & {
    /** After every client aborted: until the queues were empty, and until the autoscaler got 0 for both revisions. */
    releasedMs?: number;
    reportedZeroMs?: number;
    /** Rows in the activator's connection tables, and its last scan of them (ms), when the clients reset. */
    tableRows?: number;
    scanMs?: number;
    rssAfterAbortKiB?: number;
  };
  /** B: the worst case of the defaults: uploads that fit, more (shed), then GETs. */
  fittingUploads?: PhaseFigures;
  worstUploads?: PhaseFigures;
  worstGets?: PhaseFigures;
  crashed?: string;
  failures: string[];
}

export interface UploadMemoryOptions {
  uploadsPerRevision: number;
  /** B: uploads sent while the byte budget still admits all (default limits: 384). */
  fittingUploads: number;
  worstUploads: number;
  worstGets: number;
}

const REVISIONS = ['upload-a-00001', 'upload-b-00001'];
const MiB = 1024 * 1024;

export async function runUploadMemory(ctx: BenchContext, opts: UploadMemoryOptions): Promise<UploadMemoryResult> {
  const body = Buffer.alloc(MiB, 0x61);
  const result: UploadMemoryResult = { uploadBytes: body.length, failures: [] };
  let activator: ActivatorProcess | undefined;
  const clients: HeldClients[] = [];
  try {
    // A. Two cold revisions, uploads only.
    activator = await coldActivator(ctx, 'uploads');
    const uploads = new HeldClients(activator.httpPort);
    clients.push(uploads);
    ctx.log(`uploads A: ${opts.uploadsPerRevision} waiting 1 MiB uploads into each of ${REVISIONS.length} cold revisions`);
    const a = await phase(ctx, activator, uploads, opts.uploadsPerRevision * REVISIONS.length, 'POST', body, 0);
    result.cold = a;
    ctx.log(`uploads A: ${describe(a)}`);
    const zeroAt = new Map<string, number>();
    ctx.stats.onStat = (_ns, name, stat, at) => {
      if (REVISIONS.includes(name) && stat.averageConcurrentRequests === 0 && !zeroAt.has(name)) zeroAt.set(name, at);
    };
    result.cold.tableRows = tableRows(activator.child.pid);
    result.cold.scanMs = 1000 * metricSum(await getText(activator.metricsPort, '/metrics'), 'sluice_activator_connection_scan_seconds');
    const abortedAt = performance.now();
    uploads.abortAll(true);
    const released = await until(async () => (await queueDepth(activator!)) === 0, 20_000);
    if (released) result.cold.releasedMs = performance.now() - abortedAt;
    const zero = await until(async () => zeroAt.size === REVISIONS.length, 10_000);
    if (zero) result.cold.reportedZeroMs = Math.max(...zeroAt.values()) - abortedAt;
    ctx.stats.onStat = undefined;
    result.cold.rssAfterAbortKiB = activator.rssKiB();
    ctx.log(`uploads A: clients reset; queues empty after ${fmt(result.cold.releasedMs)}, concurrency 0 reported after ${fmt(result.cold.reportedZeroMs)}`);
    crashed(activator, result);
    await activator.stop();

    // B. The defaults' worst case: uploads up to the byte budget, then GETs.
    activator = await coldActivator(ctx, 'worst-case');
    const fitting = new HeldClients(activator.httpPort);
    const worstUploads = new HeldClients(activator.httpPort);
    const worstGets = new HeldClients(activator.httpPort);
    clients.push(fitting, worstUploads, worstGets);
    ctx.log(`uploads B: ${opts.fittingUploads} + ${opts.worstUploads - opts.fittingUploads} waiting 1 MiB uploads, then ${opts.worstGets} waiting GETs`);
    result.fittingUploads = await phase(ctx, activator, fitting, opts.fittingUploads, 'POST', body, 0);
    ctx.log(`uploads B, uploads within the budget: ${describe(result.fittingUploads)}`);
    result.worstUploads = await phase(ctx, activator, worstUploads, opts.worstUploads - opts.fittingUploads, 'POST', body, result.fittingUploads.admitted);
    ctx.log(`uploads B, more uploads: ${describe(result.worstUploads)}`);
    const uploadsWaiting = result.fittingUploads.admitted + result.worstUploads.admitted;
    result.worstGets = await phase(ctx, activator, worstGets, opts.worstGets, 'GET', null, uploadsWaiting);
    ctx.log(`uploads B, GETs: ${describe(result.worstGets)}`);
    crashed(activator, result);
  } catch (err) {
    result.failures.push((err as Error).message);
    ctx.log(`uploads: FAILED: ${(err as Error).message}`);
  } finally {
    for (const c of clients) c.abortAll();
    await activator?.stop();
  }
  return result;
}

async function coldActivator(ctx: BenchContext, label: string): Promise<ActivatorProcess> {
  const activator = await startActivator({ ...ctx, taskset: ctx.tools.taskset, cpu: ctx.proxyCpu, autoscalerUrl: ctx.stats.url, label });
  for (const name of REVISIONS) await activator.api.putRevision(NAMESPACE, name, { containerConcurrency: 1, timeoutSeconds: 600 });
  await sleep(1000); // start-up garbage settles
  return activator;
}

/**
 * Sends `n` requests spread over the revisions on fresh clients, then waits until every one
 * waits or was answered. `waitingBefore`: requests already waiting from earlier phases.
 */
async function phase(ctx: BenchContext, activator: ActivatorProcess, clients: HeldClients, n: number, method: string, body: Buffer | null, waitingBefore: number): Promise<PhaseFigures> {
  const rssBeforeKiB = activator.rssKiB();
  const readBefore = readChars(activator.child.pid);
  const began = performance.now();
  for (let i = 0; i < n; i++) {
    clients.open(revisionHeaders(REVISIONS[i % REVISIONS.length]!), method, body);
    if (i % 50 === 49) await sleep(10); // paced, so the listen backlog never overflows
  }
  let admitted: number;
  let stableSince = performance.now();
  let last = -1;
  for (;;) {
    await sleep(250);
    if (activator.child.exitStatus !== undefined) throw new Error(`activator exited with ${activator.child.exitStatus}\n${logTail(activator.child)}`);
    admitted = (await queueDepth(activator)) - waitingBefore;
    const answered = clients.answered + clients.counts.brokenWithoutResponse;
    const total = admitted + answered;
    if (total !== last) {
      last = total;
      stableSince = performance.now();
    }
    if (total >= n && performance.now() - stableSince > 1000) break;
    if (performance.now() - began > 120_000) throw new Error(`not settled after 120 s: ${admitted} waiting, ${answered} answered of ${n}`);
  }
  const settleMs = performance.now() - began;
  await sleep(1000);
  const m = memory([activator.child.pid]);
  ctx.log(`  settled in ${(settleMs / 1000).toFixed(1)} s`);
  return { sent: n, admitted, counts: clients.counts, rssBeforeKiB, rssSettledKiB: m.rssKiB, hwmKiB: m.hwmKiB, settleMs, readBytes: readChars(activator.child.pid) - readBefore };
}

/** Bytes a process has read through read-like system calls (sockets included). */
function readChars(pid: number): number {
  return Number(/^rchar: (\d+)$/m.exec(readFileSync(`/proc/${pid}/io`, 'utf8'))?.[1] ?? 0);
}

function describe(p: PhaseFigures): string {
  const c = p.counts;
  return `${p.admitted} waiting, ${(p.readBytes / 1048576).toFixed(1)} MiB read, 503: ${c.statuses.get(503) ?? 0} (${c.retryAfter503} with Retry-After), broken without a response: ${c.brokenWithoutResponse}` +
    `${c.firstError === undefined ? '' : ` (first: ${c.firstError})`}; RSS ${(p.rssBeforeKiB / 1024).toFixed(1)} → ${(p.rssSettledKiB / 1024).toFixed(1)} MiB, peak ${(p.hwmKiB / 1024).toFixed(1)} MiB`;
}

function crashed(activator: ActivatorProcess, result: UploadMemoryResult): void {
  if (activator.child.exitStatus !== undefined) result.crashed ??= `activator exited with ${activator.child.exitStatus}\n${logTail(activator.child)}`;
}

const fmt = (ms: number | undefined): string => (ms === undefined ? 'never' : `${ms.toFixed(0)} ms`);

async function until(cond: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (await cond()) return true;
    await sleep(50);
  }
  return false;
}

/** Requests waiting in the activator, all revisions (sluice_activator_queue_depth). */
async function queueDepth(activator: ActivatorProcess): Promise<number> {
  return metricSum(await getText(activator.metricsPort, '/metrics'), 'sluice_activator_queue_depth');
}

/** The sum of every sample of `name` in a Prometheus text. */
function metricSum(text: string, name: string): number {
  let n = 0;
  for (const m of text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'gm'))) n += Number(m[1]);
  return n;
}

/** Rows of the kernel connection tables the activator scans (its network namespace). */
function tableRows(pid: number): number {
  let rows = 0;
  for (const family of ['tcp', 'tcp6']) {
    try {
      rows += readFileSync(`/proc/${pid}/net/${family}`, 'latin1').split('\n').length - 2;
    } catch {
      // no such table
    }
  }
  return rows;
}

function getText(port: number, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false, timeout: 10_000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve(text));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${path} timed out`)));
    req.on('error', reject);
    req.end();
  });
}
