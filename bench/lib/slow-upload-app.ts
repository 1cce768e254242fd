// The slowly reading app behind the backend nginx's upload location (runs in the harness):
// reads each request body at a bounded rate and answers 200 with the number of bytes it got.
import { createServer } from 'node:http';
import { readPaced } from './pace.ts';

export interface SlowUploadApp {
  port: number;
  close(): Promise<void>;
}

export function startSlowUploadApp(bytesPerSecond: number): Promise<SlowUploadApp> {
  const server = createServer((req, res) => {
    readPaced(req, bytesPerSecond).then(
      (bytes) => {
        res.writeHead(200, { 'Content-Type': 'text/plain' });
        res.end(String(bytes));
      },
      () => res.destroy(),
    );
  });
  server.requestTimeout = 0; // a 256 MiB body read slowly takes longer than the 300 s default
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      resolve({
        port: typeof address === 'object' && address !== null ? address.port : 0,
        close: () => {
          server.closeAllConnections();
          return new Promise((done) => server.close(() => done()));
        },
      });
    });
  });
}
