// A stand-in Zipkin collector for the tracing part: accepts POST /api/v2/spans with 202, as
// Zipkin does, and counts what arrives. It runs in the harness (on the load CPU), so it must
// cost little: spans are counted by scanning the body for `"traceId"` (one per span in Zipkin's
// JSON v2), never parsed.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export const SPANS_PATH = '/api/v2/spans';
const SPAN_KEY = Buffer.from('"traceId"');

export interface ZipkinReceiver {
  /** The URL for TRACING_CONFIG_ZIPKIN_ENDPOINT. */
  readonly endpoint: string;
  /** Spans received so far. */
  spans(): number;
  /** POSTs received so far. */
  posts(): number;
  close(): Promise<void>;
}

function countSpans(chunks: readonly Buffer[]): number {
  const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
  let n = 0;
  for (let i = body.indexOf(SPAN_KEY); i >= 0; i = body.indexOf(SPAN_KEY, i + SPAN_KEY.length)) n++;
  return n;
}

export async function startZipkinReceiver(): Promise<ZipkinReceiver> {
  let spans = 0;
  let posts = 0;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    if (req.method !== 'POST' || req.url !== SPANS_PATH) {
      req.resume();
      res.writeHead(404).end();
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      posts++;
      spans += countSpans(chunks);
      res.writeHead(202).end();
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}${SPANS_PATH}`,
    spans: () => spans,
    posts: () => posts,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
