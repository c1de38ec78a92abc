import { describe, expect, it } from 'vitest';
import { colocatedScenario, fairLevel, hostLoad, quantileMean, type HostModel } from './hostModel.ts';
import { constantCalibration, constantTestBed } from '../../sim/scenario/calibrationTesting.ts';
import { QUANTILES } from '../../sim/scenario/calibration.ts';
import { loadScenarioText } from '../../sim/scenario/load.ts';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// A test bed whose swarm costs 2 ms per order and nothing else costs anything: one swarm worker saturates at
// 500 orders/s on a core of its own.
const testBed = constantTestBed({ servers: 0.5, broker: 0.5, swarm: 2 });
const quiet: HostModel = { cores: 2, backgroundThreads: 0, testBed };

describe('host model of servers co-located with their test bed', () => {
  it('shares the cores max-min fairly: everyone satisfied on a quiet host, an equal level when over-committed', () => {
    expect(fairLevel(2, 0, [0.5, 0.5, 0.5])).toBe(1);
    // Two busy threads of other work and two of ours that want a whole core each: half a core each.
    expect(fairLevel(2, 2, [1, 1])).toBeCloseTo(0.5, 6);
    // A small demand is met in full; the rest share what it leaves.
    expect(fairLevel(2, 3, [0.2])).toBeCloseTo(0.6, 6);
  });

  it('bounds the rate by the busiest single-threaded process, lower when other work takes the cores', () => {
    const below = hostLoad(quiet, 1, 40, 400);
    expect(below.saturated).toBe(false);
    expect(below.bottleneck.role).toBe('swarm');
    expect(below.bottleneck.utilisation).toBeCloseTo(0.8, 3);
    expect(hostLoad(quiet, 1, 40, 520).saturated).toBe(true);
    // Three busy threads of other work: the swarm worker gets less than a core and saturates sooner.
    const busy = { ...quiet, backgroundThreads: 3 };
    expect(hostLoad(busy, 1, 40, 300).saturated).toBe(true);
    expect(hostLoad(busy, 1, 40, 150).saturated).toBe(false);
    // More terminals than one worker takes: two workers share the swarm's work.
    expect(hostLoad(quiet, 1, 4_000, 600).saturated).toBe(false);
  });

  it('slows the servers by their share of a core and puts the test bed on every message', () => {
    const dir = mkdtempSync(join(tmpdir(), 'payfleet-host-'));
    writeFileSync(join(dir, 'cal.json'), JSON.stringify({ ...constantCalibration({ serviceUs: 1_000, commitUs: 500 }), testBed }));
    const scenario = loadScenarioText(
      `name: host\nseed: 1\nduration: 10s\ncrypto: sim\npopulation:\n  terminals: 40\n  means: [{ name: p, kind: prepaid, openingBalanceMinor: 5000 }]\n  apps: [{ name: shop, type: telepayment, ordersPerHour: 20, amount: { fixedMinor: 3000 } }]\nnetwork: { latency: { medianMs: 20, p99Ms: 40 } }\nservers: { calibration: cal.json }\n`,
      join(dir, 'host.yaml'),
    );
    const busy = { ...quiet, backgroundThreads: 3 };
    const load = hostLoad(busy, 1, 40, 100);
    const share = load.processes.find((p) => p.role === 'server')!.shareCores;
    expect(share).toBeLessThan(1);
    const copy = colocatedScenario(scenario, busy, load);
    // The calibrated 1 ms debit (and nothing of link CPU beyond it: the test bed's servers spent 0.5 ms) / share.
    expect(copy.servers.calibration!.calibration.kinds.debit.quantilesUs[QUANTILES.indexOf(0.5)]).toBeCloseTo(1_000 / share, 3);
    expect(copy.servers.calibration!.calibration.groupCommit.commitQuantilesUs[0]![0]).toBeCloseTo(500 / share, 3);
    expect(copy.network.latency.medianMs).toBeGreaterThan(20);
    expect(copy.network.latency.p99Ms - 40).toBeGreaterThan(copy.network.latency.medianMs - 20);
    // The scenario given is left as it was (the real probe runs it).
    expect(scenario.network.latency).toEqual({ medianMs: 20, p99Ms: 40 });
    expect(scenario.servers.calibration!.calibration.kinds.debit.quantilesUs[0]).toBe(1_000);
  });

  it('takes the mean of a quantile table', () => {
    expect(quantileMean(QUANTILES.map(() => 7))).toBeCloseTo(7, 9);
  });
});
