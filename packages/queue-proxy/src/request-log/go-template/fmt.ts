// Go's fmt for template values: Sprint, Sprintln and Sprintf with flags, width,
// precision and Go's verbs, plus what a template action prints for a value.

import { Buffer } from 'node:buffer'
import { formatFloat, strconvFloat } from './float.ts'
import { goQuote, isPrint, quoteRune, runeCount, truncateRunes } from './quote.ts'
import {
  goType, kindOf, mapGet, mapKeys, typeName, type GoStruct,
  V_BOOL, V_FLOAT, V_INT, V_INVALID, V_MAP, V_NIL, V_SLICE, V_STRING, V_STRUCT,
} from './values.ts'

export interface FmtSpec {
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

export const PLAIN: FmtSpec = Object.freeze({
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


function fmtStringVerb(f: FmtSpec, s: string, verb: string): string {
  switch (verb) {
    case 'v':
      if (f.sharpV) return pad(f, goQuote(s))
      return pad(f, f.prec >= 0 ? truncateRunes(s, f.prec) : s)
    case 's': return pad(f, f.prec >= 0 ? truncateRunes(s, f.prec) : s)
    case 'q': {
      const t = f.prec >= 0 ? truncateRunes(s, f.prec) : s
      // Go's strconv.CanBackquote: control characters rule out a raw string.
      // eslint-disable-next-line no-control-regex
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
export function printArg(f: FmtSpec, v: unknown, verb: string, depth: number): string {
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
export function printValue(v: unknown): string {
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
