// Reads CPU time and memory of running processes from /proc (Linux only).
import { readFileSync, readdirSync } from 'node:fs';
import { execFileSync } from 'node:child_process';

let ticksPerSecond = 0;

/** Kernel clock ticks per second (`getconf CLK_TCK`), the unit of utime/stime in /proc/<pid>/stat. */
export function clockTicksPerSecond(): number {
  if (ticksPerSecond === 0) {
    const out = execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim();
    ticksPerSecond = Number(out);
    if (!Number.isFinite(ticksPerSecond) || ticksPerSecond <= 0) {
      throw new Error(`getconf CLK_TCK printed ${JSON.stringify(out)}`);
    }
  }
  return ticksPerSecond;
}

interface StatFields {
  ppid: number;
  /** utime + stime, in clock ticks, summed over all threads of the process. */
  cpuTicks: number;
}

// The comm field (2) may contain spaces and parentheses, so fields are counted from the last ')'.
function readStat(pid: number): StatFields | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined; // the process is gone
  }
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state): ppid is field 4, utime 14, stime 15.
  return { ppid: Number(rest[1]), cpuTicks: Number(rest[11]) + Number(rest[12]) };
}

/** `root` and all its live descendants (nginx master + workers, sh -> exec'd proxy, ...). */
export function processTree(root: number): number[] {
  const parentOf = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid)) continue;
    const stat = readStat(pid);
    if (stat !== undefined) parentOf.set(pid, stat.ppid);
  }
  const tree = [root];
  for (let i = 0; i < tree.length; i++) {
    for (const [pid, ppid] of parentOf) if (ppid === tree[i]) tree.push(pid);
  }
  return tree;
}

/** utime + stime of the given processes, in clock ticks (a process that has exited counts 0). */
export function cpuTicks(pids: readonly number[]): number {
  let total = 0;
  for (const pid of pids) total += readStat(pid)?.cpuTicks ?? 0;
  return total;
}

export interface Memory {
  /** Current resident set (VmRSS), KiB. */
  rssKiB: number;
  /** Peak resident set over the process's life (VmHWM), KiB. */
  hwmKiB: number;
}

function statusKiB(text: string, key: string): number {
  const match = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text);
  return match === null ? 0 : Number(match[1]);
}

/** VmRSS and VmHWM summed over the given processes, from /proc/<pid>/status. */
export function memory(pids: readonly number[]): Memory {
  const total = { rssKiB: 0, hwmKiB: 0 };
  for (const pid of pids) {
    let text: string;
    try {
      text = readFileSync(`/proc/${pid}/status`, 'utf8');
    } catch {
      continue;
    }
    total.rssKiB += statusKiB(text, 'VmRSS');
    total.hwmKiB += statusKiB(text, 'VmHWM');
  }
  return total;
}

/**
 * Busy and total clock ticks of the given CPUs since boot, from /proc/stat. Busy is process
 * time plus steal; irq/softirq time is left out of busy because the bench's own loopback
 * traffic causes most of it.
 */
export function cpuBusyTicks(cpus: readonly number[]): { busy: number; total: number } {
  const text = readFileSync('/proc/stat', 'utf8');
  let busy = 0;
  let total = 0;
  for (const cpu of cpus) {
    const match = new RegExp(`^cpu${cpu} (.+)$`, 'm').exec(text);
    if (match === null) continue;
    // user nice system idle iowait irq softirq steal (guest time is already inside user)
    const [user, nice, system, idle, iowait, irq, softirq, steal] = match[1]!.trim().split(/\s+/).map(Number);
    const b = user! + nice! + system! + (steal ?? 0);
    busy += b;
    total += b + idle! + iowait! + irq! + softirq!;
  }
  return { busy, total };
}

/** utime+stime of this process plus that of its reaped children (wrk runs), clock ticks. */
export function selfAndReapedTicks(): number {
  const text = readFileSync('/proc/self/stat', 'utf8');
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // fields 14-17: utime stime cutime cstime
  return Number(rest[11]) + Number(rest[12]) + Number(rest[13]) + Number(rest[14]);
}

/** TCP ports with a listening socket in this network namespace (IPv4 and IPv6), from /proc/net. */
export function listeningPorts(): Set<number> {
  const ports = new Set<number>();
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue; // no IPv6
    }
    // "sl local_address rem_address st ...": local_address is hexaddr:hexport, st 0A is LISTEN.
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields[3] === '0A' && fields[1] !== undefined) ports.add(parseInt(fields[1].split(':')[1]!, 16));
    }
  }
  return ports;
}
