// The backend every target forwards to: nginx returning 200 + 13 bytes, pinned to the load CPU.
import { join } from 'node:path';
import { start, logTail, type Child } from './children.ts';
import { freePort, pollUntilOk } from './net.ts';
import { BACKEND_BODY, backendConfig, nginxCommand, type BackendExtras } from './nginx-config.ts';
import type { Tools } from './tools.ts';

export interface Backend {
  port: number;
  child: Child;
}

export async function startBackend(tools: Tools, workDir: string, cpu: number, extras?: BackendExtras): Promise<Backend> {
  const port = await freePort();
  const dir = join(workDir, 'backend');
  const argv = nginxCommand(tools.nginx, dir, backendConfig(dir, port, extras));
  // nginx's own output and its error_log share one file (both append).
  const child = start([tools.taskset, '-c', String(cpu), ...argv], { logFile: join(dir, 'error.log') });
  try {
    const reply = await pollUntilOk(port, {}, 10_000, () =>
      child.exitStatus !== undefined ? `backend nginx exited with ${child.exitStatus}` : undefined,
    );
    if (reply.body !== BACKEND_BODY) {
      throw new Error(`backend answered ${JSON.stringify(reply.body)}, expected ${JSON.stringify(BACKEND_BODY)}`);
    }
  } catch (err) {
    throw new Error(`backend nginx did not come up: ${(err as Error).message}\n--- ${child.logFile} ---\n${logTail(child)}`, { cause: err });
  }
  return { port, child };
}
