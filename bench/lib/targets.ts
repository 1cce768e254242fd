// The targets the bench compares, as data. Built-ins: the backend itself, nginx as a reverse
// proxy, Knative's own Go queue-proxy (when KNATIVE_QUEUE_BIN names one), Sluice's queue-proxy,
// and a bare node:http server; more (e.g. the activator) come from --extra-target or the
// BENCH_EXTRA_TARGET environment variable as JSON in the same shape as TargetSpec.
import { accessSync, constants, statSync } from 'node:fs';
import { KNATIVE_QUEUE_ENV, KNATIVE_QUEUE_FIXED_PORTS } from './knative-env.ts';
import { BACKEND_BODY } from './nginx-config.ts';

/**
 * direct: wrk loads the backend itself (the latency floor);
 * baseline: the proxy CPU per request and p99 are also compared with (nginx);
 * reference: the figure every Sluice figure is divided by (Knative's Go queue-proxy);
 * proxy: a Sluice proxy, measured against the goals;
 * floor: only started (start-up and idle RSS), the start-up goal is relative to it.
 */
export type TargetRole = 'direct' | 'baseline' | 'reference' | 'proxy' | 'floor';

export interface CommandLaunch {
  kind: 'command';
  /**
   * argv, or one string run as `sh -c "exec <string>"`. Placeholders, in argv and env values:
   * {node} real path of the repo's Node 24, {repo} repo root, {port} the port the target must
   * listen on, {backend_port}, {free} a fresh free port per occurrence, {results} bench/results.
   * With --profile, `--cpu-prof --cpu-prof-dir {results} --cpu-prof-name <name>-<time>.cpuprofile`
   * is inserted after a leading {node}.
   */
  command: string[] | string;
  env?: Record<string, string>;
}

export interface NginxLaunch {
  kind: 'nginx';
}

export interface TargetSpec {
  name: string;
  description: string;
  role: TargetRole;
  /** Absent for the direct target. */
  launch?: CommandLaunch | NginxLaunch;
  /** Extra request headers (wrk -H and the readiness GETs), e.g. what the activator routes on. */
  headers?: Record<string, string>;
  /** Paths (relative to the repo) that must exist, else the target is skipped with a message. */
  requires?: string[];
  /** Why the target cannot run on this machine (e.g. its binary is not configured): skipped with this. */
  unavailable?: string;
  /** Ports the target binds whatever its env: skipped when one is already taken. */
  fixedPorts?: readonly number[];
}

export const QUEUE_PROXY_MAIN = 'packages/queue-proxy/dist/main.js';

export const QUEUE_PROXY_TARGET: TargetSpec = {
  name: 'queue-proxy',
  description: 'Sluice queue-proxy (node dist/main.js)',
  role: 'proxy',
  requires: [QUEUE_PROXY_MAIN],
  launch: {
    kind: 'command',
    command: ['{node}', QUEUE_PROXY_MAIN],
    // Knative's env; Sluice's own ports moved off the fixed ones so it never clashes with Go's.
    env: { ...KNATIVE_QUEUE_ENV, SLUICE_ADMIN_PORT: '{free}', SLUICE_METRICS_PORT: '{free}', SLUICE_USER_METRICS_PORT: '{free}' },
  },
};

/** Why KNATIVE_QUEUE_BIN cannot be run, or undefined when it names an executable file. */
function binaryProblem(bin: string | undefined): string | undefined {
  if (bin === undefined || bin === '') return 'KNATIVE_QUEUE_BIN not set';
  try {
    if (!statSync(bin).isFile()) return `KNATIVE_QUEUE_BIN=${bin} is not a file`;
    accessSync(bin, constants.X_OK);
    return undefined;
  } catch {
    return `KNATIVE_QUEUE_BIN=${bin} is missing or not executable`;
  }
}

/** The built-in targets in their default order; knative-queue is there even when it will be skipped. */
export function builtinTargets(env: NodeJS.ProcessEnv): TargetSpec[] {
  const bin = env.KNATIVE_QUEUE_BIN;
  const problem = binaryProblem(bin);
  return [
    { name: 'direct', description: 'wrk -> backend nginx', role: 'direct' },
    {
      name: 'nginx',
      description: 'nginx reverse proxy (keep-alive upstream), 1 worker',
      role: 'baseline',
      launch: { kind: 'nginx' },
    },
    {
      name: 'knative-queue',
      description: `Knative v1.12.4 Go queue-proxy (${bin ?? 'KNATIVE_QUEUE_BIN'})`,
      role: 'reference',
      launch: { kind: 'command', command: [bin ?? 'queue'], env: { ...KNATIVE_QUEUE_ENV } },
      fixedPorts: KNATIVE_QUEUE_FIXED_PORTS,
      ...(problem === undefined ? {} : { unavailable: problem }),
    },
    QUEUE_PROXY_TARGET,
    {
      name: 'node-http',
      description: 'bare node:http server answering the backend body itself (start-up and idle RSS only)',
      role: 'floor',
      // Plain JavaScript: a .ts entry would add Node's type stripping to the floor's start-up and RSS.
      launch: { kind: 'command', command: ['{node}', 'bench/lib/bare-node-server.mjs'], env: { PORT: '{port}', BODY: BACKEND_BODY } },
    },
  ];
}

function fail(source: string, message: string): never {
  throw new Error(`${source}: ${message}`);
}

function stringRecord(value: unknown, source: string, field: string): Record<string, string> | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(source, `${field} must be an object`);
  for (const [k, v] of Object.entries(value)) {
    if (typeof v !== 'string') fail(source, `${field}.${k} must be a string`);
  }
  return value as Record<string, string>;
}

/** Parses one extra target (or an array of them) from JSON; role defaults to 'proxy'. */
export function parseExtraTargets(json: string, source: string): TargetSpec[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch (err) {
    fail(source, `not JSON (${(err as Error).message})`);
  }
  const items = Array.isArray(parsed) ? parsed : [parsed];
  return items.map((item: unknown): TargetSpec => {
    if (typeof item !== 'object' || item === null) fail(source, 'each target must be an object');
    const t = item as Record<string, unknown>;
    if (typeof t.name !== 'string' || !/^[\w.-]+$/.test(t.name)) fail(source, 'name must be a word ([A-Za-z0-9_.-])');
    const command = t.command;
    const isArgv = Array.isArray(command) && command.length > 0 && command.every((a) => typeof a === 'string');
    if (!isArgv && (typeof command !== 'string' || command.trim() === '')) {
      fail(source, `${t.name}: command must be a non-empty string or array of strings`);
    }
    if (t.requires !== undefined && (!Array.isArray(t.requires) || !t.requires.every((r) => typeof r === 'string'))) {
      fail(source, `${t.name}: requires must be an array of paths`);
    }
    const role = t.role ?? 'proxy';
    if (role !== 'proxy' && role !== 'baseline') fail(source, `${t.name}: role must be "proxy" or "baseline"`);
    const env = stringRecord(t.env, source, 'env');
    const headers = stringRecord(t.headers, source, 'headers');
    return {
      name: t.name,
      description: typeof t.description === 'string' ? t.description : `extra target: ${t.name}`,
      role,
      launch: { kind: 'command', command: command as string[] | string, ...(env === undefined ? {} : { env }) },
      ...(headers === undefined ? {} : { headers }),
      ...(t.requires === undefined ? {} : { requires: t.requires as string[] }),
    };
  });
}
