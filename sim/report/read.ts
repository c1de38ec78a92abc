// Goal: read a summary.json defensively: the report must draw whatever a run recorded, from an older or newer
// simulator alike, and say "not recorded" for the rest instead of crashing.
// Method: the summary stays `unknown`; small accessors walk a dotted path and return a value only when it
// has the expected type, so every use site handles absence explicitly.

export type Summary = Record<string, unknown>;

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The value at a dotted path ("latencyMs.remote.p99"), or undefined if any step is missing. */
export function valueAt(root: unknown, path: string): unknown {
  let current: unknown = root;
  for (const key of path.split('.')) {
    if (!isRecord(current) || !Object.hasOwn(current, key)) return undefined;
    current = current[key];
  }
  return current;
}

export function numberAt(root: unknown, path: string): number | undefined {
  const value = valueAt(root, path);
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

export function stringAt(root: unknown, path: string): string | undefined {
  const value = valueAt(root, path);
  return typeof value === 'string' ? value : undefined;
}

export function booleanAt(root: unknown, path: string): boolean | undefined {
  const value = valueAt(root, path);
  return typeof value === 'boolean' ? value : undefined;
}

export function recordAt(root: unknown, path: string): Record<string, unknown> | undefined {
  const value = valueAt(root, path);
  return isRecord(value) ? value : undefined;
}

export function arrayAt(root: unknown, path: string): unknown[] | undefined {
  const value = valueAt(root, path);
  return Array.isArray(value) ? value : undefined;
}

export interface InvariantRow {
  id: string;
  name: string;
  checks: number | undefined;
  violations: number | undefined;
}

/** The invariants of a summary; entries that are not objects are skipped. */
export function invariantsOf(summary: Summary): InvariantRow[] | undefined {
  const list = arrayAt(summary, 'invariants');
  if (!list) return undefined;
  return list.filter(isRecord).map((entry) => ({
    id: typeof entry.id === 'string' ? entry.id : '?',
    name: typeof entry.name === 'string' ? entry.name : '',
    checks: numberAt(entry, 'checks'),
    violations: numberAt(entry, 'violations'),
  }));
}

export type Verdict = 'ok' | 'violation' | 'unknown';

/**
 * A run is OK only if it says so and no invariant counts a violation; a summary that says ok while an
 * invariant counts violations is shown as a violation, since the counts are the evidence.
 */
export function verdictOf(summary: Summary): Verdict {
  const ok = booleanAt(summary, 'ok');
  const anyViolation = (invariantsOf(summary) ?? []).some((row) => (row.violations ?? 0) > 0) || recordAt(summary, 'violation') !== undefined;
  if (ok === false || anyViolation) return 'violation';
  if (ok === true) return 'ok';
  return 'unknown';
}
