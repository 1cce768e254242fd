// What the report's header says about the machine and the tool versions.
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism, release } from 'node:os';

export interface SystemInfo {
  date: string;
  nproc: number;
  cpuModel: string;
  kernel: string;
  nodeVersion: string;
  nginxVersion: string;
  wrkVersion: string;
}

// Version banners: nginx -v writes to stderr, wrk -v prints its banner and exits 1.
function firstLine(file: string, args: string[]): string {
  const run = spawnSync(file, args, { encoding: 'utf8' });
  const text = `${run.stdout ?? ''}${run.stderr ?? ''}`.trim();
  return text === '' ? 'unknown' : text.split('\n')[0]!;
}

function cpuModel(): string {
  try {
    const match = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    return match?.[1]?.trim() ?? 'unknown CPU';
  } catch {
    return 'unknown CPU';
  }
}

export function systemInfo(node: string, tools: { nginx: string; wrk: string }): SystemInfo {
  const wrk = firstLine(tools.wrk, ['-v']);
  const nginx = firstLine(tools.nginx, ['-v']);
  let nproc = availableParallelism();
  try {
    nproc = Number(execFileSync('nproc', { encoding: 'utf8' }).trim()) || nproc;
  } catch {
    // keep availableParallelism()
  }
  return {
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    nproc,
    cpuModel: cpuModel(),
    kernel: `${release()}`,
    nodeVersion: firstLine(node, ['--version']),
    nginxVersion: nginx.replace(/^nginx version: /, ''),
    wrkVersion: wrk.replace(/ \[.*$/, '').replace(/\s+Copyright.*$/, ''),
  };
}
