// The user container of the activator bench, run as its own process:
//   PORT=<port> DELAY_MS=<ms> node bench/activator-lib/delay-app.ts
// Answers every request with 200 and the backend's 13-byte body after DELAY_MS (0: at once).
// Plain node:http and no imports beyond it, so its start-up is what a small Node app costs.
import { createServer } from 'node:http';

const port = Number(process.env.PORT);
const delayMs = Number(process.env.DELAY_MS ?? '0');
if (!Number.isInteger(port) || port <= 0 || !(delayMs >= 0)) {
  process.stderr.write('delay-app: set PORT (a port) and DELAY_MS (>= 0)\n');
  process.exit(2);
}

const BODY = 'Hello World!\n';
const HEADERS = { 'content-type': 'text/plain', 'content-length': String(BODY.length) };

const server = createServer((req, res) => {
  req.resume();
  if (delayMs === 0) {
    res.writeHead(200, HEADERS).end(BODY);
    return;
  }
  const timer = setTimeout(() => res.writeHead(200, HEADERS).end(BODY), delayMs);
  res.once('close', () => clearTimeout(timer)); // client gone: nothing to answer
});
server.keepAliveTimeout = 300_000;
server.listen(port, '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));
