// Goal: whole-system properties — random small fleets, in the virtual simulator, under random faults, keep every
// invariant of docs/design.md §5 and drain; a failure shrinks to a small scenario and prints the commands that replay
// it (this test at its seed and path, and `payfleet run` on the scenario file it writes).
// Method: swarm testing in the manner of TigerBeetle's VOPR: each run draws which features and fault knobs are
// on at all (means profiles, POS units, remittance mode, coverage flapping, outages, loss, duplication,
// reordering, each fault kind), then their settings; the draw becomes scenario YAML, loaded through
// `loadScenarioText` exactly as a user's file would be, and run by `runVirtual`. Fleets stay small (≤ 50
// terminals, ≤ 2 shards) and runs short, so many runs fit in a quick test.

import { describe, it } from 'vitest';
import fc from 'fast-check';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { loadScenarioText } from '../sim/scenario/load.ts';
import { runVirtual } from '../sim/run/runVirtual.ts';
import type { RunSummary } from '../sim/run/summary.ts';
import { runProperty } from './fc.ts';

const minutes = (m: number) => `${m}m`;

/** A swarm configuration: every feature drawn on or off, then its settings. */
const swarmArb = fc.record({
  seed: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
  terminals: fc.integer({ min: 1, max: 50 }),
  shards: fc.integer({ min: 1, max: 2 }),
  durationMin: fc.integer({ min: 5, max: 40 }),
  drainMin: fc.integer({ min: 30, max: 45 }),
  means: fc.record({
    prepaid: fc.boolean(),
    postpaid: fc.boolean(),
    eWallet: fc.boolean(),
    shared: fc.boolean(),
    allowance: fc.boolean(),
    voucher: fc.boolean(),
  }),
  shop: fc.option(fc.record({ ordersPerHour: fc.integer({ min: 1, max: 8 }), remoteMode: fc.constantFrom('debit', 'authCapture'), captureAfterMin: fc.integer({ min: 0, max: 5 }) }), { nil: undefined }),
  game: fc.option(fc.integer({ min: 1, max: 8 }), { nil: undefined }),
  posUnits: fc.constantFrom(0, 0, 1, 3),
  remittance: fc.record({ mode: fc.constantFrom('grouped', 'aggregate'), maxBatchSize: fc.integer({ min: 1, max: 20 }), everyMin: fc.integer({ min: 5, max: 30 }), backlogCount: fc.integer({ min: 1, max: 10 }) }),
  offlineCapMinor: fc.integer({ min: 500, max: 6_000 }),
  coverage: fc.option(fc.record({ meanOnMin: fc.integer({ min: 5, max: 120 }), meanOffMin: fc.integer({ min: 1, max: 10 }) }), { nil: undefined }),
  outage: fc.option(fc.record({ atMin: fc.integer({ min: 0, max: 30 }), durationMin: fc.integer({ min: 1, max: 15 }) }), { nil: undefined }),
  network: fc.record({
    lossProbability: fc.constantFrom(0, 0, 0.02, 0.1),
    duplicateProbability: fc.constantFrom(0, 0, 0.02, 0.1),
    reorderProbability: fc.constantFrom(0, 0, 0.05, 0.2),
    p99Ms: fc.constantFrom(400, 2_000),
  }),
  faults: fc.array(
    fc.record({
      kind: fc.constantFrom('serverCrash', 'brokerCrash', 'terminalCrash', 'simMove', 'clockSkew', 'partition', 'forgedSignature', 'replayedRemittance', 'malformedPayload', 'wrongTopic'),
      atFraction: fc.double({ min: 0, max: 0.95, noNaN: true }),
      count: fc.integer({ min: 1, max: 5 }),
      seconds: fc.integer({ min: 5, max: 180 }),
      skewMin: fc.integer({ min: -30, max: 30 }).filter((m) => m !== 0),
    }),
    { maxLength: 5 },
  ),
});

type Swarm = typeof swarmArb extends fc.Arbitrary<infer T> ? T : never;

/** The scenario a swarm draw stands for, as the YAML a user would write. */
export function scenarioYaml(s: Swarm): string {
  const means: Record<string, unknown>[] = [];
  if (s.means.prepaid) means.push({ name: 'prepaid', kind: 'prepaid', weight: 3, openingBalanceMinor: 20_000 });
  if (s.means.postpaid) means.push({ name: 'postpaid', kind: 'postpaid', weight: 2, openingBalanceMinor: 0, creditLimitMinor: 30_000, ceiling: { amountMinor: 15_000, period: '20m' } });
  if (s.means.eWallet) means.push({ name: 'e-wallet', kind: 'electronicWallet', weight: 1, openingBalanceMinor: 5_000 });
  if (s.means.shared) {
    means.push({ name: 'shared', kind: 'virtualWallet', weight: 1, dedicated: false, openingBalanceMinor: 30_000, localBalanceMinor: 8_000, elsewhere: { ordersPerHour: 2, amount: { uniformMinor: [200, 2_000] } } });
  }
  if (s.means.allowance) means.push({ name: 'allowance', kind: 'prepaid', weight: 1, openingBalanceMinor: 20_000, recurring: { amountMinor: 3_000, period: '10m' }, ceiling: { amountMinor: 8_000, period: '30m' } });
  if (s.means.voucher) means.push({ name: 'voucher', kind: 'prepaid', weight: 1, openingBalanceMinor: 5_000, fixedAmount: { amountMinor: 5_000, period: '15m' } });
  if (means.length === 0) means.push({ name: 'prepaid', kind: 'prepaid', openingBalanceMinor: 20_000 });

  const apps: Record<string, unknown>[] = [];
  if (s.shop) {
    apps.push({
      name: 'shop', type: 'telepayment', ordersPerHour: s.shop.ordersPerHour, amount: { lognormal: { medianMinor: 1_200, p99Minor: 9_000 } }, payee: 'merchant-shop',
      remoteMode: s.shop.remoteMode, captureAfter: minutes(s.shop.captureAfterMin),
    });
  }
  if (s.game || apps.length === 0) apps.push({ name: 'game', type: 'internal', ordersPerHour: s.game ?? 2, amount: { uniformMinor: [50, 300] } });

  const durationMs = s.durationMin * 60_000;
  const faults = s.faults.map((f) => {
    const at = `${Math.floor((f.atFraction * durationMs) / 1_000)}s`;
    const restartAfter = `${f.seconds}s`;
    const shard = f.count % s.shards;
    switch (f.kind) {
      case 'serverCrash':
        return { at, kind: f.kind, shard, restartAfter };
      case 'brokerCrash':
        return { at, kind: f.kind, restartAfter };
      case 'terminalCrash':
        return { at, kind: f.kind, count: Math.min(f.count, s.terminals), restartAfter };
      case 'simMove':
        return { at, kind: f.kind, count: Math.min(f.count, s.terminals) };
      case 'clockSkew':
        return { at, kind: f.kind, count: Math.min(f.count, s.terminals), skew: minutes(f.skewMin) };
      case 'partition':
        return { at, kind: f.kind, shard, duration: `${f.seconds}s` };
      default:
        return { at, kind: f.kind, count: f.count };
    }
  });

  const scenario = {
    name: `swarm-${s.seed}`,
    description: 'a random small scenario drawn by properties/system.property.test.ts',
    seed: s.seed,
    duration: minutes(s.durationMin),
    drain: minutes(s.drainMin),
    crypto: 'sim',
    population: {
      terminals: s.terminals,
      shards: s.shards,
      regions: [{ name: 'north', share: 0.5 }, { name: 'south', share: 0.5 }],
      means,
      apps,
      pos: s.posUnits > 0 ? { units: s.posUnits, visitsPerTerminalPerHour: 1 } : { units: 0 },
    },
    policy: {
      offline: { perPaymentCapMinor: s.offlineCapMinor },
      remittance: { mode: s.remittance.mode, maxBatchSize: s.remittance.maxBatchSize, triggers: { every: minutes(s.remittance.everyMin), backlogCount: s.remittance.backlogCount } },
    },
    coverage: {
      meanOnDuration: minutes(s.coverage?.meanOnMin ?? 600),
      meanOffDuration: minutes(s.coverage?.meanOffMin ?? 0),
      outages: s.outage ? [{ region: 'south', at: minutes(Math.min(s.outage.atMin, s.durationMin - 1)), duration: minutes(s.outage.durationMin) }] : [],
    },
    network: { latency: { medianMs: 60, p99Ms: s.network.p99Ms }, lossProbability: s.network.lossProbability, duplicateProbability: s.network.duplicateProbability, reorderProbability: s.network.reorderProbability },
    faults,
  };
  return stringify(scenario);
}

/** Where a failing scenario is written (runs/ is not tracked), and the `payfleet run` line that replays it. */
function writeFailure(yamlText: string, seed: number): { file: string; command: string } {
  const dir = join('runs', 'properties');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `swarm-${seed}.yaml`);
  writeFileSync(file, yamlText);
  return { file, command: `node bin/payfleet.mjs run ${file}` };
}

function verdict(summary: RunSummary): string | undefined {
  const broken = summary.invariants.filter((i) => i.violations > 0).map((i) => `${i.id} (${i.violations} violations)`);
  if (broken.length > 0) return `invariants broken: ${broken.join(', ')}${summary.violation ? ` — first: ${summary.violation.message}` : ''}`;
  if (summary.drainedAtMs === null) return 'the run did not drain within its drain time';
  if (!summary.ok) return 'the run is not ok';
  return undefined;
}

describe('system: random small scenarios in the virtual simulator', () => {
  it('holds every invariant and drains, whatever the fleet and the faults [INV-1…7]', () => {
    runProperty(
      fc.property(swarmArb, (swarm) => {
        const text = scenarioYaml(swarm);
        const scenario = loadScenarioText(text, `swarm-${swarm.seed}.yaml`);
        const { summary } = runVirtual(scenario);
        const problem = verdict(summary);
        if (problem) throw new Error(`${problem}\n--- scenario ---\n${text}`);
      }),
      {
        // A run takes up to a second or two: 10 runs, and at most two minutes including the shrinking of a failure.
        numRuns: 10,
        timeLimitMs: 120_000,
        // Only the final, shrunk scenario is written: the one the printed command replays.
        onFailure: ([swarm]) => `replay the scenario: ${writeFailure(scenarioYaml(swarm), swarm.seed).command}`,
      },
    );
  });
});
