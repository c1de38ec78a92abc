// The virtual SD with a calibration: per shard a group-commit queue with the measured costs, so load and shard
// count show in latency and backlog, deterministically from the seed.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadScenarioText } from '../scenario/load.ts';
import { constantCalibration } from '../scenario/calibrationTesting.ts';
import { runVirtual } from './runVirtual.ts';

// 5 ms per request and 5 ms per commit: one shard serves at most 200 requests/s in big batches, 100/s one by one.
const dir = mkdtempSync(join(tmpdir(), 'payfleet-calibrated-'));
writeFileSync(join(dir, 'c.json'), JSON.stringify(constantCalibration({ serviceUs: 5000, commitUs: 5000 })));
const scenarioAt = (rate: number, shards: number) =>
  loadScenarioText(
    `seed: 4
duration: 6s
drain: 1m
crypto: sim
population:
  terminals: 80
  shards: ${shards}
  means: [{ name: p, kind: prepaid, openingBalanceMinor: 100000000 }]
  apps: [{ name: shop, type: telepayment, ordersPerHour: 1, amount: { uniformMinor: [2500, 4000] } }]
  users: { declineProbability: 0, wrongPinProbability: 0 }
policy: { confirmation: { approveAboveMinor: 1000000, pinAboveMinor: 1000000 }, remoteTimeout: 5s }
coverage: { meanOffDuration: 0 }
network: { latency: { medianMs: 20, p99Ms: 40 } }
servers: { calibration: c.json }
arrival: { executor: constant-arrival-rate, rate: ${rate}, startTime: 1s }
`,
    join(dir, 'cal.yaml'),
  );

describe('calibrated payment servers (virtual mode)', () => {
  it('batch requests under load and show the load and the shard count in the latency', () => {
    const light = runVirtual(scenarioAt(20, 1)).summary;
    const heavy = runVirtual(scenarioAt(190, 1)).summary;
    const heavyTwo = runVirtual(scenarioAt(190, 2)).summary;
    for (const s of [light, heavy, heavyTwo]) expect(s.ok, JSON.stringify(s.violation)).toBe(true);
    expect(heavy.servers?.calibration).toBe('c.json');
    // Light load: mostly one request per batch (10 ms each) on top of ~40 ms of network.
    expect(light.latencyMs.remote.p50).toBeLessThan(80);
    // 190/s on one shard is far over what it serves one by one: requests queue, batches grow, latency climbs.
    const requests = (s: typeof heavy) => s.orders.byPath.remote ?? 0;
    expect(heavy.servers!.batches![0]!).toBeLessThan(requests(heavy) / 2);
    expect(Math.max(...heavy.servers!.peakQueueDepth)).toBeGreaterThan(5);
    expect(heavy.latencyMs.remote.p99).toBeGreaterThan(light.latencyMs.remote.p99 * 1.5);
    // Two shards share the load.
    expect(heavyTwo.latencyMs.remote.p99).toBeLessThan(heavy.latencyMs.remote.p99);
    expect(heavyTwo.servers!.busyMs!.every((ms) => ms > 0)).toBe(true);
  });

  it('is deterministic: same scenario and seed, same trace', () => {
    expect(runVirtual(scenarioAt(50, 1)).summary.traceHash).toBe(runVirtual(scenarioAt(50, 1)).summary.traceHash);
  });
});
