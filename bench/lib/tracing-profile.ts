// How much of a queue-proxy CPU profile is tracing: the busy time of samples whose stack holds
// a frame of OpenTelemetry or of Sluice's tracer (inclusive: what those frames call counts too),
// and the tracing functions ranked by self time. The sockets' own work for the span export
// (writing the POST, reading the 202) runs from libuv callbacks above no tracing frame, so the
// share is a lower bound; GC caused by span objects is not attributed either.
import { label, readProfileTree } from './cpu-profile.ts';

/**
 * Frames that belong to tracing: OpenTelemetry packages and core's tracing modules (tracer,
 * request spans, ids, export), wherever they were loaded from. The queue-proxy's own hooks
 * (request-tracing.ts) are bundled into its main file and only show through what they call.
 */
const TRACING_URL = /@opentelemetry\/|\/tracing\/[\w-]+\.[jt]s$|request-tracing\.[jt]s$/;

export interface TracingShare {
  busyUs: number;
  tracingUs: number;
  /** Tracing functions by self time, µs. */
  top: { name: string; selfUs: number }[];
  /** Tracing functions by total time (self + callees, once per stack), µs. */
  topTotal: { name: string; totalUs: number }[];
}

const NOT_BUSY = new Set(['(idle)', '(root)']);

export function tracingShare(file: string, repo: string, top = 12): TracingShare {
  const { profile, byId, parent } = readProfileTree(file);
  // Per node: does its stack (itself or an ancestor) hold a tracing frame? Memoized walk up.
  const traced = new Map<number, boolean>();
  const isTraced = (id: number): boolean => {
    let known = traced.get(id);
    if (known === undefined) {
      const up = parent.get(id);
      known = TRACING_URL.test(byId.get(id)!.callFrame.url) || (up !== undefined && isTraced(up));
      traced.set(id, known);
    }
    return known;
  };
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  let busyUs = 0;
  let tracingUs = 0;
  const self = new Map<string, number>();
  const total = new Map<string, number>();
  for (let i = 0; i < samples.length; i++) {
    const id = samples[i]!;
    const node = byId.get(id)!;
    const us = deltas[i + 1] ?? 0;
    if (NOT_BUSY.has(node.callFrame.functionName)) continue;
    busyUs += us;
    if (!isTraced(id)) continue;
    tracingUs += us;
    if (TRACING_URL.test(node.callFrame.url)) {
      const name = label(node, repo);
      self.set(name, (self.get(name) ?? 0) + us);
    }
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const frame = byId.get(at)!;
      if (!TRACING_URL.test(frame.callFrame.url)) continue;
      const name = label(frame, repo);
      if (seen.has(name)) continue;
      seen.add(name);
      total.set(name, (total.get(name) ?? 0) + us);
    }
  }
  const ranked = [...self].map(([name, selfUs]) => ({ name, selfUs })).sort((a, b) => b.selfUs - a.selfUs);
  const rankedTotal = [...total].map(([name, totalUs]) => ({ name, totalUs })).sort((a, b) => b.totalUs - a.totalUs);
  return { busyUs, tracingUs, top: ranked.slice(0, top), topTotal: rankedTotal.slice(0, top) };
}

export function formatTracingShare(share: TracingShare): string {
  const pct = (us: number): string => `${((us / Math.max(1, share.busyUs)) * 100).toFixed(1).padStart(5)}%`;
  const line = (us: number, name: string): string => `${(us / 1000).toFixed(0).padStart(7)} ms ${pct(us)}  ${name}`;
  const bySelf = share.top.map((f) => line(f.selfUs, f.name));
  const byTotal = share.topTotal.map((f) => line(f.totalUs, f.name));
  return (
    `tracing: ${(share.tracingUs / 1000).toFixed(0)} ms = ${pct(share.tracingUs).trim()} of the busy time in stacks through OpenTelemetry or the tracer\n` +
    (bySelf.length === 0 ? '' : `tracing functions by self time:\n${bySelf.join('\n')}\n`) +
    (byTotal.length === 0 ? '' : `tracing functions by total time (self + callees):\n${byTotal.join('\n')}\n`)
  );
}
