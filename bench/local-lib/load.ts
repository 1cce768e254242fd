// Part 2, load: the load service starts at zero; hey -z <s> -c <n> through the
// ingress; the revision's status (ready and desired instances, and the
// autoscaler's last decision with the averages it used) is sampled every
// 250 ms until the service is back at zero; then one more request cold-starts
// it. Each decision is checked against the KPA formula applied to the
// averages the autoscaler itself recorded.
import type { LocalRuntime } from '../../packages/local/dist/runtime/runtime.js';
import { runHey, type HeyResult } from './hey.ts';
import { timedGet } from './http.ts';
import { hostOf, LOAD_SERVICE, revisionOf, sleep, waitForZero, type RevisionStatus } from './setup.ts';

export interface Sample {
  /** Seconds since hey started. */
  t: number;
  loaded: boolean;
  ready: number;
  desired: number;
  decision: RevisionStatus['autoscaler'];
}

export interface FormulaCheck {
  decisions: number;
  matching: number;
  mismatches: string[];
}

export interface LoadResult {
  hey: HeyResult;
  samples: Sample[];
  check: FormulaCheck;
  maxReady: number;
  /** Most frequent desired count over the second half of the load. */
  steadyDesired: number;
  /** Seconds from hey's end until no instance was left (NaN: not within the limit). */
  zeroAfterS: number;
  coldAfterZero: { status: number; ms: number };
}

export interface LoadOptions {
  seconds: number;
  concurrency: number;
  log: (line: string) => void;
}

/** Knative's KPA for one decision (autoscaler.go): ceil(observed / target), down at most by max-scale-down-rate (2). */
export function kpaFormula(d: NonNullable<RevisionStatus['autoscaler']>): { stable: number; panic: number } {
  const maxDown = Math.floor(d.readyPods / 2);
  const maxUp = Math.ceil(1000 * d.readyPods);
  const bound = (pods: number): number => Math.min(Math.max(pods, maxDown), maxUp);
  return { stable: bound(Math.ceil(d.observedStable / d.target)), panic: bound(Math.ceil(d.observedPanic / d.target)) };
}

function checkDecisions(samples: readonly Sample[]): FormulaCheck {
  const seen = new Set<string>();
  const out: FormulaCheck = { decisions: 0, matching: 0, mismatches: [] };
  for (const s of samples) {
    const d = s.decision;
    if (d === null || d.recommended < 0 || !Number.isFinite(d.observedStable)) continue;
    const key = JSON.stringify(d);
    if (seen.has(key)) continue;
    seen.add(key);
    out.decisions++;
    const f = kpaFormula(d);
    // In panic mode the KPA never scales down and provisions for the larger of the two windows.
    const ok = d.panicking ? d.recommended >= Math.max(f.stable, f.panic) : d.recommended === f.stable;
    if (ok) out.matching++;
    else out.mismatches.push(`t=${s.t.toFixed(1)} s: recommended ${d.recommended}, formula ${d.panicking ? `≥ ${Math.max(f.stable, f.panic)}` : f.stable} (${key})`);
  }
  return out;
}

export async function runLoad(rt: LocalRuntime, url: string, hey: string, o: LoadOptions): Promise<LoadResult> {
  o.log(`load: waiting for the ${LOAD_SERVICE} service to be at zero`);
  if (!(await waitForZero(rt, [LOAD_SERVICE], 90_000))) throw new Error(`${LOAD_SERVICE} did not scale to zero within 90 s`);
  await sleep(1500);
  const samples: Sample[] = [];
  let loaded = true;
  const began = performance.now();
  const sample = (): void => {
    const r = revisionOf(rt, LOAD_SERVICE);
    samples.push({ t: (performance.now() - began) / 1000, loaded, ready: r.actual, desired: r.desired, decision: r.autoscaler === null ? null : { ...r.autoscaler } });
  };
  const timer = setInterval(sample, 250);
  o.log(`load: hey -z ${o.seconds}s -c ${o.concurrency} -host ${hostOf(LOAD_SERVICE)}`);
  const result = await runHey(hey, `${url}/`, hostOf(LOAD_SERVICE), o.seconds, o.concurrency);
  loaded = false;
  const heyEnded = performance.now();
  o.log(`load: hey done (${result.requests} requests, ${JSON.stringify(result.statuses)}); waiting for zero`);
  const zero = await waitForZero(rt, [LOAD_SERVICE], 90_000);
  const zeroAfterS = zero ? (performance.now() - heyEnded) / 1000 : Number.NaN;
  sample();
  clearInterval(timer);
  const cold = await timedGet(`${url}/`, hostOf(LOAD_SERVICE), 30_000);
  o.log(`load: back at zero after ${zeroAfterS.toFixed(1)} s; a request then got ${cold.status} in ${(cold.doneAt - cold.sentAt).toFixed(0)} ms`);

  const second = samples.filter((s) => s.loaded && s.t >= o.seconds / 2);
  const counts = new Map<number, number>();
  for (const s of second) counts.set(s.desired, (counts.get(s.desired) ?? 0) + 1);
  const steadyDesired = [...counts].sort((a, b) => b[1] - a[1])[0]?.[0] ?? Number.NaN;
  return {
    hey: result,
    samples,
    check: checkDecisions(samples),
    maxReady: Math.max(0, ...samples.map((s) => s.ready)),
    steadyDesired,
    zeroAfterS,
    coldAfterZero: { status: cold.status, ms: cold.doneAt - cold.sentAt },
  };
}
