import { describe, it, expect } from 'vitest';
import { Prng } from './prng.ts';

function draws(prng: Prng, n = 8): number[] {
  return Array.from({ length: n }, () => prng.nextUint32());
}

describe('Prng', () => {
  it('gives the same stream for the same seed and a different one for another seed', () => {
    expect(draws(new Prng(42))).toEqual(draws(new Prng(42)));
    expect(draws(new Prng(42))).not.toEqual(draws(new Prng(43)));
    expect(draws(new Prng(0))).not.toEqual(draws(new Prng(2 ** 32)));
  });

  it('forks by label from the key alone, whatever the parent has drawn', () => {
    const a = new Prng(7);
    const b = new Prng(7);
    draws(b, 1000);
    expect(draws(a.fork('network'))).toEqual(draws(b.fork('network')));
    expect(draws(a.fork('network'))).not.toEqual(draws(a.fork('workload')));
    expect(draws(a.fork('t1'))).not.toEqual(draws(a.fork('t10')));
    // Nested forks are paths: a/x/y differs from a/y/x and from a/xy.
    expect(draws(a.fork('x').fork('y'))).not.toEqual(draws(a.fork('y').fork('x')));
    expect(draws(a.fork('x').fork('y'))).not.toEqual(draws(a.fork('xy')));
    // Forking does not move the parent.
    const c = new Prng(7);
    c.fork('anything');
    expect(draws(c)).toEqual(draws(new Prng(7)));
  });

  it('draws floats in [0, 1) with a mean near one half', () => {
    const prng = new Prng(1);
    let sum = 0;
    let min = 1;
    let max = 0;
    const n = 100_000;
    for (let i = 0; i < n; i++) {
      const x = prng.nextFloat();
      sum += x;
      if (x < min) min = x;
      if (x > max) max = x;
    }
    expect(min).toBeGreaterThanOrEqual(0);
    expect(max).toBeLessThan(1);
    expect(Math.abs(sum / n - 0.5)).toBeLessThan(0.005);
  });

  it('draws integers in the closed range, every value reached', () => {
    const prng = new Prng(2);
    const counts = new Map<number, number>();
    for (let i = 0; i < 60_000; i++) {
      const v = prng.int(-2, 3);
      counts.set(v, (counts.get(v) ?? 0) + 1);
    }
    expect([...counts.keys()].sort((a, b) => a - b)).toEqual([-2, -1, 0, 1, 2, 3]);
    for (const c of counts.values()) expect(Math.abs(c - 10_000)).toBeLessThan(600);
    expect(() => prng.int(3, 2)).toThrow(/badRange/);
    expect(() => prng.int(0.5, 2)).toThrow(/badRange/);
  });

  it('exponential has the requested mean', () => {
    const prng = new Prng(3);
    const n = 200_000;
    let sum = 0;
    for (let i = 0; i < n; i++) sum += prng.exponential(250);
    expect(Math.abs(sum / n - 250) / 250).toBeLessThan(0.01);
    expect(prng.exponential(0)).toBe(0);
    expect(() => prng.exponential(-1)).toThrow(/badMean/);
  });

  it('lognormal has the requested median and 99th percentile', () => {
    const prng = new Prng(4);
    const n = 100_000;
    const xs = Array.from({ length: n }, () => prng.lognormal(50, 400)).sort((a, b) => a - b);
    expect(Math.abs(xs[n / 2]! - 50) / 50).toBeLessThan(0.03);
    expect(Math.abs(xs[Math.floor(n * 0.99)]! - 400) / 400).toBeLessThan(0.06);
    expect(prng.lognormal(10, 10)).toBe(10);
    expect(() => prng.lognormal(10, 5)).toThrow(/badLognormal/);
  });

  it('chance follows p, and always draws once', () => {
    const prng = new Prng(5);
    let hits = 0;
    for (let i = 0; i < 100_000; i++) if (prng.chance(0.3)) hits++;
    expect(Math.abs(hits / 100_000 - 0.3)).toBeLessThan(0.01);
    const a = new Prng(9);
    const b = new Prng(9);
    a.chance(0);
    b.chance(1);
    expect(a.nextUint32()).toBe(b.nextUint32());
  });

  it('pick and weighted choose in proportion and refuse empty choices', () => {
    const prng = new Prng(6);
    const items = [
      { name: 'a', w: 1 },
      { name: 'none', w: 0 },
      { name: 'b', w: 3 },
    ];
    const counts: Record<string, number> = { a: 0, b: 0, none: 0 };
    for (let i = 0; i < 40_000; i++) counts[prng.weighted(items, (x) => x.w).name]!++;
    expect(counts.none).toBe(0);
    expect(Math.abs(counts.b! / 40_000 - 0.75)).toBeLessThan(0.01);
    expect(['x', 'y']).toContain(prng.pick(['x', 'y']));
    expect(() => prng.pick([])).toThrow(/emptyChoice/);
    expect(() => prng.weighted([{ w: 0 }], (x) => x.w)).toThrow(/emptyChoice/);
    expect(() => prng.weighted([{ w: -1 }], (x) => x.w)).toThrow(/badWeight/);
  });

  it('bytes32 gives 32 deterministic bytes per stream', () => {
    const a = new Prng(8).fork('key:t1').bytes32();
    expect(a).toHaveLength(32);
    expect([...a]).toEqual([...new Prng(8).fork('key:t1').bytes32()]);
    expect([...a]).not.toEqual([...new Prng(8).fork('key:t2').bytes32()]);
  });

  it('refuses a seed that is not a safe integer', () => {
    expect(() => new Prng(1.5)).toThrow(/badSeed/);
  });
});
