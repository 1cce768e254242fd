// The executor: walks a parsed tree with the data as dot, printing values as
// Go's fmt does. Errors carry Go's "template: NAME:L:C: executing ..." form.

import { Buffer } from 'node:buffer'
import { AND, OR } from './builtins.ts'
import { GoTemplateExecError } from './errors.ts'
import { printValue } from './fmt.ts'
import {
  nodeString,
  type BranchNode, type ChainNode, type CommandNode, type FieldNode, type IdentNode, type Node,
  type NumberNode, type Operand, type PipeNode, type TemplateNode, type Tree, type VariableNode,
  N_ACTION, N_BOOL, N_BREAK, N_CHAIN, N_CONTINUE, N_DOT, N_FIELD, N_IDENT, N_IF, N_NIL, N_NUMBER,
  N_PIPE, N_RANGE, N_STRING, N_TEMPLATE, N_TEXT, N_VARIABLE, N_WITH,
} from './nodes.ts'
import { goQuote, truncateRunes } from './quote.ts'
import {
  goType, kindOf, mapGet, mapKeys, truth, typeName, type GoFunc, type GoParam, type GoStruct,
  V_INT, V_INVALID, V_MAP, V_NIL, V_SLICE, V_STRUCT,
} from './values.ts'

/** No final value from a previous pipeline stage. */
const MISSING: unique symbol = Symbol('missing')
/** A variable slot not yet assigned in this execution. */
const UNSET: unique symbol = Symbol('unset')
const MAX_EXEC_DEPTH = 1000
const WALK_NORMAL = 0
const WALK_BREAK = 1
const WALK_CONTINUE = 2

interface ExecState {
  readonly tmpl: TemplateText
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

/** What an execution needs of its template: messages quote its name and map node positions in its source. */
export interface TemplateText {
  readonly name: string
  readonly source: string
}

/** Renders the tree named like the template with `data` as dot; throws GoTemplateExecError. */
export function executeTemplate(tmpl: TemplateText, trees: ReadonlyMap<string, Tree>, data: unknown): string {
  const tree = trees.get(tmpl.name)!
  const s: ExecState = { tmpl, trees, out: '', node: null, tree, vars: newFrame(tree, data), depth: 0 }
  walkList(s, data, tree.root)
  return s.out
}
