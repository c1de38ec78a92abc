// The capacity search over real virtual probes, kept lean: 40 terminals, 2 s of warm-up and 3 s of arrivals per
// probe, a coarse precision — seconds, not minutes.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_PROBE, judgeProbe, probeScenario, probeTopUp, runProbe, type ProbeOptions } from './probe.ts';
import { runMqttProbe } from './mqttProbe.ts';
import { loadScenarioText, ScenarioError } from '../../sim/scenario/load.ts';
import { UsageError } from '../../sim/cli/args.ts';
import { capacityCommand } from './command.ts';
import { constantCalibration, constantTestBed } from '../../sim/scenario/calibrationTesting.ts';

// 10 ms of service per request and no commit cost: one shard serves at most 100 requests a second, batched or not.
const dir = mkdtempSync(join(tmpdir(), 'payfleet-capacity-'));
writeFileSync(join(dir, 'cal.json'), JSON.stringify(constantCalibration({ serviceUs: 10_000, commitUs: 0 })));
const scenarioText = (servers: string, remoteTimeout = '5s') => `name: cap-test
seed: 3
duration: 25s
drain: 1m
crypto: sim
population:
  terminals: 40
  means: [{ name: p, kind: prepaid, openingBalanceMinor: 5000 }]
  apps: [{ name: shop, type: telepayment, ordersPerHour: 20, amount: { uniformMinor: [2500, 4000] } }]
  users: { declineProbability: 0, wrongPinProbability: 0 }
policy: { confirmation: { approveAboveMinor: 1000000, pinAboveMinor: 1000000 }, remoteTimeout: ${remoteTimeout} }
coverage: { meanOffDuration: 0 }
network: { latency: { medianMs: 20, p99Ms: 40 } }
servers: ${servers}
`;
const SLOS = ['latency.remote.p99 < 300ms'];
const LEAN: ProbeOptions = { ...DEFAULT_PROBE, warmUpMs: 2_000, windowMs: 3_000, maxDrainMs: 20_000 };
const BIN = join(import.meta.dirname, '../../bin/payfleet.mjs');

describe('capacity search on calibrated virtual servers', () => {
  it('fails a probe on system failures, on a saturated shard and on a backlog that does not drain, not only on latency', () => {
    // Three times what one shard serves, with a loose latency SLO and a short remote timeout: remote payments time
    // out (system failures) and orders pile up at the terminals.
    const short = loadScenarioText(scenarioText('{ calibration: cal.json }', '300ms'), join(dir, 'cap-test.yaml'));
    const over = runProbe(short, 1, 300, ['latency.remote.p99 < 60s'], LEAN);
    expect(over.pass).toBe(false);
    expect(over.failed).toContain('system.rate <= 1%');
    expect(over.summary.orders.failures!.system).toBeGreaterThan(0);
    expect(over.summary.orders.declinedByReason.remoteTimeout).toBeGreaterThan(0);
    // With the default timeout the proxies queue the orders instead: the probe fails on the saturated shard and
    // the backlog, whatever the latency of the payments that got through.
    const queued = runProbe(loadScenarioText(scenarioText('{ calibration: cal.json }'), join(dir, 'cap-test.yaml')), 1, 300, ['latency.remote.p99 < 60s'], LEAN);
    expect(queued.pass).toBe(false);
    expect(queued.failed).toEqual(expect.arrayContaining([expect.stringMatching(/^servers saturated: the busiest shard was busy \d+ % of the window$/)]));
    expect(queued.failed.some((f) => f.startsWith('backlog'))).toBe(true);
    // A run whose load generator fell behind (a real one, starved of CPU) never offered the rate: it fails.
    const starved = structuredClone(over.summary);
    starved.arrival!.arrivals = Math.floor(300 * 3 * 0.9);
    expect(judgeProbe(starved, 300, LEAN).failed).toContain('arrivals fell behind: 810 of the 900 due in the window (the load generator could not keep the rate)');
    expect(judgeProbe(over.summary, 300, LEAN).failed.some((f) => f.startsWith('arrivals fell behind'))).toBe(false);
  }, 30_000);

  it('funds the probes by top-ups: the scenario\'s own agreement kept, one sized from the probe given to the others', () => {
    const base = loadScenarioText(
      scenarioText('{ calibration: cal.json }').replace(
        'means: [{ name: p, kind: prepaid, openingBalanceMinor: 5000 }]',
        'means: [{ name: p, kind: prepaid, openingBalanceMinor: 5000 }, { name: own, kind: postpaid, topUp: { belowMinor: 100, amount: { fixedMinor: 700 } } }]',
      ),
      join(dir, 'cap-own.yaml'),
    );
    const probe = probeScenario(base, 1, 80, SLOS, LEAN);
    const sized = probeTopUp(base, 80, LEAN.windowMs);
    // 80/s for 3 s over 40 terminals: 6 orders a terminal, +1, at the largest amount (4,000).
    expect(sized).toEqual({ belowMinor: 8_000, amount: { kind: 'uniform', minMinor: 28_000, maxMinor: 56_000 } });
    expect(probe.population.means.map((m) => m.topUp)).toEqual([sized, { belowMinor: 100, amount: { kind: 'fixed', amountMinor: 700 } }]);
    // The opening figures stay the scenario's: money enters by top-up only.
    expect(probe.population.means.map((m) => [m.openingBalanceMinor, m.creditLimitMinor, m.localBalanceMinor])).toEqual(base.population.means.map((m) => [m.openingBalanceMinor, m.creditLimitMinor, m.localBalanceMinor]));
    expect(probeScenario(base, 1, 80, SLOS, { ...LEAN, fund: false }).population.means.map((m) => m.topUp)).toEqual([null, base.population.means[1]!.topUp]);
  });

  it('models servers co-located with their test bed only when asked, from the calibration\'s testBed', async () => {
    const testBed = constantTestBed({ servers: 1, broker: 1, swarm: 4 });
    writeFileSync(join(dir, 'cal-bed.json'), JSON.stringify({ ...constantCalibration({ serviceUs: 10_000, commitUs: 0 }), testBed }));
    const colocated = loadScenarioText(scenarioText('{ calibration: cal-bed.json }'), join(dir, 'cap-bed.yaml'));
    // The swarm's 4 ms per order: one worker cannot take 300 orders/s on one core, whatever the servers do.
    const host = { cores: 2, backgroundThreads: 0, testBed };
    const saturated = runProbe(colocated, 4, 300, ['latency.remote.p99 < 60s'], LEAN, host);
    expect(saturated.failed).toContain('host CPU saturated: a swarm process needs 1.2 of a core, it can have 1');
    const dedicated = runProbe(colocated, 4, 300, ['latency.remote.p99 < 60s'], LEAN);
    expect(dedicated.failed.some((f) => f.startsWith('host'))).toBe(false);
    // A calibration without a testBed cannot model a co-located host: refused, naming the file.
    const plain = join(dir, 'cap-plain.yaml');
    writeFileSync(plain, scenarioText('{ calibration: cal.json }'));
    await expect(capacityCommand([plain, '--slo', SLOS[0]!, '--host', 'co-located'])).rejects.toThrow(/cal\.json has no testBed/);
    await expect(capacityCommand([plain, '--slo', SLOS[0]!, '--compare', '--host', 'dedicated'])).rejects.toThrow(UsageError);
  }, 30_000);

  it('runs as `payfleet capacity`: the answer, every probe as JSON, the chart in report.html; refuses free servers', async () => {
    const file = join(dir, 'cap-cli.yaml');
    writeFileSync(file, scenarioText('{ calibration: cal.json }'));
    const out = join(dir, 'answer', 'capacity.json');
    const args = [BIN, 'capacity', file, '--slo', SLOS[0]!, '--shards', '1,2', '--min-rate', '10', '--max-rate', '400', '--precision', '0.3', '--warm-up', '2s', '--window', '3s', '--max-drain', '20s', '--peak-rate', '90', '--out', out];
    const result = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 60_000 });
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/shards\s+capacity\/s\s+first fail\/s\s+knee\/s/);
    expect(result.stdout).toMatch(/recommended: 2 shards — peak 90\.00 orders\/s, with 30 % headroom 117 orders\/s/);
    const written = JSON.parse(readFileSync(out, 'utf8'));
    expect(written.recommendation.shards).toBe(2);
    expect(written.rows.map((r: { shards: number }) => r.shards)).toEqual([1, 2]);
    expect(written.rows[0].probes.length).toBeGreaterThan(2);
    expect(written.rows[0].probes[0].details).toHaveProperty('systemFailureRate');
    // A shard serves 100 requests/s at most; its capacity is at most that, two shards take more, the servers bound it.
    const [one, two] = written.rows as Array<{ capacity: number; firstFailing: number; boundBy: string; probes: Array<{ rate: number; pass: boolean; details: Record<string, number> }> }>;
    expect(one!.capacity).toBeLessThanOrEqual(100);
    expect(one!.capacity).toBeGreaterThan(40);
    expect(two!.capacity).toBeGreaterThan(one!.capacity * 1.4);
    expect(two!.capacity).toBeLessThanOrEqual(200);
    for (const row of [one!, two!]) {
      const at = (rate: number) => row.probes.find((p) => p.rate === rate)!;
      expect(at(row.capacity).pass).toBe(true);
      // 5,000 minor units per terminal would not pay for 3 s of orders at these rates: top-ups fund them.
      expect(at(row.capacity).details.businessDeclineRate).toBe(0);
      expect(at(row.capacity).details.topUps).toBeGreaterThan(0);
      expect(at(row.capacity).details.systemFailureRate).toBeLessThanOrEqual(0.01);
      expect(at(row.firstFailing).pass).toBe(false);
      expect(row.boundBy).toMatch(/^the servers \(busiest shard busy/);
    }
    const html = readFileSync(join(dir, 'answer', 'report.html'), 'utf8');
    expect(html).toContain('<svg id="throughput-latency"');
    expect(html).toContain('recommended: 2 shards');

    // Refusals, in process (the CLI turns these errors into exit 2, sim/cli/main.test.ts): --compare with --mode,
    // and a scenario whose servers cost nothing.
    await expect(capacityCommand([file, '--slo', SLOS[0]!, '--compare', '--mode', 'mqtt'])).rejects.toThrow(UsageError);
    await expect(capacityCommand([file, '--slo', SLOS[0]!, '--compare', '--mode', 'mqtt'])).rejects.toThrow(/--compare runs both modes/);
    const free = join(dir, 'free.yaml');
    writeFileSync(free, scenarioText('{ serviceTime: 0 }'));
    const refused = capacityCommand([free, '--slo', SLOS[0]!]);
    await expect(refused).rejects.toThrow(ScenarioError);
    await expect(refused).rejects.toThrow(/free\.yaml: servers: no cost for the payment servers.*infinitely fast.*payfleet calibrate/s);
  }, 90_000);

  it('probes the real thing in mqtt mode: real servers and broker, the same verdict, the machine\'s CPU beside it', async () => {
    const scenario = loadScenarioText(scenarioText('{ calibration: cal.json }').replace('terminals: 40', 'terminals: 10'), join(dir, 'cap-mqtt.yaml'));
    const result = await runMqttProbe(scenario, 1, 5, ['latency.remote.p99 < 5s'], { ...LEAN, warmUpMs: 1_000, windowMs: 2_000 }, join(dir, 'mqtt'));
    expect(result.summary.mode).toBe('mqtt');
    expect(result.pass, result.failed.join('; ')).toBe(true);
    expect(result.summary.arrival?.issued).toBe(10);
    // The real servers funded the means by top-ups, and the end checks read them back [INV-3].
    expect(result.summary.ledger.topUps!.count).toBeGreaterThan(0);
    expect(result.details!.topUps).toBe(result.summary.ledger.topUps!.count);
    expect(result.p99Ms).toBeGreaterThan(0);
    expect(result.details!.machineCpuBusy as number).toBeGreaterThan(0);
    expect(result.details!.runCpuShare as number).toBeGreaterThan(0);
    // Every process of the run was read over the window: the servers', the broker's and the swarm's CPU per order.
    expect(result.windowCpu.cpuMs).toBeDefined();
    for (const role of ['serverCpuMsPerOrder', 'brokerCpuMsPerOrder', 'swarmCpuMsPerOrder']) expect(result.details![role] as number, role).toBeGreaterThan(0);
  }, 90_000);
});
