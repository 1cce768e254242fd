// Times when a freshly spawned process starts accepting connections: connect to its port,
// and on a refusal try again 1 ms later.
import { connect } from 'node:net';

/**
 * Resolves with performance.now() at the first accepted connection to 127.0.0.1:port.
 * Rejects after timeoutMs, or when `abort` returns a message (e.g. the process exited).
 */
export function waitForPort(port: number, timeoutMs: number, abort: () => string | undefined = () => undefined): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const attempt = (): void => {
      const socket = connect({ host: '127.0.0.1', port });
      socket.once('connect', () => {
        const at = performance.now();
        socket.destroy();
        resolve(at);
      });
      socket.once('error', (err) => {
        socket.destroy();
        const aborted = abort();
        if (aborted !== undefined) reject(new Error(aborted));
        else if (performance.now() > deadline) reject(new Error(`127.0.0.1:${port} not accepting after ${timeoutMs} ms (${err.message})`));
        else setTimeout(attempt, 1);
      });
    };
    attempt();
  });
}
