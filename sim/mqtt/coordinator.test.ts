import { describe, expect, it } from 'vitest';
import { scenarioForWorker, splitCount } from './workerPool.ts';
import { runIdentities, shardGroups } from './identities.ts';
import { scaledBackoff } from './worker.ts';
import { loadScenarioText } from '../scenario/load.ts';
import { usernameOf } from '../../broker/topics.ts';

describe('shardGroups', () => {
  it('covers every shard exactly once, in contiguous ranges, with at most the given number of processes', () => {
    for (const [shards, processes] of [[1, 4], [2, 4], [4, 4], [7, 4], [16, 4], [3, 1]] as const) {
      const groups = shardGroups(shards, processes);
      expect(groups.length).toBe(Math.min(shards, processes));
      expect(groups.flat()).toEqual(Array.from({ length: shards }, (_, i) => i));
      for (const group of groups) expect(group.length).toBeGreaterThan(0);
    }
  });
});

describe('splitCount', () => {
  it('splits victims between workers in proportion to their terminals, losing none', () => {
    expect(splitCount(4, [120, 120])).toEqual([2, 2]);
    expect(splitCount(3, [150, 150])).toEqual([2, 1]);
    expect(splitCount(5, [10, 0, 30])).toEqual([2, 0, 3]);
    expect(splitCount(0, [5, 5])).toEqual([0, 0]);
    expect(splitCount(7, [1, 1]).reduce((a, b) => a + b, 0)).toBe(7);
  });
});

describe('runIdentities', () => {
  it('names every terminal, POS unit, server range and the harness, once each', () => {
    const scenario = loadScenarioText(
      `name: ids\nseed: 1\nduration: 1m\npopulation:\n  terminals: 5\n  shards: 6\n  means: [{ name: p, kind: prepaid, openingBalanceMinor: 100 }]\n  apps: [{ name: g, type: internal, ordersPerHour: 1, amount: { fixedMinor: 1 } }]\n  pos: { units: 2, visitsPerTerminalPerHour: 1, amount: { fixedMinor: 1 } }\n`,
      'ids.yaml',
    );
    const names = runIdentities(scenario).map(usernameOf);
    expect(new Set(names).size).toBe(names.length);
    expect(names).toEqual(['tm.t0', 'tm.t1', 'tm.t2', 'tm.t3', 'tm.t4', 'pos.pos0', 'pos.pos1', 'sd.0', 'sd.1-2', 'sd.3', 'sd.4-5', 'harness']);
  });
});

describe('scaledBackoff', () => {
  it('scales the reconnect backoff of a device to run time, with floors', () => {
    expect(scaledBackoff(1)).toEqual({ initialMs: 250, maxMs: 30_000, multiplier: 2 });
    expect(scaledBackoff(60)).toEqual({ initialMs: 10, maxMs: 500, multiplier: 2 });
    expect(scaledBackoff(10_000)).toEqual({ initialMs: 10, maxMs: 100, multiplier: 2 });
  });
});

describe('scenarioForWorker', () => {
  const base = loadScenarioText(
    `name: arrivals\nseed: 1\nduration: 10m\npopulation:\n  terminals: 10\n  means: [{ name: p, kind: prepaid, openingBalanceMinor: 100 }]\n  apps: [{ name: g, type: internal, ordersPerHour: 1, amount: { fixedMinor: 1 } }]\n`,
    'arrivals.yaml',
  );

  it('leaves a closed-model scenario as it is', () => {
    expect(scenarioForWorker(base, 0.5)).toBe(base);
  });

  it("gives each worker its share of an open-model arrival rate, so the workers together issue the scenario's rate", () => {
    const constant = { ...base, arrival: { executor: 'constant-arrival-rate' as const, rate: 10, durationMs: null, timeUnitMs: 1_000, startTimeMs: 0, maxInFlight: 9, mix: [] } };
    const half = scenarioForWorker(constant, 0.5).arrival;
    expect(half).toMatchObject({ rate: 5, maxInFlight: 5 });
    const ramping = { ...base, arrival: { executor: 'ramping-arrival-rate' as const, startRate: 4, stages: [{ target: 20, durationMs: 60_000 }], timeUnitMs: 1_000, startTimeMs: 0, maxInFlight: 0, mix: [] } };
    expect(scenarioForWorker(ramping, 0.25).arrival).toMatchObject({ startRate: 1, stages: [{ target: 5, durationMs: 60_000 }], maxInFlight: 0 });
    // The population itself is not split: every worker plans terminals against the whole fleet.
    expect(scenarioForWorker(constant, 0.5).population.terminals).toBe(10);
  });
});
