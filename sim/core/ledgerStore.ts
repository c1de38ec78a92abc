// Goal: the simulator's ledger storage — the in-memory store, plus a running sum of all balances so that
// conservation [INV-3] can be checked after every request in O(1) instead of summing 100,000 accounts.
// Method: every account write adds its balance change to the running sum; a transaction that throws restores
// the sum it started with, exactly as the store restores its records.

import { MemoryLedgerStore, type Account } from '../../machines/domain/ledgerStore.ts';

export class SumTrackingLedgerStore extends MemoryLedgerStore {
  runningSumMinor = 0;

  override putAccount(account: Account): void {
    const previous = this.getAccount(account.id);
    this.runningSumMinor += account.balanceMinor - (previous?.balanceMinor ?? 0);
    super.putAccount(account);
  }

  override transaction<T>(fn: () => T): T {
    const saved = this.runningSumMinor;
    try {
      return super.transaction(fn);
    } catch (error) {
      this.runningSumMinor = saved;
      throw error;
    }
  }
}
