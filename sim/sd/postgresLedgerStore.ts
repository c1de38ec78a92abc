// Goal: the durable ledger of a payment server in PostgreSQL, the engine a real SD deployment would run: the
// `LedgerStore` of machines/domain/ledgerStore.ts with its guarantees made true — every write of a request
// committed before its answer leaves, group commit across the requests of a batch, the stored answers that make
// requests idempotent — so that a server killed (SIGKILL) or a database crashed (`pg_ctl stop -m immediate`)
// loses and doubles nothing.
// Method: the rules (serverRules.ts) are pure and synchronous over the store, and stay so: this store is an
// in-memory overlay over PostgreSQL. A read is answered from the overlay, or read from PostgreSQL once (one
// round trip through the synchronous connection of postgresConnection.ts) and remembered; a write goes to the
// overlay only, journaled per (nested) transaction so that a refused request undoes only its own writes. When
// the outermost transaction (a request, or with group commit a whole batch of requests) returns, the rows it
// changed — balances, postings, holds, stored answers — are upserted in ONE PostgreSQL transaction sent in one
// round trip, and `transaction` returns only after COMMIT has come back: the server sends its answers after
// that, so an answer that left is on disk [INV-4 nothing lost]. Why not an asynchronous store: the rules would
// have to become async, or a batch would have to know beforehand every row it reads (an aggregate reads the
// postings of all its txIds, a release its hold or posting), and a miss found halfway would mean running the
// batch again; a synchronous overlay that fetches a missing row on the spot keeps the rules and the group-commit
// code exactly as they run on SQLite, at the cost of blocking the process on a round trip, as better-sqlite3
// blocks it on a page read or an fsync. Why the overlay may remember rows across transactions: the server is
// the only writer of its ledger (an advisory lock held by its session says so), so what it wrote is what is
// there. If a commit fails (PostgreSQL unreachable past the deadline) its outcome is unknown: the batch is undone
// in the overlay, the overlay is forgotten whole (later reads come from PostgreSQL, the truth), the error goes up
// and no answer leaves; the senders resend and get, from the stored answers, whatever had been committed.
// One schema per server ledger (what one SQLite file is): the store interface has no shard in it, the float and
// loss accounts and the INV-3 conservation sum are per ledger, a server process is the single writer of exactly
// that set, and a run's ledgers are dropped or inspected schema by schema. The schema is made on first use, its
// version kept in meta.schemaVersion.

import { readFileSync } from 'node:fs';
import type { Account, Aggregate, Hold, LedgerStore, Posting, StoredResult, Transfer, VoidRecord } from '../../machines/domain/ledgerStore.ts';
import type { ServerResult } from '../../machines/messages.ts';
import { LedgerUnavailableError, redactUrl, SyncPostgresConnection } from './postgresConnection.ts';
import { LedgerFileError } from './sqliteLedgerStore.ts';
import { literal, pairKey, selectList, SPECS, TABLES, toPosting, type CachedResult, type Row, type TableName } from './postgresLedgerTables.ts';

export const POSTGRES_SCHEMA_VERSION = 1;
const SCHEMA_SQL = readFileSync(new URL('./postgresLedgerSchema.sql', import.meta.url), 'utf8');

export interface PostgresLedgerStoreOptions {
  /** The schema holding this ledger; default `payfleet`. Lower-case letters, digits and `_`. */
  schema?: string;
  /** Open an existing ledger for reading only (a checker), over a read-only session, without caching. */
  readonly?: boolean;
  /** `on` (default): COMMIT returns once the WAL is flushed. `off`: it returns before (a crash may lose the last commits). */
  synchronousCommit?: 'on' | 'off';
  /** How long a request waits for an unreachable PostgreSQL before it fails (default 30 s). */
  deadlineMs?: number;
  /**
   * A connection to share (tests open a ledger per test; one session serves them all, every table name being
   * schema-qualified). The store then leaves it open on `close`, and its own settings go unused.
   */
  connection?: SyncPostgresConnection;
}

/** `postgres://…?schema=NAME` → the URL without `schema`, and the schema (undefined when not given). */
export function splitLedgerUrl(url: string): { url: string; schema: string | undefined } {
  const parsed = new URL(url);
  const schema = parsed.searchParams.get('schema') ?? undefined;
  parsed.searchParams.delete('schema');
  return { url: parsed.toString(), schema };
}

export const isSchemaName = (name: string): boolean => /^[a-z_][a-z0-9_]{0,62}$/.test(name);

/** The first column of the first row (a count, a flag), or undefined when there is no row. */
const scalar = (rows: Row[]): unknown => rows[0]?.[0];

const ABSENT: unique symbol = Symbol('absent');
const UNKNOWN: unique symbol = Symbol('unknown');
interface UndoEntry { table: TableName; key: string; cacheBefore: unknown; dirtyBefore: unknown }
/** Dry runs of one prefetch at most (each after the first costs the rules' CPU again and one round trip). */
const PREFETCH_ROUNDS = 3;
/** Past this many remembered rows, a commit forgets all but the accounts (the rows every request reads). */
const CACHE_LIMIT = 200_000;

/** As in the in-memory store: an async function would commit before its work is done, so it is refused. */
function synchronousResult<T>(result: T): T {
  if (typeof (result as { then?: unknown } | null)?.then === 'function') throw new Error('LedgerStore.transaction: the function must be synchronous');
  return result;
}

export class PostgresLedgerStore implements LedgerStore {
  readonly schema: string;
  readonly readonly: boolean;
  readonly connection: SyncPostgresConnection;
  private readonly ownsConnection: boolean;
  private readonly pointSelect: Record<TableName, string>;
  private readonly cache = new Map<TableName, Map<string, unknown>>(TABLES.map((t) => [t, new Map()]));
  private readonly dirty = new Map<TableName, Map<string, unknown>>(TABLES.map((t) => [t, new Map()]));
  private readonly frames: Array<Map<string, UndoEntry>> = [];
  /** During a prefetch's dry run: the keys it read that the overlay did not hold. */
  private discovering: Map<TableName, Set<string>> | undefined;
  /** Commits sent, and the wall time they took (for the benchmark and the server's log). */
  readonly stats = { commits: 0, commitMs: 0 };

  constructor(readonly url: string, options: PostgresLedgerStoreOptions = {}) {
    this.schema = options.schema ?? 'payfleet';
    this.readonly = options.readonly ?? false;
    if (!isSchemaName(this.schema)) throw new LedgerFileError('cannotOpen', `schema name ${JSON.stringify(this.schema)}: expected lower-case letters, digits and _ (at most 63)`, this.schema);
    this.ownsConnection = options.connection === undefined;
    this.connection = options.connection ?? new SyncPostgresConnection(url, {
      readonly: this.readonly, deadlineMs: options.deadlineMs, settings: { synchronous_commit: options.synchronousCommit ?? 'on' },
    });
    this.pointSelect = Object.fromEntries(TABLES.map((t) => {
      const spec = SPECS[t];
      return [t, `SELECT ${selectList(spec)} FROM ${this.tableOf(t)} WHERE ${spec.keyColumns.map((c, i) => `${c} = $${i + 1}`).join(' AND ')}`];
    })) as Record<TableName, string>;
    try {
      this.openSchema();
    } catch (error) {
      if (this.ownsConnection) this.connection.close();
      if (error instanceof LedgerUnavailableError) throw new LedgerFileError('cannotOpen', `cannot open ledger schema ${this.schema} on ${redactUrl(url)}: ${error.message}`, url);
      throw error;
    }
  }

  /** The schema-qualified name of a table (the schema name is checked, so it needs no quoting). */
  private tableOf(table: TableName): string {
    return `${this.schema}.${SPECS[table].table}`;
  }

  private openSchema(): void {
    const where = `schema ${this.schema} on ${redactUrl(this.url)}`;
    if (!this.readonly) {
      // [INV-4] the overlay is the truth only if this session is the ledger's only writer.
      const locked = scalar(this.connection.query('SELECT pg_try_advisory_lock(hashtext($1))', [`payfleet-ledger:${this.schema}`]));
      if (locked !== true) throw new LedgerFileError('cannotOpen', `${where} is being written by another server (its advisory lock is held)`, this.schema);
    }
    const tables = Number(scalar(this.connection.query('SELECT count(*) FROM information_schema.tables WHERE table_schema = $1', [this.schema])));
    if (tables === 0) {
      if (this.readonly) throw new LedgerFileError('noSuchFile', `${where} holds no payfleet ledger`, this.schema);
      this.connection.script(`BEGIN; CREATE SCHEMA IF NOT EXISTS ${this.schema}; SET LOCAL search_path = ${this.schema};\n${SCHEMA_SQL}\n` +
        `INSERT INTO ${this.tableOf('meta')} (key, value) VALUES ('schemaVersion', '${POSTGRES_SCHEMA_VERSION}'); COMMIT;`);
      return;
    }
    const hasMeta = scalar(this.connection.query('SELECT to_regclass($1) IS NOT NULL', [`${this.schema}.meta`])) === true;
    const version = hasMeta ? scalar(this.connection.query(`SELECT value FROM ${this.tableOf('meta')} WHERE key = 'schemaVersion'`)) : undefined;
    if (version === undefined) throw new LedgerFileError('notALedger', `${where} holds other tables and is not a payfleet ledger`, this.schema);
    if (Number(version) !== POSTGRES_SCHEMA_VERSION) {
      throw new LedgerFileError('schemaVersion', `${where} has schema version ${version}, this payfleet reads ${POSTGRES_SCHEMA_VERSION}`, version);
    }
  }

  getAccount(id: string) { return this.read('accounts', id) as Account | undefined; }
  putAccount(account: Account) { this.write('accounts', account.id, SPECS.accounts.fromRow(SPECS.accounts.toRow(account, account.id))); }
  getTransfer(id: string) { return this.read('transfers', id) as Transfer | undefined; }
  putTransfer(transfer: Transfer) { this.write('transfers', transfer.id, SPECS.transfers.fromRow(SPECS.transfers.toRow(transfer, transfer.id))); }
  getHold(txId: string) { return this.read('holds', txId) as Hold | undefined; }
  putHold(hold: Hold) { this.write('holds', hold.txId, SPECS.holds.fromRow(SPECS.holds.toRow(hold, hold.txId))); }
  getPosting(txId: string) { return this.read('postings', txId) as Posting | undefined; }
  putPosting(posting: Posting) { this.write('postings', posting.txId, toPosting(SPECS.postings.toRow(posting, posting.txId))); }
  getAggregate(id: string) { return this.read('aggregates', id) as Aggregate | undefined; }
  putAggregate(aggregate: Aggregate) { this.write('aggregates', aggregate.id, SPECS.aggregates.fromRow(SPECS.aggregates.toRow(aggregate, aggregate.id))); }
  getVoid(proxyId: string, txId: string) { return this.read('voids', pairKey(proxyId, txId)) as VoidRecord | undefined; }
  putVoid(record: VoidRecord) { this.write('voids', pairKey(record.proxyId, record.txId), SPECS.voids.fromRow(SPECS.voids.toRow(record, ''))); }
  getCounterUse(proxyId: string, counter: number) { return this.read('counters', pairKey(proxyId, counter)) as string | undefined; }
  putCounterUse(proxyId: string, counter: number, txId: string) { this.write('counters', pairKey(proxyId, counter), txId); }
  /** Parsed afresh for each reader, so a caller cannot change the stored answer another reader gets. */
  getResult(from: string, reqId: string): StoredResult | undefined {
    const cached = this.read('results', pairKey(from, reqId)) as CachedResult | undefined;
    return cached && { fingerprint: cached.fingerprint, result: JSON.parse(cached.json) as ServerResult };
  }
  putResult(from: string, reqId: string, stored: StoredResult) {
    this.write('results', pairKey(from, reqId), { fingerprint: stored.fingerprint, json: JSON.stringify(stored.result) } satisfies CachedResult);
  }
  /** Facts about the ledger itself (which shards it serves), outside its records; as SqliteLedgerStore's. */
  getMeta(key: string) { return this.read('meta', key) as string | undefined; }
  putMeta(key: string, value: string) { this.write('meta', key, value); }

  allAccounts() { return this.all('accounts') as Account[]; }
  allPostings() { return this.all('postings') as Posting[]; }
  allAggregates() { return this.all('aggregates') as Aggregate[]; }
  allVoids() { return this.all('voids') as VoidRecord[]; }
  externalTransfers() { return (this.all('transfers') as Transfer[]).filter((t) => t.id.startsWith('ext:')); }
  topUpTransfers() { return (this.all('transfers') as Transfer[]).filter((t) => t.id.startsWith('top:')); }

  /** [INV-3 conservation] in one query, for checkers of a large ledger. */
  sumOfBalancesMinor(): number {
    if (this.dirty.get('accounts')!.size > 0) return this.allAccounts().reduce((sum, a) => sum + a.balanceMinor, 0);
    return Number(scalar(this.connection.query(`SELECT COALESCE(sum(balance_minor), 0)::bigint FROM ${this.tableOf('accounts')}`)));
  }

  /** Requests answered with a stored answer (one row per sender and reqId), as SqliteLedgerStore counts them. */
  answeredRequests(): number {
    return Number(scalar(this.connection.query(`SELECT count(*) FROM ${this.tableOf('results')}`))) + this.dirty.get('results')!.size;
  }

  /**
   * Runs `fn` all-or-nothing. Nested calls journal the overlay rows their writes replace and put them back if
   * `fn` throws. The outermost call then commits every changed row in one PostgreSQL transaction and returns only
   * once COMMIT has returned; if that fails, the overlay is undone and forgotten and the error rethrown.
   */
  transaction<T>(fn: () => T): T {
    const frame = new Map<string, UndoEntry>();
    this.frames.push(frame);
    let result: T;
    try {
      result = synchronousResult(fn());
    } catch (error) {
      this.frames.pop();
      this.undo(frame);
      throw error;
    }
    this.frames.pop();
    const outer = this.frames.at(-1);
    if (outer) {
      // A committed inner transaction hands its "before" values to the outer one, unless it has older ones.
      for (const [id, entry] of frame) if (!outer.has(id)) outer.set(id, entry);
      return result;
    }
    try {
      this.commit();
    } catch (error) {
      this.undo(frame);
      this.forgetOverlay();
      throw error;
    }
    return result;
  }

  /**
   * The dry run of a batch (see LedgerStore.prefetch): `fn` runs inside a transaction that is always undone, a
   * read the overlay cannot answer is noted and answered "absent" (the common truth: a new request's stored
   * answer, counter, posting), and afterwards every noted row is loaded in ONE query. A dry run that went astray
   * on a wrong guess only loaded a row too many or too few; the next round, or the real run, reads what is missing.
   */
  prefetch(fn: () => void): void {
    if (this.readonly || this.frames.length > 0) return;
    // A guessed absence can end a dry run early (an account "missing" refuses the request before it reads its
    // posting): the rows it did read are loaded and the dry run goes again, until one finds nothing new.
    for (let round = 0; round < PREFETCH_ROUNDS; round++) {
      const wanted = this.dryRun(fn);
      if (wanted.size === 0) return;
      this.loadAhead(wanted);
    }
  }

  /** Runs `fn` in a transaction that is always undone; returns the keys it read that the overlay did not hold. */
  private dryRun(fn: () => void): Map<TableName, Set<string>> {
    const wanted = new Map<TableName, Set<string>>();
    const frame = new Map<string, UndoEntry>();
    this.frames.push(frame);
    this.discovering = wanted;
    try {
      fn();
    } catch {
      // The real run meets the same error, if it is one, and answers it.
    } finally {
      this.discovering = undefined;
      this.frames.pop();
      this.undo(frame);
    }
    return wanted;
  }

  /** Loads the given rows in ONE query (a UNION ALL of one select per table); the ones not found are absent. */
  private loadAhead(wanted: Map<TableName, Set<string>>): void {
    const selects: string[] = [];
    for (const [table, keys] of wanted) {
      const spec = SPECS[table];
      const tuples = [...keys].map((key) => `(${spec.keyParams(key).map(literal).join(', ')})`).join(', ');
      selects.push(`SELECT '${table}', json_build_array(${selectList(spec)})::text FROM ${this.tableOf(table)} WHERE (${spec.keyColumns.join(', ')}) IN (${tuples})`);
    }
    const rows = this.connection.queryOnce(selects.join(' UNION ALL '));
    for (const [table, keys] of wanted) for (const key of keys) this.cache.get(table)!.set(key, ABSENT);
    for (const [table, json] of rows as Array<[TableName, string]>) {
      const row = JSON.parse(json) as Row;
      this.cache.get(table)!.set(SPECS[table].keyOfRow(row), SPECS[table].fromRow(row));
    }
  }

  /** Closes the session (which releases the writer's advisory lock); the store is unusable afterwards. */
  close(): void {
    if (this.ownsConnection) this.connection.close();
    else if (!this.readonly) this.connection.query('SELECT pg_advisory_unlock(hashtext($1))', [`payfleet-ledger:${this.schema}`]);
  }

  private read(table: TableName, key: string): unknown {
    const rows = this.cache.get(table)!;
    const hit = rows.get(key);
    if (hit !== undefined) return hit === ABSENT ? undefined : hit;
    if (this.discovering) {
      let keys = this.discovering.get(table);
      if (!keys) this.discovering.set(table, (keys = new Set()));
      keys.add(key);
      return undefined;
    }
    const spec = SPECS[table];
    const row = this.connection.query(this.pointSelect[table], spec.keyParams(key))[0];
    const value = row === undefined ? undefined : spec.fromRow(row);
    // A reader remembers nothing: the server it reads behind writes on.
    if (!this.readonly) rows.set(key, value === undefined ? ABSENT : value);
    return value;
  }

  private write(table: TableName, key: string, value: unknown): void {
    if (this.readonly) throw new LedgerFileError('cannotOpen', `ledger schema ${this.schema} was opened read-only`, this.schema);
    // A write outside any transaction is its own transaction, committed before the put returns (as SQLite's autocommit).
    if (this.frames.length === 0) return this.transaction(() => this.write(table, key, value));
    const rows = this.cache.get(table)!;
    const dirty = this.dirty.get(table)!;
    const frame = this.frames.at(-1)!;
    const id = `${table}\n${key}`;
    if (!frame.has(id)) {
      frame.set(id, { table, key, cacheBefore: rows.has(key) ? rows.get(key) : UNKNOWN, dirtyBefore: dirty.has(key) ? dirty.get(key) : UNKNOWN });
    }
    rows.set(key, value);
    dirty.set(key, value);
  }

  private undo(frame: Map<string, UndoEntry>): void {
    for (const { table, key, cacheBefore, dirtyBefore } of frame.values()) {
      if (cacheBefore === UNKNOWN) this.cache.get(table)!.delete(key);
      else this.cache.get(table)!.set(key, cacheBefore);
      if (dirtyBefore === UNKNOWN) this.dirty.get(table)!.delete(key);
      else this.dirty.get(table)!.set(key, dirtyBefore);
    }
  }

  private forgetOverlay(): void {
    for (const t of TABLES) {
      this.cache.get(t)!.clear();
      this.dirty.get(t)!.clear();
    }
  }

  /** The changed rows, one multi-row upsert per table, in one transaction sent as one message. */
  private commit(): void {
    const statements: string[] = [];
    for (const t of TABLES) {
      const dirty = this.dirty.get(t)!;
      if (dirty.size === 0) continue;
      const spec = SPECS[t];
      const values = [...dirty].map(([key, value]) => `(${spec.toRow(value, key).map(literal).join(', ')})`);
      const updates = spec.columns.filter((c) => !spec.keyColumns.includes(c)).map((c) => `${c} = excluded.${c}`).join(', ');
      statements.push(`INSERT INTO ${this.tableOf(t)} (${spec.columns.join(', ')}) VALUES ${values.join(', ')} ON CONFLICT (${spec.keyColumns.join(', ')}) DO UPDATE SET ${updates}`);
    }
    if (statements.length === 0) return;
    const startedMs = performance.now();
    this.connection.script(`BEGIN;\n${statements.join(';\n')};\nCOMMIT;`);
    this.stats.commits++;
    this.stats.commitMs += performance.now() - startedMs;
    for (const t of TABLES) this.dirty.get(t)!.clear();
    let remembered = 0;
    for (const t of TABLES) remembered += this.cache.get(t)!.size;
    if (remembered > CACHE_LIMIT) for (const t of TABLES) if (t !== 'accounts') this.cache.get(t)!.clear();
  }

  /** Every row of an iterated table in first-written order, with this transaction's uncommitted rows laid over. */
  private all(table: TableName): unknown[] {
    const spec = SPECS[table];
    // A table without `seq` (transfers, read only for the INV-4 reconciliation, where order does not matter) is read
    // in key order, so the answer is still the same on every read.
    const order = spec.ordered ? 'seq' : spec.keyColumns.join(', ');
    const rows = this.connection.query(`SELECT ${selectList(spec)} FROM ${this.tableOf(table)} ORDER BY ${order}`);
    const byKey = new Map<string, unknown>(rows.map((r) => [spec.keyOfRow(r), spec.fromRow(r)]));
    for (const [key, value] of this.dirty.get(table)!) byKey.set(key, value);
    return [...byKey.values()];
  }
}
