// Goal: the invariant checks the property suites share: the proxy-side rules on a means [INV-1, INV-2], and the
// end-of-run checks after a drain — conservation, nothing lost, nothing twice, nothing nobody approved, every
// proof honoured, every backlog empty [INV-3, INV-4, INV-5, INV-7].
// Method: the check functions of machines/domain/invariants.ts (the ones the simulator uses), plus a few
// independent ones of this suite's own — each beneficiary's balance against the sum of what was approved to it,
// aggregates against the approved amounts — so that a bug in either the rules or the shared checkers shows.
// Every check throws an InvariantBroken that names the invariant and the values, so a shrunk counterexample
// reads as a sentence. Approved payments come from the proxies' decisions as they were announced (the answers
// sent to apps and POS units), never from the proxy's journal or the server's own bookkeeping.

import type { MeansState } from '../machines/domain/means.ts';
import { payeeAccount, type Ledger } from '../machines/domain/ledger.ts';
import {
  checkConservation as conservationViolations,
  checkDrained,
  checkLocalBalance,
  checkMeansTransition,
  checkNothingLostNothingTwice,
  checkProofs,
  type MeansPayment,
  type Violation,
} from '../machines/domain/invariants.ts';
import type { SignatureScheme } from '../machines/domain/signature.ts';
import type { Journal } from '../machines/domain/remittance.ts';
import type { Proof } from '../machines/messages.ts';

export class InvariantBroken extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvariantBroken';
  }
}

function fail(message: string): never {
  throw new InvariantBroken(message);
}

/** Throws when the shared checkers found anything. */
export function expectNoViolations(violations: readonly Violation[], where: string): void {
  if (violations.length === 0) return;
  fail(`${where}: ${violations.map((v) => `[${v.invariant}] ${v.message}`).join('; ')}`);
}

/**
 * [INV-1] and [INV-2] on one means of a proxy. With `before` (and the local payment in between, if any) the
 * transition is checked too: periods only move forward, a recurring amount resets exactly at a boundary, each
 * source moves by exactly the payment.
 */
export function checkMeans(m: MeansState, where: string, before?: MeansState, payment: MeansPayment | null = null): void {
  expectNoViolations([...checkLocalBalance(where, m), ...checkMeansTransition(before ?? m, m, before ? payment : null)], where);
  // The suite's own reading of the same rules.
  const say = (what: string) => fail(`${where}: ${what} — ${JSON.stringify(m)}`);
  if (m.localBalanceMinor < 0 || m.localSpentMinor < 0) say('SL or MTDL negative');
  if (m.localSpentMinor !== 0 && m.localSpentMinor >= m.localBalanceMinor) say(`[INV-1] MTDL ${m.localSpentMinor} is not below SL ${m.localBalanceMinor}`);
  if (m.wallet && m.wallet.balanceMinor < 0) say('[INV-2] wallet negative');
  if (m.ceiling && m.ceiling.periodSpentMinor > m.ceiling.ceilingMinor) say(`[INV-2] MTD ${m.ceiling.periodSpentMinor} above PD ${m.ceiling.ceilingMinor}`);
}

/** [INV-3 conservation] the ledger's balances sum to zero. */
export function checkConservation(ledger: Ledger, where: string): void {
  expectNoViolations(conservationViolations(ledger), where);
}

export interface DrainFacts {
  ledger: Ledger;
  /** Every payment a proxy approved (its proof). */
  approved: readonly Proof[];
  /** Every proof an app or a POS holds: each must verify and be credited [INV-5]. */
  held: readonly Proof[];
  /** txIds of remote payments the proxies declined and asked SD to reverse. */
  reversed: readonly string[];
  payees: readonly string[];
  scheme: SignatureScheme;
  publicKeyOf(proxyId: string): string | undefined;
  /** SD's public key: remote proofs carry SD's receipt [INV-5]. */
  serverPublicKey: string;
  journals: ReadonlyMap<string, Journal>;
}

/**
 * After a drain: every approved payment is on the ledger exactly once with its amount, means and payee; nothing
 * is posted or held that no proxy approved; every proof held verifies and is credited; every
 * beneficiary holds exactly the sum of what was approved to it; every journal is empty.
 */
export function checkAfterDrain(facts: DrainFacts): void {
  const { ledger, approved } = facts;
  checkConservation(ledger, 'after the drain');
  expectNoViolations(checkNothingLostNothingTwice({ approved, reversed: facts.reversed, ledger }).violations, 'after the drain');
  expectNoViolations(checkProofs({ proofs: facts.held, scheme: facts.scheme, publicKeyOf: (id) => facts.publicKeyOf(id), serverPublicKey: facts.serverPublicKey, ledger }), 'after the drain');
  for (const [proxyId, journal] of facts.journals) expectNoViolations(checkDrained(proxyId, journal), 'after the drain');

  // The suite's own accounting: distinct approved payments, each beneficiary credited with exactly their sum.
  const byTx = new Map<string, Proof>();
  for (const proof of approved) {
    const seen = byTx.get(proof.txId);
    if (seen && (seen.amountMinor !== proof.amountMinor || seen.payee !== proof.payee)) fail(`[INV-4] ${proof.txId} was approved twice as different payments`);
    byTx.set(proof.txId, proof);
  }
  for (const posting of ledger.postings()) {
    if (posting.reversedBy === undefined && !byTx.has(posting.txId)) fail(`[INV-4] ${posting.txId} is posted (${posting.via}, ${posting.amountMinor}) but no proxy approved it`);
  }
  for (const aggregate of ledger.aggregates()) {
    const sum = aggregate.txIds.reduce((s, txId) => s + (byTx.get(txId)?.amountMinor ?? Number.NaN), 0);
    if (sum !== aggregate.sumMinor) fail(`[INV-4 aggregate sum] aggregate ${aggregate.id} says ${aggregate.sumMinor}, its approved transactions add up to ${sum}`);
  }
  for (const payee of facts.payees) {
    const expected = [...byTx.values()].filter((p) => p.payee === payee).reduce((s, p) => s + p.amountMinor, 0);
    const actual = ledger.accountOf(payeeAccount(payee))?.balanceMinor ?? 0;
    if (actual !== expected) fail(`[INV-4 nothing twice, INV-5] ${payee} holds ${actual}, the payments approved to it add up to ${expected}`);
  }
}
