// Goal: how each record type of the ledger maps to its PostgreSQL table (postgresLedgerSchema.sql), for
// postgresLedgerStore.ts: columns as written and read, key columns, the overlay's key of a record, and the
// conversions both ways.
// Method: one TableSpec per record type; rows travel as arrays in column order, json columns read back as their
// exact text; literals for the one-round-trip commit script are quoted here (standard_conforming_strings on).

import type { Account, AccountKind, Aggregate, Hold, HoldState, Posting, PostingVia, Transfer, VoidRecord } from '../../machines/domain/ledgerStore.ts';
import { LedgerUnavailableError } from './postgresConnection.ts';

export type TableName = 'accounts' | 'transfers' | 'holds' | 'postings' | 'aggregates' | 'voids' | 'counters' | 'results' | 'meta';
export type Row = unknown[];
export interface CachedResult { fingerprint: string; json: string }

/** How one record type maps to its table. `key` is the overlay's key of a record, `keyParams` its key columns. */
export interface TableSpec {
  table: string;
  /** Columns as written (INSERT), and as read (SELECT: json columns read back as their text). */
  columns: string[];
  keyColumns: string[];
  /** Iterated tables return rows in the order they were first written. */
  ordered: boolean;
  toRow(value: unknown, key: string): Row;
  fromRow(row: Row): unknown;
  keyOfRow(row: Row): string;
  keyParams(key: string): unknown[];
}

/** A key for a pair of ids that no other pair shares (the first id's length tells where it ends). */
export const pairKey = (a: string, b: string | number): string => `${a.length}:${a}${b}`;
function splitPairKey(key: string): [string, string] {
  const colon = key.indexOf(':');
  const end = colon + 1 + Number(key.slice(0, colon));
  return [key.slice(colon + 1, end), key.slice(end)];
}

export function toPosting(r: Row): Posting {
  const posting: { -readonly [K in keyof Posting]: Posting[K] } = {
    txId: r[0] as string, meansId: r[1] as string, payee: r[2] as string, amountMinor: r[3] as number | null, via: r[4] as PostingVia, requestId: r[5] as string,
  };
  // Optional fields absent in the record stay absent (not `undefined`), as in the in-memory store.
  if (r[6] !== null) posting.aggregateId = r[6] as string;
  if (r[7] !== null) posting.proxyId = r[7] as string;
  if (r[8] !== null) posting.reversedBy = r[8] as string;
  return Object.freeze(posting);
}

export const SPECS: Record<TableName, TableSpec> = {
  accounts: {
    table: 'accounts', columns: ['id', 'kind', 'balance_minor', 'credit_limit_minor', 'held_minor', 'version'], keyColumns: ['id'], ordered: true,
    toRow: (v) => { const a = v as Account; return [a.id, a.kind, a.balanceMinor, a.creditLimitMinor, a.heldMinor, a.version]; },
    fromRow: (r) => Object.freeze({ id: r[0] as string, kind: r[1] as AccountKind, balanceMinor: r[2] as number, creditLimitMinor: r[3] as number, heldMinor: r[4] as number, version: r[5] as number }),
    keyOfRow: (r) => r[0] as string, keyParams: (k) => [k],
  },
  transfers: {
    table: 'transfers', columns: ['id', 'debit_account', 'credit_account', 'amount_minor', 'fingerprint', 'note'], keyColumns: ['id'], ordered: false,
    toRow: (v) => { const t = v as Transfer; return [t.id, t.debitAccount, t.creditAccount, t.amountMinor, t.fingerprint, t.note]; },
    fromRow: (r) => Object.freeze({ id: r[0] as string, debitAccount: r[1] as string, creditAccount: r[2] as string, amountMinor: r[3] as number, fingerprint: r[4] as string, note: r[5] as string }),
    keyOfRow: (r) => r[0] as string, keyParams: (k) => [k],
  },
  holds: {
    table: 'holds', columns: ['tx_id', 'means_id', 'payee', 'amount_minor', 'proxy_id', 'state'], keyColumns: ['tx_id'], ordered: false,
    toRow: (v) => { const h = v as Hold; return [h.txId, h.meansId, h.payee, h.amountMinor, h.proxyId, h.state]; },
    fromRow: (r) => Object.freeze({ txId: r[0] as string, meansId: r[1] as string, payee: r[2] as string, amountMinor: r[3] as number, proxyId: r[4] as string, state: r[5] as HoldState }),
    keyOfRow: (r) => r[0] as string, keyParams: (k) => [k],
  },
  postings: {
    table: 'postings', columns: ['tx_id', 'means_id', 'payee', 'amount_minor', 'via', 'request_id', 'aggregate_id', 'proxy_id', 'reversed_by'], keyColumns: ['tx_id'], ordered: true,
    toRow: (v) => { const p = v as Posting; return [p.txId, p.meansId, p.payee, p.amountMinor, p.via, p.requestId, p.aggregateId ?? null, p.proxyId ?? null, p.reversedBy ?? null]; },
    fromRow: toPosting, keyOfRow: (r) => r[0] as string, keyParams: (k) => [k],
  },
  aggregates: {
    table: 'aggregates', columns: ['id', 'means_id', 'payee', 'sum_minor', 'tx_ids', 'posted_minor'], keyColumns: ['id'], ordered: true,
    toRow: (v) => { const a = v as Aggregate; return [a.id, a.meansId, a.payee, a.sumMinor, JSON.stringify(a.txIds), a.postedMinor]; },
    fromRow: (r) => Object.freeze({ id: r[0] as string, meansId: r[1] as string, payee: r[2] as string, sumMinor: r[3] as number, txIds: Object.freeze(JSON.parse(r[4] as string) as string[]), postedMinor: r[5] as number }),
    keyOfRow: (r) => r[0] as string, keyParams: (k) => [k],
  },
  voids: {
    table: 'voids', columns: ['proxy_id', 'tx_id', 'request_id'], keyColumns: ['proxy_id', 'tx_id'], ordered: true,
    toRow: (v) => { const x = v as VoidRecord; return [x.proxyId, x.txId, x.requestId]; },
    fromRow: (r) => Object.freeze({ proxyId: r[0] as string, txId: r[1] as string, requestId: r[2] as string }),
    keyOfRow: (r) => pairKey(r[0] as string, r[1] as string), keyParams: splitPairKey,
  },
  counters: {
    table: 'counter_uses', columns: ['proxy_id', 'counter', 'tx_id'], keyColumns: ['proxy_id', 'counter'], ordered: false,
    toRow: (v, k) => { const [proxyId, counter] = splitPairKey(k); return [proxyId, Number(counter), v]; },
    fromRow: (r) => r[2] as string,
    keyOfRow: (r) => pairKey(r[0] as string, r[1] as number), keyParams: (k) => { const [p, c] = splitPairKey(k); return [p, Number(c)]; },
  },
  results: {
    table: 'results', columns: ['sender', 'req_id', 'fingerprint', 'result'], keyColumns: ['sender', 'req_id'], ordered: false,
    toRow: (v, k) => { const [from, reqId] = splitPairKey(k); const c = v as CachedResult; return [from, reqId, c.fingerprint, c.json]; },
    fromRow: (r) => ({ fingerprint: r[2] as string, json: r[3] as string }) satisfies CachedResult,
    keyOfRow: (r) => pairKey(r[0] as string, r[1] as string), keyParams: splitPairKey,
  },
  meta: {
    table: 'meta', columns: ['key', 'value'], keyColumns: ['key'], ordered: false,
    toRow: (v, k) => [k, v], fromRow: (r) => r[1] as string, keyOfRow: (r) => r[0] as string, keyParams: (k) => [k],
  },
};
export const TABLES = Object.keys(SPECS) as TableName[];

/** The SELECT list of a table: json columns come back as their exact text. */
export const selectList = (spec: TableSpec) => spec.columns.map((c) => (c === 'tx_ids' || c === 'result' ? `${c}::text` : c)).join(', ');
/** A SQL literal for the one-round-trip commit script (standard_conforming_strings is on for the session). */
export function literal(value: unknown): string {
  if (value === null || value === undefined) return 'NULL';
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw new LedgerUnavailableError('badValue', `not a safe integer: ${value}`, value, false);
    return String(value);
  }
  const text = String(value);
  if (text.includes('\0')) throw new LedgerUnavailableError('badValue', 'a text value holds a NUL character, which PostgreSQL cannot store', text, false);
  return `'${text.replaceAll("'", "''")}'`;
}

