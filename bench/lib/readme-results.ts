// Puts the latest report into bench/README.md between two marker comments.
import { readFileSync, writeFileSync } from 'node:fs';

export const BEGIN_MARKER = '<!-- bench-results:begin -->';
export const END_MARKER = '<!-- bench-results:end -->';

/** Replaces the text between the markers; throws if they are missing or out of order. */
export function writeBetweenMarkers(file: string, content: string): void {
  const text = readFileSync(file, 'utf8');
  const begin = text.indexOf(BEGIN_MARKER);
  const end = text.indexOf(END_MARKER);
  if (begin < 0 || end < begin) throw new Error(`${file}: markers ${BEGIN_MARKER} ... ${END_MARKER} not found`);
  const updated = `${text.slice(0, begin + BEGIN_MARKER.length)}\n${content.trimEnd()}\n${text.slice(end)}`;
  writeFileSync(file, updated);
}
