// Goal: the two-phase payments of the payment server's (SD's) ledger — authorisation holds, their capture or
// release — and the reversal of a remote payment whose answer never reached its proxy.
// Method: plain functions over a LedgerStore; each checks its input, then runs in one store transaction and
// refuses by throwing a DomainError, which rolls back whatever it had written. A hold reserves part of a means
// (its `heldMinor`) without moving money; a capture posts the payment (ledgerPostings.ts) and ends the hold.
// A reversal (`reversePayment`) undoes whatever SD did for a remote payment, whichever order the payment and
// its reversal arrive in: it releases a hold, pays a debit back by opposite transfers (`rev:`), or records the
// txId as void so that the payment, arriving late, is refused.

import { assertMinor, type Minor } from './money.ts';
import type { Hold, LedgerStore } from './ledgerStore.ts';
import { assertId, available, endHold, meansAccountOf, payBack, refuse } from './ledgerAccounts.ts';
import { postOnce, refuseIfVoided, type PaymentOutcome } from './ledgerPostings.ts';

export interface HoldInput {
  txId: string;
  meansId: string;
  payee: string;
  amountMinor: Minor;
  /** The proxy that asked for the authorisation; only it may capture or release. */
  proxyId: string;
}

export interface CaptureInput {
  txId: string;
  amountMinor: Minor;
  requestId: string;
}

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

function holdOrRefuse(store: LedgerStore, txId: string): Hold {
  const hold = store.getHold(txId);
  if (!hold) refuse('unknownHold', `no authorisation ${txId}`, txId);
  return hold;
}

/** Reserves `amountMinor` of the means for a later capture or release. */
export function placeHold(store: LedgerStore, input: HoldInput): Hold {
  const { txId, meansId, payee, amountMinor, proxyId } = input;
  assertId(txId, 'txId');
  assertId(payee, 'payee');
  assertMinor(amountMinor, 'amountMinor');
  return store.transaction(() => {
    refuseIfVoided(store, proxyId, txId);
    const existing = store.getHold(txId);
    if (existing) {
      if (existing.meansId === meansId && existing.payee === payee && existing.amountMinor === amountMinor && existing.proxyId === proxyId) return existing;
      refuse('idConflict', `transaction ${txId} holds another payment`, input);
    }
    if (store.getPosting(txId)) refuse('idConflict', `transaction ${txId} is posted already`, input);
    const account = meansAccountOf(store, meansId);
    if (available(account) < amountMinor) {
      refuse('insufficientFunds', `means ${meansId} has ${available(account)} available, ${amountMinor} asked`, input);
    }
    store.putAccount({ ...account, heldMinor: account.heldMinor + amountMinor, version: account.version + 1 });
    const hold: Hold = { txId, meansId, payee, amountMinor, proxyId, state: 'held' };
    store.putHold(hold);
    return hold;
  });
}

/**
 * Confirms a hold for `amountMinor` (at most the held amount) and gives back the rest. Capturing a captured
 * hold again for the same amount returns the same outcome and changes nothing.
 */
export function captureHold(store: LedgerStore, input: CaptureInput): PaymentOutcome {
  const { txId, amountMinor, requestId } = input;
  assertMinor(amountMinor, 'amountMinor');
  return store.transaction(() => {
    const hold = holdOrRefuse(store, txId);
    if (hold.state === 'captured') {
      const posting = store.getPosting(txId);
      if (posting && posting.amountMinor === amountMinor) return { posting, alreadyPosted: true, shortfallMinor: 0 };
      refuse('idConflict', `hold ${txId} was captured for another amount (${posting?.amountMinor})`, input);
    }
    if (hold.state === 'released') refuse('holdReleased', `hold ${txId} was released`, txId);
    if (amountMinor > hold.amountMinor) refuse('captureExceedsHold', `capture of ${amountMinor} exceeds the hold of ${hold.amountMinor}`, input);
    endHold(store, hold, 'captured');
    return postOnce(store, { txId, meansId: hold.meansId, payee: hold.payee, amountMinor, requestId, proxyId: hold.proxyId }, 'capture');
  });
}

/** Gives a hold back. Releasing a released hold is a no-op; releasing a captured one is refused. */
export function releaseHold(store: LedgerStore, input: { txId: string }): Hold {
  return store.transaction(() => {
    const hold = holdOrRefuse(store, input.txId);
    if (hold.state === 'captured') refuse('holdCaptured', `hold ${input.txId} was captured`, input.txId);
    if (hold.state === 'released') return hold;
    return endHold(store, hold, 'released');
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
export function reversePayment(store: LedgerStore, input: ReversalInput): ReversalOutcome {
  const { txId, proxyId, requestId } = input;
  assertId(txId, 'txId');
  assertId(proxyId, 'proxyId');
  return store.transaction((): ReversalOutcome => {
    const hold = store.getHold(txId);
    if (hold) {
      if (hold.proxyId !== proxyId) refuse('senderMismatch', `${proxyId} did not authorise ${txId}`, proxyId);
      if (hold.state === 'captured') refuse('notReversible', `hold ${txId} was captured`, txId);
      const already = hold.state === 'released';
      if (!already) endHold(store, hold, 'released');
      return { code: 'released', meansId: hold.meansId, already };
    }
    const posting = store.getPosting(txId);
    if (posting) {
      if (posting.proxyId !== undefined && posting.proxyId !== proxyId) refuse('senderMismatch', `${proxyId} did not make payment ${txId}`, proxyId);
      if (posting.via !== 'debit') refuse('notReversible', `transaction ${txId} was posted by ${posting.via}`, txId);
      if (posting.reversedBy !== undefined) return { code: 'reversed', meansId: posting.meansId, already: true };
      payBack(store, posting);
      store.putPosting({ ...posting, reversedBy: requestId });
      return { code: 'reversed', meansId: posting.meansId, already: false };
    }
    if (store.getVoid(proxyId, txId)) return { code: 'voided', meansId: undefined, already: true };
    store.putVoid({ proxyId, txId, requestId });
    return { code: 'voided', meansId: undefined, already: false };
  });
}
