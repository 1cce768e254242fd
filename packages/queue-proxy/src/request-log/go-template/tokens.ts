// Token types the lexer emits and the parser reads, as in text/template/parse.

import { goQuote, truncateRunes } from './quote.ts'

export const T_ERROR = 0
export const T_EOF = 1
export const T_TEXT = 2
export const T_LEFT_DELIM = 3
export const T_RIGHT_DELIM = 4
export const T_SPACE = 5
export const T_FIELD = 6
export const T_VARIABLE = 7
export const T_IDENTIFIER = 8
export const T_BOOL = 9
export const T_NUMBER = 10
export const T_CHAR_CONSTANT = 11
export const T_COMPLEX = 12
export const T_STRING = 13
export const T_RAW_STRING = 14
export const T_ASSIGN = 15
export const T_DECLARE = 16
export const T_PIPE = 17
export const T_LEFT_PAREN = 18
export const T_RIGHT_PAREN = 19
export const T_CHAR = 20
export const T_KEYWORD = 30 // keywords print as <word> in messages
export const T_BLOCK = 31
export const T_BREAK = 32
export const T_CONTINUE = 33
export const T_DOT = 34
export const T_DEFINE = 35
export const T_ELSE = 36
export const T_END = 37
export const T_IF = 38
export const T_NIL = 39
export const T_RANGE = 40
export const T_TEMPLATE = 41
export const T_WITH = 42

export const KEYWORDS: ReadonlyMap<string, number> = new Map([
  ['.', T_DOT], ['block', T_BLOCK], ['break', T_BREAK], ['continue', T_CONTINUE],
  ['define', T_DEFINE], ['else', T_ELSE], ['end', T_END], ['if', T_IF],
  ['range', T_RANGE], ['nil', T_NIL], ['template', T_TEMPLATE], ['with', T_WITH],
])

export interface Token {
  readonly type: number
  readonly val: string
  readonly pos: number
  readonly line: number
}

export function tokenString(t: Token): string {
  if (t.type === T_EOF) return 'EOF'
  if (t.type === T_ERROR) return t.val
  if (t.type > T_KEYWORD) return `<${t.val}>`
  if (t.val.length > 10) return goQuote(truncateRunes(t.val, 10)) + '...'
  return goQuote(t.val)
}
