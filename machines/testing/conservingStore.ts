// Goal: a real in-memory ledger store for the domain tests that checks [INV-3 conservation] as it goes.
// Method: a MemoryLedgerStore whose outermost transaction (one ledger operation) ends by summing every account's
// balance; a sum other than zero throws at once, so the test that broke conservation is the one that fails.

import { MemoryLedgerStore } from '../domain/ledgerStore.ts';

export class ConservingStore extends MemoryLedgerStore {
  private depth = 0;
  /** How many operations were checked, so a test can show the check ran. */
  checks = 0;

  override transaction<T>(fn: () => T): T {
    this.depth++;
    try {
      return super.transaction(fn);
    } finally {
      this.depth--;
      if (this.depth === 0) {
        let total = 0;
        for (const a of this.allAccounts()) total += a.balanceMinor;
        // [INV-3 conservation]
        if (total !== 0) throw new Error(`conservation broken: balances sum to ${total}`);
        this.checks++;
      }
    }
  }
}
