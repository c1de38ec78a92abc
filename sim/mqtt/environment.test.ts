// Goal: an mqtt run on a test bed that cannot host the whole fleet ends with the ENVIRONMENT verdict (exit 3),
// names the endpoints that never got a link, and counts nothing they still hold as lost.
// Method: a tiny scenario against an external aedes broker started here, which refuses the connections of two
// chosen terminals (as a broker out of file descriptors would); the run goes through the real `runMqttCommand`.

import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadScenarioText } from '../scenario/load.ts';
import type { RunSummary } from '../run/summary.ts';
import { newSecret } from '../../broker/credentials.ts';
import { startBroker } from '../../broker/aedes.ts';
import { runMqttCommand, type RunMqttIo } from './runMqtt.ts';

// Twenty terminals for two simulated minutes at ×20 (six real seconds, plus start-up and a drain the two refused
// terminals never finish). The internal app pays locally, so the refused terminals approve payments they can
// never remit: money held in their journals at the end.
const TINY = `
seed: 5
duration: 2m
drain: 2m
crypto: ed25519
population:
  terminals: 20
  shards: 1
  means:
    - { name: wallet, kind: virtualWallet, openingBalanceMinor: 30000, weight: 1 }
  apps:
    - { name: game, type: internal, ordersPerHour: 120, amount: { uniformMinor: [50, 400] } }
    - { name: shop, type: telepayment, ordersPerHour: 30, amount: { fixedMinor: 1500 } }
  pos: { units: 1, visitsPerTerminalPerHour: 10, amount: { uniformMinor: [100, 3000] } }
coverage:
  meanOnDuration: 30m
  meanOffDuration: 1m
`;

const REFUSED = ['t3', 't7'];

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function quietIo(): RunMqttIo & { lines: string[] } {
  const lines: string[] = [];
  return { out: (l) => lines.push(l), err: (l) => lines.push(l), handleSignals: false, lines };
}

describe('an mqtt run whose broker refuses some endpoints', () => {
  it('ends ENVIRONMENT (exit 3), names the endpoints that never connected, and loses nothing they hold', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'payfleet-env-'));
    dirs.push(dir);
    const secret = newSecret();
    const broker = await startBroker({ port: 0, secret, refuseEndpoint: (identity) => identity.role === 'terminal' && REFUSED.includes(identity.id) });
    try {
      const io = quietIo();
      const scenario = loadScenarioText(TINY, 'environment.yaml');
      const status = await runMqttCommand(scenario, 'environment.yaml', { outDir: dir, brokerUrl: broker.url, secret, timeScale: 20, quiet: true, connectTimeoutRealMs: 2_000 }, io);
      const summary = JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8')) as RunSummary;
      const context = `${io.lines.join('\n')}\n${JSON.stringify({ environment: summary.environment, ledger: summary.ledger, invariants: summary.invariants })}`;
      expect(status, context).toBe(3);
      expect(summary.environment, context).toEqual({ ok: false, causes: [expect.stringContaining('t3, t7')], neverConnected: { count: 2, ids: REFUSED } });
      expect(summary.ledger.lost, context).toBe(0);
      // The refused terminals approved local payments they could never remit: held, not lost, and INV-7 says so.
      expect(summary.ledger.heldInJournals, context).toBeGreaterThan(0);
      expect(summary.invariants.find((i) => i.id === 'INV-7')!.violations, context).toBeGreaterThan(0);
      for (const invariant of summary.invariants.filter((i) => i.id !== 'INV-7')) expect(invariant.violations, `${invariant.id}: ${context}`).toBe(0);
      expect(io.lines.join('\n'), context).toMatch(/^ENVIRONMENT /m);
      expect(io.lines.join('\n'), context).toContain('never connected');
    } finally {
      await broker.close();
    }
  }, 60_000);
});
