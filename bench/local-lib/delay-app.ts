// The load part's app: answers 200 after DELAY_MS on $PORT, so the requests
// in flight — what the KPA scales on — sit in the app, not in the proxies.
import http from 'node:http';

const port = Number(process.env.PORT ?? 8080);
const delay = Number(process.env.DELAY_MS ?? 50);
const body = 'ok\n';

const server = http.createServer((_req, res) => {
  setTimeout(() => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length });
    res.end(body);
  }, delay);
});
server.listen(port, '127.0.0.1');
process.on('SIGTERM', () => server.close(() => process.exit(0)));
