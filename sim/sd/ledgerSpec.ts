// Goal: one way to name a payment server's durable ledger, whichever engine keeps it — `sqlite:PATH` (or a bare
// path, as `--db` takes) or `postgres://user@host:port/db?schema=NAME` — and to open it, for writing (the server)
// or reading (a checker after the drain).
// Method: parse the text into a LedgerSpec; `openLedgerStore` returns the SqliteLedgerStore or PostgresLedgerStore
// it names, both with the small extras a server and its checkers use beside the `LedgerStore` interface (meta
// facts, the conservation sum, the count of answered requests, close). A Postgres ledger without `?schema=` takes
// the schema the caller proposes (a server: one named after its shard range).

import type { LedgerStore } from '../../machines/domain/ledgerStore.ts';
import { redactUrl } from './postgresConnection.ts';
import { isSchemaName, PostgresLedgerStore, splitLedgerUrl } from './postgresLedgerStore.ts';
import { LedgerFileError, SqliteLedgerStore, type SynchronousMode } from './sqliteLedgerStore.ts';

export type LedgerSpec =
  | { readonly engine: 'sqlite'; readonly path: string }
  | { readonly engine: 'postgres'; readonly url: string; readonly schema: string | undefined };

/** What a server process and the end checks use of a durable store, SQLite or Postgres. */
export interface DurableLedgerStore extends LedgerStore {
  getMeta(key: string): string | undefined;
  putMeta(key: string, value: string): void;
  sumOfBalancesMinor(): number;
  answeredRequests(): number;
  /**
   * Calls `done` once every transaction committed before the call is durable (at once, unless the store defers
   * its fsyncs: SQLite opened with `deferSync`). Whoever answers for a commit answers only after this.
   */
  syncCommitted?(done: (error: Error | null) => void): void;
  close(): void;
}

export class LedgerSpecError extends Error {
  readonly code = 'badLedgerSpec';
  constructor(message: string, readonly value: string) {
    super(message);
    this.name = 'LedgerSpecError';
  }
}

/** `sqlite:PATH`, `postgres://…` / `postgresql://…` (optionally `?schema=NAME`), or a bare path (SQLite). */
export function parseLedgerSpec(text: string): LedgerSpec {
  if (/^postgres(ql)?:\/\//.test(text)) {
    let split: ReturnType<typeof splitLedgerUrl>;
    try {
      split = splitLedgerUrl(text);
    } catch {
      throw new LedgerSpecError(`expected a URL such as postgres://user@127.0.0.1:5432/payfleet, got ${JSON.stringify(redactUrl(text))}`, text);
    }
    if (split.schema !== undefined && !isSchemaName(split.schema)) {
      throw new LedgerSpecError(`schema ${JSON.stringify(split.schema)}: expected lower-case letters, digits and _ (at most 63)`, text);
    }
    return { engine: 'postgres', url: split.url, schema: split.schema };
  }
  const path = text.startsWith('sqlite:') ? text.slice('sqlite:'.length) : text;
  if (path.trim() === '') throw new LedgerSpecError('expected sqlite:PATH or postgres://…, got an empty path', text);
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(path)) throw new LedgerSpecError(`unknown ledger engine in ${JSON.stringify(redactUrl(text))}: expected sqlite:PATH or postgres://…`, text);
  return { engine: 'sqlite', path };
}

/** The spec as text for logs and for handing on to a child process (a password stays in the URL handed on). */
export function formatLedgerSpec(spec: LedgerSpec, redact = false): string {
  if (spec.engine === 'sqlite') return `sqlite:${spec.path}`;
  const url = new URL(spec.url);
  if (spec.schema) url.searchParams.set('schema', spec.schema);
  return redact ? redactUrl(url.toString()) : url.toString();
}

/** The same ledger with `schema` when it is a Postgres one without a schema of its own. */
export function withDefaultSchema(spec: LedgerSpec, schema: string): LedgerSpec {
  return spec.engine === 'postgres' && spec.schema === undefined ? { ...spec, schema } : spec;
}

/** A schema name for a server's shard range: `0-3,7` → `payfleet_0_3_7` (prefix given by the caller). */
export function schemaForShards(prefix: string, range: string): string {
  return `${prefix}_${range.replace(/[^0-9]+/g, '_')}`.toLowerCase().slice(0, 63);
}

export interface OpenLedgerOptions {
  readonly?: boolean;
  /** SQLite's synchronous mode; for Postgres, `normal` means synchronous_commit off (see the README's figures). */
  synchronous?: SynchronousMode;
  /** Postgres: how long a request waits for an unreachable server before it fails (a sampler wants it short). */
  deadlineMs?: number;
  /** SQLite with synchronous full: commits are fsynced afterwards by `syncCommitted` (a server's group commit). */
  deferSync?: boolean;
}

/** Opens the ledger the spec names; throws LedgerFileError (both engines) when it cannot. */
export function openLedgerStore(spec: LedgerSpec, options: OpenLedgerOptions = {}): DurableLedgerStore {
  if (spec.engine === 'sqlite') return new SqliteLedgerStore(spec.path, { readonly: options.readonly, synchronous: options.synchronous, deferSync: options.deferSync });
  try {
    return new PostgresLedgerStore(spec.url, {
      schema: spec.schema,
      readonly: options.readonly,
      synchronousCommit: options.synchronous === 'normal' ? 'off' : 'on',
      deadlineMs: options.deadlineMs,
    });
  } catch (error) {
    if (error instanceof LedgerFileError) throw error;
    throw new LedgerFileError('cannotOpen', `cannot open ${formatLedgerSpec(spec, true)}: ${(error as Error).message}`, spec.url);
  }
}

/** One stored answer, as the end checks read them: every (sender, reqId) a server answered and kept. */
export interface StoredAnswerRow { sender: string; reqId: string; resultJson: string }

/** Every stored answer of a ledger (SQLite in insertion order; PostgreSQL by sender and reqId), for [INV-4] checks. */
export function storedAnswers(store: DurableLedgerStore): StoredAnswerRow[] {
  if (store instanceof SqliteLedgerStore) {
    const rows = store.db.prepare('SELECT sender, req_id, result FROM results ORDER BY rowid').raw(true).all() as Array<[string, string, string]>;
    return rows.map(([sender, reqId, resultJson]) => ({ sender, reqId, resultJson }));
  }
  if (store instanceof PostgresLedgerStore) {
    const rows = store.connection.query(`SELECT sender, req_id, result::text FROM ${store.schema}.results ORDER BY sender, req_id`) as Array<[string, string, string]>;
    return rows.map(([sender, reqId, resultJson]) => ({ sender, reqId, resultJson }));
  }
  throw new Error('storedAnswers: neither a SQLite nor a PostgreSQL ledger store');
}
