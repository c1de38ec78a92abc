// Goal: the row cache and undo journal in front of the SQLite ledger (sqliteLedgerStore.ts): a request reads
// each row it needs from SQLite at most once (the means account a debit reads four times, the posting and hold
// it looks up twice), the accounts, few and read by every request, are not read from SQLite at all once known,
// and a nested transaction (a request inside a batch) can be undone without an SQL savepoint.
// Method: one map per table from key to the row as SQLite holds it now, or to ABSENT when SQLite is known to have
// no such row. Writes go to SQLite first and then to the cache (write-through), so SQLite is always the truth
// and the cache only ever answers what SQLite would. Every write made inside a transaction appends to one undo
// log what the cache held for that key before; a frame (one per transaction, nested ones included) is the part
// of the log after the point where it began. A frame rolled back hands its part to the store, which writes those
// rows back into SQLite (`undoEntries`, the oldest entry of each key), and then puts the entries back here, last
// first (`rollback`): so a refused request inside a batch leaves no trace, neither in the file nor in the cache.
// A frame that commits leaves its entries to the frame around it. When the outermost transaction ends, committed
// or not, the log is emptied and the rows of every table but the persistent ones (accounts) are dropped: they are
// read once per request anyway, and keeping them would grow without bound. The persistent rows are only as good as the owner's check that no other
// connection wrote the file since (sqliteLedgerStore.ts checks `PRAGMA data_version`), and the owner drops
// everything (`reset`) when SQLite abandoned a transaction on its own.

export const ABSENT: unique symbol = Symbol('absent');
/** In the log: the key had no entry in the cache before the write (the store never lets a nested frame log one). */
export const UNCACHED: unique symbol = Symbol('uncached');

export const TABLES = ['accounts', 'transfers', 'holds', 'postings', 'aggregates', 'voids', 'counters', 'results', 'meta'] as const;
export type TableName = (typeof TABLES)[number];

/** Tables whose rows stay cached across transactions. */
const PERSISTENT: ReadonlySet<TableName> = new Set(['accounts']);

type Table = Map<string, unknown>;

export class RowCache {
  private readonly tables = new Map<TableName, Table>(TABLES.map((name) => [name, new Map()]));
  /** The undo log: table, key and what the cache held for it before the write, three slots per write. */
  private readonly log: unknown[] = [];
  /** Where each open frame's part of the log begins, outermost first. */
  private readonly frameStarts: number[] = [];
  /** Set by `reset` inside a transaction: until the outermost frame ends, nothing is cached or answered. */
  private disabled = false;

  /** Open transaction frames (0: none). */
  get depth(): number {
    return this.frameStarts.length;
  }

  /** Whether reads and writes inside the current transaction may use the cache. */
  get active(): boolean {
    return this.frameStarts.length > 0 && !this.disabled;
  }

  /** The cached row, ABSENT when SQLite is known to have none, undefined when the cache does not know. */
  get(table: TableName, key: string): unknown {
    if (!this.active) return undefined;
    return this.table(table).get(key);
  }

  /**
   * Remembers what a read found in SQLite (a row or ABSENT). Not logged: a rollback does not change what SQLite
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
    const before = rows.get(key);
    this.log.push(table, key, before === undefined ? UNCACHED : before);
    rows.set(key, value);
  }

  /** A write outside any transaction (SQLite's autocommit): whatever was cached for the key is dropped. */
  forget(table: TableName, key: string): void {
    this.table(table).delete(key);
  }

  begin(): void {
    this.frameStarts.push(this.log.length);
  }

  /** What the innermost frame overwrote: each key it wrote, once, with what it held when the frame began. */
  *undoEntries(): Generator<[TableName, string, unknown]> {
    const start = this.frameStarts.at(-1);
    if (start === undefined || this.disabled) return;
    const seen = new Set<string>();
    for (let i = start; i < this.log.length; i += 3) {
      const table = this.log[i] as TableName;
      const key = this.log[i + 1] as string;
      const id = `${table}/${key}`;
      if (seen.has(id)) continue;
      seen.add(id);
      yield [table, key, this.log[i + 2]];
    }
  }

  /** The innermost frame committed: its entries now belong to the frame around it. */
  commit(): void {
    this.frameStarts.pop();
    if (this.frameStarts.length === 0) this.endOutermost();
  }

  /** The innermost frame rolled back: every entry it wrote is put back as it was, last write first. */
  rollback(): void {
    const start = this.frameStarts.pop();
    if (start !== undefined && !this.disabled) {
      for (let i = this.log.length - 3; i >= start; i -= 3) {
        const rows = this.table(this.log[i] as TableName);
        const key = this.log[i + 1] as string;
        const before = this.log[i + 2];
        if (before === UNCACHED) rows.delete(key);
        else rows.set(key, before);
      }
      this.log.length = start;
    }
    if (this.frameStarts.length === 0) this.endOutermost();
  }

  /**
   * Drops every row, persistent ones included. Called inside a transaction that SQLite abandoned on its own (an
   * I/O error rolls the whole transaction back), or whose undo failed: the cache then stays out of the way until
   * the outermost frame ends, and starts empty after it.
   */
  reset(): void {
    for (const rows of this.tables.values()) rows.clear();
    this.log.length = 0;
    if (this.frameStarts.length > 0) this.disabled = true;
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
    this.log.length = 0;
    for (const [name, rows] of this.tables) if (!PERSISTENT.has(name)) rows.clear();
  }

  private table(name: TableName): Table {
    return this.tables.get(name)!;
  }
}
