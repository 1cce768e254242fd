// CPU accounting around one load run: utime+stime of named process trees (the activator,
// the queue-proxy, the backend) and the share of the bench CPUs used by anything else,
// the same "other load" the queue-proxy bench reports.
import { clockTicksPerSecond, cpuBusyTicks, cpuTicks, processTree, selfAndReapedTicks } from '../lib/proc.ts';

export interface WindowResult {
  /** CPU seconds (utime+stime) per group over the window. */
  cpuSeconds: Record<string, number>;
  /** Share of the bench CPUs' time used by processes outside the groups and the harness, 0..1. */
  otherLoad: number;
}

/**
 * Snapshots now; the returned function snapshots again and computes the window. `groups` maps
 * a name to root pids whose process trees (taken now) count as that group. Load generators
 * (wrk, hey) must have been reaped by then: their time counts through the harness's cutime.
 */
export function openCpuWindow(groups: Record<string, readonly number[]>, cpus: readonly number[]): () => WindowResult {
  const pids: Record<string, number[]> = {};
  for (const [name, roots] of Object.entries(groups)) pids[name] = roots.flatMap((pid) => processTree(pid));
  const ticksBefore: Record<string, number> = {};
  for (const [name, list] of Object.entries(pids)) ticksBefore[name] = cpuTicks(list);
  const selfBefore = selfAndReapedTicks();
  const cpusBefore = cpuBusyTicks(cpus);
  return () => {
    const cpusAfter = cpuBusyTicks(cpus);
    const hz = clockTicksPerSecond();
    const cpuSeconds: Record<string, number> = {};
    let ours = selfAndReapedTicks() - selfBefore;
    for (const [name, list] of Object.entries(pids)) {
      const ticks = cpuTicks(list) - ticksBefore[name]!;
      cpuSeconds[name] = ticks / hz;
      ours += ticks;
    }
    const total = cpusAfter.total - cpusBefore.total;
    const otherLoad = total <= 0 ? 0 : Math.max(0, (cpusAfter.busy - cpusBefore.busy - ours) / total);
    return { cpuSeconds, otherLoad };
  };
}
