// Goal: the double-entry core of the payment server's (SD's) ledger — account naming, the one place balances
// change (a transfer), moving a payment from a means to its payee, and paying a payment back.
// Method: plain functions over a LedgerStore, called inside a store transaction the caller opened (ledger.ts
// opens one per public method). Every movement debits one account and credits another by the same integer
// amount, so the balances always sum to zero [INV-3 conservation]. Transfer ids are derived from what they
// stand for, so a repeated operation finds its own transfer and returns it instead of moving money twice.
// Refusals throw a DomainError (reason code + offending value), which rolls the transaction back.

import { canonicalEncoding } from './signature.ts';
import { assertMinor, DomainError, type Minor } from './money.ts';
import type { Account, AccountKind, Hold, LedgerStore, Posting, Transfer } from './ledgerStore.ts';
import { isPurseId } from './localValue.ts';

export const FLOAT_ACCOUNT = 'float';
export const LOSS_ACCOUNT = 'loss';
/** The world beyond SD: money that enters by top-up (ledgerTopUps.ts) is debited here. */
export const OUTSIDE_ACCOUNT = 'outside';
export const meansAccount = (meansId: string): string => `means:${meansId}`;
export const payeeAccount = (payeeId: string): string => `payee:${payeeId}`;

export function refuse(code: string, message: string, value: unknown): never {
  throw new DomainError(code, message, value);
}

export function assertId(value: unknown, what: string): asserts value is string {
  if (typeof value !== 'string' || value.length === 0) refuse('badId', `${what} must be a non-empty string`, value);
}

export function newAccount(id: string, kind: AccountKind, creditLimitMinor: Minor): Account {
  return { id, kind, balanceMinor: 0, creditLimitMinor, heldMinor: 0, version: 0 };
}

/** What a means may still spend: balance + credit limit − active holds. */
export function available(account: Account): number {
  return account.balanceMinor + account.creditLimitMinor - account.heldMinor;
}

export function meansAccountOf(store: LedgerStore, meansId: string): Account {
  const account = store.getAccount(meansAccount(meansId));
  if (!account) refuse('unknownMeans', `means ${meansId} is not open`, meansId);
  return account;
}

/** Means accounts exist once opened; payee, float, loss and outside accounts are created on first use. */
function accountForTransfer(store: LedgerStore, id: string): Account {
  const existing = store.getAccount(id);
  if (existing) return existing;
  if (id === FLOAT_ACCOUNT) return newAccount(id, 'float', 0);
  if (id === LOSS_ACCOUNT) return newAccount(id, 'loss', 0);
  if (id === OUTSIDE_ACCOUNT) return newAccount(id, 'outside', 0);
  if (id.startsWith('payee:')) return newAccount(id, 'beneficiary', 0);
  return refuse('unknownAccount', `account ${id} does not exist`, id);
}

/**
 * The one place balances change: debit one account, credit another, same amount [INV-3 conservation].
 * Idempotent by id: the same payload returns the recorded transfer, another payload is an id conflict.
 */
export function applyTransfer(
  store: LedgerStore,
  id: string,
  debitId: string,
  creditId: string,
  amountMinor: Minor,
  note: string,
  extra: readonly (string | number)[] = [],
): Transfer {
  assertMinor(amountMinor, 'amountMinor');
  const fingerprint = canonicalEncoding([debitId, creditId, amountMinor, ...extra]);
  const existing = store.getTransfer(id);
  if (existing) {
    if (existing.fingerprint === fingerprint) return existing;
    refuse('idConflict', `transfer ${id} exists with another payload`, { id, debitId, creditId, amountMinor });
  }
  if (debitId === creditId) refuse('sameAccount', `transfer ${id} debits and credits ${debitId}`, id);
  const debit = accountForTransfer(store, debitId);
  store.putAccount({ ...debit, balanceMinor: debit.balanceMinor - amountMinor, version: debit.version + 1 });
  const credit = accountForTransfer(store, creditId);
  store.putAccount({ ...credit, balanceMinor: credit.balanceMinor + amountMinor, version: credit.version + 1 });
  const transfer: Transfer = { id, debitAccount: debitId, creditAccount: creditId, amountMinor, fingerprint, note };
  store.putTransfer(transfer);
  return transfer;
}

/**
 * Moves `amountMinor` from the means to the payee: what the means has available by transfer `{baseId}`,
 * the rest from the loss account by transfer `{baseId}/loss`. Returns the shortfall.
 */
export function moveToPayee(store: LedgerStore, baseId: string, meansId: string, payee: string, amountMinor: Minor, note: string): Minor {
  const account = meansAccountOf(store, meansId);
  // A purse of local value pays in full from its own account: the SIM held that value (SD granted it), and a
  // payment of a new period may reach SD before that period's renewal does, so the account may dip below zero
  // for a while; SD's books for the purse come back to the SIM's value once both arrived (localValue.ts).
  const coveredMinor = isPurseId(meansId) ? amountMinor : Math.min(amountMinor, Math.max(0, available(account)));
  const shortfallMinor = amountMinor - coveredMinor;
  if (coveredMinor > 0) applyTransfer(store, baseId, account.id, payeeAccount(payee), coveredMinor, note);
  // [INV-5 beneficiary never harmed] the payee gets all of it; the loss account carries what the means lacked.
  if (shortfallMinor > 0) applyTransfer(store, `${baseId}/loss`, LOSS_ACCOUNT, payeeAccount(payee), shortfallMinor, `shortfall of ${note}`);
  return shortfallMinor;
}

/**
 * Pays a posting back by the opposite of each transfer that paid it: `rev:{txId}` payee → means for what the
 * means covered, `rev:{txId}/loss` payee → loss for any shortfall [INV-3 conservation].
 */
export function payBack(store: LedgerStore, posting: Posting): void {
  for (const suffix of ['', '/loss']) {
    const paid = store.getTransfer(`tx:${posting.txId}${suffix}`);
    if (paid) applyTransfer(store, `rev:${posting.txId}${suffix}`, paid.creditAccount, paid.debitAccount, paid.amountMinor, `reversal of ${paid.id}`);
  }
}

/** Ends an active hold: its reservation is given back to the means' available funds. */
export function endHold(store: LedgerStore, hold: Hold, state: 'captured' | 'released'): Hold {
  const account = meansAccountOf(store, hold.meansId);
  store.putAccount({ ...account, heldMinor: account.heldMinor - hold.amountMinor, version: account.version + 1 });
  const ended: Hold = { ...hold, state };
  store.putHold(ended);
  return ended;
}
