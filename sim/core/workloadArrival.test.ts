import { describe, it, expect } from 'vitest';
import { loadScenarioText } from '../scenario/load.ts';
import { runVirtual, summarize } from '../run/runVirtual.ts';
import { Simulator } from '../run/simulator.ts';
import type { PaymentOrder } from '../../machines/messages.ts';
import { Workload } from './workload.ts';
import { Prng } from './prng.ts';
import type { TimeSource } from './timeSource.ts';

const BASE = `
seed: 11
duration: 1m
drain: 5m
crypto: sim
population:
  terminals: 12
  apps:
    - { name: shop, type: telepayment, ordersPerHour: 1, share: 0.5, amount: { uniformMinor: [100, 300] } }
    - { name: game, type: internal, ordersPerHour: 1, amount: { uniformMinor: [50, 100] } }
  users: { declineProbability: 0, wrongPinProbability: 0 }
coverage: { meanOffDuration: 0 }
`;

function run(extra: string) {
  return runVirtual(loadScenarioText(BASE + extra, 'arrival.yaml'));
}

/** A run that also lists every order the workload issued, as the order oracle hears of them. */
function runListingOrders(extra: string) {
  const simulator = new Simulator(loadScenarioText(BASE + extra, 'arrival.yaml'));
  const orders: Array<{ order: PaymentOrder; terminalId: string }> = [];
  const toOracle = simulator.workload.onIssued!;
  simulator.workload.onIssued = (order, terminalId) => {
    orders.push({ order, terminalId });
    toOracle(order, terminalId);
  };
  simulator.run();
  return { summary: summarize(simulator, 0, undefined, undefined), simulator, orders };
}

describe('open-model arrivals in a virtual run', () => {
  it('issues exactly rate × duration orders across the fleet, every one answered, none dropped', () => {
    const { summary, simulator, orders } = runListingOrders(`arrival: { executor: constant-arrival-rate, rate: 5, timeUnit: 1s }\n`);
    expect(summary.ok).toBe(true);
    expect(summary.arrival).toMatchObject({ executor: 'constant-arrival-rate', arrivals: 300, issued: 300, dropped: 0 });
    expect(summary.orders.total).toBe(300);
    expect(summary.orders.dropped).toBe(0);
    // The per-terminal Poisson processes are off: every order came from the arrival stream.
    expect(simulator.workload.counters.issued).toBe(300);
    const terminals = new Set(orders.map((o) => o.terminalId));
    expect(terminals.size).toBeGreaterThan(6);
  });

  it('counts the arrivals that find every terminal down as dropped (noTerminalUp), exactly', () => {
    // Every terminal crashes at 30 s and stays down until the liveness phase: arrivals at 30.0 … 59.5 s drop.
    const { summary } = run(`arrival: { executor: constant-arrival-rate, rate: 2 }\nfaults:\n  - { kind: terminalCrash, at: 30s, count: 12, restartAfter: 1h }\n`);
    expect(summary.arrival).toMatchObject({ arrivals: 120, issued: 60, dropped: 60, droppedByReason: { noTerminalUp: 60, maxInFlight: 0, noSource: 0 } });
    expect(summary.orders.dropped).toBe(60);
    expect(summary.workload).toMatchObject({ arrivals: 120, arrivalDropped: 60 });
  });

  it('drops arrivals beyond maxInFlight, exactly: each order waits 2.5 s for its user, one arrives every second', () => {
    const text = `seed: 11
duration: 1m
drain: 5m
crypto: sim
population:
  terminals: 12
  apps: [{ name: game, type: internal, ordersPerHour: 1, amount: { uniformMinor: [50, 100] } }]
  users: { declineProbability: 0, wrongPinProbability: 0, thinkTime: 2500ms }
policy: { confirmation: { approveAboveMinor: 0, pinAboveMinor: 100000 } }
coverage: { meanOffDuration: 0 }
arrival: { executor: constant-arrival-rate, rate: 1, duration: 30s, maxInFlight: 1 }
`;
    const { summary } = runVirtual(loadScenarioText(text, 'in-flight.yaml'));
    // Issued at 0, 3, 6 … 27 s; the two arrivals between each are dropped.
    expect(summary.arrival).toMatchObject({ arrivals: 30, issued: 10, dropped: 20, droppedByReason: { maxInFlight: 20 }, peakInFlight: 1 });
    expect(summary.orders.total).toBe(10);
  });

  it('draws the orders of a mix entry from terminals that have the app', () => {
    const { summary, simulator, orders } = runListingOrders(`arrival: { executor: ramping-arrival-rate, startRate: 0, stages: [{ target: 4, duration: 20s }, { target: 0, duration: 20s }], mix: [{ source: shop }] }\n`);
    expect(summary.arrival).toMatchObject({ executor: 'ramping-arrival-rate', arrivals: 80, issued: 80, dropped: 0 });
    expect(orders).toHaveLength(80);
    for (const order of orders) {
      expect(order.order.source).toEqual({ kind: 'app', appId: 'shop' });
      const slot = simulator.slotOf(order.terminalId)!;
      expect(slot.plan.apps.map((a) => a.name)).toContain('shop');
    }
  });

  it('runs the same to the trace with the same seed', () => {
    const extra = `arrival: { executor: constant-arrival-rate, rate: 3 }\n`;
    expect(run(extra).summary.traceHash).toBe(run(extra).summary.traceHash);
  });
});

/**
 * A time source whose timers fire late, as a busy real-time event loop's do: time moves in turns of `turnMs`, and
 * each turn fires at most one timer that is due (the slowest a Node loop can be: one timer callback per turn).
 */
class BusyLoopTime implements TimeSource {
  private timeMs = 0;
  private readonly due: Array<{ atMs: number; fn: () => void }> = [];
  now(): number {
    return this.timeMs;
  }
  schedule(delayMs: number, fn: () => void): void {
    this.at(this.timeMs + delayMs, fn);
  }
  at(timeMs: number, fn: () => void): void {
    this.due.push({ atMs: timeMs, fn });
    this.due.sort((a, b) => a.atMs - b.atMs);
  }
  runUntil(endMs: number, turnMs: number): void {
    while (this.timeMs < endMs) {
      this.timeMs += turnMs;
      if (this.due.length > 0 && this.due[0]!.atMs <= this.timeMs) this.due.shift()!.fn();
    }
  }
}

describe('open-model arrivals on a clock whose timers fire late (the mqtt workers)', () => {
  // 500 arrivals a second for 1 s, on a loop that turns every 10 ms: one arrival per timer would issue 100.
  const scenarioText = BASE.replace('duration: 1m', 'duration: 1s') + `arrival: { executor: constant-arrival-rate, rate: 500 }\n`;

  function arrivalsIssued(catchUpArrivals: boolean): number {
    const simulator = new Simulator(loadScenarioText(scenarioText, 'late-timers.yaml'));
    const time = new BusyLoopTime();
    const workload = new Workload(simulator.scenario, time, simulator.fleet, new Prng(3), { catchUpArrivals });
    workload.start();
    time.runUntil(1_000, 10);
    return workload.arrival!.arrivals;
  }

  it('issues every arrival already due when a late timer fires, so the rate offered is the rate asked', () => {
    expect(arrivalsIssued(true)).toBe(500);
  });

  it('falls behind without catching up (what the mqtt probes saw: the generator, not the machine, bound the rate)', () => {
    expect(arrivalsIssued(false)).toBe(100);
  });
});
