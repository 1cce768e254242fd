// The Go value model the template engine works on. Go values are modelled as:
// string -> string, bigint -> int, number -> float64, boolean -> bool,
// arrays -> slices, GoMap / Map / plain objects -> maps, objects carrying a
// [goType] descriptor -> struct pointers, null -> nil, undefined -> Go's
// invalid value ("<no value>").

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
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- each Go type passes its own view object
  readonly fields?: ReadonlyMap<string, (self: any) => unknown>
  readonly methods?: ReadonlyMap<string, GoFunc>
  /** fmt.Stringer: what %v and %s print. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- as above
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

export const V_INVALID = 0
export const V_NIL = 1
export const V_STRING = 2
export const V_INT = 3
export const V_FLOAT = 4
export const V_BOOL = 5
export const V_SLICE = 6
export const V_MAP = 7
export const V_STRUCT = 8
export const V_FUNC = 9

export function kindOf(v: unknown): number {
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

export function mapGet(m: object, key: string): unknown {
  if (m instanceof GoMap) return m.entries.get(key)
  if (m instanceof Map) return m.get(key)
  return Object.hasOwn(m, key) ? (m as Record<string, unknown>)[key] : undefined
}

export function mapHas(m: object, key: string): boolean {
  if (m instanceof GoMap) return m.entries.has(key)
  if (m instanceof Map) return m.has(key)
  return Object.hasOwn(m, key)
}

export function mapSize(m: object): number {
  if (m instanceof GoMap) return m.entries.size
  if (m instanceof Map) return m.size
  return Object.keys(m).length
}

/** Keys in the order Go's fmt and range visit them (sorted). */
export function mapKeys(m: object): string[] {
  let keys: string[]
  if (m instanceof GoMap) keys = [...m.entries.keys()]
  else if (m instanceof Map) keys = [...(m as Map<string, unknown>).keys()]
  else keys = Object.keys(m)
  return keys.sort()
}

export function typeName(v: unknown): string {
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
export function truth(v: unknown): boolean {
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
