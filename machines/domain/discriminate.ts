// Goal: step B of the patent's flow — decide whether a payment order is processed locally (C) or remotely (D).
// Method: the three tests in the patent's order, driven by a policy object: B1 payment type (internal → local),
// B2 network coverage (none → local under stricter offline criteria), B3 amount against the threshold M0
// (above → remote, else local). The offline criteria bound exposure the way EMV offline counters do: a
// per-payment cap and caps on the count and the amount of unremitted transactions.

import type { Minor } from './money.ts';

export type PaymentType = 'internal' | 'proximity' | 'telepayment';

/** The path an order took; the simulator reports orders by path. */
export type PaymentPath = 'internal' | 'localOffline' | 'localBelowThreshold' | 'remote';

export interface OfflinePolicy {
  /** No single offline payment above this amount. */
  perPaymentCapMinor: Minor;
  /** At most this many unremitted local transactions before offline payments are refused. */
  maxPendingCount: number;
  /** At most this much unremitted local money before offline payments are refused. */
  maxPendingAmountMinor: Minor;
  /** No coverage and an amount over M0: decline, or approve locally under the caps above. */
  overThreshold: 'decline' | 'approveUnderCaps';
}

export interface DiscriminationPolicy {
  /** M0: amounts strictly above go remote when in coverage. */
  thresholdMinor: Minor;
  offline: OfflinePolicy;
}

export interface DiscriminationInput {
  type: PaymentType;
  amountMinor: Minor;
  /** ∃φ: the proxy can reach SD now. */
  inCoverage: boolean;
  pendingCount: number;
  pendingAmountMinor: Minor;
}

export type Discrimination =
  | { route: 'local'; path: Exclude<PaymentPath, 'remote'> }
  | { route: 'remote'; path: 'remote' }
  | { route: 'decline'; reason: 'offlineOverThreshold' | 'offlinePerPaymentCap' | 'offlinePendingCount' | 'offlinePendingAmount' };

export const defaultDiscriminationPolicy: DiscriminationPolicy = {
  thresholdMinor: 2_000,
  offline: { perPaymentCapMinor: 5_000, maxPendingCount: 20, maxPendingAmountMinor: 20_000, overThreshold: 'approveUnderCaps' },
};

export function discriminate(input: DiscriminationInput, policy: DiscriminationPolicy): Discrimination {
  // B1: internal payments (the app pays the terminal's own services) are always local.
  if (input.type === 'internal') return { route: 'local', path: 'internal' };
  // B2: without coverage SD cannot be asked, so the stricter offline criteria decide.
  if (!input.inCoverage) {
    const { offline } = policy;
    if (input.amountMinor > policy.thresholdMinor && offline.overThreshold === 'decline') {
      return { route: 'decline', reason: 'offlineOverThreshold' };
    }
    if (input.amountMinor > offline.perPaymentCapMinor) return { route: 'decline', reason: 'offlinePerPaymentCap' };
    if (input.pendingCount + 1 > offline.maxPendingCount) return { route: 'decline', reason: 'offlinePendingCount' };
    if (input.pendingAmountMinor + input.amountMinor > offline.maxPendingAmountMinor) {
      return { route: 'decline', reason: 'offlinePendingAmount' };
    }
    return { route: 'local', path: 'localOffline' };
  }
  // B3: in coverage, the threshold M0 separates small local payments from remote ones.
  if (input.amountMinor > policy.thresholdMinor) return { route: 'remote', path: 'remote' };
  return { route: 'local', path: 'localBelowThreshold' };
}
