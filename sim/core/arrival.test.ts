import { describe, it, expect } from 'vitest';
import { ArrivalSchedule, expectedArrivals } from './arrival.ts';
import type { Arrival } from '../scenario/types.ts';

const base = { timeUnitMs: 1000, startTimeMs: 0, maxInFlight: 0, mix: [] };

function times(arrival: Arrival, safetyEndMs: number, share = 1): number[] {
  const schedule = new ArrivalSchedule(arrival, safetyEndMs, share);
  const out: number[] = [];
  for (let t = schedule.next(); t !== undefined; t = schedule.next()) out.push(t);
  return out;
}

describe('constant-arrival-rate', () => {
  it('starts order k at startTime + k·timeUnit/rate, while before the end of its duration', () => {
    const arrival: Arrival = { ...base, executor: 'constant-arrival-rate', rate: 4, durationMs: 2000, startTimeMs: 500 };
    expect(times(arrival, 60_000)).toEqual([500, 750, 1000, 1250, 1500, 1750, 2000, 2250]);
    expect(expectedArrivals(arrival, 60_000)).toBe(8);
  });

  it('runs until the end of the safety phase without a duration, and counts exactly over a long run', () => {
    const arrival: Arrival = { ...base, executor: 'constant-arrival-rate', rate: 3, timeUnitMs: 1000, durationMs: null };
    // 3/s for one hour: 10,800 arrivals, spaced 333.3 ms, none lost to rounding.
    const all = times(arrival, 3_600_000);
    expect(all).toHaveLength(10_800);
    expect(expectedArrivals(arrival, 3_600_000)).toBe(10_800);
    expect(all.at(-1)!).toBeLessThan(3_600_000);
  });

  it('gives a fractional count its last partial interval (ceil), as k6 does', () => {
    const arrival: Arrival = { ...base, executor: 'constant-arrival-rate', rate: 1, timeUnitMs: 60_000, durationMs: 150_000 };
    expect(times(arrival, 1e9)).toEqual([0, 60_000, 120_000]);
  });

  it('issues a share of the global rate (one worker of several)', () => {
    const arrival: Arrival = { ...base, executor: 'constant-arrival-rate', rate: 10, durationMs: 10_000 };
    expect(times(arrival, 1e9, 0.25)).toHaveLength(25);
    expect(expectedArrivals(arrival, 1e9, 0.25)).toBe(25);
  });
});

describe('ramping-arrival-rate', () => {
  it('starts order k when the integral of the rate reaches k (k6: 0 → 1/s over 6 s gives √12, √24, 6 s)', () => {
    const arrival: Arrival = { ...base, executor: 'ramping-arrival-rate', startRate: 0, stages: [{ target: 1, durationMs: 6000 }] };
    const all = times(arrival, 1e9);
    expect(all).toHaveLength(3);
    expect(all[0]).toBeCloseTo(Math.sqrt(12) * 1000, 6);
    expect(all[1]).toBeCloseTo(Math.sqrt(24) * 1000, 6);
    expect(all[2]).toBeCloseTo(6000, 6);
  });

  it('counts exactly across stages: up, hold, down', () => {
    const arrival: Arrival = {
      ...base,
      executor: 'ramping-arrival-rate',
      startRate: 0,
      stages: [
        { target: 10, durationMs: 10_000 }, // 50
        { target: 10, durationMs: 20_000 }, // 200
        { target: 0, durationMs: 10_000 }, // 50
      ],
    };
    const all = times(arrival, 1e9);
    expect(all).toHaveLength(300);
    expect(expectedArrivals(arrival, 1e9)).toBe(300);
    // Arrivals are in order and within the stages; the rate shows in the spacing.
    for (let i = 1; i < all.length; i++) expect(all[i]!).toBeGreaterThan(all[i - 1]!);
    expect(all.at(-1)!).toBeLessThanOrEqual(40_000);
    expect(all.filter((t) => t >= 10_000 && t < 30_000)).toHaveLength(200);
  });

  it('starts at startRate and skips stages of rate zero', () => {
    const arrival: Arrival = {
      ...base,
      executor: 'ramping-arrival-rate',
      startRate: 2,
      timeUnitMs: 1000,
      stages: [
        { target: 2, durationMs: 2000 },
        { target: 0, durationMs: 1000 },
        { target: 0, durationMs: 5000 },
        { target: 4, durationMs: 1000 },
      ],
    };
    // 4 in the first stage, 1 in the ramp down, none while at zero, 2 in the last ramp up.
    expect(times(arrival, 1e9).map((t) => Math.round(t))).toEqual([500, 1000, 1500, 2000, 3000, 8707, 9000]);
    expect(expectedArrivals(arrival, 1e9)).toBe(7);
  });
});
