// Puts the latest report into bench/README.md between two marker comments.
import { readFileSync, writeFileSync } from 'node:fs';

export const BEGIN_MARKER = '<!-- bench-results:begin -->';
export const END_MARKER = '<!-- bench-results:end -->';
/** The tracing part's own section, so a run with --skip-tracing leaves it as it was. */
export const TRACING_MARKERS = ['<!-- bench-tracing:begin -->', '<!-- bench-tracing:end -->'] as const;

/** Replaces the text between the markers; throws if they are missing or out of order. */
export function writeBetweenMarkers(file: string, content: string, markers: readonly [string, string] = [BEGIN_MARKER, END_MARKER]): void {
  const [open, close] = markers;
  const text = readFileSync(file, 'utf8');
  const begin = text.indexOf(open);
  const end = text.indexOf(close);
  if (begin < 0 || end < begin) throw new Error(`${file}: markers ${open} ... ${close} not found`);
  const updated = `${text.slice(0, begin + open.length)}\n${content.trimEnd()}\n${text.slice(end)}`;
  writeFileSync(file, updated);
}
