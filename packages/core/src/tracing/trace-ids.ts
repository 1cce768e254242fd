// Trace and span ids as lower-case hex, cut from a pool of random bytes
// refilled 4 KiB at a time (one randomFillSync per ~170 requests, one native
// hex conversion per id); and an id generator for the SDK that hands out a
// trace id chosen beforehand: the sampling decision is made before any span
// object exists (tracer.ts), and a sampled root span must then carry the id
// the request already has.
import { randomFillSync } from 'node:crypto'
import type { IdGenerator } from '@opentelemetry/sdk-trace-base'

const pool = Buffer.allocUnsafe(4096)
let at = pool.length

function randomHex(bytes: number): string {
  if (at + bytes > pool.length) {
    randomFillSync(pool)
    at = 0
  }
  const id = pool.toString('hex', at, at + bytes)
  at += bytes
  // All zeros is the invalid id (W3C); one chance in 2^64, but never send it.
  return id.charCodeAt(0) === 48 /* '0' */ && /^0+$/.test(id) ? randomHex(bytes) : id
}

export function newTraceId(): string {
  return randomHex(16)
}

export function newSpanId(): string {
  return randomHex(8)
}

export class PresetIdGenerator implements IdGenerator {
  /** Used by the next generateTraceId() call, then cleared. */
  next: string | null = null

  generateTraceId(): string {
    const id = this.next
    if (id === null) return newTraceId()
    this.next = null
    return id
  }

  generateSpanId(): string {
    return newSpanId()
  }
}
