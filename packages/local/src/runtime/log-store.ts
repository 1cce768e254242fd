// What `sluice logs` reads: the output of every instance (app and its
// queue-proxy) in a bounded buffer per instance, plus per revision the
// activator's and the runtime's lines that name it. Buffers of stopped
// instances are kept (a revision at zero still has logs to read), up to a
// bounded number per service.

export interface LogLine {
  /** Date.now() when the line arrived. */
  t: number
  revision: string
  /** "helloworld-00001-001", "helloworld-00001-001 queue-proxy", "activator" or "sluice". */
  source: string
  text: string
}

export interface LogQuery {
  /** "<namespace>/<name>" of the Service. */
  service: string
  revision?: string
}

interface Buffer {
  service: string
  lines: LogLine[]
  /** Next slot to overwrite once full (a ring). */
  next: number
}

export const LINES_PER_BUFFER = 1000
/** Instance buffers kept per service; the oldest go first. */
export const BUFFERS_PER_SERVICE = 64

export class LogStore {
  private readonly buffers = new Map<string, Buffer>()
  private readonly followers = new Set<{ q: LogQuery; write: (l: LogLine) => void }>()
  private readonly linesPerBuffer: number

  constructor(linesPerBuffer = LINES_PER_BUFFER) {
    this.linesPerBuffer = linesPerBuffer
  }

  /** Adds one line to the buffer `key` (an instance id, or "<revision>/activator"). */
  add(service: string, key: string, line: LogLine): void {
    let b = this.buffers.get(key)
    if (b === undefined) {
      b = { service, lines: [], next: 0 }
      this.buffers.set(key, b)
      this.trim(service)
    }
    if (b.lines.length < this.linesPerBuffer) b.lines.push(line)
    else {
      b.lines[b.next] = line
      b.next = (b.next + 1) % this.linesPerBuffer
    }
    for (const f of this.followers) if (matches(f.q, service, line)) f.write(line)
  }

  /** The buffered lines for a service (or one of its revisions), oldest first. */
  read(q: LogQuery): LogLine[] {
    const out: LogLine[] = []
    for (const b of this.buffers.values()) {
      if (b.service !== q.service) continue
      const ordered = b.next === 0 ? b.lines : [...b.lines.slice(b.next), ...b.lines.slice(0, b.next)]
      for (const l of ordered) if (q.revision === undefined || l.revision === q.revision) out.push(l)
    }
    // Stable: lines of one buffer that arrived in the same millisecond keep their order.
    return out.sort((a, b) => a.t - b.t)
  }

  /** Calls `write` with every new line for the query until the returned function is called. */
  follow(q: LogQuery, write: (l: LogLine) => void): () => void {
    const f = { q, write }
    this.followers.add(f)
    return () => this.followers.delete(f)
  }

  /** Forgets a deleted service's buffers. */
  dropService(service: string): void {
    for (const [k, b] of this.buffers) if (b.service === service) this.buffers.delete(k)
  }

  private trim(service: string): void {
    let n = 0
    for (const b of this.buffers.values()) if (b.service === service) n++
    if (n <= BUFFERS_PER_SERVICE) return
    // Map order is insertion order: the first one of the service is the oldest.
    for (const [k, b] of this.buffers) {
      if (b.service === service) {
        this.buffers.delete(k)
        return
      }
    }
  }
}

function matches(q: LogQuery, service: string, l: LogLine): boolean {
  return q.service === service && (q.revision === undefined || q.revision === l.revision)
}

/** "[helloworld-00001-001] listening on 8080", as `sluice logs` prints a line. */
export function formatLogLine(l: LogLine): string {
  return `[${l.source}] ${l.text}`
}
