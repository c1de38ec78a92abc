// Goal: a synchronous connection to PostgreSQL, so that the ledger store over it keeps the synchronous
// `LedgerStore` interface that the server's rules (machines/domain/serverRules.ts) are written against.
// Method: a worker thread (postgresWorker.mjs) owns a postgres.js connection; `query` and `script` post the
// request to it on a MessagePort and block in Atomics.wait on a shared flag until the worker raises it, then take
// the answer with receiveMessageOnPort. The main thread is blocked meanwhile, exactly as it is under
// better-sqlite3 while SQLite reads a page or fsyncs a commit: a payment server handles its requests one batch at
// a time anyway. A request the server cannot take (PostgreSQL stopped or restarting) is retried inside the worker
// until `deadlineMs`, then fails with `LedgerUnavailableError`, never with a half-known answer.

import { MessageChannel, receiveMessageOnPort, Worker } from 'node:worker_threads';

/** PostgreSQL could not be reached, or refused the SQL; `code` is the SQLSTATE or the socket error code. */
export class LedgerUnavailableError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly value: unknown,
    /** True when the server could not be reached (stopped, crashed): the caller may try again later. */
    readonly unreachable: boolean,
  ) {
    super(message);
    this.name = 'LedgerUnavailableError';
  }
}

type Row = unknown[];
type WorkerOutcome =
  | { ok: true; rows: Row[]; attempts: number }
  | { ok: false; attempts: number; error: { message: string; code: string; unreachable: boolean } };

export interface PostgresConnectionOptions {
  /** How long a request may wait for an unreachable server before it fails (default 30 s). */
  deadlineMs?: number;
  /** Open the session with default_transaction_read_only (a checker reading a server's ledger). */
  readonly?: boolean;
  /** Session settings sent at connect (and at every reconnect): search_path, synchronous_commit. */
  settings?: Record<string, string>;
}

/** A URL with the password hidden, for messages. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(not a URL)';
  }
}

export class SyncPostgresConnection {
  private readonly worker: Worker;
  private readonly port;
  private readonly flag = new Int32Array(new SharedArrayBuffer(4));
  private readonly deadlineMs: number;
  private closed = false;
  private lastRequestId = 0;
  /** Round trips made, and those that needed more than one attempt (the server was away). */
  readonly stats = { requests: 0, retried: 0 };

  constructor(readonly url: string, options: PostgresConnectionOptions = {}) {
    this.deadlineMs = options.deadlineMs ?? 30_000;
    const { port1, port2 } = new MessageChannel();
    this.port = port1;
    this.worker = new Worker(new URL('./postgresWorker.mjs', import.meta.url), {
      workerData: { url, port: port2, flag: this.flag.buffer, readonly: options.readonly ?? false, settings: options.settings ?? {} },
      transferList: [port2],
    });
    // Neither the worker nor the port keeps the process alive: the store's owner closes it, and an abandoned
    // one must not hold up the exit of a test or a command.
    this.worker.unref();
    this.port.unref();
  }

  /** One parameterised statement (prepared once by the server); returns its rows as arrays. */
  query(text: string, params: readonly unknown[] = []): Row[] {
    return this.request({ op: 'query', text, params });
  }

  /** A one-off statement without parameters (not prepared: the server keeps no plan for it). */
  queryOnce(text: string): Row[] {
    return this.request({ op: 'query', text, params: [], prepare: false });
  }

  /** Statements without parameters sent as one message (the simple protocol): one round trip for all of them. */
  script(text: string): void {
    this.request({ op: 'script', text });
  }

  close(): void {
    if (this.closed) return;
    try {
      this.request({ op: 'close' }, 5_000);
    } catch {
      // The worker is terminated below either way.
    }
    this.closed = true;
    void this.worker.terminate();
  }

  private request(message: Record<string, unknown>, deadlineMs = this.deadlineMs): Row[] {
    if (this.closed) throw new LedgerUnavailableError('closed', `the connection to ${redactUrl(this.url)} is closed`, this.url, false);
    this.stats.requests++;
    const id = ++this.lastRequestId;
    this.port.postMessage({ ...message, id, deadlineMs });
    const outcome = this.awaitAnswer(id, deadlineMs + 30_000);
    if (outcome.attempts > 1) this.stats.retried++;
    if (!outcome.ok) {
      const { code, message: text, unreachable } = outcome.error;
      throw new LedgerUnavailableError(code || 'postgresError', `PostgreSQL ${redactUrl(this.url)}: ${text}`, code, unreachable);
    }
    return outcome.rows;
  }

  /**
   * Blocks until the worker's answer to request `id` is on the port. The worker writes the id of the request it
   * answered into the shared flag after posting the answer. Two things make a single wait-then-read unsafe: the answer
   * may not yet be readable on this side when the flag changes (receiveMessageOnPort then returns nothing, as babel
   * and synckit found, and as one CI run of the Postgres suites did here), and after a request that timed out its late answer arrives ahead of
   * the next one's. So the answers carry their request's id, a stale one is dropped, and a missing one is waited for
   * in short sleeps until the overall limit, which only a stuck worker reaches.
   */
  private awaitAnswer(id: number, limitMs: number): WorkerOutcome {
    const giveUpAt = Date.now() + limitMs;
    for (;;) {
      const seen = Atomics.load(this.flag, 0);
      const received = receiveMessageOnPort(this.port);
      if (received) {
        const answer = received.message as WorkerOutcome & { id: number };
        if (answer.id === id) return answer;
        continue; // The late answer of an earlier request that timed out: nobody waits for it any more.
      }
      const leftMs = giveUpAt - Date.now();
      if (leftMs <= 0) {
        throw new LedgerUnavailableError('workerTimeout', `no answer from the PostgreSQL worker for ${redactUrl(this.url)} within ${limitMs} ms`, this.url, true);
      }
      // When the flag already names this request, its answer is on the way: sleep a millisecond, not the whole wait.
      Atomics.wait(this.flag, 0, seen, seen === id ? 1 : Math.min(leftMs, 1_000));
    }
  }
}
