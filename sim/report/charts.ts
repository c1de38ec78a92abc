// Goal: which charts a report draws from timeseries.csv, and the data each chart hands to the browser — for
// one run, and for two runs overlaid.
// Method: one declarative list of charts (title, columns, colours, unit of each y axis) shared by the run
// report and the comparison; the builders only pick columns and align minutes, so the page script does no
// arithmetic beyond formatting ticks. Colours are saturated on purpose: the browser test finds drawn lines
// by their saturation against the grey grid.

import type { Timeseries, TimeseriesColumn, Column } from './csv.ts';

/** How a y axis is labelled: plain counts, durations, or money (minor units, shown as major). */
export type Unit = 'count' | 'ms' | 'minor';

export interface SeriesSpec {
  column: TimeseriesColumn;
  label: string;
  color: string;
  side?: 'left' | 'right';
}

export interface ChartSpec {
  id: string;
  title: string;
  /** One sentence under the title: what to look for. */
  note: string;
  left: Unit;
  right?: Unit;
  series: SeriesSpec[];
}

const BLUE = '#1f6fd1';
const RED = '#d62728';
const GREEN = '#1f9e3a';
const ORANGE = '#f07f09';
const PURPLE = '#8e44c9';
const TEAL = '#0fa3b1';

export const CHARTS: ChartSpec[] = [
  {
    id: 'orders-path',
    title: 'Orders per minute by path',
    note: 'Internal payments, local payments without coverage, local payments at or below M0, and remote payments.',
    left: 'count',
    series: [
      { column: 'ordersInternal', label: 'internal', color: PURPLE },
      { column: 'ordersLocalOffline', label: 'local, offline', color: ORANGE },
      { column: 'ordersLocalBelowThreshold', label: 'local, below threshold', color: GREEN },
      { column: 'ordersRemote', label: 'remote', color: BLUE },
    ],
  },
  {
    id: 'orders-outcome',
    title: 'Orders per minute by outcome',
    note: 'Approved and declined orders, every path together.',
    left: 'count',
    series: [
      { column: 'approved', label: 'approved', color: GREEN },
      { column: 'declined', label: 'declined', color: RED },
    ],
  },
  {
    id: 'latency-local',
    title: 'Local payment latency',
    note: 'Order to response for payments the proxy decided itself, per minute.',
    left: 'ms',
    series: [
      { column: 'latencyLocalP50Ms', label: 'p50', color: TEAL },
      { column: 'latencyLocalP99Ms', label: 'p99', color: ORANGE },
    ],
  },
  {
    id: 'latency-remote',
    title: 'Remote payment latency',
    note: 'Order to response for payments authorised by a payment server, per minute.',
    left: 'ms',
    series: [
      { column: 'latencyRemoteP50Ms', label: 'p50', color: BLUE },
      { column: 'latencyRemoteP99Ms', label: 'p99', color: RED },
    ],
  },
  {
    id: 'coverage',
    title: 'Terminals in coverage',
    note: 'Terminals that can reach the payment servers; outages show as dips.',
    left: 'count',
    series: [{ column: 'terminalsInCoverage', label: 'in coverage', color: GREEN }],
  },
  {
    id: 'backlog',
    title: 'Unremitted backlog and money at risk',
    note: 'Locally approved transactions not yet on the server ledger (left) and their amount (right).',
    left: 'count',
    right: 'minor',
    series: [
      { column: 'backlogCount', label: 'transactions', color: ORANGE },
      { column: 'backlogAmountMinor', label: 'money at risk', color: RED, side: 'right' },
    ],
  },
  {
    id: 'remittance-lag',
    title: 'Remittance lag p99',
    note: 'Time from a local approval to its remittance reaching the ledger.',
    left: 'ms',
    series: [{ column: 'remittanceLagP99Ms', label: 'lag p99', color: PURPLE }],
  },
  {
    id: 'server-load',
    title: 'Payment-server requests per minute',
    note: 'Authorisations, debits, remittances and syncs, every shard together.',
    left: 'count',
    series: [{ column: 'serverRequests', label: 'requests', color: BLUE }],
  },
  {
    id: 'broker',
    title: 'Broker connections and reconnects',
    note: 'Open client connections (left) and reconnects per minute (right): a reconnect storm shows as a spike.',
    left: 'count',
    right: 'count',
    series: [
      { column: 'brokerConnections', label: 'connections', color: TEAL },
      { column: 'reconnects', label: 'reconnects', color: RED, side: 'right' },
    ],
  },
];

export interface SeriesData {
  label: string;
  color: string;
  /** Dashed: the second run of a comparison. */
  dash: boolean;
  side: 'left' | 'right';
  values: Column;
}

export interface ChartData {
  id: string;
  title: string;
  note: string;
  left: Unit;
  right: Unit | null;
  /** Minutes since the start of the run. */
  x: number[];
  series: SeriesData[];
  /** No series has a single value: the page says so instead of drawing an empty frame. */
  empty: boolean;
}

function minutesOf(ts: Timeseries): number[] {
  return ts.columns.minute.map((m, i) => m ?? i);
}

function isEmpty(series: SeriesData[]): boolean {
  return series.every((s) => s.values.every((v) => v === null));
}

function chart(spec: ChartSpec, x: number[], series: SeriesData[]): ChartData {
  return { id: spec.id, title: spec.title, note: spec.note, left: spec.left, right: spec.right ?? null, x, series, empty: x.length === 0 || isEmpty(series) };
}

export function chartsFor(ts: Timeseries): ChartData[] {
  const x = minutesOf(ts);
  return CHARTS.map((spec) =>
    chart(
      spec,
      x,
      spec.series.map((s) => ({ label: s.label, color: s.color, dash: false, side: s.side ?? 'left', values: ts.columns[s.column] })),
    ),
  );
}

/** Aligns a run's column on a shared minute axis (null where the run has no row for that minute). */
function aligned(ts: Timeseries, column: TimeseriesColumn, x: number[]): Column {
  const byMinute = new Map<number, number | null>();
  minutesOf(ts).forEach((minute, i) => byMinute.set(minute, ts.columns[column][i] ?? null));
  return x.map((minute) => byMinute.get(minute) ?? null);
}

/** Both runs on one minute axis: run A solid, run B dashed, same colour per figure. */
export function comparisonChartsFor(a: Timeseries, b: Timeseries, labelA = 'A', labelB = 'B'): ChartData[] {
  const x = [...new Set([...minutesOf(a), ...minutesOf(b)])].sort((p, q) => p - q);
  return CHARTS.map((spec) =>
    chart(
      spec,
      x,
      spec.series.flatMap((s) => [
        { label: `${labelA}: ${s.label}`, color: s.color, dash: false, side: s.side ?? 'left', values: aligned(a, s.column, x) },
        { label: `${labelB}: ${s.label}`, color: s.color, dash: true, side: s.side ?? 'left', values: aligned(b, s.column, x) },
      ]),
    ),
  );
}
