import { describe, expect, it } from 'vitest';
import { loadScenarioText } from '../scenario/load.ts';
import { runMqttCommand } from './runMqtt.ts';
import { liveChildCount } from './processes.ts';
import { expectLedgerWhole, readSummary, runDirs } from './runTestSupport.ts';

// A few dozen terminals for four simulated minutes at ×60 on the embedded broker, through a radio that loses a
// fifth of the devices' messages, doubles a tenth, reorders some and delays all of them: the proxies' outboxes and
// the servers' idempotency must still leave nothing lost and nothing posted twice.
const SCENARIO = `
name: mqtt-lossy-radio
seed: 5
duration: 4m
drain: 10m
crypto: ed25519
population:
  terminals: 36
  shards: 2
  means:
    - { name: wallet, kind: virtualWallet, openingBalanceMinor: 30000, weight: 3 }
    - { name: postpaid, kind: postpaid, creditLimitMinor: 50000, weight: 1 }
  apps:
    - { name: game, type: internal, ordersPerHour: 20, amount: { uniformMinor: [50, 400] } }
    - { name: shop, type: telepayment, ordersPerHour: 20, amount: { lognormal: { medianMinor: 1500, p99Minor: 8000 } } }
  pos: { units: 2, visitsPerTerminalPerHour: 4, amount: { uniformMinor: [100, 3000] } }
coverage:
  meanOnDuration: 20m
  meanOffDuration: 1m
network:
  latency: { medianMs: 80, p99Ms: 1500 }
  lossProbability: 0.2
  duplicateProbability: 0.1
  reorderProbability: 0.05
`;

const runDir = runDirs('payfleet-radio-');

describe('payfleet run --mode mqtt with a lossy radio', () => {
  it("applies the scenario's loss, duplication, reordering and latency to the devices, and still loses nothing and posts nothing twice", async () => {
    const scenario = loadScenarioText(SCENARIO, 'mqtt-lossy-radio.yaml');
    const dir = runDir();
    const lines: string[] = [];
    const io = { out: (l: string) => lines.push(l), err: (l: string) => lines.push(l), handleSignals: false };
    const status = await runMqttCommand(scenario, 'mqtt-lossy-radio.yaml', { outDir: dir, timeScale: 60, quiet: true }, io);
    const summary = readSummary(dir);
    const context = `${lines.join('\n')}\n${JSON.stringify(summary.network)}\n${JSON.stringify(summary.violation ?? null)}`;
    expectLedgerWhole(summary, context);
    expect(status, context).toBe(0);
    // The radio really bit. (The counts cover the drain too, where loss, duplication and reordering are off as
    // in the virtual mode, so they sit below the scenario's rates; the rates themselves are radio.test.ts's.)
    const network = summary.network;
    const shaped = network.sent! + network.received!;
    expect(network.lost!, context).toBeGreaterThan(0.05 * shaped);
    expect(network.lost!, context).toBeLessThan(0.25 * shaped);
    expect(network.duplicated!, context).toBeGreaterThan(0.01 * shaped);
    expect(network.reordered!, context).toBeGreaterThan(0);
    expect(network.delayed!, context).toBeGreaterThan(0.5 * shaped);
    // ...and the payments went through it anyway, remote and remitted.
    expect(summary.orders.byPath.remote).toBeGreaterThan(0);
    expect(summary.remittance.transactions).toBeGreaterThan(0);
    expect(liveChildCount()).toBe(0);
  }, 90_000);
});
