// Number formats and result look-ups shared by the report's tables.
import type { Point, TargetResult } from './measure.ts';
import { NOISY } from './quiet.ts';
import type { TargetRole } from './targets.ts';

export const DASH = '—';

export function int(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

export function latency(us: number): string {
  return us < 1000 ? `${us.toFixed(0)} µs` : `${(us / 1000).toFixed(2)} ms`;
}

/** KiB as MiB with one decimal; `unit` false for tables whose header carries the unit. */
export function mib(kib: number | undefined, unit = true): string {
  return kib === undefined ? DASH : `${(kib / 1024).toFixed(1)}${unit ? ' MiB' : ''}`;
}

export function ratio(r: number | undefined): string {
  return r === undefined || !Number.isFinite(r) ? DASH : `${r.toFixed(2)}×`;
}

/** a ÷ b, undefined when either is missing or b is 0. */
export function divide(a: number | undefined, b: number | undefined): number | undefined {
  return a === undefined || b === undefined || b === 0 ? undefined : a / b;
}

export function percent(share: number): string {
  const text = `${(share * 100).toFixed(0)}%`;
  return share > NOISY ? `${text} (!)` : text;
}

export function pointAt(result: TargetResult | undefined, connections: number): Point | undefined {
  return result?.points.find((p) => p.connections === connections);
}

/** Targets that produced at least one figure. */
export function measured(results: readonly TargetResult[]): TargetResult[] {
  return results.filter((r) => r.skipped === undefined && (r.points.length > 0 || r.startupMs !== undefined || r.idleRssKiB !== undefined));
}

/** The first target of a role that produced figures. */
export function withRole(results: readonly TargetResult[], role: TargetRole): TargetResult | undefined {
  return measured(results).find((r) => r.spec.role === role);
}

/** Why there is no figure of the given role to compare with, for "n/a (...)" cells. */
export function absentBecause(results: readonly TargetResult[], role: TargetRole, fallbackName: string): string {
  const r = results.find((t) => t.spec.role === role);
  if (r === undefined) return `${fallbackName} not in --targets`;
  if (r.skipped !== undefined) return r.skipped;
  if (r.failed !== undefined) return `${r.spec.name} failed`;
  return `${r.spec.name} has no such figure`;
}
