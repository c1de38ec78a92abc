// Goal: the key figures of a run — the numbers an architect quotes — grouped as the report shows them, and
// formatted by kind, for one run (html.ts) or two side by side with deltas (compare.ts).
// Method: each figure is a dotted path into summary.json with a kind (count, duration, money, text) and, for
// comparisons, which direction is better, so a delta can be coloured without judging figures case by case.

import { formatCount, formatDurationMs, formatMinor } from './format.ts';
import { numberAt, recordAt, stringAt, valueAt, type Summary } from './read.ts';

export type FigureKind = 'count' | 'ms' | 'minor' | 'text';

export interface Figure {
  label: string;
  path: string;
  kind: FigureKind;
  /** Which way is an improvement; omitted when neither is (e.g. the number of terminals). */
  better?: 'lower' | 'higher';
  /** A count kept in a map of whatever happened: absent from a recorded map means zero, not "not recorded". */
  absentIsZero?: boolean;
}

export interface FigureGroup {
  title: string;
  figures: Figure[];
}

export const FIGURE_GROUPS: FigureGroup[] = [
  {
    title: 'Orders',
    figures: [
      { label: 'total', path: 'orders.total', kind: 'count' },
      { label: 'approved', path: 'orders.approved', kind: 'count', better: 'higher' },
      { label: 'declined', path: 'orders.declined', kind: 'count', better: 'lower' },
      { label: 'internal', path: 'orders.byPath.internal', kind: 'count' },
      { label: 'local, offline', path: 'orders.byPath.localOffline', kind: 'count' },
      { label: 'local, below threshold', path: 'orders.byPath.localBelowThreshold', kind: 'count' },
      { label: 'remote', path: 'orders.byPath.remote', kind: 'count' },
    ],
  },
  {
    title: 'Latency',
    figures: [
      { label: 'local p50', path: 'latencyMs.local.p50', kind: 'ms', better: 'lower' },
      { label: 'local p99', path: 'latencyMs.local.p99', kind: 'ms', better: 'lower' },
      { label: 'local max', path: 'latencyMs.local.max', kind: 'ms', better: 'lower' },
      { label: 'remote p50', path: 'latencyMs.remote.p50', kind: 'ms', better: 'lower' },
      { label: 'remote p99', path: 'latencyMs.remote.p99', kind: 'ms', better: 'lower' },
      { label: 'remote max', path: 'latencyMs.remote.max', kind: 'ms', better: 'lower' },
    ],
  },
  {
    title: 'Remittance and money at risk',
    figures: [
      { label: 'transactions remitted', path: 'remittance.transactions', kind: 'count' },
      { label: 'batches', path: 'remittance.batches', kind: 'count' },
      { label: 'lag p50', path: 'remittance.lagMs.p50', kind: 'ms', better: 'lower' },
      { label: 'lag p99', path: 'remittance.lagMs.p99', kind: 'ms', better: 'lower' },
      { label: 'peak money at risk', path: 'remittance.peakBacklogAmountMinor', kind: 'minor', better: 'lower' },
      { label: 'pending at end', path: 'remittance.pendingAtEnd', kind: 'count', better: 'lower' },
    ],
  },
  {
    title: 'Ledger',
    figures: [
      { label: 'approved amount', path: 'ledger.approvedAmountMinor', kind: 'minor' },
      { label: 'posted amount', path: 'ledger.postedAmountMinor', kind: 'minor' },
      { label: 'lost', path: 'ledger.lost', kind: 'count', better: 'lower' },
      { label: 'duplicated', path: 'ledger.duplicated', kind: 'count', better: 'lower' },
      { label: 'sum of balances', path: 'ledger.sumOfBalancesMinor', kind: 'minor' },
    ],
  },
  {
    title: 'Run',
    figures: [
      { label: 'mode', path: 'mode', kind: 'text' },
      { label: 'terminals', path: 'terminals', kind: 'count' },
      { label: 'POS units', path: 'pos', kind: 'count' },
      { label: 'shards', path: 'shards', kind: 'count' },
      { label: 'simulated time', path: 'simulatedMs', kind: 'ms' },
      { label: 'wall time', path: 'wallMs', kind: 'ms', better: 'lower' },
      { label: 'events', path: 'events', kind: 'count' },
      { label: 'drained at', path: 'drainedAtMs', kind: 'ms' },
    ],
  },
];

/** The declined orders by reason, as figures (the reasons are whatever the run recorded). */
export function declineReasonFigures(...summaries: Summary[]): Figure[] {
  const reasons = new Set<string>();
  for (const summary of summaries) for (const reason of Object.keys(recordAt(summary, 'orders.declinedByReason') ?? {})) reasons.add(reason);
  return [...reasons].sort().map((reason) => ({ label: reason, path: `orders.declinedByReason.${reason}`, kind: 'count' as const, better: 'lower' as const, absentIsZero: true }));
}

export function formatByKind(kind: FigureKind, value: number): string {
  switch (kind) {
    case 'count':
      return formatCount(value);
    case 'ms':
      return formatDurationMs(value);
    case 'minor':
      return formatMinor(value);
    case 'text':
      return String(value);
  }
}

/** The figure's value as plain text, or undefined when the run did not record it. */
export function figureText(summary: Summary, figure: Figure): string | undefined {
  if (figure.kind === 'text') return stringAt(summary, figure.path);
  // drainedAtMs: null means "never drained", which is a result, not a missing figure.
  if (valueAt(summary, figure.path) === null && figure.path === 'drainedAtMs') return 'never';
  const value = figureValue(summary, figure);
  return value === undefined ? undefined : formatByKind(figure.kind, value);
}

/** The figure's number, or undefined when the run did not record it. */
export function figureValue(summary: Summary, figure: Figure): number | undefined {
  const value = numberAt(summary, figure.path);
  if (value !== undefined || !figure.absentIsZero) return value;
  const parent = figure.path.slice(0, figure.path.lastIndexOf('.'));
  return recordAt(summary, parent) !== undefined && valueAt(summary, figure.path) === undefined ? 0 : undefined;
}
