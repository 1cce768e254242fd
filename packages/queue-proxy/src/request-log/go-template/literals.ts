// String, character and number literals: strconv.Unquote and Go's number
// literal rules (parse.newNumber + exec.idealConstant).

import { Buffer } from 'node:buffer'
import { T_CHAR_CONSTANT, T_COMPLEX } from './tokens.ts'

const SIMPLE_ESCAPES: Readonly<Record<string, number>> = { a: 7, b: 8, f: 12, n: 10, r: 13, t: 9, v: 11, '\\': 92 }

function utf8Bytes(cp: number, out: number[]): void {
  for (const b of Buffer.from(String.fromCodePoint(cp), 'utf8')) out.push(b)
}

/** strconv.UnquoteChar on s at i; returns [bytes appended, next index] or null. */
function unquoteChar(s: string, i: number, quote: string, out: number[]): number | null {
  const c = s[i]
  if (c === undefined) return null
  if (c === quote && quote !== '`') return null
  if (c !== '\\') {
    const cp = s.codePointAt(i)!
    utf8Bytes(cp, out)
    return i + (cp > 0xffff ? 2 : 1)
  }
  const e = s[i + 1]
  if (e === undefined) return null
  const simple = SIMPLE_ESCAPES[e]
  if (simple !== undefined) {
    out.push(simple)
    return i + 2
  }
  if (e === quote && (quote === '"' || quote === "'")) {
    out.push(quote.charCodeAt(0))
    return i + 2
  }
  if (e === 'x' || e === 'u' || e === 'U') {
    const n = e === 'x' ? 2 : e === 'u' ? 4 : 8
    const hex = s.slice(i + 2, i + 2 + n)
    if (hex.length !== n || !/^[0-9a-fA-F]+$/.test(hex)) return null
    const v = parseInt(hex, 16)
    if (e === 'x') out.push(v)
    else {
      if (v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) return null
      utf8Bytes(v, out)
    }
    return i + 2 + n
  }
  if (e >= '0' && e <= '7') {
    const oct = s.slice(i + 1, i + 4)
    if (!/^[0-7]{3}$/.test(oct)) return null
    const v = parseInt(oct, 8)
    if (v > 255) return null
    out.push(v)
    return i + 4
  }
  return null
}

/** strconv.Unquote for "..." and `...` literals; null on invalid syntax. */
export function unquote(q: string): string | null {
  if (q[0] === '`') return q.slice(1, -1).replaceAll('\r', '')
  const out: number[] = []
  const end = q.length - 1
  let i = 1
  while (i < end) {
    const next = unquoteChar(q, i, '"', out)
    if (next === null || next > end) return null
    i = next
  }
  return Buffer.from(out).toString('utf8')
}

const INT64_MIN = -(2n ** 63n)
const INT64_MAX = 2n ** 63n - 1n
const UINT64_MAX = 2n ** 64n - 1n
/** parseNumber result for an integer literal Go rejects as "integer overflow". */
export const INT_OVERFLOW = 'overflow'

/** Value of a hex float literal like 0x1.8p-2. */
function hexFloat(body: string): number | undefined {
  const m = /^0[xX]([0-9a-fA-F]*)\.?([0-9a-fA-F]*)[pP]([+-]?\d+)$/.exec(body)
  if (!m || m[1]! + m[2]! === '') return undefined
  const mant = parseInt(m[1]! + m[2]!, 16)
  return mant * 2 ** (Number(m[3]) - 4 * m[2]!.length)
}

/**
 * Go's number literal rules (parse.newNumber + exec.idealConstant): floats
 * when the text has a '.', exponent or hex 'p'; ints otherwise. Returns
 * undefined for illegal syntax, INT_OVERFLOW for an int beyond uint64 (a parse
 * error), null for one beyond int64 (an execution error, "overflows int").
 */
export function parseNumber(text: string, type: number): bigint | number | null | typeof INT_OVERFLOW | undefined {
  if (type === T_CHAR_CONSTANT) {
    const out: number[] = []
    const next = unquoteChar(text, 1, "'", out)
    if (next === null || next !== text.length - 1) return undefined
    return out.length === 1 ? BigInt(out[0]!) : BigInt(Buffer.from(out).toString('utf8').codePointAt(0)!)
  }
  if (type === T_COMPLEX || text.endsWith('i')) return undefined
  const neg = text[0] === '-'
  let body = text[0] === '-' || text[0] === '+' ? text.slice(1) : text
  const prefixed = /^0[xXoObB]/.test(body)
  // Underscores may only separate digits (or follow a base prefix).
  if (body.includes('_')) {
    if (/__|_$|^_|_[.eEpP]|[.eEpP]_/.test(body) || (!prefixed && body[0] === '0' && body.length > 1 && !/^0[0-7_]*$/.test(body))) return undefined
    body = body.replaceAll('_', '')
  }
  let f: number | undefined
  if (/^0[xX]/.test(body) && /[pP]/.test(body)) f = hexFloat(body)
  else if (!prefixed && /[.eE]/.test(body)) f = /^(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(body) ? Number(body) : undefined
  else {
    let n: bigint
    if (/^0[xX][0-9a-fA-F]+$/.test(body) || /^0[oO][0-7]+$/.test(body) || /^0[bB][01]+$/.test(body)) n = BigInt(body.toLowerCase())
    else if (/^0[0-7]+$/.test(body)) n = BigInt('0o' + body.slice(1))
    else if (/^\d+$/.test(body)) {
      if (body.length > 1 && body[0] === '0') return INT_OVERFLOW // "08": not octal, and Go reports it so
      n = BigInt(body)
    } else return undefined
    if (neg) n = -n
    if (n > UINT64_MAX || n < INT64_MIN) return INT_OVERFLOW
    return n > INT64_MAX ? null : n
  }
  if (f === undefined) return undefined
  return neg ? -f : f
}
