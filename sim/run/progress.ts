// Goal: a live progress line while a run goes — simulated time, % done, events per second, terminals in
// coverage, backlog — for a person watching a terminal; nothing at all when the output is not a TTY (CI logs,
// pipes), so logs stay clean.
// Method: the simulator reports figures often; the line is redrawn in place (`\r`, then clear to end of line) at
// most `minIntervalMs` of wall time apart. Events per second are measured between two redraws. Wall time is
// read here only for display; the run itself never sees it.

export interface ProgressFigures {
  simulatedMs: number;
  totalMs: number;
  events: number;
  terminalsInCoverage: number;
  backlogCount: number;
  backlogAmountMinor?: number;
  phase?: string;
}

/** What a runner reports as it goes, in both modes (the virtual simulator and the mqtt coordinator). */
export interface RunProgress extends ProgressFigures {
  phase: 'safety' | 'liveness';
}

/** The part of a stream the line needs (process.stderr fits). */
export interface ProgressStream {
  isTTY?: boolean;
  columns?: number;
  write(text: string): unknown;
}

export interface ProgressOptions {
  /** Least wall time between two redraws (ms); default 250, i.e. at most four a second. */
  minIntervalMs?: number;
  /** Wall clock in ms, for display only; default `performance.now`. */
  wallNowMs?: () => number;
}

const CLEAR_TO_END = '\x1b[K';

/** 90_061_000 ms → "25:01:01". */
export function formatDuration(ms: number): string {
  const totalSeconds = Math.max(0, Math.floor(ms / 1000));
  const hours = Math.floor(totalSeconds / 3600);
  const minutes = Math.floor((totalSeconds % 3600) / 60);
  const seconds = totalSeconds % 60;
  return `${String(hours).padStart(2, '0')}:${String(minutes).padStart(2, '0')}:${String(seconds).padStart(2, '0')}`;
}

/** 1234567 → "1.23M", 12345 → "12.3k", 999 → "999". */
export function formatCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}G`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e4) return `${(n / 1e3).toFixed(1)}k`;
  return String(Math.round(n));
}

/** The text of the line, without control characters. */
export function formatProgress(p: ProgressFigures, eventsPerSecond: number | undefined): string {
  const percent = p.totalMs > 0 ? Math.min(100, (100 * p.simulatedMs) / p.totalMs) : 100;
  const parts = [
    `sim ${formatDuration(p.simulatedMs)} / ${formatDuration(p.totalMs)}`,
    `${percent.toFixed(1)}%`,
    `${eventsPerSecond === undefined ? '–' : formatCount(eventsPerSecond)} ev/s`,
    `in coverage ${formatCount(p.terminalsInCoverage)}`,
    `backlog ${formatCount(p.backlogCount)}${p.backlogAmountMinor === undefined ? '' : ` (${formatCount(p.backlogAmountMinor)} minor)`}`,
  ];
  if (p.phase) parts.push(p.phase);
  return parts.join('  ');
}

export class ProgressLine {
  private readonly live: boolean;
  private readonly minIntervalMs: number;
  private readonly wallNowMs: () => number;
  private lastDrawMs: number | undefined;
  /** Where the events-per-second measure runs from: the last redraw, or the start. */
  private rateFromMs: number;
  private rateFromEvents = 0;
  private lastRate: number | undefined;
  private lastFigures: ProgressFigures | undefined;
  private drawn = false;

  constructor(
    private readonly stream: ProgressStream,
    enabled = true,
    options: ProgressOptions = {},
  ) {
    this.live = enabled && stream.isTTY === true;
    this.minIntervalMs = options.minIntervalMs ?? 250;
    this.wallNowMs = options.wallNowMs ?? (() => performance.now());
    this.rateFromMs = this.wallNowMs();
  }

  /** Takes the latest figures; redraws if enough wall time has passed since the last redraw. */
  update(figures: ProgressFigures): void {
    if (!this.live) return;
    this.lastFigures = figures;
    const nowMs = this.wallNowMs();
    if (this.lastDrawMs !== undefined && nowMs - this.lastDrawMs < this.minIntervalMs) return;
    this.draw(figures, nowMs);
  }

  /** Draws the last figures once more and ends the line, so what follows starts on a fresh line. */
  done(): void {
    if (!this.live || !this.lastFigures) return;
    this.draw(this.lastFigures, this.wallNowMs());
    this.stream.write('\n');
    this.lastFigures = undefined;
  }

  private draw(figures: ProgressFigures, nowMs: number): void {
    const elapsedMs = nowMs - this.rateFromMs;
    // Over a very short span the rate is noise; keep the last one.
    if (elapsedMs >= 50) {
      this.lastRate = ((figures.events - this.rateFromEvents) * 1000) / elapsedMs;
      this.rateFromMs = nowMs;
      this.rateFromEvents = figures.events;
    }
    let text = formatProgress(figures, this.lastRate);
    const width = this.stream.columns;
    if (width !== undefined && width > 1 && text.length > width - 1) text = text.slice(0, width - 1);
    this.stream.write(`\r${text}${CLEAR_TO_END}`);
    this.drawn = true;
    this.lastDrawMs = nowMs;
  }

  /** Whether anything was drawn (for tests and for callers that want to know). */
  get hasDrawn(): boolean {
    return this.drawn;
  }
}
