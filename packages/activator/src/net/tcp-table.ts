// The kernel's view of TCP connections (Linux /proc/self/net/tcp and tcp6):
// whether a connection is still ESTABLISHED, without reading from it. A
// socket the process is not reading from never learns that its peer sent a
// FIN or a RST; the kernel's connection table does (CLOSE_WAIT after a FIN,
// gone after a RST). Used for waiting uploads whose bodies are left unread
// (handler/waiting-uploads.ts).
//
// Rows name a connection "LOCAL:PORT REMOTE:PORT" in hex: an IPv4 address as
// one host-order 32-bit word, an IPv6 address as four, ports as 4 hex digits.

import { readFile } from 'node:fs/promises'
import { isIPv4, isIPv6 } from 'node:net'
import { endianness } from 'node:os'

export type TcpFamily = 'tcp' | 'tcp6'

/** The connection's state as the kernel lists it. */
export const TcpState = {
  established: '01',
  closeWait: '08',
} as const

const LITTLE_ENDIAN = endianness() === 'LE'

/** The table row key of a connection, or '' for an address this cannot name. */
export function tcpKey(localAddress: string | undefined, localPort: number | undefined, remoteAddress: string | undefined, remotePort: number | undefined): string {
  if (localAddress === undefined || remoteAddress === undefined || localPort === undefined || remotePort === undefined) return ''
  const local = addressHex(localAddress)
  const remote = addressHex(remoteAddress)
  if (local === '' || remote === '' || local.length !== remote.length) return ''
  return `${local}:${portHex(localPort)} ${remote}:${portHex(remotePort)}`
}

/** Which table lists a key: IPv4 keys are 8 hex digits per address, IPv6 ones 32. */
export function tcpFamily(key: string): TcpFamily {
  return key.indexOf(':') === 8 ? 'tcp' : 'tcp6'
}

/**
 * Reads one table and returns, for each row whose key is in `wanted`, its
 * state. Rejects if the table cannot be read (not Linux).
 */
export async function readTcpStates(family: TcpFamily, wanted: ReadonlySet<string>): Promise<Map<string, string>> {
  const text = await readFile(`/proc/self/net/${family}`, 'latin1')
  const keyLength = family === 'tcp' ? 2 * 13 + 1 : 2 * 37 + 1
  const found = new Map<string, string>()
  // Rows: "  sl: LOCAL:PORT REMOTE:PORT ST ..."; the header line has no ': ' before its fields.
  let at = text.indexOf('\n') + 1
  while (at > 0 && at < text.length) {
    const end = text.indexOf('\n', at)
    const colon = text.indexOf(': ', at)
    if (colon > 0 && (end < 0 || colon < end)) {
      const key = text.slice(colon + 2, colon + 2 + keyLength)
      if (wanted.has(key)) found.set(key, text.slice(colon + 3 + keyLength, colon + 5 + keyLength))
    }
    at = end + 1
  }
  return found
}

function portHex(port: number): string {
  return port.toString(16).toUpperCase().padStart(4, '0')
}

function addressHex(address: string): string {
  if (isIPv4(address)) return wordsHex(ipv4Bytes(address))
  if (!isIPv6(address)) return ''
  const bytes = ipv6Bytes(address)
  return bytes === null ? '' : wordsHex(bytes)
}

/** Network-order bytes as the kernel prints them: 32-bit words in host order. */
function wordsHex(bytes: number[]): string {
  let out = ''
  for (let w = 0; w < bytes.length; w += 4) {
    for (let i = 0; i < 4; i++) {
      const b = bytes[w + (LITTLE_ENDIAN ? 3 - i : i)]!
      out += b.toString(16).toUpperCase().padStart(2, '0')
    }
  }
  return out
}

function ipv4Bytes(address: string): number[] {
  return address.split('.').map(Number)
}

function ipv6Bytes(address: string): number[] | null {
  let text = address
  const zone = text.indexOf('%')
  if (zone >= 0) text = text.slice(0, zone)
  let tail: number[] = []
  // An embedded IPv4 address ("::ffff:10.0.0.1") fills the last two groups.
  const lastColon = text.lastIndexOf(':')
  if (text.indexOf('.', lastColon) > lastColon) {
    tail = ipv4Bytes(text.slice(lastColon + 1))
    text = `${text.slice(0, lastColon + 1)}0:0`
  }
  const halves = text.split('::')
  if (halves.length > 2) return null
  const groups = (s: string): number[] => (s === '' ? [] : s.split(':').map((g) => parseInt(g, 16)))
  const head = groups(halves[0]!)
  const rest = halves.length === 2 ? groups(halves[1]!) : []
  const missing = 8 - head.length - rest.length
  if (missing < 0 || (halves.length === 1 && missing !== 0)) return null
  const all = [...head, ...Array<number>(missing).fill(0), ...rest]
  const bytes: number[] = []
  for (const g of all) bytes.push(g >> 8, g & 0xff)
  if (tail.length === 4) bytes.splice(12, 4, ...tail)
  return bytes
}
