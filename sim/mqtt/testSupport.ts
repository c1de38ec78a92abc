// Goal: shared material for the tests of sim/mqtt: a SQLite store that stands in for the in-memory one in the
// domain suites, and helpers to run `payfleet server` as a real child process and read its output.
// Method: real files in a temporary directory, real processes through bin/payfleet.mjs — no mocks.

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteLedgerStore } from './sqliteLedgerStore.ts';

export const fileBackedStoreDir = mkdtempSync(join(tmpdir(), 'payfleet-suites-'));
const opened: SqliteLedgerStore[] = [];

/** A fresh ledger file per instance, so each test starts from an empty ledger as it does in memory. */
export class FileBackedStore extends SqliteLedgerStore {
  constructor() {
    super(join(fileBackedStoreDir, `ledger-${opened.length}.db`));
    opened.push(this);
  }
}

/** Closes every store the suites opened; returns how many there were. */
export function closeFileBackedStores(): number {
  for (const store of opened) store.close();
  return opened.length;
}
