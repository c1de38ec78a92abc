// Goal: the storage behind the payment server's ledger, as a small synchronous interface, and an in-memory
// implementation for tests and virtual-time runs.
// Method: one get/put pair per record type, keyed the way a SQLite table would be keyed, plus the
// iterations the invariant checkers need and `transaction`, which runs a function all-or-nothing. The
// interface is synchronous because the durable implementation sits on better-sqlite3, which is synchronous;
// every method maps to one prepared statement. `put` is an upsert. Records are plain data; the in-memory
// store freezes what it keeps, so a caller cannot change stored state behind the journal's back.
// The in-memory store holds one record per transaction, transfer and answer for a whole run, so it keeps them
// compact: a record is copied with `Object.assign` into a fresh object before it is frozen (freezing an object
// made by spread gives it a hidden class of its own, ≈ 240 bytes each, measured on V8 12), and transfers and
// stored answers — written once, read back rarely — are kept as JSON text, as the SQLite store keeps answers.

import type { Minor } from './money.ts';
import type { ServerResult } from '../messages.ts';

export type AccountKind = 'means' | 'beneficiary' | 'float' | 'loss' | 'outside';

export interface Account {
  /** `means:{meansId}`, `payee:{payeeId}`, `float`, `loss` or `outside` (where top-ups come from). */
  readonly id: string;
  readonly kind: AccountKind;
  /** Credits minus debits. Can be negative: the float and the loss account are, and a postpaid means may be. */
  readonly balanceMinor: number;
  /** How far below zero a postpaid means may go; 0 for every other account. */
  readonly creditLimitMinor: Minor;
  /** Sum of the active holds on this means (kept here so `available` is one read, not a scan of holds). */
  readonly heldMinor: Minor;
  /** Increases on every change to the account, holds included. */
  readonly version: number;
}

export interface Transfer {
  readonly id: string;
  readonly debitAccount: string;
  readonly creditAccount: string;
  readonly amountMinor: Minor;
  /** Canonical encoding of the payload; the same id with another fingerprint is an id conflict. */
  readonly fingerprint: string;
  readonly note: string;
}

export type HoldState = 'held' | 'captured' | 'released';

/** A pending two-phase transfer (an authorisation), in the manner of TigerBeetle's pending transfers. */
export interface Hold {
  readonly txId: string;
  readonly meansId: string;
  readonly payee: string;
  readonly amountMinor: Minor;
  /** The proxy that asked for the authorisation; only it may capture or release. */
  readonly proxyId: string;
  readonly state: HoldState;
}

export type PostingVia = 'remit' | 'aggregate' | 'settle' | 'debit' | 'capture';

/** The record that a transaction id is on the ledger; there is at most one per txId [INV-4 nothing twice]. */
export interface Posting {
  readonly txId: string;
  readonly meansId: string;
  readonly payee: string;
  /** The transaction's own amount; null when it was posted only as part of an aggregate sum. */
  readonly amountMinor: Minor | null;
  readonly via: PostingVia;
  /** `{from}/{reqId}` of the request that posted it. */
  readonly requestId: string;
  readonly aggregateId?: string;
  /**
   * The proxy that made the payment, when one is known (debit, capture, remit, settle; not aggregates). Only it
   * may reverse the payment.
   */
  readonly proxyId?: string;
  /**
   * `{from}/{reqId}` of the release that reversed this payment (a remote debit whose answer never reached the
   * proxy). A reversed posting stays on the ledger so its txId is never paid again, but it no longer counts as paid.
   */
  readonly reversedBy?: string;
}

/**
 * A transaction withdrawn by its proxy before SD ever saw it: the release overtook the auth or debit on the
 * network. Keyed by (proxyId, txId), so one proxy cannot void another's transaction; a later auth or debit of
 * that proxy with this txId is refused.
 */
export interface VoidRecord {
  readonly proxyId: string;
  readonly txId: string;
  /** `{from}/{reqId}` of the release that voided it. */
  readonly requestId: string;
}

/**
 * A remitted aggregate. `sumMinor` is what the proxy says its transactions add up to; `postedMinor` is the part
 * this aggregate moved, the rest (sumMinor − postedMinor) having been on the ledger already: transactions posted
 * singly, and earlier aggregates lying wholly inside this one.
 */
export interface Aggregate {
  readonly id: string;
  readonly meansId: string;
  readonly payee: string;
  readonly sumMinor: Minor;
  readonly txIds: readonly string[];
  readonly postedMinor: Minor;
}

/** The answer given to one request, kept so that the same request gets the same answer. */
export interface StoredResult {
  readonly fingerprint: string;
  readonly result: ServerResult;
}

export interface LedgerStore {
  getAccount(id: string): Account | undefined;
  putAccount(account: Account): void;
  getTransfer(id: string): Transfer | undefined;
  putTransfer(transfer: Transfer): void;
  getHold(txId: string): Hold | undefined;
  putHold(hold: Hold): void;
  getPosting(txId: string): Posting | undefined;
  putPosting(posting: Posting): void;
  getAggregate(id: string): Aggregate | undefined;
  putAggregate(aggregate: Aggregate): void;
  getVoid(proxyId: string, txId: string): VoidRecord | undefined;
  putVoid(record: VoidRecord): void;
  /** The txId that used a proxy's signature counter, if any. */
  getCounterUse(proxyId: string, counter: number): string | undefined;
  putCounterUse(proxyId: string, counter: number, txId: string): void;
  getResult(from: string, reqId: string): StoredResult | undefined;
  putResult(from: string, reqId: string, stored: StoredResult): void;
  /** Runs `fn` all-or-nothing: if it throws, every write it made is undone and the error rethrown. Nests. */
  transaction<T>(fn: () => T): T;
  /**
   * Optional, for a store whose reads cross a network (PostgreSQL): runs `fn` only to learn which records it
   * reads, throws away everything it wrote, and loads those records ahead in bulk, so that `fn` run for real
   * afterwards finds them in memory. A hint: `fn` must have no effect outside the store; a store without it reads
   * as it goes.
   */
  prefetch?(fn: () => void): void;
  allAccounts(): Iterable<Account>;
  allPostings(): Iterable<Posting>;
  allAggregates(): Iterable<Aggregate>;
  allVoids(): Iterable<VoidRecord>;
  /**
   * Optional: how many records each table holds, for the INV-6 fingerprint (a message that changed nothing must
   * not have stored a result or used a counter either). A store that cannot count cheaply leaves it out.
   */
  tableSizes?(): Readonly<Record<string, number>>;
  /**
   * Optional: the transfers of spending through other points of issue (ids `ext:…`: the HTTP interface, spends
   * elsewhere), for INV-4's per-payee reconciliation. A store without it leaves that reconciliation out.
   */
  externalTransfers?(): Iterable<Transfer>;
  /** Optional: the top-ups (ids `top:…`, ledgerTopUps.ts), for their end check. A store without it leaves that check out. */
  topUpTransfers?(): Iterable<Transfer>;
}

const ABSENT: unique symbol = Symbol('absent');
type Table = Map<string, unknown>;
/** For each table touched in a transaction, the value each key had before its first write there. */
type Journal = Map<Table, Map<string, unknown>>;

function pairKey(a: string, b: string | number): string {
  return JSON.stringify([a, b]);
}

/**
 * A frozen copy that shares its hidden class with every other record of the same fields: `Object.freeze({ ...r })`
 * would give each copy a class of its own.
 */
function frozenCopy<T extends object>(record: T): T {
  return Object.freeze(Object.assign({}, record));
}

/**
 * Text to keep for the whole run, made flat: V8 builds a long JSON.stringify result, and any concatenation, as a
 * tree of pieces (≈ 6 string objects for a 400-character answer), and reading one character joins them into one
 * string (measured: 602 → 455 bytes for such an answer).
 */
function flat(text: string): string {
  text.charCodeAt(0);
  return text;
}

/** A stored answer as text: its JSON, a newline (JSON.stringify never writes one), then the request's fingerprint. */
function resultText(stored: StoredResult): string {
  return flat(`${JSON.stringify(stored.result)}\n${stored.fingerprint}`);
}

function resultOfText(text: string): StoredResult {
  const cut = text.indexOf('\n');
  return { fingerprint: text.slice(cut + 1), result: JSON.parse(text.slice(0, cut)) as ServerResult };
}

function transferOfText(text: string): Transfer {
  return Object.freeze(JSON.parse(text) as Transfer);
}

/** Maps, with a stack of undo journals: one frame per open transaction (a nested one acts as a savepoint). */
export class MemoryLedgerStore implements LedgerStore {
  private readonly accounts = new Map<string, Account>();
  /** Each transfer as its JSON text (see the header). */
  private readonly transfers = new Map<string, string>();
  private readonly holds = new Map<string, Hold>();
  private readonly postings = new Map<string, Posting>();
  private readonly aggregates = new Map<string, Aggregate>();
  private readonly voids = new Map<string, VoidRecord>();
  private readonly counters = new Map<string, string>();
  /** Each stored answer as `resultText` (see the header). */
  private readonly results = new Map<string, string>();
  private readonly frames: Journal[] = [];

  getAccount(id: string) { return this.accounts.get(id); }
  putAccount(account: Account) { this.write(this.accounts, account.id, frozenCopy(account)); }
  getTransfer(id: string) {
    const text = this.transfers.get(id);
    return text === undefined ? undefined : transferOfText(text);
  }
  putTransfer(transfer: Transfer) { this.write(this.transfers, transfer.id, flat(JSON.stringify(transfer))); }
  getHold(txId: string) { return this.holds.get(txId); }
  putHold(hold: Hold) { this.write(this.holds, hold.txId, frozenCopy(hold)); }
  getPosting(txId: string) { return this.postings.get(txId); }
  putPosting(posting: Posting) { this.write(this.postings, posting.txId, frozenCopy(posting)); }
  getAggregate(id: string) { return this.aggregates.get(id); }
  putAggregate(aggregate: Aggregate) {
    this.write(this.aggregates, aggregate.id, Object.freeze(Object.assign({}, aggregate, { txIds: Object.freeze([...aggregate.txIds]) })));
  }
  getVoid(proxyId: string, txId: string) { return this.voids.get(pairKey(proxyId, txId)); }
  putVoid(record: VoidRecord) { this.write(this.voids, pairKey(record.proxyId, record.txId), frozenCopy(record)); }
  getCounterUse(proxyId: string, counter: number) { return this.counters.get(pairKey(proxyId, counter)); }
  putCounterUse(proxyId: string, counter: number, txId: string) { this.write(this.counters, pairKey(proxyId, counter), txId); }
  // A result is read back as a fresh object each time, so later changes to the caller's copy never reach the store.
  getResult(from: string, reqId: string) {
    const text = this.results.get(pairKey(from, reqId));
    return text === undefined ? undefined : resultOfText(text);
  }
  putResult(from: string, reqId: string, stored: StoredResult) { this.write(this.results, pairKey(from, reqId), resultText(stored)); }

  allAccounts() { return [...this.accounts.values()]; }
  allPostings() { return [...this.postings.values()]; }
  allAggregates() { return [...this.aggregates.values()]; }
  allVoids() { return [...this.voids.values()]; }
  externalTransfers() {
    const external: Transfer[] = [];
    for (const [id, text] of this.transfers) if (id.startsWith('ext:')) external.push(transferOfText(text));
    return external;
  }
  topUpTransfers() {
    const topUps: Transfer[] = [];
    for (const [id, text] of this.transfers) if (id.startsWith('top:')) topUps.push(transferOfText(text));
    return topUps;
  }
  tableSizes() {
    return { transfers: this.transfers.size, holds: this.holds.size, counters: this.counters.size, results: this.results.size };
  }

  transaction<T>(fn: () => T): T {
    const frame: Journal = new Map();
    this.frames.push(frame);
    let result: T;
    try {
      result = fn();
      // Like better-sqlite3: an async function would commit before its work is done, so it is refused.
      if (typeof (result as { then?: unknown } | null)?.then === 'function') {
        throw new Error('LedgerStore.transaction: the function must be synchronous');
      }
    } catch (error) {
      this.frames.pop();
      undo(frame);
      throw error;
    }
    this.frames.pop();
    const outer = this.frames.at(-1);
    if (outer) mergeInto(outer, frame);
    return result;
  }

  private write<V>(table: Map<string, V>, key: string, value: V): void {
    const frame = this.frames.at(-1);
    if (frame) {
      let touched = frame.get(table as Table);
      if (!touched) frame.set(table as Table, (touched = new Map()));
      if (!touched.has(key)) touched.set(key, table.has(key) ? table.get(key) : ABSENT);
    }
    table.set(key, value);
  }
}

function undo(frame: Journal): void {
  for (const [table, touched] of frame) {
    for (const [key, before] of touched) {
      if (before === ABSENT) table.delete(key);
      else table.set(key, before);
    }
  }
}

/** A committed inner transaction hands its "before" values to the outer one, unless the outer has older ones. */
function mergeInto(outer: Journal, inner: Journal): void {
  for (const [table, touched] of inner) {
    let outerTouched = outer.get(table);
    if (!outerTouched) outer.set(table, (outerTouched = new Map()));
    for (const [key, before] of touched) {
      if (!outerTouched.has(key)) outerTouched.set(key, before);
    }
  }
}
