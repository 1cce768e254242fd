// The activator bench's markdown report: one section per part and the issue's targets.
import { table } from '../lib/markdown.ts';
import { NOISY } from '../lib/quiet.ts';
import type { SystemInfo } from '../lib/system-info.ts';
import type { BackpressureResult, Sample } from './backpressure.ts';
import type { ColdResult, ColdRun } from './cold-start.ts';
import type { RateResult, RateRow, RateTool } from './fixed-rate.ts';
import { percentile } from './percentile.ts';
import type { RoutingResult } from './routing.ts';
import { routingSection } from './routing-report.ts';
import { SETTLE_MS, type StartupResult, type StartupRow } from './startup.ts';
import type { PhaseFigures, UploadMemoryResult } from './upload-memory.ts';
import type { WarmPoint, WarmResult } from './warm-path.ts';

/** The issue's targets for the activator. */
export const TARGETS = {
  /** Start-up: exec → first 200 to the kubelet probe, Kubernetes source (median). */
  startupMs: 600,
  /** Idle RSS with the Kubernetes source (median). */
  idleRssMiB: 90,
  /** Activator CPU per request ≤ the queue-proxy's × this, at the same C. */
  cpuVsQueueProxy: 1.3,
  /** Fixed-rate p95 through the activator ≤ direct p95 + this (Knative's SLO allows 10 ms). */
  p95OverDirectMs: 2,
  knativeSloMs: 10,
  /** Cold start: first response − the app's own time to listen, p95. */
  coldShareP95Ms: 50,
  /** packages/activator/src/net/revision-queue.ts: ~370 MiB with the default limits. */
  rssCeilingMiB: 370,
  /** SLUICE_MAX_QUEUED default (activator-wide), for the projection. */
  defaultMaxQueuedTotal: 20_000,
  defaultMaxQueuedPerRevision: 10_000,
  /** Waiting uploads, two cold revisions: peak RSS (Knative: 241 MiB). */
  coldUploadsPeakMiB: 300,
  /** Knative's activator Deployment memory limit: the defaults' worst case must stay under it. */
  deployedLimitMiB: 600,
} as const;

export interface ReportInput {
  info: SystemInfo;
  heyVersion: string;
  proxyCpu: number;
  loadCpu: number;
  backgroundLoad: number;
  quick: boolean;
  durationS: number;
  warmupS: number;
  rate?: { workers: number; perWorkerRate: number; durationS: number; appDelayMs: number };
  startup?: StartupResult;
  warm?: WarmResult;
  routing?: RoutingResult;
  fixedRate?: RateResult;
  cold?: ColdResult;
  backpressure?: BackpressureResult;
  uploads?: UploadMemoryResult;
}

const DASH = '—';
const int = (n: number): string => Math.round(n).toLocaleString('en-US');
const msText = (ms: number | undefined, digits = 1): string => (ms === undefined || !Number.isFinite(ms) ? DASH : `${ms.toFixed(digits)} ms`);
const mib = (kib: number | undefined): string => (kib === undefined ? DASH : `${(kib / 1024).toFixed(1)} MiB`);
const ratio = (r: number | undefined): string => (r === undefined || !Number.isFinite(r) ? DASH : `${r.toFixed(2)}×`);
const latency = (us: number | undefined): string =>
  us === undefined ? DASH : us < 1000 ? `${us.toFixed(0)} µs` : `${(us / 1000).toFixed(2)} ms`;

function percent(share: number): string {
  const text = `${(share * 100).toFixed(0)}%`;
  return share > NOISY ? `${text} (!)` : text;
}

function verdict(ok: boolean | undefined): string {
  return ok === undefined ? 'n/a' : ok ? 'yes' : '**no**';
}

function warmPoint(warm: WarmResult, target: WarmPoint['target'], c: number): WarmPoint | undefined {
  return warm.points.find((p) => p.target === target && p.connections === c);
}

function cpuRatio(warm: WarmResult, c: number): number | undefined {
  const a = warmPoint(warm, 'activator', c)?.cpuUsPerRequest;
  const q = warmPoint(warm, 'queue-proxy', c)?.cpuUsPerRequest;
  return a === undefined || q === undefined || q === 0 ? undefined : a / q;
}

function warmSection(input: ReportInput, warm: WarmResult): string[] {
  const concurrencies = [...new Set(warm.points.map((p) => p.connections))];
  const rows: string[][] = [];
  for (const c of concurrencies) {
    for (const target of ['direct', 'queue-proxy', 'activator'] as const) {
      const p = warmPoint(warm, target, c);
      if (p === undefined) continue;
      rows.push([
        String(c),
        target === 'activator' ? 'activator → queue-proxy' : target,
        int(p.wrk.requestsPerSecond),
        latency(p.wrk.p50Us),
        latency(p.wrk.p99Us),
        p.cpuUsPerRequest === undefined ? DASH : p.cpuUsPerRequest.toFixed(1),
        target === 'activator' ? ratio(cpuRatio(warm, c)) : DASH,
        p.qpCpuUsPerRequest === undefined ? DASH : p.qpCpuUsPerRequest.toFixed(1),
        p.qpCpuUsPerRequest === undefined || p.cpuUsPerRequest === undefined ? DASH : ratio(p.cpuUsPerRequest / p.qpCpuUsPerRequest),
        int(p.wrk.errors),
        percent(p.otherLoad),
      ]);
    }
  }
  return [
    `#### 1. Warm path (GET, 13-byte response from nginx; wrk -t1, ${input.durationS} s per point after a ${input.warmupS} s warm-up)`,
    '',
    table(
      ['C', 'target', 'req/s', 'p50', 'p99', `CPU µs/req on CPU ${input.proxyCpu}`, 'activator ÷ queue-proxy row', `queue-proxy behind it, µs/req (CPU ${input.loadCpu})`, 'activator ÷ queue-proxy behind it', 'errors', 'other load'],
      rows,
      ['right', 'left', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right'],
    ),
    '',
    `Activator RSS: ${mib(warm.activatorIdleRssKiB)} idle (after the first proxied 200), ${mib(warm.activatorPeakRssKiB)} peak (VmHWM after all points). ` +
      `The "CPU µs/req on CPU ${input.proxyCpu}" column is the queue-proxy's in the queue-proxy rows and the activator's in the activator rows. ` +
      `Behind the activator the queue-proxy shares CPU ${input.loadCpu} with wrk and nginx, which caps that path's throughput; the activator's CPU per request is still read from a CPU it has to itself. ` +
      `A proxy's CPU per request falls as its request rate rises (more work per wake-up), so next to the ratio with the queue-proxy row (the issue's target; the queue-proxy ran at a higher rate) ` +
      `the last ratio compares the activator with the queue-proxy behind it, which served the same requests at the same rate.`,
  ];
}

function p95OverDirect(rate: RateResult, tool: RateTool, target: RateRow['target']): number | undefined {
  const direct = rate.rows.find((r) => r.target === 'direct' && r.tool === tool);
  const row = rate.rows.find((r) => r.target === target && r.tool === tool);
  if (direct === undefined || row === undefined) return undefined;
  return (row.result.percentilesUs[95]! - direct.result.percentilesUs[95]!) / 1000;
}

const TOOL_NAME: Record<RateTool, string> = { hey: 'hey', paced: 'evenly paced' };

function rateSection(input: ReportInput, rate: RateResult): string[] {
  const rows = rate.rows.map((r) => {
    const p = r.result.percentilesUs;
    const non200 = Object.entries(r.result.statuses).filter(([s]) => s !== '200').reduce((n, [, v]) => n + v, 0);
    const over = r.target === 'direct' ? undefined : p95OverDirect(rate, r.tool, r.target);
    return [
      TOOL_NAME[r.tool],
      r.target === 'activator' ? 'activator → queue-proxy' : r.target,
      r.result.requestsPerSecond.toFixed(0),
      latency(p[50]),
      latency(p[95]),
      latency(p[99]),
      over === undefined ? DASH : `${over >= 0 ? '+' : ''}${over.toFixed(1)} ms`,
      int(non200),
      int(r.result.errors),
      percent(r.otherLoad),
    ];
  });
  const s = input.rate!;
  const total = s.workers * s.perWorkerRate;
  return [
    `#### 2. Latency at a fixed rate (${int(total)} req/s for ${s.durationS} s; the app answers after ${s.appDelayMs} ms)`,
    '',
    table(
      ['load', 'target', 'req/s', 'p50', 'p95', 'p99', 'p95 − direct', 'non-200', 'errors', 'other load'],
      rows,
      ['left', 'left', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right'],
    ),
    '',
    `Load: \`hey -z ${s.durationS}s -c ${s.workers} -q ${s.perWorkerRate} -cpus 1\` (the issue's method; -q is per worker and hey starts every worker's ticker at once, ` +
      `so the ${s.workers} workers send together every ${(1000 / s.perWorkerRate).toFixed(0)} ms: bursts of ${s.workers} requests that each hop works through one by one; latencies to 0.1 ms), ` +
      `then the bench's evenly paced client (one request every ${(1000 / total).toFixed(1)} ms on up to ${s.workers} keep-alive connections, latency from the scheduled instant). ` +
      `The app is a Node http server on CPU ${input.loadCpu} (setTimeout ${s.appDelayMs} ms per request); both load generators run there too, as does the queue-proxy behind the activator.`,
  ];
}

function coldRow(name: string, runs: readonly ColdRun[], pick: (r: ColdRun) => number): string[] {
  const values = runs.map(pick);
  return [name, msText(percentile(values, 50)), msText(percentile(values, 95)), msText(Math.max(...values))];
}

export function coldShare(r: ColdRun): number {
  return r.firstResponseMs - r.appListenMs;
}

function coldSection(input: ReportInput, cold: ColdResult): string[] {
  const runs = cold.runs;
  const requests = runs.reduce((n, r) => n + r.requests, 0);
  const ok = runs.reduce((n, r) => n + r.ok, 0);
  return [
    `#### 3. Scale from zero (${runs.length} cold starts; each sends 1 request and ${cold.burst} more at once` +
      `${cold.probeFrequency === undefined ? '' : `; activator PROBE_FREQUENCY=${cold.probeFrequency}`})`,
    '',
    table(
      ['measure', 'p50', 'p95', 'max'],
      [
        coldRow('request sent → poke at the autoscaler', runs, (r) => r.pokeMs),
        coldRow('app: spawn → port accepting', runs, (r) => r.appListenMs),
        coldRow('queue-proxy: spawn → port accepting', runs, (r) => r.qpListenMs),
        coldRow('first response (request sent → 200)', runs, (r) => r.firstResponseMs),
        coldRow('**activator share**: first response − app listen', runs, coldShare),
        coldRow('later of app/queue-proxy accepting → first response', runs, (r) => r.afterPodUpMs),
        coldRow(`slowest of the ${cold.burst + 1} requests`, runs, (r) => r.slowestMs),
      ],
      ['left', 'right', 'right', 'right'],
    ),
    '',
    `Requests answered 200 with the app's body: ${int(ok)} of ${int(requests)}${ok === requests ? ' (none lost)' : ' (**some lost**)'}. ` +
      `The driver plays autoscaler and kubelet: on the activator's poke it spawns the app (a Node http server) and a queue-proxy on CPU ${input.loadCpu} ` +
      `and at once PUTs the pod as a not-ready endpoint (a pod has its IP before its containers listen); the activator probes it (every ${cold.probeFrequency ?? '200 ms, Knative\'s probe period'}) ` +
      `and the queue-proxy holds the probe until the app accepts connections. The activator share therefore includes the poke, the spawn, ` +
      `the queue-proxy's start-up where it is slower than the app's, the wait for the next probe round and the proxying; ` +
      `the "later of … → first response" row leaves out both start-ups.`,
  ];
}

function backpressureSection(bp: BackpressureResult): string[] {
  const out: string[] = [];
  const queueLimit = bp.maxQueuedPerRevision === undefined
    ? `the activator's default limits (${int(TARGETS.defaultMaxQueuedPerRevision)} waiting per revision, ${int(TARGETS.defaultMaxQueuedTotal)} in all, 32 MiB / 48 MiB charged to waiting uploads)`
    : `SLUICE_MAX_QUEUED_PER_REVISION=${bp.maxQueuedPerRevision} (other limits at their defaults)`;
  out.push(
    `#### 4. Backpressure (${bp.rate} req/s for ${bp.durationS} s into one pod with containerConcurrency ${bp.containerConcurrency}; each request takes ${bp.appDelayMs / 1000} s; revision timeoutSeconds ${bp.timeoutSeconds})`,
    '',
    `Queue limits: ${queueLimit}. Load: an open-loop Node driver on the load CPU, one new connection per request (keep-alive off), sending on an absolute schedule whatever is still waiting` +
      (bp.counts === undefined ? '.' : ` (largest send lag ${bp.counts.maxSendLagMs.toFixed(0)} ms).`) +
      ' When the load stops, the requests still waiting are aborted by the driver.',
    '',
  );
  const c = bp.counts;
  if (c !== undefined) {
    const status = (s: number): number => c.statuses.get(s) ?? 0;
    const others = [...c.statuses].filter(([s]) => s !== 200 && s !== 503 && s !== 504).map(([s, n]) => `${s}: ${n}`);
    const shed = bp.shedByReason === undefined ? '' : ` (activator: ${Object.entries(bp.shedByReason).map(([k, v]) => `${k} ${int(v)}`).join(', ') || 'none'})`;
    const range = c.retryAfterMin === c.retryAfterMax ? `${c.retryAfterMin}` : `${c.retryAfterMin}–${c.retryAfterMax}`;
    const retry = c.retryAfter503 > 0 ? ` (Retry-After: ${range} s)` : '';
    out.push(
      table(
        ['outcome', 'requests'],
        [
          ['sent', int(c.sent)],
          ['200 (served by the pod)', int(status(200))],
          [`503 with Retry-After${retry}, answered in p50 ${msText(percentile(c.shedMs, 50))}, p99 ${msText(percentile(c.shedMs, 99))}${shed}`, int(c.retryAfter503)],
          ['503 without Retry-After', int(status(503) - c.retryAfter503)],
          ['504 (revision timeout)', int(status(504))],
          ['other statuses', others.length === 0 ? '0' : others.join(', ')],
          [`connection errors${c.firstError === undefined ? '' : ` (first: ${c.firstError})`}`, int(c.errors)],
          ['still waiting when the load stopped (aborted)', int(bp.waitingAtEnd ?? 0)],
        ],
        ['left', 'right'],
      ),
      '',
    );
  }
  const perRequestKiB = perWaitingKiB(bp);
  const projected = perRequestKiB === undefined || bp.baselineRssKiB === undefined ? undefined : bp.baselineRssKiB + perRequestKiB * TARGETS.defaultMaxQueuedTotal;
  out.push(
    table(
      ['activator memory', 'value'],
      [
        ['RSS before the load', mib(bp.baselineRssKiB)],
        ['largest RSS sampled under load (every second)', mib(bp.maxRssKiB)],
        ['peak RSS over the whole run, aborts included (VmHWM)', mib(bp.peakRssKiB)],
        ['most requests waiting at once (sent − answered)', bp.maxWaiting === undefined ? DASH : int(bp.maxWaiting)],
        ['RSS growth per waiting request, while the queue filled', perRequestKiB === undefined ? DASH : `${perRequestKiB.toFixed(1)} KiB (${(perRequestKiB / 1024).toFixed(4)} MiB)`],
        [`projected RSS at ${int(TARGETS.defaultMaxQueuedTotal)} waiting (the activator-wide default limit, bodiless)`, mib(projected)],
        ['documented ceiling (revision-queue.ts, default limits)', `${TARGETS.rssCeilingMiB} MiB`],
        ['RSS 2 s after the waiting requests were aborted', mib(bp.rssAfterAbortKiB)],
        ['queue depth after the aborts (activator /metrics)', bp.queueDepthAfterAbort === undefined ? DASH : int(bp.queueDepthAfterAbort)],
        ['activator crashed', bp.crashed === undefined ? 'no' : `**yes**: ${bp.crashed.split('\n')[0]}`],
      ],
      ['left', 'right'],
    ),
  );
  if (bp.samples.length > 0) {
    const step = Math.max(5, Math.round(bp.durationS / 12 / 5) * 5);
    const rows = bp.samples
      .filter((s) => s.atS % step === 0 || s === bp.samples[bp.samples.length - 1])
      .map((s) => [`${s.atS} s`, int(s.sent), int(s.answered - s.shed), int(s.shed), int(s.waiting), mib(s.rssKiB)]);
    out.push('', table(['time', 'sent', 'answered (not 503)', '503', 'waiting', 'activator RSS'], rows, ['right', 'right', 'right', 'right', 'right', 'right']));
  }
  return out;
}

/**
 * RSS growth per waiting request while the queue filled: (RSS at the fullest sample before
 * the first 503 − RSS before the load) / requests waiting then. Later samples mix in the
 * garbage of the shed requests' connections.
 */
function perWaitingKiB(bp: BackpressureResult): number | undefined {
  let fullest: Sample | undefined;
  for (const s of bp.samples) if (s.shed === 0 && (fullest === undefined || s.waiting > fullest.waiting)) fullest = s;
  if (fullest === undefined || bp.baselineRssKiB === undefined || fullest.waiting < 100) return undefined;
  return (fullest.rssKiB - bp.baselineRssKiB) / fullest.waiting;
}

function phaseRow(label: string, p: PhaseFigures | undefined): string[] {
  if (p === undefined) return [label, DASH, DASH, DASH, DASH, DASH, DASH];
  const c = p.counts;
  const perKiB = p.admitted > 0 ? `${((p.rssSettledKiB - p.rssBeforeKiB) / p.admitted).toFixed(1)} KiB` : DASH;
  return [label, int(p.sent), int(p.admitted), `${int(c.retryAfter503)} of ${int(c.statuses.get(503) ?? 0)}`, int(c.brokenWithoutResponse), `${mib(p.rssBeforeKiB)} → ${mib(p.rssSettledKiB)} (peak ${mib(p.hwmKiB)})`, perKiB];
}

/**
 * B's peak plus the GETs that would still fit under the activator-wide count limit, at the
 * RSS per waiting GET measured in B (the byte budget is already spent by B's uploads).
 */
function projectedWorstKiB(u: UploadMemoryResult): number | undefined {
  const gets = u.worstGets;
  if (gets === undefined || gets.admitted === 0) return undefined;
  const perGetKiB = (gets.rssSettledKiB - gets.rssBeforeKiB) / gets.admitted;
  const room = TARGETS.defaultMaxQueuedTotal - (u.fittingUploads?.admitted ?? 0) - (u.worstUploads?.admitted ?? 0) - gets.admitted;
  return gets.hwmKiB + Math.max(0, room) * perGetKiB;
}

function uploadsSection(u: UploadMemoryResult): string[] {
  const a = u.cold;
  return [
    `#### 5. Waiting uploads (${(u.uploadBytes / 1048576).toFixed(0)} MiB POSTs, one connection each, into cold revisions)`,
    '',
    'A: two cold revisions with the same number of uploads each; then every waiting client resets its connection. ' +
      'B: the worst case of the default limits: uploads the byte budget admits, more uploads (shed), then waiting GETs. ' +
      'RSS per waiting request is (settled RSS − RSS before the phase) ÷ requests admitted in it; where uploads are shed, ' +
      'it includes the garbage of their bodies, read and dropped.',
    '',
    table(
      ['phase', 'sent', 'waiting', '503 with Retry-After', 'broken without an answer', 'activator RSS', 'RSS per waiting request'],
      [
        phaseRow('A: uploads, two cold revisions', a),
        phaseRow('B: uploads within the byte budget', u.fittingUploads),
        phaseRow('B: more uploads', u.worstUploads),
        phaseRow('B: then GETs', u.worstGets),
      ],
      ['left', 'right', 'right', 'right', 'right', 'right', 'right'],
    ),
    '',
    table(
      ['after the waiting clients of A reset their connections', 'value'],
      [
        ['connection-table rows, and the last scan of them, when the clients reset', a?.tableRows === undefined ? DASH : `${int(a.tableRows)} rows, ${msText(a.scanMs, 0)}`],
        ['queues empty after', msText(a?.releasedMs, 0)],
        ['concurrency 0 reported to the autoscaler for both revisions after', msText(a?.reportedZeroMs, 0)],
        ['RSS then', mib(a?.rssAfterAbortKiB)],
        ['activator crashed', u.crashed === undefined ? 'no' : `**yes**: ${u.crashed.split('\n')[0]}`],
      ],
      ['left', 'right'],
    ),
  ];
}

function startupSection(r: StartupResult): string[] {
  const knative = r.rows.find((row) => row.name === 'knative-activator');
  const medMs = (row: StartupRow): number => percentile(row.startupsMs, 50);
  const medKiB = (row: StartupRow): number => percentile(row.idleRssKiB, 50);
  const out = [
    '#### Start-up and idle memory',
    '',
    `Each activator is started ${r.rows[0]?.startupsMs.length ?? 0} times, alternately, pinned to the activator's CPU, with the Kubernetes ` +
      'endpoint source listing and watching a stub API server (one revision, scaled to zero) and a stat server standing in for the autoscaler. ' +
      `Start-up: exec → the first 200 to a kubelet probe, polled every 2 ms. Idle RSS: VmRSS ${SETTLE_MS / 1000} s later.` +
      (r.knativeSkipped === undefined ? '' : ` Knative's activator not measured: ${r.knativeSkipped}.`),
    '',
    '| Activator | start-up, median (min–max) | idle RSS, median | ÷ Knative (start-up, RSS) |',
    '|---|---|---|---|',
  ];
  for (const row of r.rows) {
    const vs = knative === undefined || row === knative ? DASH : `${ratio(medMs(row) / medMs(knative))}, ${ratio(medKiB(row) / medKiB(knative))}`;
    const range = row.startupsMs.length === 0 ? '' : ` (${Math.min(...row.startupsMs).toFixed(0)}–${Math.max(...row.startupsMs).toFixed(0)})`;
    out.push(`| ${row.description} | ${msText(medMs(row), 0)}${range} | ${mib(medKiB(row))} | ${vs} |`);
  }
  return out;
}

function goalsSection(input: ReportInput): string[] {
  const rows: string[][] = [];
  const sluiceStart = input.startup?.rows.find((row) => row.name === 'sluice-activator');
  if (sluiceStart !== undefined && sluiceStart.startupsMs.length > 0) {
    const ms = percentile(sluiceStart.startupsMs, 50);
    const rss = percentile(sluiceStart.idleRssKiB, 50);
    rows.push(['start-up', 'exec → Ready, Kubernetes source, median', `≤ ${TARGETS.startupMs} ms`, msText(ms, 0), verdict(ms <= TARGETS.startupMs)]);
    rows.push(['start-up', 'idle RSS, Kubernetes source, median', `≤ ${TARGETS.idleRssMiB} MiB`, mib(rss), verdict(rss / 1024 <= TARGETS.idleRssMiB)]);
  }
  if (input.warm !== undefined) {
    for (const c of [...new Set(input.warm.points.map((p) => p.connections))]) {
      const r = cpuRatio(input.warm, c);
      rows.push(['warm path', `activator CPU/req ÷ queue-proxy's at C=${c}`, `≤ ${TARGETS.cpuVsQueueProxy}×`, ratio(r), verdict(r === undefined ? undefined : r <= TARGETS.cpuVsQueueProxy)]);
    }
  }
  if (input.fixedRate !== undefined) {
    for (const tool of ['hey', 'paced'] as const) {
      const over = p95OverDirect(input.fixedRate, tool, 'activator');
      if (over === undefined) continue;
      const m = `${over >= 0 ? '+' : ''}${over.toFixed(1)} ms`;
      rows.push(['fixed rate', `activator path p95 − direct p95 (${TOOL_NAME[tool]})`, `≤ +${TARGETS.p95OverDirectMs} ms`, m, verdict(over <= TARGETS.p95OverDirectMs)]);
      rows.push(['fixed rate', `… Knative's SLO (${TOOL_NAME[tool]})`, `≤ +${TARGETS.knativeSloMs} ms`, m, verdict(over <= TARGETS.knativeSloMs)]);
    }
  }
  if (input.cold !== undefined && input.cold.runs.length > 0) {
    const p95 = percentile(input.cold.runs.map(coldShare), 95);
    rows.push(['scale from zero', 'activator share (first response − app listen), p95', `≤ ${TARGETS.coldShareP95Ms} ms`, msText(p95), verdict(p95 <= TARGETS.coldShareP95Ms)]);
    const requests = input.cold.runs.reduce((n, r) => n + r.requests, 0);
    const ok = input.cold.runs.reduce((n, r) => n + r.ok, 0);
    rows.push(['scale from zero', 'requests answered 200', `${int(requests)}`, int(ok), verdict(ok === requests)]);
  }
  const bp = input.backpressure;
  if (bp?.counts !== undefined) {
    const c = bp.counts;
    const non200 = [...c.statuses].filter(([s]) => s !== 200).reduce((n, [, v]) => n + v, 0);
    const excess = non200 + c.errors;
    rows.push([
      'backpressure',
      'excess answered 503 with Retry-After',
      'all non-200',
      excess === 0 ? 'none shed (queue never full)' : `${int(c.retryAfter503)} of ${int(excess)}`,
      verdict(excess === 0 ? undefined : c.retryAfter503 === excess),
    ]);
    rows.push(['backpressure', 'activator stays up', 'no crash', bp.crashed === undefined ? 'up' : 'crashed', verdict(bp.crashed === undefined)]);
    const peakKiB = bp.peakRssKiB ?? bp.maxRssKiB;
    const peakMiB = peakKiB === undefined ? undefined : peakKiB / 1024;
    rows.push(['backpressure', 'peak RSS (VmHWM)', `≤ ${TARGETS.rssCeilingMiB} MiB`, mib(peakKiB), verdict(peakMiB === undefined ? undefined : peakMiB <= TARGETS.rssCeilingMiB)]);
  }
  const u = input.uploads;
  if (u?.cold !== undefined) {
    const peak = u.cold.hwmKiB / 1024;
    rows.push(['waiting uploads', 'two cold revisions: peak RSS (VmHWM)', `≤ ${TARGETS.coldUploadsPeakMiB} MiB`, mib(u.cold.hwmKiB), verdict(peak <= TARGETS.coldUploadsPeakMiB)]);
    const c = u.cold.counts;
    const shed = (c.statuses.get(503) ?? 0) + c.brokenWithoutResponse;
    rows.push(['waiting uploads', 'shed uploads answered 503 with Retry-After', 'all', `${int(c.retryAfter503)} of ${int(shed)}`, verdict(shed === 0 ? undefined : c.retryAfter503 === shed)]);
  }
  if (u?.worstGets !== undefined) {
    const peak = u.worstGets.hwmKiB / 1024;
    const uploadsSent = (u.fittingUploads?.sent ?? 0) + (u.worstUploads?.sent ?? 0);
    rows.push(['waiting uploads', `B: ${int(uploadsSent)} uploads + ${int(u.worstGets.sent)} GETs sent: peak RSS`, `< ${TARGETS.deployedLimitMiB} MiB`, mib(u.worstGets.hwmKiB), verdict(peak < TARGETS.deployedLimitMiB)]);
    const projected = projectedWorstKiB(u);
    if (projected !== undefined) {
      rows.push(['waiting uploads', `… projected to ${int(TARGETS.defaultMaxQueuedTotal)} waiting (more GETs)`, `< ${TARGETS.deployedLimitMiB} MiB`, mib(projected), verdict(projected / 1024 < TARGETS.deployedLimitMiB)]);
    }
  }
  if (rows.length === 0) return [];
  return ['#### Against the issue\'s targets', '', table(['part', 'goal', 'limit', 'measured', 'met'], rows, ['left', 'left', 'right', 'right', 'left'])];
}

export function renderActivatorReport(input: ReportInput): string {
  const { info } = input;
  const out: string[] = [
    `### Activator benchmark, ${info.date}`,
    '',
    `Machine: ${info.nproc} CPUs (${info.cpuModel}), kernel ${info.kernel}, node ${info.nodeVersion}, ${info.nginxVersion}, ${info.wrkVersion}, ${input.heyVersion}.  `,
    `CPU layout: CPU ${input.proxyCpu} runs the activator alone; CPU ${input.loadCpu} runs the load generator (wrk, hey or the bench's driver), ` +
      `the backend (nginx or the Node app), the queue-proxy behind the activator and the harness. In the queue-proxy-only rows the queue-proxy ` +
      `takes CPU ${input.proxyCpu} instead, as in the queue-proxy bench, which gives the CPU per request the activator is compared with.` +
      `${input.quick ? ' Quick mode (short runs).' : ''} Other processes' load on those CPUs before the run: ${percent(input.backgroundLoad)}.`,
  ];
  const sections: string[][] = [];
  if (input.startup !== undefined) sections.push(startupSection(input.startup));
  if (input.warm !== undefined) sections.push(warmSection(input, input.warm));
  if (input.routing !== undefined) sections.push(routingSection(input, input.routing));
  if (input.fixedRate !== undefined) sections.push(rateSection(input, input.fixedRate));
  if (input.cold !== undefined) sections.push(coldSection(input, input.cold));
  if (input.backpressure !== undefined) sections.push(backpressureSection(input.backpressure));
  if (input.uploads !== undefined) sections.push(uploadsSection(input.uploads));
  sections.push(goalsSection(input));
  for (const s of sections) if (s.length > 0) out.push('', ...s);
  const notes = [
    ...(input.startup?.failures ?? []).map((f) => `- start-up failed: ${f.split('\n')[0]}`),
    ...(input.warm?.failures ?? []).map((f) => `- warm path failed: ${f.split('\n')[0]}`),
    ...(input.fixedRate?.failures ?? []).map((f) => `- fixed rate failed: ${f.split('\n')[0]}`),
    ...(input.cold?.failures ?? []).map((f) => `- scale from zero failed: ${f.split('\n')[0]}`),
    ...(input.backpressure?.failures ?? []).map((f) => `- backpressure failed: ${f.split('\n')[0]}`),
    ...(input.uploads?.failures ?? []).map((f) => `- waiting uploads failed: ${f.split('\n')[0]}`),
  ];
  const noisy = [...(input.warm?.points ?? []), ...(input.fixedRate?.rows ?? [])].some((p) => p.otherLoad > NOISY);
  if (noisy) notes.push(`- (!) other processes used more than ${NOISY * 100}% of the bench CPUs during that run: treat its numbers as noisy.`);
  if (notes.length > 0) out.push('', ...notes);
  return out.join('\n') + '\n';
}
