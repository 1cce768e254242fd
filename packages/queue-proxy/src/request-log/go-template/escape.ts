// The escapers behind the html, js and urlquery builtins.

import { Buffer } from 'node:buffer'
import { HEX_UPPER, hexUpper, isPrint } from './quote.ts'

/** text/template's JSEscapeString. */
export function jsEscapeString(s: string): string {
  let i = 0
  for (; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c < 0x20 || c >= 0x80 || c === 0x5c || c === 0x27 || c === 0x22 || c === 0x3c || c === 0x3e || c === 0x26 || c === 0x3d) break
  }
  if (i === s.length) return s
  let out = s.slice(0, i)
  for (; i < s.length; i++) {
    const c = s.charCodeAt(i)
    switch (c) {
      case 0x5c: out += '\\\\'; continue
      case 0x27: out += "\\'"; continue
      case 0x22: out += '\\"'; continue
      case 0x3c: out += '\\u003C'; continue
      case 0x3e: out += '\\u003E'; continue
      case 0x26: out += '\\u0026'; continue
      case 0x3d: out += '\\u003D'; continue
    }
    if (c < 0x20) out += '\\u00' + HEX_UPPER[c >> 4] + HEX_UPPER[c & 15]
    else if (c < 0x80) out += s[i]
    else {
      const cp = s.codePointAt(i)!
      const n = cp > 0xffff ? 2 : 1
      out += isPrint(cp) ? s.slice(i, i + n) : '\\u' + hexUpper(cp, 4)
      i += n - 1
    }
  }
  return out
}

/** text/template's HTMLEscapeString. */
export function htmlEscapeString(s: string): string {
  let out = ''
  let last = 0
  for (let i = 0; i < s.length; i++) {
    let rep: string
    switch (s.charCodeAt(i)) {
      case 0x22: rep = '&#34;'; break
      case 0x27: rep = '&#39;'; break
      case 0x26: rep = '&amp;'; break
      case 0x3c: rep = '&lt;'; break
      case 0x3e: rep = '&gt;'; break
      case 0: rep = '\ufffd'; break
      default: continue
    }
    out += s.slice(last, i) + rep
    last = i + 1
  }
  return last === 0 ? s : out + s.slice(last)
}

/** url.QueryEscape. */
export function queryEscape(s: string): string {
  let out = ''
  const bytes = Buffer.from(s, 'utf8')
  for (const b of bytes) {
    if ((b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || b === 0x2d || b === 0x5f || b === 0x2e || b === 0x7e) {
      out += String.fromCharCode(b)
    } else if (b === 0x20) out += '+'
    else out += '%' + HEX_UPPER[b >> 4] + HEX_UPPER[b & 15]
  }
  return out
}
