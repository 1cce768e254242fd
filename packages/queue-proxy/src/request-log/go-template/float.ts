// strconv.FormatFloat for float64: the digits Go prints for %v, %e, %f and %g,
// including exact-decimal rounding for an explicit precision.

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
export function strconvFloat(v: number, verb: string, prec: number): string {
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
