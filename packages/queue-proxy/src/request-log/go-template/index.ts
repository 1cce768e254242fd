// Go text/template for Knative request-log templates (spec §1.14, quirk §7.13).
// A template is lexed and parsed once into a node tree (variables resolved to
// frame slots, functions resolved to builtins); execution walks that tree and
// prints values exactly as Go's fmt does, so Sluice writes the same log lines
// as the Go queue-proxy. Error messages follow Go's wording and positions.
//
// This module is the engine's public surface; the files beside it each hold
// one stage or concern (values, fmt, lexer, parser, exec, builtins, ...).

export { GoTemplate, parseGoTemplate } from './template.ts'
export { GoTemplateExecError, GoTemplateParseError } from './errors.ts'
export {
  GoMap, goType,
  type GoFunc, type GoMapType, type GoParam, type GoStruct, type GoTypeInfo,
} from './values.ts'
export { formatFloat } from './float.ts'
export { sprint, sprintf, sprintln } from './fmt.ts'
export { goQuote } from './quote.ts'
export { htmlEscapeString, jsEscapeString, queryEscape } from './escape.ts'
