import { describe, expect, it } from 'vitest';
import { loadScenario, withOverrides } from '../scenario/load.ts';
import { Simulator } from './simulator.ts';
import type { Scenario } from '../scenario/types.ts';
import type { HibernationOptions } from '../core/hibernation.ts';

const NO_LINGER: HibernationOptions = { lingerMs: 0, maxLingering: 0 };

// Restore-equivalence of hibernation (sim/core/hibernation.ts): a fleet whose idle terminals hibernate and one
// whose actors all stay alive make the same run — the same trace hash (every delivered message, in order), the same
// scheduler events, the same orders and remittances — on the scenarios that exercise it most: quickstart, chaos
// (every fault kind: crashes and SIM moves of sleeping terminals, a broker crash that wakes every terminal at once,
// skewed clocks) and outage-storm (most terminals leave and regain coverage together). The scheduler's event times
// are compared one by one, since a timer that fires once too often changes them before it changes any message.
// Terminals sleep right after the event that leaves them idle (no linger): the most sleeps and wakes, so the most
// chances for a restore to differ; the default linger only skips some of them (its own case below).

interface RunFingerprint {
  traceHash: string;
  events: number;
  eventTimes: number[];
  /** Orders by path and outcome, latencies, remittances; and the named counters (refusals, declines…). */
  figures: unknown;
  wakes: number;
  awakeAtEnd: number;
  ok: boolean;
}

function fingerprint(scenario: Scenario, hibernate: boolean | HibernationOptions): RunFingerprint {
  const simulator = new Simulator(scenario, { hibernate });
  const eventTimes: number[] = [];
  const scheduler = simulator.scheduler;
  // Read after each event, alongside the fleet's own hook; it schedules nothing.
  const settle = scheduler.afterEvent;
  scheduler.afterEvent = () => {
    eventTimes.push(scheduler.now());
    settle?.();
  };
  simulator.run();
  return {
    traceHash: simulator.trace.digest(),
    events: scheduler.eventsRun,
    eventTimes,
    figures: { ...simulator.metrics.summaryParts(), counters: simulator.metrics.counters(), network: { ...simulator.network.counters } },
    wakes: simulator.fleet.hibernation?.wakes ?? 0,
    awakeAtEnd: simulator.fleet.terminalsAwake,
    ok: simulator.book.ok,
  };
}

function expectSameRun(scenario: Scenario, hibernation: HibernationOptions = NO_LINGER): RunFingerprint {
  const asleep = fingerprint(scenario, hibernation);
  const awake = fingerprint(scenario, false);
  expect(asleep.ok && awake.ok).toBe(true);
  expect(asleep.traceHash).toBe(awake.traceHash);
  expect(asleep.events).toBe(awake.events);
  expect(asleep.eventTimes).toEqual(awake.eventTimes);
  expect(asleep.figures).toEqual(awake.figures);
  // Hibernation did happen (else the comparison proves nothing), and did not happen without it.
  expect(asleep.wakes).toBeGreaterThan(scenario.population.terminals);
  expect(asleep.awakeAtEnd).toBeLessThan(scenario.population.terminals);
  expect(awake.wakes).toBe(0);
  expect(awake.awakeAtEnd).toBe(scenario.population.terminals);
  return asleep;
}

// Each case runs a scenario twice; the chaos one signs with ed25519. Minutes on a loaded 2-core machine.
const TWO_RUNS_MS = 600_000;

describe('hibernating terminals make the same run as terminals always awake', () => {
  it('quickstart, seed 1: trace 99cc65c8362a0660 either way', () => {
    const run = expectSameRun(withOverrides(loadScenario('scenarios/quickstart.yaml'), { seed: 1 }));
    expect(run.traceHash).toBe('99cc65c8362a0660');
  }, TWO_RUNS_MS);

  it('chaos, 300 terminals, seed 1: trace bcd2501e422aa637 either way', () => {
    const run = expectSameRun(withOverrides(loadScenario('scenarios/chaos.yaml'), { seed: 1, terminals: 300 }));
    expect(run.traceHash).toBe('bcd2501e422aa637');
  }, TWO_RUNS_MS);

  it('outage-storm, 1,000 terminals, seed 1', () => {
    expectSameRun(withOverrides(loadScenario('scenarios/outage-storm.yaml'), { seed: 1, terminals: 1000 }));
  }, TWO_RUNS_MS);

  it('outage-storm, 1,000 terminals, seed 1, with a linger and a lingering cap the storm overflows', () => {
    expectSameRun(withOverrides(loadScenario('scenarios/outage-storm.yaml'), { seed: 1, terminals: 1000 }), { lingerMs: 30_000, maxLingering: 100 });
  }, TWO_RUNS_MS);
});
