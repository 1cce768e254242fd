// Hand-rolled protobuf codec for the autoscaler's stat.proto (spec §3.1):
// Stat, WireStatMessage, WireStatMessages. proto3: zero values are omitted,
// fields are written in ascending order as gogo-protobuf does.

export interface Stat {
  podName: string
  averageConcurrentRequests: number
  averageProxiedConcurrentRequests: number
  requestCount: number
  proxiedRequestCount: number
  processUptime: number
  /** Unix seconds; 0 means "stamp on receipt". */
  timestamp: number
}

export interface WireStatMessage {
  namespace: string
  name: string
  stat: Stat | undefined
}

export function emptyStat(podName = ''): Stat {
  return {
    podName,
    averageConcurrentRequests: 0,
    averageProxiedConcurrentRequests: 0,
    requestCount: 0,
    proxiedRequestCount: 0,
    processUptime: 0,
    timestamp: 0,
  }
}

class Writer {
  private buf: Buffer
  private pos = 0
  constructor(size = 128) {
    this.buf = Buffer.allocUnsafe(size)
  }
  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n))
    this.buf.copy(next, 0, 0, this.pos)
    this.buf = next
  }
  varint(v: number): void {
    this.ensure(10)
    // Negative int64 values use ten bytes of two's complement.
    let n = BigInt.asUintN(64, BigInt(Math.trunc(v)))
    if (n < 0x80n) {
      this.buf[this.pos++] = Number(n)
      return
    }
    while (n >= 0x80n) {
      this.buf[this.pos++] = Number(n & 0x7fn) | 0x80
      n >>= 7n
    }
    this.buf[this.pos++] = Number(n)
  }
  smallVarint(v: number): void {
    this.ensure(5)
    while (v >= 0x80) {
      this.buf[this.pos++] = (v & 0x7f) | 0x80
      v >>>= 7
    }
    this.buf[this.pos++] = v
  }
  double(tag: number, v: number): void {
    if (v === 0) return
    this.ensure(9)
    this.buf[this.pos++] = tag
    this.buf.writeDoubleLE(v, this.pos)
    this.pos += 8
  }
  string(tag: number, s: string): void {
    if (s === '') return
    const len = Buffer.byteLength(s)
    this.ensure(len + 6)
    this.buf[this.pos++] = tag
    this.smallVarint(len)
    this.pos += this.buf.write(s, this.pos)
  }
  bytes(tag: number, b: Uint8Array): void {
    this.ensure(b.length + 6)
    this.buf[this.pos++] = tag
    this.smallVarint(b.length)
    this.buf.set(b, this.pos)
    this.pos += b.length
  }
  tag(t: number): void {
    this.ensure(1)
    this.buf[this.pos++] = t
  }
  finish(): Buffer {
    return this.buf.subarray(0, this.pos)
  }
}

function writeStat(w: Writer, s: Stat): void {
  w.string(0x0a, s.podName)
  w.double(0x11, s.averageConcurrentRequests)
  w.double(0x19, s.averageProxiedConcurrentRequests)
  w.double(0x21, s.requestCount)
  w.double(0x29, s.proxiedRequestCount)
  w.double(0x31, s.processUptime)
  if (s.timestamp !== 0) {
    w.tag(0x38)
    w.varint(s.timestamp)
  }
}

export function encodeStat(s: Stat): Buffer {
  const w = new Writer(64 + s.podName.length * 3)
  writeStat(w, s)
  return w.finish()
}

export function encodeWireStatMessages(msgs: readonly WireStatMessage[]): Buffer {
  const w = new Writer(256)
  for (const m of msgs) {
    const inner = new Writer(128)
    inner.string(0x0a, m.namespace)
    inner.string(0x12, m.name)
    if (m.stat !== undefined) inner.bytes(0x1a, encodeStat(m.stat))
    w.bytes(0x0a, inner.finish())
  }
  return w.finish()
}

// ---- decoding (autoscaler side: tests and the local autoscaler) ----

export class ProtoDecodeError extends Error {
  override name = 'ProtoDecodeError'
}

class Reader {
  pos: number
  readonly end: number
  readonly buf: Uint8Array
  constructor(buf: Uint8Array, start = 0, end = buf.length) {
    this.buf = buf
    this.pos = start
    this.end = end
  }
  get done(): boolean {
    return this.pos >= this.end
  }
  varint(): bigint {
    let result = 0n
    let shift = 0n
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new ProtoDecodeError('truncated varint')
      const b = this.buf[this.pos++]!
      result |= BigInt(b & 0x7f) << shift
      if ((b & 0x80) === 0) return result
      shift += 7n
    }
    throw new ProtoDecodeError('varint too long')
  }
  length(): number {
    const n = Number(this.varint())
    if (this.pos + n > this.end) throw new ProtoDecodeError('truncated length-delimited field')
    return n
  }
  double(): number {
    if (this.pos + 8 > this.end) throw new ProtoDecodeError('truncated double')
    const v = Buffer.from(this.buf.buffer, this.buf.byteOffset + this.pos, 8).readDoubleLE(0)
    this.pos += 8
    return v
  }
  skip(wireType: number): void {
    switch (wireType) {
      case 0: this.varint(); return
      case 1: this.pos += 8; break
      case 2: {
        // Not `this.pos += this.length()`: that reads pos before length()
        // has moved it past the length varint.
        const n = this.length()
        this.pos += n
        return
      }
      case 5: this.pos += 4; break
      default: throw new ProtoDecodeError(`unsupported wire type ${wireType}`)
    }
    if (this.pos > this.end) throw new ProtoDecodeError('truncated field')
  }
  string(): string {
    const n = this.length()
    const s = Buffer.from(this.buf.buffer, this.buf.byteOffset + this.pos, n).toString('utf8')
    this.pos += n
    return s
  }
}

function readStat(r: Reader): Stat {
  const s = emptyStat()
  while (!r.done) {
    const key = Number(r.varint())
    const field = key >>> 3
    const wt = key & 7
    if (field === 1 && wt === 2) s.podName = r.string()
    else if (field >= 2 && field <= 6 && wt === 1) {
      const v = r.double()
      if (field === 2) s.averageConcurrentRequests = v
      else if (field === 3) s.averageProxiedConcurrentRequests = v
      else if (field === 4) s.requestCount = v
      else if (field === 5) s.proxiedRequestCount = v
      else s.processUptime = v
    } else if (field === 7 && wt === 0) s.timestamp = Number(BigInt.asIntN(64, r.varint()))
    else r.skip(wt)
  }
  return s
}

export function decodeStat(buf: Uint8Array): Stat {
  return readStat(new Reader(buf))
}

export function decodeWireStatMessages(buf: Uint8Array): WireStatMessage[] {
  const out: WireStatMessage[] = []
  const r = new Reader(buf)
  while (!r.done) {
    const key = Number(r.varint())
    if (key >>> 3 !== 1 || (key & 7) !== 2) {
      r.skip(key & 7)
      continue
    }
    const len = r.length()
    const m: WireStatMessage = { namespace: '', name: '', stat: undefined }
    const inner = new Reader(buf, r.pos, r.pos + len)
    r.pos += len
    while (!inner.done) {
      const k = Number(inner.varint())
      const f = k >>> 3
      if (f === 1 && (k & 7) === 2) m.namespace = inner.string()
      else if (f === 2 && (k & 7) === 2) m.name = inner.string()
      else if (f === 3 && (k & 7) === 2) {
        const n = inner.length()
        m.stat = readStat(new Reader(buf, inner.pos, inner.pos + n))
        inner.pos += n
      } else inner.skip(k & 7)
    }
    out.push(m)
  }
  return out
}
