// Every process the bench starts goes through here, so none outlives the harness: each child
// leads its own process group (nginx master + workers die together), and exit, errors and
// SIGINT/SIGTERM kill every group still alive.
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync, readFileSync } from 'node:fs';

export interface Child {
  readonly pid: number;
  readonly process: ChildProcess;
  /** Resolves with the exit code (or the signal name) once the process has exited. */
  readonly exited: Promise<number | string>;
  /** Set once the process has exited. */
  exitStatus: number | string | undefined;
  readonly logFile: string | undefined;
}

const live = new Set<Child>();
const exitHooks: (() => void)[] = [];

/** Registers a synchronous clean-up that runs when the process exits, after the children are killed. */
export function atExit(hook: () => void): void {
  exitHooks.push(hook);
}

function killGroup(child: Child, signal: NodeJS.Signals): void {
  try {
    process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}

/** Sends SIGKILL to every live child group; synchronous so it can run in an 'exit' handler. */
export function killAll(): void {
  for (const child of live) killGroup(child, 'SIGKILL');
  live.clear();
}

let installed = false;

/** Installs the exit, error and signal handlers that call killAll(). Call once at start-up. */
export function killChildrenOnExit(): void {
  if (installed) return;
  installed = true;
  process.on('exit', () => {
    killAll();
    for (const hook of exitHooks) {
      try {
        hook();
      } catch {
        // best effort while exiting
      }
    }
  });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, () => {
      process.stderr.write(`\nbench: ${signal} received, stopping ${live.size} child process group(s)\n`);
      killAll();
      process.exit(signal === 'SIGINT' ? 130 : 143);
    });
  }
  process.on('uncaughtException', (err) => {
    process.stderr.write(`bench: ${err.stack ?? String(err)}\n`);
    killAll();
    process.exit(1);
  });
  process.on('unhandledRejection', (err) => {
    process.stderr.write(`bench: unhandled rejection: ${err instanceof Error ? err.stack : String(err)}\n`);
    killAll();
    process.exit(1);
  });
}

export interface StartOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** stdout and stderr go to this file; without it stdout is piped (read it from child.process.stdout). */
  logFile?: string;
}

/** Starts argv[0] with argv[1..] in a new process group and registers it for clean-up. */
export function start(argv: readonly string[], options: StartOptions = {}): Child {
  const [file, ...args] = argv;
  if (file === undefined) throw new Error('start: empty argv');
  const logFd = options.logFile === undefined ? undefined : openSync(options.logFile, 'a');
  const proc = spawn(file, args, {
    cwd: options.cwd,
    env: options.env ?? process.env,
    detached: true, // own process group: kill(-pid) reaches its children too
    stdio: logFd === undefined ? ['ignore', 'pipe', 'pipe'] : ['ignore', logFd, logFd],
  });
  if (logFd !== undefined) closeSync(logFd);
  if (proc.pid === undefined) {
    // spawn failed synchronously (ENOENT is reported via 'error' with pid undefined)
    throw new Error(`cannot start ${file}: is it installed and executable?`);
  }
  const child: Child = {
    pid: proc.pid,
    process: proc,
    exitStatus: undefined,
    logFile: options.logFile,
    exited: new Promise((resolve) => {
      proc.on('exit', (code, signal) => {
        live.delete(child);
        child.exitStatus = code ?? signal ?? 'unknown';
        resolve(child.exitStatus);
      });
    }),
  };
  proc.on('error', (err) => process.stderr.write(`bench: ${file}: ${err.message}\n`));
  live.add(child);
  return child;
}

/** Kills the child's process group: SIGKILL right away, or a signal sequence for a graceful exit. */
export async function stop(child: Child, graceful?: { signals: NodeJS.Signals[]; gapMs: number; timeoutMs: number }): Promise<void> {
  if (child.exitStatus !== undefined) return;
  if (graceful !== undefined) {
    const deadline = Date.now() + graceful.timeoutMs;
    for (const signal of graceful.signals) {
      if (child.exitStatus !== undefined) return;
      killGroup(child, signal);
      await Promise.race([child.exited, sleep(graceful.gapMs)]);
    }
    await Promise.race([child.exited, sleep(Math.max(0, deadline - Date.now()))]);
    if (child.exitStatus !== undefined) return;
  }
  killGroup(child, 'SIGKILL');
  await child.exited;
}

/** Last lines of the child's log file, for error messages. */
export function logTail(child: Child, lines = 15): string {
  if (child.logFile === undefined) return '';
  try {
    return readFileSync(child.logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Everything the child writes to stdout and stderr (started with pipes), once both close. */
export function collectOutput(child: Child): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    let open = 2;
    const done = (): void => {
      if (--open === 0) resolve(text);
    };
    for (const stream of [child.process.stdout, child.process.stderr]) {
      if (stream === null) {
        done();
        continue;
      }
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => (text += chunk));
      stream.on('close', done);
    }
  });
}
