// Goal: the auto-reload agreements of a run (a means profile's `topUp`, sim/scenario/spec.ts) as the ledger applies
// them (machines/domain/ledgerTopUps.ts), the same in both modes: the virtual SD and a `payfleet server` process
// top the same means up by the same amounts after the same postings.
// Method: a top-up's amount is drawn from its agreement's distribution with a stream of its own, forked from the
// run's seed by the top-up's id (`top:{trigger}`), so the draw depends on nothing but the seed and the posting that
// asked for it: not on the order of events, the process, or a restart. Nothing is drawn from the run's other
// streams, so a scenario without agreements runs exactly as before.

import type { TopUpRule, TopUpRules } from '../../machines/domain/ledgerTopUps.ts';
import type { Scenario, TopUpRule as ScenarioTopUpRule } from '../scenario/types.ts';
import { drawAmountMinor } from './amounts.ts';
import { Prng } from './prng.ts';

/** True when some means profile of the scenario has a top-up agreement. */
export function hasTopUps(scenario: Pick<Scenario, 'population'>): boolean {
  return scenario.population.means.some((means) => means.topUp !== null && means.topUp !== undefined);
}

/** The agreements of a run's means, filled in as its means are opened. */
export class TopUpAgreements {
  private readonly root: Prng;
  private readonly byMeans = new Map<string, TopUpRule>();
  /** What the ledger calls: a means' agreement, or undefined. */
  readonly rules: TopUpRules = (meansId) => this.byMeans.get(meansId);

  constructor(seed: number) {
    this.root = new Prng(seed).fork('top-ups');
  }

  /** Gives the means its profile's agreement (none: nothing). A means shared by several terminals is added once. */
  add(meansId: string, rule: ScenarioTopUpRule | null | undefined): void {
    if (!rule || this.byMeans.has(meansId)) return;
    const root = this.root;
    this.byMeans.set(meansId, { belowMinor: rule.belowMinor, amountMinor: (topUpId) => drawAmountMinor(rule.amount, root.fork(topUpId)) });
  }

  has(meansId: string): boolean {
    return this.byMeans.has(meansId);
  }
}
