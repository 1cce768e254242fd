// The parser: tokens to trees, one per template name (define and block bodies
// get their own). Variables are resolved to frame slots and functions to
// builtins here, so execution does no name lookups.

import { BUILTINS } from './builtins.ts'
import { GoTemplateParseError } from './errors.ts'
import { Lexer } from './lexer.ts'
import { INT_OVERFLOW, parseNumber, unquote } from './literals.ts'
import {
  isEmptyTree, newCache, nodeString,
  type BranchNode, type CommandNode, type Node, type Operand, type PipeNode, type Tree, type VariableNode,
  N_ACTION, N_BOOL, N_BREAK, N_CHAIN, N_COMMAND, N_CONTINUE, N_DOT, N_ELSE, N_END, N_FIELD, N_IDENT,
  N_IF, N_NIL, N_NUMBER, N_PIPE, N_RANGE, N_STRING, N_TEMPLATE, N_TEXT, N_VARIABLE, N_WITH,
} from './nodes.ts'
import { goQuote } from './quote.ts'
import {
  tokenString, type Token,
  T_ASSIGN, T_BLOCK, T_BOOL, T_BREAK, T_CHAR, T_CHAR_CONSTANT, T_COMPLEX, T_CONTINUE, T_DECLARE, T_DEFINE,
  T_DOT, T_ELSE, T_END, T_EOF, T_ERROR, T_FIELD, T_IDENTIFIER, T_IF, T_LEFT_DELIM, T_LEFT_PAREN, T_NIL,
  T_NUMBER, T_PIPE, T_RANGE, T_RAW_STRING, T_RIGHT_DELIM, T_RIGHT_PAREN, T_SPACE, T_STRING, T_TEMPLATE,
  T_TEXT, T_VARIABLE, T_WITH,
} from './tokens.ts'

interface ScopeVar { readonly name: string; readonly slot: number }

export class Parser {
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
    const items = this.itemList()
    const list = items[0]
    let next = items[1]
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
