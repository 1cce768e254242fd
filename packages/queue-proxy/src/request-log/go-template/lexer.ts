// The template lexer: a state machine over the source, as text/template/parse
// runs it, producing the tokens (and error tokens) the parser consumes.

import { goQuote, isPrint, sharpU } from './quote.ts'
import {
  KEYWORDS, type Token,
  T_ASSIGN, T_BOOL, T_CHAR, T_CHAR_CONSTANT, T_COMPLEX, T_DECLARE, T_DOT, T_EOF, T_ERROR, T_FIELD,
  T_IDENTIFIER, T_LEFT_DELIM, T_LEFT_PAREN, T_NUMBER, T_PIPE, T_RAW_STRING, T_RIGHT_DELIM,
  T_RIGHT_PAREN, T_SPACE, T_STRING, T_TEXT, T_VARIABLE,
} from './tokens.ts'

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

export class Lexer {
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
