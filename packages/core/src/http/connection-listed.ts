// Hop-by-hop headers named in a Connection header (RFC 9110 §7.6.1) are
// dropped before proxying; keep-alive/close name nothing we forward.

export function dropConnectionListed(headers: string[], tokens: string): string[] {
  const listed = new Set<string>()
  for (const t of tokens.split(',')) {
    const n = t.trim().toLowerCase()
    if (n !== '' && n !== 'close' && n !== 'keep-alive') listed.add(n)
  }
  if (listed.size === 0) return headers
  const out: string[] = []
  for (let i = 0; i < headers.length; i += 2) {
    if (!listed.has(headers[i]!.toLowerCase())) out.push(headers[i]!, headers[i + 1]!)
  }
  return out
}
