// What every part of the activator bench shares: tools, paths, CPU layout, the stat server.
import type { LaunchContext } from '../lib/launch.ts';
import type { Tools } from '../lib/tools.ts';
import type { StatServer } from './stat-server.ts';

export interface BenchContext {
  tools: Tools & { hey: string };
  /** Real path of the repo's Node 24. */
  node: string;
  repo: string;
  results: string;
  workDir: string;
  /** The activator's CPU, alone (and the queue-proxy's in the queue-proxy-only rows). */
  proxyCpu: number;
  /** Load generators, backend, apps, the queue-proxy behind the activator, the harness. */
  loadCpu: number;
  cpus: number[];
  stats: StatServer;
  maxQuietWaitMs: number;
  log: (line: string) => void;
}

/** A bench/lib LaunchContext for a target pinned to `cpu` in front of `backendPort`. */
export function launchContext(ctx: BenchContext, cpu: number, backendPort: number): LaunchContext {
  return {
    tools: ctx.tools,
    node: ctx.node,
    repo: ctx.repo,
    results: ctx.results,
    backendPort,
    cpu,
    workDir: ctx.workDir,
    profile: false,
  };
}
