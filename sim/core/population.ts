// Goal: turn a scenario's population into the concrete fleet of a run — which terminal is in which region,
// holds which payment means with which limits, and has which apps; which POS belongs to which merchant.
// Method: plain data drawn from the run's PRNG (a fork per terminal, so the fleet of terminal i does not depend on
// how many draws terminal i−1 made). Keys are not made here: they are drawn lazily by the simulator.

import { allotmentMinor, createMeans, type MeansState } from '../../machines/domain/means.ts';
import { newPurse } from '../../machines/domain/localValue.ts';
import type { Prng } from './prng.ts';
import type { AppProfile, MeansProfile, Scenario } from '../scenario/types.ts';

export interface TerminalPlan {
  index: number;
  /** The terminal's id, also its proxy's id and link address (the SIM's identity). */
  terminalId: string;
  region: string;
  profile: MeansProfile;
  means: MeansState;
  /** The purse of local value on the SIM, funded from `means`, when the profile has one; internal orders pay from it. */
  purse?: MeansState;
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

/**
 * The means of terminal `index` drawing profile number `profileIndex`: its own (`m{index}`), or for a profile
 * shared by N terminals the family's (`f{profile}.{⌊index / N⌋}`), one account for every terminal of that block of
 * N that drew the profile. Blocks of consecutive indices keep each terminal's plan a function of its own index
 * (an mqtt worker plans only its slice of the fleet), and a family may have fewer than N members when some of
 * the block drew another profile: their allotments are still 1/N, the cautious side.
 */
export function meansIdFor(index: number, profileIndex: number, profile: Pick<MeansProfile, 'sharedBy'>): string {
  return profile.sharedBy > 1 ? `f${profileIndex}.${Math.floor(index / profile.sharedBy)}` : meansIdOf(index);
}

/** The proxy-side means for a terminal, from its profile. Periods start at time 0 of the run. */
export function meansFromProfile(meansId: string, profile: MeansProfile): MeansState {
  const shared = profile.sharedBy > 1;
  return createMeans({
    meansId,
    kind: profile.kind,
    dedicated: profile.dedicated,
    ...(shared ? { pointsOfIssue: profile.sharedBy } : {}),
    // [INV-1 MTDL<SL] a shared means starts each proxy on its allotment of the local balance, as a sync would.
    localBalanceMinor: shared ? allotmentMinor({ pointsOfIssue: profile.sharedBy }, profile.localBalanceMinor) : profile.localBalanceMinor,
    wallet: profile.wallet ? { balanceMinor: profile.localBalanceMinor } : undefined,
    fixedAmount: profile.fixedAmount
      ? { initialMinor: profile.fixedAmount.amountMinor, remainingMinor: profile.fixedAmount.amountMinor, validFromMs: 0, periodMs: profile.fixedAmount.periodMs }
      : undefined,
    recurring: profile.recurring
      ? { amountMinor: profile.recurring.amountMinor, remainingMinor: profile.recurring.amountMinor, originMs: 0, periodMs: profile.recurring.periodMs, periodIndex: 0 }
      : undefined,
    ceiling: profile.ceiling
      ? {
          ceilingMinor: profile.ceiling.amountMinor,
          originMs: 0,
          periodMs: profile.ceiling.periodMs,
          periodIndex: 0,
          periodSpentMinor: 0,
          ...(profile.ceiling.periodBy === 'time' ? {} : { periodBy: profile.ceiling.periodBy }),
        }
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
  const meansId = meansIdFor(index, scenario.population.means.indexOf(profile), profile);
  const means = meansFromProfile(meansId, profile);
  const plan: TerminalPlan = { index, terminalId: id, region: regionOf(scenario, index), profile, means, apps };
  if (profile.localValue) plan.purse = newPurse(id, means, profile.localValue);
  return plan;
}

export function planPos(scenario: Scenario): PosPlan[] {
  const { units, merchants } = scenario.population.pos;
  return Array.from({ length: units }, (_, i) => ({ posId: `pos${i}`, merchantId: `merchant:${i % Math.max(1, merchants)}` }));
}
