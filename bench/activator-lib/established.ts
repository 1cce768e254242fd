// Counts established TCP connections accepted on a local port (/proc/net/tcp and tcp6), so the
// routing part can show which listener the activator's requests really reached.
import { readFileSync } from 'node:fs';

const ESTABLISHED = '01';

/** Established connections whose local end is `port` (optionally only on IPv4 address `ip`). */
export function establishedOn(port: number, ip?: string): number {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  // /proc/net/tcp writes an IPv4 address as its 4 bytes in host (little-endian) order.
  const hexIp = ip === undefined ? undefined : ip.split('.').map((b) => Number(b).toString(16).toUpperCase().padStart(2, '0')).reverse().join('');
  let n = 0;
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 4 || f[3] !== ESTABLISHED) continue;
      const local = f[1]!;
      if (!local.endsWith(`:${hexPort}`)) continue;
      // tcp6 shows an IPv4 peer as ::ffff:a.b.c.d, whose last 8 hex digits are the IPv4 ones.
      if (hexIp !== undefined && !local.slice(0, local.indexOf(':')).endsWith(hexIp)) continue;
      n++;
    }
  }
  return n;
}
