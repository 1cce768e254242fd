// The two failures a template reports, with Go's message wording.

/** A template that does not parse (message as Go's: "template: NAME:LINE: ..."). */
export class GoTemplateParseError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'GoTemplateParseError'
  }
}

/** A failed execution (message as Go's: "template: NAME:L:C: executing ..."). */
export class GoTemplateExecError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'GoTemplateExecError'
  }
}
