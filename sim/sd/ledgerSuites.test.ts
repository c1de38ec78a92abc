// Goal: the store, ledger and server-rule suites of machines/domain, run once more with the durable SQLite store
// in place of the in-memory one, so both implementations of `LedgerStore` pass the same tests.
// Method: vitest replaces the `MemoryLedgerStore` export of machines/domain/ledgerStore.ts, for this file only,
// by a subclass of `SqliteLedgerStore` that opens a fresh ledger file (WAL, synchronous FULL, as served) in a
// temporary directory; the suites' own subclasses (their conservation-checking stores) then extend it
// unchanged. The suites are imported as they are, so a test added there runs here too.

import { vi, describe, it, expect } from 'vitest';

vi.mock('../../machines/domain/ledgerStore.ts', async (importOriginal) => {
  const original = await importOriginal<typeof import('../../machines/domain/ledgerStore.ts')>();
  const { FileBackedStore } = await import('./testSupport.ts');
  return { ...original, MemoryLedgerStore: FileBackedStore };
});

const { closeFileBackedStores, importDomainLedgerSuites } = await import('./testSupport.ts');
const { SqliteLedgerStore } = await import('./sqliteLedgerStore.ts');
const { MemoryLedgerStore } = await import('../../machines/domain/ledgerStore.ts');

describe('the domain suites below', () => {
  it('run on SQLite: the store they construct is a SqliteLedgerStore in WAL mode', () => {
    const store = new MemoryLedgerStore() as unknown as InstanceType<typeof SqliteLedgerStore>;
    expect(store).toBeInstanceOf(SqliteLedgerStore);
    expect(store.db.pragma('journal_mode', { simple: true })).toBe('wal');
  });
});

await importDomainLedgerSuites('SQLite', closeFileBackedStores);
