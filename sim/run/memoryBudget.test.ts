import { describe, expect, it } from 'vitest';
import { loadScenario, withOverrides } from '../scenario/load.ts';
import { estimateVirtualRun, expectedOrders, LIVE_BYTES_PER_AWAKE_TERMINAL, LIVE_BYTES_PER_TERMINAL, memoryRefusal } from './memoryBudget.ts';

const GIB = 1024 ** 3;

describe('memory budget of a virtual run', () => {
  const quickstart = loadScenario('scenarios/quickstart.yaml');

  it('lets the quickstart through at a default heap, and refuses a billion terminals naming the numbers and the way out', () => {
    expect(memoryRefusal(estimateVirtualRun(quickstart, 4 * GIB, 16 * GIB))).toBeUndefined();
    const huge = withOverrides(quickstart, { terminals: 1_000_000_000 });
    const refusal = memoryRefusal(estimateVirtualRun(huge, 4 * GIB, 24 * GIB));
    expect(refusal).toMatch(/1,000,\d{3},\d{3} terminals/);
    expect(refusal).toMatch(/cannot hold the run/);
  });

  it('suggests the NODE_OPTIONS that would make a run fit when the machine could hold it', () => {
    const bigger = withOverrides(quickstart, { terminals: 300_000 });
    const estimate = estimateVirtualRun(bigger, 1 * GIB, 24 * GIB);
    expect(estimate.fits).toBe(false);
    const refusal = memoryRefusal(estimate)!;
    const mib = Number(/--max-old-space-size=(\d+)/.exec(refusal)![1]);
    expect(mib * 1024 * 1024).toBeGreaterThanOrEqual(estimate.neededBytes);
    expect(estimateVirtualRun(bigger, mib * 1024 * 1024, 24 * GIB).fits).toBe(true);
  });

  it('counts orders from the terminals\' own rates, and from the arrival executor when there is one', () => {
    const perTerminalPerHour = quickstart.population.apps.reduce((s, a) => s + a.ordersPerHour, 0) + quickstart.population.pos.visitsPerTerminalPerHour;
    expect(expectedOrders(quickstart)).toBeCloseTo(quickstart.population.terminals * perTerminalPerHour * (quickstart.durationMs / 3_600_000), 6);
    const constant = { ...quickstart, arrival: { executor: 'constant-arrival-rate' as const, rate: 10, timeUnitMs: 1000, durationMs: 60_000, startTimeMs: 0, maxInFlight: 0, mix: [] } };
    expect(expectedOrders(constant)).toBe(600);
    const ramping = { ...quickstart, arrival: { executor: 'ramping-arrival-rate' as const, startRate: 0, stages: [{ target: 10, durationMs: 60_000 }, { target: 10, durationMs: 60_000 }], timeUnitMs: 1000, startTimeMs: 0, maxInFlight: 0, mix: [] } };
    expect(expectedOrders(ramping)).toBe(300 + 600);
  });

  it('counts a terminal awake all run (--no-hibernate) at its own, larger figure, and names it when refusing', () => {
    const city = withOverrides(quickstart, { terminals: 100_000 });
    const asleep = estimateVirtualRun(city, 4 * GIB, 16 * GIB);
    const awake = estimateVirtualRun(city, 4 * GIB, 16 * GIB, LIVE_BYTES_PER_AWAKE_TERMINAL);
    expect(LIVE_BYTES_PER_AWAKE_TERMINAL).toBeGreaterThan(LIVE_BYTES_PER_TERMINAL);
    expect(awake.neededBytes - asleep.neededBytes).toBeGreaterThan(awake.terminals * (LIVE_BYTES_PER_AWAKE_TERMINAL - LIVE_BYTES_PER_TERMINAL));
    const refusal = memoryRefusal(estimateVirtualRun(city, 0.5 * GIB, 16 * GIB, LIVE_BYTES_PER_AWAKE_TERMINAL))!;
    expect(refusal).toContain(`× ${LIVE_BYTES_PER_AWAKE_TERMINAL / 1024} KiB`);
  });
});
