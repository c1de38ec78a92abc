// Goal: the pass/fail thresholds (SLOs) of a scenario — `latency.remote.p99 < 800ms`, `declined.rate < 1%`,
// `lost == 0` — parsed once when the scenario loads (a bad one is a scenario error with its line) and evaluated
// against a run's summary at the end; the one evaluator of the run, the report and the capacity search.
// Method: a threshold is `<figure> <op> <number>[unit]`, op one of < <= > >= == !=, nothing evaluated as code.
// A figure is a dotted path into summary.json (`latencyMs.remote.p99`) or one of a few k6-like names that stand
// for a path or a ratio of two (`latency.*`, `lost`, `declined.rate`, `dropped`…). A time unit (ms, s, m) is
// allowed only on a figure in milliseconds (a path with a segment ending in `Ms`) and is converted to ms; `%` only
// on a rate, and is divided by 100. A figure the run did not record fails, with the reason.

export type ThresholdOp = '<' | '<=' | '>' | '>=' | '==' | '!=';

export interface ParsedThreshold {
  expression: string;
  /** The figure as written. */
  figure: string;
  /** The summary path it reads, or the name of a derived ratio (see DERIVED). */
  path: string;
  op: ThresholdOp;
  /** The limit in the figure's own unit (ms for times, a fraction for rates). */
  limit: number;
}

export type ParseResult = { ok: true; threshold: ParsedThreshold } | { ok: false; problem: string };

export interface ThresholdResult {
  expression: string;
  pass: boolean;
  /** The figure the threshold was checked against, as recorded (null: not recorded). */
  actual: unknown;
  /** Why it could not be checked, when it could not. */
  problem?: string;
}

const EXPRESSION = /^\s*([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)\s*(<=|>=|==|!=|<|>)\s*(-?\d+(?:\.\d+)?)\s*(ms|s|m|%)?\s*$/;

const COMPARE: Record<ThresholdOp, (a: number, b: number) => boolean> = {
  '<': (a, b) => a < b,
  '<=': (a, b) => a <= b,
  '>': (a, b) => a > b,
  '>=': (a, b) => a >= b,
  '==': (a, b) => a === b,
  '!=': (a, b) => a !== b,
};

const TIME_UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000 };

/** Short names for summary paths, as the issue and k6 users write them. */
const ALIASES: Record<string, string> = {
  lost: 'ledger.lost',
  duplicated: 'ledger.duplicated',
  unexpected: 'ledger.unexpected',
  dropped: 'orders.dropped',
  approved: 'orders.approved',
  declined: 'orders.declined',
  // Declines split (sim/run/declines.ts): failures of the system, and the customers' own limits.
  'system.rate': 'orders.failures.systemRate',
  'business.rate': 'orders.failures.businessRate',
};

/** Figures that are ratios of recorded counts; undefined when the run did not record their parts. */
const DERIVED: Record<string, (summary: unknown) => number | undefined> = {
  'declined.rate': (s) => ratio(numberAt(s, 'orders.declined'), numberAt(s, 'orders.total')),
  'approved.rate': (s) => ratio(numberAt(s, 'orders.approved'), numberAt(s, 'orders.total')),
  // Dropped among every order the load wanted to issue: those issued plus those dropped.
  'dropped.rate': (s) => {
    const dropped = numberAt(s, 'orders.dropped');
    const issued = numberAt(s, 'workload.issued');
    return dropped === undefined || issued === undefined ? undefined : ratio(dropped, dropped + issued);
  },
  violations: (s) => {
    const list = valueAt(s, 'invariants');
    if (!Array.isArray(list)) return undefined;
    return list.reduce((sum: number, entry) => sum + (typeof entry?.violations === 'number' ? entry.violations : 0), 0);
  },
};

/** The first segments a summary path may start with (a typo is caught when the scenario loads). */
const SUMMARY_ROOTS = [
  'orders', 'latencyMs', 'remittance', 'ledger', 'network', 'faults', 'workload', 'arrival', 'servers',
  'drainedAtMs', 'simulatedMs', 'wallMs', 'events', 'terminals', 'pos', 'shards', 'seed', 'sharedMeans', 'lossAccount',
];

function ratio(part: number | undefined, whole: number | undefined): number | undefined {
  if (part === undefined || whole === undefined) return undefined;
  return whole === 0 ? 0 : part / whole;
}

/** Resolves a written figure to its summary path or derived name. */
function resolveFigure(figure: string): string {
  if (figure in DERIVED) return figure;
  if (figure in ALIASES) return ALIASES[figure]!;
  if (figure.startsWith('latency.')) return `latencyMs.${figure.slice('latency.'.length)}`;
  return figure;
}

export function parseThreshold(expression: string): ParseResult {
  const match = EXPRESSION.exec(expression);
  if (!match) return { ok: false, problem: 'cannot parse: expected "<figure> <op> <number>[ms|s|m|%]", e.g. "latency.remote.p99 < 800ms" or "declined.rate < 1%"' };
  const [, figure, op, numberText, unit] = match as unknown as [string, string, ThresholdOp, string, string | undefined];
  const path = resolveFigure(figure);
  let limit = Number(numberText);
  if (unit === '%') {
    if (!/(^|\.)rate$|Rate$/.test(path)) return { ok: false, problem: `"%" is for rates (declined.rate, dropped.rate…), not for ${figure}` };
    limit /= 100;
  } else if (unit !== undefined) {
    if (!path.split('.').some((segment) => segment.endsWith('Ms'))) return { ok: false, problem: `a time unit (${unit}) is for figures in milliseconds (latency.*, remittance.lagMs.*…), not for ${figure}` };
    limit *= TIME_UNIT_MS[unit]!;
  }
  return { ok: true, threshold: { expression, figure, path, op, limit } };
}

/**
 * What is wrong with a threshold a scenario states, or undefined: its syntax and units, and a figure that no
 * summary records (checked when the scenario loads; the report, reading summaries of any version, does not).
 */
export function thresholdProblem(expression: string): string | undefined {
  const figure = EXPRESSION.exec(expression)?.[1];
  const path = figure === undefined ? undefined : resolveFigure(figure);
  if (path === undefined || path in DERIVED || SUMMARY_ROOTS.includes(path.split('.')[0]!)) {
    const parsed = parseThreshold(expression);
    return parsed.ok ? undefined : parsed.problem;
  }
  return `unknown figure "${figure}"; expected a summary.json path (latencyMs.remote.p99, orders.total…) or one of ${[...Object.keys(DERIVED), ...Object.keys(ALIASES), 'latency.*'].join(', ')}`;
}

export function evaluateThreshold(expression: string, summary: unknown): ThresholdResult {
  const parsed = parseThreshold(expression);
  if (!parsed.ok) return { expression, pass: false, actual: null, problem: parsed.problem };
  const { path, op, limit } = parsed.threshold;
  const derived = DERIVED[path];
  const actual = derived ? derived(summary) : numberAt(summary, path);
  if (actual === undefined) {
    const raw = derived ? undefined : valueAt(summary, path);
    return { expression, pass: false, actual: raw ?? null, problem: raw === undefined ? `${path} is not recorded in this run` : `${path} is not a number` };
  }
  return { expression, pass: COMPARE[op](actual, limit), actual };
}

export function evaluateThresholds(expressions: readonly string[], summary: unknown): ThresholdResult[] {
  return expressions.map((expression) => evaluateThreshold(expression, summary));
}

function valueAt(root: unknown, path: string): unknown {
  let current: unknown = root;
  for (const key of path.split('.')) {
    if (typeof current !== 'object' || current === null || Array.isArray(current) || !Object.hasOwn(current, key)) return undefined;
    current = (current as Record<string, unknown>)[key];
  }
  return current;
}

function numberAt(root: unknown, path: string): number | undefined {
  const value = valueAt(root, path);
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}
