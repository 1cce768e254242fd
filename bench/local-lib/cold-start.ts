// Part 1, cold starts through the whole local stack: a request for a service
// at zero goes ingress → activator (no endpoint: it pokes the autoscaler over
// its stat websocket) → autoscaler decides 0 → 1 → the runtime spawns the app
// and its queue-proxy and lists the instance as a not-ready endpoint → the
// activator's probe passes → the request is answered. Timed per run: the
// first response, the app's own time to listen (the runtime's Instance.appStartMs,
// from the status API) and the steps in between (spawn-timeline.ts).
// Services scale to zero together, then are cold-started one at a time.
import type { LocalRuntime } from '../../packages/local/dist/runtime/runtime.js';
import { timedGet } from './http.ts';
import { hostOf, revisionOf, sleep, waitForZero } from './setup.ts';
import type { SpawnTimeline } from './spawn-timeline.ts';

export interface ColdRun {
  service: string;
  status: number;
  /** Request sent → response read, ms. */
  firstResponseMs: number;
  /** The runtime's own measure: app spawned → its port accepts connections, ms. */
  appListenMs: number;
  /** Milliseconds after the request was sent (undefined when not seen). */
  steps: {
    decision?: number;
    spawn?: number;
    appListening?: number;
    qpListening?: number;
    runtimeReady?: number;
  };
}

export interface ColdOptions {
  starts: number;
  services: readonly string[];
  /** Pause between two cold starts of a round, so one's start-up does not overlap the next. */
  gapMs: number;
  log: (line: string) => void;
}

/** Time at zero before a round: the activator drops a revision's stats after a quiet reporting period. */
const SETTLE_MS = 1500;

const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');

export async function runColdStarts(rt: LocalRuntime, url: string, timeline: SpawnTimeline, o: ColdOptions): Promise<ColdRun[]> {
  const runs: ColdRun[] = [];
  while (runs.length < o.starts) {
    const round = o.services.slice(0, Math.min(o.services.length, o.starts - runs.length));
    o.log(`cold starts: waiting for ${round.length} service(s) to scale to zero (stable window + grace period)`);
    if (!(await waitForZero(rt, round, 90_000))) throw new Error('services did not scale to zero within 90 s');
    await sleep(SETTLE_MS);
    for (const service of round) {
      const rev = revisionOf(rt, service).name;
      const reply = await timedGet(`${url}/`, hostOf(service), 30_000);
      const since = reply.sentAt;
      // appStartMs is set before the instance turns ready, so it is there by now.
      const inst = revisionOf(rt, service).instances[0];
      const times = timeline.instanceSince(rev, since);
      const rel = (t: number | undefined): number | undefined => (t === undefined ? undefined : t - since);
      const run: ColdRun = {
        service,
        status: reply.status,
        firstResponseMs: reply.doneAt - since,
        appListenMs: inst?.appStartMs ?? Number.NaN,
        steps: {
          decision: rel(timeline.lineAt(new RegExp(`autoscaler: default/${escape(rev)} 0 -> 1`), since)),
          spawn: rel(times?.appSpawnAt),
          appListening: rel(times?.appListenAt),
          qpListening: rel(times?.qpListenAt),
          runtimeReady: rel(timeline.lineAt(new RegExp(`instance ${escape(rev)}-\\d+: ready`), since)),
        },
      };
      runs.push(run);
      o.log(`cold start ${runs.length}/${o.starts} ${service}: ${reply.status} in ${run.firstResponseMs.toFixed(1)} ms, app listened after ${run.appListenMs.toFixed(1)} ms`);
      await sleep(o.gapMs);
    }
  }
  return runs;
}
