import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { roundRate, searchCapacity, type ProbeResult } from './search.ts';
import { runProbe } from './probe.ts';
import { loadScenarioText } from '../../sim/scenario/load.ts';

/** A system whose p99 is 100 ms until 40/s, then climbs steeply; the SLO is p99 < 300 ms. */
function synthetic(rate: number): ProbeResult {
  const p99Ms = rate <= 40 ? 100 : Math.round(100 + (rate - 40) ** 2);
  return { rate, pass: p99Ms < 300, failed: p99Ms < 300 ? [] : ['latency.remote.p99 < 300ms'], p99Ms };
}

describe('searchCapacity', () => {
  it('doubles then bisects to the highest passing rate, within the precision', () => {
    const probed: number[] = [];
    const result = searchCapacity((rate) => (probed.push(rate), synthetic(rate)), { minRate: 1, maxRate: 1000, precision: 0.02 });
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

  it('finds the knee: the lowest rate whose p99 exceeds 1.5× its value at minRate', () => {
    const result = searchCapacity(synthetic, { minRate: 1, maxRate: 1000, precision: 0.02 });
    expect(result.baselineP99Ms).toBe(100);
    // p99 > 150 from (rate − 40)² > 50, i.e. rate > 47.07.
    expect(result.knee).toBeGreaterThan(47);
    expect(result.knee).toBeLessThan(48.1);
    expect(synthetic(result.knee!).p99Ms).toBeGreaterThan(150);
  });

  it('reports a failure at minRate, and a pass up to maxRate, as such', () => {
    const atMin = searchCapacity(synthetic, { minRate: 100, maxRate: 1000 });
    expect(atMin).toMatchObject({ capacity: null, firstFailing: 100, limitedBy: 'minRate' });
    expect(atMin.probes).toHaveLength(1);
    const atMax = searchCapacity(synthetic, { minRate: 1, maxRate: 30 });
    expect(atMax).toMatchObject({ capacity: 30, firstFailing: null, limitedBy: 'maxRate', knee: null });
  });

  it('stops at maxProbes even with a probe that never settles', () => {
    let calls = 0;
    searchCapacity((rate) => ({ rate, pass: ++calls % 2 === 0, failed: [], p99Ms: 1 }), { minRate: 1, maxRate: 1e6, precision: 1e-9, maxProbes: 12 });
    expect(calls).toBeLessThanOrEqual(12);
  });

  it('rounds rates to 3 significant digits', () => {
    expect([roundRate(36.3000001), roundRate(1234.5), roundRate(0.012345), roundRate(37.5)]).toEqual([36.3, 1230, 0.0123, 37.5]);
  });
});

// 20 ms per request: one shard serves at most 50 requests a second.
const SMALL = `name: cap-test
seed: 3
duration: 25s
drain: 1m
crypto: sim
population:
  terminals: 60
  means: [{ name: p, kind: prepaid, openingBalanceMinor: 100000000 }]
  apps: [{ name: shop, type: telepayment, ordersPerHour: 1, amount: { uniformMinor: [2500, 4000] } }]
  users: { declineProbability: 0, wrongPinProbability: 0 }
policy: { confirmation: { approveAboveMinor: 1000000, pinAboveMinor: 1000000 }, remoteTimeout: 5s }
coverage: { meanOffDuration: 0 }
network: { latency: { medianMs: 20, p99Ms: 60 } }
servers: { serviceTime: 20ms }
arrival: { executor: constant-arrival-rate, rate: 1, startTime: 5s }
`;
const SLOS = ['latency.remote.p99 < 300ms', 'declined.rate < 1%'];

describe('capacity search on a small virtual scenario', () => {
  it('finds more capacity with more shards, each bounded by the service time, and consistent probes', () => {
    const scenario = loadScenarioText(SMALL, 'cap-test.yaml');
    const options = { minRate: 4, maxRate: 400, precision: 0.1 };
    const one = searchCapacity((rate) => runProbe(scenario, 1, rate, SLOS), options);
    const two = searchCapacity((rate) => runProbe(scenario, 2, rate, SLOS), options);
    expect(one.capacity).not.toBeNull();
    expect(two.capacity).not.toBeNull();
    // A shard serves 50 requests/s at most; its capacity is below that, and two shards take more.
    expect(one.capacity!).toBeLessThan(50);
    expect(one.capacity!).toBeGreaterThan(20);
    expect(two.capacity!).toBeGreaterThan(one.capacity! * 1.5);
    expect(two.capacity!).toBeLessThan(100);
    for (const result of [one, two]) {
      const at = (rate: number | null) => result.probes.find((p) => p.rate === rate);
      expect(at(result.capacity)!.pass).toBe(true);
      expect(at(result.firstFailing)!.pass).toBe(false);
      expect(result.knee).not.toBeNull();
      expect(at(result.knee)!.p99Ms!).toBeGreaterThan(1.5 * result.baselineP99Ms!);
    }
  }, 120_000);

  it('runs as `payfleet capacity`, printing the table and writing it as JSON', () => {
    const dir = mkdtempSync(join(tmpdir(), 'payfleet-capacity-'));
    const file = join(dir, 'cap-test.yaml');
    writeFileSync(file, SMALL);
    const out = join(dir, 'capacity.json');
    const bin = join(import.meta.dirname, '../../bin/payfleet.mjs');
    const args = [bin, 'capacity', file, '--slo', SLOS[0]!, `--slo=${SLOS[1]}`, '--shards', '1', '--min-rate', '4', '--max-rate', '100', '--precision', '0.2', '--out', out];
    const result = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 120_000 });
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/shards\s+capacity\/s\s+first fail\/s\s+knee\/s/);
    const written = JSON.parse(readFileSync(out, 'utf8'));
    expect(written.slos).toEqual(SLOS);
    expect(written.rows).toHaveLength(1);
    expect(written.rows[0]).toMatchObject({ shards: 1, limitedBy: 'slo' });
    expect(written.rows[0].capacity).toBeGreaterThan(0);

    const bad = spawnSync(process.execPath, [bin, 'capacity', file, '--slo', 'latency < fast'], { encoding: 'utf8', timeout: 60_000 });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('--slo #1');
    const badShards = spawnSync(process.execPath, [bin, 'capacity', file, '--slo', SLOS[0]!, '--shards', '1,x'], { encoding: 'utf8', timeout: 60_000 });
    expect(badShards.status).toBe(2);
  }, 120_000);
});
