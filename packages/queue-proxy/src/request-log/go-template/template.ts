// A compiled template: the source is parsed once into its trees, then executed
// once per request.

import { executeTemplate } from './exec.ts'
import type { Tree } from './nodes.ts'
import { Parser } from './parser.ts'

/** A parsed template: parse once, execute per request. */
export class GoTemplate {
  readonly name: string
  readonly source: string
  readonly #trees: ReadonlyMap<string, Tree>

  constructor(source: string, name: string) {
    const parser = new Parser(source, name)
    parser.parse()
    this.name = name
    this.source = source
    this.#trees = parser.trees
  }

  /** Renders the template with `data` as dot; throws GoTemplateExecError. */
  execute(data: unknown): string {
    return executeTemplate(this, this.#trees, data)
  }
}

/** Parses a Go text/template; throws GoTemplateParseError. */
export function parseGoTemplate(source: string, name = 'template'): GoTemplate {
  return new GoTemplate(source, name)
}
