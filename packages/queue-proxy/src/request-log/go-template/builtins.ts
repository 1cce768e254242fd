// The predefined functions (text/template's builtins): and, or, not, len,
// index, slice, print*, html, js, urlquery and the comparisons.

import { Buffer } from 'node:buffer'
import { htmlEscapeString, jsEscapeString, queryEscape } from './escape.ts'
import { PLAIN, printArg, printValue, sprint, sprintf, sprintln } from './fmt.ts'
import {
  GoMap, kindOf, mapGet, mapHas, mapSize, truth, typeName, type GoFunc,
  V_FUNC, V_INVALID, V_MAP, V_NIL, V_SLICE, V_STRING, V_STRUCT,
} from './values.ts'

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

export const AND: GoFunc = { params: ['value'], variadic: 'value', call: () => undefined }
export const OR: GoFunc = { params: ['value'], variadic: 'value', call: () => undefined }

export const BUILTINS: ReadonlyMap<string, GoFunc> = new Map<string, GoFunc>([
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
