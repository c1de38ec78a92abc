// Goal: the invariant checks the property suites share: the proxy-side rules on a means [INV-1, INV-2], and the
// end-of-run ledger checks after a drain — conservation, nothing lost, nothing twice, nothing nobody approved,
// every beneficiary credited exactly once, every aggregate equal to its sum [INV-3, INV-4, INV-5].
// Method: each check throws an Error that says which invariant broke and on what values, so a shrunk
// counterexample reads as a sentence. The approved payments come from what the apps were told (their receipts),
// never from the proxy's or the server's own bookkeeping.

import { holdsLocalBalance, type MeansState } from '../machines/domain/means.ts';
import { payeeAccount, type Ledger } from '../machines/domain/ledger.ts';
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

/** [INV-1] and [INV-2] on one means of a proxy. */
export function checkMeans(m: MeansState, where: string): void {
  const say = (what: string) => fail(`${where}: ${what} — ${JSON.stringify(m)}`);
  if (!holdsLocalBalance(m)) say(`[INV-1] MTDL ${m.localSpentMinor} is not below SL ${m.localBalanceMinor}`);
  if (m.localBalanceMinor < 0 || m.localSpentMinor < 0) say('SL or MTDL negative');
  if (m.wallet && m.wallet.balanceMinor < 0) say('[INV-2] wallet negative');
  if (m.fixedAmount && (m.fixedAmount.remainingMinor < 0 || m.fixedAmount.remainingMinor > m.fixedAmount.initialMinor)) say('[INV-2] fixed amount out of [0, S0]');
  if (m.recurring && (m.recurring.remainingMinor < 0 || m.recurring.remainingMinor > m.recurring.amountMinor)) say('[INV-2] recurring amount out of [0, S0]');
  if (m.ceiling && (m.ceiling.periodSpentMinor < 0 || m.ceiling.periodSpentMinor > m.ceiling.ceilingMinor)) say(`[INV-2] MTD ${m.ceiling.periodSpentMinor} above PD ${m.ceiling.ceilingMinor}`);
}

/** [INV-3 conservation] the ledger's balances sum to zero. */
export function checkConservation(ledger: Ledger, where: string): void {
  const sum = ledger.sumOfBalancesMinor();
  if (sum !== 0) fail(`${where}: [INV-3] the balances sum to ${sum}`);
}

/**
 * After a drain: every approved payment is on the ledger exactly once with its amount, means and payee; nothing
 * is posted that no app or POS was told was approved (reversed postings aside); every beneficiary holds exactly
 * the sum of what was approved to it; every aggregate equals the sum of the approved transactions it names.
 */
export function checkLedgerAfterDrain(ledger: Ledger, approved: readonly Proof[], payees: readonly string[]): void {
  checkConservation(ledger, 'after the drain');
  const byTx = new Map<string, Proof>();
  for (const proof of approved) {
    const seen = byTx.get(proof.txId);
    if (seen && JSON.stringify(seen) !== JSON.stringify(proof)) fail(`[INV-4] ${proof.txId} was approved twice with different proofs`);
    byTx.set(proof.txId, proof);
  }
  for (const proof of byTx.values()) {
    const posting = ledger.postingOf(proof.txId);
    if (!posting) fail(`[INV-4 nothing lost] approved ${proof.txId} (${proof.amountMinor} to ${proof.payee}, ${proof.path}) is not on the ledger`);
    if (posting.reversedBy !== undefined) fail(`[INV-4 nothing lost] approved ${proof.txId} was reversed by ${posting.reversedBy}`);
    if (posting.meansId !== proof.meansId || posting.payee !== proof.payee) fail(`[INV-4] ${proof.txId} approved for ${proof.meansId} → ${proof.payee}, posted for ${posting.meansId} → ${posting.payee}`);
    if (posting.amountMinor !== null && posting.amountMinor !== proof.amountMinor) fail(`[INV-4] ${proof.txId} approved for ${proof.amountMinor}, posted for ${posting.amountMinor}`);
  }
  for (const posting of ledger.postings()) {
    if (posting.reversedBy !== undefined) continue;
    if (!byTx.has(posting.txId)) fail(`[INV-4] ${posting.txId} is posted (${posting.via}, ${posting.amountMinor}) but no app or POS was told it was approved`);
  }
  for (const aggregate of ledger.aggregates()) {
    const sum = aggregate.txIds.reduce((s, txId) => s + (byTx.get(txId)?.amountMinor ?? Number.NaN), 0);
    if (sum !== aggregate.sumMinor) fail(`[INV-4 aggregate sum] aggregate ${aggregate.id} says ${aggregate.sumMinor}, its approved transactions add up to ${sum}`);
  }
  for (const payee of payees) {
    const expected = [...byTx.values()].filter((p) => p.payee === payee).reduce((s, p) => s + p.amountMinor, 0);
    const actual = ledger.accountOf(payeeAccount(payee))?.balanceMinor ?? 0;
    if (actual !== expected) fail(`[INV-4 nothing twice, INV-5] ${payee} holds ${actual}, the payments approved to it add up to ${expected}`);
  }
}
