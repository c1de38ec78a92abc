import { describe, it, expect } from 'vitest';
import { ProgressLine, formatCount, formatDuration, formatProgress, type ProgressFigures } from './progress.ts';

function fakeStream(isTTY: boolean) {
  const writes: string[] = [];
  return { stream: { isTTY, columns: 200, write: (text: string) => writes.push(text) }, writes };
}

function figures(simulatedMs: number, events: number): ProgressFigures {
  return { simulatedMs, totalMs: 86_400_000, events, terminalsInCoverage: 48_123, backlogCount: 1234, phase: 'safety' };
}

describe('progress line', () => {
  it('formats durations, counts and the whole line', () => {
    expect(formatDuration(90_061_000)).toBe('25:01:01');
    expect(formatCount(1_234_567)).toBe('1.23M');
    expect(formatCount(12_345)).toBe('12.3k');
    expect(formatCount(999)).toBe('999');
    expect(formatProgress(figures(43_200_000, 0), 2_500_000)).toBe('sim 12:00:00 / 24:00:00  50.0%  2.50M ev/s  in coverage 48.1k  backlog 1234  safety');
  });

  it('redraws in place at most once per interval of wall time, with events per second between redraws', () => {
    const { stream, writes } = fakeStream(true);
    let wallMs = 0;
    const line = new ProgressLine(stream, true, { minIntervalMs: 250, wallNowMs: () => wallMs });
    wallMs = 100;
    line.update(figures(60_000, 100_000));
    wallMs = 200;
    line.update(figures(120_000, 150_000));
    wallMs = 1100;
    line.update(figures(180_000, 1_100_000));
    line.done();
    expect(writes).toHaveLength(4);
    expect(writes[0]).toMatch(/^\rsim 00:01:00 \/ 24:00:00 .* 1\.00M ev\/s .*\x1b\[K$/);
    expect(writes[1]).toMatch(/^\rsim 00:03:00 .* 1\.00M ev\/s/);
    expect(writes[2]).toMatch(/^\rsim 00:03:00 /);
    expect(writes[3]).toBe('\n');
  });

  it('is silent when the stream is not a TTY or when disabled', () => {
    for (const [isTTY, enabled] of [[false, true], [true, false]] as const) {
      const { stream, writes } = fakeStream(isTTY);
      const line = new ProgressLine(stream, enabled, { wallNowMs: () => 0 });
      line.update(figures(60_000, 1));
      line.done();
      expect(writes).toEqual([]);
    }
  });

  it('cuts the line to the width of the terminal', () => {
    const writes: string[] = [];
    const line = new ProgressLine({ isTTY: true, columns: 20, write: (t: string) => writes.push(t) }, true, { wallNowMs: () => 0 });
    line.update(figures(60_000, 1));
    expect(writes[0]).toBe(`\r${'sim 00:01:00 / 24:00:00'.slice(0, 19)}\x1b[K`);
  });
});
