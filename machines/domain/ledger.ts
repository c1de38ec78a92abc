// Goal: the payment server's (SD's) ledger: double-entry accounts for every payment means, beneficiary, the
// operator's float and the offline-loss account; authorisation holds; payments posted exactly once per
// transaction id, singly or as part of an aggregate sum; reversals of remote payments whose answer was lost.
// Method: every movement of money is a transfer that debits one account and credits another by the same
// integer amount, so the balances always sum to zero [INV-3 conservation]. Each public method runs in one
// store transaction and refuses by throwing a DomainError (reason code + offending value), which rolls back
// whatever it had written. Transfer ids are derived from what they stand for (`open:`, `tx:`, `agg:`, `ext:`),
// so a repeated operation finds its own transfer and returns it instead of moving money twice. A reversal
// (`reverse`) undoes whatever SD did for a remote payment, whichever order the payment and its reversal arrive
// in: it releases a hold, pays a debit back by opposite transfers (`rev:`), or records the txId as void so that
// the payment, arriving late, is refused.

import { canonicalEncoding } from './signature.ts';
import { assertMinor, DomainError, type Minor } from './money.ts';
import type { MeansKind } from './means.ts';
import type { BalanceFigure } from '../messages.ts';
import type { Account, AccountKind, Aggregate, Hold, LedgerStore, Posting, PostingVia, Transfer, VoidRecord } from './ledgerStore.ts';

export const FLOAT_ACCOUNT = 'float';
export const LOSS_ACCOUNT = 'loss';
export const meansAccount = (meansId: string): string => `means:${meansId}`;
export const payeeAccount = (payeeId: string): string => `payee:${payeeId}`;

export interface OpenMeansInput {
  meansId: string;
  kind: MeansKind;
  openingBalanceMinor: Minor;
  /** Only a postpaid means may have one: it may then go down to −creditLimitMinor. */
  creditLimitMinor: Minor;
}

export interface PaymentInput {
  txId: string;
  meansId: string;
  payee: string;
  amountMinor: Minor;
  /** `{from}/{reqId}` of the request that carries the payment. */
  requestId: string;
  /** The proxy that made the payment, when known; recorded on the posting so only it may reverse the payment. */
  proxyId?: string;
}

/** A K1 debit always names the proxy that asked for it: only that proxy may reverse it. */
export type DebitInput = PaymentInput & { proxyId: string };

export interface ReversalInput {
  txId: string;
  /** The proxy asking; it must be the one that made the payment. */
  proxyId: string;
  /** `{from}/{reqId}` of the release request. */
  requestId: string;
}

/** What a reversal found and did: `released` a hold, `reversed` a debit, or `voided` a txId SD never saw. */
export type ReversalCode = 'released' | 'reversed' | 'voided';

export interface ReversalOutcome {
  code: ReversalCode;
  /** The means whose figure changed; undefined for a void (a release does not name its means). */
  meansId: string | undefined;
  /** True when the transaction was released, reversed or voided already and nothing changed now. */
  already: boolean;
}

export interface HoldInput {
  txId: string;
  meansId: string;
  payee: string;
  amountMinor: Minor;
  /** The proxy that asked for the authorisation; only it may capture or release. */
  proxyId: string;
}

export interface PaymentOutcome {
  posting: Posting;
  /** True when the transaction was on the ledger already and nothing moved now. */
  alreadyPosted: boolean;
  /** The part of the amount the means could not cover, taken from the loss account [INV-5]. */
  shortfallMinor: Minor;
}

export interface AggregateInput {
  id: string;
  meansId: string;
  payee: string;
  sumMinor: Minor;
  txIds: readonly string[];
  requestId: string;
}

export interface AggregateOutcome {
  /** Undefined when every covered transaction was on the ledger already (nothing recorded). */
  aggregate: Aggregate | undefined;
  posted: string[];
  alreadyPosted: string[];
  shortfallMinor: Minor;
}

export interface SpendElsewhereInput {
  transferId: string;
  meansId: string;
  payee: string;
  amountMinor: Minor;
}

function refuse(code: string, message: string, value: unknown): never {
  throw new DomainError(code, message, value);
}

function assertId(value: unknown, what: string): asserts value is string {
  if (typeof value !== 'string' || value.length === 0) refuse('badId', `${what} must be a non-empty string`, value);
}

export class Ledger {
  constructor(readonly store: LedgerStore) {}

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
      this.applyTransfer(transferId, FLOAT_ACCOUNT, id, openingBalanceMinor, 'opening balance', [kind, creditLimitMinor]);
      return this.balanceOf(meansId);
    });
  }

  /** SD's figure for a means: available = balance + credit limit − active holds. */
  balanceOf(meansId: string): BalanceFigure {
    const account = this.meansAccountOf(meansId);
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

  postings(): Posting[] {
    return [...this.store.allPostings()];
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
      const account = this.meansAccountOf(meansId);
      const id = `ext:${transferId}`;
      // The id is looked up before the funds, so a repeat after the money was spent returns the original.
      if (!this.store.getTransfer(id) && available(account) < amountMinor) {
        refuse('insufficientFunds', `means ${meansId} has ${available(account)} available, ${amountMinor} asked`, input);
      }
      return this.applyTransfer(id, account.id, payeeAccount(payee), amountMinor, 'spent elsewhere');
    });
  }

  // ------------------------------------------------------------------ authorisation holds

  /** Reserves `amountMinor` of the means for a later capture or release. */
  hold(input: HoldInput): Hold {
    const { txId, meansId, payee, amountMinor, proxyId } = input;
    assertId(txId, 'txId');
    assertId(payee, 'payee');
    assertMinor(amountMinor, 'amountMinor');
    return this.store.transaction(() => {
      this.refuseIfVoided(proxyId, txId);
      const existing = this.store.getHold(txId);
      if (existing) {
        if (existing.meansId === meansId && existing.payee === payee && existing.amountMinor === amountMinor && existing.proxyId === proxyId) return existing;
        refuse('idConflict', `transaction ${txId} holds another payment`, input);
      }
      if (this.store.getPosting(txId)) refuse('idConflict', `transaction ${txId} is posted already`, input);
      const account = this.meansAccountOf(meansId);
      if (available(account) < amountMinor) {
        refuse('insufficientFunds', `means ${meansId} has ${available(account)} available, ${amountMinor} asked`, input);
      }
      this.store.putAccount({ ...account, heldMinor: account.heldMinor + amountMinor, version: account.version + 1 });
      const hold: Hold = { txId, meansId, payee, amountMinor, proxyId, state: 'held' };
      this.store.putHold(hold);
      return hold;
    });
  }

  /**
   * Confirms a hold for `amountMinor` (at most the held amount) and gives back the rest. Capturing a captured
   * hold again for the same amount returns the same outcome and changes nothing.
   */
  capture(input: { txId: string; amountMinor: Minor; requestId: string }): PaymentOutcome {
    const { txId, amountMinor, requestId } = input;
    assertMinor(amountMinor, 'amountMinor');
    return this.store.transaction(() => {
      const hold = this.holdOrRefuse(txId);
      if (hold.state === 'captured') {
        const posting = this.store.getPosting(txId);
        if (posting && posting.amountMinor === amountMinor) return { posting, alreadyPosted: true, shortfallMinor: 0 };
        refuse('idConflict', `hold ${txId} was captured for another amount (${posting?.amountMinor})`, input);
      }
      if (hold.state === 'released') refuse('holdReleased', `hold ${txId} was released`, txId);
      if (amountMinor > hold.amountMinor) refuse('captureExceedsHold', `capture of ${amountMinor} exceeds the hold of ${hold.amountMinor}`, input);
      this.endHold(hold, 'captured');
      return this.post({ txId, meansId: hold.meansId, payee: hold.payee, amountMinor, requestId, proxyId: hold.proxyId }, 'capture');
    });
  }

  /** Gives a hold back. Releasing a released hold is a no-op; releasing a captured one is refused. */
  release(input: { txId: string }): Hold {
    return this.store.transaction(() => {
      const hold = this.holdOrRefuse(input.txId);
      if (hold.state === 'captured') refuse('holdCaptured', `hold ${input.txId} was captured`, input.txId);
      if (hold.state === 'released') return hold;
      return this.endHold(hold, 'released');
    });
  }

  /**
   * Undoes a remote payment whose answer never reached its proxy (the app was told "declined"): an active hold is
   * released; a debit is paid back (payee → means, and payee → loss for any shortfall) and its posting marked
   * `reversedBy`; a txId SD never saw is voided, so the auth or debit arriving later is refused. Repeating a
   * reversal changes nothing and gives the same code. Refused with `senderMismatch` when another proxy made the
   * payment, and `notReversible` for a captured hold or a local payment (remit, settle, aggregate): those were
   * approved to their app or POS, and undoing them would harm the beneficiary [INV-5].
   */
  reverse(input: ReversalInput): ReversalOutcome {
    const { txId, proxyId, requestId } = input;
    assertId(txId, 'txId');
    assertId(proxyId, 'proxyId');
    return this.store.transaction(() => {
      const hold = this.store.getHold(txId);
      if (hold) {
        if (hold.proxyId !== proxyId) refuse('senderMismatch', `${proxyId} did not authorise ${txId}`, proxyId);
        if (hold.state === 'captured') refuse('notReversible', `hold ${txId} was captured`, txId);
        const already = hold.state === 'released';
        if (!already) this.endHold(hold, 'released');
        return { code: 'released', meansId: hold.meansId, already };
      }
      const posting = this.store.getPosting(txId);
      if (posting) {
        if (posting.proxyId !== undefined && posting.proxyId !== proxyId) refuse('senderMismatch', `${proxyId} did not make payment ${txId}`, proxyId);
        if (posting.via !== 'debit') refuse('notReversible', `transaction ${txId} was posted by ${posting.via}`, txId);
        if (posting.reversedBy !== undefined) return { code: 'reversed', meansId: posting.meansId, already: true };
        this.payBack(posting);
        this.store.putPosting({ ...posting, reversedBy: requestId });
        return { code: 'reversed', meansId: posting.meansId, already: false };
      }
      if (this.store.getVoid(proxyId, txId)) return { code: 'voided', meansId: undefined, already: true };
      this.store.putVoid({ proxyId, txId, requestId });
      return { code: 'voided', meansId: undefined, already: false };
    });
  }

  // ------------------------------------------------------------------ payments

  /**
   * K1 debit: pays at once, refused with `insufficientFunds` when available is short. A transaction already
   * posted with the same payment is not paid again; one its proxy voided or reversed is refused with `voided`.
   */
  debit(input: DebitInput): PaymentOutcome {
    assertId(input.proxyId, 'proxyId');
    return this.store.transaction(() => {
      this.refuseIfVoided(input.proxyId, input.txId);
      const account = this.meansAccountOf(input.meansId);
      const posted = this.store.getPosting(input.txId);
      // A reversed debit stays reversed: paying it again would take money for a payment its app was told failed.
      if (posted?.reversedBy !== undefined) refuse('voided', `transaction ${input.txId} was reversed by ${posted.reversedBy}`, input.txId);
      if (!posted) {
        if (this.store.getHold(input.txId)) refuse('idConflict', `transaction ${input.txId} is an authorisation`, input);
        if (available(account) < input.amountMinor) {
          refuse('insufficientFunds', `means ${input.meansId} has ${available(account)} available, ${input.amountMinor} asked`, input);
        }
      }
      return this.post(input, 'debit');
    });
  }

  /**
   * Posts a payment that was approved without asking SD (a local payment, or a proof settled by a POS), exactly
   * once per txId. Whatever the means lacks is taken from the loss account: the payee is credited in full
   * [INV-5 beneficiary never harmed].
   */
  postPayment(input: PaymentInput, via: Exclude<PostingVia, 'aggregate' | 'capture' | 'debit'>): PaymentOutcome {
    return this.store.transaction(() => this.post(input, via));
  }

  /**
   * Posts an aggregate: the sum less what is on the ledger already for its transactions (those posted singly,
   * and earlier aggregates lying wholly inside it), then marks every covered transaction posted
   * [INV-4 nothing twice]. Refused with `aggregateMismatch` when that remainder is negative, when a covered
   * transaction was posted for another means or payee, or when the aggregate cuts through an earlier one.
   */
  postAggregate(input: AggregateInput): AggregateOutcome {
    const { id, meansId, payee, sumMinor, txIds, requestId } = input;
    assertId(id, 'aggregate id');
    assertId(payee, 'payee');
    assertMinor(sumMinor, 'sumMinor');
    if (txIds.length === 0) refuse('badRequest', 'an aggregate must cover at least one transaction', input);
    const covered = new Set(txIds);
    if (covered.size !== txIds.length) refuse('badRequest', 'an aggregate names a transaction twice', input);
    for (const txId of txIds) assertId(txId, 'txId');
    return this.store.transaction(() => {
      this.meansAccountOf(meansId);
      const fingerprint = canonicalEncoding([meansId, payee, sumMinor, ...txIds]);
      const previous = this.store.getAggregate(id);
      if (previous) {
        if (canonicalEncoding([previous.meansId, previous.payee, previous.sumMinor, ...previous.txIds]) !== fingerprint) {
          refuse('idConflict', `aggregate ${id} was recorded with other contents`, input);
        }
        const posted = txIds.filter((txId) => this.store.getPosting(txId)?.aggregateId === id);
        return { aggregate: previous, posted, alreadyPosted: txIds.filter((txId) => !posted.includes(txId)), shortfallMinor: 0 };
      }

      const fresh: string[] = [];
      const alreadyPosted: string[] = [];
      const inner = new Set<string>();
      let onLedgerMinor = 0;
      for (const txId of txIds) {
        const posting = this.store.getPosting(txId);
        if (!posting) {
          if (this.store.getHold(txId)?.state === 'held') refuse('idConflict', `transaction ${txId} is an open authorisation`, txId);
          fresh.push(txId);
          continue;
        }
        if (posting.meansId !== meansId || posting.payee !== payee) {
          refuse('aggregateMismatch', `transaction ${txId} was posted for ${posting.meansId} → ${posting.payee}`, txId);
        }
        alreadyPosted.push(txId);
        if (posting.amountMinor !== null) onLedgerMinor += posting.amountMinor;
        else if (posting.aggregateId !== undefined) inner.add(posting.aggregateId);
      }
      for (const innerId of inner) {
        const earlier = this.store.getAggregate(innerId);
        // Only a whole earlier aggregate has a known amount; a part of one has none, so the sum cannot be checked.
        if (!earlier || earlier.txIds.some((txId) => !covered.has(txId))) {
          refuse('aggregateMismatch', `aggregate ${id} covers only part of the earlier aggregate ${innerId}`, innerId);
        }
        onLedgerMinor += earlier.postedMinor;
      }
      const remainderMinor = sumMinor - onLedgerMinor;
      if (remainderMinor < 0) refuse('aggregateMismatch', `sum ${sumMinor} is below the ${onLedgerMinor} already posted for its transactions`, input);
      if (fresh.length === 0) {
        if (remainderMinor > 0) refuse('aggregateMismatch', `every transaction is posted already, yet ${remainderMinor} is left over`, input);
        return { aggregate: undefined, posted: [], alreadyPosted, shortfallMinor: 0 };
      }

      const shortfallMinor = this.move(`agg:${id}`, meansId, payee, remainderMinor, `aggregate ${id}`);
      const aggregate: Aggregate = { id, meansId, payee, sumMinor, txIds: [...txIds], postedMinor: remainderMinor };
      this.store.putAggregate(aggregate);
      for (const txId of fresh) {
        this.store.putPosting({ txId, meansId, payee, amountMinor: null, via: 'aggregate', requestId, aggregateId: id });
      }
      return { aggregate, posted: fresh, alreadyPosted, shortfallMinor };
    });
  }

  // ------------------------------------------------------------------ internals

  /** Posts a payment once per txId; the caller has opened the store transaction. */
  private post(input: PaymentInput, via: PostingVia): PaymentOutcome {
    const { txId, meansId, payee, amountMinor, requestId } = input;
    assertId(txId, 'txId');
    assertId(payee, 'payee');
    assertMinor(amountMinor, 'amountMinor');
    this.meansAccountOf(meansId);
    const existing = this.store.getPosting(txId);
    if (existing) {
      if (!isSamePayment(existing, input)) refuse('idConflict', `transaction ${txId} was posted as another payment`, input);
      return { posting: existing, alreadyPosted: true, shortfallMinor: 0 };
    }
    const hold = this.store.getHold(txId);
    if (hold && (hold.meansId !== meansId || hold.payee !== payee)) refuse('idConflict', `transaction ${txId} holds another payment`, input);
    // A proof of an authorised payment reaching SD before its capture pays from the funds the hold reserved;
    // the hold is then done, so a later capture of the same amount finds it captured and changes nothing.
    if (hold?.state === 'held') this.endHold(hold, 'captured');
    const shortfallMinor = this.move(`tx:${txId}`, meansId, payee, amountMinor, `${via} ${txId}`);
    const posting: Posting = input.proxyId === undefined ? { txId, meansId, payee, amountMinor, via, requestId } : { txId, meansId, payee, amountMinor, via, requestId, proxyId: input.proxyId };
    this.store.putPosting(posting);
    return { posting, alreadyPosted: false, shortfallMinor };
  }

  /**
   * Moves `amountMinor` from the means to the payee: what the means has available by transfer `{baseId}`,
   * the rest from the loss account by transfer `{baseId}/loss`. Returns the shortfall.
   */
  private move(baseId: string, meansId: string, payee: string, amountMinor: Minor, note: string): Minor {
    const account = this.meansAccountOf(meansId);
    const coveredMinor = Math.min(amountMinor, Math.max(0, available(account)));
    const shortfallMinor = amountMinor - coveredMinor;
    if (coveredMinor > 0) this.applyTransfer(baseId, account.id, payeeAccount(payee), coveredMinor, note);
    // [INV-5 beneficiary never harmed] the payee gets all of it; the loss account carries what the means lacked.
    if (shortfallMinor > 0) this.applyTransfer(`${baseId}/loss`, LOSS_ACCOUNT, payeeAccount(payee), shortfallMinor, `shortfall of ${note}`);
    return shortfallMinor;
  }

  /**
   * Pays a posting back by the opposite of each transfer that paid it: `rev:{txId}` payee → means for what the
   * means covered, `rev:{txId}/loss` payee → loss for any shortfall [INV-3 conservation].
   */
  private payBack(posting: Posting): void {
    for (const suffix of ['', '/loss']) {
      const paid = this.store.getTransfer(`tx:${posting.txId}${suffix}`);
      if (paid) this.applyTransfer(`rev:${posting.txId}${suffix}`, paid.creditAccount, paid.debitAccount, paid.amountMinor, `reversal of ${paid.id}`);
    }
  }

  /** A proxy's auth or debit for a txId it voided earlier: the reversal overtook the payment on the network. */
  private refuseIfVoided(proxyId: string, txId: string): void {
    const voided = this.store.getVoid(proxyId, txId);
    if (voided) refuse('voided', `transaction ${txId} was voided by ${voided.requestId}`, txId);
  }

  /**
   * The one place balances change: debit one account, credit another, same amount [INV-3 conservation].
   * Idempotent by id: the same payload returns the recorded transfer, another payload is an id conflict.
   */
  private applyTransfer(id: string, debitId: string, creditId: string, amountMinor: Minor, note: string, extra: readonly (string | number)[] = []): Transfer {
    assertMinor(amountMinor, 'amountMinor');
    const fingerprint = canonicalEncoding([debitId, creditId, amountMinor, ...extra]);
    const existing = this.store.getTransfer(id);
    if (existing) {
      if (existing.fingerprint === fingerprint) return existing;
      refuse('idConflict', `transfer ${id} exists with another payload`, { id, debitId, creditId, amountMinor });
    }
    if (debitId === creditId) refuse('sameAccount', `transfer ${id} debits and credits ${debitId}`, id);
    const debit = this.accountForTransfer(debitId);
    this.store.putAccount({ ...debit, balanceMinor: debit.balanceMinor - amountMinor, version: debit.version + 1 });
    const credit = this.accountForTransfer(creditId);
    this.store.putAccount({ ...credit, balanceMinor: credit.balanceMinor + amountMinor, version: credit.version + 1 });
    const transfer: Transfer = { id, debitAccount: debitId, creditAccount: creditId, amountMinor, fingerprint, note };
    this.store.putTransfer(transfer);
    return transfer;
  }

  /** Means accounts exist once opened; payee, float and loss accounts are created on first use. */
  private accountForTransfer(id: string): Account {
    const existing = this.store.getAccount(id);
    if (existing) return existing;
    if (id === FLOAT_ACCOUNT) return newAccount(id, 'float', 0);
    if (id === LOSS_ACCOUNT) return newAccount(id, 'loss', 0);
    if (id.startsWith('payee:')) return newAccount(id, 'beneficiary', 0);
    return refuse('unknownAccount', `account ${id} does not exist`, id);
  }

  private meansAccountOf(meansId: string): Account {
    const account = this.store.getAccount(meansAccount(meansId));
    if (!account) refuse('unknownMeans', `means ${meansId} is not open`, meansId);
    return account;
  }

  private holdOrRefuse(txId: string): Hold {
    const hold = this.store.getHold(txId);
    if (!hold) refuse('unknownHold', `no authorisation ${txId}`, txId);
    return hold;
  }

  /** Ends an active hold: its reservation is given back to the means' available funds. */
  private endHold(hold: Hold, state: 'captured' | 'released'): Hold {
    const account = this.meansAccountOf(hold.meansId);
    this.store.putAccount({ ...account, heldMinor: account.heldMinor - hold.amountMinor, version: account.version + 1 });
    const ended: Hold = { ...hold, state };
    this.store.putHold(ended);
    return ended;
  }
}

function newAccount(id: string, kind: AccountKind, creditLimitMinor: Minor): Account {
  return { id, kind, balanceMinor: 0, creditLimitMinor, heldMinor: 0, version: 0 };
}

function available(account: Account): number {
  return account.balanceMinor + account.creditLimitMinor - account.heldMinor;
}

/**
 * Whether a posting already on the ledger is the payment now presented. An aggregate-covered posting has no
 * amount of its own; a captured one may be less than the authorised claim (a partial capture).
 */
function isSamePayment(posting: Posting, p: PaymentInput): boolean {
  if (posting.meansId !== p.meansId || posting.payee !== p.payee) return false;
  if (posting.amountMinor === null || posting.amountMinor === p.amountMinor) return true;
  return posting.via === 'capture' && posting.amountMinor <= p.amountMinor;
}
