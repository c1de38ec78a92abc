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
// A writable store keeps a row cache (sqliteLedgerStoreCache.ts) inside its transactions: every row read or
// written there is remembered, so a request reads each row once, and the accounts stay cached across
// transactions for as long as `PRAGMA data_version` says no other connection wrote the file. A nested
// `transaction` (a request inside a batch, a ledger operation inside a request) opens no savepoint: the cache
// journals the row each of its writes overwrote (reading it first when unknown), and if it throws those rows are
// written back, which leaves the file and the cache as a savepoint's rollback would, so a refused request rolls
// back only itself. Writes go to SQLite before the cache, so SQLite is always the truth. Rows keep their
// insertion order (rowid tables, read back `ORDER BY rowid`), so iterations come out in the order the in-memory
// store gives. Records handed out are frozen, as the in-memory store's are.

import Database from 'better-sqlite3';
import type { Account, AccountKind, Aggregate, Hold, HoldState, LedgerStore, Posting, PostingVia, StoredResult, Transfer, VoidRecord } from '../../machines/domain/ledgerStore.ts';
import type { ServerResult } from '../../machines/messages.ts';
import { ABSENT, RowCache, UNCACHED, type TableName } from './sqliteLedgerStoreCache.ts';

/** Version of the table layout below, kept in SQLite's `user_version`. */
export const SCHEMA_VERSION = 1;

export type SynchronousMode = 'full' | 'normal';

export interface SqliteLedgerStoreOptions {
  /** Open an existing file for reading only (a checker reading a stopped server's ledger). */
  readonly?: boolean;
  /** See the header: 'full' (default) survives power loss, 'normal' survives a killed process only. */
  synchronous?: SynchronousMode;
}

/** A problem with the ledger file itself (missing, not a payfleet ledger, another schema version). */
export class LedgerFileError extends Error {
  constructor(
    readonly code: 'noSuchFile' | 'notALedger' | 'schemaVersion' | 'cannotOpen',
    message: string,
    readonly value: unknown,
  ) {
    super(message);
    this.name = 'LedgerFileError';
  }
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS accounts (
  id TEXT PRIMARY KEY, kind TEXT NOT NULL, balance_minor INTEGER NOT NULL, credit_limit_minor INTEGER NOT NULL,
  held_minor INTEGER NOT NULL, version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS transfers (
  id TEXT PRIMARY KEY, debit_account TEXT NOT NULL, credit_account TEXT NOT NULL, amount_minor INTEGER NOT NULL,
  fingerprint TEXT NOT NULL, note TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS holds (
  tx_id TEXT PRIMARY KEY, means_id TEXT NOT NULL, payee TEXT NOT NULL, amount_minor INTEGER NOT NULL,
  proxy_id TEXT NOT NULL, state TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS postings (
  tx_id TEXT PRIMARY KEY, means_id TEXT NOT NULL, payee TEXT NOT NULL, amount_minor INTEGER, via TEXT NOT NULL,
  request_id TEXT NOT NULL, aggregate_id TEXT, proxy_id TEXT, reversed_by TEXT);
CREATE TABLE IF NOT EXISTS aggregates (
  id TEXT PRIMARY KEY, means_id TEXT NOT NULL, payee TEXT NOT NULL, sum_minor INTEGER NOT NULL,
  tx_ids TEXT NOT NULL, posted_minor INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS voids (
  proxy_id TEXT NOT NULL, tx_id TEXT NOT NULL, request_id TEXT NOT NULL, PRIMARY KEY (proxy_id, tx_id));
CREATE TABLE IF NOT EXISTS counter_uses (
  proxy_id TEXT NOT NULL, counter INTEGER NOT NULL, tx_id TEXT NOT NULL, PRIMARY KEY (proxy_id, counter));
CREATE TABLE IF NOT EXISTS results (
  sender TEXT NOT NULL, req_id TEXT NOT NULL, fingerprint TEXT NOT NULL, result TEXT NOT NULL,
  PRIMARY KEY (sender, req_id));
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
`;

// Rows are read in raw mode (arrays, columns in the order each SELECT names them), which spares better-sqlite3
// building an object per row; these build the frozen records from them.
type AccountRow = [id: string, kind: string, balanceMinor: number, creditLimitMinor: number, heldMinor: number, version: number];
type TransferRow = [id: string, debitAccount: string, creditAccount: string, amountMinor: number, fingerprint: string, note: string];
type HoldRow = [txId: string, meansId: string, payee: string, amountMinor: number, proxyId: string, state: string];
type PostingRow = [
  txId: string, meansId: string, payee: string, amountMinor: number | null, via: string, requestId: string,
  aggregateId: string | null, proxyId: string | null, reversedBy: string | null,
];
type AggregateRow = [id: string, meansId: string, payee: string, sumMinor: number, txIds: string, postedMinor: number];
type VoidRow = [proxyId: string, txId: string, requestId: string];
type ResultRow = [fingerprint: string, result: string];

const ACCOUNT_COLUMNS = 'id, kind, balance_minor, credit_limit_minor, held_minor, version';
const TRANSFER_COLUMNS = 'id, debit_account, credit_account, amount_minor, fingerprint, note';
const HOLD_COLUMNS = 'tx_id, means_id, payee, amount_minor, proxy_id, state';
const POSTING_COLUMNS = 'tx_id, means_id, payee, amount_minor, via, request_id, aggregate_id, proxy_id, reversed_by';
const AGGREGATE_COLUMNS = 'id, means_id, payee, sum_minor, tx_ids, posted_minor';
const VOID_COLUMNS = 'proxy_id, tx_id, request_id';

const toAccount = (r: AccountRow): Account =>
  Object.freeze({ id: r[0], kind: r[1] as AccountKind, balanceMinor: r[2], creditLimitMinor: r[3], heldMinor: r[4], version: r[5] });
const toTransfer = (r: TransferRow): Transfer =>
  Object.freeze({ id: r[0], debitAccount: r[1], creditAccount: r[2], amountMinor: r[3], fingerprint: r[4], note: r[5] });
const toHold = (r: HoldRow): Hold =>
  Object.freeze({ txId: r[0], meansId: r[1], payee: r[2], amountMinor: r[3], proxyId: r[4], state: r[5] as HoldState });
const toVoid = (r: VoidRow): VoidRecord => Object.freeze({ proxyId: r[0], txId: r[1], requestId: r[2] });
const toAggregate = (r: AggregateRow): Aggregate =>
  Object.freeze({ id: r[0], meansId: r[1], payee: r[2], sumMinor: r[3], txIds: Object.freeze(JSON.parse(r[4]) as string[]), postedMinor: r[5] });

/** Optional fields absent in the record stay absent (not `undefined`), as they are in the in-memory store. */
function toPosting(r: PostingRow): Posting {
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
const accountRow = (a: Account): AccountRow => [a.id, a.kind, a.balanceMinor, a.creditLimitMinor, a.heldMinor, a.version];
const transferRow = (t: Transfer): TransferRow => [t.id, t.debitAccount, t.creditAccount, t.amountMinor, t.fingerprint, t.note];
const holdRow = (h: Hold): HoldRow => [h.txId, h.meansId, h.payee, h.amountMinor, h.proxyId, h.state];
const postingRow = (p: Posting): PostingRow => [
  p.txId, p.meansId, p.payee, p.amountMinor, p.via, p.requestId, p.aggregateId ?? null, p.proxyId ?? null, p.reversedBy ?? null,
];

const aggregateRow = (a: Aggregate): AggregateRow => [a.id, a.meansId, a.payee, a.sumMinor, JSON.stringify(a.txIds), a.postedMinor];

/** A cache key for a pair of ids that no other pair shares (the first id's length tells where it ends). */
const pairKey = (a: string, b: string | number): string => `${a.length}:${a}${b}`;
function splitPairKey(key: string): [string, string] {
  const colon = key.indexOf(':');
  const end = colon + 1 + Number(key.slice(0, colon));
  return [key.slice(colon + 1, end), key.slice(end)];
}

/** As in the in-memory store: an async function would commit before its work is done, so it is refused. */
function synchronousResult<T>(result: T): T {
  if (typeof (result as { then?: unknown } | null)?.then === 'function') {
    throw new Error('LedgerStore.transaction: the function must be synchronous');
  }
  return result;
}

/** What the cache keeps of a stored answer: the text, parsed afresh for each reader as a read from SQLite is. */
interface CachedResult { fingerprint: string; json: string }

function openDatabase(path: string, readonly: boolean): Database.Database {
  try {
    return new Database(path, { readonly, fileMustExist: readonly });
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (readonly && (code === 'SQLITE_CANTOPEN' || /does not exist/.test((error as Error).message))) {
      throw new LedgerFileError('noSuchFile', `ledger file ${path} does not exist`, path);
    }
    throw new LedgerFileError('cannotOpen', `cannot open ledger file ${path}: ${(error as Error).message}`, path);
  }
}

export class SqliteLedgerStore implements LedgerStore {
  readonly db: Database.Database;
  readonly path: string;
  private readonly stmt;
  private readonly runInTransaction: <T>(fn: () => T) => T;
  /** The row cache of a writable store (none for a reader, which must see another connection's commits). */
  private readonly cache: RowCache | undefined;
  /** `PRAGMA data_version` when the last outermost transaction began; another connection's commit changes it. */
  private dataVersion: number | undefined;
  /** Set when a nested transaction could not be undone: the open transaction must roll back whole. */
  private unusable: Error | undefined;

  constructor(path: string, options: SqliteLedgerStoreOptions = {}) {
    this.path = path;
    const readonly = options.readonly ?? false;
    this.db = openDatabase(path, readonly);
    try {
      this.db.pragma('busy_timeout = 5000');
      if (readonly) {
        this.checkSchema();
      } else {
        // WAL: a commit appends to the log, readers (a checker) never block the writer, and a torn write at a
        // crash is a log tail SQLite ignores on reopening.
        this.db.pragma('journal_mode = WAL');
        this.db.pragma(`synchronous = ${(options.synchronous ?? 'full').toUpperCase()}`);
        this.createSchema();
      }
    } catch (error) {
      this.db.close();
      if (error instanceof LedgerFileError) throw error;
      const code = (error as { code?: string }).code;
      if (code === 'SQLITE_NOTADB') throw new LedgerFileError('notALedger', `${path} is not a SQLite file, so not a payfleet ledger`, path);
      throw new LedgerFileError('cannotOpen', `cannot open ledger file ${path}: ${(error as Error).message}`, path);
    }
    this.cache = readonly ? undefined : new RowCache();
    const db = this.db;
    // Positional parameters: binding from an array is cheaper than looking each named one up on an object.
    const upsert = (table: string, columns: string, key: string) => {
      const names = columns.split(', ');
      const sets = names.filter((n) => !key.split(', ').includes(n)).map((n) => `${n} = excluded.${n}`).join(', ');
      return `INSERT INTO ${table} (${columns}) VALUES (${names.map(() => '?').join(', ')}) ON CONFLICT (${key}) DO UPDATE SET ${sets}`;
    };
    this.stmt = {
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
    // One wrapper made once; better-sqlite3 begins a transaction, or a savepoint when one is open already.
    this.runInTransaction = db.transaction(<T>(fn: () => T): T => synchronousResult(fn())) as <T>(fn: () => T) => T;
  }

  private createSchema(): void {
    const version = this.db.pragma('user_version', { simple: true }) as number;
    if (version !== 0 && version !== SCHEMA_VERSION) {
      throw new LedgerFileError('schemaVersion', `ledger file ${this.path} has schema version ${version}, this payfleet reads ${SCHEMA_VERSION}`, version);
    }
    if (version === 0) {
      // A new file, or someone else's database: payfleet creates its tables only in an empty one.
      const tables = this.db.prepare<[], { n: number }>("SELECT COUNT(*) AS n FROM sqlite_schema WHERE type = 'table'").get()?.n ?? 0;
      if (tables > 0) throw new LedgerFileError('notALedger', `${this.path} holds other tables and is not a payfleet ledger file`, this.path);
    }
    this.db.transaction(() => {
      this.db.exec(SCHEMA);
      this.db.pragma(`user_version = ${SCHEMA_VERSION}`);
    })();
  }

  private checkSchema(): void {
    const version = this.db.pragma('user_version', { simple: true }) as number;
    if (version === 0) throw new LedgerFileError('notALedger', `${this.path} is not a payfleet ledger file (no schema)`, this.path);
    if (version !== SCHEMA_VERSION) {
      throw new LedgerFileError('schemaVersion', `ledger file ${this.path} has schema version ${version}, this payfleet reads ${SCHEMA_VERSION}`, version);
    }
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
      for (const [table, key, before] of cache.undoEntries()) this.restore(table, key, before);
    } catch (error) {
      cache.rollback();
      cache.reset();
      this.unusable ??= error instanceof Error ? error : new Error(String(error));
      throw error;
    }
    cache.rollback();
  }

  /** Puts one row back as it was before a nested transaction wrote it: `before` is the row, or ABSENT. */
  private restore(table: TableName, key: string, before: unknown): void {
    if (before === UNCACHED) throw new Error(`LedgerStore.transaction: no earlier value of ${table} ${key} to undo a nested transaction with`);
    const absent = before === ABSENT;
    switch (table) {
      case 'accounts':
        if (absent) this.stmt.deleteAccount.run(key);
        else this.stmt.putAccount.run(...accountRow(before as Account));
        return;
      case 'transfers':
        if (absent) this.stmt.deleteTransfer.run(key);
        else this.stmt.putTransfer.run(...transferRow(before as Transfer));
        return;
      case 'holds':
        if (absent) this.stmt.deleteHold.run(key);
        else this.stmt.putHold.run(...holdRow(before as Hold));
        return;
      case 'postings':
        if (absent) this.stmt.deletePosting.run(key);
        else this.stmt.putPosting.run(...postingRow(before as Posting));
        return;
      case 'aggregates':
        if (absent) this.stmt.deleteAggregate.run(key);
        else this.stmt.putAggregate.run(...aggregateRow(before as Aggregate));
        return;
      case 'voids': {
        const [proxyId, txId] = splitPairKey(key);
        if (absent) this.stmt.deleteVoid.run(proxyId, txId);
        else this.stmt.putVoid.run(proxyId, txId, (before as VoidRecord).requestId);
        return;
      }
      case 'counters': {
        const [proxyId, counter] = splitPairKey(key);
        if (absent) this.stmt.deleteCounterUse.run(proxyId, Number(counter));
        else this.stmt.putCounterUse.run(proxyId, Number(counter), before as string);
        return;
      }
      case 'results': {
        const [from, reqId] = splitPairKey(key);
        if (absent) this.stmt.deleteResult.run(from, reqId);
        else this.stmt.putResult.run(from, reqId, (before as CachedResult).fingerprint, (before as CachedResult).json);
        return;
      }
      case 'meta':
        if (absent) this.stmt.deleteMeta.run(key);
        else this.stmt.putMeta.run(key, before as string);
        return;
    }
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

  /** Checkpoints the WAL into the main file (when writable) and closes; the store is unusable afterwards. */
  close(): void {
    if (!this.db.open) return;
    if (!this.db.readonly) this.db.pragma('wal_checkpoint(TRUNCATE)');
    this.db.close();
  }
}
