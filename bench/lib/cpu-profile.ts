// Reads a V8 .cpuprofile (what node --cpu-prof writes) and ranks functions by self and total
// time, so a profile can be read in a terminal without DevTools.
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';

export interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  children?: number[];
}

export interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

export interface FunctionTime {
  name: string;
  selfUs: number;
  totalUs: number;
}

export interface ProfileSummary {
  durationUs: number;
  sampledUs: number;
  functions: FunctionTime[];
}

export function label(node: ProfileNode, repo: string): string {
  const { functionName, url, lineNumber } = node.callFrame;
  const name = functionName === '' ? '(anonymous)' : functionName;
  if (url === '') return name; // (program), (idle), (garbage collector), natives
  const file = url.startsWith('file://') ? relative(repo, new URL(url).pathname) : url;
  return `${name} ${file}:${lineNumber + 1}`;
}

/** A .cpuprofile with its nodes by id and each node's parent. */
export function readProfileTree(file: string): { profile: Profile; byId: Map<number, ProfileNode>; parent: Map<number, number> } {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const node of profile.nodes) {
    byId.set(node.id, node);
    for (const child of node.children ?? []) parent.set(child, node.id);
  }
  return { profile, byId, parent };
}

/** Self time per function, and total time (self + callees, each function counted once per stack). */
export function summarizeProfile(file: string, repo: string): ProfileSummary {
  const { profile, byId, parent } = readProfileTree(file);
  // Each sample's time is the delta to the next sample.
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  const selfById = new Map<number, number>();
  for (let i = 0; i < samples.length; i++) {
    const us = deltas[i + 1] ?? 0;
    selfById.set(samples[i]!, (selfById.get(samples[i]!) ?? 0) + us);
  }
  const times = new Map<string, FunctionTime>();
  const entry = (name: string): FunctionTime => {
    let t = times.get(name);
    if (t === undefined) times.set(name, (t = { name, selfUs: 0, totalUs: 0 }));
    return t;
  };
  let sampledUs = 0;
  for (const [id, us] of selfById) {
    sampledUs += us;
    entry(label(byId.get(id)!, repo)).selfUs += us;
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const name = label(byId.get(at)!, repo);
      if (seen.has(name)) continue; // recursion: count once
      seen.add(name);
      entry(name).totalUs += us;
    }
  }
  return { durationUs: profile.endTime - profile.startTime, sampledUs, functions: [...times.values()] };
}

/** The top functions by self time and by total time, as text. */
export function formatProfileSummary(summary: ProfileSummary, top: number): string {
  const busy = summary.functions
    .filter((f) => f.name !== '(idle)' && f.name !== '(root)')
    .reduce((sum, f) => sum + f.selfUs, 0);
  const pct = (us: number): string => `${((us / Math.max(1, busy)) * 100).toFixed(1).padStart(5)}%`;
  const ms = (us: number): string => `${(us / 1000).toFixed(0).padStart(7)} ms`;
  const rank = (key: 'selfUs' | 'totalUs'): string =>
    summary.functions
      .filter((f) => f.name !== '(idle)' && f.name !== '(root)')
      .sort((a, b) => b[key] - a[key])
      .slice(0, top)
      .map((f) => `${ms(f[key])} ${pct(f[key])}  ${f.name}`)
      .join('\n');
  return (
    `profile: ${(summary.durationUs / 1e6).toFixed(1)} s, ${(busy / 1e6).toFixed(1)} s on CPU (not idle); ` +
    `percentages are of that busy time\n\nby self time:\n${rank('selfUs')}\n\nby total time (self + callees):\n${rank('totalUs')}\n`
  );
}
