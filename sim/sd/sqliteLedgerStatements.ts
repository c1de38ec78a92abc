// Goal: every SQL statement the ledger store runs, prepared once per connection, and the one place that writes a
// row back as it was (to undo a nested transaction that threw).
// Method: positional parameters (binding from an array is cheaper than looking each named one up on an object),
// point reads in raw mode or plucked, upserts built from the column lists of sqliteLedgerRows.ts; the delete
// statements exist only for the undo: the ledger itself never deletes a row.

import type Database from 'better-sqlite3';
import type { Account, Aggregate, Hold, Posting, Transfer, VoidRecord } from '../../machines/domain/ledgerStore.ts';
import { ABSENT, UNCACHED, type TableName } from './sqliteLedgerStoreCache.ts';
import {
  ACCOUNT_COLUMNS, AGGREGATE_COLUMNS, HOLD_COLUMNS, POSTING_COLUMNS, TRANSFER_COLUMNS, VOID_COLUMNS,
  accountRow, aggregateRow, holdRow, postingRow, splitPairKey, transferRow,
  type AccountRow, type AggregateRow, type CachedResult, type HoldRow, type PostingRow, type ResultRow, type TransferRow, type VoidRow,
} from './sqliteLedgerRows.ts';

/** An upsert of every column of `table`, on conflict with the key columns updating the others. */
function upsert(table: string, columns: string, key: string): string {
  const names = columns.split(', ');
  const sets = names.filter((n) => !key.split(', ').includes(n)).map((n) => `${n} = excluded.${n}`).join(', ');
  return `INSERT INTO ${table} (${columns}) VALUES (${names.map(() => '?').join(', ')}) ON CONFLICT (${key}) DO UPDATE SET ${sets}`;
}

/** Prepares the store's statements on `db` (whose tables exist: see sqliteLedgerSchema.ts). */
export function prepareStatements(db: Database.Database) {
  return {
    getAccount: db.prepare<[string], AccountRow>(`SELECT ${ACCOUNT_COLUMNS} FROM accounts WHERE id = ?`).raw(true),
    putAccount: db.prepare<AccountRow>(upsert('accounts', ACCOUNT_COLUMNS, 'id')),
    // For an account known to exist: one lookup where the upsert makes two (the insert that conflicts, then the update).
    updateAccount: db.prepare<[string, number, number, number, number, string]>(
      'UPDATE accounts SET kind = ?, balance_minor = ?, credit_limit_minor = ?, held_minor = ?, version = ? WHERE id = ?',
    ),
    allAccounts: db.prepare<[], AccountRow>(`SELECT ${ACCOUNT_COLUMNS} FROM accounts ORDER BY rowid`).raw(true),
    getTransfer: db.prepare<[string], TransferRow>(`SELECT ${TRANSFER_COLUMNS} FROM transfers WHERE id = ?`).raw(true),
    putTransfer: db.prepare<TransferRow>(upsert('transfers', TRANSFER_COLUMNS, 'id')),
    getHold: db.prepare<[string], HoldRow>(`SELECT ${HOLD_COLUMNS} FROM holds WHERE tx_id = ?`).raw(true),
    putHold: db.prepare<HoldRow>(upsert('holds', HOLD_COLUMNS, 'tx_id')),
    getPosting: db.prepare<[string], PostingRow>(`SELECT ${POSTING_COLUMNS} FROM postings WHERE tx_id = ?`).raw(true),
    putPosting: db.prepare<PostingRow>(upsert('postings', POSTING_COLUMNS, 'tx_id')),
    allPostings: db.prepare<[], PostingRow>(`SELECT ${POSTING_COLUMNS} FROM postings ORDER BY rowid`).raw(true),
    getAggregate: db.prepare<[string], AggregateRow>(`SELECT ${AGGREGATE_COLUMNS} FROM aggregates WHERE id = ?`).raw(true),
    putAggregate: db.prepare<AggregateRow>(upsert('aggregates', AGGREGATE_COLUMNS, 'id')),
    externalTransfers: db.prepare<[], TransferRow>(`SELECT ${TRANSFER_COLUMNS} FROM transfers WHERE id LIKE 'ext:%' ORDER BY rowid`).raw(true),
    topUpTransfers: db.prepare<[], TransferRow>(`SELECT ${TRANSFER_COLUMNS} FROM transfers WHERE id LIKE 'top:%' ORDER BY rowid`).raw(true),
    allAggregates: db.prepare<[], AggregateRow>(`SELECT ${AGGREGATE_COLUMNS} FROM aggregates ORDER BY rowid`).raw(true),
    getVoid: db.prepare<[string, string], VoidRow>(`SELECT ${VOID_COLUMNS} FROM voids WHERE proxy_id = ? AND tx_id = ?`).raw(true),
    putVoid: db.prepare<VoidRow>(upsert('voids', VOID_COLUMNS, 'proxy_id, tx_id')),
    allVoids: db.prepare<[], VoidRow>(`SELECT ${VOID_COLUMNS} FROM voids ORDER BY rowid`).raw(true),
    getCounterUse: db.prepare<[string, number], string>('SELECT tx_id FROM counter_uses WHERE proxy_id = ? AND counter = ?').pluck(true),
    putCounterUse: db.prepare<[string, number, string]>(upsert('counter_uses', 'proxy_id, counter, tx_id', 'proxy_id, counter')),
    getResult: db.prepare<[string, string], ResultRow>('SELECT fingerprint, result FROM results WHERE sender = ? AND req_id = ?').raw(true),
    putResult: db.prepare<[string, string, string, string]>(upsert('results', 'sender, req_id, fingerprint, result', 'sender, req_id')),
    getMeta: db.prepare<[string], string>('SELECT value FROM meta WHERE key = ?').pluck(true),
    putMeta: db.prepare<[string, string]>(upsert('meta', 'key, value', 'key')),
    sumOfBalances: db.prepare<[], number | null>('SELECT SUM(balance_minor) FROM accounts').pluck(true),
    countResults: db.prepare<[], number>('SELECT COUNT(*) FROM results').pluck(true),
    dataVersion: db.prepare<[], number>('PRAGMA data_version').pluck(true),
    begin: db.prepare('BEGIN'),
    commit: db.prepare('COMMIT'),
    rollback: db.prepare('ROLLBACK'),
    // Only to undo a nested transaction: the ledger itself never deletes a row.
    deleteAccount: db.prepare<[string]>('DELETE FROM accounts WHERE id = ?'),
    deleteTransfer: db.prepare<[string]>('DELETE FROM transfers WHERE id = ?'),
    deleteHold: db.prepare<[string]>('DELETE FROM holds WHERE tx_id = ?'),
    deletePosting: db.prepare<[string]>('DELETE FROM postings WHERE tx_id = ?'),
    deleteAggregate: db.prepare<[string]>('DELETE FROM aggregates WHERE id = ?'),
    deleteVoid: db.prepare<[string, string]>('DELETE FROM voids WHERE proxy_id = ? AND tx_id = ?'),
    deleteCounterUse: db.prepare<[string, number]>('DELETE FROM counter_uses WHERE proxy_id = ? AND counter = ?'),
    deleteResult: db.prepare<[string, string]>('DELETE FROM results WHERE sender = ? AND req_id = ?'),
    deleteMeta: db.prepare<[string]>('DELETE FROM meta WHERE key = ?'),
  };
}

export type LedgerStatements = ReturnType<typeof prepareStatements>;

/** Puts one row back as it was before a nested transaction wrote it: `before` is the row, or ABSENT. */
export function restoreRow(stmt: LedgerStatements, table: TableName, key: string, before: unknown): void {
  if (before === UNCACHED) throw new Error(`LedgerStore.transaction: no earlier value of ${table} ${key} to undo a nested transaction with`);
  const absent = before === ABSENT;
  switch (table) {
    case 'accounts':
      if (absent) stmt.deleteAccount.run(key);
      else stmt.putAccount.run(...accountRow(before as Account));
      return;
    case 'transfers':
      if (absent) stmt.deleteTransfer.run(key);
      else stmt.putTransfer.run(...transferRow(before as Transfer));
      return;
    case 'holds':
      if (absent) stmt.deleteHold.run(key);
      else stmt.putHold.run(...holdRow(before as Hold));
      return;
    case 'postings':
      if (absent) stmt.deletePosting.run(key);
      else stmt.putPosting.run(...postingRow(before as Posting));
      return;
    case 'aggregates':
      if (absent) stmt.deleteAggregate.run(key);
      else stmt.putAggregate.run(...aggregateRow(before as Aggregate));
      return;
    case 'voids': {
      const [proxyId, txId] = splitPairKey(key);
      if (absent) stmt.deleteVoid.run(proxyId, txId);
      else stmt.putVoid.run(proxyId, txId, (before as VoidRecord).requestId);
      return;
    }
    case 'counters': {
      const [proxyId, counter] = splitPairKey(key);
      if (absent) stmt.deleteCounterUse.run(proxyId, Number(counter));
      else stmt.putCounterUse.run(proxyId, Number(counter), before as string);
      return;
    }
    case 'results': {
      const [from, reqId] = splitPairKey(key);
      if (absent) stmt.deleteResult.run(from, reqId);
      else stmt.putResult.run(from, reqId, (before as CachedResult).fingerprint, (before as CachedResult).json);
      return;
    }
    case 'meta':
      if (absent) stmt.deleteMeta.run(key);
      else stmt.putMeta.run(key, before as string);
      return;
  }
}
