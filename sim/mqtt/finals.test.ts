import { describe, expect, it } from 'vitest';
import { environmentOf, mergeArrivalStats } from './finals.ts';

describe('mergeArrivalStats', () => {
  it('adds up the workers’ arrivals, issues and drops by reason, and sums their in-flight peaks', () => {
    const merged = mergeArrivalStats([
      { executor: 'constant-arrival-rate', arrivals: 30, issued: 10, dropped: 20, droppedByReason: { noTerminalUp: 5, maxInFlight: 15, noSource: 0 }, peakInFlight: 2 },
      null,
      { executor: 'constant-arrival-rate', arrivals: 31, issued: 30, dropped: 1, droppedByReason: { noTerminalUp: 0, maxInFlight: 0, noSource: 1 }, peakInFlight: 3 },
    ]);
    expect(merged).toEqual({ executor: 'constant-arrival-rate', arrivals: 61, issued: 40, dropped: 21, droppedByReason: { noTerminalUp: 5, maxInFlight: 15, noSource: 1 }, peakInFlight: 5 });
  });

  it('is null when no worker ran an open-model executor (a closed-model scenario)', () => {
    expect(mergeArrivalStats([null, undefined])).toBeNull();
    expect(mergeArrivalStats([])).toBeNull();
  });
});

describe('environmentOf: crashed processes restarted too late for the drain', () => {
  const hosted = [{ neverConnected: { count: 0, ids: [] } }];
  // A 6-minute run with a 10-minute drain and the default longest retry delay of 5 minutes.
  const timing = { drainEndMs: 960_000, drainMs: 600_000, retryMaxMs: 300_000 };

  it('says the test bed failed when an undrained run had everything back with less than one longest retry delay left', () => {
    const report = environmentOf(hosted, { ...timing, drained: false, restoredAtMs: 747_592 });
    expect(report.ok).toBe(false);
    expect(report.causes).toHaveLength(1);
    expect(report.causes[0]).toContain('up again only at 747592 ms of run time, 212408 ms before the drain\'s end at 960000 ms');
    // Back only after the drain's end: no time left at all.
    expect(environmentOf(hosted, { ...timing, drained: false, restoredAtMs: 1_030_731 }).causes[0]).toContain(', 0 ms before the drain');
  });

  it('blames nothing on the test bed when the run drained, or when everything was back in time (INV-7 stands)', () => {
    expect(environmentOf(hosted, { ...timing, drained: true, restoredAtMs: 950_000 }).ok).toBe(true);
    expect(environmentOf(hosted, { ...timing, drained: false, restoredAtMs: 360_000 }).ok).toBe(true);
    expect(environmentOf(hosted, { ...timing, drained: false, restoredAtMs: 660_000 }).ok).toBe(true);
    expect(environmentOf(hosted).ok).toBe(true);
    // A drain shorter than two retry delays (the scenario's choice): only restarts that took half of it are blamed.
    const short = { drainEndMs: 240_000, drainMs: 120_000, retryMaxMs: 300_000, drained: false };
    expect(environmentOf(hosted, { ...short, restoredAtMs: 120_018 }).ok).toBe(true);
    expect(environmentOf(hosted, { ...short, restoredAtMs: 190_000 }).ok).toBe(false);
  });
});
