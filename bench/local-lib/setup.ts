// The bench's runtime: one LocalRuntime (from packages/local/dist) in this
// process running several services — helloworld copies for the cold starts and
// a delayed app for the load — with Knative's shortest windows.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LocalRuntime } from '../../packages/local/dist/runtime/runtime.js';
import type { RuntimeStatus } from '../../packages/local/dist/runtime/status-server.js';

export type RevisionStatus = RuntimeStatus['services'][number]['revisions'][number];

/** config-autoscaler: Knative's minimum stable window, and a grace period as short (Knative's minimum too). */
export const AUTOSCALER_DATA = { 'stable-window': '6s', 'scale-to-zero-grace-period': '6s' } as const;
export const LOAD_SERVICE = 'load';
/** Knative's container-concurrency-target-percentage default: the KPA aims at 70 % of the target. */
export const UTILISATION = 0.7;

export interface BenchFiles {
  manifest: string;
  config: string;
  coldServices: string[];
}

export interface FileOptions {
  node: string;
  coldServices: number;
  loadTarget: number;
  appDelayMs: number;
}

function service(name: string, annotations: Record<string, string>, args: string[], env: Record<string, string>, node: string): string {
  const lines = ['apiVersion: serving.knative.dev/v1', 'kind: Service', 'metadata:', `  name: ${name}`, '  namespace: default', 'spec:', '  template:'];
  const a = Object.entries(annotations);
  if (a.length > 0) {
    lines.push('    metadata:', '      annotations:');
    for (const [k, v] of a) lines.push(`        ${k}: ${JSON.stringify(v)}`);
  }
  lines.push('    spec:', '      containers:', `        - image: example.com/${name}`, `          command: ${JSON.stringify([node])}`, `          args: ${JSON.stringify(args)}`);
  const e = Object.entries(env);
  if (e.length > 0) {
    lines.push('          env:');
    for (const [k, v] of e) lines.push(`            - name: ${k}`, `              value: ${JSON.stringify(v)}`);
  }
  return lines.join('\n');
}

export function coldServiceName(i: number): string {
  return `cold-${String(i + 1).padStart(2, '0')}`;
}

/** Writes the manifest (all services) and the config-autoscaler into `dir`. */
export function writeBenchFiles(dir: string, o: FileOptions): BenchFiles {
  const coldServices = Array.from({ length: o.coldServices }, (_, i) => coldServiceName(i));
  const docs = coldServices.map((name) => service(name, {}, ['examples/helloworld/app.js'], {}, o.node));
  docs.push(service(LOAD_SERVICE, { 'autoscaling.knative.dev/target': String(o.loadTarget) }, ['bench/local-lib/delay-app.ts'], { DELAY_MS: String(o.appDelayMs) }, o.node));
  const manifest = join(dir, 'services.yaml');
  writeFileSync(manifest, docs.join('\n---\n') + '\n');
  const config = join(dir, 'config-autoscaler.yaml');
  const data = Object.entries(AUTOSCALER_DATA).map(([k, v]) => `  ${k}: ${JSON.stringify(v)}`);
  writeFileSync(config, ['apiVersion: v1', 'kind: ConfigMap', 'metadata:', '  name: config-autoscaler', '  namespace: knative-serving', 'data:', ...data].join('\n') + '\n');
  return { manifest, config, coldServices };
}

export async function startBenchRuntime(files: BenchFiles, repo: string, node: string, log: (line: string) => void): Promise<LocalRuntime> {
  const rt = new LocalRuntime({
    manifestPath: files.manifest,
    root: repo,
    nodePath: node,
    ingressPort: 0,
    ingressHost: '127.0.0.1',
    statusPort: 0,
    autoscalerConfigPath: files.config,
    log,
  });
  await rt.start();
  const deadline = performance.now() + 60_000;
  while (!rt.status().services.every((s) => s.ready)) {
    if (performance.now() > deadline) throw new Error('the services did not become ready within 60 s');
    await sleep(50);
  }
  return rt;
}

export function revisionOf(rt: LocalRuntime, service: string): RevisionStatus {
  const svc = rt.status().services.find((s) => s.name === service);
  const rev = svc?.revisions[svc.revisions.length - 1];
  if (rev === undefined) throw new Error(`no revision for service ${service}`);
  return rev;
}

export function hostOf(service: string): string {
  return `${service}.default.example.com`;
}

/** Waits until every named service has no instance left and wants none. */
export async function waitForZero(rt: LocalRuntime, services: readonly string[], timeoutMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (services.every((s) => { const r = revisionOf(rt, s); return r.desired === 0 && r.instances.length === 0; })) return true;
    if (performance.now() > deadline) return false;
    await sleep(100);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
