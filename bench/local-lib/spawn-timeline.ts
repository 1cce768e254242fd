// Where a cold start's time goes. The runtime runs in the bench's process, so
// one clock times everything: its log lines (the autoscaler's decision, the
// runtime's readiness probe passing) are stamped as they are logged, and
// child_process.spawn is wrapped (module.syncBuiltinESMExports) so each
// app and queue-proxy spawn is stamped and its port polled every millisecond
// until it accepts connections.
import cp, { type ChildProcess, type SpawnOptions } from 'node:child_process';
import { syncBuiltinESMExports } from 'node:module';
import net from 'node:net';

export interface InstanceTimes {
  revision: string;
  appPort: number;
  appSpawnAt?: number;
  appListenAt?: number;
  qpSpawnAt?: number;
  qpListenAt?: number;
}

export interface LogLine {
  at: number;
  line: string;
}

const POLL_LIMIT_MS = 15_000;

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** Resolves with the time the port first accepted a connection (undefined if the child exited first). */
async function listeningAt(port: number, child: ChildProcess): Promise<number | undefined> {
  const deadline = performance.now() + POLL_LIMIT_MS;
  while (child.exitCode === null && child.signalCode === null && performance.now() < deadline) {
    if (await canConnect(port)) return performance.now();
    await new Promise((r) => setTimeout(r, 1));
  }
  return undefined;
}

export class SpawnTimeline {
  readonly lines: LogLine[] = [];
  readonly instances: InstanceTimes[] = [];
  private echo: ((line: string) => void) | undefined;

  constructor(echo?: (line: string) => void) {
    this.echo = echo;
  }

  /** The runtime's log callback. */
  readonly log = (line: string): void => {
    this.lines.push({ at: performance.now(), line });
    this.echo?.(line);
  };

  /** Wraps child_process.spawn for every module that imported it (the runtime's included). */
  install(): void {
    const original = cp.spawn;
    const wrapped = (command: string, args: readonly string[], options: SpawnOptions): ChildProcess => {
      const at = performance.now();
      const child = (original as (c: string, a: readonly string[], o: SpawnOptions) => ChildProcess)(command, args, options);
      this.spawned(at, args, (options.env ?? {}) as Record<string, string | undefined>, child);
      return child;
    };
    (cp as { spawn: unknown }).spawn = wrapped;
    syncBuiltinESMExports();
  }

  private spawned(at: number, args: readonly string[], env: Record<string, string | undefined>, child: ChildProcess): void {
    const isQueueProxy = args.some((a) => a.endsWith('queue-proxy/dist/main.js'));
    if (isQueueProxy) {
      const appPort = Number(env.USER_PORT);
      const entry = this.entry(env.SERVING_REVISION ?? '', appPort);
      entry.qpSpawnAt = at;
      void listeningAt(Number(env.QUEUE_SERVING_PORT), child).then((t) => { entry.qpListenAt = t; });
    } else if (env.K_REVISION !== undefined && env.PORT !== undefined) {
      const appPort = Number(env.PORT);
      const entry = this.entry(env.K_REVISION, appPort);
      entry.appSpawnAt = at;
      void listeningAt(appPort, child).then((t) => { entry.appListenAt = t; });
    }
  }

  private entry(revision: string, appPort: number): InstanceTimes {
    let e = this.instances.find((i) => i.revision === revision && i.appPort === appPort);
    if (e === undefined) {
      e = { revision, appPort };
      this.instances.push(e);
    }
    return e;
  }

  /** The first instance of `revision` spawned at or after `since`. */
  instanceSince(revision: string, since: number): InstanceTimes | undefined {
    return this.instances.find((i) => i.revision === revision && (i.appSpawnAt ?? i.qpSpawnAt ?? -1) >= since);
  }

  /** Time of the first log line at or after `since` that matches. */
  lineAt(re: RegExp, since: number): number | undefined {
    return this.lines.find((l) => l.at >= since && re.test(l.line))?.at;
  }
}
