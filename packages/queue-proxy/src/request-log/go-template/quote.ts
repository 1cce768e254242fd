// Rune-level helpers shared by fmt, the escapers and the lexer: Go's
// unicode.IsPrint, rune counting and strconv's quoting rules.

export const HEX_UPPER = '0123456789ABCDEF'
const PRINTABLE = /^[\p{L}\p{M}\p{N}\p{P}\p{S}]$/u

/** unicode.IsPrint: letters, marks, numbers, punctuation, symbols, ASCII space. */
export function isPrint(cp: number): boolean {
  if (cp < 0x80) return cp >= 0x20 && cp < 0x7f
  return PRINTABLE.test(String.fromCodePoint(cp))
}

export function runeCount(s: string): number {
  let n = 0
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c < 0xdc00 || c > 0xdfff) n++
  }
  return n
}

export function hexUpper(cp: number, width: number): string {
  return cp.toString(16).toUpperCase().padStart(width, '0')
}

/** Go's %#U: "U+0041 'A'" (the quoted rune only when printable). */
export function sharpU(cp: number): string {
  const u = 'U+' + hexUpper(cp, 4)
  return isPrint(cp) ? `${u} '${String.fromCodePoint(cp)}'` : u
}

function appendEscapedRune(cp: number, quote: number, ascii: boolean): string {
  if (cp === quote || cp === 0x5c) return '\\' + String.fromCodePoint(cp)
  if (ascii ? cp < 0x80 && isPrint(cp) : isPrint(cp)) return String.fromCodePoint(cp)
  switch (cp) {
    case 7: return '\\a'
    case 8: return '\\b'
    case 12: return '\\f'
    case 10: return '\\n'
    case 13: return '\\r'
    case 9: return '\\t'
    case 11: return '\\v'
  }
  if (cp < 0x20 || cp === 0x7f) return '\\x' + cp.toString(16).padStart(2, '0')
  if (cp >= 0xd800 && cp <= 0xdfff) cp = 0xfffd
  if (cp < 0x10000) return '\\u' + cp.toString(16).padStart(4, '0')
  return '\\U' + cp.toString(16).padStart(8, '0')
}

/** strconv.Quote (ascii: QuoteToASCII). */
export function goQuote(s: string, ascii = false): string {
  let out = '"'
  for (let i = 0; i < s.length; i++) {
    const cp = s.codePointAt(i)!
    if (cp > 0xffff) i++
    out += appendEscapedRune(cp, 0x22, ascii)
  }
  return out + '"'
}

export function quoteRune(cp: number, ascii: boolean): string {
  if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) cp = 0xfffd
  return "'" + appendEscapedRune(cp, 0x27, ascii) + "'"
}

export function truncateRunes(s: string, n: number): string {
  let i = 0
  for (let k = 0; k < n && i < s.length; k++) i += s.codePointAt(i)! > 0xffff ? 2 : 1
  return s.slice(0, i)
}
