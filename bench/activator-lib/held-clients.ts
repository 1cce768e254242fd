// Many concurrent raw HTTP/1.1 clients for the upload-memory part: each one opens its own
// connection, sends a request head (and a body, written at once so it is all queued in the
// kernel and Node's write buffer, as from a client that sends as fast as it may) and waits.
// What each got back is classified: a complete response (status, Retry-After), a reset or
// broken pipe with no response, or nothing yet. Only counters and one small object per
// connection are kept, so thousands of clients stay cheap.
import { connect, type Socket } from 'node:net';

export interface HeldCounts {
  opened: number;
  /** Complete responses by status. */
  statuses: Map<number, number>;
  /** 503s with a Retry-After header. */
  retryAfter503: number;
  /** Connections that ended (reset, EPIPE, EOF) before a complete response. */
  brokenWithoutResponse: number;
  firstError: string | undefined;
}

interface Held {
  socket: Socket;
  received: string;
  done: boolean;
}

export class HeldClients {
  readonly counts: HeldCounts = { opened: 0, statuses: new Map(), retryAfter503: 0, brokenWithoutResponse: 0, firstError: undefined };
  private readonly live = new Set<Held>();
  private readonly port: number;

  constructor(port: number) {
    this.port = port;
  }

  /** Connections still waiting for an answer. */
  get waiting(): number {
    return this.live.size;
  }

  get answered(): number {
    let n = 0;
    for (const v of this.counts.statuses.values()) n += v;
    return n;
  }

  /** Opens one connection and sends a `method` request with `headers` and `body` (null: none). */
  open(headers: Record<string, string>, method: string, body: Buffer | null): void {
    const socket = connect({ host: '127.0.0.1', port: this.port });
    const held: Held = { socket, received: '', done: false };
    this.live.add(held);
    this.counts.opened++;
    let head = `${method} / HTTP/1.1\r\nhost: bench\r\n`;
    for (const [k, v] of Object.entries(headers)) head += `${k}: ${v}\r\n`;
    if (body !== null) head += `content-length: ${body.length}\r\n`;
    socket.write(`${head}\r\n`);
    if (body !== null) socket.write(body);
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      held.received += chunk;
      const status = completeStatus(held.received);
      if (status !== 0) this.finish(held, status);
    });
    const broken = (err?: Error): void => {
      if (held.done) return;
      this.counts.brokenWithoutResponse++;
      this.counts.firstError ??= err === undefined ? 'EOF' : ((err as NodeJS.ErrnoException).code ?? err.message);
      held.done = true;
      this.live.delete(held);
      socket.destroy();
    };
    socket.on('error', broken);
    socket.on('close', () => broken());
  }

  /** Aborts every connection still waiting, with a RST if `reset` (they are not counted as broken). */
  abortAll(reset = false): number {
    const n = this.live.size;
    for (const held of this.live) {
      held.done = true;
      if (reset) held.socket.resetAndDestroy();
      else held.socket.destroy();
    }
    this.live.clear();
    return n;
  }

  private finish(held: Held, status: number): void {
    held.done = true;
    this.live.delete(held);
    this.counts.statuses.set(status, (this.counts.statuses.get(status) ?? 0) + 1);
    if (status === 503 && /\r\nretry-after: *\d+/i.test(held.received)) this.counts.retryAfter503++;
    held.socket.destroy();
  }
}

/** The status of a complete response (head and Content-Length body) in `text`, else 0. */
function completeStatus(text: string): number {
  const end = text.indexOf('\r\n\r\n');
  if (end < 0) return 0;
  const length = /\r\ncontent-length: *(\d+)/i.exec(text.slice(0, end));
  if (length !== null && text.length - end - 4 < Number(length[1])) return 0;
  return Number(/^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1] ?? 0);
}
