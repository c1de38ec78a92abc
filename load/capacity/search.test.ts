import { describe, expect, it } from 'vitest';
import { roundRate, searchCapacity, type ProbeResult } from './search.ts';

/** A system whose p99 is 100 ms until 40/s, then climbs steeply; the SLO is p99 < 300 ms. */
function synthetic(rate: number): ProbeResult {
  const p99Ms = rate <= 40 ? 100 : Math.round(100 + (rate - 40) ** 2);
  return { rate, pass: p99Ms < 300, failed: p99Ms < 300 ? [] : ['latency.remote.p99 < 300ms'], p99Ms };
}

describe('searchCapacity', () => {
  it('doubles then bisects to the highest passing rate, within the precision', async () => {
    const probed: number[] = [];
    const result = await searchCapacity((rate) => (probed.push(rate), synthetic(rate)), { minRate: 1, maxRate: 1000, precision: 0.02 });
    // p99 < 300 holds while (rate − 40)² < 200, i.e. rate < 54.1.
    expect(result.capacity).toBeGreaterThanOrEqual(53);
    expect(result.capacity).toBeLessThan(54.2);
    expect(result.firstFailing! / result.capacity!).toBeLessThanOrEqual(1.02);
    expect(result.limitedBy).toBe('slo');
    expect(result.failedAt).toEqual(['latency.remote.p99 < 300ms']);
    expect(probed.slice(0, 8)).toEqual([1, 2, 4, 8, 16, 32, 64, 48]);
    expect(new Set(probed).size).toBe(probed.length);
    expect(result.probes.map((p) => p.rate)).toEqual([...probed].sort((a, b) => a - b));
  });

  it('finds the knee: the lowest rate whose p99 exceeds 1.5× its value at minRate', async () => {
    const result = await searchCapacity(synthetic, { minRate: 1, maxRate: 1000, precision: 0.02 });
    expect(result.baselineP99Ms).toBe(100);
    // p99 > 150 from (rate − 40)² > 50, i.e. rate > 47.07.
    expect(result.knee).toBeGreaterThan(47);
    expect(result.knee).toBeLessThan(48.1);
    expect(synthetic(result.knee!).p99Ms).toBeGreaterThan(150);
  });

  it('does not take a single noisy p99 below the knee for the knee', async () => {
    const spiky = (rate: number): ProbeResult => (rate === 16 ? { ...synthetic(rate), p99Ms: 400 } : synthetic(rate));
    const result = await searchCapacity(spiky, { minRate: 1, maxRate: 1000, precision: 0.02 });
    expect(result.knee).toBeGreaterThan(47);
    expect(result.knee).toBeLessThan(48.1);
  });

  it('reports a failure at minRate, and a pass up to maxRate, as such', async () => {
    const atMin = await searchCapacity(synthetic, { minRate: 100, maxRate: 1000 });
    expect(atMin).toMatchObject({ capacity: null, firstFailing: 100, limitedBy: 'minRate' });
    expect(atMin.probes).toHaveLength(1);
    const atMax = await searchCapacity(synthetic, { minRate: 1, maxRate: 30 });
    expect(atMax).toMatchObject({ capacity: 30, firstFailing: null, limitedBy: 'maxRate', knee: null });
  });

  it('stops at maxProbes even with a probe that never settles', async () => {
    let calls = 0;
    await searchCapacity((rate) => ({ rate, pass: ++calls % 2 === 0, failed: [], p99Ms: 1 }), { minRate: 1, maxRate: 1e6, precision: 1e-9, maxProbes: 12 });
    expect(calls).toBeLessThanOrEqual(12);
  });

  it('rounds rates to 3 significant digits', async () => {
    expect([roundRate(36.3000001), roundRate(1234.5), roundRate(0.012345), roundRate(37.5)]).toEqual([36.3, 1230, 0.0123, 37.5]);
  });
});

describe('searchCapacity from a guess', () => {
  it('probes minRate, then the guess, and narrows from there', async () => {
    const probed: number[] = [];
    const result = await searchCapacity((rate) => (probed.push(rate), synthetic(rate)), { minRate: 1, maxRate: 1000, precision: 0.02, startRate: 50 });
    expect(probed.slice(0, 3)).toEqual([1, 50, 100]);
    expect(result.capacity).toBeGreaterThanOrEqual(53);
    expect(result.capacity).toBeLessThan(54.2);
    const above = await searchCapacity(synthetic, { minRate: 1, maxRate: 1000, precision: 0.02, startRate: 80 });
    expect(above.capacity).toBeGreaterThanOrEqual(53);
    expect(above.probes.map((p) => p.rate)).not.toContain(2);
  });

  it('steps down from a guess that fails, by guessStep, and grows faster from minRate when told to', async () => {
    const probed: number[] = [];
    const result = await searchCapacity((rate) => (probed.push(rate), synthetic(rate)), { minRate: 1, maxRate: 1000, precision: 0.05, startRate: 100, guessStep: 1.3 });
    // 100 fails, 76.9 fails, 59.2 fails, 45.5 passes: then bisection between 45.5 and 59.2.
    expect(probed.slice(0, 5)).toEqual([1, 100, 76.9, 59.2, 45.5]);
    expect(result.capacity).toBeGreaterThanOrEqual(51);
    expect(result.capacity).toBeLessThan(54.2);
    const grown: number[] = [];
    await searchCapacity((rate) => (grown.push(rate), synthetic(rate)), { minRate: 1, maxRate: 1000, precision: 0.05, growth: (passed) => (passed.rate < 10 ? 4 : 2) });
    expect(grown.slice(0, 5)).toEqual([1, 4, 16, 32, 64]);
  });
});
