import { describe, expect, it } from 'vitest';
import { loadScenarioText } from '../scenario/load.ts';
import { Scheduler } from './scheduler.ts';
import { Prng } from './prng.ts';
import { Fleet, type FleetObserver } from './fleet.ts';
import { SimNetwork } from './network.ts';
import { createSimLink } from './link.ts';
import { planPos, planTerminal } from './population.ts';
import { proxyPolicyOf } from '../scenario/policy.ts';
import { keyFromSeed } from '../../machines/domain/signature.ts';
import { deviceKey, registryOf } from './fleetKeys.ts';

const SCENARIO = loadScenarioText(
  `
name: keys
seed: 42
duration: 10m
crypto: ed25519
population:
  terminals: 12
  shards: 3
  means:
    - { name: prepaid, kind: prepaid, openingBalanceMinor: 20000, weight: 2 }
    - { name: postpaid, kind: postpaid, creditLimitMinor: 50000, weight: 1 }
  apps: [{ name: game, type: internal, ordersPerHour: 1, amount: { fixedMinor: 100 } }]
  pos: { units: 2, visitsPerTerminalPerHour: 1, amount: { fixedMinor: 500 } }
`,
  'keys.yaml',
);

const quiet: FleetObserver = { onTerminal() {}, onProxy() {}, onPos() {}, onServer() {}, isAdversarial: () => false, onLedgerApplied() {} };

/** The virtual mode's fleet, built as the Simulator builds it. */
function virtualFleet(): Fleet {
  const scheduler = new Scheduler();
  const prng = new Prng(SCENARIO.seed);
  const network = new SimNetwork(scheduler, prng.fork('network'));
  const fleet = new Fleet(
    { scheme: SCENARIO.crypto, policy: proxyPolicyOf(SCENARIO.policy), shards: SCENARIO.population.shards, pin: '0000', nearLinkDelayMs: 50 },
    { time: scheduler, clock: scheduler.clock, link: createSimLink(network) },
    prng.fork('fleet'),
    quiet,
  );
  for (const plan of planPos(SCENARIO)) fleet.startPos(plan);
  const planner = prng.fork('population');
  for (let i = 0; i < SCENARIO.population.terminals; i++) fleet.addTerminal(planTerminal(SCENARIO, i, planner.fork(`t${i}`)), true);
  return fleet;
}

describe('registryOf', () => {
  const fleet = virtualFleet();
  const registry = registryOf(SCENARIO);

  it("gives every proxy and POS the public key the virtual Fleet gives it, and SD the Fleet's server key", () => {
    const ids = [...fleet.terminals.map((slot) => slot.plan.terminalId), ...fleet.pos.keys()];
    expect(Object.keys(registry.publicKeys).sort()).toEqual(ids.sort());
    for (const id of ids) expect(registry.publicKeys[id]).toBe(fleet.publicKeyOf(id));
    expect(keyFromSeed(registry.scheme, Buffer.from(registry.serverKeySeedHex, 'hex')).publicKey).toBe(fleet.serverKey.publicKey);
    expect(deviceKey(SCENARIO, 't3').publicKey).toBe(fleet.publicKeyOf('t3'));
  });

  it('opens every means with the figures the virtual ledgers open it with', () => {
    expect(registry.means).toHaveLength(SCENARIO.population.terminals);
    expect(registry.shards).toBe(3);
    for (const means of registry.means) {
      const account = fleet.ledgerOfMeans(means.meansId).balanceOf(means.meansId);
      expect(account.availableMinor).toBe(means.openingBalanceMinor + means.creditLimitMinor);
    }
    expect(registry.means.some((m) => m.kind === 'postpaid' && m.creditLimitMinor === 50_000)).toBe(true);
  });
});
