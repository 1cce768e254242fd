// Writes the "Activator" section of bench/README.md (how to run it, then the latest report)
// between its own markers, appending the markers at the end if the README lacks them.
import { readFileSync, writeFileSync } from 'node:fs';
import { ACTIVATOR_README_DOC } from './readme-doc.ts';

export const ACTIVATOR_BEGIN = '<!-- activator:begin -->';
export const ACTIVATOR_END = '<!-- activator:end -->';

/**
 * Replaces what lies between `begin` and `end` in `file` with `content`. Missing markers are
 * added after `after` (another section's end marker) when the README has it, else at the end.
 */
export function writeMarkedSection(file: string, begin: string, end: string, content: string, after?: string): void {
  let text = readFileSync(file, 'utf8');
  let b = text.indexOf(begin);
  let e = text.indexOf(end);
  if (b < 0 || e < b) {
    const at = after === undefined ? -1 : text.indexOf(after);
    const cut = at < 0 ? text.trimEnd().length : at + after!.length;
    text = `${text.slice(0, cut).trimEnd()}\n\n${begin}\n${end}\n${at < 0 ? '' : `\n${text.slice(cut).trimStart()}`}`;
    b = text.indexOf(begin);
    e = text.indexOf(end);
  }
  writeFileSync(file, `${text.slice(0, b + begin.length)}\n${content.trimEnd()}\n${text.slice(e)}`);
}

export function writeActivatorSection(file: string, report: string): void {
  writeMarkedSection(file, ACTIVATOR_BEGIN, ACTIVATOR_END, `${ACTIVATOR_README_DOC.trimEnd()}\n\n${report.trimEnd()}`);
}
