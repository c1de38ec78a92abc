// Goal: the payment server's (SD's) ledger: double-entry accounts for every payment means, beneficiary, the
// operator's float and the offline-loss account; authorisation holds; payments posted exactly once per
// transaction id, singly or as part of an aggregate sum; reversals of remote payments whose answer was lost.
// Method: `Ledger` is the one object callers hold; each public method runs in one store transaction and refuses
// by throwing a DomainError (reason code + offending value), which rolls back whatever it had written. The work
// lives in three modules of plain functions over the store: ledgerAccounts.ts (accounts and transfers, the
// double-entry core [INV-3 conservation]), ledgerPostings.ts (a payment on the ledger once per txId, singly
// or in an aggregate [INV-4 nothing twice]) and ledgerHolds.ts (holds, captures, releases, reversals). This
// module keeps the readers, the opening of a means, spending through another point of issue and the K1 debit.
// A ledger given top-up rules (ledgerTopUps.ts) tops a means up, inside the same transaction, after each fresh
// posting that leaves it below its agreement's threshold; without rules every method runs exactly as before.

import { assertMinor, type Minor } from './money.ts';
import type { MeansKind } from './means.ts';
import type { BalanceFigure } from '../messages.ts';
import type { Account, Aggregate, Hold, LedgerStore, Posting, PostingVia, Transfer, VoidRecord } from './ledgerStore.ts';
import { applyTransfer, assertId, available, FLOAT_ACCOUNT, meansAccount, meansAccountOf, newAccount, payeeAccount, refuse } from './ledgerAccounts.ts';
import { postAggregate, postOnce, refuseIfVoided, type AggregateInput, type AggregateOutcome, type PaymentInput, type PaymentOutcome } from './ledgerPostings.ts';
import { fundPurse, type FundPurseInput, type FundPurseOutcome } from './ledgerLocalValue.ts';
import { EXPIRED_VALUE_PAYEE } from './localValue.ts';
import { captureHold, placeHold, releaseHold, reversePayment, type CaptureInput, type HoldInput, type ReversalInput, type ReversalOutcome } from './ledgerHolds.ts';
import { OUTSIDE_ACCOUNT, topUpIfLow, type TopUpRules } from './ledgerTopUps.ts';

export { FLOAT_ACCOUNT, LOSS_ACCOUNT, meansAccount, payeeAccount } from './ledgerAccounts.ts';
export { OUTSIDE_ACCOUNT, type TopUpRule, type TopUpRules } from './ledgerTopUps.ts';
export type { AggregateInput, AggregateOutcome, PaymentInput, PaymentOutcome } from './ledgerPostings.ts';
export type { CaptureInput, HoldInput, ReversalCode, ReversalInput, ReversalOutcome } from './ledgerHolds.ts';

export interface OpenMeansInput {
  meansId: string;
  kind: MeansKind;
  openingBalanceMinor: Minor;
  /** Only a postpaid means may have one: it may then go down to −creditLimitMinor. */
  creditLimitMinor: Minor;
}

/** A K1 debit always names the proxy that asked for it: only that proxy may reverse it. */
export type DebitInput = PaymentInput & { proxyId: string };

export interface SpendElsewhereInput {
  transferId: string;
  meansId: string;
  payee: string;
  amountMinor: Minor;
}

export class Ledger {
  /** Top-ups this ledger made (one rolled back with its request included): the virtual SD charges their time. */
  topUpsMade = 0;

  /** `topUpRules`: each means' auto-reload agreement (ledgerTopUps.ts); absent, no means is ever topped up. */
  constructor(
    readonly store: LedgerStore,
    readonly topUpRules?: TopUpRules,
  ) {}

  // ------------------------------------------------------------------ means and balances

  /** Opens a means funded from the float. Opening it again with the same figures is a no-op. */
  openMeans(input: OpenMeansInput): BalanceFigure {
    const { meansId, kind, openingBalanceMinor, creditLimitMinor } = input;
    assertId(meansId, 'meansId');
    assertMinor(openingBalanceMinor, 'openingBalanceMinor');
    assertMinor(creditLimitMinor, 'creditLimitMinor');
    if (creditLimitMinor > 0 && kind !== 'postpaid') refuse('badMeans', `only a postpaid means may have a credit limit (${kind})`, input);
    return this.store.transaction(() => {
      const id = meansAccount(meansId);
      const existing = this.store.getAccount(id);
      const transferId = `open:${meansId}`;
      if (existing && !this.store.getTransfer(transferId)) refuse('idConflict', `account ${id} exists but was not opened as a means`, meansId);
      if (!existing) this.store.putAccount(newAccount(id, 'means', creditLimitMinor));
      applyTransfer(this.store, transferId, FLOAT_ACCOUNT, id, openingBalanceMinor, 'opening balance', [kind, creditLimitMinor]);
      return this.balanceOf(meansId);
    });
  }

  /** SD's figure for a means: available = balance + credit limit − active holds. */
  balanceOf(meansId: string): BalanceFigure {
    const account = meansAccountOf(this.store, meansId);
    return { meansId, availableMinor: available(account), version: account.version };
  }

  /** The figures of every means, for checkers and reports. */
  balances(): BalanceFigure[] {
    const figures: BalanceFigure[] = [];
    for (const account of this.store.allAccounts()) {
      if (account.kind === 'means') figures.push({ meansId: account.id.slice('means:'.length), availableMinor: available(account), version: account.version });
    }
    return figures;
  }

  accountOf(id: string): Account | undefined {
    return this.store.getAccount(id);
  }

  accounts(): Account[] {
    return [...this.store.allAccounts()];
  }

  /** [INV-3 conservation] is that this is 0. */
  sumOfBalancesMinor(): number {
    let total = 0;
    for (const account of this.store.allAccounts()) total += account.balanceMinor;
    return total;
  }

  postingOf(txId: string): Posting | undefined {
    return this.store.getPosting(txId);
  }

  /**
   * What each payee holds on this ledger, and how much of it came from spending through other points of issue
   * (`ext:` transfers), for INV-4's per-payee reconciliation; undefined when the store cannot list those transfers.
   */
  payeeCredits(): { balanceByPayee: Map<string, number>; externalByPayee: Map<string, number> } | undefined {
    const external = this.store.externalTransfers?.();
    if (external === undefined) return undefined;
    const balanceByPayee = new Map<string, number>();
    for (const account of this.store.allAccounts()) {
      // The operator's account for purse value left at expiry is credited by SD's own rule, not by payments: its
      // sum is reconciled with the purses at the end (the purse check and the loss account), not here.
      if (account.id.startsWith('payee:') && account.id !== payeeAccount(EXPIRED_VALUE_PAYEE)) balanceByPayee.set(account.id.slice('payee:'.length), account.balanceMinor);
    }
    const externalByPayee = new Map<string, number>();
    for (const transfer of external) {
      if (!transfer.creditAccount.startsWith('payee:')) continue;
      const payee = transfer.creditAccount.slice('payee:'.length);
      externalByPayee.set(payee, (externalByPayee.get(payee) ?? 0) + transfer.amountMinor);
    }
    return { balanceByPayee, externalByPayee };
  }

  postings(): Posting[] {
    return [...this.store.allPostings()];
  }

  /** The top-ups on this ledger (transfers `top:…` from the outside account); undefined when the store cannot list them. */
  topUps(): Transfer[] | undefined {
    const listed = this.store.topUpTransfers?.();
    return listed === undefined ? undefined : [...listed];
  }

  /** What came in from outside: minus the outside account's balance. */
  outsideBalanceMinor(): number {
    return this.store.getAccount(OUTSIDE_ACCOUNT)?.balanceMinor ?? 0;
  }

  aggregates(): Aggregate[] {
    return [...this.store.allAggregates()];
  }

  holdOf(txId: string): Hold | undefined {
    return this.store.getHold(txId);
  }

  voidOf(proxyId: string, txId: string): VoidRecord | undefined {
    return this.store.getVoid(proxyId, txId);
  }

  voids(): VoidRecord[] {
    return [...this.store.allVoids()];
  }

  // ------------------------------------------------------------------ spending through another point of issue

  /**
   * A debit of a shared means by another point of issue. Refused with `insufficientFunds` when available is
   * short. Idempotent by `transferId`: the same id and payload return the original transfer.
   */
  spendElsewhere(input: SpendElsewhereInput): Transfer {
    const { transferId, meansId, payee, amountMinor } = input;
    assertId(transferId, 'transferId');
    assertId(payee, 'payee');
    assertMinor(amountMinor, 'amountMinor');
    return this.store.transaction(() => {
      const account = meansAccountOf(this.store, meansId);
      const id = `ext:${transferId}`;
      // The id is looked up before the funds, so a repeat after the money was spent returns the original.
      const fresh = !this.store.getTransfer(id);
      if (fresh && available(account) < amountMinor) {
        refuse('insufficientFunds', `means ${meansId} has ${available(account)} available, ${amountMinor} asked`, input);
      }
      const transfer = applyTransfer(this.store, id, account.id, payeeAccount(payee), amountMinor, 'spent elsewhere');
      if (fresh) this.topUpAfter(meansId, id);
      return transfer;
    });
  }

  // ------------------------------------------------------------------ authorisation holds (ledgerHolds.ts)

  /** Reserves `amountMinor` of the means for a later capture or release. */
  hold(input: HoldInput): Hold {
    if (!this.topUpRules) return placeHold(this.store, input);
    return this.store.transaction(() => {
      const fresh = !this.store.getHold(input.txId);
      const hold = placeHold(this.store, input);
      if (fresh) this.topUpAfter(input.meansId, `hold:${input.txId}`);
      return hold;
    });
  }

  /** Confirms a hold for `amountMinor` (at most the held amount) and gives back the rest; see `captureHold`. */
  capture(input: CaptureInput): PaymentOutcome {
    return captureHold(this.store, input);
  }

  /** Gives a hold back. Releasing a released hold is a no-op; releasing a captured one is refused. */
  release(input: { txId: string }): Hold {
    return releaseHold(this.store, input);
  }

  /** Undoes a remote payment whose answer never reached its proxy; see `reversePayment`. */
  reverse(input: ReversalInput): ReversalOutcome {
    return reversePayment(this.store, input);
  }

  // ------------------------------------------------------------------ payments (ledgerPostings.ts)

  /**
   * K1 debit: pays at once, refused with `insufficientFunds` when available is short. A transaction already
   * posted with the same payment is not paid again; one its proxy voided or reversed is refused with `voided`.
   */
  debit(input: DebitInput): PaymentOutcome {
    assertId(input.proxyId, 'proxyId');
    return this.store.transaction(() => {
      refuseIfVoided(this.store, input.proxyId, input.txId);
      const account = meansAccountOf(this.store, input.meansId);
      const posted = this.store.getPosting(input.txId);
      // A reversed debit stays reversed: paying it again would take money for a payment its app was told failed.
      if (posted?.reversedBy !== undefined) refuse('voided', `transaction ${input.txId} was reversed by ${posted.reversedBy}`, input.txId);
      if (!posted) {
        if (this.store.getHold(input.txId)) refuse('idConflict', `transaction ${input.txId} is an authorisation`, input);
        if (available(account) < input.amountMinor) {
          refuse('insufficientFunds', `means ${input.meansId} has ${available(account)} available, ${input.amountMinor} asked`, input);
        }
      }
      const outcome = postOnce(this.store, input, 'debit');
      if (!outcome.alreadyPosted) this.topUpAfter(input.meansId, `tx:${input.txId}`);
      return outcome;
    });
  }

  /**
   * Posts a payment that was approved without asking SD (a local payment, or a proof settled by a POS), exactly
   * once per txId. Whatever the means lacks is taken from the loss account: the payee is credited in full
   * [INV-5 beneficiary never harmed].
   */
  postPayment(input: PaymentInput, via: Exclude<PostingVia, 'aggregate' | 'capture' | 'debit'>): PaymentOutcome {
    return this.store.transaction(() => {
      const outcome = postOnce(this.store, input, via);
      if (!outcome.alreadyPosted) this.topUpAfter(input.meansId, `tx:${input.txId}`);
      return outcome;
    });
  }

  /** Funds a purse of local value from its funding means, and moves its expired value out; see ledgerLocalValue.ts. */
  fundPurse(input: FundPurseInput): FundPurseOutcome {
    if (!this.topUpRules) return fundPurse(this.store, input);
    return this.store.transaction(() => {
      const fresh = !this.store.getTransfer(input.transferId);
      const outcome = fundPurse(this.store, input);
      // Only a funding that took money from the means (its own transfer) is a posting of that means.
      if (fresh && this.store.getTransfer(input.transferId)) this.topUpAfter(input.fundingMeansId, input.transferId);
      return outcome;
    });
  }

  /** Posts an aggregate once [INV-4 nothing twice]; see `postAggregate` in ledgerPostings.ts. */
  postAggregate(input: AggregateInput): AggregateOutcome {
    if (!this.topUpRules) return postAggregate(this.store, input);
    return this.store.transaction(() => {
      const fresh = !this.store.getAggregate(input.id);
      const outcome = postAggregate(this.store, input);
      if (fresh && outcome.aggregate) this.topUpAfter(input.meansId, `agg:${input.id}`);
      return outcome;
    });
  }

  /** Inside the caller's transaction: the means' agreement applied after the fresh posting `trigger`. */
  private topUpAfter(meansId: string, trigger: string): void {
    if (!this.topUpRules) return;
    if (topUpIfLow(this.store, this.topUpRules, meansId, trigger)) this.topUpsMade++;
  }
}
