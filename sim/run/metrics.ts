// Goal: the figures a run reports — orders by path and outcome, authorisation latency per path, remittance lag,
// the backlog of unremitted transactions and the money at risk, coverage, server load, reconnects and broker
// connections — for the whole run (summary.json) and minute by minute (timeseries.csv, from which report.html
// draws its charts).
// Method: plain counters and HDR histograms (hdr-histogram-js, 3 significant digits, auto-resizing) for the whole
// run, plus the same for the current minute. `sample(timeMs)` closes the current minute into a row: counts are
// those within the minute, percentiles are over the minute, gauges are their values at the sample. Rows are
// numbered by the minute they end in, ceil(timeMs / 60 000); a second sample in the same minute (a final sample
// at the very end of a run, say) folds into that minute's row instead of adding a row, which is why the minute's
// histograms are double-buffered. Recording is O(1) and allocates nothing on the approved-order path.

import { build, type Histogram } from 'hdr-histogram-js';
import type { PaymentPath } from '../../machines/domain/discriminate.ts';
import { DomainError } from '../../machines/domain/money.ts';

const MINUTE_MS = 60_000;

/** The columns of timeseries.csv, in order; report.html reads them by these names. */
export const TIMESERIES_COLUMNS = [
  'minute',
  'timeMs',
  'ordersInternal',
  'ordersLocalOffline',
  'ordersLocalBelowThreshold',
  'ordersRemote',
  'approved',
  'declined',
  'latencyLocalP50Ms',
  'latencyLocalP99Ms',
  'latencyRemoteP50Ms',
  'latencyRemoteP99Ms',
  'terminalsInCoverage',
  'backlogCount',
  'backlogAmountMinor',
  'remittanceLagP99Ms',
  'serverRequests',
  'reconnects',
  'brokerConnections',
] as const;

export type TimeseriesColumn = (typeof TIMESERIES_COLUMNS)[number];

/** Percentile columns are null for a minute with no sample (an empty cell in the CSV, a gap in a chart). */
type NullableColumn = 'latencyLocalP50Ms' | 'latencyLocalP99Ms' | 'latencyRemoteP50Ms' | 'latencyRemoteP99Ms' | 'remittanceLagP99Ms';
export type TimeseriesRow = { [K in TimeseriesColumn]: K extends NullableColumn ? number | null : number };

export type LatencyKind = 'local' | 'remote';

/** Values at a point in time, set by the simulator; a row records them as they are when it is sampled. */
export interface Gauges {
  terminalsInCoverage: number;
  backlogCount: number;
  backlogAmountMinor: number;
  brokerConnections: number;
}

export interface PercentilesMs {
  p50: number;
  p99: number;
  max: number;
}

/** The orders, latencyMs and remittance sections of summary.json. Percentiles of an empty histogram are 0. */
export interface SummaryParts {
  orders: {
    total: number;
    approved: number;
    declined: number;
    byPath: Record<PaymentPath, number>;
    declinedByReason: Record<string, number>;
  };
  latencyMs: { local: PercentilesMs; remote: PercentilesMs };
  remittance: {
    transactions: number;
    batches: number;
    pendingAtEnd: number;
    lagMs: { p50: number; p99: number };
    peakBacklogAmountMinor: number;
  };
}

function histogram(): Histogram {
  return build({ numberOfSignificantValueDigits: 3, autoResize: true });
}

/** HDR histograms hold non-negative integers: durations are rounded to the millisecond. */
function record(h: Histogram, valueMs: number): void {
  if (!(valueMs >= 0) || valueMs === Infinity) throw new DomainError('badDuration', 'a duration must be finite and ≥ 0 ms', valueMs);
  h.recordValue(Math.round(valueMs));
}

function percentileOrNull(h: Histogram, p: number): number | null {
  return h.totalCount === 0 ? null : h.getValueAtPercentile(p);
}

/** Counts within one minute (or, for the run, within the whole run). */
class Tally {
  internal = 0;
  localOffline = 0;
  localBelowThreshold = 0;
  remote = 0;
  approved = 0;
  declined = 0;
  serverRequests = 0;
  reconnects = 0;

  clear(): void {
    this.internal = this.localOffline = this.localBelowThreshold = this.remote = 0;
    this.approved = this.declined = this.serverRequests = this.reconnects = 0;
  }
}

/** One minute's histograms. */
class MinuteHistograms {
  readonly local = histogram();
  readonly remote = histogram();
  readonly lag = histogram();

  reset(): void {
    this.local.reset();
    this.remote.reset();
    this.lag.reset();
  }

  addInto(target: MinuteHistograms): void {
    target.local.add(this.local);
    target.remote.add(this.remote);
    target.lag.add(this.lag);
  }
}

export class Metrics {
  private readonly run = new Tally();
  private readonly minute = new Tally();
  private readonly declinedReasons = new Map<string, number>();
  private readonly named = new Map<string, number>();
  private readonly shardRequests: number[] = [];
  private readonly latencyLocal = histogram();
  private readonly latencyRemote = histogram();
  private readonly lag = histogram();
  private maxLocalMs = 0;
  private maxRemoteMs = 0;
  private remittedTransactions = 0;
  private remittanceBatches = 0;
  /** The open minute, and the last closed one (kept so a second sample in its minute can fold into it). */
  private openMinute = new MinuteHistograms();
  private closedMinute = new MinuteHistograms();
  private readonly current: Gauges = { terminalsInCoverage: 0, backlogCount: 0, backlogAmountMinor: 0, brokerConnections: 0 };
  private peakBacklogCount = 0;
  private peakBacklogAmountMinor = 0;
  private readonly timeseries: TimeseriesRow[] = [];

  // ------------------------------------------------------------------ recording

  /**
   * One answered order. `path` is the path it took (a declined order may name none); `reason` says why it was
   * declined.
   */
  recordOrder(path: PaymentPath | undefined, approved: boolean, reason?: string): void {
    const run = this.run;
    const minute = this.minute;
    switch (path) {
      case 'internal':
        run.internal++;
        minute.internal++;
        break;
      case 'localOffline':
        run.localOffline++;
        minute.localOffline++;
        break;
      case 'localBelowThreshold':
        run.localBelowThreshold++;
        minute.localBelowThreshold++;
        break;
      case 'remote':
        run.remote++;
        minute.remote++;
        break;
      default:
        break;
    }
    if (approved) {
      run.approved++;
      minute.approved++;
    } else {
      run.declined++;
      minute.declined++;
      const key = reason ?? 'unknown';
      this.declinedReasons.set(key, (this.declinedReasons.get(key) ?? 0) + 1);
    }
  }

  /** Time from an order reaching the proxy to its decision, by route (local covers internal and offline). */
  recordLatency(kind: LatencyKind, latencyMs: number): void {
    if (kind === 'local') {
      record(this.latencyLocal, latencyMs);
      record(this.openMinute.local, latencyMs);
      if (latencyMs > this.maxLocalMs) this.maxLocalMs = latencyMs;
    } else {
      record(this.latencyRemote, latencyMs);
      record(this.openMinute.remote, latencyMs);
      if (latencyMs > this.maxRemoteMs) this.maxRemoteMs = latencyMs;
    }
  }

  /** One acknowledged remittance of `transactions` transactions, with the approval → ack lag of those known. */
  recordRemittance(transactions: number, lagsMs: readonly number[] = []): void {
    this.remittanceBatches++;
    this.remittedTransactions += transactions;
    for (const lagMs of lagsMs) this.recordRemittanceLag(lagMs);
  }

  /** One transaction's approval → ack lag, when it is easier to record them one by one. */
  recordRemittanceLag(lagMs: number): void {
    record(this.lag, lagMs);
    record(this.openMinute.lag, lagMs);
  }

  /**
   * A request handled by the server of `shard` (or `count` of them: the mqtt runner learns how many its server
   * processes answered since the last sample, from their ledgers).
   */
  recordServerRequest(shard: number, count = 1): void {
    if (!Number.isSafeInteger(count) || count < 0) throw new DomainError('badCount', 'a count of requests must be an integer ≥ 0', count);
    this.shardRequests[shard] = (this.shardRequests[shard] ?? 0) + count;
    this.run.serverRequests += count;
    this.minute.serverRequests += count;
  }

  recordReconnect(count = 1): void {
    this.run.reconnects += count;
    this.minute.reconnects += count;
  }

  /** Any other named counter (refusals by reason, POS declines…). */
  count(name: string, by = 1): void {
    this.named.set(name, (this.named.get(name) ?? 0) + by);
  }

  counter(name: string): number {
    return this.named.get(name) ?? 0;
  }

  /** The named counters, sorted by name. */
  counters(): Record<string, number> {
    return Object.fromEntries([...this.named].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  }

  // ------------------------------------------------------------------ gauges

  setGauges(values: Partial<Gauges>): void {
    if (values.terminalsInCoverage !== undefined) this.current.terminalsInCoverage = values.terminalsInCoverage;
    if (values.brokerConnections !== undefined) this.current.brokerConnections = values.brokerConnections;
    if (values.backlogCount !== undefined || values.backlogAmountMinor !== undefined) {
      this.setBacklog(values.backlogCount ?? this.current.backlogCount, values.backlogAmountMinor ?? this.current.backlogAmountMinor);
    }
  }

  /** The backlog of unremitted local transactions; cheap enough to call at every change, so peaks are exact. */
  setBacklog(count: number, amountMinor: number): void {
    this.current.backlogCount = count;
    this.current.backlogAmountMinor = amountMinor;
    if (count > this.peakBacklogCount) this.peakBacklogCount = count;
    if (amountMinor > this.peakBacklogAmountMinor) this.peakBacklogAmountMinor = amountMinor;
  }

  get gauges(): Readonly<Gauges> {
    return this.current;
  }

  get peaks(): { backlogCount: number; backlogAmountMinor: number } {
    return { backlogCount: this.peakBacklogCount, backlogAmountMinor: this.peakBacklogAmountMinor };
  }

  /** Requests handled per shard, indexed by shard. */
  serverRequestsByShard(): number[] {
    return Array.from(this.shardRequests, (n) => n ?? 0);
  }

  // ------------------------------------------------------------------ time series

  /** Closes the current minute into a row (or folds it into the row of the same minute) and returns that row. */
  sample(timeMs: number): TimeseriesRow {
    if (!(timeMs >= 0) || timeMs === Infinity) throw new DomainError('badTime', 'a sample time must be finite and ≥ 0 ms', timeMs);
    const minuteNumber = Math.ceil(timeMs / MINUTE_MS);
    const last = this.timeseries[this.timeseries.length - 1];
    if (last !== undefined && timeMs < last.timeMs) throw new DomainError('badTime', `samples must not go back in time (last at ${last.timeMs} ms)`, timeMs);
    const tally = this.minute;
    let row: TimeseriesRow;
    if (last !== undefined && last.minute === minuteNumber) {
      this.openMinute.addInto(this.closedMinute);
      row = last;
      row.timeMs = timeMs;
      row.ordersInternal += tally.internal;
      row.ordersLocalOffline += tally.localOffline;
      row.ordersLocalBelowThreshold += tally.localBelowThreshold;
      row.ordersRemote += tally.remote;
      row.approved += tally.approved;
      row.declined += tally.declined;
      row.serverRequests += tally.serverRequests;
      row.reconnects += tally.reconnects;
    } else {
      const closing = this.openMinute;
      this.openMinute = this.closedMinute;
      this.closedMinute = closing;
      row = {
        minute: minuteNumber,
        timeMs,
        ordersInternal: tally.internal,
        ordersLocalOffline: tally.localOffline,
        ordersLocalBelowThreshold: tally.localBelowThreshold,
        ordersRemote: tally.remote,
        approved: tally.approved,
        declined: tally.declined,
        latencyLocalP50Ms: null,
        latencyLocalP99Ms: null,
        latencyRemoteP50Ms: null,
        latencyRemoteP99Ms: null,
        terminalsInCoverage: 0,
        backlogCount: 0,
        backlogAmountMinor: 0,
        remittanceLagP99Ms: null,
        serverRequests: tally.serverRequests,
        reconnects: tally.reconnects,
        brokerConnections: 0,
      };
      this.timeseries.push(row);
    }
    const closed = this.closedMinute;
    row.latencyLocalP50Ms = percentileOrNull(closed.local, 50);
    row.latencyLocalP99Ms = percentileOrNull(closed.local, 99);
    row.latencyRemoteP50Ms = percentileOrNull(closed.remote, 50);
    row.latencyRemoteP99Ms = percentileOrNull(closed.remote, 99);
    row.remittanceLagP99Ms = percentileOrNull(closed.lag, 99);
    row.terminalsInCoverage = this.current.terminalsInCoverage;
    row.backlogCount = this.current.backlogCount;
    row.backlogAmountMinor = this.current.backlogAmountMinor;
    row.brokerConnections = this.current.brokerConnections;
    tally.clear();
    this.openMinute.reset();
    return row;
  }

  get rows(): readonly Readonly<TimeseriesRow>[] {
    return this.timeseries;
  }

  /** timeseries.csv: a header of TIMESERIES_COLUMNS, one line per row, empty cells for minutes with no sample. */
  timeseriesCsv(): string {
    const lines = [TIMESERIES_COLUMNS.join(',')];
    for (const row of this.timeseries) lines.push(TIMESERIES_COLUMNS.map((column) => (row[column] === null ? '' : String(row[column]))).join(','));
    return lines.join('\n') + '\n';
  }

  // ------------------------------------------------------------------ summary

  summaryParts(): SummaryParts {
    const run = this.run;
    const declinedByReason = Object.fromEntries([...this.declinedReasons].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    return {
      orders: {
        total: run.approved + run.declined,
        approved: run.approved,
        declined: run.declined,
        byPath: { internal: run.internal, localOffline: run.localOffline, localBelowThreshold: run.localBelowThreshold, remote: run.remote },
        declinedByReason,
      },
      latencyMs: {
        local: { p50: this.latencyLocal.getValueAtPercentile(50), p99: this.latencyLocal.getValueAtPercentile(99), max: Math.round(this.maxLocalMs) },
        remote: { p50: this.latencyRemote.getValueAtPercentile(50), p99: this.latencyRemote.getValueAtPercentile(99), max: Math.round(this.maxRemoteMs) },
      },
      remittance: {
        transactions: this.remittedTransactions,
        batches: this.remittanceBatches,
        pendingAtEnd: this.current.backlogCount,
        lagMs: { p50: this.lag.getValueAtPercentile(50), p99: this.lag.getValueAtPercentile(99) },
        peakBacklogAmountMinor: this.peakBacklogAmountMinor,
      },
    };
  }
}
