// Goal: the row cache and undo journal in front of the SQLite ledger (sqliteLedgerStore.ts): a request reads
// each row it needs from SQLite at most once (the means account a debit reads four times, the posting and hold
// it looks up twice), the accounts, few and read by every request, are not read from SQLite at all once known,
// and a nested transaction (a request inside a batch) can be undone without an SQL savepoint.
// Method: one map per table from key to the row as SQLite holds it now, or to ABSENT when SQLite is known to have
// no such row. Writes go to SQLite first and then to the cache (write-through), so SQLite is always the truth
// and the cache only ever answers what SQLite would. Every write made inside a transaction records, in the
// innermost open frame, what the cache held for that key before (a frame per transaction, as the in-memory
// store's undo journal does). A frame rolled back hands its journal to the store, which writes those rows back
// into SQLite (`undoEntries`), and then puts the entries back here (`rollback`): so a refused request inside a
// batch leaves no trace, neither in the file nor in the cache. A frame that commits hands its journal to the
// frame around it, keeping the older entries. When the outermost transaction ends, committed or not, the rows of
// every table but the persistent ones (accounts) are dropped: they are read once per request anyway, and keeping
// them would grow without bound. The persistent rows are only as good as the owner's check that no other
// connection wrote the file since (sqliteLedgerStore.ts checks `PRAGMA data_version`), and the owner drops
// everything (`reset`) when SQLite abandoned a transaction on its own.

export const ABSENT: unique symbol = Symbol('absent');
/** In a journal: the key had no entry in the cache before the write (only the outermost frame may have these). */
export const UNCACHED: unique symbol = Symbol('uncached');

export const TABLES = ['accounts', 'transfers', 'holds', 'postings', 'aggregates', 'voids', 'counters', 'results', 'meta'] as const;
export type TableName = (typeof TABLES)[number];

/** Tables whose rows stay cached across transactions. */
const PERSISTENT: ReadonlySet<TableName> = new Set(['accounts']);

type Table = Map<string, unknown>;
/** For each table written in a frame, what each key held in the cache before the frame's first write to it. */
type Journal = Map<TableName, Map<string, unknown>>;

export class RowCache {
  private readonly tables = new Map<TableName, Table>(TABLES.map((name) => [name, new Map()]));
  private readonly frames: Journal[] = [];
  /** Set by `reset` inside a transaction: until the outermost frame ends, nothing is cached or answered. */
  private disabled = false;

  /** Open transaction frames (0: none). */
  get depth(): number {
    return this.frames.length;
  }

  /** Whether reads and writes inside the current transaction may use the cache. */
  get active(): boolean {
    return this.frames.length > 0 && !this.disabled;
  }

  /** The cached row, ABSENT when SQLite is known to have none, undefined when the cache does not know. */
  get(table: TableName, key: string): unknown {
    if (!this.active) return undefined;
    return this.table(table).get(key);
  }

  /**
   * Remembers what a read found in SQLite (a row or ABSENT). Not journaled: a rollback does not change what SQLite
   * held before the frame's own writes, and a key the frame wrote is answered from the cache, not read.
   */
  remember(table: TableName, key: string, value: unknown): void {
    if (!this.active) return;
    this.table(table).set(key, value);
  }

  /** Records a row that was just written to SQLite inside the current transaction. */
  write(table: TableName, key: string, value: unknown): void {
    if (!this.active) return;
    const rows = this.table(table);
    const frame = this.frames.at(-1)!;
    let touched = frame.get(table);
    if (!touched) frame.set(table, (touched = new Map()));
    if (!touched.has(key)) touched.set(key, rows.has(key) ? rows.get(key) : UNCACHED);
    rows.set(key, value);
  }

  /** A write outside any transaction (SQLite's autocommit): whatever was cached for the key is dropped. */
  forget(table: TableName, key: string): void {
    this.table(table).delete(key);
  }

  begin(): void {
    this.frames.push(new Map());
  }

  /** What the innermost frame overwrote: each key it wrote with the row (or ABSENT, or UNCACHED) it held before. */
  *undoEntries(): Generator<[TableName, string, unknown]> {
    const frame = this.frames.at(-1);
    if (!frame || this.disabled) return;
    for (const [table, touched] of frame) for (const [key, before] of touched) yield [table, key, before];
  }

  /** The innermost frame committed: its journal joins the outer frame's, unless that has older entries. */
  commit(): void {
    const inner = this.frames.pop();
    const outer = this.frames.at(-1);
    if (inner && outer && !this.disabled) {
      for (const [table, touched] of inner) {
        let outerTouched = outer.get(table);
        if (!outerTouched) outer.set(table, (outerTouched = new Map()));
        for (const [key, before] of touched) if (!outerTouched.has(key)) outerTouched.set(key, before);
      }
    }
    if (!outer) this.endOutermost();
  }

  /** The innermost frame rolled back: every entry it wrote is put back as it was. */
  rollback(): void {
    const frame = this.frames.pop();
    if (frame && !this.disabled) {
      for (const [table, touched] of frame) {
        const rows = this.table(table);
        for (const [key, before] of touched) {
          if (before === UNCACHED) rows.delete(key);
          else rows.set(key, before);
        }
      }
    }
    if (this.frames.length === 0) this.endOutermost();
  }

  /**
   * Drops every row, persistent ones included. Called inside a transaction that SQLite abandoned on its own (an
   * I/O error rolls the whole transaction back), or whose undo failed: the cache then stays out of the way until
   * the outermost frame ends, and starts empty after it.
   */
  reset(): void {
    for (const rows of this.tables.values()) rows.clear();
    for (const frame of this.frames) frame.clear();
    if (this.frames.length > 0) this.disabled = true;
  }

  /** Drops the persistent rows: another connection may have changed them. */
  clearPersistent(): void {
    for (const name of PERSISTENT) this.table(name).clear();
  }

  /** How many rows are cached, by table (for tests). */
  sizes(): Record<TableName, number> {
    return Object.fromEntries([...this.tables].map(([name, rows]) => [name, rows.size])) as Record<TableName, number>;
  }

  private endOutermost(): void {
    this.disabled = false;
    for (const [name, rows] of this.tables) if (!PERSISTENT.has(name)) rows.clear();
  }

  private table(name: TableName): Table {
    return this.tables.get(name)!;
  }
}
