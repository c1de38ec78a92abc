import { describe, expect, it } from 'vitest';
import { MAX_TERMINALS_PER_WORKER, PlacementError, placeFleet, proportionalShares } from './placement.ts';

describe('placeFleet', () => {
  it('shares the terminals in proportion to capacity, contiguous, summing to the fleet', () => {
    const placement = placeFleet([{ name: 'a', capacity: 19_744 }, { name: 'b', capacity: 1_000 }], 300, 2);
    expect(placement.workers).toEqual([{ agent: 0, terminals: 286 }, { agent: 1, terminals: 14 }]);
    expect(placement.servers).toEqual([0, 1]);
  });

  it('runs one worker per MAX_TERMINALS_PER_WORKER of an agent share, and never gives an agent more than it holds', () => {
    const placement = placeFleet([{ name: 'a', capacity: 20_000 }, { name: 'b', capacity: 5_000 }], 25_000, 4);
    expect(placement.workers.filter((w) => w.agent === 0).length).toBe(Math.ceil(20_000 / MAX_TERMINALS_PER_WORKER));
    expect(placement.workers.filter((w) => w.agent === 0).reduce((s, w) => s + w.terminals, 0)).toBe(20_000);
    expect(placement.workers.filter((w) => w.agent === 1).reduce((s, w) => s + w.terminals, 0)).toBe(5_000);
    for (const worker of placement.workers) expect(worker.terminals).toBeLessThanOrEqual(MAX_TERMINALS_PER_WORKER);
    // Servers go round the agents, the roomiest first.
    expect(placement.servers).toEqual([0, 1, 0, 1]);
  });

  it('refuses a fleet the agents cannot hold, with the numbers', () => {
    expect(() => placeFleet([{ name: 'a', capacity: 10 }, { name: 'b', capacity: 5 }], 16, 1)).toThrow(PlacementError);
    expect(() => placeFleet([{ name: 'a', capacity: 10 }, { name: 'b', capacity: 5 }], 16, 1)).toThrow('the fleet has 16 terminals; the agents hold 15 together (a 10, b 5)');
  });
});

describe('proportionalShares', () => {
  it('loses no unit and keeps each share within its weight', () => {
    for (const [total, weights] of [[7, [1, 1, 1, 10]], [13, [3, 3, 7]], [0, [2, 2]], [5, [5, 0]]] as const) {
      const shares = proportionalShares(total, weights);
      expect(shares.reduce((a, b) => a + b, 0)).toBe(total);
      shares.forEach((share, i) => expect(share).toBeLessThanOrEqual(weights[i]!));
    }
  });
});
