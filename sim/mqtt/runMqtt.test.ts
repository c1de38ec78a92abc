import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadScenarioText } from '../scenario/load.ts';
import type { RunSummary } from '../run/summary.ts';
import { main } from '../cli/main.ts';
import { newSecret } from '../../broker/credentials.ts';
import { MOSQUITTO_BINARY, startMosquitto } from '../../broker/mosquitto.ts';
import { runMqttCommand, type RunMqttIo } from './runMqtt.ts';
import { liveChildCount } from './processes.ts';
import { runIdentities } from './identities.ts';
import { expectLedgerWhole, readSummary, runDirs } from './runTestSupport.ts';

// A few hundred terminals for six simulated minutes at ×30 (twelve real seconds, plus start-up and drain), with
// a regional outage, a broker kill and a server kill in the middle. (Restarting a process takes one to four real
// seconds here, a minute or more of run time at this scale: a higher scale would leave little run between kills.)
const BASE = `
seed: 11
duration: 6m
drain: 10m
crypto: ed25519
population:
  terminals: 240
  shards: 2
  regions: [{ name: north, share: 0.5 }, { name: south, share: 0.5 }]
  means:
    - { name: wallet, kind: virtualWallet, openingBalanceMinor: 30000, weight: 3 }
    - { name: postpaid, kind: postpaid, creditLimitMinor: 50000, weight: 1 }
    - { name: shared, kind: prepaid, dedicated: false, openingBalanceMinor: 20000, weight: 1, elsewhere: { ordersPerHour: 4, amount: { fixedMinor: 500 } } }
  apps:
    - { name: game, type: internal, ordersPerHour: 4, amount: { uniformMinor: [50, 400] } }
    - { name: shop, type: telepayment, ordersPerHour: 4, amount: { lognormal: { medianMinor: 1500, p99Minor: 8000 } } }
    - { name: video, type: telepayment, ordersPerHour: 2, amount: { fixedMinor: 399 }, remoteMode: authCapture, captureAfter: 1m }
  pos: { units: 4, visitsPerTerminalPerHour: 2, amount: { uniformMinor: [100, 3000] } }
coverage:
  meanOnDuration: 30m
  meanOffDuration: 1m
  outages: [{ region: south, at: 1m, duration: 2m }]
`;

const KILLS = `
  - { at: 2m, kind: brokerCrash, restartAfter: 20s }
  - { at: 3m, kind: serverCrash, shard: 0, restartAfter: 30s }
`;

const runDir = runDirs('payfleet-mqtt-');

function quietIo(extra: Partial<RunMqttIo> = {}): RunMqttIo & { lines: string[] } {
  const lines: string[] = [];
  return { out: (l) => lines.push(l), err: (l) => lines.push(l), handleSignals: false, lines, ...extra };
}

/** The verdict every mqtt run with kills in the middle must reach. */
function expectNothingLost(summary: RunSummary, lines: string[]): void {
  const context = `${lines.join('\n')}\n${JSON.stringify(summary.violation ?? null)}`;
  expect(summary.mode, context).toBe('mqtt');
  expectLedgerWhole(summary, context);
  expect(summary.drainedAtMs, context).not.toBeNull();
  // The run did real work on every path, and its faults really happened.
  expect(summary.orders.byPath.remote).toBeGreaterThan(0);
  expect(summary.orders.byPath.localOffline).toBeGreaterThan(0);
  expect(summary.orders.byPath.internal).toBeGreaterThan(0);
  expect(summary.remittance.transactions).toBeGreaterThan(0);
  expect(summary.faults.brokerCrashes).toBe(1);
  expect(summary.faults.serverCrashes).toBe(1);
  // No process failed by itself (the supervisor would have restarted it, and counted it).
  expect(summary.faults.serverFailures, context).toBe(0);
  expect(summary.faults.brokerFailures, context).toBe(0);
  expect(summary.network.connects).toBeGreaterThan(summary.terminals);
  expect(summary.invariants.find((i) => i.id === 'INV-4')!.checks).toBeGreaterThan(100);
  // The shared means were really spent elsewhere, on the servers' ledgers, through the kills; every spend answered.
  expect(summary.workload.elsewhere, context).toBeGreaterThan(0);
  expect(summary.workload.elsewhereUnanswered, context).toBeUndefined();
  expect(summary.workload.elsewhereNotApplied, context).toBeUndefined();
}

describe('payfleet run --mode mqtt', () => {
  it('on the embedded broker, through a broker kill, a server kill, a partition, device faults and adversaries: nothing lost, nothing twice', async () => {
    const scenario = loadScenarioText(
      `name: mqtt-embedded\n${BASE}faults:${KILLS}
  - { at: 1m30s, kind: terminalCrash, count: 4, restartAfter: 40s }
  - { at: 2m30s, kind: simMove, count: 2 }
  - { at: 4m, kind: partition, shard: 1, duration: 30s }
  - { at: 4m30s, kind: forgedSignature, count: 2 }
  - { at: 4m40s, kind: malformedPayload, count: 1 }
  - { at: 4m50s, kind: wrongTopic, count: 1 }
  - { at: 5m, kind: replayedRemittance, count: 1 }
  - { at: 2m, kind: alteredInFlight, count: 3 }
`,
      'mqtt-embedded.yaml',
    );
    const dir = runDir();
    const io = quietIo();
    const status = await runMqttCommand(scenario, 'mqtt-embedded.yaml', { outDir: dir, timeScale: 30, quiet: true }, io);
    const summary = readSummary(dir);
    expectNothingLost(summary, io.lines);
    expect(status).toBe(0);
    expect(summary.faults.partitions).toBe(1);
    expect(summary.faults.terminalCrashes).toBe(4);
    expect(summary.faults.adversarialMessages).toBeGreaterThanOrEqual(4);
    // Remittances or settlements modified on a device's radio path under their own request id: refused, and the
    // honest resend posted (nothing lost above, every backlog drained).
    expect(summary.faults.alteredInFlight).toBe(3);
    // Each adversarial message was checked to be refused and to have changed nothing.
    expect(summary.invariants.find((i) => i.id === 'INV-6')!.checks).toBeGreaterThanOrEqual(4);
    expect(existsSync(join(dir, 'timeseries.csv'))).toBe(true);
    expect(existsSync(join(dir, 'report.html'))).toBe(true);
    expect(liveChildCount()).toBe(0);
  }, 90_000);

  it.skipIf(!existsSync(MOSQUITTO_BINARY))('on Mosquitto (an external broker by URL), through a broker kill and a server kill: nothing lost, nothing twice', async () => {
    const scenario = loadScenarioText(`name: mqtt-mosquitto\n${BASE}faults:${KILLS}`, 'mqtt-mosquitto.yaml');
    const dir = runDir();
    const secret = newSecret();
    const mosquitto = await startMosquitto({ dir: join(dir, 'broker'), identities: runIdentities(scenario), secret });
    try {
      const io = quietIo({ brokerControl: { kill: () => mosquitto.kill(), restart: () => mosquitto.restart() } });
      const status = await runMqttCommand(scenario, 'mqtt-mosquitto.yaml', { outDir: dir, brokerUrl: mosquitto.url, secret, timeScale: 30, quiet: true }, io);
      const summary = readSummary(dir);
      expectNothingLost(summary, io.lines);
      expect(status).toBe(0);
      // The run wrote the password and ACL files an external Mosquitto needs for its identities.
      expect(readFileSync(join(dir, 'mosquitto', 'acl'), 'utf8')).toContain('user tm.t239');
    } finally {
      await mosquitto.close();
    }
    expect(liveChildCount()).toBe(0);
  }, 90_000);
});

describe('payfleet run --mode mqtt: bad input', () => {
  const file = join(import.meta.dirname, '..', '..', 'scenarios', 'quickstart.yaml');

  async function statusOf(args: string[], env: Record<string, string | undefined> = {}): Promise<{ status: number; errors: string }> {
    const errors: string[] = [];
    const saved = { ...process.env };
    const original = console.error;
    console.error = (...parts: unknown[]) => errors.push(parts.join(' '));
    try {
      delete process.env.PAYFLEET_BROKER_SECRET;
      Object.assign(process.env, env);
      const status = await main(['run', file, '--mode', 'mqtt', '--quiet', '--out', runDir(), ...args]);
      return { status, errors: errors.join('\n') };
    } finally {
      console.error = original;
      process.env = saved;
    }
  }

  it('exits 2 naming --time-scale when it is not a positive number', async () => {
    for (const value of ['0', '-3', 'fast']) {
      const { status, errors } = await statusOf(['--time-scale', value]);
      expect(status).toBe(2);
      expect(errors).toContain('--time-scale');
    }
  });

  it('exits 2 naming --broker for a URL that is not a broker URL, or without the secret its credentials need', async () => {
    const bad = await statusOf(['--broker', 'http://example.org/x'], { PAYFLEET_BROKER_SECRET: 's' });
    expect(bad.status).toBe(2);
    expect(bad.errors).toContain('--broker');
    const noSecret = await statusOf(['--broker', 'mqtt://127.0.0.1:1']);
    expect(noSecret.status).toBe(2);
    expect(noSecret.errors).toMatch(/--broker: set PAYFLEET_BROKER_SECRET/);
    expect(liveChildCount()).toBe(0);
  });
});
