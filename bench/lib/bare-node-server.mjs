// The bench's floor: the least a Node HTTP server can be. Answers every request 200 with BODY
// (the backend's body, passed in by bench/lib/targets.ts) on 127.0.0.1:PORT, without proxying.
// JavaScript, not TypeScript, so its start-up and RSS carry no type stripping. node:http is
// taken with process.getBuiltinModule, as Sluice takes it: an ESM `import` of node:http
// evaluates its lazy WebSocket getter, which loads Node's bundled undici, crypto and tls
// (~10 MiB resident, measured) that a plain server never uses.
const { createServer } = process.getBuiltinModule('node:http');

const body = process.env.BODY ?? '';
createServer((req, res) => {
  req.resume(); // discard any request body
  res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}).listen(Number(process.env.PORT), '127.0.0.1');
