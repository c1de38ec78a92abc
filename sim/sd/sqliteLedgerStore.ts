// Goal: the durable storage of a payment-server process in mqtt mode: the `LedgerStore` of
// machines/domain/ledgerStore.ts in one SQLite file, so that a server killed with SIGKILL and restarted on the
// same file resumes with every committed transfer, posting and stored answer, and nothing half-written — at as
// few SQL statements per request as that allows.
// Method: better-sqlite3 v12 (synchronous, like the interface), one table per record type keyed as the
// interface keys it, prepared statements made once with positional parameters, point reads in raw mode; `put` is
// an upsert (an UPDATE when the row is known to exist). The outermost `transaction(fn)` is one SQLite transaction:
// BEGIN, `fn`, COMMIT, or ROLLBACK when `fn` throws. The file is in WAL mode with `synchronous = FULL` by
// default: every commit is fsynced before `transaction` returns, so an answer the server sends after it
// (handleRequest stores the answer inside the same transaction) survives a power loss as well as a killed
// process [INV-4 nothing lost]. `synchronous = NORMAL` is offered for load runs: in WAL mode it still survives a
// killed process (the write is in the WAL, which the OS keeps), but not a power loss or OS crash.
// A server's group commit opens the file with `deferSync` (synchronous FULL only): a commit then returns once its
// frames are written to the WAL, and `syncCommitted` fsyncs the WAL file on libuv's thread pool and calls back;
// every transaction committed before the call is then as durable as a FULL commit (the kernel flushes the file's
// dirty pages whichever descriptor asks, and SQLite's recovery keeps every WAL frame up to the last valid
// commit). The server answers a batch only after that callback, and meanwhile the event loop applies and commits
// the next batch instead of waiting in the fsync: the commits are pipelined, their durability unchanged.
// A writable store keeps a row cache (sqliteLedgerStoreCache.ts) inside its transactions: every row read or
// written there is remembered, so a request reads each row once, and the accounts stay cached across
// transactions for as long as `PRAGMA data_version` says no other connection wrote the file. A nested
// `transaction` (a request inside a batch, a ledger operation inside a request) opens no savepoint: the cache
// journals the row each of its writes overwrote (reading it first when unknown), and if it throws those rows are
// written back, which leaves the file and the cache as a savepoint's rollback would, so a refused request rolls
// back only itself. Writes go to SQLite before the cache, so SQLite is always the truth. Rows keep their
// insertion order (rowid tables, read back `ORDER BY rowid`), so iterations come out in the order the in-memory
// store gives. Records handed out are frozen, as the in-memory store's are.
// The file's layout and opening are in sqliteLedgerSchema.ts, the rows in sqliteLedgerRows.ts, the SQL in
// sqliteLedgerStatements.ts; this module is the store: its reads, writes and transactions.

import { closeSync, fsync, openSync } from 'node:fs';
import type Database from 'better-sqlite3';
import type { Account, Aggregate, Hold, LedgerStore, Posting, StoredResult, Transfer, VoidRecord } from '../../machines/domain/ledgerStore.ts';
import type { ServerResult } from '../../machines/messages.ts';
import { ABSENT, RowCache, type TableName } from './sqliteLedgerStoreCache.ts';
import { openLedgerDatabase, type SqliteLedgerStoreOptions } from './sqliteLedgerSchema.ts';
import {
  accountRow, aggregateRow, holdRow, pairKey, postingRow, toAccount, toAggregate, toHold, toPosting, toTransfer, toVoid, transferRow,
  type CachedResult, type VoidRow,
} from './sqliteLedgerRows.ts';
import { prepareStatements, restoreRow, type LedgerStatements } from './sqliteLedgerStatements.ts';

export { LedgerFileError, SCHEMA_VERSION, type SqliteLedgerStoreOptions, type SynchronousMode } from './sqliteLedgerSchema.ts';

/** As in the in-memory store: an async function would commit before its work is done, so it is refused. */
function synchronousResult<T>(result: T): T {
  if (typeof (result as { then?: unknown } | null)?.then === 'function') {
    throw new Error('LedgerStore.transaction: the function must be synchronous');
  }
  return result;
}

export class SqliteLedgerStore implements LedgerStore {
  readonly db: Database.Database;
  readonly path: string;
  private readonly stmt: LedgerStatements;
  private readonly runInTransaction: <T>(fn: () => T) => T;
  /** The row cache of a writable store (none for a reader, which must see another connection's commits). */
  private readonly cache: RowCache | undefined;
  /** `PRAGMA data_version` when the last outermost transaction began; another connection's commit changes it. */
  private dataVersion: number | undefined;
  /** Set when a nested transaction could not be undone: the open transaction must roll back whole. */
  private unusable: Error | undefined;
  /** Commits are made durable by `syncCommitted`, not by SQLite (see the header). */
  readonly defersSync: boolean;
  /** The WAL file, opened at the first `syncCommitted`, for its fsync. */
  private walFd: number | undefined;

  constructor(path: string, options: SqliteLedgerStoreOptions = {}) {
    this.path = path;
    const readonly = options.readonly ?? false;
    this.db = openLedgerDatabase(path, options);
    this.defersSync = !readonly && (options.synchronous ?? 'full') === 'full' && options.deferSync === true;
    this.cache = readonly ? undefined : new RowCache();
    this.stmt = prepareStatements(this.db);
    // One wrapper made once; better-sqlite3 begins a transaction, or a savepoint when one is open already.
    this.runInTransaction = this.db.transaction(<T>(fn: () => T): T => synchronousResult(fn())) as <T>(fn: () => T) => T;
  }

  getAccount(id: string): Account | undefined {
    return this.read('accounts', id, () => this.loadAccount(id));
  }
  putAccount(account: Account): void {
    const id = account.id;
    const known = this.beforeWrite('accounts', id, () => this.loadAccount(id));
    const row = accountRow(account);
    if (known === undefined || known === ABSENT || this.stmt.updateAccount.run(row[1], row[2], row[3], row[4], row[5], id).changes !== 1) {
      this.stmt.putAccount.run(...row);
    }
    this.wrote('accounts', id, toAccount(row));
  }
  getTransfer(id: string): Transfer | undefined {
    return this.read('transfers', id, () => this.loadTransfer(id));
  }
  putTransfer(transfer: Transfer): void {
    this.beforeWrite('transfers', transfer.id, () => this.loadTransfer(transfer.id));
    const row = transferRow(transfer);
    this.stmt.putTransfer.run(...row);
    this.wrote('transfers', transfer.id, toTransfer(row));
  }
  getHold(txId: string): Hold | undefined {
    return this.read('holds', txId, () => this.loadHold(txId));
  }
  putHold(hold: Hold): void {
    this.beforeWrite('holds', hold.txId, () => this.loadHold(hold.txId));
    const row = holdRow(hold);
    this.stmt.putHold.run(...row);
    this.wrote('holds', hold.txId, toHold(row));
  }
  getPosting(txId: string): Posting | undefined {
    return this.read('postings', txId, () => this.loadPosting(txId));
  }
  putPosting(posting: Posting): void {
    this.beforeWrite('postings', posting.txId, () => this.loadPosting(posting.txId));
    const row = postingRow(posting);
    this.stmt.putPosting.run(...row);
    this.wrote('postings', posting.txId, toPosting(row));
  }
  getAggregate(id: string): Aggregate | undefined {
    return this.read('aggregates', id, () => this.loadAggregate(id));
  }
  putAggregate(aggregate: Aggregate): void {
    this.beforeWrite('aggregates', aggregate.id, () => this.loadAggregate(aggregate.id));
    const row = aggregateRow(aggregate);
    this.stmt.putAggregate.run(...row);
    this.wrote('aggregates', aggregate.id, toAggregate(row));
  }
  getVoid(proxyId: string, txId: string): VoidRecord | undefined {
    return this.read('voids', pairKey(proxyId, txId), () => this.loadVoid(proxyId, txId));
  }
  putVoid(record: VoidRecord): void {
    const key = pairKey(record.proxyId, record.txId);
    this.beforeWrite('voids', key, () => this.loadVoid(record.proxyId, record.txId));
    const row: VoidRow = [record.proxyId, record.txId, record.requestId];
    this.stmt.putVoid.run(...row);
    this.wrote('voids', key, toVoid(row));
  }
  getCounterUse(proxyId: string, counter: number): string | undefined {
    return this.read('counters', pairKey(proxyId, counter), () => this.stmt.getCounterUse.get(proxyId, counter));
  }
  putCounterUse(proxyId: string, counter: number, txId: string): void {
    const key = pairKey(proxyId, counter);
    this.beforeWrite('counters', key, () => this.stmt.getCounterUse.get(proxyId, counter));
    this.stmt.putCounterUse.run(proxyId, counter, txId);
    this.wrote('counters', key, txId);
  }
  getResult(from: string, reqId: string): StoredResult | undefined {
    const cached = this.read('results', pairKey(from, reqId), () => this.loadResult(from, reqId));
    return cached && { fingerprint: cached.fingerprint, result: JSON.parse(cached.json) as ServerResult };
  }
  putResult(from: string, reqId: string, stored: StoredResult): void {
    const key = pairKey(from, reqId);
    this.beforeWrite('results', key, () => this.loadResult(from, reqId));
    const json = JSON.stringify(stored.result);
    this.stmt.putResult.run(from, reqId, stored.fingerprint, json);
    this.wrote('results', key, { fingerprint: stored.fingerprint, json } satisfies CachedResult);
  }

  /**
   * Runs `fn` all-or-nothing. The outermost call is one SQLite transaction (BEGIN … COMMIT, or ROLLBACK when `fn`
   * throws). A nested call opens no savepoint: the row cache journals what each of its writes overwrote, and if
   * it throws those rows are written back (see `undoNested`), which leaves the file as a savepoint's rollback
   * would, for less work on the path taken by almost every request, the one that does not fail. A reader, or a
   * connection someone else put in a transaction, gets better-sqlite3's own transactions and savepoints.
   */
  transaction<T>(fn: () => T): T {
    const cache = this.cache;
    if (!cache || (cache.depth === 0 && this.db.inTransaction)) return this.runInTransaction(fn);
    return cache.depth === 0 ? this.outermostTransaction(cache, fn) : this.nestedTransaction(cache, fn);
  }

  private outermostTransaction<T>(cache: RowCache, fn: () => T): T {
    this.stmt.begin.run();
    cache.begin();
    let result: T;
    try {
      this.checkDataVersion();
      result = synchronousResult(fn());
      // A nested transaction that could not be undone leaves the file in no state worth committing.
      if (this.unusable) throw this.unusable;
      this.stmt.commit.run();
    } catch (error) {
      try {
        if (this.db.inTransaction) this.stmt.rollback.run();
      } finally {
        this.unusable = undefined;
        cache.rollback();
      }
      throw error;
    }
    cache.commit();
    return result;
  }

  private nestedTransaction<T>(cache: RowCache, fn: () => T): T {
    cache.begin();
    let result: T;
    try {
      result = synchronousResult(fn());
    } catch (error) {
      this.undoNested(cache);
      throw error;
    }
    cache.commit();
    return result;
  }

  /**
   * Undoes a nested transaction that threw: each row it wrote goes back to what it was before (written again, or
   * deleted when it did not exist), in SQLite, inside the open transaction; then the cache forgets the frame.
   * If SQLite itself abandoned the transaction (some I/O errors roll it back whole), or an undo write fails, the
   * transaction can no longer commit: every later write and the outermost commit throw, so the outermost call
   * rolls it all back and the caller answers nothing of it.
   */
  private undoNested(cache: RowCache): void {
    if (!this.db.inTransaction) {
      cache.rollback();
      cache.reset();
      this.unusable ??= new Error('LedgerStore.transaction: SQLite rolled the transaction back by itself; it cannot go on');
      return;
    }
    try {
      for (const [table, key, before] of cache.undoEntries()) restoreRow(this.stmt, table, key, before);
    } catch (error) {
      cache.rollback();
      cache.reset();
      this.unusable ??= error instanceof Error ? error : new Error(String(error));
      throw error;
    }
    cache.rollback();
  }

  /**
   * The accounts cached from earlier transactions are SQLite's rows only if no other connection wrote the file
   * since: `data_version` changes exactly then. Read first thing inside the transaction, so it speaks for the
   * snapshot every read of this transaction sees.
   */
  private checkDataVersion(): void {
    const version = this.stmt.dataVersion.get();
    if (version !== this.dataVersion) {
      this.cache?.clearPersistent();
      this.dataVersion = version;
    }
  }

  /** A point read: from the cache inside a transaction (a miss is read from SQLite and remembered), else from SQLite. */
  private read<V>(table: TableName, key: string, load: () => V | undefined): V | undefined {
    const cache = this.cache;
    if (!cache?.active) return load();
    const hit = cache.get(table, key);
    if (hit !== undefined) return hit === ABSENT ? undefined : (hit as V);
    const value = load();
    cache.remember(table, key, value === undefined ? ABSENT : value);
    return value;
  }

  /**
   * Before a write: refuses it when the transaction can no longer commit, and inside a nested transaction makes
   * sure the cache knows the row it overwrites (reading it when not), so the write can be undone. Returns what
   * the cache knows of the row (undefined outside a transaction).
   */
  private beforeWrite(table: TableName, key: string, load: () => unknown): unknown {
    if (this.unusable) throw this.unusable;
    const cache = this.cache;
    if (!cache?.active) return undefined;
    let known = cache.get(table, key);
    if (known === undefined && cache.depth > 1) {
      known = load() ?? ABSENT;
      cache.remember(table, key, known);
    }
    return known;
  }

  /** After a write to SQLite succeeded: inside a transaction the cache takes the row (journaled), outside it forgets the key. */
  private wrote(table: TableName, key: string, value: unknown): void {
    const cache = this.cache;
    if (!cache) return;
    if (cache.active) cache.write(table, key, value);
    else if (cache.depth === 0) cache.forget(table, key);
  }

  private loadAccount(id: string): Account | undefined {
    const row = this.stmt.getAccount.get(id);
    return row && toAccount(row);
  }
  private loadTransfer(id: string): Transfer | undefined {
    const row = this.stmt.getTransfer.get(id);
    return row && toTransfer(row);
  }
  private loadHold(txId: string): Hold | undefined {
    const row = this.stmt.getHold.get(txId);
    return row && toHold(row);
  }
  private loadPosting(txId: string): Posting | undefined {
    const row = this.stmt.getPosting.get(txId);
    return row && toPosting(row);
  }
  private loadAggregate(id: string): Aggregate | undefined {
    const row = this.stmt.getAggregate.get(id);
    return row && toAggregate(row);
  }
  private loadVoid(proxyId: string, txId: string): VoidRecord | undefined {
    const row = this.stmt.getVoid.get(proxyId, txId);
    return row && toVoid(row);
  }
  private loadResult(from: string, reqId: string): CachedResult | undefined {
    const row = this.stmt.getResult.get(from, reqId);
    return row && { fingerprint: row[0], json: row[1] };
  }

  allAccounts() {
    return this.stmt.allAccounts.all().map(toAccount);
  }
  allPostings() {
    return this.stmt.allPostings.all().map(toPosting);
  }
  allAggregates() {
    return this.stmt.allAggregates.all().map(toAggregate);
  }
  allVoids() {
    return this.stmt.allVoids.all().map(toVoid);
  }
  externalTransfers() {
    return this.stmt.externalTransfers.all().map(toTransfer);
  }
  topUpTransfers() {
    return this.stmt.topUpTransfers.all().map(toTransfer);
  }

  /** [INV-3 conservation] in one query, for checkers of a large ledger. */
  sumOfBalancesMinor(): number {
    return this.stmt.sumOfBalances.get() ?? 0;
  }

  /**
   * Requests this server has answered and stored the answer of (one row per sender and reqId): a resent request
   * answered from its stored answer is not counted again, nor is a request refused before its signature
   * verified (those store nothing). A harness reading the file during a run gets requests per interval by
   * difference.
   */
  answeredRequests(): number {
    return this.stmt.countResults.get() ?? 0;
  }

  /** Facts about the file itself (which shards it serves, for instance), outside the ledger's records. */
  getMeta(key: string): string | undefined {
    return this.read('meta', key, () => this.stmt.getMeta.get(key));
  }
  putMeta(key: string, value: string): void {
    this.beforeWrite('meta', key, () => this.stmt.getMeta.get(key));
    this.stmt.putMeta.run(key, value);
    this.wrote('meta', key, value);
  }

  /**
   * Calls `done` once every transaction committed before this call is on disk: at once when SQLite synced each
   * commit itself, else after an fsync of the WAL file that runs off the event loop (see the header). An error
   * means those commits may not be durable: nothing committed since the last success may be answered.
   */
  syncCommitted(done: (error: Error | null) => void): void {
    if (!this.defersSync) return done(null);
    try {
      // SQLite keeps the WAL file while the connection is open (it truncates it, never deletes it, until close).
      this.walFd ??= openSync(`${this.path}-wal`, 'r');
    } catch (error) {
      return done(error as Error);
    }
    fsync(this.walFd, done);
  }

  /** Checkpoints the WAL into the main file (when writable) and closes; the store is unusable afterwards. */
  close(): void {
    if (!this.db.open) return;
    if (!this.db.readonly) this.db.pragma('wal_checkpoint(TRUNCATE)');
    this.db.close();
    if (this.walFd !== undefined) closeSync(this.walFd);
    this.walFd = undefined;
  }
}
