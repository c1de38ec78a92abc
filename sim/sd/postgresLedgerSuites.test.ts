// Goal: the store, ledger and server-rule suites of machines/domain, run once more with the PostgreSQL store in
// place of the in-memory one, so the Postgres `LedgerStore` passes the same tests as the memory and SQLite ones.
// Method: as ledgerSuites.test.ts does for SQLite: vitest replaces the `MemoryLedgerStore` export, for this file
// only, by PostgresBackedStore (a fresh schema on a throwaway cluster per instance); the suites' own subclasses
// extend it unchanged. Without PostgreSQL installed the cluster fails to start and this file fails with an error
// naming the Debian package postgresql: it never skips.

import { vi, describe, it, expect } from 'vitest';

vi.mock('../../machines/domain/ledgerStore.ts', async (importOriginal) => {
  const original = await importOriginal<typeof import('../../machines/domain/ledgerStore.ts')>();
  const { PostgresBackedStore } = await import('./postgresTestSupport.ts');
  return { ...original, MemoryLedgerStore: PostgresBackedStore };
});

const { startSuiteCluster, closePostgresBackedStores } = await import('./postgresTestSupport.ts');
const { PostgresLedgerStore } = await import('./postgresLedgerStore.ts');
const { importDomainLedgerSuites } = await import('./testSupport.ts');
const { MemoryLedgerStore } = await import('../../machines/domain/ledgerStore.ts');
await startSuiteCluster();

describe('the domain suites below', () => {
  it('run on PostgreSQL: the store they construct is a PostgresLedgerStore with its schema made', () => {
    const store = new MemoryLedgerStore() as unknown as InstanceType<typeof PostgresLedgerStore>;
    expect(store).toBeInstanceOf(PostgresLedgerStore);
    expect(store.connection.query(`SELECT value FROM ${store.schema}.meta WHERE key = 'schemaVersion'`)).toEqual([['1']]);
  });
});

await importDomainLedgerSuites('PostgreSQL', closePostgresBackedStores);
