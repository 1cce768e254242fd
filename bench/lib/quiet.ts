// Other work on the machine skews every number; these helpers measure it and wait it out.
import { sleep } from './children.ts';
import { cpuBusyTicks, selfAndReapedTicks } from './proc.ts';

/** Above this share of foreign CPU load a run's numbers are flagged as unreliable. */
export const NOISY = 0.05;

/**
 * Share of the CPUs' time used by other processes over `ms` milliseconds, this process and
 * its reaped children excepted. Call it while the bench's own processes idle.
 */
export async function foreignLoad(cpus: number[], ms: number): Promise<number> {
  const before = cpuBusyTicks(cpus);
  const self = selfAndReapedTicks();
  await sleep(ms);
  const after = cpuBusyTicks(cpus);
  const total = after.total - before.total;
  return total <= 0 ? 0 : Math.max(0, (after.busy - before.busy - (selfAndReapedTicks() - self)) / total);
}

/**
 * Waits until a half-second window shows at most NOISY foreign load, for up to maxWaitMs.
 * Returns the last load seen (the run goes ahead either way; its row is flagged if noisy).
 */
export async function waitForQuiet(cpus: number[], maxWaitMs: number, log: (line: string) => void): Promise<number> {
  const deadline = performance.now() + maxWaitMs;
  let load = await foreignLoad(cpus, 500);
  if (load <= NOISY || maxWaitMs <= 0) return load;
  log(`other processes use ${(load * 100).toFixed(0)}% of the bench CPUs: waiting up to ${(maxWaitMs / 1000).toFixed(0)} s for quiet`);
  while (load > NOISY && performance.now() < deadline) load = await foreignLoad(cpus, 500);
  return load;
}
