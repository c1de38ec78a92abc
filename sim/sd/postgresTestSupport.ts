// Goal: a Postgres-backed stand-in for the in-memory ledger store in the domain suites (postgresLedgerSuites.test.ts),
// as FileBackedStore is for SQLite: each instance a fresh, empty ledger on a real PostgreSQL server.
// Method: one throwaway cluster (postgresTestCluster.ts) for the test file, started before the suites load; each
// store gets its own schema on it, all of them over one shared synchronous connection (a test file opens dozens
// of stores, and one session per store would be dozens of worker threads and server processes).

import { PostgresLedgerStore } from './postgresLedgerStore.ts';
import { SyncPostgresConnection } from './postgresConnection.ts';
import { startPostgresTestCluster, type PostgresTestCluster } from './postgresTestCluster.ts';

let cluster: PostgresTestCluster | undefined;
let shared: SyncPostgresConnection | undefined;
const opened: PostgresLedgerStore[] = [];

/** Starts the cluster the stores below live on; call (and await) before the first store is made. */
export async function startSuiteCluster(): Promise<PostgresTestCluster> {
  cluster ??= await startPostgresTestCluster();
  shared ??= new SyncPostgresConnection(cluster.url);
  return cluster;
}

/** A fresh ledger schema per instance, so each test starts from an empty ledger as it does in memory. */
export class PostgresBackedStore extends PostgresLedgerStore {
  constructor() {
    if (!cluster || !shared) throw new Error('PostgresBackedStore: startSuiteCluster() was not awaited first');
    super(cluster.url, { schema: `suite_${opened.length}`, connection: shared });
    opened.push(this);
  }
}

/** Closes every store and the cluster (removing its directory); returns how many stores there were. */
export function closePostgresBackedStores(): number {
  for (const store of opened) store.close();
  shared?.close();
  cluster?.remove();
  return opened.length;
}
