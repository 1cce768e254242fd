// Benchmark of the local runtime (`sluice run`): cold starts through the whole
// stack and a hey load from zero back to zero, against the targets.
// Method: bench/README.md, section "Local runtime". Usage: node bench/local.ts --help.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, release, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { atExit, killChildrenOnExit } from './lib/children.ts';
import { foreignLoad } from './lib/quiet.ts';
import { which } from './lib/tools.ts';
import { killAllChildren } from '../packages/local/dist/runtime/processes.js';
import { runColdStarts, type ColdRun } from './local-lib/cold-start.ts';
import { runLoad, type LoadResult } from './local-lib/load.ts';
import { parseLocalOptions, USAGE, type LocalOptions } from './local-lib/options.ts';
import { writeLocalSection } from './local-lib/readme-section.ts';
import { renderLocalReport } from './local-lib/report.ts';
import { startBenchRuntime, writeBenchFiles } from './local-lib/setup.ts';
import { SpawnTimeline } from './local-lib/spawn-timeline.ts';

const began = performance.now();
function log(line: string): void {
  process.stderr.write(`[${((performance.now() - began) / 1000).toFixed(1).padStart(6)} s] ${line}\n`);
}

function fatal(message: string, code = 1): never {
  process.stderr.write(`bench:local: ${message}\n`);
  process.exit(code);
}

function version(cmd: string, args: string[], fallback: string): string {
  const run = spawnSync(cmd, args, { encoding: 'utf8' });
  return run.status === 0 && run.stdout.trim() !== '' ? run.stdout.trim() : fallback;
}

function machine(): string {
  let cpu = 'unknown CPU';
  try {
    cpu = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? cpu;
  } catch {
    // keep the fallback
  }
  return `${availableParallelism()} CPUs (${cpu}), Linux ${release()}`;
}

async function main(): Promise<number> {
  let options: LocalOptions | undefined;
  try {
    options = parseLocalOptions(process.argv.slice(2));
  } catch (err) {
    fatal(`${(err as Error).message}\n\n${USAGE}`, 2);
  }
  if (options === undefined) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (process.platform !== 'linux') fatal('the bench reads /proc: it runs on Linux only');
  const hey = which('hey');
  if (options.parts.load && hey === undefined) fatal('missing tools: hey (Debian package hey).\nInstall it with: apt-get update && apt-get install -y hey');
  const repo = resolve(import.meta.dirname, '..');
  for (const main of ['packages/activator/dist/main.js', 'packages/queue-proxy/dist/main.js', 'packages/local/dist/runtime/runtime.js']) {
    if (!existsSync(join(repo, main))) fatal(`${main} not found: build first (npx tsc -b)`);
  }
  // Every child of the runtime dies with the bench, also on Ctrl-C.
  killChildrenOnExit();
  atExit(killAllChildren);

  const node = realpathSync(process.execPath);
  const dir = mkdtempSync(join(tmpdir(), 'sluice-bench-local-'));
  atExit(() => rmSync(dir, { recursive: true, force: true }));
  const files = writeBenchFiles(dir, { node, coldServices: options.servicesPerRound, loadTarget: options.loadTarget, appDelayMs: options.appDelayMs });
  const timeline = new SpawnTimeline(options.verbose ? (l) => log(`runtime: ${l}`) : undefined);
  timeline.install();
  const load0 = await foreignLoad(Array.from({ length: availableParallelism() }, (_, i) => i), 500);
  log(`starting the runtime: ${files.coldServices.length} cold-start services and the load service`);
  const rt = await startBenchRuntime(files, repo, node, timeline.log);
  let cold: ColdRun[] | undefined;
  let load: LoadResult | undefined;
  try {
    if (options.parts.cold) cold = await runColdStarts(rt, rt.ingressUrl, timeline, { starts: options.starts, services: files.coldServices, gapMs: 500, log });
    if (options.parts.load) load = await runLoad(rt, rt.ingressUrl, hey!, { seconds: options.loadSeconds, concurrency: options.concurrency, log });
  } finally {
    log('stopping the runtime');
    await rt.stop();
  }

  const report = renderLocalReport({
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    machine: machine(),
    node: `node ${process.version}`,
    hey: `hey ${version('dpkg-query', ['-W', '-f=${Version}', 'hey'], '(version unknown)')}`,
    foreignLoad: load0,
    cold,
    load,
    loadSettings: { seconds: options.loadSeconds, concurrency: options.concurrency, target: options.loadTarget, appDelayMs: options.appDelayMs },
  });
  process.stdout.write(report);
  const results = join(repo, 'bench', 'results');
  mkdirSync(results, { recursive: true });
  const file = join(results, `local-${new Date().toISOString().replace(/\.\d+Z$/, 'Z').replaceAll(':', '-')}.md`);
  writeFileSync(file, report);
  log(`report written to ${file}`);
  if (options.writeReadme) {
    writeLocalSection(join(repo, 'bench', 'README.md'), report);
    log('bench/README.md: local section updated');
  }
  return 0;
}

main().then((code) => process.exit(code), (err: Error) => fatal(err.stack ?? err.message));
