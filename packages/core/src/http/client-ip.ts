/** The TCP peer as Go prints it: IPv4-mapped IPv6 addresses become plain IPv4. */
export function clientIp(addr: string | undefined): string {
  if (addr === undefined) return ''
  return addr.startsWith('::ffff:') && addr.includes('.') ? addr.slice(7) : addr
}
