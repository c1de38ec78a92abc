// Goal: the ledger's records as SQLite rows and back, identical both ways, so that the record the store caches
// after a write is the one a later read from SQLite gives.
// Method: rows are arrays, columns in the order each SELECT names them (better-sqlite3's raw mode spares building
// an object per row); one builder of a frozen record per row type, one row per record type, and a cache key for
// the tables keyed by a pair of ids.

import type { Account, AccountKind, Aggregate, Hold, HoldState, Posting, PostingVia, Transfer, VoidRecord } from '../../machines/domain/ledgerStore.ts';

// Rows are read in raw mode (arrays, columns in the order each SELECT names them), which spares better-sqlite3
// building an object per row; these build the frozen records from them.
export type AccountRow = [id: string, kind: string, balanceMinor: number, creditLimitMinor: number, heldMinor: number, version: number];
export type TransferRow = [id: string, debitAccount: string, creditAccount: string, amountMinor: number, fingerprint: string, note: string];
export type HoldRow = [txId: string, meansId: string, payee: string, amountMinor: number, proxyId: string, state: string];
export type PostingRow = [
  txId: string, meansId: string, payee: string, amountMinor: number | null, via: string, requestId: string,
  aggregateId: string | null, proxyId: string | null, reversedBy: string | null,
];
export type AggregateRow = [id: string, meansId: string, payee: string, sumMinor: number, txIds: string, postedMinor: number];
export type VoidRow = [proxyId: string, txId: string, requestId: string];
export type ResultRow = [fingerprint: string, result: string];

export const ACCOUNT_COLUMNS = 'id, kind, balance_minor, credit_limit_minor, held_minor, version';
export const TRANSFER_COLUMNS = 'id, debit_account, credit_account, amount_minor, fingerprint, note';
export const HOLD_COLUMNS = 'tx_id, means_id, payee, amount_minor, proxy_id, state';
export const POSTING_COLUMNS = 'tx_id, means_id, payee, amount_minor, via, request_id, aggregate_id, proxy_id, reversed_by';
export const AGGREGATE_COLUMNS = 'id, means_id, payee, sum_minor, tx_ids, posted_minor';
export const VOID_COLUMNS = 'proxy_id, tx_id, request_id';

export const toAccount = (r: AccountRow): Account =>
  Object.freeze({ id: r[0], kind: r[1] as AccountKind, balanceMinor: r[2], creditLimitMinor: r[3], heldMinor: r[4], version: r[5] });
export const toTransfer = (r: TransferRow): Transfer =>
  Object.freeze({ id: r[0], debitAccount: r[1], creditAccount: r[2], amountMinor: r[3], fingerprint: r[4], note: r[5] });
export const toHold = (r: HoldRow): Hold =>
  Object.freeze({ txId: r[0], meansId: r[1], payee: r[2], amountMinor: r[3], proxyId: r[4], state: r[5] as HoldState });
export const toVoid = (r: VoidRow): VoidRecord => Object.freeze({ proxyId: r[0], txId: r[1], requestId: r[2] });
export const toAggregate = (r: AggregateRow): Aggregate =>
  Object.freeze({ id: r[0], meansId: r[1], payee: r[2], sumMinor: r[3], txIds: Object.freeze(JSON.parse(r[4]) as string[]), postedMinor: r[5] });

/** Optional fields absent in the record stay absent (not `undefined`), as they are in the in-memory store. */
export function toPosting(r: PostingRow): Posting {
  const posting: { -readonly [K in keyof Posting]: Posting[K] } = {
    txId: r[0], meansId: r[1], payee: r[2], amountMinor: r[3], via: r[4] as PostingVia, requestId: r[5],
  };
  if (r[6] !== null) posting.aggregateId = r[6];
  if (r[7] !== null) posting.proxyId = r[7];
  if (r[8] !== null) posting.reversedBy = r[8];
  return Object.freeze(posting);
}

// The same rows built from the records handed to `put`: what is bound to the statement is what a later read
// returns, so the record cached after a write is the one SQLite would give back.
export const accountRow = (a: Account): AccountRow => [a.id, a.kind, a.balanceMinor, a.creditLimitMinor, a.heldMinor, a.version];
export const transferRow = (t: Transfer): TransferRow => [t.id, t.debitAccount, t.creditAccount, t.amountMinor, t.fingerprint, t.note];
export const holdRow = (h: Hold): HoldRow => [h.txId, h.meansId, h.payee, h.amountMinor, h.proxyId, h.state];
export const postingRow = (p: Posting): PostingRow => [
  p.txId, p.meansId, p.payee, p.amountMinor, p.via, p.requestId, p.aggregateId ?? null, p.proxyId ?? null, p.reversedBy ?? null,
];

export const aggregateRow = (a: Aggregate): AggregateRow => [a.id, a.meansId, a.payee, a.sumMinor, JSON.stringify(a.txIds), a.postedMinor];

/** A cache key for a pair of ids that no other pair shares (the first id's length tells where it ends). */
export const pairKey = (a: string, b: string | number): string => `${a.length}:${a}${b}`;
export function splitPairKey(key: string): [string, string] {
  const colon = key.indexOf(':');
  const end = colon + 1 + Number(key.slice(0, colon));
  return [key.slice(colon + 1, end), key.slice(end)];
}

/** What the cache keeps of a stored answer: the text, parsed afresh for each reader as a read from SQLite is. */
export interface CachedResult { fingerprint: string; json: string }
