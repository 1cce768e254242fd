// Writes the "Activator" section of bench/README.md (how to run it, then the latest report)
// between its own markers, appending the markers at the end if the README lacks them.
import { readFileSync, writeFileSync } from 'node:fs';
import { ACTIVATOR_README_DOC } from './readme-doc.ts';

export const ACTIVATOR_BEGIN = '<!-- activator:begin -->';
export const ACTIVATOR_END = '<!-- activator:end -->';

export function writeActivatorSection(file: string, report: string): void {
  let text = readFileSync(file, 'utf8');
  let begin = text.indexOf(ACTIVATOR_BEGIN);
  let end = text.indexOf(ACTIVATOR_END);
  if (begin < 0 || end < begin) {
    text = `${text.trimEnd()}\n\n${ACTIVATOR_BEGIN}\n${ACTIVATOR_END}\n`;
    begin = text.indexOf(ACTIVATOR_BEGIN);
    end = text.indexOf(ACTIVATOR_END);
  }
  const content = `${ACTIVATOR_README_DOC.trimEnd()}\n\n${report.trimEnd()}`;
  writeFileSync(file, `${text.slice(0, begin + ACTIVATOR_BEGIN.length)}\n${content}\n${text.slice(end)}`);
}
