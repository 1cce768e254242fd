// Go text/template for Knative request-log templates (spec §1.14, quirk §7.13).
// A template is lexed and parsed once into a node tree (variables resolved to
// frame slots, functions resolved to builtins); execution walks that tree and
// prints values exactly as Go's fmt does, so Sluice writes the same log lines
// as the Go queue-proxy. Error messages follow Go's wording and positions.
//
// Go values are modelled as: string -> string, bigint -> int, number ->
// float64, boolean -> bool, arrays -> slices, GoMap / Map / plain objects ->
// maps, objects carrying a [goType] descriptor -> struct pointers, null ->
// nil, undefined -> Go's invalid value ("<no value>").

import { Buffer } from 'node:buffer'

// ================================================================== values

/** Key of the descriptor that makes a JS object a Go struct pointer. */
export const goType: unique symbol = Symbol('sluice.goType')

/** How a function parameter takes a template argument: Go `string`,
 * `interface{}` (invalid becomes nil) or `reflect.Value` (passed as is). */
export type GoParam = 'string' | 'any' | 'value'

/** A callable: a builtin function or a method of a Go type. */
export interface GoFunc {
  readonly params: readonly GoParam[]
  readonly variadic?: GoParam
  /** Returns the result; throwing reports Go's returned error. */
  readonly call: (args: unknown[], self: unknown) => unknown
}

export interface GoTypeInfo {
  /** Go's name for the type in messages, e.g. "*http.Request". */
  readonly name: string
  /** Struct fields in declaration order (the order %v prints them in). */
  readonly fields?: ReadonlyMap<string, (self: any) => unknown>
  readonly methods?: ReadonlyMap<string, GoFunc>
  /** fmt.Stringer: what %v and %s print. */
  readonly string?: (self: any) => string
}

export interface GoStruct {
  readonly [goType]: GoTypeInfo
}

export interface GoMapType extends GoTypeInfo {
  /** Zero value of the element type: what `index` yields for a missing key. */
  readonly zero: unknown
}

/** A Go map with string keys and a named type (http.Header, url.Values, ...). */
export class GoMap {
  readonly type: GoMapType
  readonly entries: ReadonlyMap<string, unknown>
  constructor(type: GoMapType, entries: ReadonlyMap<string, unknown>) {
    this.type = type
    this.entries = entries
  }

  get [goType](): GoTypeInfo {
    return this.type
  }
}

const V_INVALID = 0
const V_NIL = 1
const V_STRING = 2
const V_INT = 3
const V_FLOAT = 4
const V_BOOL = 5
const V_SLICE = 6
const V_MAP = 7
const V_STRUCT = 8
const V_FUNC = 9

function kindOf(v: unknown): number {
  switch (typeof v) {
    case 'string': return V_STRING
    case 'bigint': return V_INT
    case 'number': return V_FLOAT
    case 'boolean': return V_BOOL
    case 'undefined': return V_INVALID
    case 'object':
      if (v === null) return V_NIL
      if (Array.isArray(v)) return V_SLICE
      if (v instanceof GoMap || v instanceof Map) return V_MAP
      if (goType in v) return V_STRUCT
      return V_MAP
    default: return V_FUNC
  }
}

function mapGet(m: object, key: string): unknown {
  if (m instanceof GoMap) return m.entries.get(key)
  if (m instanceof Map) return m.get(key)
  return Object.hasOwn(m, key) ? (m as Record<string, unknown>)[key] : undefined
}

function mapHas(m: object, key: string): boolean {
  if (m instanceof GoMap) return m.entries.has(key)
  if (m instanceof Map) return m.has(key)
  return Object.hasOwn(m, key)
}

function mapSize(m: object): number {
  if (m instanceof GoMap) return m.entries.size
  if (m instanceof Map) return m.size
  return Object.keys(m).length
}

/** Keys in the order Go's fmt and range visit them (sorted). */
function mapKeys(m: object): string[] {
  let keys: string[]
  if (m instanceof GoMap) keys = [...m.entries.keys()]
  else if (m instanceof Map) keys = [...(m as Map<string, unknown>).keys()]
  else keys = Object.keys(m)
  return keys.sort()
}

function typeName(v: unknown): string {
  switch (kindOf(v)) {
    case V_STRING: return 'string'
    case V_INT: return 'int'
    case V_FLOAT: return 'float64'
    case V_BOOL: return 'bool'
    case V_SLICE: {
      for (const e of v as unknown[]) if (typeof e !== 'string') return '[]interface {}'
      return '[]string'
    }
    case V_MAP: return v instanceof GoMap ? v.type.name : 'map[string]interface {}'
    case V_STRUCT: return (v as GoStruct)[goType].name
    case V_NIL: return '<nil>'
    case V_FUNC: return 'func()'
    default: return 'invalid'
  }
}

/** Go's template truth: non-zero numbers, non-empty strings/slices/maps, non-nil pointers. */
function truth(v: unknown): boolean {
  switch (kindOf(v)) {
    case V_INVALID: case V_NIL: return false
    case V_STRING: return (v as string).length > 0
    case V_INT: return v !== 0n
    case V_FLOAT: return v !== 0
    case V_BOOL: return v as boolean
    case V_SLICE: return (v as unknown[]).length > 0
    case V_MAP: return mapSize(v as object) > 0
    default: return true
  }
}

// ================================================================== fmt

const HEX_UPPER = '0123456789ABCDEF'
const PRINTABLE = /^[\p{L}\p{M}\p{N}\p{P}\p{S}]$/u

/** unicode.IsPrint: letters, marks, numbers, punctuation, symbols, ASCII space. */
function isPrint(cp: number): boolean {
  if (cp < 0x80) return cp >= 0x20 && cp < 0x7f
  return PRINTABLE.test(String.fromCodePoint(cp))
}

function runeCount(s: string): number {
  let n = 0
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c < 0xdc00 || c > 0xdfff) n++
  }
  return n
}

function hexUpper(cp: number, width: number): string {
  return cp.toString(16).toUpperCase().padStart(width, '0')
}

/** Go's %#U: "U+0041 'A'" (the quoted rune only when printable). */
function sharpU(cp: number): string {
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

function quoteRune(cp: number, ascii: boolean): string {
  if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) cp = 0xfffd
  return "'" + appendEscapedRune(cp, 0x27, ascii) + "'"
}

interface Digits { d: string; dp: number }

/** Shortest round-tripping decimal digits of a > 0 (same digits in JS and Go). */
function shortestDigits(a: number): Digits {
  const s = a.toExponential()
  const e = s.indexOf('e')
  const d = s[1] === '.' ? s[0]! + s.slice(2, e) : s.slice(0, e)
  return { d, dp: Number(s.slice(e + 1)) + 1 }
}

const F64 = new Float64Array(1)
const U64 = new BigUint64Array(F64.buffer)

/** The exact decimal expansion of a > 0 (every double is a finite decimal). */
function exactDigits(a: number): Digits {
  F64[0] = a
  const bits = U64[0]!
  const biased = Number((bits >> 52n) & 0x7ffn)
  let m = bits & 0xfffffffffffffn
  let k: number
  if (biased === 0) k = -1074
  else {
    m |= 1n << 52n
    k = biased - 1075
  }
  let s: string
  let dp: number
  if (k >= 0) {
    s = (m << BigInt(k)).toString()
    dp = s.length
  } else {
    s = (m * 5n ** BigInt(-k)).toString()
    dp = s.length + k
  }
  let end = s.length
  while (end > 0 && s.charCodeAt(end - 1) === 48) end--
  return { d: s.slice(0, end), dp }
}

/** Go's decimal.Round(nd): half-even on exact ties, trailing zeros trimmed. */
function roundDigits(x: Digits, nd: number): Digits {
  const s = x.d
  if (nd < 0 || nd >= s.length) return x
  const c = s.charCodeAt(nd)
  const up = c === 53 && nd + 1 === s.length
    ? nd > 0 && (s.charCodeAt(nd - 1) - 48) % 2 === 1
    : c >= 53
  if (!up) {
    let e = nd
    while (e > 0 && s.charCodeAt(e - 1) === 48) e--
    return e === 0 ? { d: '', dp: 0 } : { d: s.slice(0, e), dp: x.dp }
  }
  let i = nd - 1
  while (i >= 0 && s.charCodeAt(i) === 57) i--
  if (i < 0) return { d: '1', dp: x.dp + 1 }
  return { d: s.slice(0, i) + String.fromCharCode(s.charCodeAt(i) + 1), dp: x.dp }
}

function fmtE(x: Digits, prec: number, e: string): string {
  let s = x.d.length > 0 ? x.d[0]! : '0'
  if (prec > 0) {
    s += '.'
    for (let i = 1; i <= prec; i++) s += i < x.d.length ? x.d[i] : '0'
  }
  let exp = x.d.length === 0 ? 0 : x.dp - 1
  s += e
  s += exp < 0 ? '-' : '+'
  exp = Math.abs(exp)
  return s + (exp < 10 ? '0' + exp : String(exp))
}

function fmtF(x: Digits, prec: number): string {
  let s = ''
  if (x.dp > 0) {
    for (let i = 0; i < x.dp; i++) s += i < x.d.length ? x.d[i] : '0'
  } else s = '0'
  if (prec > 0) {
    s += '.'
    for (let i = 0; i < prec; i++) {
      const j = x.dp + i
      s += j >= 0 && j < x.d.length ? x.d[j] : '0'
    }
  }
  return s
}

/** strconv.FormatFloat(v, verb, prec, 64); prec -1 means shortest. */
function strconvFloat(v: number, verb: string, prec: number): string {
  if (v !== v) return 'NaN'
  if (v === Infinity) return '+Inf'
  if (v === -Infinity) return '-Inf'
  const neg = v < 0 || Object.is(v, -0)
  const a = Math.abs(v)
  const shortest = prec < 0
  let x: Digits
  if (a === 0) x = { d: '', dp: 0 }
  else if (shortest) x = shortestDigits(a)
  else {
    x = exactDigits(a)
    switch (verb) {
      case 'e': case 'E': x = roundDigits(x, prec + 1); break
      case 'f': x = roundDigits(x, x.dp + prec); break
      default: x = roundDigits(x, prec === 0 ? 1 : prec)
    }
  }
  const nd = x.d.length
  let body: string
  switch (verb) {
    case 'e': case 'E':
      body = fmtE(x, shortest ? Math.max(nd - 1, 0) : prec, verb)
      break
    case 'f':
      body = fmtF(x, shortest ? Math.max(nd - x.dp, 0) : prec)
      break
    default: {
      let p = shortest ? nd : prec === 0 ? 1 : prec
      let eprec = p
      if (eprec > nd && nd >= x.dp) eprec = nd
      // %e is used for exponents < -4 or >= the precision; shortest uses 6.
      if (shortest) eprec = 6
      const exp = x.dp - 1
      if (exp < -4 || exp >= eprec) {
        if (p > nd) p = nd
        body = fmtE(x, p - 1, verb === 'G' ? 'E' : 'e')
      } else {
        if (p > x.dp) p = nd
        body = fmtF(x, Math.max(p - x.dp, 0))
      }
    }
  }
  return neg ? '-' + body : body
}

/** Go's %v of a float64: 1.5, 0.001234567, 1e-05, 1.234567e+06, +Inf. */
export function formatFloat(v: number): string {
  const a = Math.abs(v)
  // In [1e-4, 1e6) Go and JS both print the shortest digits in plain decimal.
  if (a >= 1e-4 && a < 1e6) return String(v)
  return strconvFloat(v, 'g', -1)
}

interface FmtSpec {
  plus: boolean
  minus: boolean
  sharp: boolean
  space: boolean
  zero: boolean
  plusV: boolean
  sharpV: boolean
  /** -1 when absent */
  wid: number
  /** -1 when absent */
  prec: number
}

const PLAIN: FmtSpec = Object.freeze({
  plus: false, minus: false, sharp: false, space: false, zero: false,
  plusV: false, sharpV: false, wid: -1, prec: -1,
})

function padding(n: number, zero: boolean): string {
  return (zero ? '0' : ' ').repeat(n)
}

function pad(f: FmtSpec, s: string, zero = f.zero): string {
  if (f.wid <= 0) return s
  const n = f.wid - runeCount(s)
  if (n <= 0) return s
  return f.minus ? s + padding(n, false) : padding(n, zero) + s
}

function badVerb(f: FmtSpec, verb: string, v: unknown): string {
  if (v === null || v === undefined) return `%!${verb}(<nil>)`
  return `%!${verb}(${typeName(v)}=${printArg(f, v, 'v', 0)})`
}

function fmtInteger(f: FmtSpec, v: bigint, base: number, verb: string): string {
  const neg = v < 0n
  let digits = (neg ? -v : v).toString(base)
  if (verb === 'X') digits = digits.toUpperCase()
  let prec = 0
  if (f.prec >= 0) {
    prec = f.prec
    // Precision 0 and value 0 print nothing but padding.
    if (prec === 0 && v === 0n) return f.wid > 0 ? padding(f.wid, false) : ''
  } else if (f.zero && f.wid > 0) {
    prec = f.wid
    if (neg || f.plus || f.space) prec--
  }
  if (digits.length < prec) digits = '0'.repeat(prec - digits.length) + digits
  if (f.sharp) {
    if (base === 2) digits = '0b' + digits
    else if (base === 8 && digits[0] !== '0') digits = '0' + digits
    else if (base === 16) digits = (verb === 'X' ? '0X' : '0x') + digits
  }
  if (verb === 'O') digits = '0o' + digits
  const sign = neg ? '-' : f.plus ? '+' : f.space ? ' ' : ''
  return pad(f, sign + digits, false)
}

function fmtIntVerb(f: FmtSpec, v: bigint, verb: string): string {
  switch (verb) {
    case 'v': case 'd': return fmtInteger(f, v, 10, verb)
    case 'b': return fmtInteger(f, v, 2, verb)
    case 'o': case 'O': return fmtInteger(f, v, 8, verb)
    case 'x': case 'X': return fmtInteger(f, v, 16, verb)
    case 'c': {
      const cp = v < 0n || v > 0x10ffffn ? 0xfffd : Number(v)
      return pad(f, String.fromCodePoint(cp >= 0xd800 && cp <= 0xdfff ? 0xfffd : cp))
    }
    case 'q': return pad(f, quoteRune(v < 0n || v > 0x10ffffn ? 0xfffd : Number(v), f.plus))
    case 'U': {
      let s = 'U+' + (v < 0n ? '-' + (-v).toString(16).toUpperCase().padStart(4, '0') : v.toString(16).toUpperCase().padStart(4, '0'))
      if (f.sharp && v >= 0n && v <= 0x10ffffn && isPrint(Number(v))) s += ` '${String.fromCodePoint(Number(v))}'`
      return pad(f, s, false)
    }
  }
  return badVerb(f, verb, v)
}

function fmtFloatVerb(f: FmtSpec, v: number, verb: string): string {
  let conv: string
  let prec: number
  switch (verb) {
    case 'v': conv = 'g'; prec = -1; break
    case 'g': case 'G': conv = verb; prec = -1; break
    case 'e': case 'E': conv = verb; prec = 6; break
    case 'f': case 'F': conv = 'f'; prec = 6; break
    default: return badVerb(f, verb, v)
  }
  if (f.prec >= 0) prec = f.prec
  let num = strconvFloat(v, conv, prec)
  if (num[0] !== '-' && num[0] !== '+') num = '+' + num
  if (f.space && num[0] === '+' && !f.plus) num = ' ' + num.slice(1)
  if (num[1] === 'I' || num[1] === 'N') {
    // Infinities and NaN are never zero padded; NaN carries no sign unless asked.
    if (num[1] === 'N' && !f.space && !f.plus) num = num.slice(1)
    return pad(f, num, false)
  }
  if (f.plus || num[0] !== '+') {
    if (f.zero && f.wid > num.length && !f.minus) return num[0] + padding(f.wid - num.length, true) + num.slice(1)
    return pad(f, num)
  }
  return pad(f, num.slice(1))
}

function truncateRunes(s: string, n: number): string {
  let i = 0
  for (let k = 0; k < n && i < s.length; k++) i += s.codePointAt(i)! > 0xffff ? 2 : 1
  return s.slice(0, i)
}

function fmtStringVerb(f: FmtSpec, s: string, verb: string): string {
  switch (verb) {
    case 'v':
      if (f.sharpV) return pad(f, goQuote(s))
      return pad(f, f.prec >= 0 ? truncateRunes(s, f.prec) : s)
    case 's': return pad(f, f.prec >= 0 ? truncateRunes(s, f.prec) : s)
    case 'q': {
      const t = f.prec >= 0 ? truncateRunes(s, f.prec) : s
      if (f.sharp && !t.includes('`') && !/[\x00-\x08\x0a-\x1f\x7f\ufeff]/.test(t)) return pad(f, '`' + t + '`')
      return pad(f, goQuote(t, f.plus))
    }
    case 'x': case 'X': {
      let bytes = Buffer.from(s, 'utf8')
      if (f.prec >= 0 && f.prec < bytes.length) bytes = bytes.subarray(0, f.prec)
      let out = ''
      for (let i = 0; i < bytes.length; i++) {
        if (f.space && i > 0) out += ' '
        if (f.sharp && (f.space || i === 0)) out += verb === 'X' ? '0X' : '0x'
        const h = bytes[i]!.toString(16).padStart(2, '0')
        out += verb === 'X' ? h.toUpperCase() : h
      }
      return pad(f, out)
    }
  }
  return badVerb(f, verb, s)
}

/** fmt's printArg/printValue for one operand. */
function printArg(f: FmtSpec, v: unknown, verb: string, depth: number): string {
  if (verb === 'T') return pad(f, v === undefined ? '<nil>' : typeName(v))
  switch (kindOf(v)) {
    case V_INVALID:
      if (depth === 0) return verb === 'v' ? pad(f, '<nil>') : badVerb(f, verb, null)
      return verb === 'v' ? '<nil>' : badVerb(f, verb, null)
    case V_NIL: return verb === 'v' ? pad(f, '<nil>') : badVerb(f, verb, null)
    case V_BOOL: return verb === 't' || verb === 'v' ? pad(f, v ? 'true' : 'false') : badVerb(f, verb, v)
    case V_INT: return fmtIntVerb(f, v as bigint, verb)
    case V_FLOAT: return fmtFloatVerb(f, v as number, verb)
    case V_STRING: return fmtStringVerb(f, v as string, verb)
    case V_SLICE: {
      const a = v as unknown[]
      let s = '['
      for (let i = 0; i < a.length; i++) {
        if (i > 0) s += ' '
        s += printArg(f, a[i], verb, depth + 1)
      }
      return s + ']'
    }
    case V_MAP: {
      const m = v as object
      let s = 'map['
      let first = true
      for (const k of mapKeys(m)) {
        if (!first) s += ' '
        first = false
        s += printArg(f, k, verb, depth + 1) + ':' + printArg(f, mapGet(m, k), verb, depth + 1)
      }
      return s + ']'
    }
    case V_STRUCT: {
      const t = (v as GoStruct)[goType]
      if (t.string && !f.sharpV && (verb === 'v' || verb === 's' || verb === 'x' || verb === 'X' || verb === 'q')) {
        return fmtStringVerb(f, t.string(v), verb)
      }
      let s = '&{'
      let first = true
      if (t.fields) {
        for (const [name, get] of t.fields) {
          if (!first) s += ' '
          first = false
          if (f.plusV) s += name + ':'
          s += printArg(f, get(v), verb, depth + 1)
        }
      }
      return s + '}'
    }
  }
  return pad(f, '0x0')
}

/** fmt.Sprint: operands separated by a space when neither side is a string. */
export function sprint(args: readonly unknown[]): string {
  let out = ''
  let prevString = false
  for (let i = 0; i < args.length; i++) {
    const a = args[i]
    const isString = typeof a === 'string'
    if (i > 0 && !isString && !prevString) out += ' '
    out += printArg(PLAIN, a, 'v', 0)
    prevString = isString
  }
  return out
}

/** fmt.Sprintln: operands always separated by spaces, newline appended. */
export function sprintln(args: readonly unknown[]): string {
  let out = ''
  for (let i = 0; i < args.length; i++) {
    if (i > 0) out += ' '
    out += printArg(PLAIN, args[i], 'v', 0)
  }
  return out + '\n'
}

function parseNum(format: string, i: number): [number, number] {
  let n = -1
  while (i < format.length) {
    const c = format.charCodeAt(i)
    if (c < 48 || c > 57) break
    n = (n < 0 ? 0 : n * 10) + (c - 48)
    i++
  }
  return [n, i]
}

/** fmt.Sprintf(format, args[from:]...): flags, width, precision and Go's verbs. */
export function sprintf(format: string, args: readonly unknown[], from = 0): string {
  let out = ''
  let argNum = from
  const end = format.length
  let i = 0
  while (i < end) {
    const lasti = i
    while (i < end && format.charCodeAt(i) !== 37) i++
    if (i > lasti) out += format.slice(lasti, i)
    if (i >= end) break
    i++ // skip '%'
    const f: FmtSpec = { ...PLAIN }
    flags: for (; i < end; i++) {
      switch (format[i]) {
        case '#': f.sharp = true; break
        case '0': f.zero = !f.minus; break
        case '+': f.plus = true; break
        case '-': f.minus = true; f.zero = false; break
        case ' ': f.space = true; break
        default: break flags
      }
    }
    ;[f.wid, i] = parseNum(format, i)
    if (i + 1 <= end && format[i] === '.') {
      i++
      ;[f.prec, i] = parseNum(format, i)
      if (f.prec < 0) f.prec = 0
    }
    if (i >= end) {
      out += '%!(NOVERB)'
      break
    }
    const cp = format.codePointAt(i)!
    const verb = String.fromCodePoint(cp)
    i += verb.length
    if (verb === '%') {
      out += '%'
      continue
    }
    if (argNum >= args.length) {
      out += `%!${verb}(MISSING)`
      continue
    }
    if (verb === 'v') {
      f.sharpV = f.sharp
      f.sharp = false
      f.plusV = f.plus
      f.plus = false
    }
    out += printArg(f, args[argNum++], verb, 0)
  }
  if (argNum < args.length) {
    out += '%!(EXTRA '
    for (let k = argNum; k < args.length; k++) {
      if (k > argNum) out += ', '
      const a = args[k]
      out += a === null || a === undefined ? '<nil>' : `${typeName(a)}=${printArg(PLAIN, a, 'v', 0)}`
    }
    out += ')'
  }
  return out
}

/**
 * What an action prints for a value (text/template's printableValue, then
 * fmt.Fprint): nil and invalid values print "<no value>", and a struct
 * pointer prints as its struct ({...}, no "&") unless it is a Stringer.
 */
function printValue(v: unknown): string {
  switch (typeof v) {
    case 'string': return v
    case 'bigint': return v.toString()
    case 'number': return formatFloat(v)
    case 'undefined': return '<no value>'
  }
  if (v === null) return '<no value>'
  const s = printArg(PLAIN, v, 'v', 0)
  return kindOf(v) === V_STRUCT && (v as GoStruct)[goType].string === undefined ? s.slice(1) : s
}

// ================================================================== escapers

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

// ================================================================== errors

/** A template that does not parse (message as Go's: "template: NAME:LINE: ..."). */
export class GoTemplateParseError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'GoTemplateParseError'
  }
}

/** A failed execution (message as Go's: "template: NAME:L:C: executing ..."). */
export class GoTemplateExecError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'GoTemplateExecError'
  }
}

// ================================================================== lexer

const T_ERROR = 0
const T_EOF = 1
const T_TEXT = 2
const T_LEFT_DELIM = 3
const T_RIGHT_DELIM = 4
const T_SPACE = 5
const T_FIELD = 6
const T_VARIABLE = 7
const T_IDENTIFIER = 8
const T_BOOL = 9
const T_NUMBER = 10
const T_CHAR_CONSTANT = 11
const T_COMPLEX = 12
const T_STRING = 13
const T_RAW_STRING = 14
const T_ASSIGN = 15
const T_DECLARE = 16
const T_PIPE = 17
const T_LEFT_PAREN = 18
const T_RIGHT_PAREN = 19
const T_CHAR = 20
const T_KEYWORD = 30 // keywords print as <word> in messages
const T_BLOCK = 31
const T_BREAK = 32
const T_CONTINUE = 33
const T_DOT = 34
const T_DEFINE = 35
const T_ELSE = 36
const T_END = 37
const T_IF = 38
const T_NIL = 39
const T_RANGE = 40
const T_TEMPLATE = 41
const T_WITH = 42

const KEYWORDS: ReadonlyMap<string, number> = new Map([
  ['.', T_DOT], ['block', T_BLOCK], ['break', T_BREAK], ['continue', T_CONTINUE],
  ['define', T_DEFINE], ['else', T_ELSE], ['end', T_END], ['if', T_IF],
  ['range', T_RANGE], ['nil', T_NIL], ['template', T_TEMPLATE], ['with', T_WITH],
])

interface Token {
  readonly type: number
  readonly val: string
  readonly pos: number
  readonly line: number
}

function tokenString(t: Token): string {
  if (t.type === T_EOF) return 'EOF'
  if (t.type === T_ERROR) return t.val
  if (t.type > T_KEYWORD) return `<${t.val}>`
  if (t.val.length > 10) return goQuote(truncateRunes(t.val, 10)) + '...'
  return goQuote(t.val)
}

const EOF = -1
const LETTER = /^[\p{L}\p{Nd}]$/u

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0d || c === 0x0a
}

function isAlphaNumeric(c: number): boolean {
  if (c === 0x5f || (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a)) return true
  return c >= 0x80 && LETTER.test(String.fromCharCode(c))
}

type StateFn = (l: Lexer) => StateFn | null

class Lexer {
  readonly input: string
  readonly items: Token[] = []
  pos = 0
  start = 0
  parenDepth = 0
  private linePos = 0
  private lineNum = 1

  constructor(input: string) {
    this.input = input
  }

  run(): Token[] {
    let state: StateFn | null = lexText
    while (state !== null) state = state(this)
    return this.items
  }

  /** 1-based line of a position (positions are asked for in increasing order). */
  lineAt(pos: number): number {
    if (pos < this.linePos) {
      this.linePos = 0
      this.lineNum = 1
    }
    for (let i = this.linePos; i < pos; i++) if (this.input.charCodeAt(i) === 10) this.lineNum++
    this.linePos = pos
    return this.lineNum
  }

  next(): number {
    if (this.pos >= this.input.length) {
      this.pos++ // so backup() after EOF is symmetric
      return EOF
    }
    return this.input.charCodeAt(this.pos++)
  }

  backup(): void {
    this.pos--
  }

  peek(): number {
    return this.pos < this.input.length ? this.input.charCodeAt(this.pos) : EOF
  }

  accept(valid: string): boolean {
    const c = this.peek()
    if (c !== EOF && valid.includes(String.fromCharCode(c))) {
      this.pos++
      return true
    }
    return false
  }

  acceptRun(valid: string): void {
    while (this.accept(valid)) { /* consume */ }
  }

  thisItem(type: number): Token {
    const t = { type, val: this.input.slice(this.start, this.pos), pos: this.start, line: this.lineAt(this.start) }
    this.start = this.pos
    return t
  }

  emit(type: number): void {
    this.items.push(this.thisItem(type))
  }

  ignore(): void {
    this.start = this.pos
  }

  errorf(message: string): null {
    this.items.push({ type: T_ERROR, val: message, pos: this.start, line: this.lineAt(this.start) })
    this.items.push({ type: T_EOF, val: '', pos: this.input.length, line: this.lineAt(this.input.length) })
    return null
  }

  hasLeftTrimMarker(i: number): boolean {
    return this.input.charCodeAt(i) === 0x2d && isSpace(this.input.charCodeAt(i + 1))
  }

  hasRightTrimMarker(i: number): boolean {
    return isSpace(this.input.charCodeAt(i)) && this.input.charCodeAt(i + 1) === 0x2d
  }

  /** 0: not at "}}"; 1: at "}}"; 2: at " -}}". */
  atRightDelim(): number {
    if (this.hasRightTrimMarker(this.pos) && this.input.startsWith('}}', this.pos + 2)) return 2
    return this.input.startsWith('}}', this.pos) ? 1 : 0
  }

  atTerminator(): boolean {
    const c = this.peek()
    if (isSpace(c)) return true
    switch (c) {
      case EOF: case 0x2e: case 0x2c: case 0x7c: case 0x3a: case 0x29: case 0x28: case 0x7d: return true
    }
    return false
  }

  leftTrimLength(i: number): number {
    let n = 0
    while (i + n < this.input.length && isSpace(this.input.charCodeAt(i + n))) n++
    return n
  }
}

function lexText(l: Lexer): StateFn | null {
  const x = l.input.indexOf('{{', l.pos)
  if (x >= 0) {
    if (x > l.pos) {
      l.pos = x
      let trim = 0
      if (l.hasLeftTrimMarker(x + 2)) {
        while (x - trim > l.start && isSpace(l.input.charCodeAt(x - trim - 1))) trim++
      }
      l.pos -= trim
      const item = l.thisItem(T_TEXT)
      l.pos += trim
      l.ignore()
      if (item.val.length > 0) l.items.push(item)
    }
    return lexLeftDelim
  }
  l.pos = l.input.length
  if (l.pos > l.start) l.emit(T_TEXT)
  l.emit(T_EOF)
  return null
}

function lexLeftDelim(l: Lexer): StateFn | null {
  l.pos += 2
  const after = l.hasLeftTrimMarker(l.pos) ? 2 : 0
  if (l.input.startsWith('/*', l.pos + after)) {
    l.pos += after
    l.ignore()
    return lexComment
  }
  const item = l.thisItem(T_LEFT_DELIM)
  l.pos += after
  l.ignore()
  l.parenDepth = 0
  l.items.push(item)
  return lexInsideAction
}

function lexComment(l: Lexer): StateFn | null {
  l.pos += 2
  const x = l.input.indexOf('*/', l.pos)
  if (x < 0) return l.errorf('unclosed comment')
  l.pos = x + 2
  const delim = l.atRightDelim()
  if (delim === 0) return l.errorf('comment ends before closing delimiter')
  l.pos += delim === 2 ? 4 : 2
  if (delim === 2) l.pos += l.leftTrimLength(l.pos)
  l.ignore()
  return lexText
}

function lexRightDelim(l: Lexer): StateFn | null {
  const trim = l.atRightDelim() === 2
  if (trim) {
    l.pos += 2
    l.ignore()
  }
  l.pos += 2
  const item = l.thisItem(T_RIGHT_DELIM)
  if (trim) {
    l.pos += l.leftTrimLength(l.pos)
    l.ignore()
  }
  l.items.push(item)
  return lexText
}

function lexInsideAction(l: Lexer): StateFn | null {
  if (l.atRightDelim() !== 0) {
    if (l.parenDepth === 0) return lexRightDelim
    return l.errorf('unclosed left paren')
  }
  const c = l.next()
  if (c === EOF) return l.errorf('unclosed action')
  if (isSpace(c)) {
    l.backup()
    return lexSpace
  }
  switch (c) {
    case 0x3d: l.emit(T_ASSIGN); break // =
    case 0x3a: // :
      if (l.next() !== 0x3d) return l.errorf('expected :=')
      l.emit(T_DECLARE)
      break
    case 0x7c: l.emit(T_PIPE); break
    case 0x22: return lexQuote
    case 0x60: return lexRawQuote
    case 0x24: return lexVariable
    case 0x27: return lexChar
    case 0x2e: { // '.' starts a field unless a digit follows (".5")
      const n = l.peek()
      if (n !== EOF && (n < 0x30 || n > 0x39)) return lexField
      l.backup()
      return lexNumber
    }
    case 0x2b: case 0x2d:
      l.backup()
      return lexNumber
    case 0x28:
      l.emit(T_LEFT_PAREN)
      l.parenDepth++
      break
    case 0x29:
      l.emit(T_RIGHT_PAREN)
      l.parenDepth--
      if (l.parenDepth < 0) return l.errorf(`unexpected right paren ${sharpU(c)}`)
      break
    default:
      if (c >= 0x30 && c <= 0x39) {
        l.backup()
        return lexNumber
      }
      if (isAlphaNumeric(c)) {
        l.backup()
        return lexIdentifier
      }
      if (c < 0x80 && isPrint(c)) l.emit(T_CHAR)
      else return l.errorf(`unrecognized character in action: ${sharpU(l.input.codePointAt(l.pos - 1)!)}`)
  }
  return lexInsideAction
}

function lexSpace(l: Lexer): StateFn | null {
  let n = 0
  while (isSpace(l.peek())) {
    l.pos++
    n++
  }
  // A space may belong to a " -}}" closing delimiter.
  if (l.hasRightTrimMarker(l.pos - 1) && l.input.startsWith('}}', l.pos + 1)) {
    l.backup()
    if (n === 1) return lexRightDelim
  }
  l.emit(T_SPACE)
  return lexInsideAction
}

function lexIdentifier(l: Lexer): StateFn | null {
  while (isAlphaNumeric(l.peek())) l.pos++
  if (!l.atTerminator()) {
    l.pos++
    return l.errorf(`bad character ${sharpU(l.input.codePointAt(l.pos - 1)!)}`)
  }
  const word = l.input.slice(l.start, l.pos)
  const kw = KEYWORDS.get(word)
  if (kw !== undefined) l.emit(kw)
  else if (word === 'true' || word === 'false') l.emit(T_BOOL)
  else l.emit(T_IDENTIFIER)
  return lexInsideAction
}

function lexFieldOrVariable(l: Lexer, type: number): StateFn | null {
  if (l.atTerminator()) {
    l.emit(type === T_VARIABLE ? T_VARIABLE : T_DOT)
    return lexInsideAction
  }
  while (isAlphaNumeric(l.peek())) l.pos++
  if (!l.atTerminator()) {
    l.pos++
    return l.errorf(`bad character ${sharpU(l.input.codePointAt(l.pos - 1)!)}`)
  }
  l.emit(type)
  return lexInsideAction
}

function lexField(l: Lexer): StateFn | null {
  return lexFieldOrVariable(l, T_FIELD)
}

function lexVariable(l: Lexer): StateFn | null {
  return lexFieldOrVariable(l, T_VARIABLE)
}

function lexQuoted(l: Lexer, quote: number, type: number, message: string): StateFn | null {
  for (;;) {
    let c = l.next()
    if (c === 0x5c) {
      c = l.next()
      if (c !== EOF && c !== 0x0a) continue
    }
    if (c === EOF || c === 0x0a) return l.errorf(message)
    if (c === quote) break
  }
  l.emit(type)
  return lexInsideAction
}

function lexQuote(l: Lexer): StateFn | null {
  return lexQuoted(l, 0x22, T_STRING, 'unterminated quoted string')
}

function lexChar(l: Lexer): StateFn | null {
  return lexQuoted(l, 0x27, T_CHAR_CONSTANT, 'unterminated character constant')
}

function lexRawQuote(l: Lexer): StateFn | null {
  const x = l.input.indexOf('`', l.pos)
  if (x < 0) return l.errorf('unterminated raw quoted string')
  l.pos = x + 1
  l.emit(T_RAW_STRING)
  return lexInsideAction
}

function scanNumber(l: Lexer): boolean {
  l.accept('+-')
  let digits = '0123456789_'
  if (l.accept('0')) {
    if (l.accept('xX')) digits = '0123456789abcdefABCDEF_'
    else if (l.accept('oO')) digits = '01234567_'
    else if (l.accept('bB')) digits = '01_'
  }
  l.acceptRun(digits)
  if (l.accept('.')) l.acceptRun(digits)
  if (digits.length === 11 && l.accept('eE')) {
    l.accept('+-')
    l.acceptRun('0123456789_')
  }
  if (digits.length === 23 && l.accept('pP')) {
    l.accept('+-')
    l.acceptRun('0123456789_')
  }
  l.accept('i')
  if (isAlphaNumeric(l.peek())) {
    l.pos++
    return false
  }
  return true
}

function lexNumber(l: Lexer): StateFn | null {
  if (!scanNumber(l)) return l.errorf(`bad number syntax: ${goQuote(l.input.slice(l.start, l.pos))}`)
  const sign = l.peek()
  if (sign === 0x2b || sign === 0x2d) {
    if (!scanNumber(l) || l.input[l.pos - 1] !== 'i') return l.errorf(`bad number syntax: ${goQuote(l.input.slice(l.start, l.pos))}`)
    l.emit(T_COMPLEX)
    return lexInsideAction
  }
  l.emit(T_NUMBER)
  return lexInsideAction
}

// ================================================================== parse tree

const N_TEXT = 1
const N_ACTION = 2
const N_IF = 3
const N_WITH = 4
const N_RANGE = 5
const N_BREAK = 6
const N_CONTINUE = 7
const N_TEMPLATE = 8
const N_END = 9
const N_ELSE = 10
const N_PIPE = 11
const N_COMMAND = 12
const N_FIELD = 13
const N_CHAIN = 14
const N_VARIABLE = 15
const N_IDENT = 16
const N_DOT = 17
const N_NIL = 18
const N_BOOL = 19
const N_NUMBER = 20
const N_STRING = 21

interface TextNode { readonly k: typeof N_TEXT; readonly pos: number; readonly text: string }
interface ActionNode { readonly k: typeof N_ACTION; readonly pos: number; readonly pipe: PipeNode }
interface BranchNode {
  readonly k: typeof N_IF | typeof N_WITH | typeof N_RANGE
  readonly pos: number
  readonly pipe: PipeNode
  readonly list: Node[]
  readonly elseList: Node[] | null
}
interface SimpleNode { readonly k: typeof N_BREAK | typeof N_CONTINUE | typeof N_END | typeof N_ELSE | typeof N_DOT | typeof N_NIL; readonly pos: number }
interface TemplateNode { readonly k: typeof N_TEMPLATE; readonly pos: number; readonly name: string; readonly pipe: PipeNode | null }
interface PipeNode {
  readonly k: typeof N_PIPE
  readonly pos: number
  readonly decl: VariableNode[]
  isAssign: boolean
  readonly cmds: CommandNode[]
}
interface CommandNode { readonly k: typeof N_COMMAND; readonly pos: number; readonly args: Operand[] }
/** Per field-position inline cache: type seen last and its field getter. */
interface FieldCache { readonly types: (GoTypeInfo | undefined)[]; readonly getters: ((self: unknown) => unknown)[] }
interface FieldNode { readonly k: typeof N_FIELD; readonly pos: number; readonly idents: string[]; readonly cache: FieldCache }
interface ChainNode { readonly k: typeof N_CHAIN; readonly pos: number; readonly node: Operand; readonly fields: string[]; readonly cache: FieldCache }
interface VariableNode {
  readonly k: typeof N_VARIABLE
  readonly pos: number
  readonly name: string
  /** Frame slot; -1 for an assignment to a variable never declared. */
  readonly slot: number
  readonly fields: string[]
  readonly cache: FieldCache
}
interface IdentNode { readonly k: typeof N_IDENT; readonly pos: number; readonly name: string; readonly fn: GoFunc }
interface BoolNode { readonly k: typeof N_BOOL; readonly pos: number; readonly value: boolean }
interface NumberNode {
  readonly k: typeof N_NUMBER
  readonly pos: number
  readonly text: string
  /** null: an integer that overflows int64 (an execution error, as in Go). */
  readonly value: bigint | number | null
}
interface StringNode { readonly k: typeof N_STRING; readonly pos: number; readonly quoted: string; readonly value: string }

type Operand = FieldNode | ChainNode | VariableNode | IdentNode | SimpleNode | BoolNode | NumberNode | StringNode | PipeNode
type Node = TextNode | ActionNode | BranchNode | SimpleNode | TemplateNode | Operand | CommandNode

interface Tree {
  readonly name: string
  readonly root: Node[]
  /** Variable slots a frame needs; slot 0 is `$`. */
  readonly slots: number
}

function listString(list: readonly Node[]): string {
  let s = ''
  for (const n of list) s += nodeString(n)
  return s
}

/** Go's Node.String(), used in error messages. */
function nodeString(n: Node): string {
  switch (n.k) {
    case N_TEXT: return n.text
    case N_ACTION: return `{{${nodeString(n.pipe)}}}`
    case N_IF: case N_WITH: case N_RANGE: {
      const name = n.k === N_IF ? 'if' : n.k === N_WITH ? 'with' : 'range'
      let s = `{{${name} ${nodeString(n.pipe)}}}${listString(n.list)}`
      if (n.elseList) s += `{{else}}${listString(n.elseList)}`
      return s + '{{end}}'
    }
    case N_BREAK: return '{{break}}'
    case N_CONTINUE: return '{{continue}}'
    case N_END: return '{{end}}'
    case N_ELSE: return '{{else}}'
    case N_TEMPLATE: return n.pipe ? `{{template ${goQuote(n.name)} ${nodeString(n.pipe)}}}` : `{{template ${goQuote(n.name)}}}`
    case N_PIPE: {
      let s = ''
      if (n.decl.length > 0) s = n.decl.map((v) => v.name).join(', ') + (n.isAssign ? ' = ' : ' := ')
      return s + n.cmds.map(nodeString).join(' | ')
    }
    case N_COMMAND: return n.args.map((a) => (a.k === N_PIPE ? `(${nodeString(a)})` : nodeString(a))).join(' ')
    case N_FIELD: return '.' + n.idents.join('.')
    case N_CHAIN: return (n.node.k === N_PIPE ? `(${nodeString(n.node)})` : nodeString(n.node)) + '.' + n.fields.join('.')
    case N_VARIABLE: return n.fields.length > 0 ? n.name + '.' + n.fields.join('.') : n.name
    case N_IDENT: return n.name
    case N_DOT: return '.'
    case N_NIL: return 'nil'
    case N_BOOL: return n.value ? 'true' : 'false'
    case N_NUMBER: return n.text
    case N_STRING: return n.quoted
  }
}

function newCache(): FieldCache {
  return { types: [], getters: [] }
}

function isEmptyTree(list: readonly Node[]): boolean {
  for (const n of list) {
    if (n.k !== N_TEXT || n.text.trim() !== '') return false
  }
  return true
}

// ================================================================== literals

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
function unquote(q: string): string | null {
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
const INT_OVERFLOW = 'overflow'

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
function parseNumber(text: string, type: number): bigint | number | null | typeof INT_OVERFLOW | undefined {
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

// ================================================================== parser

interface ScopeVar { readonly name: string; readonly slot: number }

class Parser {
  private readonly toks: Token[]
  private i = 0
  private cur: Token
  private readonly parseName: string
  readonly trees = new Map<string, Tree>()
  // Per-tree state: define and block bodies start afresh with only `$`.
  private vars: ScopeVar[] = [{ name: '$', slot: 0 }]
  private slots = 1
  private rangeDepth = 0
  private actionLine = 0

  constructor(source: string, name: string) {
    this.toks = new Lexer(source).run()
    this.cur = this.toks[0]!
    this.parseName = name
  }

  parse(): void {
    const root: Node[] = []
    while (this.peek().type !== T_EOF) {
      if (this.peek().type === T_LEFT_DELIM) {
        const save = this.i
        this.next()
        if (this.nextNonSpace().type === T_DEFINE) {
          this.parseDefinition()
          continue
        }
        this.i = save
      }
      const n = this.textOrAction()
      if (n.k === N_END || n.k === N_ELSE) this.errorf(`unexpected ${nodeString(n)}`)
      root.push(n)
    }
    this.addTree(this.parseName, root, this.slots)
  }

  // ---- tokens

  private next(): Token {
    const t = this.toks[this.i] ?? this.toks[this.toks.length - 1]!
    if (this.i < this.toks.length) this.i++
    this.cur = t
    return t
  }

  private backup(): void {
    this.i--
  }

  private peek(): Token {
    const t = this.toks[this.i] ?? this.toks[this.toks.length - 1]!
    this.cur = t
    return t
  }

  private nextNonSpace(): Token {
    let t: Token
    do t = this.next()
    while (t.type === T_SPACE)
    return t
  }

  private peekNonSpace(): Token {
    const t = this.nextNonSpace()
    this.backup()
    return t
  }

  private errorf(message: string): never {
    throw new GoTemplateParseError(`template: ${this.parseName}:${this.cur.line}: ${message}`)
  }

  private unexpected(token: Token, context: string): never {
    if (token.type === T_ERROR) {
      let extra = ''
      if (this.actionLine !== 0 && this.actionLine !== token.line) {
        extra = ` in action started at ${this.parseName}:${this.actionLine}`
        if (token.val.endsWith(' action')) extra = extra.slice(' in action'.length)
      }
      this.errorf(token.val + extra)
    }
    this.errorf(`unexpected ${tokenString(token)} in ${context}`)
  }

  private expect(type: number, context: string): Token {
    const t = this.nextNonSpace()
    if (t.type !== type) this.unexpected(t, context)
    return t
  }

  // ---- trees

  private addTree(name: string, root: Node[], slots: number): void {
    const existing = this.trees.get(name)
    if (existing === undefined || isEmptyTree(existing.root)) {
      this.trees.set(name, { name, root, slots })
      return
    }
    if (!isEmptyTree(root)) this.errorf(`template: multiple definition of template ${goQuote(name)}`)
  }

  /** Parses a define/block body as its own tree, with its own variables. */
  private parseSubtree(name: string, context: string): void {
    const saved = [this.vars, this.slots, this.rangeDepth] as const
    this.vars = [{ name: '$', slot: 0 }]
    this.slots = 1
    this.rangeDepth = 0
    const [list, end] = this.itemList()
    if (end.k !== N_END) this.errorf(`unexpected ${nodeString(end)} in ${context}`)
    this.addTree(name, list, this.slots)
    ;[this.vars, this.slots, this.rangeDepth] = saved
  }

  private parseDefinition(): void {
    const context = 'define clause'
    const t = this.nextNonSpace()
    if (t.type !== T_STRING && t.type !== T_RAW_STRING) this.unexpected(t, context)
    const name = unquote(t.val)
    if (name === null) this.errorf('invalid syntax')
    this.expect(T_RIGHT_DELIM, context)
    this.parseSubtree(name, context)
  }

  private itemList(): [Node[], Node] {
    const list: Node[] = []
    while (this.peekNonSpace().type !== T_EOF) {
      const n = this.textOrAction()
      if (n.k === N_END || n.k === N_ELSE) return [list, n]
      list.push(n)
    }
    this.errorf('unexpected EOF')
  }

  private textOrAction(): Node {
    const t = this.nextNonSpace()
    if (t.type === T_TEXT) return { k: N_TEXT, pos: t.pos, text: t.val }
    if (t.type === T_LEFT_DELIM) {
      this.actionLine = t.line
      const n = this.action()
      this.actionLine = 0
      return n
    }
    this.unexpected(t, 'input')
  }

  private action(): Node {
    const t = this.nextNonSpace()
    switch (t.type) {
      case T_BLOCK: return this.blockControl()
      case T_BREAK: case T_CONTINUE: return this.loopControl(t)
      case T_ELSE: return this.elseControl()
      case T_END: return { k: N_END, pos: this.expect(T_RIGHT_DELIM, 'end').pos }
      case T_IF: return this.ifControl()
      case T_RANGE: return this.branch(N_RANGE, 'range')
      case T_TEMPLATE: return this.templateControl()
      case T_WITH: return this.withControl()
    }
    this.backup()
    const pos = this.peek().pos
    return { k: N_ACTION, pos, pipe: this.pipeline('command', T_RIGHT_DELIM) }
  }

  private loopControl(t: Token): Node {
    const name = t.type === T_BREAK ? '{{break}}' : '{{continue}}'
    const next = this.nextNonSpace()
    if (next.type !== T_RIGHT_DELIM) this.unexpected(next, name)
    if (this.rangeDepth === 0) this.errorf(`${name} outside {{range}}`)
    return { k: t.type === T_BREAK ? N_BREAK : N_CONTINUE, pos: t.pos }
  }

  private elseControl(): Node {
    const peek = this.peekNonSpace()
    // "else if" / "else with": leave the keyword pending for branch().
    if (peek.type === T_IF || peek.type === T_WITH) return { k: N_ELSE, pos: peek.pos }
    return { k: N_ELSE, pos: this.expect(T_RIGHT_DELIM, 'else').pos }
  }

  private ifControl(): BranchNode {
    return this.branch(N_IF, 'if')
  }

  private withControl(): BranchNode {
    return this.branch(N_WITH, 'with')
  }

  private branch(k: typeof N_IF | typeof N_WITH | typeof N_RANGE, context: string): BranchNode {
    const mark = this.vars.length
    const pipe = this.pipeline(context, T_RIGHT_DELIM)
    if (k === N_RANGE) this.rangeDepth++
    let [list, next] = this.itemList()
    if (k === N_RANGE) this.rangeDepth--
    let elseList: Node[] | null = null
    if (next.k === N_ELSE) {
      if (k === N_IF && this.peek().type === T_IF) {
        this.next()
        elseList = [this.ifControl()]
      } else if (k === N_WITH && this.peek().type === T_WITH) {
        this.next()
        elseList = [this.withControl()]
      } else {
        ;[elseList, next] = this.itemList()
        if (next.k !== N_END) this.errorf(`expected end; found ${nodeString(next)}`)
      }
    }
    this.vars.length = mark
    return { k, pos: pipe.pos, pipe, list, elseList }
  }

  private templateName(t: Token, context: string): string {
    if (t.type !== T_STRING && t.type !== T_RAW_STRING) this.unexpected(t, context)
    const name = unquote(t.val)
    if (name === null) this.errorf('invalid syntax')
    return name
  }

  private templateControl(): Node {
    const context = 'template clause'
    const t = this.nextNonSpace()
    const name = this.templateName(t, context)
    let pipe: PipeNode | null = null
    if (this.nextNonSpace().type !== T_RIGHT_DELIM) {
      this.backup()
      pipe = this.pipeline(context, T_RIGHT_DELIM)
    }
    return { k: N_TEMPLATE, pos: t.pos, name, pipe }
  }

  private blockControl(): Node {
    const context = 'block clause'
    const t = this.nextNonSpace()
    const name = this.templateName(t, context)
    const pipe = this.pipeline(context, T_RIGHT_DELIM)
    this.parseSubtree(name, context)
    return { k: N_TEMPLATE, pos: t.pos, name, pipe }
  }

  // ---- pipelines

  private pipeline(context: string, end: number): PipeNode {
    const pipe: PipeNode = { k: N_PIPE, pos: this.peekNonSpace().pos, decl: [], isAssign: false, cmds: [] }
    const declTokens: Token[] = []
    for (;;) {
      const v = this.peekNonSpace()
      if (v.type !== T_VARIABLE) break
      const save = this.i
      this.next()
      const next = this.peekNonSpace()
      if (next.type === T_ASSIGN || next.type === T_DECLARE) {
        pipe.isAssign = next.type === T_ASSIGN
        this.nextNonSpace()
        declTokens.push(v)
      } else if (next.type === T_CHAR && next.val === ',') {
        this.nextNonSpace()
        declTokens.push(v)
        if (context === 'range' && declTokens.length < 2) {
          const p = this.peekNonSpace().type
          if (p === T_VARIABLE || p === T_RIGHT_DELIM || p === T_RIGHT_PAREN) continue
          this.errorf('range can only initialize variables')
        }
        this.errorf(`too many declarations in ${context}`)
      } else this.i = save
      break
    }
    for (;;) {
      const t = this.nextNonSpace()
      if (t.type === end) break
      switch (t.type) {
        case T_BOOL: case T_CHAR_CONSTANT: case T_COMPLEX: case T_DOT: case T_FIELD: case T_IDENTIFIER:
        case T_NUMBER: case T_NIL: case T_RAW_STRING: case T_STRING: case T_VARIABLE: case T_LEFT_PAREN:
          this.backup()
          pipe.cmds.push(this.command())
          break
        default:
          this.unexpected(t, context)
      }
    }
    if (pipe.cmds.length === 0) this.errorf(`missing value for ${context}`)
    for (let i = 1; i < pipe.cmds.length; i++) {
      switch (pipe.cmds[i]!.args[0]!.k) {
        case N_BOOL: case N_DOT: case N_NIL: case N_NUMBER: case N_STRING:
          this.errorf(`non executable command in pipeline stage ${i + 1}`)
      }
    }
    // Declared after the commands: in "$x := $x" the right side is the outer $x.
    for (const t of declTokens) pipe.decl.push(this.declareVar(t, pipe.isAssign))
    return pipe
  }

  private lookupVar(name: string): number {
    for (let i = this.vars.length - 1; i >= 0; i--) if (this.vars[i]!.name === name) return this.vars[i]!.slot
    return -1
  }

  private declareVar(t: Token, assign: boolean): VariableNode {
    const slot = assign ? this.lookupVar(t.val) : this.slots++
    this.vars.push({ name: t.val, slot })
    return { k: N_VARIABLE, pos: t.pos, name: t.val, slot, fields: [], cache: newCache() }
  }

  private command(): CommandNode {
    const cmd: CommandNode = { k: N_COMMAND, pos: this.peekNonSpace().pos, args: [] }
    for (;;) {
      this.peekNonSpace()
      const operand = this.operand()
      if (operand !== null) cmd.args.push(operand)
      const t = this.next()
      if (t.type === T_SPACE) continue
      if (t.type === T_RIGHT_DELIM || t.type === T_RIGHT_PAREN) this.backup()
      else if (t.type !== T_PIPE) this.unexpected(t, 'operand')
      break
    }
    if (cmd.args.length === 0) this.errorf('empty command')
    return cmd
  }

  private operand(): Operand | null {
    const node = this.term()
    if (node === null || this.peek().type !== T_FIELD) return node
    const pos = this.peek().pos
    const fields: string[] = []
    while (this.peek().type === T_FIELD) fields.push(this.next().val.slice(1))
    switch (node.k) {
      case N_FIELD: return { k: N_FIELD, pos, idents: [...node.idents, ...fields], cache: newCache() }
      case N_VARIABLE: return { k: N_VARIABLE, pos, name: node.name, slot: node.slot, fields: [...node.fields, ...fields], cache: newCache() }
      case N_BOOL: case N_STRING: case N_NUMBER: case N_NIL: case N_DOT:
        this.errorf(`unexpected . after term ${goQuote(nodeString(node))}`)
    }
    return { k: N_CHAIN, pos, node, fields, cache: newCache() }
  }

  private term(): Operand | null {
    const t = this.nextNonSpace()
    switch (t.type) {
      case T_IDENTIFIER: {
        const fn = BUILTINS.get(t.val)
        if (fn === undefined) this.errorf(`function ${goQuote(t.val)} not defined`)
        return { k: N_IDENT, pos: t.pos, name: t.val, fn }
      }
      case T_DOT: return { k: N_DOT, pos: t.pos }
      case T_NIL: return { k: N_NIL, pos: t.pos }
      case T_VARIABLE: {
        const slot = this.lookupVar(t.val)
        if (slot < 0) this.errorf(`undefined variable ${goQuote(t.val)}`)
        return { k: N_VARIABLE, pos: t.pos, name: t.val, slot, fields: [], cache: newCache() }
      }
      case T_FIELD: return { k: N_FIELD, pos: t.pos, idents: [t.val.slice(1)], cache: newCache() }
      case T_BOOL: return { k: N_BOOL, pos: t.pos, value: t.val === 'true' }
      case T_CHAR_CONSTANT: case T_COMPLEX: case T_NUMBER: {
        const value = parseNumber(t.val, t.type)
        if (value === INT_OVERFLOW) this.errorf(`integer overflow: ${goQuote(t.val)}`)
        if (value === undefined) {
          if (t.type === T_COMPLEX || t.val.endsWith('i')) this.errorf(`complex constant ${t.val} is not supported`)
          if (t.type === T_CHAR_CONSTANT) this.errorf(`malformed character constant: ${t.val}`)
          this.errorf(`illegal number syntax: ${goQuote(t.val)}`)
        }
        return { k: N_NUMBER, pos: t.pos, text: t.val, value }
      }
      case T_LEFT_PAREN: return this.pipeline('parenthesized pipeline', T_RIGHT_PAREN)
      case T_STRING: case T_RAW_STRING: {
        const value = unquote(t.val)
        if (value === null) this.errorf('invalid syntax')
        return { k: N_STRING, pos: t.pos, quoted: t.val, value }
      }
    }
    this.backup()
    return null
  }
}

// ================================================================== builtins

function goLen(v: unknown): bigint {
  switch (kindOf(v)) {
    case V_STRING: return BigInt(Buffer.byteLength(v as string, 'utf8'))
    case V_SLICE: return BigInt((v as unknown[]).length)
    case V_MAP: return BigInt(mapSize(v as object))
    case V_NIL: throw new Error('len of nil pointer')
    case V_INVALID: throw new Error('reflect: call of reflect.Value.Type on zero Value')
  }
  throw new Error(`len of type ${typeName(v)}`)
}

function indexArg(index: unknown, len: number): number {
  if (typeof index !== 'bigint') {
    if (index === undefined || index === null) throw new Error('cannot index slice/array with nil')
    throw new Error(`cannot index slice/array with type ${typeName(index)}`)
  }
  if (index < 0n || index > BigInt(len)) throw new Error(`index out of range: ${index}`)
  return Number(index)
}

function goIndex(args: unknown[]): unknown {
  let item = args[0]
  if (item === undefined || item === null) throw new Error('index of untyped nil')
  for (let i = 1; i < args.length; i++) {
    const index = args[i]
    switch (kindOf(item)) {
      case V_SLICE: {
        const a = item as unknown[]
        const x = indexArg(index, a.length)
        if (x === a.length) throw new Error('reflect: slice index out of range')
        item = a[x]
        break
      }
      case V_STRING: {
        const bytes = Buffer.from(item as string, 'utf8')
        const x = indexArg(index, bytes.length)
        if (x === bytes.length) throw new Error('reflect: string index out of range')
        item = BigInt(bytes[x]!)
        break
      }
      case V_MAP: {
        const m = item as object
        if (typeof index !== 'string') {
          if (index === undefined || index === null) throw new Error('value is nil; should be of type string')
          throw new Error(`value has type ${typeName(index)}; should be string`)
        }
        item = mapHas(m, index) ? mapGet(m, index) : m instanceof GoMap ? m.type.zero : undefined
        break
      }
      case V_NIL: case V_INVALID:
        throw new Error('index of nil pointer')
      default:
        throw new Error(`can't index item of type ${typeName(item)}`)
    }
  }
  return item
}

function goSlice(args: unknown[]): unknown {
  const item = args[0]
  if (item === undefined || item === null) throw new Error('slice of untyped nil')
  if (args.length > 4) throw new Error(`too many slice indexes: ${args.length - 1}`)
  const isString = typeof item === 'string'
  if (!isString && !Array.isArray(item)) throw new Error(`can't slice item of type ${typeName(item)}`)
  if (isString && args.length > 3) throw new Error('cannot 3-index slice a string')
  const bytes = isString ? Buffer.from(item, 'utf8') : null
  const cap = bytes ? bytes.length : (item as unknown[]).length
  const idx = [0, cap, cap]
  for (let i = 1; i < args.length; i++) idx[i - 1] = indexArg(args[i], cap)
  if (idx[0]! > idx[1]!) throw new Error(`invalid slice index: ${idx[0]} > ${idx[1]}`)
  if (bytes) return bytes.subarray(idx[0], idx[1]).toString('utf8')
  return (item as unknown[]).slice(idx[0], idx[1])
}

const K_INVALID = 0
const K_BOOL = 1
const K_INT = 2
const K_FLOAT = 3
const K_STRING = 4

function basicKind(v: unknown): number {
  switch (typeof v) {
    case 'boolean': return K_BOOL
    case 'bigint': return K_INT
    case 'number': return K_FLOAT
    case 'string': return K_STRING
  }
  return K_INVALID
}

function isComparable(v: unknown): boolean {
  const k = kindOf(v)
  return k !== V_SLICE && k !== V_MAP && k !== V_FUNC
}

function goEq(args: unknown[]): boolean {
  const a = args[0] ?? undefined // a nil interface compares as Go's invalid value
  if (args.length < 2) throw new Error('missing argument for comparison')
  const k1 = basicKind(a)
  for (let i = 1; i < args.length; i++) {
    const b = args[i] ?? undefined
    const k2 = basicKind(b)
    if (k1 !== k2) {
      if (a !== undefined && b !== undefined) throw new Error('incompatible types for comparison')
      continue
    }
    if (k1 === K_INVALID && !isComparable(b)) throw new Error(`non-comparable type ${printArg(PLAIN, b, 'v', 0)}: ${typeName(b)}`)
    if (a === b) return true
  }
  return false
}

function goLt(a: unknown, b: unknown): boolean {
  const k1 = basicKind(a)
  const k2 = basicKind(b)
  if (k1 === K_INVALID || k2 === K_INVALID) throw new Error('invalid type for comparison')
  if (k1 !== k2) throw new Error('incompatible types for comparison')
  if (k1 === K_BOOL) throw new Error('invalid type for comparison')
  return (a as number) < (b as number)
}

/** Arguments of js/html/urlquery as one string (text/template's evalArgs). */
function evalArgs(args: unknown[]): string {
  if (args.length === 1 && typeof args[0] === 'string') return args[0]
  // Each argument goes through printableValue first: nil becomes the string "<no value>".
  const printable = new Array<unknown>(args.length)
  for (let i = 0; i < args.length; i++) {
    const a = args[i]
    printable[i] = a === null || a === undefined ? '<no value>' : kindOf(a) === V_STRUCT ? printValue(a) : a
  }
  return sprint(printable)
}

const AND: GoFunc = { params: ['value'], variadic: 'value', call: () => undefined }
const OR: GoFunc = { params: ['value'], variadic: 'value', call: () => undefined }

const BUILTINS: ReadonlyMap<string, GoFunc> = new Map<string, GoFunc>([
  ['and', AND],
  ['or', OR],
  ['not', { params: ['value'], call: (a) => !truth(a[0]) }],
  ['len', { params: ['value'], call: (a) => goLen(a[0]) }],
  ['index', { params: ['value'], variadic: 'value', call: goIndex }],
  ['slice', { params: ['value'], variadic: 'value', call: goSlice }],
  ['print', { params: [], variadic: 'any', call: sprint }],
  ['println', { params: [], variadic: 'any', call: sprintln }],
  ['printf', { params: ['string'], variadic: 'any', call: (a) => sprintf(a[0] as string, a, 1) }],
  ['html', { params: [], variadic: 'any', call: (a) => htmlEscapeString(evalArgs(a)) }],
  ['js', { params: [], variadic: 'any', call: (a) => jsEscapeString(evalArgs(a)) }],
  ['urlquery', { params: [], variadic: 'any', call: (a) => queryEscape(evalArgs(a)) }],
  ['eq', { params: ['value'], variadic: 'value', call: goEq }],
  ['ne', { params: ['value', 'value'], call: (a) => !goEq(a) }],
  ['lt', { params: ['value', 'value'], call: (a) => goLt(a[0], a[1]) }],
  ['le', { params: ['value', 'value'], call: (a) => goLt(a[0], a[1]) || goEq(a) }],
  ['gt', { params: ['value', 'value'], call: (a) => !(goLt(a[0], a[1]) || goEq(a)) }],
  ['ge', { params: ['value', 'value'], call: (a) => !goLt(a[0], a[1]) }],
])

// ================================================================== executor

/** No final value from a previous pipeline stage. */
const MISSING: unique symbol = Symbol('missing')
/** A variable slot not yet assigned in this execution. */
const UNSET: unique symbol = Symbol('unset')
const MAX_EXEC_DEPTH = 1000
const WALK_NORMAL = 0
const WALK_BREAK = 1
const WALK_CONTINUE = 2

interface ExecState {
  readonly tmpl: GoTemplate
  readonly trees: ReadonlyMap<string, Tree>
  out: string
  node: Node | null
  tree: Tree
  vars: unknown[]
  depth: number
}

function execError(s: ExecState, message: string): never {
  const name = s.tree.name
  if (s.node === null) throw new GoTemplateExecError(`template: ${name}: ${message}`)
  const src = s.tmpl.source
  const pos = s.node.pos
  const before = src.slice(0, pos)
  const nl = before.lastIndexOf('\n')
  let line = 1
  for (let i = 0; i < before.length; i++) if (before.charCodeAt(i) === 10) line++
  const col = Buffer.byteLength(before.slice(nl + 1), 'utf8')
  let context = nodeString(s.node)
  if (Buffer.byteLength(context, 'utf8') > 20) context = truncateRunes(context, 20) + '...'
  throw new GoTemplateExecError(`template: ${s.tmpl.name}:${line}:${col}: executing ${goQuote(name)} at <${context}>: ${message}`)
}

function newFrame(tree: Tree, dot: unknown): unknown[] {
  if (tree.slots === 1) return [dot]
  const vars = new Array<unknown>(tree.slots).fill(UNSET)
  vars[0] = dot
  return vars
}

function walkList(s: ExecState, dot: unknown, list: readonly Node[]): number {
  for (let i = 0; i < list.length; i++) {
    const r = walk(s, dot, list[i]!)
    if (r !== WALK_NORMAL) return r
  }
  return WALK_NORMAL
}

function walk(s: ExecState, dot: unknown, n: Node): number {
  switch (n.k) {
    case N_TEXT:
      s.out += n.text
      return WALK_NORMAL
    case N_ACTION: {
      const v = evalPipeline(s, dot, n.pipe)
      if (n.pipe.decl.length === 0) {
        if (typeof v === 'function' || typeof v === 'symbol') {
          s.node = n
          execError(s, `can't print ${nodeString(n)} of type ${typeName(v)}`)
        }
        s.out += printValue(v)
      }
      return WALK_NORMAL
    }
    case N_IF: case N_WITH: {
      const v = evalPipeline(s, dot, n.pipe)
      if (truth(v)) return walkList(s, n.k === N_WITH ? v : dot, n.list)
      return n.elseList ? walkList(s, dot, n.elseList) : WALK_NORMAL
    }
    case N_RANGE: return walkRange(s, dot, n)
    case N_BREAK: return WALK_BREAK
    case N_CONTINUE: return WALK_CONTINUE
    case N_TEMPLATE: return walkTemplate(s, dot, n)
  }
  return WALK_NORMAL
}

function rangeIteration(s: ExecState, n: BranchNode, index: unknown, elem: unknown): number {
  const d = n.pipe.decl
  if (d.length > 0) {
    // One variable gets the element; two get index and element.
    if (n.pipe.isAssign) setVar(s, d[0]!, d.length > 1 ? index : elem)
    else s.vars[d[d.length - 1]!.slot] = elem
  }
  if (d.length > 1) {
    if (n.pipe.isAssign) setVar(s, d[1]!, elem)
    else s.vars[d[0]!.slot] = index
  }
  return walkList(s, elem, n.list)
}

function walkRange(s: ExecState, dot: unknown, n: BranchNode): number {
  s.node = n
  const val = evalPipeline(s, dot, n.pipe)
  let ran = false
  switch (kindOf(val)) {
    case V_SLICE: {
      const a = val as unknown[]
      for (let i = 0; i < a.length; i++) {
        ran = true
        if (rangeIteration(s, n, BigInt(i), a[i]) === WALK_BREAK) break
      }
      break
    }
    case V_MAP: {
      const m = val as object
      for (const k of mapKeys(m)) {
        ran = true
        if (rangeIteration(s, n, k, mapGet(m, k)) === WALK_BREAK) break
      }
      break
    }
    case V_INT: {
      if (n.pipe.decl.length > 1) execError(s, `can't use ${printValue(val)} to iterate over more than one variable`)
      for (let i = 0n; i < (val as bigint); i++) {
        ran = true
        if (rangeIteration(s, n, i, i) === WALK_BREAK) break
      }
      break
    }
    case V_INVALID: case V_NIL:
      break
    default:
      execError(s, `range can't iterate over ${printValue(val)}`)
  }
  if (!ran && n.elseList) return walkList(s, dot, n.elseList)
  return WALK_NORMAL
}

function walkTemplate(s: ExecState, dot: unknown, n: TemplateNode): number {
  s.node = n
  const tree = s.trees.get(n.name)
  if (tree === undefined) execError(s, `template ${goQuote(n.name)} not defined`)
  if (s.depth === MAX_EXEC_DEPTH) execError(s, `exceeded maximum template depth (${MAX_EXEC_DEPTH})`)
  const newDot = n.pipe ? evalPipeline(s, dot, n.pipe) : undefined
  const saved = [s.tree, s.vars] as const
  s.tree = tree
  s.vars = newFrame(tree, newDot)
  s.depth++
  walkList(s, newDot, tree.root)
  s.depth--
  ;[s.tree, s.vars] = saved
  return WALK_NORMAL
}

function setVar(s: ExecState, v: VariableNode, value: unknown): void {
  if (v.slot < 0) execError(s, `undefined variable: ${v.name}`)
  s.vars[v.slot] = value
}

function evalPipeline(s: ExecState, dot: unknown, pipe: PipeNode): unknown {
  s.node = pipe
  let value: unknown = MISSING
  for (let i = 0; i < pipe.cmds.length; i++) value = evalCommand(s, dot, pipe.cmds[i]!, value)
  for (let i = 0; i < pipe.decl.length; i++) {
    const v = pipe.decl[i]!
    if (pipe.isAssign) setVar(s, v, value)
    else s.vars[v.slot] = value
  }
  return value
}

function notAFunction(s: ExecState, args: readonly Operand[] | null, final: unknown): void {
  if ((args !== null && args.length > 1) || final !== MISSING) {
    execError(s, `can't give argument to non-function ${nodeString(args![0]!)}`)
  }
}

function evalCommand(s: ExecState, dot: unknown, cmd: CommandNode, final: unknown): unknown {
  const first = cmd.args[0]!
  switch (first.k) {
    case N_FIELD: return evalFieldNode(s, dot, first, cmd.args, final)
    case N_CHAIN: return evalChainNode(s, dot, first, cmd.args, final)
    case N_IDENT: return evalFunction(s, dot, first, cmd, cmd.args, final)
    case N_PIPE:
      notAFunction(s, cmd.args, final)
      return evalPipeline(s, dot, first)
    case N_VARIABLE: return evalVariableNode(s, dot, first, cmd.args, final)
  }
  s.node = first
  notAFunction(s, cmd.args, final)
  switch (first.k) {
    case N_BOOL: return first.value
    case N_DOT: return dot
    case N_NIL: return execError(s, 'nil is not a command')
    case N_NUMBER: return numberValue(s, first)
    case N_STRING: return first.value
  }
  return execError(s, `can't evaluate command ${goQuote(nodeString(first))}`)
}

function numberValue(s: ExecState, n: NumberNode): bigint | number {
  if (n.value === null) execError(s, `${n.text} overflows int`)
  return n.value
}

function getVar(s: ExecState, v: VariableNode): unknown {
  const value = v.slot < 0 ? UNSET : s.vars[v.slot]
  if (value === UNSET) execError(s, `undefined variable: ${v.name}`)
  return value
}

function evalVariableNode(s: ExecState, dot: unknown, v: VariableNode, args: readonly Operand[] | null, final: unknown): unknown {
  s.node = v
  const value = getVar(s, v)
  if (v.fields.length === 0) {
    notAFunction(s, args, final)
    return value
  }
  return evalFieldChain(s, dot, value, v, v.fields, args, final)
}

function evalFieldNode(s: ExecState, dot: unknown, field: FieldNode, args: readonly Operand[] | null, final: unknown): unknown {
  s.node = field
  return evalFieldChain(s, dot, dot, field, field.idents, args, final)
}

function evalChainNode(s: ExecState, dot: unknown, chain: ChainNode, args: readonly Operand[] | null, final: unknown): unknown {
  s.node = chain
  if (chain.node.k === N_NIL) execError(s, `indirection through explicit nil in ${nodeString(chain)}`)
  const receiver = evalArg(s, dot, null, chain.node)
  return evalFieldChain(s, dot, receiver, chain, chain.fields, args, final)
}

function evalFieldChain(s: ExecState, dot: unknown, receiver: unknown, node: FieldNode | VariableNode | ChainNode, idents: readonly string[], args: readonly Operand[] | null, final: unknown): unknown {
  const n = idents.length
  for (let i = 0; i < n - 1; i++) receiver = evalField(s, dot, i, node, null, MISSING, receiver)
  return evalField(s, dot, n - 1, node, args, final, receiver)
}

function evalField(s: ExecState, dot: unknown, i: number, node: FieldNode | VariableNode | ChainNode, args: readonly Operand[] | null, final: unknown, receiver: unknown): unknown {
  if (receiver === undefined) return undefined
  const hasArgs = (args !== null && args.length > 1) || final !== MISSING
  const cache = node.cache
  const info = typeof receiver === 'object' && receiver !== null ? (receiver as Partial<GoStruct>)[goType] : undefined
  // Inline cache: this position last resolved a plain field of the same type.
  if (info !== undefined && cache.types[i] === info && !hasArgs) return cache.getters[i]!(receiver)
  const name = (node.k === N_FIELD ? node.idents : node.fields)[i]!
  if (receiver === null) execError(s, `nil pointer evaluating interface {}.${name}`)
  const kind = kindOf(receiver)
  if (info !== undefined) {
    const method = info.methods?.get(name)
    if (method !== undefined) return evalCall(s, dot, method, receiver, node, name, args, final)
    if (kind === V_STRUCT) {
      const getter = info.fields?.get(name)
      if (getter === undefined) execError(s, `can't evaluate field ${name} in type ${info.name}`)
      if (hasArgs) execError(s, `${name} has arguments but cannot be invoked as function`)
      cache.types[i] = info
      cache.getters[i] = getter
      return getter(receiver)
    }
  }
  if (kind === V_MAP) {
    if (hasArgs) execError(s, `${name} is not a method but has arguments`)
    return mapGet(receiver as object, name)
  }
  return execError(s, `can't evaluate field ${name} in type ${typeName(receiver)}`)
}

function evalFunction(s: ExecState, dot: unknown, ident: IdentNode, cmd: Node, args: readonly Operand[] | null, final: unknown): unknown {
  s.node = ident
  return evalCall(s, dot, ident.fn, undefined, cmd, ident.name, args, final)
}

function evalCall(s: ExecState, dot: unknown, fn: GoFunc, self: unknown, node: Node, name: string, args: readonly Operand[] | null, final: unknown): unknown {
  const nArgs = args === null ? 0 : args.length - 1
  const numIn = final === MISSING ? nArgs : nArgs + 1
  const numFixed = fn.params.length
  if (fn.variadic !== undefined) {
    if (numIn < numFixed) execError(s, `wrong number of args for ${name}: want at least ${numFixed} got ${nArgs}`)
  } else if (numIn !== numFixed) {
    execError(s, `wrong number of args for ${name}: want ${numFixed} got ${numIn}`)
  }
  if (fn === AND || fn === OR) {
    // and/or short-circuit: the first falsy (and) / truthy (or) argument wins.
    const stopOn = fn === OR
    let v: unknown = undefined
    for (let i = 1; i <= nArgs; i++) {
      v = evalArg(s, dot, 'value', args![i]!)
      if (truth(v) === stopOn) return v
    }
    if (final !== MISSING) v = validateType(s, final, 'value')
    return v
  }
  const argv = new Array<unknown>(numIn)
  for (let i = 0; i < nArgs; i++) argv[i] = evalArg(s, dot, i < numFixed ? fn.params[i]! : fn.variadic!, args![i + 1]!)
  if (final !== MISSING) {
    const t = fn.variadic !== undefined && numIn - 1 >= numFixed ? fn.variadic : fn.params[numIn - 1]!
    argv[numIn - 1] = validateType(s, final, t)
  }
  try {
    return fn.call(argv, self)
  } catch (e) {
    if (e instanceof GoTemplateExecError) throw e
    s.node = node
    return execError(s, `error calling ${name}: ${e instanceof Error ? e.message : String(e)}`)
  }
}

function validateType(s: ExecState, v: unknown, param: GoParam | null): unknown {
  if (v === undefined) {
    if (param === 'any') return null
    if (param === 'string') execError(s, 'invalid value; expected string')
    return undefined
  }
  if (param === 'string' && typeof v !== 'string') execError(s, `wrong type for value; expected string; got ${typeName(v)}`)
  return v
}

function evalArg(s: ExecState, dot: unknown, param: GoParam | null, n: Operand): unknown {
  s.node = n
  switch (n.k) {
    case N_DOT: return validateType(s, dot, param)
    case N_NIL:
      if (param === 'any') return null
      return execError(s, `cannot assign nil to ${param === 'string' ? 'string' : 'reflect.Value'}`)
    case N_FIELD: return validateType(s, evalFieldNode(s, dot, n, null, MISSING), param)
    case N_VARIABLE: return validateType(s, evalVariableNode(s, dot, n, null, MISSING), param)
    case N_PIPE: return validateType(s, evalPipeline(s, dot, n), param)
    case N_IDENT: return validateType(s, evalFunction(s, dot, n, n, null, MISSING), param)
    case N_CHAIN: return validateType(s, evalChainNode(s, dot, n, null, MISSING), param)
  }
  if (param === 'string') {
    if (n.k === N_STRING) return n.value
    return execError(s, `expected string; found ${nodeString(n)}`)
  }
  switch (n.k) {
    case N_BOOL: return n.value
    case N_NUMBER: return numberValue(s, n)
    case N_STRING: return n.value
  }
  return execError(s, `can't handle ${nodeString(n)} for arg`)
}

// ================================================================== API

/** A parsed template: parse once, execute per request. */
export class GoTemplate {
  readonly name: string
  readonly source: string
  readonly #trees: ReadonlyMap<string, Tree>

  constructor(source: string, name: string) {
    const parser = new Parser(source, name)
    parser.parse()
    this.name = name
    this.source = source
    this.#trees = parser.trees
  }

  /** Renders the template with `data` as dot; throws GoTemplateExecError. */
  execute(data: unknown): string {
    const tree = this.#trees.get(this.name)!
    const s: ExecState = { tmpl: this, trees: this.#trees, out: '', node: null, tree, vars: newFrame(tree, data), depth: 0 }
    walkList(s, data, tree.root)
    return s.out
  }
}

/** Parses a Go text/template; throws GoTemplateParseError. */
export function parseGoTemplate(source: string, name = 'template'): GoTemplate {
  return new GoTemplate(source, name)
}
