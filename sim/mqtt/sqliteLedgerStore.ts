// Goal: the durable storage of a payment-server process in mqtt mode: the `LedgerStore` of
// machines/domain/ledgerStore.ts in one SQLite file, so that a server killed with SIGKILL and restarted on the
// same file resumes with every committed transfer, posting and stored answer, and nothing half-written.
// Method: better-sqlite3 v12 (synchronous, like the interface), one table per record type keyed as the
// interface keys it, one prepared statement per method; `put` is an upsert. `transaction(fn)` is
// better-sqlite3's `db.transaction`, which commits when `fn` returns, rolls back when it throws, and turns a
// nested call into a savepoint. The file is in WAL mode with `synchronous = FULL` by default: every commit is
// fsynced before `transaction` returns, so an answer the server sends after it (handleRequest stores the
// answer inside the same transaction) survives a power loss as well as a killed process [INV-4 nothing lost].
// `synchronous = NORMAL` is offered for load runs: in WAL mode it still survives a killed process (the write is
// in the WAL, which the OS keeps), but not a power loss or OS crash. Rows keep their insertion order (rowid
// tables, read back `ORDER BY rowid`), so iterations come out in the order the in-memory store gives. Records
// handed out are frozen copies, as the in-memory store's are.

import Database from 'better-sqlite3';
import type { Account, AccountKind, Aggregate, Hold, HoldState, LedgerStore, Posting, PostingVia, StoredResult, Transfer, VoidRecord } from '../../machines/domain/ledgerStore.ts';
import type { ServerResult } from '../../machines/messages.ts';

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

interface AccountRow { id: string; kind: string; balance_minor: number; credit_limit_minor: number; held_minor: number; version: number }
interface TransferRow { id: string; debit_account: string; credit_account: string; amount_minor: number; fingerprint: string; note: string }
interface HoldRow { tx_id: string; means_id: string; payee: string; amount_minor: number; proxy_id: string; state: string }
interface PostingRow {
  tx_id: string; means_id: string; payee: string; amount_minor: number | null; via: string; request_id: string;
  aggregate_id: string | null; proxy_id: string | null; reversed_by: string | null;
}
interface AggregateRow { id: string; means_id: string; payee: string; sum_minor: number; tx_ids: string; posted_minor: number }
interface VoidRow { proxy_id: string; tx_id: string; request_id: string }
interface ResultRow { fingerprint: string; result: string }

const toAccount = (r: AccountRow): Account =>
  Object.freeze({ id: r.id, kind: r.kind as AccountKind, balanceMinor: r.balance_minor, creditLimitMinor: r.credit_limit_minor, heldMinor: r.held_minor, version: r.version });
const toTransfer = (r: TransferRow): Transfer =>
  Object.freeze({ id: r.id, debitAccount: r.debit_account, creditAccount: r.credit_account, amountMinor: r.amount_minor, fingerprint: r.fingerprint, note: r.note });
const toHold = (r: HoldRow): Hold =>
  Object.freeze({ txId: r.tx_id, meansId: r.means_id, payee: r.payee, amountMinor: r.amount_minor, proxyId: r.proxy_id, state: r.state as HoldState });
const toVoid = (r: VoidRow): VoidRecord => Object.freeze({ proxyId: r.proxy_id, txId: r.tx_id, requestId: r.request_id });
const toAggregate = (r: AggregateRow): Aggregate =>
  Object.freeze({
    id: r.id, meansId: r.means_id, payee: r.payee, sumMinor: r.sum_minor,
    txIds: Object.freeze(JSON.parse(r.tx_ids) as string[]), postedMinor: r.posted_minor,
  });

/** Optional fields absent in the record stay absent (not `undefined`), as they are in the in-memory store. */
function toPosting(r: PostingRow): Posting {
  const posting: { -readonly [K in keyof Posting]: Posting[K] } = {
    txId: r.tx_id, meansId: r.means_id, payee: r.payee, amountMinor: r.amount_minor, via: r.via as PostingVia, requestId: r.request_id,
  };
  if (r.aggregate_id !== null) posting.aggregateId = r.aggregate_id;
  if (r.proxy_id !== null) posting.proxyId = r.proxy_id;
  if (r.reversed_by !== null) posting.reversedBy = r.reversed_by;
  return Object.freeze(posting);
}

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
    const db = this.db;
    this.stmt = {
      getAccount: db.prepare<[string], AccountRow>('SELECT * FROM accounts WHERE id = ?'),
      putAccount: db.prepare(
        `INSERT INTO accounts (id, kind, balance_minor, credit_limit_minor, held_minor, version) VALUES (@id, @kind, @balanceMinor, @creditLimitMinor, @heldMinor, @version)
         ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, balance_minor = excluded.balance_minor, credit_limit_minor = excluded.credit_limit_minor,
           held_minor = excluded.held_minor, version = excluded.version`,
      ),
      allAccounts: db.prepare<[], AccountRow>('SELECT * FROM accounts ORDER BY rowid'),
      getTransfer: db.prepare<[string], TransferRow>('SELECT * FROM transfers WHERE id = ?'),
      putTransfer: db.prepare(
        `INSERT INTO transfers (id, debit_account, credit_account, amount_minor, fingerprint, note) VALUES (@id, @debitAccount, @creditAccount, @amountMinor, @fingerprint, @note)
         ON CONFLICT (id) DO UPDATE SET debit_account = excluded.debit_account, credit_account = excluded.credit_account, amount_minor = excluded.amount_minor,
           fingerprint = excluded.fingerprint, note = excluded.note`,
      ),
      getHold: db.prepare<[string], HoldRow>('SELECT * FROM holds WHERE tx_id = ?'),
      putHold: db.prepare(
        `INSERT INTO holds (tx_id, means_id, payee, amount_minor, proxy_id, state) VALUES (@txId, @meansId, @payee, @amountMinor, @proxyId, @state)
         ON CONFLICT (tx_id) DO UPDATE SET means_id = excluded.means_id, payee = excluded.payee, amount_minor = excluded.amount_minor,
           proxy_id = excluded.proxy_id, state = excluded.state`,
      ),
      getPosting: db.prepare<[string], PostingRow>('SELECT * FROM postings WHERE tx_id = ?'),
      putPosting: db.prepare(
        `INSERT INTO postings (tx_id, means_id, payee, amount_minor, via, request_id, aggregate_id, proxy_id, reversed_by)
         VALUES (@txId, @meansId, @payee, @amountMinor, @via, @requestId, @aggregateId, @proxyId, @reversedBy)
         ON CONFLICT (tx_id) DO UPDATE SET means_id = excluded.means_id, payee = excluded.payee, amount_minor = excluded.amount_minor, via = excluded.via,
           request_id = excluded.request_id, aggregate_id = excluded.aggregate_id, proxy_id = excluded.proxy_id, reversed_by = excluded.reversed_by`,
      ),
      allPostings: db.prepare<[], PostingRow>('SELECT * FROM postings ORDER BY rowid'),
      getAggregate: db.prepare<[string], AggregateRow>('SELECT * FROM aggregates WHERE id = ?'),
      putAggregate: db.prepare(
        `INSERT INTO aggregates (id, means_id, payee, sum_minor, tx_ids, posted_minor) VALUES (@id, @meansId, @payee, @sumMinor, @txIds, @postedMinor)
         ON CONFLICT (id) DO UPDATE SET means_id = excluded.means_id, payee = excluded.payee, sum_minor = excluded.sum_minor,
           tx_ids = excluded.tx_ids, posted_minor = excluded.posted_minor`,
      ),
      allAggregates: db.prepare<[], AggregateRow>('SELECT * FROM aggregates ORDER BY rowid'),
      getVoid: db.prepare<[string, string], VoidRow>('SELECT * FROM voids WHERE proxy_id = ? AND tx_id = ?'),
      putVoid: db.prepare(
        `INSERT INTO voids (proxy_id, tx_id, request_id) VALUES (@proxyId, @txId, @requestId)
         ON CONFLICT (proxy_id, tx_id) DO UPDATE SET request_id = excluded.request_id`,
      ),
      allVoids: db.prepare<[], VoidRow>('SELECT * FROM voids ORDER BY rowid'),
      getCounterUse: db.prepare<[string, number], { tx_id: string }>('SELECT tx_id FROM counter_uses WHERE proxy_id = ? AND counter = ?'),
      putCounterUse: db.prepare<[string, number, string]>(
        'INSERT INTO counter_uses (proxy_id, counter, tx_id) VALUES (?, ?, ?) ON CONFLICT (proxy_id, counter) DO UPDATE SET tx_id = excluded.tx_id',
      ),
      getResult: db.prepare<[string, string], ResultRow>('SELECT fingerprint, result FROM results WHERE sender = ? AND req_id = ?'),
      putResult: db.prepare<[string, string, string, string]>(
        'INSERT INTO results (sender, req_id, fingerprint, result) VALUES (?, ?, ?, ?) ON CONFLICT (sender, req_id) DO UPDATE SET fingerprint = excluded.fingerprint, result = excluded.result',
      ),
      getMeta: db.prepare<[string], { value: string }>('SELECT value FROM meta WHERE key = ?'),
      putMeta: db.prepare<[string, string]>('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value'),
      sumOfBalances: db.prepare<[], { total: number | null }>('SELECT SUM(balance_minor) AS total FROM accounts'),
      countResults: db.prepare<[], { n: number }>('SELECT COUNT(*) AS n FROM results'),
    };
    // One wrapper made once; better-sqlite3 begins a transaction, or a savepoint when one is open already.
    this.runInTransaction = db.transaction(<T>(fn: () => T): T => {
      const result = fn();
      // As in the in-memory store: an async function would commit before its work is done, so it is refused
      // (the throw rolls back what it wrote before its first await).
      if (typeof (result as { then?: unknown } | null)?.then === 'function') {
        throw new Error('LedgerStore.transaction: the function must be synchronous');
      }
      return result;
    }) as <T>(fn: () => T) => T;
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

  getAccount(id: string) {
    const row = this.stmt.getAccount.get(id);
    return row && toAccount(row);
  }
  putAccount(account: Account) {
    this.stmt.putAccount.run(account);
  }
  getTransfer(id: string) {
    const row = this.stmt.getTransfer.get(id);
    return row && toTransfer(row);
  }
  putTransfer(transfer: Transfer) {
    this.stmt.putTransfer.run(transfer);
  }
  getHold(txId: string) {
    const row = this.stmt.getHold.get(txId);
    return row && toHold(row);
  }
  putHold(hold: Hold) {
    this.stmt.putHold.run(hold);
  }
  getPosting(txId: string) {
    const row = this.stmt.getPosting.get(txId);
    return row && toPosting(row);
  }
  putPosting(posting: Posting) {
    this.stmt.putPosting.run({ aggregateId: null, proxyId: null, reversedBy: null, ...withoutUndefined(posting) });
  }
  getAggregate(id: string) {
    const row = this.stmt.getAggregate.get(id);
    return row && toAggregate(row);
  }
  putAggregate(aggregate: Aggregate) {
    this.stmt.putAggregate.run({ ...aggregate, txIds: JSON.stringify(aggregate.txIds) });
  }
  getVoid(proxyId: string, txId: string) {
    const row = this.stmt.getVoid.get(proxyId, txId);
    return row && toVoid(row);
  }
  putVoid(record: VoidRecord) {
    this.stmt.putVoid.run(record);
  }
  getCounterUse(proxyId: string, counter: number) {
    return this.stmt.getCounterUse.get(proxyId, counter)?.tx_id;
  }
  putCounterUse(proxyId: string, counter: number, txId: string) {
    this.stmt.putCounterUse.run(proxyId, counter, txId);
  }
  getResult(from: string, reqId: string): StoredResult | undefined {
    const row = this.stmt.getResult.get(from, reqId);
    return row && { fingerprint: row.fingerprint, result: JSON.parse(row.result) as ServerResult };
  }
  putResult(from: string, reqId: string, stored: StoredResult) {
    this.stmt.putResult.run(from, reqId, stored.fingerprint, JSON.stringify(stored.result));
  }

  transaction<T>(fn: () => T): T {
    return this.runInTransaction(fn);
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
    return this.stmt.sumOfBalances.get()?.total ?? 0;
  }

  /**
   * Requests this server has answered and stored the answer of (one row per sender and reqId): a resent request
   * answered from its stored answer is not counted again, nor is a request refused before its signature
   * verified (those store nothing). A harness reading the file during a run gets requests per interval by
   * difference.
   */
  answeredRequests(): number {
    return this.stmt.countResults.get()?.n ?? 0;
  }

  /** Facts about the file itself (which shards it serves, for instance), outside the ledger's records. */
  getMeta(key: string): string | undefined {
    return this.stmt.getMeta.get(key)?.value;
  }
  putMeta(key: string, value: string): void {
    this.stmt.putMeta.run(key, value);
  }

  /** Checkpoints the WAL into the main file (when writable) and closes; the store is unusable afterwards. */
  close(): void {
    if (!this.db.open) return;
    if (!this.db.readonly) this.db.pragma('wal_checkpoint(TRUNCATE)');
    this.db.close();
  }
}

function withoutUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}
