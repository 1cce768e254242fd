// Reads a Dockerfile as text into stages of instructions, as much of the
// syntax as the deploy tests need: whole-line comments, line continuations,
// `FROM image [AS name]`, flags (`--from=build`) and exec-form (JSON) or
// shell-form arguments. No variable expansion: our Dockerfiles use none.

import { readFileSync } from 'node:fs'
import { join } from 'node:path'

export const REPO_ROOT = join(import.meta.dirname, '../..')

export interface Instruction {
  keyword: string
  /** Everything after the keyword, continuations joined. */
  args: string
  line: number
}

export interface Stage {
  image: string
  name: string | undefined
  instructions: Instruction[]
}

export function parseDockerfile(text: string): Stage[] {
  const stages: Stage[] = []
  const lines = text.split('\n')
  for (let i = 0; i < lines.length; i++) {
    const start = i + 1
    let line = lines[i]!.trim()
    if (line === '' || line.startsWith('#')) continue
    // Continuations; comment lines inside one are dropped, as Docker does.
    while (line.endsWith('\\') && i + 1 < lines.length) {
      const next = lines[++i]!.trim()
      line = line.slice(0, -1).trimEnd() + (next.startsWith('#') ? '' : ' ' + next)
    }
    const m = /^(\S+)\s*(.*)$/.exec(line)!
    const keyword = m[1]!.toUpperCase()
    const args = m[2]!
    if (keyword === 'FROM') {
      const words = args.split(/\s+/).filter((w) => !w.startsWith('--'))
      const as = words.findIndex((w) => w.toUpperCase() === 'AS')
      stages.push({ image: words[0]!, name: as >= 0 ? words[as + 1] : undefined, instructions: [] })
      continue
    }
    if (stages.length === 0) throw new Error(`line ${start}: ${keyword} before the first FROM`)
    stages.at(-1)!.instructions.push({ keyword, args, line: start })
  }
  return stages
}

export function readDockerfile(name: string): Stage[] {
  return parseDockerfile(readFileSync(join(REPO_ROOT, name), 'utf8'))
}

export function stage(stages: Stage[], name: string): Stage {
  const s = stages.find((x) => x.name === name)
  if (!s) throw new Error(`no stage named ${name}`)
  return s
}

export function all(s: Stage, keyword: string): Instruction[] {
  return s.instructions.filter((i) => i.keyword === keyword)
}

/** Exec form (`["a", "b"]`) as its array; shell form as null. */
export function execForm(args: string): string[] | null {
  if (!args.startsWith('[')) return null
  const parsed: unknown = JSON.parse(args)
  if (!Array.isArray(parsed) || !parsed.every((a) => typeof a === 'string')) throw new Error(`not a JSON string array: ${args}`)
  return parsed
}

export interface Copy {
  /** The --from stage, or undefined for the build context. */
  from: string | undefined
  sources: string[]
  dest: string
}

export function parseCopy(args: string): Copy {
  const words = args.split(/\s+/)
  let from: string | undefined
  while (words[0]?.startsWith('--')) {
    const flag = words.shift()!
    if (flag.startsWith('--from=')) from = flag.slice('--from='.length)
  }
  const exec = execForm(words.join(' '))
  const paths = exec ?? words
  if (paths.length < 2) throw new Error(`COPY needs a source and a destination: ${args}`)
  return { from, sources: paths.slice(0, -1), dest: paths.at(-1)! }
}

/** `ENV K=V` (and the legacy `ENV K V`) as pairs; values unquoted. */
export function parseEnv(args: string): Record<string, string> {
  const out: Record<string, string> = {}
  const legacy = /^([A-Za-z_][A-Za-z0-9_]*)\s+([^=]*)$/.exec(args)
  if (legacy) {
    out[legacy[1]!] = legacy[2]!
    return out
  }
  for (const m of args.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=("(?:[^"\\]|\\.)*"|\S*)/g)) {
    const v = m[2]!
    out[m[1]!] = v.startsWith('"') ? (JSON.parse(v) as string) : v
  }
  return out
}

/** The stage's WORKDIR (the last one), or / as Docker's default. */
export function workdir(s: Stage): string {
  return all(s, 'WORKDIR').at(-1)?.args ?? '/'
}
