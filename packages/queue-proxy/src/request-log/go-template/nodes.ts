// The parse tree: node kinds and shapes, and Go's Node.String() used in
// error messages.

import { goQuote } from './quote.ts'
import type { GoFunc, GoTypeInfo } from './values.ts'

export const N_TEXT = 1
export const N_ACTION = 2
export const N_IF = 3
export const N_WITH = 4
export const N_RANGE = 5
export const N_BREAK = 6
export const N_CONTINUE = 7
export const N_TEMPLATE = 8
export const N_END = 9
export const N_ELSE = 10
export const N_PIPE = 11
export const N_COMMAND = 12
export const N_FIELD = 13
export const N_CHAIN = 14
export const N_VARIABLE = 15
export const N_IDENT = 16
export const N_DOT = 17
export const N_NIL = 18
export const N_BOOL = 19
export const N_NUMBER = 20
export const N_STRING = 21

export interface TextNode { readonly k: typeof N_TEXT; readonly pos: number; readonly text: string }
export interface ActionNode { readonly k: typeof N_ACTION; readonly pos: number; readonly pipe: PipeNode }
export interface BranchNode {
  readonly k: typeof N_IF | typeof N_WITH | typeof N_RANGE
  readonly pos: number
  readonly pipe: PipeNode
  readonly list: Node[]
  readonly elseList: Node[] | null
}
export interface SimpleNode { readonly k: typeof N_BREAK | typeof N_CONTINUE | typeof N_END | typeof N_ELSE | typeof N_DOT | typeof N_NIL; readonly pos: number }
export interface TemplateNode { readonly k: typeof N_TEMPLATE; readonly pos: number; readonly name: string; readonly pipe: PipeNode | null }
export interface PipeNode {
  readonly k: typeof N_PIPE
  readonly pos: number
  readonly decl: VariableNode[]
  isAssign: boolean
  readonly cmds: CommandNode[]
}
export interface CommandNode { readonly k: typeof N_COMMAND; readonly pos: number; readonly args: Operand[] }
/** Per field-position inline cache: type seen last and its field getter. */
export interface FieldCache { readonly types: (GoTypeInfo | undefined)[]; readonly getters: ((self: unknown) => unknown)[] }
export interface FieldNode { readonly k: typeof N_FIELD; readonly pos: number; readonly idents: string[]; readonly cache: FieldCache }
export interface ChainNode { readonly k: typeof N_CHAIN; readonly pos: number; readonly node: Operand; readonly fields: string[]; readonly cache: FieldCache }
export interface VariableNode {
  readonly k: typeof N_VARIABLE
  readonly pos: number
  readonly name: string
  /** Frame slot; -1 for an assignment to a variable never declared. */
  readonly slot: number
  readonly fields: string[]
  readonly cache: FieldCache
}
export interface IdentNode { readonly k: typeof N_IDENT; readonly pos: number; readonly name: string; readonly fn: GoFunc }
export interface BoolNode { readonly k: typeof N_BOOL; readonly pos: number; readonly value: boolean }
export interface NumberNode {
  readonly k: typeof N_NUMBER
  readonly pos: number
  readonly text: string
  /** null: an integer that overflows int64 (an execution error, as in Go). */
  readonly value: bigint | number | null
}
export interface StringNode { readonly k: typeof N_STRING; readonly pos: number; readonly quoted: string; readonly value: string }

export type Operand = FieldNode | ChainNode | VariableNode | IdentNode | SimpleNode | BoolNode | NumberNode | StringNode | PipeNode
export type Node = TextNode | ActionNode | BranchNode | SimpleNode | TemplateNode | Operand | CommandNode

export interface Tree {
  readonly name: string
  readonly root: Node[]
  /** Variable slots a frame needs; slot 0 is `$`. */
  readonly slots: number
}

export function listString(list: readonly Node[]): string {
  let s = ''
  for (const n of list) s += nodeString(n)
  return s
}

/** Go's Node.String(), used in error messages. */
export function nodeString(n: Node): string {
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

export function newCache(): FieldCache {
  return { types: [], getters: [] }
}

export function isEmptyTree(list: readonly Node[]): boolean {
  for (const n of list) {
    if (n.k !== N_TEXT || n.text.trim() !== '') return false
  }
  return true
}
