// Reading a stream at a bounded rate: whenever more has arrived than the rate allows so far,
// the stream is paused until the schedule catches up. A paused HTTP message stops reading its
// socket, so the kernel buffers fill and the sender has to wait: that is the backpressure the
// proxies under test must pass on instead of buffering.
import type { Readable } from 'node:stream';

/** Consumes `stream` at no more than `bytesPerSecond`; resolves with the byte count at its end. */
export function readPaced(stream: Readable, bytesPerSecond: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const startedAt = performance.now();
    let bytes = 0;
    let timer: NodeJS.Timeout | undefined;
    let ended = false;
    stream.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      const aheadMs = (bytes / bytesPerSecond) * 1000 - (performance.now() - startedAt);
      if (aheadMs >= 1) {
        stream.pause();
        timer = setTimeout(() => stream.resume(), aheadMs);
      }
    });
    stream.once('end', () => {
      ended = true;
      resolve(bytes);
    });
    stream.once('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`${err.message} after ${bytes} bytes`, { cause: err }));
    });
    stream.once('close', () => {
      clearTimeout(timer);
      if (!ended) reject(new Error(`closed after ${bytes} bytes`));
    });
  });
}
