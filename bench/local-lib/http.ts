// One timed GET with a fresh connection, never rejecting: status 0 carries the error.
import { request } from 'node:http';

export interface Reply {
  status: number;
  body: string;
  /** performance.now() when the request was sent and when its response had been read. */
  sentAt: number;
  doneAt: number;
}

export function timedGet(url: string, host: string, timeoutMs: number): Promise<Reply> {
  const sentAt = performance.now();
  return new Promise((resolve) => {
    const done = (status: number, body: string): void => resolve({ status, body, sentAt, doneAt: performance.now() });
    const req = request(url, { headers: { host }, agent: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => done(res.statusCode ?? 0, body));
      res.on('error', (err) => done(0, err.message));
    });
    req.on('timeout', () => req.destroy(new Error(`no response within ${timeoutMs} ms`)));
    req.on('error', (err) => done(0, err.message));
    req.end();
  });
}
