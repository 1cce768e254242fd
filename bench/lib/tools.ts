// Locates the external programs the bench needs and names the Debian package of any missing one.
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

export interface Tools {
  wrk: string;
  nginx: string;
  taskset: string;
}

const PACKAGE_OF: Record<keyof Tools, string> = {
  wrk: 'wrk',
  nginx: 'nginx-light',
  taskset: 'util-linux',
};

/** Absolute path of an executable on PATH (plus the sbin dirs, where Debian puts nginx). */
export function which(name: string): string | undefined {
  const dirs = (process.env.PATH ?? '').split(delimiter).concat(['/usr/local/sbin', '/usr/sbin', '/sbin']);
  for (const dir of dirs) {
    if (dir === '') continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** Finds wrk, nginx and taskset or throws one message listing what to install. */
export function requireTools(): Tools {
  const found: Partial<Tools> = {};
  const missing: string[] = [];
  for (const name of Object.keys(PACKAGE_OF) as (keyof Tools)[]) {
    const path = which(name);
    if (path === undefined) missing.push(`${name} (Debian package ${PACKAGE_OF[name]})`);
    else found[name] = path;
  }
  if (missing.length > 0) {
    const packages = missing.map((m) => /package (\S+)\)/.exec(m)![1]).join(' ');
    throw new Error(
      `missing tools: ${missing.join(', ')}.\n` + `Install them with: apt-get update && apt-get install -y ${packages}`,
    );
  }
  return found as Tools;
}
