// Starts one target on the proxy CPU and tells which processes to measure.
import { join } from 'node:path';
import { start, stop, logTail, type Child } from './children.ts';
import { freePort, pollUntilOk } from './net.ts';
import { nginxCommand, proxyConfig } from './nginx-config.ts';
import { processTree } from './proc.ts';
import type { CommandLaunch, TargetSpec } from './targets.ts';
import type { Tools } from './tools.ts';

export interface LaunchContext {
  tools: Tools;
  /** Real path of the repo's Node 24 binary (the {node} placeholder). */
  node: string;
  repo: string;
  results: string;
  backendPort: number;
  /** CPU the proxy is pinned to. */
  cpu: number;
  /** Scratch directory for configs and logs. */
  workDir: string;
  /** Insert --cpu-prof after a leading {node} and stop gracefully so the profile gets written. */
  profile: boolean;
}

export interface RunningTarget {
  port: number;
  /** Undefined for the direct target (nothing is started). */
  child: Child | undefined;
  /** performance.now() just before the spawn. */
  spawnedAt: number;
  /** Processes whose utime+stime count as the target's CPU. */
  cpuPids(): number[];
  /** Processes whose RSS counts (nginx: the worker, not the idle master). */
  memoryPids(): number[];
  stop(): Promise<void>;
}

let launches = 0;

async function substitute(text: string, values: Record<string, string>): Promise<string> {
  let out = text;
  for (const [key, value] of Object.entries(values)) out = out.split(`{${key}}`).join(value);
  while (out.includes('{free}')) out = out.replace('{free}', String(await freePort()));
  return out;
}

async function commandArgv(name: string, launch: CommandLaunch, ctx: LaunchContext, values: Record<string, string>): Promise<string[]> {
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const profileFlags = ['--cpu-prof', '--cpu-prof-dir', ctx.results, '--cpu-prof-name', `${name}-${stamp}.cpuprofile`];
  if (typeof launch.command === 'string') {
    let line = launch.command.trim();
    if (ctx.profile && line.startsWith('{node} ')) line = `{node} ${profileFlags.join(' ')} ${line.slice(7)}`;
    return ['sh', '-c', `exec ${await substitute(line, values)}`];
  }
  const argv = [...launch.command];
  if (ctx.profile && argv[0] === '{node}') argv.splice(1, 0, ...profileFlags);
  const out: string[] = [];
  for (const arg of argv) out.push(await substitute(arg, values));
  return out;
}

/** Spawns the target (pinned with taskset) without waiting for it to answer. */
export async function spawnTarget(spec: TargetSpec, ctx: LaunchContext): Promise<RunningTarget> {
  const launch = spec.launch;
  if (launch === undefined) {
    return {
      port: ctx.backendPort,
      child: undefined,
      spawnedAt: performance.now(),
      cpuPids: () => [],
      memoryPids: () => [],
      stop: async () => {},
    };
  }
  const n = ++launches;
  const port = await freePort();
  const pin = [ctx.tools.taskset, '-c', String(ctx.cpu)];
  let argv: string[];
  let env: NodeJS.ProcessEnv = process.env;
  let logFile = join(ctx.workDir, `${spec.name}-${n}.log`);
  if (launch.kind === 'nginx') {
    const dir = join(ctx.workDir, `${spec.name}-${n}`);
    argv = nginxCommand(ctx.tools.nginx, dir, proxyConfig(dir, port, ctx.backendPort));
    logFile = join(dir, 'error.log'); // nginx's output and its error_log share one file
  } else {
    const values = { node: ctx.node, repo: ctx.repo, port: String(port), backend_port: String(ctx.backendPort), results: ctx.results };
    argv = await commandArgv(spec.name, launch, ctx, values);
    env = { ...process.env };
    for (const [key, value] of Object.entries(launch.env ?? {})) env[key] = await substitute(value, values);
  }
  const spawnedAt = performance.now();
  const child = start([...pin, ...argv], { env, cwd: ctx.repo, logFile });
  const graceful = ctx.profile && launch.kind === 'command';
  return {
    port,
    child,
    spawnedAt,
    cpuPids: () => processTree(child.pid),
    memoryPids: () => {
      const tree = processTree(child.pid);
      return launch.kind === 'nginx' && tree.length > 1 ? tree.slice(1) : tree;
    },
    // A profile is only written when the process exits by itself: SIGTERM starts the drain,
    // the second SIGTERM asks for an immediate exit.
    stop: () => stop(child, graceful ? { signals: ['SIGTERM', 'SIGTERM'], gapMs: 500, timeoutMs: 40_000 } : undefined),
  };
}

/** Spawns the target and waits for the first 200 through it; returns it with the start-up time. */
export async function launchTarget(
  spec: TargetSpec,
  ctx: LaunchContext,
  timeoutMs = 15_000,
): Promise<{ target: RunningTarget; startupMs: number; body: string }> {
  const target = await spawnTarget(spec, ctx);
  const child = target.child;
  try {
    const reply = await pollUntilOk(target.port, spec.headers ?? {}, timeoutMs, () =>
      child !== undefined && child.exitStatus !== undefined ? `${spec.name} exited with ${child.exitStatus}` : undefined,
    );
    return { target, startupMs: performance.now() - target.spawnedAt, body: reply.body };
  } catch (err) {
    await target.stop();
    const tail = child === undefined ? '' : logTail(child);
    throw new Error(`${spec.name} did not come up: ${(err as Error).message}${tail === '' ? '' : `\n--- ${child?.logFile} (tail) ---\n${tail}`}`, { cause: err });
  }
}
