// Goal: turn a scenario's population into the concrete fleet of a run — which terminal is in which region,
// holds which payment means with which limits, and has which apps; which POS belongs to which merchant.
// Method: plain data drawn from the run's PRNG (a fork per terminal, so the fleet of terminal i does not depend on
// how many draws terminal i−1 made). Keys are not made here: they are drawn lazily by the simulator.

import { createMeans, type MeansState } from '../../machines/domain/means.ts';
import type { Prng } from './prng.ts';
import type { AppProfile, MeansProfile, Scenario } from '../scenario/types.ts';

export interface TerminalPlan {
  index: number;
  /** The terminal's id, also its proxy's id and link address (the SIM's identity). */
  terminalId: string;
  region: string;
  profile: MeansProfile;
  means: MeansState;
  apps: AppProfile[];
}

export interface PosPlan {
  posId: string;
  merchantId: string;
}

export function terminalId(index: number): string {
  return `t${index}`;
}

export function meansIdOf(index: number): string {
  return `m${index}`;
}

/** The proxy-side means for a terminal, from its profile. Periods start at time 0 of the run. */
export function meansFromProfile(meansId: string, profile: MeansProfile): MeansState {
  return createMeans({
    meansId,
    kind: profile.kind,
    dedicated: profile.dedicated,
    localBalanceMinor: profile.localBalanceMinor,
    wallet: profile.wallet ? { balanceMinor: profile.localBalanceMinor } : undefined,
    fixedAmount: profile.fixedAmount
      ? { initialMinor: profile.fixedAmount.amountMinor, remainingMinor: profile.fixedAmount.amountMinor, validFromMs: 0, periodMs: profile.fixedAmount.periodMs }
      : undefined,
    recurring: profile.recurring
      ? { amountMinor: profile.recurring.amountMinor, remainingMinor: profile.recurring.amountMinor, originMs: 0, periodMs: profile.recurring.periodMs, periodIndex: 0 }
      : undefined,
    ceiling: profile.ceiling
      ? { ceilingMinor: profile.ceiling.amountMinor, originMs: 0, periodMs: profile.ceiling.periodMs, periodIndex: 0, periodSpentMinor: 0 }
      : undefined,
  });
}

/** Region of terminal i: regions take consecutive blocks of the fleet in proportion to their shares. */
export function regionOf(scenario: Scenario, index: number): string {
  const { regions, terminals } = scenario.population;
  let cumulative = 0;
  for (const region of regions) {
    cumulative += region.share;
    if (index < Math.round(cumulative * terminals)) return region.name;
  }
  return regions[regions.length - 1]!.name;
}

export function planTerminal(scenario: Scenario, index: number, prng: Prng): TerminalPlan {
  const profile = prng.weighted(scenario.population.means, (m) => m.weight);
  const apps = scenario.population.apps.filter((app) => app.share >= 1 || prng.chance(app.share));
  const id = terminalId(index);
  return { index, terminalId: id, region: regionOf(scenario, index), profile, means: meansFromProfile(meansIdOf(index), profile), apps };
}

export function planPos(scenario: Scenario): PosPlan[] {
  const { units, merchants } = scenario.population.pos;
  return Array.from({ length: units }, (_, i) => ({ posId: `pos${i}`, merchantId: `merchant:${i % Math.max(1, merchants)}` }));
}
