// The backpressure points: a proxy's memory when one side is much slower than the other.
//  slow-reader: a 1 GiB response from the backend, read by the client at a bounded rate;
//  slow-upload: a 256 MiB request body streamed to an app that reads it at a bounded rate.
// A proxy that passes backpressure on holds a few buffers; one that does not buffers the
// difference. VmHWM is a lifetime peak, so each point samples VmRSS every 50 ms for its own.
import { request } from 'node:http';
import { readPaced } from './pace.ts';
import { memory } from './proc.ts';

export type BackpressureKind = 'slow-reader' | 'slow-upload';

export interface BackpressureSettings {
  /** Backend path of the big file and its size. */
  bigPath: string;
  bigBytes: number;
  /** Rate the client reads the big response at. */
  readerBytesPerSecond: number;
  /** Backend path that streams to the slow app, the upload size, and the app's read rate. */
  uploadPath: string;
  uploadBytes: number;
  appBytesPerSecond: number;
}

export interface BackpressurePoint {
  kind: BackpressureKind;
  expectedBytes: number;
  /** Bytes that arrived: at the client (slow reader), or the app's count (slow upload). */
  bytes: number;
  complete: boolean;
  seconds: number;
  /** Highest VmRSS sampled during the point, KiB. */
  peakRssKiB: number;
  /** VmHWM right after the point (the lifetime peak so far), KiB. */
  hwmKiB: number;
  error?: string;
}

const SAMPLE_MS = 50;
const UPLOAD_CHUNK = Buffer.alloc(64 * 1024);

function sampleRss(pids: readonly number[]): { stop(): number } {
  let peak = memory(pids).rssKiB;
  const timer = setInterval(() => (peak = Math.max(peak, memory(pids).rssKiB)), SAMPLE_MS);
  return {
    stop: () => {
      clearInterval(timer);
      return Math.max(peak, memory(pids).rssKiB);
    },
  };
}

function slowRead(port: number, path: string, headers: Record<string, string>, bytesPerSecond: number, timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers, agent: false }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        reject(new Error(`HTTP ${res.statusCode}`));
        return;
      }
      readPaced(res, bytesPerSecond).then(resolve, reject);
    });
    const guard = setTimeout(() => req.destroy(new Error(`not done within ${timeoutMs / 1000} s`)), timeoutMs);
    req.on('close', () => clearTimeout(guard));
    req.on('error', reject);
    req.end();
  });
}

/** POSTs `bytes` zero bytes as fast as the target takes them; resolves with the app's byte count. */
function upload(port: number, path: string, headers: Record<string, string>, bytes: number, timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({
      host: '127.0.0.1',
      port,
      path,
      method: 'POST',
      agent: false,
      headers: { ...headers, 'Content-Type': 'application/octet-stream', 'Content-Length': String(bytes) },
    });
    const guard = setTimeout(() => req.destroy(new Error(`not done within ${timeoutMs / 1000} s`)), timeoutMs);
    req.on('close', () => clearTimeout(guard));
    req.on('error', reject);
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('error', reject);
      res.on('end', () => {
        if (res.statusCode !== 200) reject(new Error(`HTTP ${res.statusCode} ${JSON.stringify(text.slice(0, 120))}`));
        else if (!/^\d+$/.test(text)) reject(new Error(`200 with ${JSON.stringify(text.slice(0, 120))}, not the app's byte count`));
        else resolve(Number(text));
      });
    });
    let sent = 0;
    const pump = (): void => {
      while (sent < bytes && !req.destroyed) {
        const n = Math.min(UPLOAD_CHUNK.length, bytes - sent);
        sent += n;
        if (!req.write(n === UPLOAD_CHUNK.length ? UPLOAD_CHUNK : UPLOAD_CHUNK.subarray(0, n))) {
          req.once('drain', pump);
          return;
        }
      }
      req.end();
    };
    pump();
  });
}

/** Runs one backpressure point through the target on `port`; `pids` are the target's processes. */
export async function backpressurePoint(
  kind: BackpressureKind,
  target: { port: number; headers: Record<string, string>; pids: readonly number[] },
  s: BackpressureSettings,
): Promise<BackpressurePoint> {
  const expectedBytes = kind === 'slow-reader' ? s.bigBytes : s.uploadBytes;
  const rate = kind === 'slow-reader' ? s.readerBytesPerSecond : s.appBytesPerSecond;
  const timeoutMs = (expectedBytes / rate) * 3000 + 30_000; // a stalled transfer must not hang the bench
  const sampler = sampleRss(target.pids);
  const began = performance.now();
  let bytes = 0;
  let error: string | undefined;
  try {
    bytes =
      kind === 'slow-reader'
        ? await slowRead(target.port, s.bigPath, target.headers, rate, timeoutMs)
        : await upload(target.port, s.uploadPath, target.headers, s.uploadBytes, timeoutMs);
  } catch (err) {
    error = (err as Error).message;
  }
  const seconds = (performance.now() - began) / 1000;
  const peakRssKiB = sampler.stop();
  return {
    kind,
    expectedBytes,
    bytes,
    complete: error === undefined && bytes === expectedBytes,
    seconds,
    peakRssKiB,
    hwmKiB: memory(target.pids).hwmKiB,
    ...(error === undefined ? {} : { error }),
  };
}
