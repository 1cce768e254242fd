// The local-runtime report: cold starts with where their time goes, the load
// part's instance counts against the KPA formula, and the issue's targets.
import { table } from '../lib/markdown.ts';
import type { ColdRun } from './cold-start.ts';
import type { LoadResult } from './load.ts';
import { percentile } from './percentile.ts';
import { AUTOSCALER_DATA, UTILISATION } from './setup.ts';

/** The issue's target: first response − the app's own time to listen, p95. */
export const COLD_START_TARGET_MS = 100;

/** Load end → zero: the stable average falls for a window (6 s), the grace period (6 s), two decision ticks (2 s each), the drain (1 s). */
export const ZERO_LIMIT_S = 6 + 6 + 2 * 2 + 1;

export interface ReportInput {
  date: string;
  machine: string;
  node: string;
  hey: string;
  foreignLoad: number;
  cold: ColdRun[] | undefined;
  load: LoadResult | undefined;
  loadSettings: { seconds: number; concurrency: number; target: number; appDelayMs: number };
}

const ms = (v: number | undefined): string => (v === undefined || !Number.isFinite(v) ? '–' : v.toFixed(1));
const int = (v: number): string => v.toLocaleString('en-US');

function coldSection(runs: ColdRun[]): string[] {
  const first = runs.map((r) => r.firstResponseMs);
  const app = runs.map((r) => r.appListenMs);
  const diff = runs.map((r) => r.firstResponseMs - r.appListenMs);
  const row = (name: string, v: number[]): string[] => [name, ms(percentile(v, 50)), ms(percentile(v, 95)), ms(Math.max(...v))];
  const out = [
    `### Cold starts through the whole stack (${runs.length} runs)`,
    '',
    'Request → ingress → activator (poke) → autoscaler (0 → 1) → app + queue-proxy spawned → activator probe → response.',
    '',
    table(['ms', 'p50', 'p95', 'max'], [
      row('first response (request sent → 200 read)', first),
      row('app\'s own time to listen (spawn → port accepts)', app),
      row('difference: the stack\'s share', diff),
    ], ['left', 'right', 'right', 'right']),
    '',
    'Where the time goes, in ms after the request was sent (one clock: the runtime runs in the',
    'bench\'s process; spawns are stamped and ports polled every 1 ms):',
    '',
  ];
  const step = (name: string, pick: (r: ColdRun) => number | undefined): string[] => {
    const v = runs.map(pick).filter((x): x is number => x !== undefined && Number.isFinite(x));
    return [name, ms(percentile(v, 50)), ms(percentile(v, 95))];
  };
  const up = (r: ColdRun): number | undefined =>
    r.steps.appListening === undefined || r.steps.qpListening === undefined ? undefined : Math.max(r.steps.appListening, r.steps.qpListening);
  out.push(table(['step', 'p50', 'p95'], [
    step('autoscaler decided 0 → 1 (activator poke)', (r) => r.steps.decision),
    step('app and queue-proxy spawned', (r) => r.steps.spawn),
    step('app listening', (r) => r.steps.appListening),
    step('queue-proxy listening', (r) => r.steps.qpListening),
    step('runtime\'s readiness probe passed', (r) => r.steps.runtimeReady),
    step('first response read', (r) => r.firstResponseMs),
    step('… decision → spawn (free ports, spawn calls)', (r) => (r.steps.spawn ?? NaN) - (r.steps.decision ?? NaN)),
    step('… spawn → app listening', (r) => (r.steps.appListening ?? NaN) - (r.steps.spawn ?? NaN)),
    step('… spawn → queue-proxy listening', (r) => (r.steps.qpListening ?? NaN) - (r.steps.spawn ?? NaN)),
    step('… both listening → response (activator probe period, proxying)', (r) => r.firstResponseMs - (up(r) ?? NaN)),
  ], ['left', 'right', 'right']));
  const qpLag = percentile(runs.map((r) => (r.steps.qpListening ?? NaN) - (r.steps.appListening ?? NaN)).filter(Number.isFinite), 50);
  out.push('', `Critical path: the queue-proxy starts listening ${ms(qpLag)} ms (p50) after the app; the stack's share is that`,
    'lag plus the first probe and first proxied request through the fresh queue-proxy.', '', 'Each run (ms after the request was sent):', '');
  out.push(table(['#', 'service', 'status', 'decision', 'spawn', 'app listening', 'qp listening', 'runtime ready', 'response', 'app listen (runtime)', 'difference'],
    runs.map((r, i) => [String(i + 1), r.service, String(r.status), ms(r.steps.decision), ms(r.steps.spawn), ms(r.steps.appListening), ms(r.steps.qpListening),
      ms(r.steps.runtimeReady), ms(r.firstResponseMs), ms(r.appListenMs), ms(r.firstResponseMs - r.appListenMs)]),
    ['right', 'left', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right']));
  const bad = runs.filter((r) => r.status !== 200);
  if (bad.length > 0) out.push('', `- (!) ${bad.length} cold start(s) not answered 200: ${bad.map((r) => `${r.service} ${r.status}`).join(', ')}`);
  return out;
}

function lastLoaded(l: LoadResult): LoadResult['samples'][number] | undefined {
  return l.samples.filter((x) => x.loaded).at(-1);
}

function loadSection(l: LoadResult, s: ReportInput['loadSettings']): string[] {
  const target = s.target * UTILISATION;
  const expected = Math.ceil(s.concurrency / target);
  const failed = l.hey.requests - (l.hey.statuses['200'] ?? 0);
  const out = [
    `### Load: \`hey -z ${s.seconds}s -c ${s.concurrency}\`, from zero back to zero`,
    '',
    `The load service's app answers after ${s.appDelayMs} ms; annotation \`autoscaling.knative.dev/target: "${s.target}"\`, so the`,
    `KPA aims at ${s.target} × ${UTILISATION * 100} % = ${target} concurrent requests per instance. By hand: ${s.concurrency} in flight →`,
    `ceil(${s.concurrency} / ${target}) = **${expected}** instances. config-autoscaler: ${Object.entries(AUTOSCALER_DATA).map(([k, v]) => `${k} ${v}`).join(', ')}.`,
    '',
    table(['figure', 'value'], [
      ['requests (hey)', int(l.hey.requests)],
      ['requests/s', l.hey.rps.toFixed(0)],
      ['latency p50 / p95 / p99 (ms)', `${ms(l.hey.latencyMs.p50)} / ${ms(l.hey.latencyMs.p95)} / ${ms(l.hey.latencyMs.p99)}`],
      ['requests in flight (requests/s × mean latency)', (l.hey.rps * l.hey.latencyMs.mean / 1000).toFixed(1)],
      ['observed concurrency, stable average at the end of the load', ms(lastLoaded(l)?.decision?.observedStable)],
      ['failed (non-200 or error)', int(failed)],
      ['ready instances, most', String(l.maxReady)],
      ['desired instances, second half of the load', String(l.steadyDesired)],
      ['decisions matching the KPA formula', `${l.check.matching} of ${l.check.decisions}`],
      ['back at zero after the load', Number.isFinite(l.zeroAfterS) ? `${l.zeroAfterS.toFixed(1)} s` : 'no'],
      ['request after zero (cold start)', `${l.coldAfterZero.status} in ${l.coldAfterZero.ms.toFixed(0)} ms`],
    ], ['left', 'right']),
    '',
    'Instances over time (every 2 s; formula = ceil(observed / target) from the autoscaler\'s own averages):',
    '',
  ];
  const rows: string[][] = [];
  let next = 0;
  for (const x of l.samples) {
    if (x.t < next && x !== l.samples[l.samples.length - 1]) continue;
    next = Math.floor(x.t / 2) * 2 + 2;
    const d = x.decision;
    const has = d !== null && Number.isFinite(d.observedStable);
    rows.push([
      x.t.toFixed(1), x.loaded ? 'load' : '', String(x.ready), String(x.desired),
      has ? d.observedStable.toFixed(1) : '–', has ? d.observedPanic.toFixed(1) : '–', has ? (d.panicking ? 'panic' : 'stable') : '–',
      has ? String(Math.ceil((d.panicking ? Math.max(d.observedStable, d.observedPanic) : d.observedStable) / d.target)) : '–',
    ]);
  }
  out.push(table(['t (s)', 'hey', 'ready', 'desired', 'observed (stable)', 'observed (panic)', 'mode', 'formula'], rows,
    ['right', 'left', 'right', 'right', 'right', 'right', 'left', 'right']));
  if (l.check.mismatches.length > 0) out.push('', ...l.check.mismatches.slice(0, 10).map((m) => `- (!) ${m}`));
  const errors = Object.entries(l.hey.errors);
  if (errors.length > 0) out.push('', ...errors.slice(0, 5).map(([e, n]) => `- (!) ${n} × ${e}`));
  const statuses = Object.entries(l.hey.statuses).filter(([code]) => code !== '200');
  if (statuses.length > 0) out.push('', `- (!) statuses other than 200: ${statuses.map(([c, n]) => `${n} × ${c}`).join(', ')}`);
  return out;
}

function targets(i: ReportInput): string[] {
  const rows: string[][] = [];
  const yes = (b: boolean): string => (b ? 'yes' : '**no**');
  if (i.cold !== undefined) {
    const diff = percentile(i.cold.map((r) => r.firstResponseMs - r.appListenMs), 95);
    const ok = i.cold.filter((r) => r.status === 200).length;
    rows.push(['cold start', 'first response − app\'s time to listen, p95', `≤ ${COLD_START_TARGET_MS} ms`, `${ms(diff)} ms`, yes(diff <= COLD_START_TARGET_MS)]);
    rows.push(['cold start', 'answered 200', String(i.cold.length), String(ok), yes(ok === i.cold.length)]);
  }
  if (i.load !== undefined) {
    const l = i.load;
    const expected = Math.ceil(i.loadSettings.concurrency / (i.loadSettings.target * UTILISATION));
    const failed = l.hey.requests - (l.hey.statuses['200'] ?? 0) + (l.coldAfterZero.status === 200 ? 0 : 1);
    rows.push(['load', 'decisions follow the KPA formula', 'all', `${l.check.matching} of ${l.check.decisions}`, yes(l.check.matching === l.check.decisions)]);
    rows.push(['load', 'desired instances under steady load (by hand)', String(expected), String(l.steadyDesired), yes(Math.abs(l.steadyDesired - expected) <= 1)]);
    rows.push(['load', 'back to zero after stable window + grace', `≤ ${ZERO_LIMIT_S} s`, Number.isFinite(l.zeroAfterS) ? `${l.zeroAfterS.toFixed(1)} s` : 'never', yes(l.zeroAfterS <= ZERO_LIMIT_S)]);
    rows.push(['load', 'failed requests, whole cycle', '0', String(failed), yes(failed === 0)]);
  }
  return ['### Against the issue\'s targets', '', table(['part', 'goal', 'limit', 'measured', 'met'], rows, ['left', 'left', 'right', 'right', 'left'])];
}

export function renderLocalReport(i: ReportInput): string {
  const out = [
    `## Local runtime results (${i.date})`,
    '',
    `${i.machine}; ${i.node}; ${i.hey}.`,
  ];
  if (i.foreignLoad > 0.05) out.push('', `- (!) other processes used ${(i.foreignLoad * 100).toFixed(0)} % of the CPUs when the run began: treat its numbers as noisy.`);
  if (i.cold !== undefined) out.push('', ...coldSection(i.cold));
  if (i.load !== undefined) out.push('', ...loadSection(i.load, i.loadSettings));
  out.push('', ...targets(i));
  return out.join('\n') + '\n';
}
