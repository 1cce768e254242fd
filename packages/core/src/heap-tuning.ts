// Young-generation sizing for a proxy: nearly everything a request allocates
// is garbage before the next scavenge. Left alone, V8 doubles the young
// generation under load up to 64 MiB and never hands it back: most of a busy
// queue-proxy's resident growth. Held at its initial 4 MiB it costs ~35 % more
// CPU per request (scavenges too often, objects of in-flight requests promoted);
// so it may grow, and stops growing once it reaches 16 MiB (measured: peak RSS
// of the bench's POST run 221 MiB unbounded, 158 MiB at 4 MiB, see bench/README.md).
//
// Set at run time, not as a command-line flag, so that every start path gets
// it (the image, `node dist/main.js`, the local runtime): V8 reads the growth
// factor each time it considers growing the young generation, whereas
// --max-semi-space-size is read once, before any JavaScript runs. A check
// every 200 ms (two reads of heap statistics) notices the size; it stops once
// the cap is set.

const CAP_BYTES = 16 * 1024 * 1024
const CHECK_MS = 200

let timer: NodeJS.Timeout | null = null

export function capYoungGeneration(): void {
  if (timer !== null) return
  timer = setInterval(checkYoungGeneration, CHECK_MS)
  timer.unref()
}

function checkYoungGeneration(): void {
  const v8 = process.getBuiltinModule('node:v8')
  for (const space of v8.getHeapSpaceStatistics()) {
    if (space.space_name !== 'new_space') continue
    if (space.space_size < CAP_BYTES) return
    v8.setFlagsFromString('--semi-space-growth-factor=1')
    clearInterval(timer!)
    return
  }
}
