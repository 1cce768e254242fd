// Keeps streamed bodies from piling up outside the JavaScript heap.
//
// Every socket read is a fresh 64 KiB buffer, but the JavaScript objects
// around it are tiny, so a body streaming through the proxy allocates almost
// nothing on the heap and triggers no scavenge; V8 frees the buffers only once
// their total passes its external-memory limit (64 MiB over the last GC).
// Measured: a 256 MiB upload through the queue-proxy held 65 MiB of dead
// buffers, and glibc kept the pages after they were freed (peak RSS 190 MiB).
// So a young-generation GC (~0.3 ms; it frees the buffers that died young)
// runs after every 8 MiB of response body, and, while request bodies stream,
// whenever a check every 100 ms finds more than 8 MiB of buffers outside the heap.
// A 13-byte GET never triggers either.
//
// The gc function is only reachable with --expose-gc, which would have to be
// on the command line of every start path; a context created while the flag
// is set gets one, so it is taken from there, once, when first needed.

const EVERY_BYTES = 8 * 1024 * 1024
const CHECK_MS = 100

type GcFunction = (options: { type: 'minor' | 'major' }) => void

let moved = 0
let gc: GcFunction | null | undefined
let uploads = 0
let watch: NodeJS.Timeout | null = null

/** Counts response body bytes that went through; every 8 MiB, a scavenge. */
export function bodyBytes(n: number): void {
  moved += n
  if (moved < EVERY_BYTES) return
  moved = 0
  scavenge()
}

/** A request body starts streaming upstream: watch external memory until it ends. */
export function uploadStarted(): void {
  if (uploads++ === 0) {
    watch = setInterval(checkExternal, CHECK_MS)
    watch.unref()
  }
}

export function uploadEnded(): void {
  if (--uploads === 0 && watch !== null) {
    clearInterval(watch)
    watch = null
  }
}

function checkExternal(): void {
  if (process.getBuiltinModule('node:v8').getHeapStatistics().external_memory > EVERY_BYTES) scavenge()
}

function scavenge(): void {
  gc ??= loadGc()
  if (gc !== null) gc({ type: 'minor' })
}

function loadGc(): GcFunction | null {
  const v8 = process.getBuiltinModule('node:v8')
  try {
    v8.setFlagsFromString('--expose-gc')
    return process.getBuiltinModule('node:vm').runInNewContext('gc') as GcFunction
  } catch {
    return null
  } finally {
    v8.setFlagsFromString('--no-expose-gc')
  }
}
