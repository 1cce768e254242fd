// Prints the hottest functions of a .cpuprofile written by `npm run bench -- --profile`.
// Usage: ./node_modules/.bin/node bench/profile-summary.ts <file.cpuprofile> [--top N]
import { parseArgs } from 'node:util';
import { resolve } from 'node:path';
import { formatProfileSummary, summarizeProfile } from './lib/cpu-profile.ts';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { top: { type: 'string', default: '25' } },
});
if (positionals.length === 0) {
  process.stderr.write('usage: node bench/profile-summary.ts <file.cpuprofile> [--top N]\n');
  process.exit(2);
}
const repo = resolve(import.meta.dirname, '..');
for (const file of positionals) {
  process.stdout.write(`== ${file}\n${formatProfileSummary(summarizeProfile(file, repo), Number(values.top))}\n`);
}
