// The targets the bench compares, as data. Built-ins: the backend itself, nginx as a reverse
// proxy, and Sluice's queue-proxy; more (e.g. the activator) come from --extra-target or the
// BENCH_EXTRA_TARGET environment variable as JSON in the same shape as TargetSpec.

/**
 * direct: wrk loads the backend itself (the latency floor);
 * baseline: the proxy that CPU per request is compared with (nginx);
 * proxy: a proxy measured against the goals.
 */
export type TargetRole = 'direct' | 'baseline' | 'proxy';

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
}

export const QUEUE_PROXY_MAIN = 'packages/queue-proxy/dist/main.js';

export const BUILTIN_TARGETS: readonly TargetSpec[] = [
  { name: 'direct', description: 'wrk -> backend nginx', role: 'direct' },
  {
    name: 'nginx',
    description: 'nginx reverse proxy (keep-alive upstream), 1 worker',
    role: 'baseline',
    launch: { kind: 'nginx' },
  },
  {
    name: 'queue-proxy',
    description: 'Sluice queue-proxy (node dist/main.js)',
    role: 'proxy',
    requires: [QUEUE_PROXY_MAIN],
    launch: {
      kind: 'command',
      command: ['{node}', QUEUE_PROXY_MAIN],
      env: {
        SERVING_NAMESPACE: 'bench',
        SERVING_SERVICE: 'bench',
        SERVING_CONFIGURATION: 'bench',
        SERVING_REVISION: 'bench-00001',
        SERVING_POD: 'bench-pod',
        SERVING_POD_IP: '127.0.0.1',
        QUEUE_SERVING_PORT: '{port}',
        QUEUE_SERVING_TLS_PORT: '8112',
        USER_PORT: '{backend_port}',
        CONTAINER_CONCURRENCY: '0',
        REVISION_TIMEOUT_SECONDS: '300',
        SERVING_LOGGING_CONFIG: '',
        SERVING_LOGGING_LEVEL: 'warn',
        SERVING_READINESS_PROBE: '{"tcpSocket":{"port":{backend_port},"host":"127.0.0.1"},"successThreshold":1}',
        SLUICE_ADMIN_PORT: '{free}',
        SLUICE_METRICS_PORT: '{free}',
        SLUICE_USER_METRICS_PORT: '{free}',
      },
    },
  },
];

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
