// Goal: the keys and accounts of an mqtt-mode run, known to the coordinator before any process starts, so it
// can write the payment servers' registry (which public key belongs to which proxy and POS, which means to open
// with which balance) — and the same as the virtual mode's for the same scenario and seed.
// Method: the same PRNG forks as `Fleet` and `Simulator`: the run's root stream forks 'fleet', which forks
// 'server-key' for SD's key and `key:{id}` for each proxy and POS key; plans come from the 'population' fork,
// one fork per terminal. Forks depend on labels only, so a key can be derived alone, in any process.
// fleetKeys.test.ts checks these against a real `Fleet`. The registry's types live here, below sim/sd, which
// writes and reads the file (registry.ts).

import { Prng } from './prng.ts';
import { planPos, planTerminal, type TerminalPlan } from './population.ts';
import { keyFromSeed, type SignatureScheme, type SigningKey } from '../../machines/domain/signature.ts';
import type { Scenario, TopUpRule } from '../scenario/types.ts';
import { hasTopUps } from './topUps.ts';
import type { Minor } from '../../machines/domain/money.ts';
import type { MeansKind } from '../../machines/domain/means.ts';

/** A payment means as the servers open it, with its opening figures. */
export interface RegistryMeans {
  meansId: string;
  kind: MeansKind;
  openingBalanceMinor: Minor;
  /** Only a postpaid means may have one (the ledger refuses it on any other kind). */
  creditLimitMinor: Minor;
  /** The means' top-up agreement (the profile's `topUp`), when it has one: its server applies it (topUps.ts). */
  topUp?: TopUpRule;
}

/** What the coordinator tells every payment server before it starts (written and checked by sim/sd/registry.ts). */
export interface RunRegistry {
  version: 1;
  scheme: SignatureScheme;
  /** The 32-byte seed of the servers' signing key, in hex (64 digits). */
  serverKeySeedHex: string;
  /** Number of shards of the run; a means is served by shard `shardOf(meansId, shards)`. */
  shards: number;
  /** Public key of every proxy and POS unit, by id (the id they send as `from`). */
  publicKeys: Record<string, string>;
  means: RegistryMeans[];
  /** The run's seed, when some means has a top-up agreement: the top-ups' amounts are drawn from it (topUps.ts). */
  topUpSeed?: number;
}

function fleetPrng(scenario: Scenario): Prng {
  return new Prng(scenario.seed).fork('fleet');
}

/**
 * The one key derivation of both modes: the key of a device (proxy by terminal id, POS by POS id) or of a role
 * ('server-key', 'operator-key') from the run's 'fleet' stream. `Fleet` (virtual mode, and every mqtt worker) and
 * the coordinator's registry both call this, so the same scenario and seed give the same keys everywhere.
 */
export function deriveKey(scheme: SignatureScheme, fleet: Prng, label: string): SigningKey {
  return keyFromSeed(scheme, fleet.fork(label).bytes32());
}

/** The fork label of a device's key. */
export function deviceKeyLabel(id: string): string {
  return `key:${id}`;
}

export function serverKeySeed(scenario: Scenario): Uint8Array {
  return fleetPrng(scenario).fork('server-key').bytes32();
}

/** The signing key of a proxy (terminal id) or a POS (POS id), as `Fleet` derives it. */
export function deviceKey(scenario: Scenario, id: string): SigningKey {
  return deriveKey(scenario.crypto, fleetPrng(scenario), deviceKeyLabel(id));
}

/** Every terminal's plan, as the virtual Simulator draws it. */
export function terminalPlans(scenario: Scenario): TerminalPlan[] {
  const planner = new Prng(scenario.seed).fork('population');
  return Array.from({ length: scenario.population.terminals }, (_, i) => planTerminal(scenario, i, planner.fork(`t${i}`)));
}

export function registryOf(scenario: Scenario): RunRegistry {
  const fleet = fleetPrng(scenario);
  const publicKeys: Record<string, string> = {};
  const means: RegistryMeans[] = [];
  // A means shared by several terminals (a family wallet) is one account, listed once.
  const listed = new Set<string>();
  for (const plan of terminalPlans(scenario)) {
    publicKeys[plan.terminalId] = deriveKey(scenario.crypto, fleet, deviceKeyLabel(plan.terminalId)).publicKey;
    if (listed.has(plan.means.meansId)) continue;
    listed.add(plan.means.meansId);
    const topUp = plan.profile.topUp ? { topUp: plan.profile.topUp } : {};
    means.push({ meansId: plan.means.meansId, kind: plan.profile.kind, openingBalanceMinor: plan.profile.openingBalanceMinor, creditLimitMinor: plan.profile.creditLimitMinor, ...topUp });
  }
  for (const pos of planPos(scenario)) publicKeys[pos.posId] = deriveKey(scenario.crypto, fleet, deviceKeyLabel(pos.posId)).publicKey;
  return {
    version: 1,
    scheme: scenario.crypto,
    serverKeySeedHex: Buffer.from(serverKeySeed(scenario)).toString('hex'),
    shards: scenario.population.shards,
    publicKeys,
    means,
    ...(hasTopUps(scenario) ? { topUpSeed: scenario.seed } : {}),
  };
}
