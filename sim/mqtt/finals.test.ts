import { describe, expect, it } from 'vitest';
import { mergeArrivalStats } from './finals.ts';

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
