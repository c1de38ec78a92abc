// Goal: how a payment gets onto the payment server's (SD's) ledger exactly once per transaction id — singly
// (a debit, a capture, a remitted or settled proof) or inside an aggregate sum [INV-4 nothing twice].
// Method: plain functions over a LedgerStore, run inside the store transaction ledger.ts opens. A posting is
// the record that a txId is on the ledger; whatever the means lacks is taken from the loss account, so the
// payee is always credited in full [INV-5 beneficiary never harmed]. An aggregate posts its sum less what is on
// the ledger already for its transactions, and marks every covered transaction posted.

import { canonicalEncoding } from './signature.ts';
import { assertMinor, type Minor } from './money.ts';
import type { Aggregate, LedgerStore, Posting, PostingVia } from './ledgerStore.ts';
import { assertId, endHold, meansAccountOf, moveToPayee, refuse } from './ledgerAccounts.ts';

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

/** A proxy's auth or debit for a txId it voided earlier: the reversal overtook the payment on the network. */
export function refuseIfVoided(store: LedgerStore, proxyId: string, txId: string): void {
  const voided = store.getVoid(proxyId, txId);
  if (voided) refuse('voided', `transaction ${txId} was voided by ${voided.requestId}`, txId);
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

/** Posts a payment once per txId; the caller has opened the store transaction. */
export function postOnce(store: LedgerStore, input: PaymentInput, via: PostingVia): PaymentOutcome {
  const { txId, meansId, payee, amountMinor, requestId } = input;
  assertId(txId, 'txId');
  assertId(payee, 'payee');
  assertMinor(amountMinor, 'amountMinor');
  meansAccountOf(store, meansId);
  const existing = store.getPosting(txId);
  if (existing) {
    if (!isSamePayment(existing, input)) refuse('idConflict', `transaction ${txId} was posted as another payment`, input);
    return { posting: existing, alreadyPosted: true, shortfallMinor: 0 };
  }
  const hold = store.getHold(txId);
  if (hold && (hold.meansId !== meansId || hold.payee !== payee)) refuse('idConflict', `transaction ${txId} holds another payment`, input);
  // A proof of an authorised payment reaching SD before its capture pays from the funds the hold reserved;
  // the hold is then done, so a later capture of the same amount finds it captured and changes nothing.
  if (hold?.state === 'held') endHold(store, hold, 'captured');
  const shortfallMinor = moveToPayee(store, `tx:${txId}`, meansId, payee, amountMinor, `${via} ${txId}`);
  const posting: Posting = input.proxyId === undefined ? { txId, meansId, payee, amountMinor, via, requestId } : { txId, meansId, payee, amountMinor, via, requestId, proxyId: input.proxyId };
  store.putPosting(posting);
  return { posting, alreadyPosted: false, shortfallMinor };
}

/**
 * Posts an aggregate: the sum less what is on the ledger already for its transactions (those posted singly,
 * and earlier aggregates lying wholly inside it), then marks every covered transaction posted
 * [INV-4 nothing twice]. Refused with `aggregateMismatch` when that remainder is negative, when a covered
 * transaction was posted for another means or payee, or when the aggregate cuts through an earlier one.
 * Runs in one store transaction.
 */
export function postAggregate(store: LedgerStore, input: AggregateInput): AggregateOutcome {
  const { id, meansId, payee, sumMinor, txIds, requestId } = input;
  assertId(id, 'aggregate id');
  assertId(payee, 'payee');
  assertMinor(sumMinor, 'sumMinor');
  if (txIds.length === 0) refuse('badRequest', 'an aggregate must cover at least one transaction', input);
  const covered = new Set(txIds);
  if (covered.size !== txIds.length) refuse('badRequest', 'an aggregate names a transaction twice', input);
  for (const txId of txIds) assertId(txId, 'txId');
  return store.transaction((): AggregateOutcome => {
    meansAccountOf(store, meansId);
    const fingerprint = canonicalEncoding([meansId, payee, sumMinor, ...txIds]);
    const previous = store.getAggregate(id);
    if (previous) {
      if (canonicalEncoding([previous.meansId, previous.payee, previous.sumMinor, ...previous.txIds]) !== fingerprint) {
        refuse('idConflict', `aggregate ${id} was recorded with other contents`, input);
      }
      const posted = txIds.filter((txId) => store.getPosting(txId)?.aggregateId === id);
      return { aggregate: previous, posted, alreadyPosted: txIds.filter((txId) => !posted.includes(txId)), shortfallMinor: 0 };
    }

    const fresh: string[] = [];
    const alreadyPosted: string[] = [];
    const inner = new Set<string>();
    let onLedgerMinor = 0;
    for (const txId of txIds) {
      const posting = store.getPosting(txId);
      if (!posting) {
        if (store.getHold(txId)?.state === 'held') refuse('idConflict', `transaction ${txId} is an open authorisation`, txId);
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
      const earlier = store.getAggregate(innerId);
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

    const shortfallMinor = moveToPayee(store, `agg:${id}`, meansId, payee, remainderMinor, `aggregate ${id}`);
    const aggregate: Aggregate = { id, meansId, payee, sumMinor, txIds: [...txIds], postedMinor: remainderMinor };
    store.putAggregate(aggregate);
    for (const txId of fresh) {
      store.putPosting({ txId, meansId, payee, amountMinor: null, via: 'aggregate', requestId, aggregateId: id });
    }
    return { aggregate, posted: fresh, alreadyPosted, shortfallMinor };
  });
}
