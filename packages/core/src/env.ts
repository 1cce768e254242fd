// Environment parsing with Go envconfig semantics (spec §1.2): "required" means
// present (empty strings allowed), numbers parse like strconv.ParseInt(v, 0, 64),
// booleans like strconv.ParseBool. Every error names the variable.

export type Env = Readonly<Record<string, string | undefined>>

export class EnvError extends Error {
  readonly variable: string
  constructor(variable: string, message: string) {
    super(`${variable}: ${message}`)
    this.name = 'EnvError'
    this.variable = variable
  }
}

const TRUE = new Set(['1', 't', 'T', 'TRUE', 'true', 'True'])
const FALSE = new Set(['0', 'f', 'F', 'FALSE', 'false', 'False'])

/** Go strconv.ParseInt(v, 0, 64) for the range a JS number holds exactly. */
export function parseGoInt(value: string): number | undefined {
  // Go allows one underscore between digits, after a base prefix ("0x_1f")
  // and after the leading 0 of a legacy octal ("0_17").
  const m = /^([+-]?)(0[xX]_?[0-9a-fA-F](?:_?[0-9a-fA-F])*|0[oO]_?[0-7](?:_?[0-7])*|0[bB]_?[01](?:_?[01])*|0(?:_?[0-7])*|[1-9](?:_?[0-9])*)$/.exec(value)
  if (!m) return undefined
  const digits = m[2]!.replaceAll('_', '')
  let n: number
  if (/^0[xXoObB]/.test(digits)) n = Number(digits.toLowerCase())
  else if (digits.length > 1 && digits.startsWith('0')) n = parseInt(digits, 8)
  else n = Number(digits)
  if (!Number.isSafeInteger(n)) return undefined
  return m[1] === '-' ? -n : n
}

export function parseGoBool(value: string): boolean | undefined {
  if (TRUE.has(value)) return true
  if (FALSE.has(value)) return false
  return undefined
}

export function requireString(env: Env, name: string): string {
  const v = env[name]
  if (v === undefined) throw new EnvError(name, 'required environment variable is not set')
  return v
}

export function optionalString(env: Env, name: string, fallback = ''): string {
  return env[name] ?? fallback
}

function toInt(name: string, v: string): number {
  const n = parseGoInt(v)
  if (n === undefined) throw new EnvError(name, `cannot parse ${JSON.stringify(v)} as an integer`)
  return n
}

export function requireInt(env: Env, name: string): number {
  return toInt(name, requireString(env, name))
}

export function optionalInt(env: Env, name: string, fallback: number): number {
  const v = env[name]
  return v === undefined ? fallback : toInt(name, v)
}

export function optionalBool(env: Env, name: string, fallback: boolean): boolean {
  const v = env[name]
  if (v === undefined) return fallback
  const b = parseGoBool(v)
  if (b === undefined) throw new EnvError(name, `cannot parse ${JSON.stringify(v)} as a boolean`)
  return b
}

export function optionalFloat(env: Env, name: string, fallback: number): number {
  const v = env[name]
  if (v === undefined) return fallback
  const n = v.trim() === '' ? NaN : Number(v)
  if (!Number.isFinite(n)) throw new EnvError(name, `cannot parse ${JSON.stringify(v)} as a number`)
  return n
}

/** A TCP port (1-65535); `allowZero` lets tests ask for an ephemeral port. */
export function optionalPort(env: Env, name: string, fallback: number, allowZero = false): number {
  const n = optionalInt(env, name, fallback)
  if (n < (allowZero ? 0 : 1) || n > 65535) throw new EnvError(name, `port ${n} out of range`)
  return n
}

/** Port given as a string variable (QUEUE_SERVING_PORT, USER_PORT are strings in Go). */
export function requirePort(env: Env, name: string): number {
  const v = requireString(env, name)
  const n = parseGoInt(v)
  if (n === undefined || n < 0 || n > 65535) throw new EnvError(name, `invalid port ${JSON.stringify(v)}`)
  return n
}

// Go accepts both micro signs: U+00B5 and U+03BC (Greek mu).
const DURATION_UNITS: Record<string, number> = { ns: 1e-6, us: 1e-3, '\u00b5s': 1e-3, '\u03bcs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 }

/** Go time.ParseDuration, returned in milliseconds. */
export function parseGoDuration(value: string): number | undefined {
  // Go: digits with an optional fraction ("1.", ".5" and "1.5" are all valid).
  const re = /([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)/gy
  let total = 0
  let matched = 0
  let sign = 1
  let s = value
  if (s.startsWith('-') || s.startsWith('+')) { sign = s[0] === '-' ? -1 : 1; s = s.slice(1) }
  if (s === '0') return 0 // Go's special case, after the sign ("-0", "+0")
  re.lastIndex = 0
  let m: RegExpExecArray | null
  while ((m = re.exec(s)) !== null) {
    total += Number(m[1]) * DURATION_UNITS[m[2]!]!
    matched = re.lastIndex
  }
  if (matched === 0 || matched !== s.length) return undefined
  return sign * total
}

/** A duration variable in Go syntax ("30s", "1m30s") or plain seconds ("30"), in ms. */
export function optionalDurationMs(env: Env, name: string, fallbackMs: number): number {
  const v = env[name]
  if (v === undefined) return fallbackMs
  const asNumber = v.trim() !== '' ? Number(v) : NaN
  const ms = Number.isFinite(asNumber) ? asNumber * 1000 : parseGoDuration(v)
  if (ms === undefined || ms < 0) throw new EnvError(name, `cannot parse ${JSON.stringify(v)} as a duration (e.g. 30s, 500ms)`)
  return ms
}
