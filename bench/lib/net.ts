// Loopback helpers: free ports, single HTTP GETs, and the tight poll used to time start-up.
import { createServer } from 'node:net';
import { request } from 'node:http';

/** A port that was free a moment ago (bound to 127.0.0.1:0, then released). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export interface Reply {
  status: number;
  body: string;
}

/** One GET on a fresh connection; rejects on connection errors or after timeoutMs. */
export function get(port: number, headers: Record<string, string> = {}, timeoutMs = 2000): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path: '/', method: 'GET', headers, agent: false, timeout: timeoutMs },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`GET 127.0.0.1:${port} timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/**
 * GETs 127.0.0.1:port in a tight loop until a 200 arrives; returns that reply.
 * Connection refusals are retried at once (that is the start-up window being timed);
 * `abort` returning a message stops the loop (e.g. the process under test exited).
 */
export async function pollUntilOk(
  port: number,
  headers: Record<string, string>,
  timeoutMs: number,
  abort: () => string | undefined,
): Promise<Reply> {
  const deadline = performance.now() + timeoutMs;
  let last: string;
  for (;;) {
    try {
      const reply = await get(port, headers, Math.max(1, deadline - performance.now()));
      if (reply.status === 200) return reply;
      last = `HTTP ${reply.status} ${JSON.stringify(reply.body.slice(0, 120))}`;
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    const aborted = abort();
    if (aborted !== undefined) throw new Error(aborted);
    if (performance.now() > deadline) {
      throw new Error(`127.0.0.1:${port} gave no 200 within ${timeoutMs} ms (last: ${last})`);
    }
    await new Promise((resolve) => setImmediate(resolve));
  }
}
