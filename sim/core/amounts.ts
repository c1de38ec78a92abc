// Goal: draw amounts from a scenario's distributions, always as integers of minor units.
// Method: fixed, uniform over integers, or log-normal fitted to a median and a 99th percentile, rounded and
// kept at least 1 (a payment of nothing is not a payment).

import type { AmountDistribution } from '../scenario/types.ts';
import type { Prng } from './prng.ts';

export function drawAmountMinor(distribution: AmountDistribution, prng: Prng): number {
  switch (distribution.kind) {
    case 'fixed':
      return distribution.amountMinor;
    case 'uniform':
      return prng.int(distribution.minMinor, distribution.maxMinor);
    case 'lognormal':
      return Math.max(1, Math.round(prng.lognormal(distribution.medianMinor, distribution.p99Minor)));
  }
}
