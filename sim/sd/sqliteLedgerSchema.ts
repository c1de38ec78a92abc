// Goal: the SQLite ledger file itself: its table layout and version, how it is opened (journal, durability), and
// every way a file can be the wrong one, as a LedgerFileError that names it.
// Method: `openLedgerDatabase` opens the file with better-sqlite3; a writer puts it in WAL mode with the chosen
// `synchronous` and creates the tables in a new (empty) file, stamping SCHEMA_VERSION in `user_version`; a
// reader only checks that stamp. A file with other tables, another version, or no SQLite header is refused
// before any statement is prepared on it, so the store never reads or writes someone else's database.

import Database from 'better-sqlite3';

/** Version of the table layout below, kept in SQLite's `user_version`. */
export const SCHEMA_VERSION = 1;

export type SynchronousMode = 'full' | 'normal';

export interface SqliteLedgerStoreOptions {
  /** Open an existing file for reading only (a checker reading a stopped server's ledger). */
  readonly?: boolean;
  /** See the header: 'full' (default) survives power loss, 'normal' survives a killed process only. */
  synchronous?: SynchronousMode;
  /**
   * With synchronous 'full': commits return without their fsync, and the store's `syncCommitted` makes them
   * durable afterwards, off the event loop (sqliteLedgerStore.ts); its caller sends no answer before that.
   */
  deferSync?: boolean;
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

function openFile(path: string, readonly: boolean): Database.Database {
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

/**
 * Opens the ledger file at `path`: read-only (it must exist and be a ledger of this version), or writable in WAL
 * mode with the given durability (a new file gets the tables). Throws LedgerFileError naming the file.
 */
export function openLedgerDatabase(path: string, options: SqliteLedgerStoreOptions = {}): Database.Database {
  const readonly = options.readonly ?? false;
  const db = openFile(path, readonly);
  try {
    db.pragma('busy_timeout = 5000');
    if (readonly) {
      checkSchema(db, path);
    } else {
      // WAL: a commit appends to the log, readers (a checker) never block the writer, and a torn write at a
      // crash is a log tail SQLite ignores on reopening.
      db.pragma('journal_mode = WAL');
      // A deferred sync leaves the fsync of each commit to `syncCommitted`: SQLite itself syncs only at checkpoints.
      const mode = options.deferSync ? 'normal' : (options.synchronous ?? 'full');
      db.pragma(`synchronous = ${mode.toUpperCase()}`);
      createSchema(db, path);
    }
  } catch (error) {
    db.close();
    if (error instanceof LedgerFileError) throw error;
    const code = (error as { code?: string }).code;
    if (code === 'SQLITE_NOTADB') throw new LedgerFileError('notALedger', `${path} is not a SQLite file, so not a payfleet ledger`, path);
    throw new LedgerFileError('cannotOpen', `cannot open ledger file ${path}: ${(error as Error).message}`, path);
  }
  return db;
}

function createSchema(db: Database.Database, path: string): void {
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version !== 0 && version !== SCHEMA_VERSION) {
    throw new LedgerFileError('schemaVersion', `ledger file ${path} has schema version ${version}, this payfleet reads ${SCHEMA_VERSION}`, version);
  }
  if (version === 0) {
    // A new file, or someone else's database: payfleet creates its tables only in an empty one.
    const tables = db.prepare<[], { n: number }>("SELECT COUNT(*) AS n FROM sqlite_schema WHERE type = 'table'").get()?.n ?? 0;
    if (tables > 0) throw new LedgerFileError('notALedger', `${path} holds other tables and is not a payfleet ledger file`, path);
  }
  db.transaction(() => {
    db.exec(SCHEMA);
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
  })();
}

function checkSchema(db: Database.Database, path: string): void {
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version === 0) throw new LedgerFileError('notALedger', `${path} is not a payfleet ledger file (no schema)`, path);
  if (version !== SCHEMA_VERSION) {
    throw new LedgerFileError('schemaVersion', `ledger file ${path} has schema version ${version}, this payfleet reads ${SCHEMA_VERSION}`, version);
  }
}
